//! Python agents: componentize-py compiles the module with the SDK
//! (`guest-sdk/python/`: `flue`, and `pyflue` for modules written for PyFlue).

use std::path::{Path, PathBuf};

use super::toolchain::{COMPONENTIZE_PY, Toolchains};
use super::{Inputs, componentized, inputs_bytes, work_folder};

/// The SDK and the WIT, as the build's work folder holds them.
const INPUTS: Inputs = &[
    (
        "sdk/flue/__init__.py",
        include_str!("../../../guest-sdk/python/flue/__init__.py"),
    ),
    (
        "sdk/flue/_component.py",
        include_str!("../../../guest-sdk/python/flue/_component.py"),
    ),
    (
        "sdk/flue/host.py",
        include_str!("../../../guest-sdk/python/flue/host.py"),
    ),
    (
        "sdk/flue/sandboxes.py",
        include_str!("../../../guest-sdk/python/flue/sandboxes.py"),
    ),
    (
        "sdk/pyflue/__init__.py",
        include_str!("../../../guest-sdk/python/pyflue/__init__.py"),
    ),
    (
        "sdk/pyflue/sandboxes.py",
        include_str!("../../../guest-sdk/python/pyflue/sandboxes.py"),
    ),
    ("wit/agent.wit", include_str!("../../../wit/agent.wit")),
];

/// The name the agent's module is imported by inside the component: one of the build's
/// own, so that no file name (`json.py`, `types.py`) shadows a module Python or the SDK
/// imports.
const MODULE: &str = "flue_agent_module";

/// Builds `agents/<name>.py` and returns the component's path.
pub(super) fn build(
    source: &Path,
    target_dir: &Path,
    tools: &Toolchains,
) -> Result<PathBuf, String> {
    let code =
        std::fs::read(source).map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let file_name = source.file_name().unwrap_or_default().to_string_lossy();
    let app = format!(
        "from flue import _component\nimport {MODULE}\n\nWitWorld = _component.world({MODULE}, {file_name:?})\n"
    );
    let salt = format!("componentize-py {COMPONENTIZE_PY}");
    let parts: [&[u8]; 4] = [
        &code,
        app.as_bytes(),
        &inputs_bytes(INPUTS),
        salt.as_bytes(),
    ];
    componentized(&parts, target_dir, "py", |out| {
        let work = work_folder(target_dir, "py", INPUTS)?;
        let work = work.path();
        let io = |e: std::io::Error| format!("cannot write in {}: {e}", work.display());
        std::fs::create_dir_all(work.join("agent")).map_err(io)?;
        std::fs::write(work.join(format!("agent/{MODULE}.py")), &code).map_err(io)?;
        std::fs::write(work.join("sdk/flue_app.py"), &app).map_err(io)?;
        let mut python = tools.componentize_py_command()?;
        python
            .args([
                "-d",
                "wit",
                "-w",
                "flue:agent/agent",
                "componentize",
                "flue_app",
            ])
            .args(["-p", "sdk", "-p", "agent", "-o"])
            .arg(std::path::absolute(out).map_err(|e| e.to_string())?)
            .current_dir(work);
        // The compiler names the agent's file by where the build mounts it (`/1`).
        let mounted = format!("/1/{MODULE}.py");
        let shown = source.display().to_string();
        super::run_compiler(python, source, |line| line.replace(&mounted, &shown))
    })
}
