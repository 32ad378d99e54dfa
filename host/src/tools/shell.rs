//! `bash` for a local sandbox: one allowed program run in the sandbox root, without a
//! shell, with a cleared environment and a time limit.

use std::process::Stdio;
use std::time::Duration;

use super::tree::{LocalTree, resolve};

/// The most output characters returned to the model.
const MAX_OUTPUT: usize = 30_000;

/// Which programs `bash` may run, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShellPolicy {
    /// Program names allowed as the first word of a command.
    pub commands: Vec<String>,
    /// How long one command may run before it is killed.
    pub timeout: Duration,
}

/// Runs `command` in the tree's root. Shell syntax (pipes, `;`, redirects, `$`) is not
/// interpreted; an argument that names a path outside the root (absolute, through
/// `..`, or through a symbolic link) is refused.
pub(super) async fn run(
    policy: &ShellPolicy,
    tree: &LocalTree,
    command: &str,
) -> Result<String, String> {
    let root = tree.root();
    let words = shlex::split(command).ok_or("the command has unbalanced quotes")?;
    let (program, args) = words.split_first().ok_or("the command is empty")?;
    if !policy.commands.iter().any(|c| c == program) {
        return Err(format!(
            "'{program}' is not allowed here; allowed commands: {}",
            policy.commands.join(", ")
        ));
    }
    for arg in args {
        if ["|", ";", "&&", "||", ">", ">>", "<", "&"].contains(&arg.as_str()) {
            return Err(format!(
                "'{arg}': shell operators are not interpreted; run one command at a time"
            ));
        }
        if arg.starts_with('/') {
            return Err(format!(
                "'{arg}': absolute paths are not allowed; use paths relative to the sandbox root"
            ));
        }
        tree.host_path(&resolve("", arg)?)?;
    }
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(root)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run '{program}': {e}"))?;
    let output = tokio::time::timeout(policy.timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "'{program}' ran past its {:?} time limit and was stopped",
                policy.timeout
            )
        })?
        .map_err(|e| format!("'{program}' failed: {e}"))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if text.len() > MAX_OUTPUT {
        let cut = text.floor_char_boundary(MAX_OUTPUT);
        text.truncate(cut);
        text.push_str("\n[output truncated]");
    }
    match output.status.code() {
        Some(0) => Ok(text),
        Some(code) => Err(format!("{text}\n[exit code {code}]")),
        None => Err(format!("{text}\n[stopped by a signal]")),
    }
}
