//! One conversation: a session's history, a persona that answers in it, and the model ↔
//! tool loop, with compaction before each model call. Subagent tasks run as child
//! conversations of the same kind.

use std::sync::Arc;

use super::compaction::{self, Policy};
use super::{Event, MAX_OUTPUT_TOKENS, PromptResult, Shared, arguments, skills, tasks};
use crate::Error;
use crate::agent_config::{AgentConfig, Skill, Subagent, ThinkingLevel, ToolDef};
use crate::models::{
    BoxFuture, Message, ModelRef, ModelRequest, Provider, StreamEvent, ToolCall, ToolSpec, Usage,
};
use crate::registry::AgentVersion;
use crate::runtime::GuestError;
use crate::store::SessionKey;
use crate::tools::{FETCH_TOOL, Fetch, Sandbox};

/// Who answers in a conversation: a model, its instructions, and what it may use.
pub struct Persona {
    pub model: String,
    pub instructions: Option<String>,
    pub thinking: Option<ThinkingLevel>,
    pub tools: Vec<ToolDef>,
    pub skills: Vec<Skill>,
    pub subagents: Vec<Subagent>,
}

impl Persona {
    /// An agent's own persona; `model` replaces the agent's model when given.
    pub fn of_agent(config: &AgentConfig, agent: &str, model: Option<&str>) -> Result<Self, Error> {
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
    pub fn of_helper(helper: &Subagent, parent: &Persona) -> Self {
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

/// A running conversation in one session. Guest tools run in the session's instance.
pub struct Conversation<'a, 'e> {
    pub shared: &'a Arc<Shared>,
    pub key: SessionKey,
    /// The agent version the conversation started on; its tools run there.
    pub version: Arc<AgentVersion>,
    /// The configuration of the session's instance: its store and compaction settings.
    pub config: Arc<AgentConfig>,
    pub persona: Persona,
    pub sandbox: Option<&'a mut Sandbox>,
    /// The `fetch` tool, if the agent may reach any host.
    pub fetch: Option<Arc<Fetch>>,
    /// How many tasks deep this conversation is (0 for a prompt).
    pub depth: u32,
    pub events: Option<&'a mut (dyn FnMut(Event) + Send + 'e)>,
}

impl Conversation<'_, '_> {
    /// Answers `message`: model calls and tool rounds until the model stops calling
    /// tools; the new messages are then stored.
    pub fn run(&mut self, message: String) -> BoxFuture<'_, Result<PromptResult, Error>> {
        Box::pin(self.answer(message))
    }

    async fn answer(&mut self, message: String) -> Result<PromptResult, Error> {
        let shared = self.shared;
        let store = shared.store_for(&self.config);
        let (model_ref, provider) = shared.providers.resolve(&self.persona.model)?;
        let mut request = ModelRequest {
            model: model_ref.model.clone(),
            system: skills::instructions(
                self.persona.instructions.as_deref(),
                &self.persona.skills,
            ),
            thinking: self.persona.thinking,
            messages: compaction::view(store.history(&self.key).await?),
            tools: self.tool_specs(),
            max_tokens: MAX_OUTPUT_TOKENS,
        };
        // The first `stored` messages of the request are already in the store.
        let mut stored = request.messages.len();
        request.messages.push(Message::User { content: message });
        let outcome = self
            .rounds(&model_ref, provider.as_ref(), &mut request, &mut stored)
            .await;
        // A turn that failed keeps the user's message and the rounds it completed.
        let new = &request.messages[stored..];
        let keep = match &outcome {
            Ok(_) => new.len(),
            Err(_) => complete_rounds(new),
        };
        let saved = store.append(&self.key, &new[..keep]).await;
        match (outcome, saved) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
            (Ok(done), Ok(())) => Ok(done),
        }
    }

