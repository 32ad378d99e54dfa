//! A test agent that decides who may reach its instances: ids `public-*` are open to
//! everyone; `<team>-*` only to callers whose key carries the claim `team = "<team>"`;
//! the key named `ops` reaches every id; `boom` panics while deciding.

use flue_sdk::prelude::*;

fn build(ctx: &CreateContext) -> AgentConfig {
    AgentConfig::new("anthropic/claude-haiku-4-5").instructions(format!("Serve {}.", ctx.id))
}

fn authorize(caller: &Caller, id: &str) -> bool {
    if id == "boom" {
        panic!("cannot decide about {id}");
    }
    let team = caller.claims.get("team").map(String::as_str);
    id.starts_with("public-")
        || caller.key.as_deref() == Some("ops")
        || team.is_some_and(|team| id.starts_with(&format!("{team}-")))
}

flue_sdk::export_agent!(build, authorize = authorize);
