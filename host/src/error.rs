//! The library's error type, its kinds and the wire's error envelope; the server alone
//! gives each kind an HTTP status.

use flue_wire::ErrorEnvelope;

use crate::limit::Limit;
use crate::models::ModelError;
use crate::runtime::GuestError;
use crate::store::StoreError;

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No agent of that name is loaded.
    #[error("agent '{name}' not found (available: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    AgentNotFound {
        /// The name asked for, as the caller's namespace names it.
        name: String,
        /// The agents loaded in the same namespace, by the names it knows them by.
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
        /// The agent's host name (`<tenant>/<name>` for a tenant's agent).
        agent: String,
        /// What went wrong in the guest.
        #[source]
        source: GuestError,
    },
    /// The agent's configuration cannot be used as it is.
    #[error("agent '{agent}': {reason}")]
    Config {
        /// The agent's host name (`<tenant>/<name>` for a tenant's agent).
        agent: String,
        /// What is wrong with the configuration, as a sentence.
        reason: String,
    },
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
    /// A tenant's policy refused the call, or a prompt passed one of its limits;
    /// `retry_after`, when the same call may pass again (a rate or budget window ending).
    #[error("{message}")]
    LimitExceeded {
        /// The limit, which names its `flue.toml` setting.
        limit: Limit,
        /// What the caller is told.
        message: String,
        /// How long until the same call may pass, when a rate or budget window ends.
        retry_after: Option<std::time::Duration>,
    },
}

/// What kind of failure an [`Error`] is, as the wire names it (`type` in the error
/// envelope). Each kind is one row of the server's status table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `agent_not_found`: no agent of that name is loaded.
    AgentNotFound,
    /// `not_found`: no workflow or run of that name or id.
    NotFound,
    /// `invalid_request`: the request is wrong (a bad field, a model name that names
    /// no model).
    InvalidRequest,
    /// `conflict`: the request contradicts one made before.
    Conflict,
    /// `limit_exceeded`: a limit refused or stopped the call.
    LimitExceeded(Limit),
    /// `agent_error`: the agent's code or configuration failed.
    Agent,
    /// `model_rate_limited`: the model provider is rate-limiting this host.
    ModelRateLimited,
    /// `model_unavailable`: the model cannot answer now; the same request may pass later.
    ModelUnavailable,
    /// `model_error`: the model provider refused the request or answered wrongly.
    Model,
    /// `internal_error`: the host itself failed.
    Internal,
}

impl ErrorKind {
    /// The wire's name for the kind: the envelope's `type`.
    pub fn wire_type(self) -> &'static str {
        match self {
            ErrorKind::AgentNotFound => "agent_not_found",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Conflict => "conflict",
            ErrorKind::LimitExceeded(_) => "limit_exceeded",
            ErrorKind::Agent => "agent_error",
            ErrorKind::ModelRateLimited => "model_rate_limited",
            ErrorKind::ModelUnavailable => "model_unavailable",
            ErrorKind::Model => "model_error",
            ErrorKind::Internal => "internal_error",
        }
    }
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::AgentNotFound { .. } => ErrorKind::AgentNotFound,
            Error::InvalidRequest(_) => ErrorKind::InvalidRequest,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::LimitExceeded { limit, .. } => ErrorKind::LimitExceeded(*limit),
            Error::Guest { source, .. } => match source.limit() {
                Some(limit) => ErrorKind::LimitExceeded(limit),
                None => ErrorKind::Agent,
            },
            Error::Config { .. } => ErrorKind::Agent,
            Error::Model(model) => match model {
                ModelError::BadModelName(_)
                | ModelError::UnknownProvider(_)
                | ModelError::UnknownModel(_) => ErrorKind::InvalidRequest,
                ModelError::Busy {
                    rate_limited: true, ..
                } => ErrorKind::ModelRateLimited,
                ModelError::Busy { .. } | ModelError::Incomplete { .. } | ModelError::Local(_) => {
                    ErrorKind::ModelUnavailable
                }
                ModelError::MissingKey { .. }
                | ModelError::Unreachable { .. }
                | ModelError::Status { .. }
                | ModelError::Reported { .. }
                | ModelError::BadResponse { .. } => ErrorKind::Model,
            },
            Error::Store(_) | Error::Startup(_) | Error::Io(_) => ErrorKind::Internal,
        }
    }

    /// The wire's error envelope for this error:
    /// `{"error": {"type", "message", "details", "dev"?, "meta"?}}` (PROTOCOL.md, Errors).
    pub fn envelope(&self) -> ErrorEnvelope {
        let mut envelope = ErrorEnvelope::new(self.kind().wire_type(), self.public_message());
        let error = &mut envelope.error;
        if let Error::AgentNotFound { available, .. } = self {
            error.dev = Some(format!("available agents: {}", available.join(", ")));
        }
        let mut meta = serde_json::Map::new();
        if let Some(limit) = self.limit() {
            meta.insert("limit".into(), limit.name().into());
        }
        if let Some(after) = self.retry_after() {
            let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            meta.insert("retry_after_ms".into(), ms.into());
        }
        if !meta.is_empty() {
            error.meta = Some(meta.into());
        }
        envelope
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

    /// The limit that was passed, for a `limit_exceeded` error.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            Error::LimitExceeded { limit, .. } => Some(*limit),
            Error::Guest { source, .. } => source.limit(),
            _ => None,
        }
    }
}
