//! One conversation: a session's history, a persona that answers in it, and the model ↔
//! tool loop, with compaction before each model call. Subagent tasks run as child
//! conversations of the same kind.

use std::sync::Arc;

use serde_json::Value;

use super::compaction::{self, Policy};
use super::persona::Persona;
use super::toolbox::{Tool, Toolbox};
use super::{Event, MAX_OUTPUT_TOKENS, PromptResult, Shared, arguments, skills};
use crate::agent_config::AgentConfig;
use crate::models::{
    BoxFuture, Message, ModelRef, ModelRequest, Provider, StreamEvent, ToolCall, Usage,
};
use crate::registry::AgentVersion;
use crate::runtime::GuestError;
use crate::store::SessionKey;
use crate::tools::{Fetch, Sandbox};
use crate::{Error, Limit};

/// The instance a session belongs to, as a conversation starts on it: its
/// configuration and the agent version its tools run on.
pub(super) type Instance = (Arc<AgentConfig>, Arc<AgentVersion>);

/// A running conversation in one session. Guest tools run in the session's instance.
pub(super) struct Conversation<'a, 'e> {
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

impl Shared {
    /// Answers `message` in session `key` of `instance` as `persona`, `depth` tasks
    /// deep: opens the session's sandbox, runs the conversation, and saves the sandbox
    /// whether or not the conversation succeeded.
    pub(super) async fn converse(
        self: &Arc<Self>,
        key: &SessionKey,
        (config, version): Instance,
        persona: Persona,
        depth: u32,
        mut events: Option<&mut (dyn FnMut(Event) + Send + '_)>,
        message: &str,
    ) -> Result<PromptResult, Error> {
        let mut sandbox = self.open_sandbox(key, &config).await?;
        if let Some(sink) = events.as_deref_mut() {
            sink(Event::Start {
                session: key.session.clone(),
            });
        }
        let mut conversation = Conversation {
            shared: self,
            key: key.clone(),
            version,
            config: config.clone(),
            persona,
            sandbox: sandbox.as_mut(),
            fetch: self.fetch_for(&key.instance.agent),
            depth,
            events,
        };
        let outcome = conversation.run(message.to_string()).await;
        if let Some(sandbox) = &sandbox {
            self.save_sandbox(key, &config, sandbox).await?;
        }
        outcome
    }
}

impl Conversation<'_, '_> {
    /// A helper's conversation in `session` of the same instance, one task deeper,
    /// sharing this one's sandbox; nobody listens to its events.
    pub(super) fn child(&mut self, session: String, persona: Persona) -> Conversation<'_, 'static> {
        Conversation {
            shared: self.shared,
            key: SessionKey {
                instance: self.key.instance.clone(),
                session,
            },
            version: self.version.clone(),
            config: self.config.clone(),
            persona,
            sandbox: self.sandbox.as_deref_mut(),
            fetch: self.fetch.clone(),
            depth: self.depth + 1,
            events: None,
        }
    }

    /// Answers `message`: model calls and tool rounds until the model stops calling
    /// tools; the new messages are then stored.
    pub(super) fn run(&mut self, message: String) -> BoxFuture<'_, Result<PromptResult, Error>> {
        Box::pin(self.answer(message))
    }

    async fn answer(&mut self, message: String) -> Result<PromptResult, Error> {
        let shared = self.shared;
        let store = shared.store_for(&self.config);
        let (model_ref, provider) = shared
            .providers
            .resolve(&self.persona.model)
            .map_err(|e| self.persona.model_error(&self.key.instance.agent, e))?;
        let toolbox = Toolbox::new(
            &self.persona,
            self.depth,
            self.sandbox.as_deref(),
            self.fetch.as_ref(),
        );
        let mut request = ModelRequest {
            model: model_ref.model.clone(),
            system: skills::instructions(
                self.persona.instructions.as_deref(),
                &self.persona.skills,
            ),
            thinking: self.persona.thinking,
            messages: compaction::view(store.history(&self.key).await?),
            tools: toolbox.specs(),
            max_tokens: MAX_OUTPUT_TOKENS,
        };
        // The first `stored` messages of the request are already in the store.
        let mut stored = request.messages.len();
        request.messages.push(Message::User { content: message });
        let outcome = self
            .rounds(
                &toolbox,
                &model_ref,
                provider.as_ref(),
                &mut request,
                &mut stored,
            )
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
        toolbox: &Toolbox,
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
                let (result, spent) = self.run_tool(toolbox, call).await?;
                usage.add(spent);
                request.messages.push(result);
            }
        }
        Err(Error::LimitExceeded {
            limit: Limit::MaxToolRounds,
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

    /// Runs one tool call with what `toolbox` says answers it, and returns the message
    /// that carries its result to the model, with the tokens it used.
    async fn run_tool(
        &mut self,
        toolbox: &Toolbox,
        call: &ToolCall,
    ) -> Result<(Message, Usage), Error> {
        self.emit(Event::ToolStart {
            name: call.name.clone(),
            call_id: call.id.clone(),
            args: call.arguments.clone(),
        });
        let mut spent = Usage::default();
        let outcome = match toolbox.get(&call.name) {
            Some(Tool::Guest { parameters }) => {
                let (outcome, used) = self.run_guest_tool(call, parameters).await?;
                spent = used;
                outcome
            }
            Some(Tool::Skill) => match call.arguments["name"].as_str() {
                Some(name) => skills::body(&self.persona.skills, name).map(str::to_string),
                None => Err("missing string argument 'name'".into()),
            },
            Some(Tool::Task) => {
                let (outcome, used) = self.run_task(call).await?;
                spent = used;
                outcome
            }
            Some(Tool::Fetch(fetch)) => fetch.call(&call.arguments).await,
            Some(Tool::Builtin) => {
                let sandbox = self.sandbox.as_deref_mut();
                match sandbox {
                    Some(sandbox) => sandbox.call(&call.name, &call.arguments).await,
                    None => None,
                }
                .unwrap_or_else(|| Err(format!("there is no tool named '{}'", call.name)))
            }
            None => Err(format!("there is no tool named '{}'", call.name)),
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

    /// Runs a call of one of the agent's own tools in its instance, once its arguments
    /// fit the tool's `parameters`. A trap replaces the instance, and the model hears
    /// how its tool failed; a limit passed still fails the prompt, as policy.
    async fn run_guest_tool(
        &mut self,
        call: &ToolCall,
        parameters: &Value,
    ) -> Result<(Result<String, String>, Usage), Error> {
        if let Err(misfit) = arguments::check(parameters, &call.arguments) {
            return Ok((Err(misfit), Usage::default()));
        }
        let args = call.arguments.to_string();
        let called = self
            .shared
            .call_guest_tool(&self.key, &self.version, &call.name, &args)
            .await;
        match called {
            Ok(done) => Ok(done),
            Err(Error::Guest {
                agent,
                source: source @ GuestError::Trap(_),
            }) => {
                tracing::warn!("agent '{agent}': tool '{}': {source}", call.name);
                Ok((Err(format!("the tool failed: {source}")), Usage::default()))
            }
            Err(e) => Err(e),
        }
    }

    /// Reports an event, if anyone listens.
    pub(super) fn emit(&mut self, event: Event) {
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
