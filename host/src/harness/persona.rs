//! Who answers in a conversation: an agent's persona, or an inline helper's.

use crate::Error;
use crate::agent_config::{AgentConfig, Skill, Subagent, ThinkingLevel, ToolDef};

/// Who answers in a conversation: a model, its instructions, and what it may use.
pub(super) struct Persona {
    pub model: String,
    pub instructions: Option<String>,
    pub thinking: Option<ThinkingLevel>,
    pub tools: Vec<ToolDef>,
    pub skills: Vec<Skill>,
    pub subagents: Vec<Subagent>,
}

impl Persona {
    /// An agent's own persona; `model` replaces the agent's model when given.
    pub(super) fn of_agent(
        config: &AgentConfig,
        agent: &str,
        model: Option<&str>,
    ) -> Result<Self, Error> {
        let model = model
            .or(config.model.as_deref())
            .ok_or_else(|| Error::Config {
                agent: agent.to_string(),
                reason: "sets no model (give one in create, or pass a model override)".into(),
            })?;
        Ok(Self {
            model: model.to_string(),
            instructions: config.instructions.clone(),
            thinking: config.thinking_level,
            tools: config.tools.clone(),
            skills: config.skills.clone(),
            subagents: config.subagents.clone(),
        })
    }

    /// A helper defined inline by its parent; it answers with the parent's model and
    /// thinking level unless it names its own.
    pub(super) fn of_helper(helper: &Subagent, parent: &Persona) -> Self {
        Self {
            model: helper.model.clone().unwrap_or_else(|| parent.model.clone()),
            instructions: helper.instructions.clone(),
            thinking: helper.thinking_level.or(parent.thinking),
            tools: helper.tools.clone(),
            skills: helper.skills.clone(),
            subagents: Vec::new(),
        }
    }
}
