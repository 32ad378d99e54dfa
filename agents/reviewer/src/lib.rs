//! The code-review example: a shared profile, a `local` sandbox bound to the folder
//! under review, and the `code-review` skill from the project's `skills/` folder.
//!
//! The folder is `env.REPO` from `flue.toml` (default: the project folder), and the
//! host must allow it under `[agents.reviewer] local_dirs`.

use flue_sdk::prelude::*;

/// The reviewer's persona, shared by the agent and its second-opinion helper.
fn careful_reviewer() -> Profile {
    Profile::new("careful-reviewer")
        .model("anthropic/claude-sonnet-4-5")
        .instructions(
            "You review code changes. Read the code before you judge it, cite file and \
             line for every finding, and separate blocking issues from suggestions.",
        )
        .thinking_level(ThinkingLevel::Medium)
        .skill_ref("code-review")
}

fn build(ctx: &CreateContext) -> AgentConfig {
    AgentConfig::from_profile(careful_reviewer())
        .sandbox(Sandbox::Local)
        .cwd(ctx.env("REPO").unwrap_or("."))
        .subagent(
            Subagent::new(
                "second_opinion",
                "An independent reviewer for a finding you are unsure about.",
            )
            .profile(&careful_reviewer())
            .model("anthropic/claude-haiku-4-5"),
        )
}

flue_sdk::export_agent!(build);
