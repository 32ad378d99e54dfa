//! A test agent whose configuration depends on the name it is loaded under, so one
//! component exercises skills, subagents, compaction and each kind of sandbox.

use flue_sdk::prelude::*;

fn build(ctx: &CreateContext) -> AgentConfig {
    let base = AgentConfig::new("anthropic/claude-haiku-4-5");
    match ctx.agent.as_str() {
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
        _ => base.instructions("No sandbox."),
    }
}

flue_sdk::export_agent!(build);
