//! Rust agents and workflows: `cargo build --target wasm32-wasip2 --release`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::TARGET;

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
