//! The delegation example: a coordinator that hands work to helpers through the
//! `task` tool — an inline `summarizer`, and the registered `reviewer` agent.

use flue_sdk::prelude::*;

fn build(_ctx: &CreateContext) -> AgentConfig {
    AgentConfig::new("anthropic/claude-haiku-4-5")
        .instructions(
            "You coordinate a release. Ask the reviewer to review the code, ask the \
             summarizer to turn its findings into release notes, and report both.",
        )
        .subagent(
            Subagent::new(
                "summarizer",
                "Turns review findings into short release notes.",
            )
            .instructions("Write release notes: at most five bullet points, plain words."),
        )
        .subagent(
            Subagent::new("reviewer", "Reviews the code in the repository.").agent("reviewer"),
        )
}

flue_sdk::export_agent!(build);