    /// Model calls and tool rounds until the model answers without calling a tool; the
    /// messages they add are pushed onto `request`.
    async fn rounds(
        &mut self,
        model_ref: &ModelRef,
        provider: &dyn Provider,
        request: &mut ModelRequest,
        stored: &mut usize,
    ) -> Result<PromptResult, Error> {
        let shared = self.shared;
        let agent = self.key.instance.agent.clone();
        let model_name = model_ref.to_string();
        let policy = Policy::of(&self.config, model_ref);
        let mut usage = Usage::default();
        let max_rounds = shared
            .policies
            .max_tool_rounds(&agent, shared.options.config.max_tool_rounds());
        for round in 0..=max_rounds {
            if let Some(policy) = &policy {
                usage.add(
                    self.compact(policy, provider, &model_name, request, stored)
                        .await?,
                );
            }
            let events = self.events.as_deref_mut();
            let call = async {
                match events {
                    Some(sink) => {
                        let mut forward = |e: StreamEvent| match e {
                            StreamEvent::TextDelta(text) => sink(Event::TextDelta { text }),
                        };
                        provider.stream(request, &mut forward).await
                    }
                    None => provider.complete(request).await,
                }
            };
            let answer = shared.policies.metered(&agent, &model_name, call).await?;
            usage.add(answer.usage);
            request.messages.push(answer.to_message());
            if answer.tool_calls.is_empty() {
                return Ok(PromptResult {
                    text: answer.text,
                    usage,
                    model: model_name,
                });
            }
            if round == max_rounds {
                break;
            }
            for call in &answer.tool_calls {
                let (result, spent) = self.run_tool(call).await?;
                usage.add(spent);
                request.messages.push(result);
            }
        }
        Err(Error::LimitExceeded {
            limit: "max_tool_rounds".into(),
            message: format!(
                "the model asked for tools in more than {max_rounds} rounds; stopping"
            ),
            retry_after: None,
        })
    }

    /// Summarizes the older turns when the request has grown past the threshold: the
    /// summary is stored and replaces them in the request. Returns the tokens it used.
    async fn compact(
        &mut self,
        policy: &Policy,
        provider: &dyn Provider,
        model_name: &str,
        request: &mut ModelRequest,
        stored: &mut usize,
    ) -> Result<Usage, Error> {
        let before = compaction::estimate_tokens(request);
        if before <= policy.threshold {
            return Ok(Usage::default());
        }
        let Some(cut) = policy.cut(&request.messages, *stored) else {
            return Ok(Usage::default());
        };
        let summary_request = compaction::summary_request(&request.model, &request.messages[..cut]);
        let summary = self
            .shared
            .policies
            .metered(
                &self.key.instance.agent,
                model_name,
                provider.complete(&summary_request),
            )
            .await?;
        let marker = Message::Summary {
            content: summary.text,
            kept: (*stored - cut) as u32,
        };
        self.shared
            .store_for(&self.config)
            .append(&self.key, std::slice::from_ref(&marker))
            .await?;
        request.messages.splice(..cut, [marker]);
        *stored = *stored - cut + 1;
        self.emit(Event::Compacted {
            tokens_before: before,
            tokens_after: compaction::estimate_tokens(request),
        });
        Ok(summary.usage)
    }

    /// The tools the model is offered, each name once: the agent's own, `skill`,
    /// `task`, then the sandbox's built-ins and `fetch`.
    fn tool_specs(&self) -> Vec<ToolSpec> {
        let mut specs: Vec<ToolSpec> = self
            .persona
            .tools
            .iter()
            .map(|t| ToolSpec {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.parameters.clone(),
            })
            .collect();
        if !self.persona.skills.is_empty() {
            specs.push(skills::tool(&self.persona.skills));
        }
        if self.offers_tasks() {
            specs.push(tasks::tool(&self.persona.subagents));
        }
        let fetch = self.fetch.iter().map(|f| f.spec());
        for spec in self.sandbox.iter().flat_map(|s| s.specs()).chain(fetch) {
            if !specs.iter().any(|s| s.name == spec.name) {
                specs.push(spec);
            }
        }
        specs
    }

    /// Whether the model may delegate: it has helpers and the depth bound allows it.
    pub fn offers_tasks(&self) -> bool {
        !self.persona.subagents.is_empty() && self.depth < tasks::MAX_DEPTH
    }

