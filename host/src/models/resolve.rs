//! From a `provider/model` string to a client: built-in providers, `flue.toml` providers
//! and model aliases, API keys and base URLs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use super::capabilities::{CapabilityTable, ModelSettings};
use super::client::{Client, Endpoint};
use super::local::{self, Local, LocalSettings};
use super::retry::{DEFAULT_FIRST_DELAY, DEFAULT_MAX_RETRIES, RetryPolicy};
use super::{ModelError, Provider, anthropic::Anthropic, openai::OpenAi};
use crate::weights::ModelCache;

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions, and servers compatible with it.
    Openai,
}

/// How to reach one provider, as written in `flue.toml` `[providers.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Wire format; built-in providers know theirs, others must say.
    pub kind: Option<ProviderKind>,
    /// Base URL, e.g. `http://127.0.0.1:9000` (Anthropic) or `http://127.0.0.1:9000/v1` (OpenAI).
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// The API key itself (prefer `api_key_env`).
    pub api_key: Option<String>,
    /// What its models accept, by name pattern: `[providers.<name>.models."o3*"]`.
    #[serde(default)]
    pub models: BTreeMap<String, ModelSettings>,
    /// Retries of a call the provider could not answer now (HTTP 429, 529, 5xx, an error
    /// event before any content); default 3, 0 turns them off.
    pub max_retries: Option<u32>,
    /// The delay before the first retry, in milliseconds, doubled with jitter for each
    /// further one; default 500.
    pub retry_delay_ms: Option<u64>,
}

/// A parsed `provider/model` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// The provider's name: built in (`anthropic`, `openai`, `ollama`, `local`) or from
    /// `flue.toml [providers]`.
    pub provider: String,
    /// The provider's own model name, everything after the first `/`.
    pub model: String,
}

impl ModelRef {
    /// How many tokens the model reads at most, from its family's published figure (the
    /// local provider's own bound for `local/…`); a conservative 32k for models this host
    /// does not know.
    pub fn context_window(&self) -> usize {
        if self.provider == local::PROVIDER {
            return local::CONTEXT_TOKENS;
        }
        const WINDOWS: &[(&str, usize)] = &[
            ("claude", 200_000),
            ("gpt-4.1", 1_000_000),
            ("gpt-5", 400_000),
            ("gpt-4o", 128_000),
            ("o1", 200_000),
            ("o3", 200_000),
            ("o4", 200_000),
        ];
        WINDOWS
            .iter()
            .find(|(family, _)| self.model.starts_with(family))
            .map_or(32_000, |(_, window)| *window)
    }

    /// Splits `provider/model`; the model part may itself contain `/`.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        // `provider/model`, or PyFlue's `provider:model` when the colon comes first
        // (`ollama/llama3:8b` is still provider `ollama`).
        match s.split_once(['/', ':']) {
            Some((p, m)) if !p.is_empty() && !m.is_empty() => Ok(Self {
                provider: p.to_string(),
                model: m.to_string(),
            }),
            _ => Err(ModelError::BadModelName(s.to_string())),
        }
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

struct BuiltIn {
    name: &'static str,
    kind: ProviderKind,
    base_url: &'static str,
    base_url_var: &'static str,
    key_var: Option<&'static str>,
}

const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        name: "anthropic",
        kind: ProviderKind::Anthropic,
        base_url: "https://api.anthropic.com",
        base_url_var: "ANTHROPIC_BASE_URL",
        key_var: Some("ANTHROPIC_API_KEY"),
    },
    BuiltIn {
        name: "openai",
        kind: ProviderKind::Openai,
        base_url: "https://api.openai.com/v1",
        base_url_var: "OPENAI_BASE_URL",
        key_var: Some("OPENAI_API_KEY"),
    },
    BuiltIn {
        name: "ollama",
        kind: ProviderKind::Openai,
        base_url: "http://127.0.0.1:11434/v1",
        base_url_var: "OLLAMA_BASE_URL",
        key_var: None,
    },
];

/// Every provider the host can call, and the model aliases of `flue.toml` `[models]`.
pub struct Providers {
    http: reqwest::Client,
    settings: BTreeMap<String, ProviderSettings>,
    aliases: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    /// Clients made so far, by provider name: a provider is set up once, not per call.
    clients: RwLock<HashMap<String, Arc<dyn Provider>>>,
    /// The embedded provider (its settings say whether a keyless provider falls back).
    local: Arc<Local>,
    /// Whether the fallback was announced (it is, once).
    fell_back: AtomicBool,
}

