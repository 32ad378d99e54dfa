//! Who may reach which instance: bearer API keys from `flue.toml`, stored as SHA-256
//! hashes, each limited to a set of agents and an instance-id pattern.

use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// One `[[keys]]` entry of `flue.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// A label for logs.
    pub name: String,
    /// Hex SHA-256 of the key (`flue hash-key <key>` prints it).
    pub sha256: String,
    /// Agents this key may reach; `"*"` for all (the default).
    #[serde(default = "everything")]
    pub agents: Vec<String>,
    /// Instance ids this key may reach, with `*` wildcards (default `"*"`).
    #[serde(default = "any_id")]
    pub ids: String,
}

fn everything() -> Vec<String> {
    vec!["*".into()]
}

fn any_id() -> String {
    "*".into()
}

/// The hex SHA-256 of a key, as `flue.toml` stores it.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The configured keys; with none, everything is open.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    keys: Vec<ApiKey>,
}

impl Auth {
    /// Checks the keys' shape.
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, String> {
        for key in &keys {
            if key.sha256.len() != 64 || !key.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "key '{}': sha256 must be 64 hex digits (see `flue hash-key`)",
                    key.name
                ));
            }
        }
        Ok(Self { keys })
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The caller's key, from `Authorization: Bearer …` or the `token` query parameter.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Option<&ApiKey>, ApiError> {
        if !self.enabled() {
            return Ok(None);
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let token = bearer.or(query_token).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an API key is required: send Authorization: Bearer <key>",
            )
        })?;
        let hash = hash_key(token.trim());
        self.keys
            .iter()
            .find(|k| k.sha256.eq_ignore_ascii_case(&hash))
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the API key is not valid",
                )
            })
    }

    /// Checks that the caller may reach instance `id` of `agent`.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
        agent: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        let Some(key) = self.authenticate(headers, query_token)? else {
            return Ok(());
        };
        if !may_use_agent(key, agent) {
            return Err(forbidden(format!("this key may not use agent '{agent}'")));
        }
        if !glob(&key.ids, id) {
            return Err(forbidden(format!("this key may not reach instance '{id}'")));
        }
        Ok(())
    }

    /// Whether the caller's key may see `agent` (for listings).
    pub fn may_see(key: Option<&ApiKey>, agent: &str) -> bool {
        key.is_none_or(|k| may_use_agent(k, agent))
    }
}

fn may_use_agent(key: &ApiKey, agent: &str) -> bool {
    key.agents.iter().any(|a| a == "*" || a == agent)
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("ticket-*", "ticket-8472"));
        assert!(!glob("ticket-*", "order-1"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*-eu", "acme-eu"));
    }

    #[test]
    fn keys_are_checked_by_hash_agent_and_id() {
        let key = ApiKey {
            name: "k".into(),
            sha256: hash_key("secret"),
            agents: vec!["a".into()],
            ids: "t-*".into(),
        };
        let auth = Auth::new(vec![key]).unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(
            auth.authorize(&headers, None, "a", "t-1")
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        headers.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert_eq!(
            auth.authorize(&headers, None, "a", "t-1")
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        headers.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
        assert!(auth.authorize(&headers, None, "a", "t-1").is_ok());
        assert_eq!(
            auth.authorize(&headers, None, "b", "t-1")
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            auth.authorize(&headers, None, "a", "x-1")
                .unwrap_err()
                .status,
            StatusCode::FORBIDDEN
        );
        assert!(
            auth.authorize(&HeaderMap::new(), Some("secret"), "a", "t-9")
                .is_ok()
        );
    }
}
