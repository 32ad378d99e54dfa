//! Workflows: components of the `workflow` world found in `workflows/*.wasm`, each run
//! once per request with a JSON payload. A run and its events (`run_start`,
//! `prompt_start`/`prompt_end` for each agent it prompts, `run_end`) are stored, so
//! followers can read them as they come and resume from any event.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::Shared;
use super::run_log::RunLog;
use crate::Error;
use crate::access::Scope;
use crate::runtime::{CompiledWorkflow, Runtime};
use crate::store::runs::{RunEnd, RunEvent};
use crate::store::{InstanceKey, now_millis};

/// How often a follower of a run looks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(25);

/// The compiled workflows, by name, and the runs in progress.
#[derive(Default)]
pub(crate) struct Workflows {
    compiled: RwLock<HashMap<String, Arc<CompiledWorkflow>>>,
    /// Files that failed to load, with why.
    problems: RwLock<std::collections::BTreeMap<std::path::PathBuf, String>>,
    live: Mutex<HashMap<String, LiveRun>>,
}

/// A run in progress: how to stop it, and its event log.
struct LiveRun {
    task: AbortHandle,
    log: Arc<RunLog>,
}

impl Workflows {
    /// Compiles every `*.wasm` in `dir` (a missing folder has none); a file that is not
    /// a workflow is reported and skipped.
    pub(crate) async fn scan(runtime: &Arc<Runtime>, dir: &Path) -> Self {
        let workflows = Self::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return workflows;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.extension().is_some_and(|e| e == "wasm") {
                // A failure is kept in `problems` and reported by the caller.
                let _ = workflows.load(runtime, &path).await;
            }
        }
        workflows
    }

    /// Compiles `path` off the async workers and makes it the workflow's current version
    /// (runs in progress finish on theirs); on failure the previous version keeps
    /// serving and the reason is kept. Returns the workflow's name.
    pub(crate) async fn load(&self, runtime: &Arc<Runtime>, path: &Path) -> Result<String, String> {
        let name = workflow_name(path)?;
        let (runtime, file) = (runtime.clone(), path.to_path_buf());
        let compiled = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&file).map_err(|e| format!("cannot read: {e}"))?;
            runtime.compile_workflow(&bytes).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the compiler crashed: {e}")));
        let mut problems = self.problems.write().expect("workflows lock");
        match compiled {
            Ok(compiled) => {
                problems.remove(path);
                let mut map = self.compiled.write().expect("workflows lock");
                map.insert(name.clone(), Arc::new(compiled));
                Ok(name)
            }
            Err(reason) => {
                tracing::debug!(file = %path.display(), %reason, "workflow skipped");
                problems.insert(path.to_path_buf(), reason.clone());
                Err(reason)
            }
        }
    }

    /// Forgets the workflow loaded from `path`; returns its name if there was one.
    pub(crate) fn remove(&self, path: &Path) -> Option<String> {
        self.problems.write().expect("workflows lock").remove(path);
        let name = workflow_name(path).ok()?;
        let mut map = self.compiled.write().expect("workflows lock");
        map.remove(&name).map(|_| name)
    }

    /// Files of the workflows folder that could not be loaded, with reasons.
    pub(crate) fn problems(&self) -> Vec<(std::path::PathBuf, String)> {
        let problems = self.problems.read().expect("workflows lock");
        problems
            .iter()
            .map(|(f, r)| (f.clone(), r.clone()))
            .collect()
    }

    /// The names of the workflows, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let compiled = self.compiled.read().expect("workflows lock");
        let mut names: Vec<String> = compiled.keys().cloned().collect();
        names.sort();
        names
    }

    fn get(&self, name: &str) -> Option<Arc<CompiledWorkflow>> {
        self.compiled
            .read()
            .expect("workflows lock")
            .get(name)
            .cloned()
    }

    /// Takes a run out of the live table; whoever does so records how it ended.
    fn finish(&self, id: &str) -> Option<LiveRun> {
        self.live.lock().expect("live runs lock").remove(id)
    }
}

/// A started run: its id, and its outcome once it ends.
pub struct RunHandle {
    /// The run's id, as stored in its [`RunRecord`](crate::RunRecord).
    pub id: String,
    ended: oneshot::Receiver<Result<String, String>>,
}

impl RunHandle {
    /// Waits for the run to end: its result (JSON text), or why it failed.
    pub async fn result(self) -> Result<String, String> {
        self.ended
            .await
            .unwrap_or_else(|_| Err("the run was cancelled".into()))
    }
}

