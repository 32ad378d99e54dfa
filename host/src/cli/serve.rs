//! `flue serve` and `flue dev`: start a host and serve it until Ctrl-C or SIGTERM.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

use super::{Cli, Listen, open_host};
use crate::server::{self, ServerOptions, auth::Auth};

/// Serves the project. Without API keys only a loopback address is allowed, unless
/// `insecure` says otherwise.
pub async fn run(cli: &Cli, listen: &Listen, insecure: bool, dev: bool) -> Result<(), String> {
    let ip: IpAddr = match listen.host.as_str() {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.parse().map_err(|e| format!("--host {other}: {e}"))?,
    };
    let host = open_host(cli, listen.no_build).await?;
    let config = &host.options().config;
    let auth = Auth::new(config.keys.clone(), &config.tenant_names())?;
    if !ip.is_loopback() && !auth.enabled() && !insecure {
        return Err(format!(
            "refusing to serve on {ip} without API keys: add [[keys]] to flue.toml, \
             or pass --insecure to serve everyone"
        ));
    }
    let listener = TcpListener::bind(SocketAddr::new(ip, listen.port))
        .await
        .map_err(|e| format!("cannot listen on {ip}:{}: {e}", listen.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let names: Vec<String> = host.agents().into_iter().map(|a| a.name).collect();
    println!("Listening on http://{addr}");
    eprintln!("{} agent(s): {}", names.len(), names.join(", "));
    eprintln!("State in {}", host.options().state_location());
    let options = ServerOptions {
        auth,
        ..ServerOptions::default()
    };
    let _watch = if dev {
        Some(crate::dev::watch(host.clone(), &host.options().agents_dir)?)
    } else {
        None
    };
    server::serve(host, listener, options, shutdown_signal())
        .await
        .map_err(|e| format!("the server failed: {e}"))
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