    /// Runs one tool call, in the order [`Self::tool_specs`] offers them, and returns
    /// the message that carries its result to the model, with the tokens it used.
    async fn run_tool(&mut self, call: &ToolCall) -> Result<(Message, Usage), Error> {
        self.emit(Event::ToolStart {
            name: call.name.clone(),
            call_id: call.id.clone(),
            args: call.arguments.clone(),
        });
        let mut spent = Usage::default();
        let outcome = if let Some(tool) = self.persona.tools.iter().find(|t| t.name == call.name) {
            match arguments::check(&tool.parameters, &call.arguments) {
                Ok(()) => {
                    let args = call.arguments.to_string();
                    let called = self
                        .shared
                        .call_guest_tool(&self.key, &self.version, &call.name, &args)
                        .await;
                    match called {
                        Ok((outcome, used)) => {
                            spent = used;
                            outcome
                        }
                        // A trap: the instance is replaced, and the model hears how its
                        // tool failed. A limit passed still fails the prompt, as policy.
                        Err(Error::Guest {
                            agent,
                            source: source @ GuestError::Trap(_),
                        }) => {
                            tracing::warn!("agent '{agent}': tool '{}': {source}", call.name);
                            Err(format!("the tool failed: {source}"))
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(misfit) => Err(misfit),
            }
        } else if call.name == skills::SKILL_TOOL && !self.persona.skills.is_empty() {
            match call.arguments["name"].as_str() {
                Some(name) => skills::body(&self.persona.skills, name).map(str::to_string),
                None => Err("missing string argument 'name'".into()),
            }
        } else if call.name == tasks::TASK_TOOL && self.offers_tasks() {
            let (outcome, used) = self.run_task(call).await?;
            spent = used;
            outcome
        } else if let Some(fetch) = self.fetch.as_ref().filter(|_| call.name == FETCH_TOOL) {
            fetch.call(&call.arguments).await
        } else {
            let builtin = match self.sandbox.as_deref_mut() {
                Some(sandbox) => sandbox.call(&call.name, &call.arguments).await,
                None => None,
            };
            builtin.unwrap_or_else(|| Err(format!("there is no tool named '{}'", call.name)))
        };
        let (content, is_error) = match outcome {
            Ok(text) => (text, false),
            Err(text) => (text, true),
        };
        self.emit(Event::ToolEnd {
            name: call.name.clone(),
            call_id: call.id.clone(),
            is_error,
            result: content.clone(),
        });
        Ok((
            Message::Tool {
                tool_call_id: call.id.clone(),
                name: call.name.clone(),
                content,
                is_error,
            },
            spent,
        ))
    }

    /// Reports an event, if anyone listens.
    pub fn emit(&mut self, event: Event) {
        if let Some(sink) = self.events.as_deref_mut() {
            sink(event);
        }
    }
}

/// How many of a failed turn's new messages (the user's, then model answers and tool
/// results) to keep: the user's message and the whole rounds; an answer whose tool calls
/// did not all get a result is cut, with the results it did get.
fn complete_rounds(new: &[Message]) -> usize {
    let last_answer = new
        .iter()
        .rposition(|m| matches!(m, Message::Assistant { .. }));
    match last_answer.map(|at| (at, &new[at])) {
        Some((at, Message::Assistant { tool_calls, .. }))
            if new.len() - at - 1 < tool_calls.len() =>
        {
            at
        }
        _ => new.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_turn_keeps_whole_rounds_only() {
        let user = Message::User {
            content: "hi".into(),
        };
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "t".into(),
            arguments: json!({}),
        };
        let asked = |calls: Vec<ToolCall>| Message::Assistant {
            content: String::new(),
            tool_calls: calls,
            reasoning: Vec::new(),
        };
        let result = |id: &str| Message::Tool {
            tool_call_id: id.into(),
            name: "t".into(),
            content: "ok".into(),
            is_error: false,
        };
        assert_eq!(complete_rounds(std::slice::from_ref(&user)), 1);
        let whole = [user.clone(), asked(vec![call("a")]), result("a")];
        assert_eq!(complete_rounds(&whole), 3);
        let mut cut = whole.to_vec();
        cut.extend([asked(vec![call("b"), call("c")]), result("b")]);
        assert_eq!(complete_rounds(&cut), 3);
    }
}
