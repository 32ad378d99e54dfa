//! The agents on offer: every `agents/*.wasm`, compiled (or loaded from the compile cache)
//! and checked against the `agent` world. A file that fails is reported and skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::runtime::{CompiledAgent, Runtime};

/// One loaded version of an agent.
pub struct AgentVersion {
    /// The agent's name: the file name without `.wasm`.
    pub name: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The compiled component.
    pub compiled: CompiledAgent,
}

/// A file in the agents folder that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: PathBuf,
    pub reason: String,
}

/// The current set of agents, by name.
pub struct Registry {
    agents: RwLock<BTreeMap<String, Arc<AgentVersion>>>,
    problems: RwLock<Vec<LoadProblem>>,
}

impl Registry {
    /// Loads every `*.wasm` in `dir` (a missing folder is an empty registry).
    pub async fn scan(runtime: Arc<Runtime>, dir: &Path) -> Self {
        let mut agents = BTreeMap::new();
        let mut problems = Vec::new();
        for path in wasm_files(dir) {
            let runtime = runtime.clone();
            let file = path.clone();
            let loaded = tokio::task::spawn_blocking(move || load(&runtime, &file))
                .await
                .unwrap_or_else(|e| Err(format!("the compiler crashed: {e}")));
            match loaded {
                Ok(version) => {
                    tracing::info!(agent = %version.name, cached = version.compiled.from_cache, "agent loaded");
                    agents.insert(version.name.clone(), Arc::new(version));
                }
                Err(reason) => {
                    tracing::warn!(file = %path.display(), %reason, "agent skipped");
                    problems.push(LoadProblem { file: path, reason });
                }
            }
        }
        Self {
            agents: RwLock::new(agents),
            problems: RwLock::new(problems),
        }
    }

    /// The current version of an agent.
    pub fn get(&self, name: &str) -> Option<Arc<AgentVersion>> {
        self.agents
            .read()
            .expect("registry lock")
            .get(name)
            .cloned()
    }

    /// Every loaded agent, by name.
    pub fn list(&self) -> Vec<Arc<AgentVersion>> {
        self.agents
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// Files that were skipped, with reasons.
    pub fn problems(&self) -> Vec<LoadProblem> {
        self.problems.read().expect("registry lock").clone()
    }
}

fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Whether `name` may name an agent: letters, digits, `_` and `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn load(runtime: &Runtime, path: &Path) -> Result<AgentVersion, String> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if !valid_name(&name) {
        return Err("agent file names may hold only letters, digits, '_' and '-'".into());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let compiled = runtime.compile(&bytes).map_err(|e| e.to_string())?;
    Ok(AgentVersion {
        name,
        path: path.to_path_buf(),
        compiled,
    })
}
