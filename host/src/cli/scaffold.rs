//! `flue new`: a new agent crate that builds as it is.

use std::path::{Path, PathBuf};

use crate::registry::valid_name;

/// Where this binary's SDK sources are, for projects outside this repository.
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Writes `agents/<name>/Cargo.toml` and `src/lib.rs`.
pub fn new_agent(agents_dir: &Path, name: &str) -> Result<(), String> {
    if !valid_name(name) || name.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        return Err(format!(
            "'{name}' cannot name an agent: use letters, digits, '_' and '-', starting with a letter"
        ));
    }
    let dir = agents_dir.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let sdk = sdk_path(agents_dir);
    let io = |e: std::io::Error| format!("cannot write {}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("src")).map_err(io)?;
    std::fs::write(dir.join("Cargo.toml"), manifest(name, &sdk)).map_err(io)?;
    std::fs::write(dir.join("src/lib.rs"), LIB_RS).map_err(io)?;
    eprintln!("Created {}; build it with `flue build`.", dir.display());
    Ok(())
}

/// The SDK as a path dependency: the project's own `guest-sdk/` if it has one, else ours.
fn sdk_path(agents_dir: &Path) -> String {
    let local = agents_dir.join("../guest-sdk");
    let path = if local.join("Cargo.toml").is_file() {
        PathBuf::from("../../guest-sdk")
    } else {
        Path::new(SDK_DIR)
            .canonicalize()
            .unwrap_or_else(|_| PathBuf::from(SDK_DIR))
    };
    path.display().to_string()
}

fn manifest(name: &str, sdk: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
flue-sdk = {{ path = "{sdk}" }}
"#
    )
}

const LIB_RS: &str = r#"//! An agent. `flue build` compiles it to a WebAssembly component.

use flue_sdk::prelude::*;

fn build(ctx: &CreateContext) -> AgentConfig {
    let id = ctx.id.clone();
    AgentConfig::new("anthropic/claude-haiku-4-5")
        .instructions(format!("You are a helpful assistant for {id}."))
        .tool(
            Tool::new("echo", "Repeat the given text.")
                .parameters(json!({
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"]
                }))
                .handler(|args| Ok(args["text"].as_str().unwrap_or_default().to_string())),
        )
}

flue_sdk::export_agent!(build);
"#;
