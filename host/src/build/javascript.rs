//! TypeScript and JavaScript agents: esbuild bundles the module with the SDK
//! (`guest-sdk/js/`) and everything it imports; componentize-js compiles the bundle.
//! Both run in `javascript.mjs`, one step at a time, so that the compiled component is
//! keyed by the bundle itself: an edit of any file the agent imports rebuilds it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::toolchain::{COMPONENTIZE_JS, ESBUILD, TYPEBOX, Toolchains};
use super::{Inputs, componentized, work_folder};

/// The contract the component is compiled for.
const WIT: &str = include_str!("../../../wit/agent.wit");
/// The SDK and the WIT, as the build's work folder holds them.
const INPUTS: Inputs = &[
    ("sdk/flue.js", include_str!("../../../guest-sdk/js/flue.js")),
    (
        "sdk/entry.js",
        include_str!("../../../guest-sdk/js/entry.js"),
    ),
    ("wit/agent.wit", WIT),
];
const BUILD_SCRIPT: &str = include_str!("javascript.mjs");

/// Builds `agents/<name>.ts` (or `.js`) and returns the component's path.
pub(super) fn build(
    source: &Path,
    target_dir: &Path,
    tools: &Toolchains,
) -> Result<PathBuf, String> {
    let node_modules = tools.node_modules()?;
    // The script finds esbuild and componentize-js in the node_modules beside it.
    let script = node_modules.with_file_name("flue-build.mjs");
    if std::fs::read(&script).ok().as_deref() != Some(BUILD_SCRIPT.as_bytes()) {
        super::write_atomically(&script, BUILD_SCRIPT.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    }
    let work = work_folder(target_dir, "js", INPUTS)?;
    let work = work.path();
    let step = |name: &str| {
        let mut node = Command::new("node");
        node.arg(&script).arg(name);
        node
    };
    let bundle = work.join("agent.js");
    let mut bundling = step("bundle");
    bundling
        .arg(std::path::absolute(source).map_err(|e| e.to_string())?)
        .arg(work.join("sdk"))
        .arg(&bundle);
    super::run_compiler(bundling, source, str::to_string)?;
    let bundled = std::fs::read(&bundle).map_err(|e| format!("cannot read the bundle: {e}"))?;
    let salt = format!("{COMPONENTIZE_JS} {ESBUILD} {TYPEBOX}\n{BUILD_SCRIPT}");
    let parts: [&[u8]; 3] = [&bundled, WIT.as_bytes(), salt.as_bytes()];
    componentized(&parts, target_dir, "js", |out| {
        let mut compiling = step("componentize");
        compiling.arg(&bundle).arg(work.join("wit")).arg(out);
        super::run_compiler(compiling, source, str::to_string)
    })
}
