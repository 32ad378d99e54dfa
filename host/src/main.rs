//! The `flue` binary.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(message) = flue_host::cli::run(flue_host::cli::Cli::parse()).await {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
