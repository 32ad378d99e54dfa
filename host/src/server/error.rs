//! The wire's error envelope, `{"error": {"type", "message", "details", …}}`, as a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use flue_wire::ErrorEnvelope;

use crate::{Error, ErrorKind, Limit};

/// An error answered to an HTTP or WebSocket client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The whole envelope: `{"error": {…}}` (boxed: errors travel in `Result`s, which
    /// stay small).
    pub body: Box<ErrorEnvelope>,
    /// For a refusal that lifts by itself: sent as `Retry-After` (RFC 9110 §10.2.3).
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error of `kind` with a message and optional developer detail.
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorEnvelope::new(kind, message)),
            retry_after: None,
        }
    }

    /// Adds the `dev` field: detail meant for the developer (a parse error, a list).
    pub fn dev(mut self, dev: impl Into<String>) -> Self {
        self.body.error.dev = Some(dev.into());
        self
    }

    /// Adds the `meta` field.
    pub fn meta(mut self, meta: Value) -> Self {
        self.body.error.meta = Some(meta);
        self
    }

    /// An error of a kind the library also has, with its status from [`status_of`].
    fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(status_of(kind), kind.wire_type(), message)
    }

    /// `400 invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::of_kind(ErrorKind::InvalidRequest, message)
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::of_kind(ErrorKind::NotFound, message)
    }

    /// `405 method_not_allowed`, listing the allowed methods.
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route allows {}", allowed.join(", ")),
        )
        .meta(json!({"allowed": allowed}))
    }
}

/// The HTTP status an error of `kind` is answered with: the host's only table of them.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::AgentNotFound | ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::LimitExceeded(limit) => match limit {
            Limit::AllowedModels | Limit::Sandboxes => StatusCode::FORBIDDEN,
            Limit::MaxToolRounds
            | Limit::WallMsPerPrompt
            | Limit::MemoryMb
            | Limit::CpuMsPerCall
            | Limit::WallMsPerCall => StatusCode::UNPROCESSABLE_ENTITY,
            Limit::MaxConcurrentPrompts | Limit::PromptsPerMinute | Limit::TokensPerHour => {
                StatusCode::TOO_MANY_REQUESTS
            }
        },
        ErrorKind::ModelRateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::ModelUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Model => StatusCode::BAD_GATEWAY,
        ErrorKind::Agent | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if e.is_internal() {
            tracing::error!("{e}");
        }
        Self {
            status: status_of(e.kind()),
            body: Box::new(e.envelope()),
            retry_after: e.retry_after(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up so that a retry at that time passes.
            let seconds = after.as_millis().div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is left unread, so the connection cannot carry another
            // request: say so, or a client may reuse it and see it drop.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelError;
    use crate::runtime::GuestError;
    use crate::store::StoreError;

    /// The status and envelope `error` answers with.
    fn answered(error: Error) -> (u16, Value) {
        let api = ApiError::from(error);
        (api.status.as_u16(), json!(api.body))
    }

    #[test]
    fn a_limit_names_itself_in_the_envelope() {
        let error = |limit| Error::LimitExceeded {
            limit,
            message: "over".into(),
            retry_after: None,
        };
        let guest = |limit| Error::Guest {
            agent: "a".into(),
            source: GuestError::Limit {
                limit,
                message: "over".into(),
            },
        };
        for (error, limit, status) in [
            (error(Limit::TokensPerHour), "tokens_per_hour", 429),
            (error(Limit::AllowedModels), "allowed_models", 403),
            (error(Limit::MaxToolRounds), "max_tool_rounds", 422),
            (guest(Limit::CpuMsPerCall), "cpu_ms_per_call", 422),
            (guest(Limit::MemoryMb), "memory_mb", 422),
        ] {
            let (got, body) = answered(error);
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
        let (status, body) = answered(busy(true));
        assert_eq!(
            (status, &body["error"]["type"]),
            (429, &"model_rate_limited".into())
        );
        assert_eq!(body["error"]["meta"]["retry_after_ms"], 45_000);
        let (status, body) = answered(busy(false));
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
            assert!(error.is_internal(), "logged for the operator");
            let (status, body) = answered(error);
            let message = body["error"]["message"].as_str().unwrap();
            assert_eq!(status, 500);
            assert!(
                !message.contains("UTF8") && !message.contains("secret"),
                "{message}"
            );
        }
    }
}
