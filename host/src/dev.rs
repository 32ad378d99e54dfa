//! The development loop: watch `agents/` (tenants' folders included), `workflows/` and
//! `flue.toml`, rebuild an agent's source (a crate, a `.py`/`.ts`/`.js` file) when its contents change, hot-swap components as they
//! appear, change or go away, and ask for a restart when `flue.toml` changes to a valid
//! configuration. Only changes of content count: a file that is merely opened or
//! read (cargo reading every manifest, the host reading a component) is no change, a
//! source whose files hash as at its last build is not rebuilt, and a component whose
//! bytes are those already serving is not reloaded, so one edit makes one build and
//! one reload, and the loop then rests.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::Host;
use crate::build::{self, Project};
use crate::registry::Loaded;

/// How long a burst of file events is gathered before acting on it.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches while it lives; dropping it stops the watching.
pub(crate) struct DevWatch {
    _watcher: RecommendedWatcher,
}

/// What a changed path asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// An agent's or workflow's source (a crate's files, a `.py`/`.ts`/`.js` file)
    /// changed: rebuild it if its contents did.
    Source(PathBuf),
    /// An agent's component file appeared, changed or went away.
    Agent(PathBuf),
    /// A workflow's component file appeared, changed or went away.
    Workflow(PathBuf),
    /// `flue.toml` was written.
    Config,
}

/// The folders watched, and the tenants whose folders hold agents.
struct Folders {
    agents: PathBuf,
    workflows: PathBuf,
    config: PathBuf,
    tenants: Vec<String>,
}

/// Starts watching `project`'s `agents/` and `workflows/` (creating the folders of
/// `flue.toml`'s tenants and `workflows/` if missing) and the `flue.toml` of
/// `project_dir`; changes are applied to `host` on a background task. When `flue.toml`
/// changes to a configuration that loads, `on_config` decides: its error is reported
/// and changes nothing. Says on stderr what it watches.
pub(crate) fn watch(
    host: Host,
    project: Project,
    project_dir: &Path,
    on_config: impl Fn(&crate::ProjectConfig) -> Result<(), String> + Send + 'static,
) -> Result<DevWatch, String> {
    let tenants = host.options().config.tenant_names();
    for folder in tenants
        .iter()
        .map(|t| project.agents_dir.join(t))
        .chain([project.workflows_dir.clone()])
    {
        std::fs::create_dir_all(&folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    }
    let canonical = |dir: &Path| {
        dir.canonicalize()
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))
    };
    let folders = Folders {
        agents: canonical(&project.agents_dir)?,
        workflows: canonical(&project.workflows_dir)?,
        config: canonical(project_dir)?.join("flue.toml"),
        tenants,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if changes_content(&event.kind) => {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: the file watcher: {e}"),
        })
        .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    for dir in [&folders.agents, &folders.workflows] {
        watcher
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        eprintln!("Watching {} for changes", dir.display());
    }
    let project_dir = folders.config.parent().unwrap_or(Path::new("."));
    watcher
        .watch(project_dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", project_dir.display()))?;
    eprintln!("Watching {} for changes", folders.config.display());
    let built = build::sources_in(&folders.agents)
        .into_iter()
        .chain(build::crates_in(&folders.workflows))
        .map(|dir| (dir.clone(), fingerprint(&dir)))
        .collect();
    let config = file_fingerprint(&folders.config);
    let watched = Watched {
        host,
        project,
        folders,
        built,
        config,
        on_config: Box::new(on_config),
    };
    tokio::spawn(watched.apply_changes(rx));
    Ok(DevWatch { _watcher: watcher })
}

/// Whether a file event may mean different contents: creations, writes, renames and
/// removals; not opens, reads, closes or metadata.
fn changes_content(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
    )
}

impl Folders {
    /// Classifies a changed path; `None` for paths that ask for nothing (build
    /// outputs, lock files, other files in a tenant's folder).
    fn classify(&self, path: &Path) -> Option<Change> {
        if path == self.config {
            return Some(Change::Config);
        }
        if let Ok(relative) = path.strip_prefix(&self.agents) {
            let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
            if let Some(dir) = crate_of(&self.agents, &parts, 2) {
                return Some(Change::Source(dir));
            }
            let file = match parts.as_slice() {
                [file] => Some(file),
                [tenant, file] if self.tenants.iter().any(|t| t == tenant) => Some(file),
                _ => None,
            };
            return match file {
                Some(file) if is_component(file) => Some(Change::Agent(path.to_path_buf())),
                Some(file) if build::is_agent_file_name(file) => {
                    Some(Change::Source(path.to_path_buf()))
                }
                _ => None,
            };
        }
        let relative = path.strip_prefix(&self.workflows).ok()?;
        let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
        if let Some(dir) = crate_of(&self.workflows, &parts, 1) {
            return Some(Change::Source(dir));
        }
        matches!(parts.as_slice(), [file] if is_component(file))
            .then(|| Change::Workflow(path.to_path_buf()))
    }
}

