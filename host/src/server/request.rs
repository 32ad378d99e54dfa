//! Reading a prompt request: content type, JSON, the PyFlue field aliases and wrapping.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::DEFAULT_SESSION;

/// A prompt as the client asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PromptRequest {
    pub message: String,
    pub session: String,
    /// Another model for this prompt (`provider/model` or a `flue.toml` alias); the
    /// agent's policies still decide whether it may be used.
    pub model: Option<String>,
}

/// The path's parameters, like axum's `Path`, but refused in the error envelope: a
/// segment that is not UTF-8 once percent-decoded, or that holds a control character
/// (NUL, which no store keeps alike, among them), is a `400 invalid_request`.
pub(super) struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = raw.iter().find(|(_, v)| v.chars().any(char::is_control))
        {
            return Err(ApiError::invalid_request(format!(
                "the path's {name} holds a control character"
            )));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(params)) => Ok(Path(params)),
            Err(rejection) => Err(ApiError::invalid_request(format!(
                "the path cannot be read: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Reads an HTTP prompt body: it must be a JSON object.
pub(super) fn from_http(headers: &HeaderMap, body: &[u8]) -> Result<PromptRequest, ApiError> {
    from_value(&json_body(headers, body)?)
}

/// Whether the client asked for Server-Sent Events.
pub(super) fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// The whole number a query parameter holds, if given; `400` if it holds another thing.
pub(super) fn query_number(
    query: &HashMap<String, String>,
    key: &str,
) -> Result<Option<u64>, ApiError> {
    query
        .get(key)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::invalid_request(format!("\"{key}\" must be a whole number")))
        })
        .transpose()
}

/// Reads a JSON request body (any JSON value), checking its content type.
pub(super) fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.is_empty() && !content_type.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be application/json, not {content_type}"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "the body is not valid JSON",
        )
        .dev(e.to_string())
    })
}

/// Reads a prompt object: `{"message" | "prompt", "session"?, "model"?}`, possibly wrapped in
/// `{"payload": {…}}`.
pub(super) fn from_value(value: &Value) -> Result<PromptRequest, ApiError> {
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::invalid_request("the body must be a JSON object"))?;
    let fields = match object.get("payload") {
        Some(Value::Object(inner)) if !object.contains_key("message") => inner,
        _ => object,
    };
    let message = match fields.get("message").or_else(|| fields.get("prompt")) {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        Some(Value::String(_)) => return Err(ApiError::invalid_request("\"message\" is empty")),
        Some(_) => return Err(ApiError::invalid_request("\"message\" must be a string")),
        None => {
            return Err(ApiError::invalid_request(
                "the body needs a \"message\" string",
            ));
        }
    };
    let session = match fields.get("session") {
        None | Some(Value::Null) => DEFAULT_SESSION.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "\"session\" must be a non-empty string",
            ));
        }
    };
    let model = match fields.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if !m.trim().is_empty() => Some(m.clone()),
        Some(_) => {
            return Err(ApiError::invalid_request(
                "\"model\" must be a non-empty string such as \"anthropic/claude-haiku-4-5\"",
            ));
        }
    };
    Ok(PromptRequest {
        message,
        session,
        model,
    })
}

impl PromptRequest {
    /// The session it names, on `harness`, with its model if it names one.
    pub(super) fn session_on(&self, harness: crate::Harness) -> crate::Session {
        match &self.model {
            Some(model) => harness.with_model(model),
            None => harness,
        }
        .session(&self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aliases_and_payload_wrapping() {
        let plain = from_value(&json!({"message": "hi", "session": "b"})).unwrap();
        assert_eq!(
            plain,
            PromptRequest {
                message: "hi".into(),
                session: "b".into(),
                model: None,
            }
        );
        let chosen = from_value(&json!({"message": "hi", "model": "openai/gpt-4o-mini"})).unwrap();
        assert_eq!(chosen.model.as_deref(), Some("openai/gpt-4o-mini"));
        let alias = from_value(&json!({"prompt": "hi"})).unwrap();
        assert_eq!(alias.session, "default");
        let wrapped = from_value(&json!({"payload": {"message": "hi", "session": "c"}})).unwrap();
        assert_eq!(wrapped.session, "c");
        for bad in [
            json!([1]),
            json!({}),
            json!({"message": 3}),
            json!({"message": " "}),
            json!({"message": "x", "session": 1}),
            json!({"message": "x", "model": 4}),
        ] {
            assert_eq!(
                from_value(&bad).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }
}
