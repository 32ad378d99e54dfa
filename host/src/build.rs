//! Building crates into components: `cargo build --target wasm32-wasip2 --release` for
//! each agent crate under `agents/` (and `agents/<tenant>/`) and each workflow crate under
//! `workflows/`, then `<name>.wasm` beside the crate's folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The compilation target of components.
pub const TARGET: &str = "wasm32-wasip2";

/// The crates of one folder: each subfolder holding a `Cargo.toml`, and, one level down,
/// those of each subfolder that holds none (a tenant's folder, `agents/<tenant>/<name>/`).
pub fn crates_in(dir: &Path) -> Vec<PathBuf> {
    let mut crates = Vec::new();
    for folder in subfolders(dir) {
        if is_crate(&folder) {
            crates.push(folder);
        } else {
            crates.extend(subfolders(&folder).into_iter().filter(|f| is_crate(f)));
        }
    }
    crates.sort();
    crates
}

/// Whether `dir` is a crate's folder.
pub fn is_crate(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file()
}

fn subfolders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Installs the `wasm32-wasip2` target with rustup if the toolchain lacks it.
pub fn ensure_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup to check for the {TARGET} target: {e}"))?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        return Ok(());
    }
    eprintln!("Installing the {TARGET} target (once)…");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("`rustup target add {TARGET}` failed"))
}

/// Builds one crate in release mode and returns the path of its `.wasm`. Cargo's
/// progress and compile errors go to this process's stderr. `target_dir` is where cargo
/// builds when `CARGO_TARGET_DIR` does not say (crates of one project share it, so their
/// common dependencies are compiled once).
pub fn build_crate(crate_dir: &Path, target_dir: Option<&Path>) -> Result<PathBuf, String> {
    let manifest = crate_dir
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", crate_dir.display()))?
        .join("Cargo.toml");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(Stdio::inherit());
    if let Some(dir) = target_dir.filter(|_| std::env::var_os("CARGO_TARGET_DIR").is_none()) {
        cargo.env("CARGO_TARGET_DIR", dir);
    }
    let output = cargo
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {} failed (see the compiler output above)",
            crate_dir.display()
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path())
        })
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|x| x == "wasm"))
        .ok_or_else(|| {
            format!(
                "{} produced no .wasm: is its crate-type \"cdylib\"?",
                crate_dir.display()
            )
        })
}

/// A project's folders of crates, and where their builds go.
#[derive(Debug, Clone)]
pub struct Project {
    /// `agents/`: agent crates, directly or in a tenant's folder.
    pub agents_dir: PathBuf,
    /// `workflows/`: workflow crates.
    pub workflows_dir: PathBuf,
    /// Cargo's target folder for crates not in a workspace of their own choosing.
    pub target_dir: PathBuf,
}

/// What one `build_all` did.
#[derive(Debug, Default)]
pub struct Built {
    /// Components written (or already up to date), as `<name>` or `<tenant>/<name>`.
    pub agents: Vec<String>,
    pub workflows: Vec<String>,
    /// Crates that failed, with why (the compiler's output went to stderr).
    pub failed: Vec<String>,
}

impl Project {
    /// Builds every agent and workflow crate, going on past failures.
    pub fn build_all(&self) -> Result<Built, String> {
        let agents = crates_in(&self.agents_dir);
        let workflows = crates_in(&self.workflows_dir);
        if !agents.is_empty() || !workflows.is_empty() {
            ensure_target()?;
        }
        let mut built = Built::default();
        for (crates, names) in [
            (agents, &mut built.agents),
            (workflows, &mut built.workflows),
        ] {
            for dir in crates {
                match self.build(&dir) {
                    Ok(name) => names.push(name),
                    Err(e) => built.failed.push(e),
                }
            }
        }
        Ok(built)
    }

    /// Builds one crate and copies its component beside the crate's folder
    /// (`agents/<name>/` → `agents/<name>.wasm`), left untouched when the bytes are the
    /// same. Returns its name, `<tenant>/<name>` for a tenant's agent.
    pub fn build(&self, crate_dir: &Path) -> Result<String, String> {
        let name = self.name_of(crate_dir);
        eprintln!("Building {name}…");
        let wasm = build_crate(crate_dir, Some(&self.target_dir))?;
        let dest = crate_dir.with_extension("wasm");
        copy_if_changed(&wasm, &dest)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        Ok(name)
    }

    /// A crate's name as the host knows its component: the folder's name, after its
    /// tenant's for a tenant's agent.
    pub fn name_of(&self, crate_dir: &Path) -> String {
        let folder = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let parent = crate_dir.parent().unwrap_or(crate_dir);
        let in_group = [&self.agents_dir, &self.workflows_dir]
            .iter()
            .all(|d| !same_folder(parent, d));
        if in_group {
            format!("{}/{}", folder(parent), folder(crate_dir))
        } else {
            folder(crate_dir)
        }
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    a == b
        || a.canonicalize()
            .ok()
            .is_some_and(|a| b.canonicalize().ok() == Some(a))
}

/// Copies via a temporary file and a rename, so a watcher never sees half a component;
/// leaves `dest` alone when it already holds the same bytes.
fn copy_if_changed(src: &Path, dest: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(src)?;
    if std::fs::read(dest).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let tmp = dest.with_extension("wasm.tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_are_found_directly_and_in_tenant_folders() {
        let dir = std::env::temp_dir().join(format!("flue-crates-{}", std::process::id()));
        for folder in [
            "agents/a/src",
            "agents/acme/b/src",
            "agents/acme/notes",
            "workflows/w",
        ] {
            std::fs::create_dir_all(dir.join(folder)).unwrap();
        }
        for manifest in ["agents/a", "agents/acme/b", "workflows/w"] {
            std::fs::write(dir.join(manifest).join("Cargo.toml"), "").unwrap();
        }
        let project = Project {
            agents_dir: dir.join("agents"),
            workflows_dir: dir.join("workflows"),
            target_dir: dir.join("target"),
        };
        let agents = crates_in(&project.agents_dir);
        assert_eq!(agents, [dir.join("agents/a"), dir.join("agents/acme/b")]);
        let names: Vec<String> = agents.iter().map(|c| project.name_of(c)).collect();
        assert_eq!(names, ["a", "acme/b"]);
        assert_eq!(project.name_of(&dir.join("workflows/w")), "w");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
