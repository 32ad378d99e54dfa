//! A test workflow: asks `support_assistant` about the ticket in the payload, then a
//! second session about the first answer, and returns both. `{"fail": true}` fails;
//! `{"slow": true}` asks a question the test's model takes long to answer.

use flue_sdk::prelude::*;
use flue_sdk::prompt_agent;

fn run(payload: Value) -> Result<Value, String> {
    if payload["fail"] == true {
        return Err("asked to fail".into());
    }
    let ticket = payload["ticket"]
        .as_str()
        .ok_or("the payload needs a ticket")?;
    if payload["slow"] == true {
        return prompt_agent("support_assistant", ticket, "triage", "slow question")
            .map(Value::String)
            .map_err(String::from);
    }
    let first = prompt_agent("support_assistant", ticket, "triage", "What is the status?")?;
    let second = prompt_agent(
        "support_assistant",
        ticket,
        "notes",
        &format!("Summarize: {first}"),
    )?;
    Ok(json!({"status": first, "summary": second}))
}

flue_sdk::export_workflow!(run);
