//! The development loop: watch `agents/` and each tenant's `agents/<tenant>/`, rebuild
//! agent crates whose sources change, and hot-swap components as they appear, change or
//! go away.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::{Host, build};

/// How long a burst of file events is gathered before acting on it.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches while it lives; dropping it stops the watching.
pub struct DevWatch {
    _watcher: RecommendedWatcher,
}

/// What a changed path asks for.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// A component file appeared, changed or went away.
    Component(PathBuf),
    /// An agent crate's sources changed: rebuild it.
    Crate(PathBuf),
}

/// Starts watching `agents_dir` and the folders of `flue.toml`'s tenants in it
/// (components), and each agent crate's `src/` and `Cargo.toml`; changes are applied to
/// `host` on a background task.
pub fn watch(host: Host, agents_dir: &Path) -> Result<DevWatch, String> {
    let agents_dir = agents_dir
        .canonicalize()
        .map_err(|e| format!("cannot watch {}: {e}", agents_dir.display()))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    let fail = |e: notify::Error| format!("cannot watch {}: {e}", agents_dir.display());
    watcher
        .watch(&agents_dir, RecursiveMode::NonRecursive)
        .map_err(fail)?;
    for tenant in host.options().config.tenant_names() {
        let folder = agents_dir.join(tenant);
        std::fs::create_dir_all(&folder)
            .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        watcher
            .watch(&folder, RecursiveMode::NonRecursive)
            .map_err(fail)?;
    }
    for crate_dir in build::agent_crates(&agents_dir) {
        watcher
            .watch(&crate_dir.join("Cargo.toml"), RecursiveMode::NonRecursive)
            .map_err(fail)?;
        if crate_dir.join("src").is_dir() {
            watcher
                .watch(&crate_dir.join("src"), RecursiveMode::Recursive)
                .map_err(fail)?;
        }
    }
    tokio::spawn(apply_changes(host, agents_dir, rx));
    Ok(DevWatch { _watcher: watcher })
}

/// Classifies a changed path; `None` for paths that need nothing (temp files, targets).
/// A `.wasm` directly in `agents/`, or in a folder of it that is not a crate (a
/// tenant's, the only such folders watched), is a component.
fn classify(agents_dir: &Path, path: &Path) -> Option<Change> {
    let relative = path.strip_prefix(agents_dir).ok()?;
    let parts = relative.components().count();
    let first = agents_dir.join(relative.components().next()?);
    let is_crate = first.join("Cargo.toml").is_file();
    let component = path.extension().is_some_and(|e| e == "wasm");
    if component && (parts == 1 || (parts == 2 && !is_crate)) {
        return Some(Change::Component(path.to_path_buf()));
    }
    let in_target = relative.components().any(|c| c.as_os_str() == "target");
    (parts > 1 && !in_target && is_crate).then_some(Change::Crate(first))
}

async fn apply_changes(host: Host, agents_dir: PathBuf, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
    while let Some(first) = rx.recv().await {
        let mut paths = BTreeSet::from([first]);
        tokio::time::sleep(SETTLE).await;
        while let Ok(path) = rx.try_recv() {
            paths.insert(path);
        }
        let changes: BTreeSet<Change> = paths
            .iter()
            .filter_map(|p| classify(&agents_dir, p))
            .collect();
        for change in changes {
            match change {
                Change::Crate(crate_dir) => rebuild(&agents_dir, crate_dir).await,
                Change::Component(path) if path.exists() => match host.reload_agent(&path).await {
                    Ok(name) => eprintln!("Reloaded agent {name}"),
                    Err(reason) => eprintln!(
                        "warning: {} was not loaded ({reason}); the previous version keeps serving",
                        path.display()
                    ),
                },
                Change::Component(path) => {
                    if let Some(name) = host.remove_agent(&path) {
                        eprintln!("Removed agent {name}");
                    }
                }
            }
        }
    }
}

/// Rebuilds one crate; its new component then arrives as a component change.
async fn rebuild(agents_dir: &Path, crate_dir: PathBuf) {
    let agents_dir = agents_dir.to_path_buf();
    let built =
        tokio::task::spawn_blocking(move || build::build_agent(&agents_dir, &crate_dir)).await;
    match built {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("error: {e}"),
        Err(e) => eprintln!("error: the build task failed: {e}"),
    }
}
