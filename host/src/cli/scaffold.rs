//! `flue new`: a new agent crate that builds as it is, on any machine with `flue` and a
//! Rust toolchain. The SDK it depends on ships inside this binary: a project without
//! its own `guest-sdk/` gets a copy (with the WIT contract in `wit/`) on its first
//! `flue new`.

use std::path::Path;

use crate::registry::valid_name;

/// The SDK's sources and the WIT contract it is generated from, as `(path in the
/// project, contents)`. The SDK's `generate!` reads `../wit` from its own folder.
const SDK_FILES: &[(&str, &str)] = &[
    (
        "guest-sdk/src/lib.rs",
        include_str!("../../../guest-sdk/src/lib.rs"),
    ),
    (
        "guest-sdk/src/config.rs",
        include_str!("../../../guest-sdk/src/config.rs"),
    ),
    (
        "guest-sdk/src/host.rs",
        include_str!("../../../guest-sdk/src/host.rs"),
    ),
    (
        "guest-sdk/src/tool.rs",
        include_str!("../../../guest-sdk/src/tool.rs"),
    ),
    ("wit/agent.wit", include_str!("../../../wit/agent.wit")),
];

/// The SDK's manifest outside this repository's workspace: the workspace's versions of
/// its dependencies, written out (a unit test keeps them in step).
const SDK_MANIFEST: &str = r#"[package]
name = "flue-sdk"
description = "Write Flue agents in Rust and compile them to WebAssembly components."
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
serde_json = "1"
wit-bindgen = "0.61"
"#;

/// Writes `agents/<name>/` (or `agents/<tenant>/<name>/` for `tenant/name`) with
/// `Cargo.toml` and `src/lib.rs`, and the SDK into the project if it has none; for a
/// name ending in `.py`, `.ts` or `.js`, the one agent file instead (its SDK ships in
/// `flue`). `tenants` are `flue.toml`'s, to warn about a folder no tenant owns.
pub(super) fn new_agent(project: &Path, name: &str, tenants: &[String]) -> Result<(), String> {
    let (name, template) = match name.rsplit_once('.') {
        Some((stem, extension)) => match FILE_TEMPLATES.iter().find(|(x, _)| *x == extension) {
            Some(&(extension, template)) => (stem, Some((extension, template))),
            None => {
                return Err(format!(
                    "'{name}': an agent file ends in .py, .ts or .js; a crate's name has no extension"
                ));
            }
        },
        None => (name, None),
    };
    let parts: Vec<&str> = name.split('/').collect();
    let (tenant, agent) = match parts.as_slice() {
        [agent] => (None, *agent),
        [tenant, agent] if valid_name(tenant) => (Some(*tenant), *agent),
        _ => {
            return Err(format!(
                "'{name}' cannot name an agent: use <name> or <tenant>/<name>"
            ));
        }
    };
    if !valid_name(agent) || agent.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        return Err(format!(
            "'{agent}' cannot name an agent: use letters, digits, '_' and '-', starting with a letter"
        ));
    }
    let agents_dir = project.join("agents");
    let dir = match tenant {
        Some(tenant) => agents_dir.join(tenant).join(agent),
        None => agents_dir.join(agent),
    };
    let taken = std::iter::once(dir.clone())
        .chain(FILE_TEMPLATES.iter().map(|(x, _)| dir.with_extension(x)))
        .find(|p| p.exists());
    if let Some(taken) = taken {
        return Err(format!(
            "{} already exists: it is agent '{agent}'",
            taken.display()
        ));
    }
    if let Some((extension, template)) = template {
        let file = dir.with_extension(extension);
        let io = |e: std::io::Error| format!("cannot write {}: {e}", file.display());
        std::fs::create_dir_all(file.parent().unwrap_or(project)).map_err(io)?;
        std::fs::write(&file, template).map_err(io)?;
        eprintln!("Created {}; build it with `flue build`.", file.display());
    } else {
        write_sdk(project)?;
        let sdk = "../".repeat(parts.len() + 1) + "guest-sdk";
        let io = |e: std::io::Error| format!("cannot write {}: {e}", dir.display());
        std::fs::create_dir_all(dir.join("src")).map_err(io)?;
        std::fs::write(dir.join("Cargo.toml"), manifest(agent, &sdk)).map_err(io)?;
        std::fs::write(dir.join("src/lib.rs"), LIB_RS).map_err(io)?;
        eprintln!("Created {}; build it with `flue build`.", dir.display());
    }
    if let Some(tenant) = tenant.filter(|t| !tenants.iter().any(|d| d == t)) {
        eprintln!(
            "note: flue.toml declares no tenant '{tenant}': add [tenants.{tenant}] so that its agents are served"
        );
    }
    Ok(())
}

