//! Subagents: the model delegates with the `task` tool; the helper answers in a child
//! session of its own, reported by `task_start`/`task_end`, and its answer is the
//! tool's result. A helper is defined inline or is another registered agent.

use super::Event;
use super::conversation::Conversation;
use super::persona::Persona;
use crate::Error;
use crate::agent_config::Subagent;
use crate::models::{ToolCall, Usage};
use crate::registry::{in_namespace_of, valid_name};
use crate::store::{InstanceKey, SessionKey};

impl Conversation<'_, '_> {
    /// Runs a `task` call in a child conversation. A helper that fails gives the model
    /// an error result; the parent conversation carries on.
    pub(super) async fn run_task(
        &mut self,
        call: &ToolCall,
    ) -> Result<(Result<String, String>, Usage), Error> {
        let args = &call.arguments;
        let (Some(name), Some(prompt)) = (args["subagent"].as_str(), args["prompt"].as_str())
        else {
            return Ok((
                Err("task needs string arguments 'subagent' and 'prompt'".into()),
                Usage::default(),
            ));
        };
        let Some(helper) = self
            .persona
            .subagents
            .iter()
            .find(|h| h.name == name)
            .cloned()
        else {
            let names: Vec<&str> = self
                .persona
                .subagents
                .iter()
                .map(|h| h.name.as_str())
                .collect();
            return Ok((
                Err(format!(
                    "there is no helper '{name}' (helpers: {})",
                    names.join(", ")
                )),
                Usage::default(),
            ));
        };
        let session = format!("{}/task/{}/{}", self.key.session, helper.name, call.id);
        self.emit(Event::TaskStart {
            task_id: call.id.clone(),
            subagent: helper.name.clone(),
            session: session.clone(),
            parent_session: self.key.session.clone(),
            prompt: prompt.to_string(),
        });
        let outcome = match &helper.agent {
            Some(agent) => self.run_agent_helper(&helper, agent, session, prompt).await,
            None => {
                let persona = Persona::of_helper(&helper, &self.persona);
                self.child(session, persona).run(prompt.to_string()).await
            }
        };
        let (result, usage) = match outcome {
            Ok(done) => (Ok(done.text), done.usage),
            Err(e) => (
                Err(format!("the helper '{name}' failed: {e}")),
                Usage::default(),
            ),
        };
        let (text, is_error) = match &result {
            Ok(text) => (text.clone(), false),
            Err(text) => (text.clone(), true),
        };
        self.emit(Event::TaskEnd {
            task_id: call.id.clone(),
            subagent: helper.name.clone(),
            is_error,
            result: text,
        });
        Ok((result, usage))
    }

    /// A helper played by another registered agent: its instance of the same id,
    /// a child session there, and that agent's own sandbox.
    async fn run_agent_helper(
        &mut self,
        helper: &Subagent,
        agent: &str,
        session: String,
        prompt: &str,
    ) -> Result<super::PromptResult, Error> {
        let shared = self.shared;
        if !valid_name(agent) {
            return Err(Error::InvalidRequest(format!(
                "helper agent '{agent}' is not an agent name"
            )));
        }
        let agent = &in_namespace_of(&self.key.instance.agent, agent);
        let key = SessionKey {
            instance: InstanceKey {
                agent: agent.clone(),
                id: self.key.instance.id.clone(),
            },
            session,
        };
        let (config, version) = shared.instance_config(&key.instance).await?;
        let mut persona = Persona::of_agent(&config, agent, helper.model.as_deref())?;
        persona.thinking = helper.thinking_level.or(persona.thinking);
        persona.model_by_caller = false;
        shared
            .converse(
                &key,
                (config, version),
                persona,
                self.depth + 1,
                None,
                prompt,
            )
            .await
    }
}