impl Shared {
    /// Starts a run of workflow `name` with `payload`; it runs on its own task, its
    /// record and events stored as it goes, and prompts only agents within `scope`.
    pub(crate) async fn start_run(
        self: &Arc<Self>,
        name: &str,
        payload: &Value,
        scope: Scope,
    ) -> Result<RunHandle, Error> {
        let workflow = self.workflows.get(name).ok_or_else(|| {
            Error::NotFound(format!(
                "no workflow '{name}' (workflows: {})",
                self.workflows.names().join(", ")
            ))
        })?;
        let id = format!("run_{:011x}{:012x}", now_millis(), fastrand::u64(..) >> 16);
        let started_by = scope.identity().key;
        self.runs
            .run_started(&id, name, started_by.as_deref(), now_millis())
            .await?;
        let log = Arc::new(RunLog::new(id.clone(), scope, self.runs.clone()));
        log.record("run_start", json!({"workflow": name, "payload": payload}))
            .await;
        let (done, ended) = oneshot::channel();
        let (shared, name, payload, run_log) = (
            self.clone(),
            name.to_string(),
            payload.to_string(),
            log.clone(),
        );
        // Held until the run is in the live table, so it cannot end before it is there.
        let mut live = self.workflows.live.lock().expect("live runs lock");
        let task = tokio::spawn(async move {
            let key = InstanceKey {
                agent: format!("workflow:{name}"),
                id: run_log.id.clone(),
            };
            let imports = Arc::new(shared.guest_imports(key, Some(run_log.clone())));
            let wall = shared.options.config.run_limit();
            let outcome = match shared
                .runtime
                .run_workflow(&workflow, imports, &payload, wall)
                .await
            {
                Ok(answer) => answer,
                Err(e) => Err(format!("workflow '{name}': {e}")),
            };
            if shared.workflows.finish(&run_log.id).is_none() {
                return; // cancelled meanwhile: the canceller recorded the end
            }
            let end = match &outcome {
                Ok(result) => RunEnd::Completed(result.clone()),
                Err(error) => RunEnd::Failed(error.clone()),
            };
            shared.end_run(&run_log, &end).await;
            let _ = done.send(outcome);
        });
        live.insert(
            id.clone(),
            LiveRun {
                task: task.abort_handle(),
                log,
            },
        );
        Ok(RunHandle { id, ended })
    }

    /// Stops a run in progress and records it as cancelled; `false` if it is not running.
    pub(crate) async fn cancel_run(&self, id: &str) -> bool {
        let Some(run) = self.workflows.finish(id) else {
            return false;
        };
        run.task.abort();
        self.end_run(&run.log, &RunEnd::Cancelled).await;
        true
    }

    /// Records the `run_end` event, then how the run ended.
    async fn end_run(&self, log: &RunLog, end: &RunEnd) {
        let data = match end {
            RunEnd::Completed(result) => json!({"result": parse_json(result), "is_error": false}),
            RunEnd::Failed(error) => json!({"error": error, "is_error": true}),
            RunEnd::Cancelled => json!({"error": "cancelled", "is_error": true, "cancelled": true}),
        };
        log.record("run_end", data).await;
        if let Err(e) = self.runs.run_ended(&log.id, end, now_millis()).await {
            tracing::error!(run = %log.id, "cannot store the end of a run: {e}");
        }
    }

    /// The run's events after `after` as they are recorded, up to its `run_end`.
    pub(crate) fn follow_run(
        self: &Arc<Self>,
        id: String,
        after: Option<u64>,
    ) -> impl futures_util::Stream<Item = Result<RunEvent, Error>> + Send + 'static {
        let start = (self.clone(), id, after, Vec::<RunEvent>::new(), false);
        futures_util::stream::unfold(
            start,
            |(shared, id, mut after, mut ready, ended)| async move {
                loop {
                    if let Some(event) = ready.pop() {
                        let last = event.kind == "run_end";
                        after = Some(event.index);
                        return Some((Ok(event), (shared, id, after, ready, last)));
                    }
                    if ended {
                        return None;
                    }
                    match shared.runs.run_events(&id, after, 100).await {
                        Ok(mut page) if !page.is_empty() => {
                            page.reverse();
                            ready = page;
                        }
                        Ok(_) => tokio::time::sleep(FOLLOW_POLL).await,
                        Err(e) => return Some((Err(e.into()), (shared, id, after, ready, true))),
                    }
                }
            },
        )
    }
}

/// A workflow's name: its file's name without `.wasm`.
fn workflow_name(path: &Path) -> Result<String, String> {
    path.file_stem()
        .and_then(|n| n.to_str())
        .filter(|n| crate::registry::valid_name(n))
        .map(str::to_string)
        .ok_or_else(|| "workflow names may hold only letters, digits, '_' and '-'".into())
}

/// A result's JSON, or the text as a JSON string when it is not JSON.
pub(crate) fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}
