//! The wire shapes of Flue's agent-server protocol (PyFlue's, as `PROTOCOL.md` in the
//! design notes writes it down), shared by the host's server, which writes them, and
//! `flue-client`, which reads them. With the `openapi` feature each shape also derives
//! utoipa's `ToSchema`, so the server's OpenAPI document describes these very types.
//!
//! Readers are lenient, as a client of servers it does not control must be: a field
//! that is missing, `null` or of another type than this host sends reads as its
//! default, except the few a shape cannot do without (a result's `text`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

/// Reads any JSON value; one that does not fit `T` (missing, `null`, another type)
/// reads as `T::default()`.
fn lenient<'de, D: Deserializer<'de>, T: Default + for<'a> Deserialize<'a>>(
    deserializer: D,
) -> Result<T, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

/// The error envelope every failure answers with: `{"error": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ErrorBody,
}

/// What went wrong: `type` is machine-readable (`invalid_request`, `forbidden`, …),
/// `message` is for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The kind of failure, e.g. `agent_not_found`, `limit_exceeded`.
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    pub kind: String,
    /// What happened, for a person to read.
    #[serde(default, deserialize_with = "lenient")]
    pub message: String,
    /// More about it; PyFlue always sends the key, often empty.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub details: String,
    /// Detail for the developer (a parse error, a list of names).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub dev: Option<String>,
    /// Structured detail: `limit`, `retry_after_ms`, `allowed`, `param`, `run_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl ErrorEnvelope {
    /// An error of `kind` with `message`, no details.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody {
                kind: kind.into(),
                message: message.into(),
                details: String::new(),
                dev: None,
                meta: None,
            },
        }
    }
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `true` when the server answers.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ok: bool,
    /// The server's framework name (`flue-wasm`; PyFlue's servers say their own).
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub framework: String,
}

/// A prompt as a client sends it (`POST /agents/{name}/{id}`). The server also reads
/// `prompt` for `message` and the same fields wrapped in `payload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptBody {
    /// The user's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Alias of `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The session (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Another model for this prompt: `provider/model` or a `flue.toml` alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The same fields, wrapped (PyFlue's clients send this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// `{"result": …}`: a prompt's JSON answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultEnvelope {
    /// The prompt's outcome.
    pub result: PromptResult,
}

/// A prompt's outcome: `{"text", "metadata", "usage", "model": {"id"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptResult {
    /// The model's final answer.
    pub text: String,
    /// Free-form metadata; this host sends `{}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub metadata: Value,
    /// Tokens the prompt used.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub usage: Usage,
    /// The model that answered.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub model: ModelId,
}

/// Tokens a prompt used, the agent's own model calls included. No `cost`: PyFlue's
/// client takes a missing cost as 0, and this host keeps no price list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Tokens read, not counting those read from the provider's cache.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub input: u64,
    /// Tokens written.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub output: u64,
    /// Tokens read from the provider's prompt cache.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cache_read: u64,
    /// Tokens written to the provider's prompt cache.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cache_write: u64,
    /// All of the above.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub total_tokens: u64,
}

/// The model that answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelId {
    /// `provider/model`, e.g. `anthropic/claude-haiku-4-5`.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub id: String,
}

/// `GET /agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentList {
    /// The agents the caller may use.
    pub agents: Vec<AgentEntry>,
}

/// One agent, named as the caller's namespace knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentEntry {
    /// The agent's name (without the tenant, for a tenant's key).
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub name: String,
    /// Its component's file name, never a path on the server.
    #[serde(default, deserialize_with = "lenient")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub path: String,
    /// What starts it besides prompts; this host sends `{}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub triggers: Value,
}

/// One event of a streamed prompt (`POST /agents/{name}/{id}` with
/// `Accept: text/event-stream`): the SSE `event` field is [`StreamEvent::kind`], its
/// `data` is [`StreamEvent::to_json`], which repeats the kind as `type`. PyFlue spells
/// several keys two ways (`toolName` and `tool_name`); they are written both ways and
/// read in either.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// `start`: the prompt started on this session.
    Start {
        /// The session's name.
        session_id: String,
    },
    /// `delta`: a piece of the answer's text.
    Delta {
        /// The text, to append to what came before.
        text: String,
    },
    /// `tool_start`: a tool call is about to run.
    ToolStart {
        /// The tool's name.
        tool_name: String,
        /// The call's id, as the model gave it.
        tool_call_id: String,
        /// The call's arguments, a JSON object.
        args: Value,
    },
    /// `tool_end`: a tool call finished.
    ToolEnd {
        /// The tool's name.
        tool_name: String,
        /// The call's id.
        tool_call_id: String,
        /// Whether the result is the tool's error.
        is_error: bool,
        /// The result (or error) text the model sees.
        result: String,
    },
    /// `task_start`: a helper starts on a delegated task, in a child session.
    TaskStart {
        /// The task's id: the `task` call's id.
        task_id: String,
        /// The helper's name (also sent as `role`).
        subagent: String,
        /// The child session the helper works in.
        session_id: String,
        /// The session that delegated.
        parent_session_id: String,
        /// The task as the model wrote it.
        prompt: String,
    },
    /// `task_end`: a helper finished its task.
    TaskEnd {
        /// The task's id.
        task_id: String,
        /// The helper's name.
        subagent: String,
        /// Whether the helper failed.
        is_error: bool,
        /// The helper's answer, or how it failed.
        result: String,
    },
    /// `compaction`: older turns were summarized.
    Compaction {
        /// The request's estimated size before, in tokens.
        tokens_before: u64,
        /// And after, in tokens.
        tokens_after: u64,
    },
    /// `end`: the prompt finished.
    End {
        /// The final text, as in `result.text`.
        text: String,
        /// The same result object a JSON answer carries.
        result: PromptResult,
    },
}

