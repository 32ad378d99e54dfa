//! What the host takes from the user's machine to fetch things once: a folder in the
//! user's cache, programs found on `PATH` (`python3`, `node`), and installers run with
//! their progress on stderr.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The folder `var` names, else `flue/<sub>` in the user's cache folder
/// (`XDG_CACHE_HOME`, else `~/.cache`, else the temporary folder).
pub(crate) fn cache_dir(var: &str, sub: &str) -> PathBuf {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(var).unwrap_or_else(|| {
        let cache = env("XDG_CACHE_HOME")
            .or_else(|| env("HOME").map(|home| home.join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("flue").join(sub)
    })
}

/// Checks that `program` runs, or says that `purpose` needs it and what to install.
pub(crate) fn found(
    program: &str,
    version_flag: &str,
    what: &str,
    purpose: &str,
) -> Result<(), String> {
    let ran = Command::new(program)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match ran {
        Ok(status) if status.success() => Ok(()),
        _ => Err(format!(
            "{purpose} needs `{program}`, which was not found or does not run: install \
             {what}, and make sure `{program}` is on PATH"
        )),
    }
}

/// Runs an installer or downloader with its output on stderr (the user's progress), or
/// says why it failed.
pub(crate) fn run(mut command: Command, name: &str, what: &str) -> Result<(), String> {
    let status = command
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {name}: {e}; install {what}"))?;
    status.success().then_some(()).ok_or_else(|| {
        format!(
            "{name} failed (see its output above): the registry may be unreachable, or \
             the disk full; it is tried again next time"
        )
    })
}

/// The Python interpreter the host runs pip and componentize-py with: `python3`.
pub(crate) fn python(purpose: &str) -> Result<PathBuf, String> {
    found(
        "python3",
        "--version",
        "Python 3.9 or newer with pip",
        purpose,
    )?;
    Ok(PathBuf::from("python3"))
}
