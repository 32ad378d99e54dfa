//! TypeScript and JavaScript agents: esbuild bundles the module with the SDK
//! (`guest-sdk/js/`), componentize-js compiles the bundle (`javascript.mjs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::toolchain::{COMPONENTIZE_JS, ESBUILD, TYPEBOX, Toolchains};
use super::{Inputs, componentized};

/// The SDK and the build script, as the build's work folder holds them.
const INPUTS: Inputs = &[
    ("sdk/flue.js", include_str!("../../../guest-sdk/js/flue.js")),
    (
        "sdk/entry.js",
        include_str!("../../../guest-sdk/js/entry.js"),
    ),
    ("wit/agent.wit", include_str!("../../../wit/agent.wit")),
];
const BUILD_SCRIPT: &str = include_str!("javascript.mjs");

/// Builds `agents/<name>.ts` (or `.js`) and returns the component's path.
pub fn build(source: &Path, target_dir: &Path, tools: &Toolchains) -> Result<PathBuf, String> {
    let salt = format!("{COMPONENTIZE_JS} {ESBUILD} {TYPEBOX}\n{BUILD_SCRIPT}");
    componentized(source, target_dir, "js", &salt, INPUTS, |work, out| {
        let node_modules = tools.node_modules()?;
        // The script finds esbuild and componentize-js in the node_modules beside it.
        let script = node_modules.with_file_name("flue-build.mjs");
        super::write_atomically(&script, BUILD_SCRIPT.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let mut node = Command::new("node");
        node.arg(&script)
            .arg(std::path::absolute(source).map_err(|e| e.to_string())?)
            .arg(work.join("sdk"))
            .arg(work.join("wit"))
            .arg(out);
        super::run_compiler(node, source, str::to_string)
    })
}
