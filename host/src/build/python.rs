//! Python agents: componentize-py compiles the module with the SDK
//! (`guest-sdk/python/`: `flue`, and `pyflue` for modules written for PyFlue).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::toolchain::{COMPONENTIZE_PY, Toolchains};
use super::{Inputs, componentized};

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

/// Module names the build itself uses, which an agent's file may not take.
const TAKEN: &[&str] = &[
    "flue",
    "pyflue",
    "flue_app",
    "wit_world",
    "componentize_py_types",
];

/// Builds `agents/<name>.py` and returns the component's path.
pub fn build(source: &Path, target_dir: &Path, tools: &Toolchains) -> Result<PathBuf, String> {
    let module = module_name(source)?;
    let salt = format!("componentize-py {COMPONENTIZE_PY}");
    componentized(source, target_dir, "py", &salt, INPUTS, |work, out| {
        let agent_dir = work.join("agent");
        std::fs::create_dir_all(&agent_dir).map_err(|e| e.to_string())?;
        std::fs::copy(source, agent_dir.join(format!("{module}.py")))
            .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        let app = format!(
            "from flue import _component\nimport {module}\n\nWitWorld = _component.world({module})\n"
        );
        std::fs::write(work.join("sdk/flue_app.py"), app).map_err(|e| e.to_string())?;
        let componentize_py = tools.componentize_py()?;
        let mut python = Command::new(tools.python()?);
        python
            .arg("-c")
            .arg(format!(
                "import sys; sys.path.insert(0, {:?}); sys.argv[0] = 'componentize-py'; \
                 from componentize_py import script; sys.exit(script())",
                componentize_py.display().to_string()
            ))
            .args([
                "-d",
                "wit",
                "-w",
                "flue:agent/agent",
                "componentize",
                "flue_app",
            ])
            .args(["-p", "sdk", "-p", "agent", "-o"])
            .arg(out)
            .current_dir(work);
        // The compiler names the agent's file by where the build mounts it (`/1`).
        let mounted = format!("/1/{module}.py");
        let shown = source.display().to_string();
        super::run_compiler(python, source, |line| line.replace(&mounted, &shown))
    })
}

/// The module name of `agents/<name>.py`: `<name>`, which Python must be able to import.
fn module_name(source: &Path) -> Result<String, String> {
    let stem = source.file_stem().unwrap_or_default().to_string_lossy();
    let identifier = stem
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && stem.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !identifier || TAKEN.contains(&stem.as_ref()) {
        return Err(format!(
            "{}: a Python agent's file name must be a module name of its own (letters, \
             digits and _, not one of {}); rename the file",
            source.display(),
            TAKEN.join(", ")
        ));
    }
    Ok(stem.into_owned())
}
