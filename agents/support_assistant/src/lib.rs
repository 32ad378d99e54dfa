//! The support-ticket example: one instance per ticket, its id scoping both the
//! instructions and the `ticket_status` tool.

use flue_sdk::prelude::*;

fn build(ctx: &CreateContext) -> AgentConfig {
    let ticket = ctx.id.clone();
    AgentConfig::new("anthropic/claude-haiku-4-5")
        .instructions(format!(
            "You are a support assistant for ticket {ticket}. Answer only about this ticket; \
             call ticket_status before you state its status."
        ))
        .tool(
            Tool::new(
                "ticket_status",
                "Return the status of the current support ticket.",
            )
            .parameters(json!({
                "type": "object",
                "properties": {
                    "detail": {"type": "boolean", "description": "Include the last update."}
                }
            }))
            .handler(move |args| {
                let mut status = format!("Ticket {ticket}: open, assigned to billing");
                if args["detail"].as_bool() == Some(true) {
                    status.push_str("; last update: refund approved, pending payout");
                }
                Ok(status)
            }),
        )
}

flue_sdk::export_agent!(build);
