//! Who may reach which instance: bearer API keys from `flue.toml`, stored as SHA-256
//! hashes, each limited to a set of agents and an instance-id pattern. A tenant's key
//! names agents within its tenant only: `support` means `<tenant>/support` on the host,
//! so its instances, sessions and dispatches live in a namespace no other key can name.

use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use crate::access::{ApiKey, Scope, hash_key};

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
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(credential);
        let token = presented.as_deref().or(query_token).ok_or_else(|| {
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

/// The key an `Authorization` header presents (RFC 9110 §11.6.2; the scheme is
/// case-insensitive): `Bearer <key>`, or `Basic` (RFC 7617) with the key as the password,
/// or as the user name when the password is empty — the form a URL's `user:key@host`
/// takes, which is how clients that cannot set headers (a WebSocket in a browser, or
/// PyFlue's) present one.
fn credential(value: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    let (user, password) = pair.split_once(':').unwrap_or((&pair, ""));
    Some(if password.is_empty() { user } else { password }.to_string())
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
        self.scope().identity()
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
        self.scope().check(qualified, id).map_err(forbidden)
    }

    /// What the caller's key reaches, for work that outlives the request (a workflow
    /// run prompts agents with it).
    pub fn scope(&self) -> Scope {
        Scope::new(self.0.cloned())
    }

    /// The caller's name for a host agent it may use (for listings), if any.
    pub fn sees(&self, qualified: &str) -> Option<String> {
        let agent = self.local(qualified)?;
        self.0
            .is_none_or(|key| key.may_use(agent))
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

    /// Whether the caller may follow a run the key named `started_by` started: that
    /// key, an admin key, or one that reaches every agent and id (or anyone without keys).
    pub fn follows(&self, started_by: Option<&str>) -> bool {
        self.0.is_none_or(|key| {
            key.admin
                || Some(key.name.as_str()) == started_by
                || (key.agents.iter().any(|a| a == "*") && key.ids == "*")
        })
    }

    /// Refuses all but an admin key when keys are configured: for the management API's
    /// reads, which are open without keys (on loopback, as every route then is).
    pub fn admin_reader(&self) -> Result<(), ApiError> {
        match self.0 {
            None => Ok(()),
            Some(_) => self.admin(),
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

pub(super) fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for presented in [
            "bearer secret",
            "BEARER  secret ",
            "Basic dXNlcjpzZWNyZXQ=", // user:secret
            "basic c2VjcmV0Og==",     // secret:
        ] {
            headers.insert(header::AUTHORIZATION, presented.parse().unwrap());
            assert!(
                auth.authorize(&headers, None, "a", "t-1").is_ok(),
                "{presented}"
            );
        }
        headers.insert(header::AUTHORIZATION, "Token secret".parse().unwrap());
        assert!(auth.authorize(&headers, None, "a", "t-1").is_err());
        headers.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
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
