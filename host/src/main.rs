//! The `flue` binary.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A serving host allocates many small, short-lived buffers per request; mimalloc
/// handles that with far less time in the allocator than the system's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = flue_host::cli::Cli::parse();
    // Without RUST_LOG: warnings, and in `flue dev` also what agents log (`host::info`).
    let default = if cli.is_dev() {
        "warn,flue::guest=info"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    if let Err(message) = flue_host::cli::run(cli).await {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
