//! A test agent whose configuration depends on the name it is loaded under (without
//! its tenant), so one component exercises skills, subagents, compaction, each kind of
//! sandbox, and the values `flue.toml` hands to `create`.

use flue_sdk::prelude::*;

fn build(ctx: &CreateContext) -> AgentConfig {
    let base = AgentConfig::new("anthropic/claude-haiku-4-5");
    let name = ctx.agent.rsplit('/').next().unwrap_or_default();
    match name {
        "skilled" => base
            .instructions("Use your skills.")
            .skill("greeting", "How to greet someone.", "Say hello warmly.")
            .skill_ref("code-review"),
        "delegator" => base
            .instructions("Delegate research.")
            .subagent(
                Subagent::new("researcher", "Finds facts.")
                    .instructions("You research facts.")
                    .tool(Tool::new("lookup", "Look a fact up.").handler(|_| Ok("fact-42".into()))),
            )
            .subagent(Subagent::new("nested", "Another delegator.").agent("delegator")),
        "compacting" => base
            .instructions("Chat.")
            .compaction(Compaction::at(400, 1)),
        "virtual_fs" => base
            .instructions("Work with files.")
            .sandbox(Sandbox::Virtual)
            .cwd("/workspace"),
        "local_fs" => base
            .instructions("Work in the repository.")
            .sandbox(Sandbox::Local)
            .cwd("repo"),
        "env_echo" => {
            let mut env: Vec<String> = ctx.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            env.sort();
            base.instructions(format!("env: {}", env.join(" ")))
        }
        _ => base.instructions("No sandbox."),
    }
}

flue_sdk::export_agent!(build);
