//! Building agent crates into components: `cargo build --target wasm32-wasip2 --release`
//! for each crate under `agents/`, then `agents/<name>.wasm` beside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The compilation target of agent components.
pub const TARGET: &str = "wasm32-wasip2";

/// Every agent crate under `agents_dir`: the folders holding a `Cargo.toml`.
pub fn agent_crates(agents_dir: &Path) -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(agents_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    crates
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

/// Builds one agent crate in release mode and returns the path of its `.wasm`.
/// Cargo's progress and compile errors go to this process's stderr.
pub fn build_crate(crate_dir: &Path) -> Result<PathBuf, String> {
    let manifest = crate_dir
        .canonicalize()
        .map_err(|e| format!("cannot open {}: {e}", crate_dir.display()))?
        .join("Cargo.toml");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(Stdio::inherit())
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

/// Builds every agent crate under `agents_dir` and copies each component to
/// `agents_dir/<crate folder name>.wasm`. Returns the names built.
pub fn build_agents(agents_dir: &Path) -> Result<Vec<String>, String> {
    let crates = agent_crates(agents_dir);
    if !crates.is_empty() {
        ensure_target()?;
    }
    crates
        .iter()
        .map(|dir| build_agent(agents_dir, dir))
        .collect()
}

/// Builds one agent crate and copies its component to `agents_dir/<folder name>.wasm`
/// (left untouched when the bytes are the same). Returns the agent's name.
pub fn build_agent(agents_dir: &Path, crate_dir: &Path) -> Result<String, String> {
    let name = crate_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    eprintln!("Building agent {name}…");
    let wasm = build_crate(crate_dir)?;
    let dest = agents_dir.join(format!("{name}.wasm"));
    copy_if_changed(&wasm, &dest).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    Ok(name)
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
