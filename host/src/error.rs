//! The library's error type; the server maps it to the wire's error envelope.

use crate::models::ModelError;
use crate::runtime::GuestError;
use crate::store::StoreError;

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No agent of that name is loaded.
    #[error("agent '{name}' not found (available: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    AgentNotFound {
        name: String,
        available: Vec<String>,
    },
    /// No workflow or run of that name or id.
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (an empty message, a bad id).
    #[error("{0}")]
    InvalidRequest(String),
    /// The request contradicts one made before (an idempotency key reused for a
    /// different request).
    #[error("{0}")]
    Conflict(String),
    /// The agent's guest code failed: a trap, a timeout, an error from `create`.
    #[error("agent '{agent}': {source}")]
    Guest {
        agent: String,
        #[source]
        source: GuestError,
    },
    /// The agent's configuration cannot be used as it is.
    #[error("agent '{agent}': {reason}")]
    Config { agent: String, reason: String },
    /// The model provider failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host could not start.
    #[error("{0}")]
    Startup(String),
    /// A file the host manages could not be changed.
    #[error("{0}")]
    Io(String),
    /// A tenant's policy refused the call: `limit` names the setting; `retry_after`,
    /// when the same call may pass again (a rate or budget window ending).
    #[error("{message}")]
    LimitExceeded {
        limit: String,
        message: String,
        retry_after: Option<std::time::Duration>,
    },
}

impl Error {
    /// The HTTP status and the wire's error envelope
    /// (`{"error": {"type", "message", "details"}}`) for this error.
    pub fn to_wire(&self) -> (u16, serde_json::Value) {
        let (status, kind) = match self {
            Error::AgentNotFound { .. } => (404, "agent_not_found"),
            Error::InvalidRequest(_) => (400, "invalid_request"),
            Error::Conflict(_) => (409, "conflict"),
            Error::NotFound(_) => (404, "not_found"),
            Error::Guest { source, .. } if source.limit().is_some() => (422, "limit_exceeded"),
            Error::Guest { .. } | Error::Config { .. } => (500, "agent_error"),
            Error::Model(ModelError::Busy {
                rate_limited: true, ..
            }) => (429, "model_rate_limited"),
            Error::Model(
                ModelError::Busy { .. } | ModelError::Incomplete { .. } | ModelError::Local(_),
            ) => (503, "model_unavailable"),
            Error::Model(_) => (502, "model_error"),
            Error::Store(_) | Error::Startup(_) | Error::Io(_) => (500, "internal_error"),
            Error::LimitExceeded { limit, .. } => match limit.as_str() {
                "allowed_models" | "sandboxes" => (403, "limit_exceeded"),
                "max_tool_rounds" | "wall_ms_per_prompt" => (422, "limit_exceeded"),
                _ => (429, "limit_exceeded"),
            },
        };
        let mut error =
            serde_json::json!({"type": kind, "message": self.public_message(), "details": ""});
        if let Error::AgentNotFound { available, .. } = self {
            error["dev"] = format!("available agents: {}", available.join(", ")).into();
        }
        if let Some(limit) = self.limit() {
            error["meta"] = serde_json::json!({ "limit": limit });
        }
        if let Some(after) = self.retry_after() {
            error["meta"]["retry_after_ms"] =
                u64::try_from(after.as_millis()).unwrap_or(u64::MAX).into();
        }
        (status, serde_json::json!({ "error": error }))
    }

    /// The message a caller is shown: the error itself, except where it would carry
    /// what only the host's operator may read (a database's own text, paths, a guest's
    /// output, which may hold a tool's input); the host's log has those in full.
    pub fn public_message(&self) -> String {
        match self {
            Error::Store(_) | Error::Startup(_) | Error::Io(_) => {
                "the host failed to complete the request; its log has the details".into()
            }
            Error::Guest {
                agent,
                source: GuestError::Trap(_),
            } => format!("agent '{agent}': the agent trapped; its output is in the host's log"),
            other => other.to_string(),
        }
    }

    /// Whether the error is the host's or the agent's own failure rather than the
    /// request's: what an operator should find in the log.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Store(_) | Error::Startup(_) | Error::Io(_) | Error::Guest { .. }
        )
    }

    /// How long until the same call may pass a limit it was refused for, or until a
    /// busy provider said to come back.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::LimitExceeded { retry_after, .. } => *retry_after,
            Error::Model(model) => model.retry_after(),
            _ => None,
        }
    }

    /// The setting whose limit was passed, for a `limit_exceeded` error.
    pub fn limit(&self) -> Option<&str> {
        match self {
            Error::LimitExceeded { limit, .. } => Some(limit),
            Error::Guest { source, .. } => source.limit(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_names_itself_in_the_envelope() {
        let error = |limit: &str| Error::LimitExceeded {
            limit: limit.into(),
            message: "over".into(),
            retry_after: None,
        };
        let guest = |limit: &'static str| Error::Guest {
            agent: "a".into(),
            source: GuestError::Limit {
                limit,
                message: "over".into(),
            },
        };
        for (error, limit, status) in [
            (error("tokens_per_hour"), "tokens_per_hour", 429),
            (error("allowed_models"), "allowed_models", 403),
            (error("max_tool_rounds"), "max_tool_rounds", 422),
            (guest("cpu_ms_per_call"), "cpu_ms_per_call", 422),
            (guest("memory_mb"), "memory_mb", 422),
        ] {
            let (got, body) = error.to_wire();
            assert_eq!(got, status, "{limit}");
            assert_eq!(body["error"]["type"], "limit_exceeded");
            assert_eq!(body["error"]["meta"]["limit"], limit);
        }
    }

    #[test]
    fn a_busy_provider_is_429_or_503_with_its_retry_after() {
        let busy = |rate_limited| {
            Error::Model(ModelError::Busy {
                provider: "anthropic".into(),
                rate_limited,
                detail: "HTTP 529: overloaded".into(),
                retry_after: Some(std::time::Duration::from_secs(45)),
                attempts: 4,
            })
        };
        let (status, body) = busy(true).to_wire();
        assert_eq!(
            (status, &body["error"]["type"]),
            (429, &"model_rate_limited".into())
        );
        assert_eq!(body["error"]["meta"]["retry_after_ms"], 45_000);
        let (status, body) = busy(false).to_wire();
        assert_eq!(
            (status, &body["error"]["type"]),
            (503, &"model_unavailable".into())
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("after 4 attempt(s)")
        );
    }

    #[test]
    fn a_500_carries_no_database_text_or_guest_output() {
        let store = Error::Store(StoreError::from_display(
            "error returned from database: invalid byte sequence for encoding \"UTF8\": 0x00",
        ));
        let trap = Error::Guest {
            agent: "a".into(),
            source: GuestError::Trap("guest stderr: panicked: secret tool input".into()),
        };
        for error in [store, trap] {
            let (status, body) = error.to_wire();
            let message = body["error"]["message"].as_str().unwrap();
            assert_eq!(status, 500);
            assert!(
                !message.contains("UTF8") && !message.contains("secret"),
                "{message}"
            );
            assert!(error.is_internal(), "logged for the operator");
        }
    }
}
