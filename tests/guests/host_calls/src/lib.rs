//! A test agent whose tools use the host imports: durable state, session history,
//! guest-side model calls and logging. Instances whose id starts with `ephemeral` say
//! `persist = false`.

use flue_sdk::prelude::*;

fn text(args: &Value, key: &str) -> String {
    args[key].as_str().unwrap_or_default().to_string()
}

fn build(ctx: &CreateContext) -> AgentConfig {
    AgentConfig::new("anthropic/claude-haiku-4-5")
        .instructions("A test agent.")
        .persist(!ctx.id.starts_with("ephemeral"))
        .tool(Tool::new("remember", "Store a value.").handler(|args| {
            host::state_set(&text(&args, "key"), &text(&args, "value"))?;
            host::info("stored a value");
            Ok("stored".into())
        }))
        .tool(Tool::new("recall", "Read a stored value.").handler(|args| {
            Ok(host::state_get(&text(&args, "key"))?.unwrap_or_else(|| "nothing".into()))
        }))
        .tool(Tool::new("ask", "Ask the model.").handler(|args| {
            let answer = host::complete(&text(&args, "question"), Some("Answer briefly."), None)?;
            Ok(answer.text)
        }))
        .tool(
            Tool::new("history", "Count a session's messages.")
                .handler(|args| Ok(host::history(&text(&args, "session"))?.len().to_string())),
        )
}

flue_sdk::export_agent!(build);
