//! Who may reach which instance: bearer API keys from `flue.toml`, stored as SHA-256
//! hashes, each limited to a set of agents and an instance-id pattern. A tenant's key
//! names agents within its tenant only: `support` means `<tenant>/support` on the host,
//! so its instances, sessions and dispatches live in a namespace no other key can name.

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
    /// The tenant the key belongs to (a `[tenants.<name>]` of `flue.toml`); without
    /// one it is the operator's key, for the agents directly in `agents/`.
    pub tenant: Option<String>,
    /// Whether the key may use the management API (`/admin/…`); operator keys only.
    #[serde(default)]
    pub admin: bool,
    /// What an agent that decides who may reach its instances (its `authorize`
    /// export) is told about this key, besides its name and tenant.
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
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
    /// Checks the keys' shape and that each key's tenant is one of `tenants`.
    pub fn new(keys: Vec<ApiKey>, tenants: &[String]) -> Result<Self, String> {
        for key in &keys {
            if key.admin && key.tenant.is_some() {
                return Err(format!(
                    "key '{}': an admin key belongs to the operator, not a tenant",
                    key.name
                ));
            }
            if let Some(tenant) = key.tenant.as_ref().filter(|t| !tenants.contains(t)) {
                return Err(format!(
                    "key '{}': there is no [tenants.{tenant}] in flue.toml",
                    key.name
                ));
            }
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

    /// Checks that the caller's key may reach instance `id` of `agent` (as named in the
    /// URL); returns the caller and the agent's name on the host (`<tenant>/<agent>` for
    /// a tenant's key).
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
        agent: &str,
        id: &str,
    ) -> Result<(Caller<'_>, String), ApiError> {
        let caller = self.caller(headers, query_token)?;
        let qualified = caller.qualify(agent)?;
        caller.check(&qualified, id)?;
        Ok((caller, qualified))
    }

    /// Who is calling: [`Self::authenticate`], kept for the checks that follow.
    pub fn caller(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Caller<'_>, ApiError> {
        self.authenticate(headers, query_token).map(Caller)
    }
}

/// An authenticated caller: a key, or nobody when no keys are configured.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a>(Option<&'a ApiKey>);

impl Caller<'_> {
    fn tenant(&self) -> Option<&str> {
        self.0.and_then(|k| k.tenant.as_deref())
    }

    /// What an agent is told about the caller.
    pub fn identity(&self) -> crate::Identity {
        crate::Identity {
            tenant: self.tenant().map(str::to_string),
            key: self.0.map(|k| k.name.clone()),
            claims: self.0.map(|k| k.claims.clone()).unwrap_or_default(),
        }
    }

    /// The host's name for an agent the caller names: its tenant's agent for a tenant's
    /// key. A name that already holds a tenant part is not any caller's to give.
    pub fn qualify(&self, agent: &str) -> Result<String, ApiError> {
        if agent.contains('/') {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "agent_not_found",
                "no such agent: agent names hold no '/', and a key reaches only its own tenant's",
            ));
        }
        Ok(match self.tenant() {
            Some(tenant) => format!("{tenant}/{agent}"),
            None => agent.to_string(),
        })
    }

    /// The name the caller knows a host agent by, if it is in the caller's namespace.
    pub fn local<'n>(&self, qualified: &'n str) -> Option<&'n str> {
        crate::registry::local_name(self.tenant(), qualified)
    }

    /// Checks that the caller may reach instance `id` of a host agent.
    pub fn check(&self, qualified: &str, id: &str) -> Result<(), ApiError> {
        let Some(key) = self.0 else {
            return Ok(());
        };
        let agent = self
            .local(qualified)
            .filter(|agent| may_use_agent(key, agent))
            .ok_or_else(|| forbidden(format!("this key may not use agent '{qualified}'")))?;
        if !glob(&key.ids, id) {
            return Err(forbidden(format!(
                "this key may not reach instance '{id}' of '{agent}'"
            )));
        }
        Ok(())
    }

    /// The caller's name for a host agent it may use (for listings), if any.
    pub fn sees(&self, qualified: &str) -> Option<String> {
        let agent = self.local(qualified)?;
        self.0
            .is_none_or(|key| may_use_agent(key, agent))
            .then(|| agent.to_string())
    }

    /// Refuses everyone but an admin key: for the management API.
    pub fn admin(&self) -> Result<(), ApiError> {
        match self.0 {
            Some(key) if key.admin => Ok(()),
            Some(_) => Err(forbidden("this key may not use the management API".into())),
            None => Err(forbidden(
                "the management API needs an admin key ([[keys]] admin = true in flue.toml)".into(),
            )),
        }
    }

    /// Refuses tenants' keys: for the operator's routes (workflows, runs, metrics).
    pub fn operator(&self) -> Result<(), ApiError> {
        match self.tenant() {
            None => Ok(()),
            Some(tenant) => Err(forbidden(format!(
                "a key of tenant '{tenant}' may only reach its own agents"
            ))),
        }
    }
}

fn may_use_agent(key: &ApiKey, agent: &str) -> bool {
    key.agents.iter().any(|a| a == "*" || a == agent)
}

pub(super) fn forbidden(message: String) -> ApiError {
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
            tenant: None,
            admin: false,
            claims: Default::default(),
        };
        let auth = Auth::new(vec![key], &[]).unwrap();
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

    #[test]
    fn a_tenants_key_names_its_own_agents_only() {
        let key = ApiKey {
            name: "acme".into(),
            sha256: hash_key("acme-secret"),
            agents: vec!["*".into()],
            ids: "*".into(),
            tenant: Some("acme".into()),
            admin: false,
            claims: Default::default(),
        };
        assert!(
            Auth::new(vec![key.clone()], &[]).is_err(),
            "an undeclared tenant"
        );
        let auth = Auth::new(vec![key], &["acme".into()]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer acme-secret".parse().unwrap());
        assert_eq!(
            auth.authorize(&headers, None, "support", "t-1").unwrap().1,
            "acme/support"
        );
        let caller = auth.caller(&headers, None).unwrap();
        assert_eq!(caller.local("acme/support"), Some("support"));
        assert_eq!(caller.local("globex/support"), None);
        assert_eq!(caller.local("support"), None);
        assert!(caller.check("globex/support", "t-1").is_err());
        assert!(caller.qualify("globex/support").is_err());
        assert!(caller.operator().is_err());
    }
}
