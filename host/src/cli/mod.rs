//! The `flue` command line. Every command goes through the library API.

mod scaffold;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{DEFAULT_SESSION, Error, Host, HostOptions, build};

/// Run AI agents compiled to WebAssembly components.
#[derive(Parser)]
#[command(name = "flue", version, about)]
pub struct Cli {
    /// The project folder (holding `agents/` and `flue.toml`).
    #[arg(long, global = true, default_value = ".")]
    project: PathBuf,
    /// Where the database and compile cache live [default: <project>/.flue].
    #[arg(long, global = true, env = "FLUE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep sessions, state, dispatches and runs in PostgreSQL (`postgres://…`) instead
    /// of SQLite, so that several `flue serve` can share them.
    #[arg(long, global = true, env = "FLUE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Write logs as JSON lines (filter with RUST_LOG).
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new agent crate under agents/<name>.
    New { name: String },
    /// Build every agent crate under agents/ into agents/<name>.wasm.
    Build,
    /// Send one prompt to an agent instance and print the answer.
    Run {
        agent: String,
        /// The instance id (a ticket, a customer, a repository).
        #[arg(long)]
        id: String,
        #[arg(long, default_value = DEFAULT_SESSION)]
        session: String,
        /// Use another model: `provider/model` or a `flue.toml` alias.
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        prompt: String,
        /// Print the result envelope as JSON.
        #[arg(long)]
        json: bool,
        /// Do not build agent crates first.
        #[arg(long)]
        no_build: bool,
    },
    /// Serve every agent over HTTP, SSE and WebSocket (production).
    Serve {
        #[command(flatten)]
        listen: Listen,
        /// Allow a non-loopback address without API keys.
        #[arg(long)]
        insecure: bool,
    },
    /// Serve on loopback for development: rebuild and hot-reload agents as they change.
    Dev {
        #[command(flatten)]
        listen: Listen,
    },
    /// Print the SHA-256 of an API key, for `[[keys]] sha256` in flue.toml.
    HashKey { key: String },
    /// Print the configuration an agent's `create` returns, as JSON.
    Inspect {
        agent: String,
        #[arg(long)]
        id: String,
        /// Do not build agent crates first.
        #[arg(long)]
        no_build: bool,
    },
}

/// Where to listen.
#[derive(clap::Args)]
struct Listen {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 2024)]
    port: u16,
    /// Do not build agent crates first.
    #[arg(long)]
    no_build: bool,
}

/// Runs the parsed command; the error is what to print before exiting with status 1.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::New { ref name } => scaffold::new_agent(&cli.project.join("agents"), name),
        Command::Build => {
            let built = build::build_agents(&cli.project.join("agents"))?;
            eprintln!("Built {} agent(s): {}", built.len(), built.join(", "));
            Ok(())
        }
        Command::Run {
            ref agent,
            ref id,
            ref session,
            ref model,
            ref prompt,
            json,
            no_build,
        } => {
            let host = open_host(&cli, no_build).await?;
            let result = async {
                let mut harness = host.init_agent(agent, id).await?;
                if let Some(model) = model {
                    harness = harness.with_model(model);
                }
                harness.session(session).prompt(prompt).await
            }
            .await;
            report(result, json)
        }
        Command::Serve {
            ref listen,
            insecure,
        } => serve::run(&cli, listen, insecure, false).await,
        Command::Dev { ref listen } => serve::run(&cli, listen, false, true).await,
        Command::HashKey { ref key } => {
            println!("{}", crate::server::auth::hash_key(key));
            Ok(())
        }
        Command::Inspect {
            ref agent,
            ref id,
            no_build,
        } => {
            let host = open_host(&cli, no_build).await?;
            let config = host
                .init_agent(agent, id)
                .await
                .map_err(|e| e.to_string())?
                .config()
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&config).expect("configs serialize")
            );
            Ok(())
        }
    }
}

/// Builds the agent crates (unless told not to) and starts a host on the project.
async fn open_host(cli: &Cli, no_build: bool) -> Result<Host, String> {
    let mut options = HostOptions::for_project(&cli.project)?;
    if let Some(dir) = &cli.data_dir {
        options.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database_url {
        options.database_url = Some(url.clone());
    }
    if !no_build {
        build::build_agents(&options.agents_dir)?;
    }
    let host = Host::open(options).await.map_err(|e| e.to_string())?;
    for problem in host.load_problems() {
        eprintln!(
            "warning: skipped {}: {}",
            problem.file.display(),
            problem.reason
        );
    }
    Ok(host)
}

/// Prints a prompt's outcome: the text, or with `json` the wire envelope.
fn report(result: Result<crate::PromptResult, Error>, json: bool) -> Result<(), String> {
    match (result, json) {
        (Ok(r), false) => {
            println!("{}", r.text);
            Ok(())
        }
        (Ok(r), true) => {
            println!("{}", serde_json::json!({ "result": r.to_wire() }));
            Ok(())
        }
        (Err(e), true) => {
            println!("{}", e.to_wire().1);
            Err(e.to_string())
        }
        (Err(e), false) => Err(e.to_string()),
    }
}
