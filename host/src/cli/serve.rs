//! `flue serve` and `flue dev`: start a host and serve it until Ctrl-C or SIGTERM.
//! `flue dev` also restarts itself when `flue.toml` changes to a valid configuration:
//! it finishes the requests in flight, then runs again in the same process (`exec`),
//! keeping its listening socket open throughout, so clients meanwhile wait rather than
//! being refused.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::{Cli, Listen, open_host, project_options};
use crate::server::{self, ServerOptions, auth::Auth};

/// The environment variable that hands a listening socket to the restarted process.
const LISTEN_FD: &str = "FLUE_LISTEN_FD";

/// Serves the project. Without API keys only a loopback address is allowed, unless
/// `insecure` says otherwise.
pub(super) async fn run(
    cli: &Cli,
    listen: &Listen,
    insecure: bool,
    dev: bool,
) -> Result<(), String> {
    let ip: IpAddr = match listen.host.as_str() {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.parse().map_err(|e| format!("--host {other}: {e}"))?,
    };
    // The port first: a taken one is told at once, not after building every agent;
    // connections made meanwhile wait in the backlog until the host is up.
    let listener = match inherited_listener()? {
        Some(listener) => listener,
        None => TcpListener::bind(SocketAddr::new(ip, listen.port))
            .await
            .map_err(|e| format!("cannot listen on {ip}:{}: {e}", listen.port))?,
    };
    let host = open_host(project_options(cli)?, listen.no_build).await?;
    let serving = Serving { ip, insecure, dev };
    let auth = serving.auth(&host.options().config)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let names: Vec<String> = host.agents().into_iter().map(|a| a.name).collect();
    // Not `println!`: a reader that went away after this line must not stop the host.
    let _ = writeln!(std::io::stdout(), "Listening on http://{addr}");
    eprintln!("{} agent(s): {}", names.len(), names.join(", "));
    let workflows = host.workflows();
    if !workflows.is_empty() {
        eprintln!("{} workflow(s): {}", workflows.len(), workflows.join(", "));
    }
    eprintln!("State in {}", host.options().state_location());
    let options = ServerOptions {
        auth,
        ..ServerOptions::default()
    };
    let config_changed = Arc::new(Notify::new());
    let _watch = if dev {
        let project = host.options().build_project();
        let changed = config_changed.clone();
        // A new flue.toml must pass what this start checked, or the restart would fail.
        let apply = move |config: &crate::ProjectConfig| {
            serving.auth(config)?;
            changed.notify_one();
            Ok(())
        };
        Some(crate::dev::watch(
            host.clone(),
            project,
            &cli.project,
            apply,
        )?)
    } else {
        None
    };
    // Kept open past the server's own listener, for the process that takes over.
    let kept = dev.then(|| dup(listener.as_raw_fd())).transpose()?;
    let restart = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = {
        let restart = restart.clone();
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = config_changed.notified() => {
                    restart.store(true, std::sync::atomic::Ordering::SeqCst);
                    eprintln!("flue.toml changed: restarting to apply it (requests wait)…");
                }
            }
        }
    };
    server::serve(host, listener, options, stop)
        .await
        .map_err(|e| format!("the server failed: {e}"))?;
    match kept {
        Some(fd) if restart.load(std::sync::atomic::Ordering::SeqCst) => Err(restart_with(fd)),
        _ => Ok(()),
    }
}

/// What a start checks of `flue.toml` beyond its own validity, for the address served.
#[derive(Debug, Clone, Copy)]
struct Serving {
    ip: IpAddr,
    insecure: bool,
    dev: bool,
}

impl Serving {
    /// The keys of `config`, checked; refused when they leave a non-loopback address
    /// open without `--insecure`.
    fn auth(&self, config: &crate::ProjectConfig) -> Result<Auth, String> {
        let auth = Auth::new(config.keys.clone(), &config.tenant_names())?;
        if !self.ip.is_loopback() && !auth.enabled() && !self.insecure {
            let remedy = if self.dev {
                "add [[keys]] to flue.toml, or serve on 127.0.0.1"
            } else {
                "add [[keys]] to flue.toml, or pass --insecure to serve everyone"
            };
            return Err(format!(
                "refusing to serve on {} without API keys: {remedy}",
                self.ip
            ));
        }
        Ok(auth)
    }
}

/// The listening socket a restarting `flue dev` handed over, if any. It is marked
/// close-on-exec again, so that no program this process starts inherits it.
fn inherited_listener() -> Result<Option<TcpListener>, String> {
    let Some(fd) = std::env::var_os(LISTEN_FD) else {
        return Ok(None);
    };
    let fd: RawFd = fd
        .to_str()
        .and_then(|fd| fd.parse().ok())
        .ok_or_else(|| format!("{LISTEN_FD} is not a file descriptor"))?;
    set_close_on_exec(fd, true)
        .map_err(|e| format!("cannot take over the listening socket: {e}"))?;
    // SAFETY: the restarting process passed this descriptor of its listening socket,
    // open across `exec`, and nothing else in this process owns it.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener
        .set_nonblocking(true)
        .and_then(|()| TcpListener::from_std(listener))
        .map(Some)
        .map_err(|e| format!("cannot take over the listening socket: {e}"))
}

/// A duplicate of `fd`, close-on-exec like every descriptor of this process until the
/// restart hands it over.
fn dup(fd: RawFd) -> Result<RawFd, String> {
    // SAFETY: duplicating an open descriptor; the new one is ours.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(format!(
            "cannot keep the listening socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(new)
}

/// Sets or clears `FD_CLOEXEC` on `fd`.
fn set_close_on_exec(fd: RawFd, close: bool) -> std::io::Result<()> {
    let flags = if close { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD on a descriptor this process owns changes only its flags.
    match unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } {
        -1 => Err(std::io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// Runs this program again with the same arguments, handing over `fd` (open across
/// this one `exec`); returns only if that fails, with why.
fn restart_with(fd: RawFd) -> String {
    use std::os::unix::process::CommandExt;
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => return format!("cannot restart: {e}"),
    };
    if let Err(e) = set_close_on_exec(fd, false) {
        return format!("cannot restart: {e}");
    }
    let error = std::process::Command::new(program)
        .args(std::env::args_os().skip(1))
        .env(LISTEN_FD, fd.to_string())
        .exec();
    format!("cannot restart: {error}")
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    eprintln!("Shutting down: finishing prompts in flight…");
}