impl StreamEvent {
    /// The SSE event name, also the data's `type`: `start`, `delta`, `tool_start`, …
    pub fn kind(&self) -> &'static str {
        match self {
            StreamEvent::Start { .. } => "start",
            StreamEvent::Delta { .. } => "delta",
            StreamEvent::ToolStart { .. } => "tool_start",
            StreamEvent::ToolEnd { .. } => "tool_end",
            StreamEvent::TaskStart { .. } => "task_start",
            StreamEvent::TaskEnd { .. } => "task_end",
            StreamEvent::Compaction { .. } => "compaction",
            StreamEvent::End { .. } => "end",
        }
    }

    /// The event's data object, with both spellings of every key PyFlue spells two ways.
    pub fn to_json(&self) -> Value {
        let kind = self.kind();
        match self {
            StreamEvent::Start { session_id } => {
                json!({"type": kind, "session_id": session_id, "sessionId": session_id})
            }
            StreamEvent::Delta { text } => json!({"type": kind, "text": text}),
            StreamEvent::ToolStart {
                tool_name,
                tool_call_id,
                args,
            } => json!({"type": kind, "toolName": tool_name, "toolCallId": tool_call_id,
                        "args": args, "tool_name": tool_name, "tool_call_id": tool_call_id}),
            StreamEvent::ToolEnd {
                tool_name,
                tool_call_id,
                is_error,
                result,
            } => json!({"type": kind, "toolName": tool_name, "toolCallId": tool_call_id,
                        "isError": is_error, "result": result, "tool_name": tool_name,
                        "tool_call_id": tool_call_id, "is_error": is_error}),
            StreamEvent::TaskStart {
                task_id,
                subagent,
                session_id,
                parent_session_id,
                prompt,
            } => json!({"type": kind, "taskId": task_id, "task_id": task_id, "prompt": prompt,
                        "role": subagent, "subagent": subagent, "sessionId": session_id,
                        "session_id": session_id, "parentSessionId": parent_session_id,
                        "parent_session_id": parent_session_id}),
            StreamEvent::TaskEnd {
                task_id,
                subagent,
                is_error,
                result,
            } => json!({"type": kind, "taskId": task_id, "task_id": task_id,
                        "subagent": subagent, "isError": is_error, "is_error": is_error,
                        "result": result}),
            StreamEvent::Compaction {
                tokens_before,
                tokens_after,
            } => json!({"type": kind, "tokensBefore": tokens_before,
                        "tokens_before": tokens_before, "tokensAfter": tokens_after,
                        "tokens_after": tokens_after}),
            StreamEvent::End { text, result } => {
                json!({"type": kind, "text": text, "result": result})
            }
        }
    }

    /// Reads an event named `kind` from its data: `None` for a kind this crate does not
    /// know (a newer server's), an error for an `end` without a readable result. Keys
    /// are read in either spelling; a missing or odd one reads as its default.
    pub fn from_json(kind: &str, data: &Value) -> Option<Result<Self, serde_json::Error>> {
        let text = |keys: &[&str]| -> String {
            keys.iter()
                .find_map(|k| data[*k].as_str())
                .unwrap_or_default()
                .to_string()
        };
        let flag = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| data[*k].as_bool())
                .unwrap_or(false)
        };
        let count = |keys: &[&str]| keys.iter().find_map(|k| data[*k].as_u64()).unwrap_or(0);
        Some(Ok(match kind {
            "start" => StreamEvent::Start {
                session_id: text(&["session_id", "sessionId"]),
            },
            "delta" => StreamEvent::Delta {
                text: text(&["text"]),
            },
            "tool_start" => StreamEvent::ToolStart {
                tool_name: text(&["toolName", "tool_name"]),
                tool_call_id: text(&["toolCallId", "tool_call_id"]),
                args: data["args"].clone(),
            },
            "tool_end" => StreamEvent::ToolEnd {
                tool_name: text(&["toolName", "tool_name"]),
                tool_call_id: text(&["toolCallId", "tool_call_id"]),
                is_error: flag(&["isError", "is_error"]),
                result: text(&["result"]),
            },
            "task_start" => StreamEvent::TaskStart {
                task_id: text(&["taskId", "task_id"]),
                subagent: text(&["subagent", "role"]),
                session_id: text(&["sessionId", "session_id"]),
                parent_session_id: text(&["parentSessionId", "parent_session_id"]),
                prompt: text(&["prompt"]),
            },
            "task_end" => StreamEvent::TaskEnd {
                task_id: text(&["taskId", "task_id"]),
                subagent: text(&["subagent", "role"]),
                is_error: flag(&["isError", "is_error"]),
                result: text(&["result"]),
            },
            "compaction" => StreamEvent::Compaction {
                tokens_before: count(&["tokensBefore", "tokens_before"]),
                tokens_after: count(&["tokensAfter", "tokens_after"]),
            },
            "end" => match PromptResult::deserialize(&data["result"]) {
                Ok(result) => StreamEvent::End {
                    text: text(&["text"]),
                    result,
                },
                Err(e) => return Some(Err(e)),
            },
            _ => return None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_read_what_they_write_and_leave_out_absent_fields() {
        let mut envelope = ErrorEnvelope::new("not_found", "no such run");
        assert_eq!(
            serde_json::to_value(&envelope).unwrap(),
            json!({"error": {"type": "not_found", "message": "no such run", "details": ""}})
        );
        envelope.error.meta = Some(json!({"limit": "tokens_per_hour"}));
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            serde_json::from_str::<ErrorEnvelope>(&text).unwrap(),
            envelope
        );

        let result: PromptResult =
            serde_json::from_value(json!({"text": "hi", "usage": {"input": 3}})).unwrap();
        assert_eq!((result.usage.input, result.usage.output), (3, 0));
        assert_eq!(result.model.id, "");
    }

    #[test]
    fn a_field_of_another_type_reads_as_its_default() {
        let odd = json!({"text": "hi", "usage": {"input": 2.5, "output": 4}, "model": "x"});
        let result: PromptResult = serde_json::from_value(odd).unwrap();
        assert_eq!((result.usage.input, result.usage.output), (0, 4));
        assert_eq!(result.model.id, "");
        let error: ErrorBody =
            serde_json::from_value(json!({"type": "conflict", "details": {"a": 1}, "dev": null}))
                .unwrap();
        assert_eq!(
            (error.kind.as_str(), error.message.as_str()),
            ("conflict", "")
        );
        assert!(serde_json::from_value::<PromptResult>(json!({"usage": {}})).is_err());
    }

    #[test]
    fn every_stream_event_reads_back_what_it_writes_in_either_spelling() {
        let result = PromptResult {
            text: "done".into(),
            metadata: json!({}),
            usage: Usage::default(),
            model: ModelId { id: "a/b".into() },
        };
        let events = [
            StreamEvent::Start {
                session_id: "s".into(),
            },
            StreamEvent::Delta { text: "hi".into() },
            StreamEvent::ToolStart {
                tool_name: "t".into(),
                tool_call_id: "c".into(),
                args: json!({"x": 1}),
            },
            StreamEvent::ToolEnd {
                tool_name: "t".into(),
                tool_call_id: "c".into(),
                is_error: true,
                result: "no".into(),
            },
            StreamEvent::TaskStart {
                task_id: "k".into(),
                subagent: "h".into(),
                session_id: "s/task/h/k".into(),
                parent_session_id: "s".into(),
                prompt: "p".into(),
            },
            StreamEvent::TaskEnd {
                task_id: "k".into(),
                subagent: "h".into(),
                is_error: false,
                result: "r".into(),
            },
            StreamEvent::Compaction {
                tokens_before: 900,
                tokens_after: 120,
            },
            StreamEvent::End {
                text: "done".into(),
                result,
            },
        ];
        for event in events {
            let data = event.to_json();
            assert_eq!(data["type"], event.kind());
            let read = StreamEvent::from_json(event.kind(), &data)
                .unwrap()
                .unwrap();
            assert_eq!(read, event);
            // Each spelling alone is enough to read it.
            let only = |keep_camel: bool| -> Value {
                let object = data.as_object().unwrap();
                let kept = object.iter().filter(|(k, _)| {
                    let camel = k.chars().any(char::is_uppercase);
                    let twin = object.keys().any(|o| {
                        o != *k && o.replace('_', "").eq_ignore_ascii_case(&k.replace('_', ""))
                    });
                    !twin || camel == keep_camel
                });
                Value::Object(kept.map(|(k, v)| (k.clone(), v.clone())).collect())
            };
            for camel in [true, false] {
                let read = StreamEvent::from_json(event.kind(), &only(camel));
                assert_eq!(read.unwrap().unwrap(), event, "camel: {camel}");
            }
        }
        assert!(StreamEvent::from_json("later_kind", &json!({})).is_none());
        assert!(
            StreamEvent::from_json("end", &json!({"result": {}}))
                .unwrap()
                .is_err()
        );
    }
}