impl Folders {
    /// The sources a folder that appeared is or holds (`flue new` writing a crate, or a
    /// tenant's folder with crates or agent files). The files written in a new folder before the watcher
    /// watches it raise no events of their own: the watch on a new folder starts only
    /// once its creation is seen.
    fn new_sources(&self, path: &Path) -> Vec<Change> {
        let depth = |root: &Path| path.strip_prefix(root).ok().map(|r| r.iter().count());
        let room = match (depth(&self.agents), depth(&self.workflows)) {
            (Some(d @ 1..=2), _) => 2 - d,
            (_, Some(1)) => 0,
            _ => return Vec::new(),
        };
        if !path.is_dir() {
            return Vec::new();
        }
        if build::is_crate(path) {
            return vec![Change::Source(path.to_path_buf())];
        }
        if room == 0 {
            return Vec::new();
        }
        let inside = std::fs::read_dir(path).into_iter().flatten().flatten();
        let sources = inside
            .map(|e| e.path())
            .filter(|p| build::language_of(p).is_some());
        sources.map(Change::Source).collect()
    }
}

fn is_component(file: &str) -> bool {
    file.ends_with(".wasm")
}

/// The crate a path (as `parts` below `root`) belongs to, if a crate's folder lies at
/// most `depth` folders down on its way; its build outputs and lock file belong to none.
fn crate_of(root: &Path, parts: &[&str], depth: usize) -> Option<PathBuf> {
    let mut dir = root.to_path_buf();
    for (at, part) in parts.iter().enumerate().take(depth) {
        dir.push(part);
        if at + 1 < parts.len() && build::is_crate(&dir) {
            let inside = &parts[at + 1..];
            let output = inside[0] == "target" || inside == ["Cargo.lock"];
            return (!output).then_some(dir);
        }
    }
    None
}

/// The SHA-256 of a source's files (names and contents; one file for a `.py`/`.ts`/`.js`
/// agent), a crate's build outputs and lock file aside.
fn fingerprint(source: &Path) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let files = walkdir::WalkDir::new(source)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() != 1 || (e.file_name() != "target" && e.file_name() != "Cargo.lock")
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file());
    for file in files {
        hasher.update(file.path().as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(file.path()).unwrap_or_default());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

/// The SHA-256 of one file's contents; `None` if it cannot be read.
fn file_fingerprint(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path)
        .ok()
        .map(|bytes| Sha256::digest(bytes).into())
}

/// Decides on a `flue.toml` that loads: applies it, or says why it cannot be.
type ConfigCheck = Box<dyn Fn(&crate::ProjectConfig) -> Result<(), String> + Send>;

/// What the watching task keeps: the host it changes, and what it last built or read.
struct Watched {
    host: Host,
    project: Project,
    folders: Folders,
    /// Each source's fingerprint at its last build.
    built: HashMap<PathBuf, [u8; 32]>,
    /// `flue.toml` as last read.
    config: Option<[u8; 32]>,
    on_config: ConfigCheck,
}

impl Watched {
    async fn apply_changes(mut self, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
        while let Some(first) = rx.recv().await {
            let mut paths = BTreeSet::from([first]);
            tokio::time::sleep(SETTLE).await;
            while let Ok(path) = rx.try_recv() {
                paths.insert(path);
            }
            let changes: BTreeSet<Change> = paths
                .iter()
                .flat_map(|p| {
                    self.folders
                        .classify(p)
                        .into_iter()
                        .chain(self.folders.new_sources(p))
                })
                .collect();
            for change in changes {
                match change {
                    Change::Source(dir) => self.rebuild_if_changed(dir).await,
                    Change::Agent(path) => reload_agent(&self.host, &path).await,
                    Change::Workflow(path) => reload_workflow(&self.host, &path).await,
                    Change::Config => self.config_changed(),
                }
            }
        }
    }

    /// Rebuilds a source unless its files hash as at its last successful build (a build
    /// that failed is tried again on the source's next change).
    async fn rebuild_if_changed(&mut self, dir: PathBuf) {
        let print = fingerprint(&dir);
        if self.built.get(&dir) != Some(&print) && build::language_of(&dir).is_some() {
            self.built.remove(&dir);
            if rebuild(&self.project, dir.clone()).await {
                self.built.insert(dir, print);
            }
        }
    }

    /// Asks for a restart if `flue.toml` now holds a different, valid configuration.
    fn config_changed(&mut self) {
        let print = file_fingerprint(&self.folders.config);
        if print == self.config {
            return;
        }
        self.config = print;
        let project_dir = self.folders.config.parent().unwrap_or(Path::new("."));
        let file = self.folders.config.display();
        let refused = match crate::ProjectConfig::load(project_dir) {
            Ok(config) => (self.on_config)(&config).map_err(|e| format!("{file}: {e}")),
            Err(e) => Err(e),
        };
        if let Err(e) = refused {
            eprintln!("error: {e}; the running host keeps its previous settings");
        }
    }
}

