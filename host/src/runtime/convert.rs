//! From the WIT records a guest returns to the host's own configuration types,
//! checking what WIT cannot (tool schemas must be JSON objects).

use super::bindings::flue::agent::types as wit;
use crate::agent_config as cfg;

/// Converts `create`'s answer; an error names the offending field.
pub(super) fn agent_config(c: wit::AgentConfig) -> Result<cfg::AgentConfig, String> {
    Ok(cfg::AgentConfig {
        profile: c.profile.map(profile).transpose()?,
        model: c.model,
        instructions: c.instructions,
        thinking_level: c.thinking_level.map(thinking),
        tools: tools(c.tools)?,
        skills: c.skills.into_iter().map(skill).collect(),
        subagents: c
            .subagents
            .into_iter()
            .map(subagent)
            .collect::<Result<_, _>>()?,
        compaction: c.compaction.map(|c| cfg::Compaction {
            enabled: c.enabled,
            max_tokens: c.max_tokens,
            keep_recent: c.keep_recent,
        }),
        sandbox: c.sandbox.map(|s| match s {
            wit::Sandbox::None => cfg::Sandbox::None,
            wit::Sandbox::Virtual => cfg::Sandbox::Virtual,
            wit::Sandbox::Local => cfg::Sandbox::Local,
        }),
        cwd: c.cwd,
        persist: c.persist,
    })
}

fn profile(p: wit::Profile) -> Result<cfg::Profile, String> {
    Ok(cfg::Profile {
        name: p.name,
        model: p.model,
        instructions: p.instructions,
        thinking_level: p.thinking_level.map(thinking),
        tools: tools(p.tools)?,
        skills: p.skills.into_iter().map(skill).collect(),
        subagents: p
            .subagents
            .into_iter()
            .map(subagent)
            .collect::<Result<_, _>>()?,
    })
}

fn subagent(s: wit::Subagent) -> Result<cfg::Subagent, String> {
    Ok(cfg::Subagent {
        name: s.name,
        description: s.description,
        agent: s.agent,
        model: s.model,
        instructions: s.instructions,
        thinking_level: s.thinking_level.map(thinking),
        tools: tools(s.tools)?,
        skills: s.skills.into_iter().map(skill).collect(),
    })
}

fn tools(defs: Vec<wit::ToolDef>) -> Result<Vec<cfg::ToolDef>, String> {
    defs.into_iter()
        .map(|t| {
            let parameters: serde_json::Value = serde_json::from_str(&t.parameters)
                .map_err(|e| format!("tool '{}' has parameters that are not JSON: {e}", t.name))?;
            if !parameters.is_object() {
                return Err(format!(
                    "tool '{}' has parameters that are not a JSON Schema object",
                    t.name
                ));
            }
            Ok(cfg::ToolDef {
                name: t.name,
                description: t.description,
                parameters,
            })
        })
        .collect()
}

fn skill(s: wit::Skill) -> cfg::Skill {
    cfg::Skill {
        name: s.name,
        description: s.description,
        body: s.body,
    }
}

fn thinking(t: wit::ThinkingLevel) -> cfg::ThinkingLevel {
    match t {
        wit::ThinkingLevel::Off => cfg::ThinkingLevel::Off,
        wit::ThinkingLevel::Minimal => cfg::ThinkingLevel::Minimal,
        wit::ThinkingLevel::Low => cfg::ThinkingLevel::Low,
        wit::ThinkingLevel::Medium => cfg::ThinkingLevel::Medium,
        wit::ThinkingLevel::High => cfg::ThinkingLevel::High,
    }
}

/// A stored message as the guest's `session.history` gives it.
pub(super) fn message(m: crate::models::Message) -> wit::Message {
    use crate::models::Message;
    match m {
        Message::User { content } => wit::Message::User(content),
        Message::Assistant {
            content,
            tool_calls,
            ..
        } => wit::Message::Assistant(wit::AssistantTurn {
            text: content,
            tool_calls: tool_calls
                .into_iter()
                .map(|call| wit::ToolCall {
                    id: call.id,
                    name: call.name,
                    arguments: call.arguments.to_string(),
                })
                .collect(),
        }),
        Message::Tool {
            tool_call_id,
            name,
            content,
            is_error,
        } => wit::Message::Tool(wit::ToolResult {
            tool_call_id,
            name,
            content,
            is_error,
        }),
        Message::Summary { content, .. } => wit::Message::Summary(content),
    }
}

/// The host's description of a caller as the guest's `authorize` takes it.
pub(super) fn caller(identity: &crate::Identity) -> wit::Caller {
    wit::Caller {
        tenant: identity.tenant.clone(),
        key: identity.key.clone(),
        claims: identity
            .claims
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
