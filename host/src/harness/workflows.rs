//! Workflows: components of the `workflow` world found in `workflows/*.wasm`, each run
//! once per request with a JSON payload. A run and its events (`run_start`,
//! `prompt_start`/`prompt_end` for each agent it prompts, `run_end`) are stored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::Shared;
use super::guest_imports::{GuestImports, RunLog};
use crate::Error;
use crate::runtime::{CompiledWorkflow, Runtime};
use crate::store::{InstanceKey, now_millis};

/// The compiled workflows, by name.
#[derive(Default)]
pub struct Workflows(RwLock<HashMap<String, Arc<CompiledWorkflow>>>);

impl Workflows {
    /// Compiles every `*.wasm` in `dir` (a missing folder has none); a file that is not
    /// a workflow is reported and skipped.
    pub async fn scan(runtime: &Arc<Runtime>, dir: &Path) -> Self {
        let workflows = Self::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return workflows;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            let Some(name) = path
                .extension()
                .is_some_and(|e| e == "wasm")
                .then(|| path.file_stem())
                .flatten()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            let runtime = runtime.clone();
            let compiled = tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
                runtime.compile_workflow(&bytes).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|c| c);
            match compiled {
                Ok(compiled) => {
                    let mut map = workflows.0.write().expect("workflows lock");
                    map.insert(name, Arc::new(compiled));
                }
                Err(e) => tracing::warn!("workflows/{name}.wasm is skipped: {e}"),
            }
        }
        workflows
    }

    /// The names of the workflows, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .read()
            .expect("workflows lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn get(&self, name: &str) -> Option<Arc<CompiledWorkflow>> {
        self.0.read().expect("workflows lock").get(name).cloned()
    }
}

/// A started run: its id, and its outcome once it ends.
pub struct RunHandle {
    pub id: String,
    ended: oneshot::Receiver<Result<String, String>>,
}

impl RunHandle {
    /// Waits for the run to end: its result (JSON text), or why it failed.
    pub async fn result(self) -> Result<String, String> {
        self.ended
            .await
            .unwrap_or_else(|_| Err("the run was dropped".into()))
    }
}

impl Shared {
    /// Starts a run of workflow `name` with `payload`; it runs on its own task, its
    /// record and events stored as it goes.
    pub async fn start_run(
        self: &Arc<Self>,
        name: &str,
        payload: &Value,
    ) -> Result<RunHandle, Error> {
        let workflow = self.workflows.get(name).ok_or_else(|| {
            Error::NotFound(format!(
                "no workflow '{name}' (workflows: {})",
                self.workflows.names().join(", ")
            ))
        })?;
        let id = format!("run_{:011x}{:012x}", now_millis(), fastrand::u64(..) >> 16);
        self.runs.run_started(&id, name, now_millis()).await?;
        let log = RunLog::new(id.clone());
        log.record(
            self,
            "run_start",
            json!({"workflow": name, "payload": payload}),
        )
        .await;
        let (done, ended) = oneshot::channel();
        let (shared, name, payload) = (self.clone(), name.to_string(), payload.to_string());
        tokio::spawn(async move {
            let key = InstanceKey {
                agent: format!("workflow:{name}"),
                id: log.id.clone(),
            };
            let run_id = log.id.clone();
            let imports = Arc::new(GuestImports::new(&shared, key, Some(log)));
            let wall = shared.options.config.run_limit();
            let outcome = match shared
                .runtime
                .run_workflow(&workflow, imports.clone(), &payload, wall)
                .await
            {
                Ok(answer) => answer,
                Err(e) => Err(format!("workflow '{name}': {e}")),
            };
            let end = match &outcome {
                Ok(result) => {
                    json!({"result": serde_json::from_str::<Value>(result).unwrap_or(Value::String(result.clone())), "is_error": false})
                }
                Err(error) => json!({"error": error, "is_error": true}),
            };
            imports.record_run_event(&shared, "run_end", end).await;
            if let Err(e) = shared.runs.run_ended(&run_id, &outcome, now_millis()).await {
                tracing::error!(run = %run_id, "cannot store the end of a run: {e}");
            }
            let _ = done.send(outcome);
        });
        Ok(RunHandle { id, ended })
    }
}