impl Providers {
    /// Builds the table. `env` is a snapshot of the variables that name keys and base URLs
    /// (the CLI passes the process environment; embedders and tests pass their own);
    /// `local` says how the embedded model runs, from weights in `cache`.
    pub fn new(
        settings: BTreeMap<String, ProviderSettings>,
        aliases: BTreeMap<String, String>,
        env: BTreeMap<String, String>,
        local: LocalSettings,
        cache: ModelCache,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("the HTTP client has a valid static configuration");
        Self {
            http,
            settings,
            aliases,
            env,
            clients: RwLock::default(),
            local: Arc::new(Local::new(local, cache)),
            fell_back: AtomicBool::new(false),
        }
    }

    /// Applies the alias table: `fast` → `ollama/llama3.2`.
    pub fn expand_alias<'a>(&'a self, model: &'a str) -> &'a str {
        self.aliases.get(model).map(String::as_str).unwrap_or(model)
    }

    /// Resolves a model string (or alias) to its parsed form and a client. A model whose
    /// provider has no API key is answered by `[models] default` if that provider has
    /// one, else by the embedded local model unless `[local] fallback = false`; the
    /// first fallback is logged.
    pub fn resolve(&self, model: &str) -> Result<(ModelRef, Arc<dyn Provider>), ModelError> {
        let model_ref = ModelRef::parse(self.expand_alias(model))?;
        let missing = match self.client(&model_ref.provider) {
            Err(missing @ ModelError::MissingKey { .. }) => missing,
            other => return other.map(|client| (model_ref, client)),
        };
        let default = self.aliases.get("default").map(|d| ModelRef::parse(d));
        if let Some(Ok(default)) = default
            && default.provider != model_ref.provider
            && let Ok(client) = self.client(&default.provider)
        {
            self.announce(&missing, &default);
            return Ok((default, client));
        }
        let settings = self.local.settings();
        if !settings.fallback() {
            return Err(missing);
        }
        let local = ModelRef::parse(&settings.fallback_model())?;
        self.announce(&missing, &local);
        Ok((local, self.local.clone()))
    }

    fn announce(&self, missing: &ModelError, instead: &ModelRef) {
        if !self.fell_back.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{missing}; answering with {instead} instead ([models] default or --model choose \
                 another model, [local] fallback = false turns this off)"
            );
        }
    }

    /// The client of the provider called `name`, set up on first use.
    fn client(&self, name: &str) -> Result<Arc<dyn Provider>, ModelError> {
        let known = self
            .clients
            .read()
            .expect("provider clients")
            .get(name)
            .cloned();
        match known {
            Some(client) => Ok(client),
            None => {
                let client = self.client_for(name)?;
                let mut clients = self.clients.write().expect("provider clients");
                clients.insert(name.to_string(), client.clone());
                Ok(client)
            }
        }
    }

    /// A client for the provider called `name`, from `flue.toml` and the environment.
    fn client_for(&self, name: &str) -> Result<Arc<dyn Provider>, ModelError> {
        if name == local::PROVIDER {
            return Ok(self.local.clone());
        }
        let builtin = BUILT_IN.iter().find(|b| b.name == name);
        let configured = self.settings.get(name);
        if builtin.is_none() && configured.is_none() {
            return Err(ModelError::UnknownProvider(name.to_string()));
        }
        let configured = configured.cloned().unwrap_or_default();
        let kind = configured.kind.or(builtin.map(|b| b.kind)).ok_or_else(|| {
            ModelError::UnknownProvider(format!("{name} (flue.toml gives it no kind)"))
        })?;
        let base_url_var = builtin
            .map(|b| b.base_url_var.to_string())
            .unwrap_or_else(|| format!("base_url in flue.toml [providers.{name}]"));
        let base_url = builtin
            .and_then(|b| self.env.get(b.base_url_var).cloned())
            .or(configured.base_url.clone())
            .or(builtin.map(|b| b.base_url.to_string()))
            .ok_or_else(|| {
                ModelError::UnknownProvider(format!("{name} (flue.toml gives it no base_url)"))
            })?;
        let key_var = configured
            .api_key_env
            .clone()
            .or(builtin.and_then(|b| b.key_var.map(str::to_string)));
        let api_key = configured
            .api_key
            .clone()
            .or_else(|| key_var.as_ref().and_then(|v| self.env.get(v).cloned()))
            .filter(|k| !k.is_empty());
        if api_key.is_none()
            && let Some(var) = key_var
        {
            return Err(ModelError::MissingKey {
                provider: name.to_string(),
                env_var: var,
            });
        }
        let capabilities = CapabilityTable::new(&configured.models).map_err(|reason| {
            ModelError::UnknownProvider(format!(
                "{name} (flue.toml [providers.{name}.models]: {reason})"
            ))
        })?;
        let endpoint = Endpoint {
            provider: name.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            base_url_var,
            api_key,
            retry: RetryPolicy {
                max_retries: configured.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
                first_delay: configured
                    .retry_delay_ms
                    .map_or(DEFAULT_FIRST_DELAY, std::time::Duration::from_millis),
            },
            capabilities,
        };
        let http = self.http.clone();
        Ok(match kind {
            ProviderKind::Anthropic => Arc::new(Client::<Anthropic>::new(http, endpoint)?),
            ProviderKind::Openai => Arc::new(Client::<OpenAi>::new(http, endpoint)?),
        })
    }
}

