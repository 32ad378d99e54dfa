//! The pinned compilers of Python and JavaScript agents, fetched the first time an agent
//! needs them into a tool cache shared by every project of the user: componentize-py
//! from PyPI, componentize-js and esbuild from npm. Each is installed into a temporary
//! folder that is renamed into place when complete, so a process that stops half-way,
//! or two that install at once, never leave a broken toolchain behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::user_tools::{self, run};

/// What the toolchains are fetched for, as errors say it.
const PURPOSE: &str = "building this agent";

/// componentize-py's version on PyPI: turns a Python module into a component.
pub(super) const COMPONENTIZE_PY: &str = "0.25.1";
/// componentize-js's version on npm: turns a JavaScript module into a component.
pub(super) const COMPONENTIZE_JS: &str = "0.23.0";
/// esbuild's version on npm: strips TypeScript types and bundles an agent with its SDK.
pub(super) const ESBUILD: &str = "0.28.2";
/// TypeBox's version on npm: the SDK's `Type` builder of JSON Schemas, as Flue offers it.
pub(super) const TYPEBOX: &str = "0.34.52";

/// Where the toolchains live: `FLUE_TOOLS_DIR`, else `flue/tools` in the user's cache
/// folder (`XDG_CACHE_HOME`, else `~/.cache`).
#[derive(Debug, Clone)]
pub struct Toolchains {
    /// The tool cache: one folder per pinned toolchain.
    pub dir: PathBuf,
}

impl Default for Toolchains {
    fn default() -> Self {
        Self {
            dir: user_tools::cache_dir("FLUE_TOOLS_DIR", "tools"),
        }
    }
}

impl Toolchains {
    /// The folder holding the `componentize_py` package, installed with `pip install
    /// --target` if missing. Errors say what is missing (`python3`, pip) or that the
    /// install failed (its output went to stderr).
    pub fn componentize_py(&self) -> Result<PathBuf, String> {
        self.install_componentize_py(&self.python()?)
    }

    /// A command that runs componentize-py with `python3` (installed first, as
    /// [`Self::componentize_py`]); add its arguments.
    pub fn componentize_py_command(&self) -> Result<Command, String> {
        let python = self.python()?;
        let package = self.install_componentize_py(&python)?;
        let mut command = Command::new(python);
        command.arg("-c").arg(format!(
            "import sys; sys.path.insert(0, {:?}); sys.argv[0] = 'componentize-py'; \
             from componentize_py import script; sys.exit(script())",
            package.display().to_string()
        ));
        Ok(command)
    }

    fn install_componentize_py(&self, python: &Path) -> Result<PathBuf, String> {
        self.installed(&format!("componentize-py-{COMPONENTIZE_PY}"), |dir| {
            let mut pip = Command::new(python);
            pip.args(["-m", "pip", "install", "--disable-pip-version-check"])
                .arg("--root-user-action=ignore")
                .args(["--no-input", "--progress-bar", "off", "--target"])
                .arg(dir)
                .arg(format!("componentize-py=={COMPONENTIZE_PY}"));
            run(
                pip,
                "pip (python3 -m pip)",
                "pip, from your system's python3-pip package",
            )
        })
    }

    /// The `node_modules` folder holding componentize-js, esbuild and TypeBox, installed
    /// with `npm install` if missing. Errors say what is missing (`node`, npm) or that the
    /// install failed (its output went to stderr).
    pub fn node_modules(&self) -> Result<PathBuf, String> {
        user_tools::found(
            "node",
            "--version",
            "Node.js 18 or newer (https://nodejs.org)",
            PURPOSE,
        )?;
        let name = format!("componentize-js-{COMPONENTIZE_JS}-esbuild-{ESBUILD}-typebox-{TYPEBOX}");
        let folder = self.installed(&name, |dir| {
            std::fs::write(dir.join("package.json"), "{\"private\": true}\n")
                .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
            let mut npm = Command::new("npm");
            // No install scripts: esbuild's and wizer's binaries come as packages of
            // their own for the platform.
            npm.args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
            ])
            .arg(dir)
            .arg(format!(
                "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
            ))
            .arg(format!("esbuild@{ESBUILD}"))
            .arg(format!("@sinclair/typebox@{TYPEBOX}"));
            run(npm, "npm", "npm, which comes with Node.js")
        })?;
        Ok(folder.join("node_modules"))
    }

    /// The Python interpreter that runs componentize-py: `python3`.
    pub fn python(&self) -> Result<PathBuf, String> {
        user_tools::python(PURPOSE)
    }

    /// `self.dir/<name>`, installed by `install(temporary folder)` first if missing.
    fn installed(
        &self,
        name: &str,
        install: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<PathBuf, String> {
        let dest = self.dir.join(name);
        if dest.is_dir() {
            return Ok(dest);
        }
        let io =
            |e: std::io::Error| format!("cannot write the tool cache {}: {e}", self.dir.display());
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let work = tempfile::Builder::new()
            .prefix(&format!(".{name}-"))
            .tempdir_in(&self.dir)
            .map_err(io)?;
        eprintln!(
            "Installing {name} into {} (once; set FLUE_TOOLS_DIR to choose the folder)…",
            self.dir.display()
        );
        install(work.path())?;
        match std::fs::rename(work.path(), &dest) {
            Ok(()) => {
                eprintln!("Installed {name}");
                Ok(dest)
            }
            // Another process installed it meanwhile; theirs is as good as ours.
            Err(_) if dest.is_dir() => Ok(dest),
            Err(e) => Err(io(e)),
        }
    }
}