/// Writes the SDK into `project/guest-sdk/` (and its WIT into `project/wit/`) unless the
/// project has a `guest-sdk/` already.
fn write_sdk(project: &Path) -> Result<(), String> {
    if project.join("guest-sdk/Cargo.toml").is_file() {
        return Ok(());
    }
    let files = SDK_FILES
        .iter()
        .copied()
        .chain([("guest-sdk/Cargo.toml", SDK_MANIFEST)]);
    for (path, contents) in files {
        let path = project.join(path);
        let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        std::fs::create_dir_all(path.parent().unwrap_or(project)).map_err(io)?;
        std::fs::write(&path, contents).map_err(io)?;
    }
    eprintln!(
        "Wrote the agent SDK to {}",
        project.join("guest-sdk").display()
    );
    Ok(())
}

/// A crate of its own (`[workspace]`), wherever the project lies, so that a folder of
/// the project holding no crate (a tenant's) breaks no build.
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

[workspace]
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

/// Agent files by extension: a Python (PyFlue) module, a TypeScript and a JavaScript
/// (Flue) module.
const FILE_TEMPLATES: &[(&str, &str)] = &[("py", PY_AGENT), ("ts", TS_AGENT), ("js", JS_AGENT)];

const PY_AGENT: &str = r#""""An agent. `flue build` compiles it to a WebAssembly component."""

from flue import create_agent, define_tool


def build(ctx):
    return {
        "model": "anthropic/claude-haiku-4-5",
        "instructions": f"You are a helpful assistant for {ctx.id}.",
        "tools": [
            define_tool(
                "echo",
                lambda args: args["text"],
                description="Repeat the given text.",
                parameters={
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                },
            )
        ],
    }


default = create_agent(build)
"#;

const TS_AGENT: &str = r#"// An agent. `flue build` compiles it to a WebAssembly component.
import { createAgent, defineTool, Type } from '@flue/runtime';

export default createAgent(({ id }: { id: string }) => ({
  model: 'anthropic/claude-haiku-4-5',
  instructions: `You are a helpful assistant for ${id}.`,
  tools: [
    defineTool({
      name: 'echo',
      description: 'Repeat the given text.',
      parameters: Type.Object({ text: Type.String() }),
      execute: async ({ text }: { text: string }) => text,
    }),
  ],
}));
"#;

const JS_AGENT: &str = r#"// An agent. `flue build` compiles it to a WebAssembly component.
import { createAgent, defineTool } from '@flue/runtime';

export default createAgent(({ id }) => ({
  model: 'anthropic/claude-haiku-4-5',
  instructions: `You are a helpful assistant for ${id}.`,
  tools: [
    defineTool({
      name: 'echo',
      description: 'Repeat the given text.',
      parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
      execute: async ({ text }) => text,
    }),
  ],
}));
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped SDK manifest asks for the versions this workspace builds the SDK with.
    #[test]
    fn the_shipped_sdk_manifest_matches_the_workspace() {
        let workspace: toml::Table = toml::from_str(include_str!("../../../Cargo.toml")).unwrap();
        let shipped: toml::Table = toml::from_str(SDK_MANIFEST).unwrap();
        let sdk: toml::Table =
            toml::from_str(include_str!("../../../guest-sdk/Cargo.toml")).unwrap();
        let versions = &workspace["workspace"]["dependencies"];
        let deps = sdk["dependencies"].as_table().unwrap();
        assert_eq!(
            deps.len(),
            shipped["dependencies"].as_table().unwrap().len()
        );
        for name in deps.keys() {
            assert_eq!(shipped["dependencies"][name], versions[name], "{name}");
        }
        assert_eq!(
            shipped["package"]["version"],
            workspace["workspace"]["package"]["version"]
        );
        let sources = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk/src"))
            .unwrap()
            .count();
        let shipped_sources = SDK_FILES
            .iter()
            .filter(|(p, _)| p.starts_with("guest-sdk/"))
            .count();
        assert_eq!(sources, shipped_sources, "every SDK source file ships");
    }

    #[test]
    fn a_new_agent_builds_outside_this_repository() {
        let project = std::env::temp_dir().join(format!("flue-new-{}", std::process::id()));
        std::fs::create_dir_all(&project).unwrap();
        new_agent(&project, "acme/support", &["acme".into()]).unwrap();
        let manifest =
            std::fs::read_to_string(project.join("agents/acme/support/Cargo.toml")).unwrap();
        assert!(
            manifest.contains(r#"path = "../../../guest-sdk""#),
            "{manifest}"
        );
        assert!(!manifest.contains(env!("CARGO_MANIFEST_DIR")), "{manifest}");
        assert!(project.join("guest-sdk/src/lib.rs").is_file());
        assert!(project.join("wit/agent.wit").is_file());
        assert!(new_agent(&project, "acme/support", &[]).is_err(), "exists");
        assert!(new_agent(&project, "a/b/c", &[]).is_err());
        assert!(new_agent(&project, "9lives", &[]).is_err());
        std::fs::remove_dir_all(project).unwrap();
    }
}
