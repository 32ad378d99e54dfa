//! Who answers in a conversation: an agent's persona, or an inline helper's.

use crate::Error;
use crate::agent_config::{AgentConfig, Skill, Subagent, ThinkingLevel, ToolDef};
use crate::models::ModelError;

/// Who answers in a conversation: a model, its instructions, and what it may use.
pub(super) struct Persona {
    pub model: String,
    /// Whether `model` is the caller's override rather than the agent's own choice:
    /// whom a model name that names no model blames.
    pub model_by_caller: bool,
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
        let model_by_caller = model.is_some();
        let model = model
            .or(config.model.as_deref())
            .ok_or_else(|| Error::Config {
                agent: agent.to_string(),
                reason: "sets no model (give one in create, or pass a model override)".into(),
            })?;
        Ok(Self {
            model: model.to_string(),
            model_by_caller,
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
            model_by_caller: helper.model.is_none() && parent.model_by_caller,
            instructions: helper.instructions.clone(),
            thinking: helper.thinking_level.or(parent.thinking),
            tools: helper.tools.clone(),
            skills: helper.skills.clone(),
            subagents: Vec::new(),
        }
    }

    /// The error for a model that cannot be resolved: a model name that names no model
    /// is the caller's mistake when the caller chose it, else the agent configuration's
    /// (`agent_error`, not `invalid_request`).
    pub(super) fn model_error(&self, agent: &str, error: ModelError) -> Error {
        let names_no_model = matches!(
            error,
            ModelError::BadModelName(_)
                | ModelError::UnknownProvider(_)
                | ModelError::UnknownModel(_)
        );
        match names_no_model && !self.model_by_caller {
            true => Error::Config {
                agent: agent.to_string(),
                reason: format!("its model cannot be used: {error}"),
            },
            false => Error::Model(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn a_model_that_names_no_model_blames_whoever_chose_it() {
        let config: AgentConfig = serde_json::from_value(serde_json::json!({
            "model": "nope/x", "tools": [], "skills": [], "subagents": []
        }))
        .unwrap();
        let unknown = || ModelError::UnknownProvider("nope".into());
        let own = Persona::of_agent(&config, "a", None).unwrap();
        assert_eq!(own.model_error("a", unknown()).kind(), ErrorKind::Agent);
        let chosen = Persona::of_agent(&config, "a", Some("nope/y")).unwrap();
        assert_eq!(
            chosen.model_error("a", unknown()).kind(),
            ErrorKind::InvalidRequest
        );
        let busy = ModelError::Local("the worker stopped".into());
        assert_eq!(
            own.model_error("a", busy).kind(),
            ErrorKind::ModelUnavailable
        );
    }
}
