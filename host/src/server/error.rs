//! The wire's error envelope, `{"error": {"type", "message", "details", …}}`, as a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answered to an HTTP or WebSocket client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The whole envelope: `{"error": {…}}`.
    pub body: Value,
    /// For a refusal that lifts by itself: sent as `Retry-After` (RFC 9110 §10.2.3).
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error of `kind` with a message and optional developer detail.
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"error": {"type": kind, "message": message.into(), "details": ""}}),
            retry_after: None,
        }
    }

    /// Adds the `dev` field: detail meant for the developer (a parse error, a list).
    pub fn dev(mut self, dev: impl Into<String>) -> Self {
        self.body["error"]["dev"] = Value::String(dev.into());
        self
    }

    /// Adds the `meta` field.
    pub fn meta(mut self, meta: Value) -> Self {
        self.body["error"]["meta"] = meta;
        self
    }

    /// `400 invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
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

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        if e.is_internal() {
            tracing::error!("{e}");
        }
        let (status, body) = e.to_wire();
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
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
