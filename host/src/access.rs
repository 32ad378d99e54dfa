//! Who may reach what: the API keys of `flue.toml` (stored as SHA-256 hashes, each
//! limited to some agents and an instance-id pattern, within a tenant's namespace for a
//! tenant's key), and the [`Scope`] a caller's key gives to work done on its behalf.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Identity;

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

impl ApiKey {
    /// Whether the key names `agent` (its name within the key's namespace).
    pub fn may_use(&self, agent: &str) -> bool {
        self.agents.iter().any(|a| a == "*" || a == agent)
    }
}

/// What a caller may reach, carried by work started on its behalf (a workflow run
/// prompts agents only within the scope of the key that started it).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The caller's key; `None` when no keys are configured, or for the operator's own
    /// tools (the command line), which reach everything.
    key: Option<ApiKey>,
}

impl Scope {
    /// The scope of `key`; `None` reaches everything.
    pub fn new(key: Option<ApiKey>) -> Self {
        Self { key }
    }

    /// What an agent's `authorize` export is told about the caller.
    pub fn identity(&self) -> Identity {
        let key = self.key.as_ref();
        Identity {
            tenant: key.and_then(|k| k.tenant.clone()),
            key: key.map(|k| k.name.clone()),
            claims: key.map(|k| k.claims.clone()).unwrap_or_default(),
        }
    }

    /// Checks that the scope reaches instance `id` of host agent `agent`
    /// (`<tenant>/<name>` for a tenant's); the reason, for the caller, if not.
    pub fn check(&self, agent: &str, id: &str) -> Result<(), String> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let local = crate::registry::local_name(key.tenant.as_deref(), agent)
            .filter(|local| key.may_use(local))
            .ok_or_else(|| format!("this key may not use agent '{agent}'"))?;
        if !glob(&key.ids, id) {
            return Err(format!(
                "this key may not reach instance '{id}' of '{local}'"
            ));
        }
        Ok(())
    }
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
    fn a_scope_reaches_its_keys_agents_and_ids_only() {
        let key = ApiKey {
            name: "support".into(),
            sha256: hash_key("k"),
            agents: vec!["support_assistant".into()],
            ids: "ticket-*".into(),
            tenant: None,
            admin: false,
            claims: Default::default(),
        };
        let scope = Scope::new(Some(key.clone()));
        assert!(scope.check("support_assistant", "ticket-1").is_ok());
        assert!(scope.check("support_assistant", "other-99").is_err());
        assert!(scope.check("reviewer", "ticket-1").is_err());
        assert!(Scope::default().check("reviewer", "other-99").is_ok());
        let tenant = Scope::new(Some(ApiKey {
            tenant: Some("acme".into()),
            agents: vec!["*".into()],
            ..key
        }));
        assert!(tenant.check("acme/support_assistant", "ticket-1").is_ok());
        assert!(tenant.check("support_assistant", "ticket-1").is_err());
        assert!(
            tenant
                .check("globex/support_assistant", "ticket-1")
                .is_err()
        );
        assert_eq!(tenant.identity().tenant.as_deref(), Some("acme"));
    }
}
