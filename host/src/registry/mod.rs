//! The agents on offer: every `agents/*.wasm` and every `agents/<tenant>/*.wasm` of a
//! declared tenant (named `<tenant>/<name>`), compiled (or loaded from the compile cache)
//! and checked against the `agent` world. A file that fails is reported and skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::runtime::{CompiledAgent, Runtime};

/// One loaded version of an agent.
pub(crate) struct AgentVersion {
    /// The agent's name: the file name without `.wasm`, after `<tenant>/` for a tenant's.
    pub name: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The compiled component.
    pub compiled: CompiledAgent,
}

/// What loading a component file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// The named agent now serves the file's new version.
    Swapped(String),
    /// The file holds the version already serving: nothing changed.
    Unchanged(String),
}

/// A file in the agents folder that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// The component file, as a canonical path.
    pub file: PathBuf,
    /// Why it could not be loaded, as a sentence.
    pub reason: String,
}

/// The current set of agents, by name. Loading a new version swaps it in atomically;
/// holders of the old version keep it until they let go.
pub(crate) struct Registry {
    /// The agents folder, as loaded paths are named relative to it.
    root: PathBuf,
    agents: RwLock<BTreeMap<String, Arc<AgentVersion>>>,
    problems: RwLock<BTreeMap<PathBuf, String>>,
}

impl Registry {
    /// Loads every `*.wasm` in `dir` and in `dir/<tenant>` for each tenant (a missing
    /// folder holds no agents).
    pub(crate) async fn scan(runtime: Arc<Runtime>, dir: &Path, tenants: &[String]) -> Self {
        let registry = Self {
            root: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            agents: RwLock::new(BTreeMap::new()),
            problems: RwLock::new(BTreeMap::new()),
        };
        let folders = std::iter::once(dir.to_path_buf()).chain(tenants.iter().map(|t| dir.join(t)));
        for path in folders.flat_map(|folder| wasm_files(&folder)) {
            // A failure is recorded in `problems` and reported by the caller.
            let _ = registry.load(&runtime, &path).await;
        }
        registry
    }

    /// Compiles `path` off the async workers and makes it the agent's current version,
    /// unless it holds the bytes already serving from that file. On failure the previous
    /// version (if any) keeps serving and the reason is kept.
    pub(crate) async fn load(&self, runtime: &Arc<Runtime>, path: &Path) -> Result<Loaded, String> {
        let path = &path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let name = self.name_of(path);
        let serving = name
            .as_ref()
            .ok()
            .and_then(|n| self.get(n))
            .filter(|v| v.path == *path)
            .map(|v| v.compiled.digest.clone());
        let (runtime, file) = (runtime.clone(), path.clone());
        let loaded = tokio::task::spawn_blocking(move || load(&runtime, name?, &file, serving))
            .await
            .unwrap_or_else(|e| Err(format!("the compiler crashed: {e}")));
        match loaded {
            Ok(None) => {
                self.problems.write().expect("registry lock").remove(path);
                Ok(Loaded::Unchanged(self.name_of(path)?))
            }
            Ok(Some(version)) => {
                tracing::info!(agent = %version.name, cached = version.compiled.from_cache, "agent loaded");
                let name = version.name.clone();
                self.swap_in(version);
                Ok(Loaded::Swapped(name))
            }
            Err(reason) => {
                // The caller reports it (once): at start, in `flue dev`, or as an error.
                tracing::debug!(file = %path.display(), %reason, "agent skipped");
                let mut problems = self.problems.write().expect("registry lock");
                problems.insert(path.clone(), reason.clone());
                Err(reason)
            }
        }
    }

    /// Makes `version` its agent's current version and forgets any problem with its
    /// file; returns whether it replaced a version.
    fn swap_in(&self, version: AgentVersion) -> bool {
        let mut problems = self.problems.write().expect("registry lock");
        problems.remove(&version.path);
        let mut agents = self.agents.write().expect("registry lock");
        agents
            .insert(version.name.clone(), Arc::new(version))
            .is_some()
    }

