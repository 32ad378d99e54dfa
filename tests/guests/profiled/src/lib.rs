//! A test agent on a shared profile: the config replaces the instructions and the
//! `clash` tool, adds `own`, and inherits the rest.

use flue_sdk::prelude::*;

fn base() -> Profile {
    Profile::new("base")
        .model("openai/o4-mini")
        .instructions("profile instructions")
        .thinking_level(ThinkingLevel::High)
        .tool(Tool::new("shared", "From the profile.").handler(|_| Ok("shared".into())))
        .tool(Tool::new("clash", "Profile version.").handler(|_| Ok("profile clash".into())))
        .skill("style", "How to write answers.", "Be brief.")
}

fn build(_ctx: &CreateContext) -> AgentConfig {
    AgentConfig::from_profile(base())
        .instructions("config instructions")
        .tool(Tool::new("clash", "Config version.").handler(|_| Ok("config clash".into())))
        .tool(Tool::new("own", "Config only.").handler(|_| Ok("own".into())))
}

flue_sdk::export_agent!(build);