async fn reload_agent(host: &Host, path: &Path) {
    if !path.exists() {
        if let Some(name) = host.remove_agent(path) {
            eprintln!("Removed agent {name}");
        }
        return;
    }
    match host.reload_agent(path).await {
        Ok(Loaded::Swapped(name)) => eprintln!("Reloaded agent {name}"),
        Ok(Loaded::Unchanged(_)) => {}
        Err(reason) => {
            let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
            let serving = host.agents().iter().any(|a| a.path == canonical);
            let outcome = if serving {
                "; the previous version keeps serving"
            } else {
                ""
            };
            eprintln!(
                "warning: {} was not loaded: {reason}{outcome}",
                path.display()
            );
        }
    }
}

async fn reload_workflow(host: &Host, path: &Path) {
    if !path.exists() {
        if let Some(name) = host.remove_workflow(path) {
            eprintln!("Removed workflow {name}");
        }
        return;
    }
    match host.reload_workflow(path).await {
        Ok(name) => eprintln!("Reloaded workflow {name}"),
        Err(reason) => eprintln!("warning: {} was not loaded: {reason}", path.display()),
    }
}

/// Rebuilds one source; its new component then arrives as a component change. Returns
/// whether it built.
async fn rebuild(project: &Project, source: PathBuf) -> bool {
    let project = project.clone();
    let built = tokio::task::spawn_blocking(move || project.build(&source)).await;
    match built {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => eprintln!("error: {e}"),
        Err(e) => eprintln!("error: the build task failed: {e}"),
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_folder_and_crate() {
        let root = std::env::temp_dir().join(format!("flue-dev-{}", std::process::id()));
        for crate_dir in ["agents/a", "agents/acme/b", "workflows/w"] {
            std::fs::create_dir_all(root.join(crate_dir).join("src")).unwrap();
            std::fs::write(root.join(crate_dir).join("Cargo.toml"), "").unwrap();
        }
        let folders = Folders {
            agents: root.join("agents"),
            workflows: root.join("workflows"),
            config: root.join("flue.toml"),
            tenants: vec!["acme".into()],
        };
        let at = |p: &str| folders.classify(&root.join(p));
        let crate_at = |p: &str| Some(Change::Source(root.join(p)));
        assert_eq!(at("agents/a/src/lib.rs"), crate_at("agents/a"));
        assert_eq!(at("agents/a/Cargo.toml"), crate_at("agents/a"));
        assert_eq!(at("agents/a/Cargo.lock"), None);
        assert_eq!(at("agents/a/target/release/a.wasm"), None);
        assert_eq!(at("agents/acme/b/src/lib.rs"), crate_at("agents/acme/b"));
        assert_eq!(at("workflows/w/src/lib.rs"), crate_at("workflows/w"));
        let agent = |p: &str| Some(Change::Agent(root.join(p)));
        assert_eq!(at("agents/a.wasm"), agent("agents/a.wasm"));
        assert_eq!(at("agents/acme/b.wasm"), agent("agents/acme/b.wasm"));
        assert_eq!(at("agents/globex/b.wasm"), None, "not a declared tenant");
        assert_eq!(at("agents/a.wasm.tmp"), None);
        assert_eq!(
            at("workflows/w.wasm"),
            Some(Change::Workflow(root.join("workflows/w.wasm")))
        );
        assert_eq!(at("flue.toml"), Some(Change::Config));
        // A folder that appears is looked into: a crate, or a tenant's folder of crates.
        let appeared = |p: &str| folders.new_sources(&root.join(p));
        assert_eq!(
            appeared("agents/a"),
            [Change::Source(root.join("agents/a"))]
        );
        assert_eq!(
            appeared("agents/acme"),
            [Change::Source(root.join("agents/acme/b"))]
        );
        assert_eq!(
            appeared("workflows/w"),
            [Change::Source(root.join("workflows/w"))]
        );
        assert!(appeared("agents/a/src").is_empty());
        assert!(appeared("agents/a.wasm").is_empty());
        assert_eq!(at("notes.md"), None);
        let source = |p: &str| Some(Change::Source(root.join(p)));
        assert_eq!(at("agents/helper.py"), source("agents/helper.py"));
        assert_eq!(at("agents/acme/helper.ts"), source("agents/acme/helper.ts"));
        assert_eq!(at("agents/globex/helper.js"), None, "not a declared tenant");
        assert_eq!(at("agents/a/src/helper.py"), crate_at("agents/a"));
        for not_agents in ["agents/.#helper.py", "agents/env.d.ts", "agents/helper.py~"] {
            assert_eq!(at(not_agents), None, "{not_agents}");
        }

        let before = fingerprint(&root.join("agents/a"));
        std::fs::write(root.join("agents/a/Cargo.lock"), "lock").unwrap();
        assert_eq!(fingerprint(&root.join("agents/a")), before);
        std::fs::write(root.join("agents/a/src/lib.rs"), "// edit").unwrap();
        assert_ne!(fingerprint(&root.join("agents/a")), before);
        std::fs::remove_dir_all(root).unwrap();
    }
}