    /// Compiles `bytes` and, only if they are a valid agent, writes them to `path`
    /// (atomically) and makes them the agent's current version. Returns the agent's name
    /// and whether it replaced a version; on failure no file is written (at most the
    /// folder is created) and nothing is changed.
    pub(crate) async fn install(
        &self,
        runtime: &Arc<Runtime>,
        path: &Path,
        bytes: Vec<u8>,
    ) -> Result<(String, bool), String> {
        let folder = path.parent().ok_or("the agent's path has no folder")?;
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        let file = path
            .file_name()
            .ok_or("the agent's path has no file name")?;
        let path = folder
            .canonicalize()
            .map_or(path.to_path_buf(), |f| f.join(file));
        let name = self.name_of(&path)?;
        let runtime = runtime.clone();
        let compiled =
            tokio::task::spawn_blocking(move || runtime.compile(&bytes).map(|c| (c, bytes)))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::runtime::GuestError::Host(format!(
                        "the compiler crashed: {e}"
                    )))
                })
                .map_err(|e| e.to_string())?;
        let (compiled, bytes) = compiled;
        let staged = path.with_extension("wasm.part");
        std::fs::write(&staged, &bytes)
            .and_then(|()| std::fs::rename(&staged, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let replaced = self.swap_in(AgentVersion {
            name: name.clone(),
            path,
            compiled,
        });
        Ok((name, replaced))
    }

    /// Forgets the agent loaded from `path`; returns its name if there was one.
    pub(crate) fn remove(&self, path: &Path) -> Option<String> {
        self.problems.write().expect("registry lock").remove(path);
        let mut agents = self.agents.write().expect("registry lock");
        let name = agents
            .iter()
            .find(|(_, v)| v.path == path)
            .map(|(n, _)| n.clone())?;
        agents.remove(&name);
        Some(name)
    }

    /// The current version of an agent.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<AgentVersion>> {
        self.agents
            .read()
            .expect("registry lock")
            .get(name)
            .cloned()
    }

    /// Every loaded agent, by name.
    pub(crate) fn list(&self) -> Vec<Arc<AgentVersion>> {
        self.agents
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }

    /// The agent a file holds: `<name>` directly in the agents folder, `<tenant>/<name>`
    /// one folder down.
    fn name_of(&self, path: &Path) -> Result<String, String> {
        let stem = |p: &Path| p.file_stem().and_then(|s| s.to_str()).map(str::to_string);
        let parts: Vec<String> = path
            .strip_prefix(&self.root)
            .map(|relative| {
                relative
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_else(|_| stem(path).into_iter().collect());
        let name = match parts.as_slice() {
            [_] => stem(path),
            [tenant, _] => stem(path).map(|name| format!("{tenant}/{name}")),
            _ => None,
        }
        .unwrap_or_default();
        if !name.split('/').all(valid_name) {
            return Err(
                "agent (and tenant folder) names may hold only letters, digits, '_' and '-'".into(),
            );
        }
        Ok(name)
    }

    /// Files that could not be loaded, with reasons.
    pub(crate) fn problems(&self) -> Vec<LoadProblem> {
        let problems = self.problems.read().expect("registry lock");
        problems
            .iter()
            .map(|(file, reason)| LoadProblem {
                file: file.clone(),
                reason: reason.clone(),
            })
            .collect()
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

/// The name a namespace (a tenant's, or the operator's with `None`) knows a host agent
/// by, if the agent is in it: `acme/support` is `support` to tenant `acme`.
pub(crate) fn local_name<'n>(tenant: Option<&str>, agent: &'n str) -> Option<&'n str> {
    match (tenant, agent.split_once('/')) {
        (None, None) => Some(agent),
        (Some(tenant), Some((owner, name))) if owner == tenant => Some(name),
        _ => None,
    }
}

/// The tenant a host agent belongs to; `None` for the operator's agents.
pub(crate) fn tenant_of(agent: &str) -> Option<&str> {
    agent.split_once('/').map(|(tenant, _)| tenant)
}

/// The host name of agent `name` as `agent` names it: in `agent`'s own namespace, so a
/// tenant's agent can only ever name its tenant's agents.
pub(crate) fn in_namespace_of(agent: &str, name: &str) -> String {
    match tenant_of(agent) {
        Some(tenant) => format!("{tenant}/{name}"),
        None => name.to_string(),
    }
}

/// Whether `name` may name an agent: letters, digits, `_` and `-`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Reads and compiles an agent's file; `None` when its bytes are those of the version
/// `serving` (by digest) already.
fn load(
    runtime: &Runtime,
    name: String,
    path: &Path,
    serving: Option<String>,
) -> Result<Option<AgentVersion>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if serving.is_some_and(|digest| digest == crate::runtime::digest(&bytes)) {
        return Ok(None);
    }
    let compiled = runtime.compile(&bytes).map_err(|e| e.to_string())?;
    Ok(Some(AgentVersion {
        name,
        path: path.to_path_buf(),
        compiled,
    }))
}