/// The environment variables `Providers` reads, taken from this process: the built-in
/// providers' keys and base URLs, every `*_API_KEY`, and each variable a provider's
/// `api_key_env` names, whatever its name.
pub fn process_env(providers: &BTreeMap<String, ProviderSettings>) -> BTreeMap<String, String> {
    let mut names: Vec<&str> = BUILT_IN.iter().map(|b| b.base_url_var).collect();
    names.extend(BUILT_IN.iter().filter_map(|b| b.key_var));
    names.extend(providers.values().filter_map(|p| p.api_key_env.as_deref()));
    std::env::vars()
        .filter(|(k, _)| names.contains(&k.as_str()) || k.ends_with("_API_KEY"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers(env: &[(&str, &str)]) -> Providers {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let aliases = [("fast".to_string(), "ollama/llama3.2".to_string())].into();
        let local = LocalSettings {
            fallback: Some(false),
            ..LocalSettings::default()
        };
        Providers::new(BTreeMap::new(), aliases, env, local, ModelCache::default())
    }

    #[test]
    fn parses_provider_and_model() {
        let r = ModelRef::parse("ollama/library/llama3.2").unwrap();
        assert_eq!(r.provider, "ollama");
        assert_eq!(r.model, "library/llama3.2");
        assert_eq!(r.to_string(), "ollama/library/llama3.2");
        let pyflue = ModelRef::parse("openai:gpt-4o-mini").unwrap();
        assert_eq!(pyflue.to_string(), "openai/gpt-4o-mini");
        let tagged = ModelRef::parse("ollama/llama3:8b").unwrap();
        assert_eq!(
            (tagged.provider.as_str(), tagged.model.as_str()),
            ("ollama", "llama3:8b")
        );
        assert!(ModelRef::parse("claude").is_err());
        assert!(ModelRef::parse("/x").is_err());
    }

    #[test]
    fn missing_key_names_the_variable() {
        let err = providers(&[])
            .resolve("anthropic/claude-haiku-4-5")
            .err()
            .unwrap();
        assert!(err.to_string().contains("ANTHROPIC_API_KEY"), "{err}");
    }

    #[test]
    fn a_base_url_that_is_not_a_url_is_refused_when_resolving() {
        let env = [
            ("ANTHROPIC_BASE_URL", "not a url"),
            ("ANTHROPIC_API_KEY", "k"),
        ];
        let err = providers(&env)
            .resolve("anthropic/claude-haiku-4-5")
            .err()
            .unwrap();
        let message = err.to_string();
        assert!(message.contains("not a URL"), "{message}");
        assert!(message.contains("ANTHROPIC_BASE_URL"), "{message}");
    }

    #[test]
    fn a_provider_is_set_up_once() {
        let providers = providers(&[]);
        let (_, first) = providers.resolve("ollama/llama3.2").unwrap();
        let (_, second) = providers.resolve("fast").unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn aliases_and_keyless_providers_resolve() {
        let (r, _) = providers(&[]).resolve("fast").unwrap();
        assert_eq!(r.to_string(), "ollama/llama3.2");
        assert!(matches!(
            providers(&[]).resolve("nope/x").err().unwrap(),
            ModelError::UnknownProvider(_)
        ));
    }
}
