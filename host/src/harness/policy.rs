//! Tenant policies: which models, sandboxes and built-in tools a tenant's agents may
//! use, how many tool rounds a prompt may take, how many tokens a tenant may spend per
//! hour, and how many prompts it may run at once and start per minute. A prompt over a limit fails with
//! [`Error::LimitExceeded`] naming the limit; budgets are checked before the provider
//! is called. Counters live in memory: they start afresh when the host does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Error;
use crate::models::{ModelError, ModelResponse};
use crate::project::TenantSettings;
use crate::registry::tenant_of;
use crate::runtime::Limits;

/// The window of the token budget.
const BUDGET_WINDOW: Duration = Duration::from_secs(3600);
/// The window of the prompt rate.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// A count that starts again when its window has passed.
#[derive(Debug)]
struct Window {
    started: Instant,
    used: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            used: 0,
        }
    }

    /// The count in the current window.
    fn current(&mut self, length: Duration) -> &mut u64 {
        if self.started.elapsed() >= length {
            *self = Self::new();
        }
        &mut self.used
    }
}

/// What a tenant has used.
#[derive(Debug)]
struct Usage {
    tokens: Window,
    prompts: Window,
    running: u64,
}

/// The policies of every tenant and what each has used.
#[derive(Default)]
pub struct Policies {
    tenants: BTreeMap<String, TenantSettings>,
    usage: Mutex<HashMap<String, Usage>>,
}

/// A prompt admitted under its tenant's limits; it counts as running until dropped.
pub struct Admission<'a> {
    policies: &'a Policies,
    tenant: Option<String>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(tenant) = &self.tenant {
            self.policies.with_usage(tenant, |u| u.running -= 1);
        }
    }
}

/// Names for a message: comma-separated, or `none`.
fn list(names: &[String]) -> String {
    match names.is_empty() {
        true => "none".into(),
        false => names.join(", "),
    }
}

fn exceeded(limit: &str, message: String) -> Error {
    Error::LimitExceeded {
        limit: limit.to_string(),
        message,
    }
}

impl Policies {
    /// Policies from `flue.toml`'s `[tenants.<name>]`.
    pub fn new(tenants: BTreeMap<String, TenantSettings>) -> Self {
        Self {
            tenants,
            usage: Mutex::default(),
        }
    }

    /// The tenant an agent belongs to and its policy; `None` for the operator's agents.
    fn of(&self, agent: &str) -> Option<(&str, &TenantSettings)> {
        self.tenants
            .get_key_value(tenant_of(agent)?)
            .map(|(t, s)| (t.as_str(), s))
    }

    fn with_usage<T>(&self, tenant: &str, f: impl FnOnce(&mut Usage) -> T) -> T {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        f(usage.entry(tenant.to_string()).or_insert_with(|| Usage {
            tokens: Window::new(),
            prompts: Window::new(),
            running: 0,
        }))
    }

    /// Admits a prompt to `agent` if its tenant is under its concurrency and rate limits.
    pub fn admit(&self, agent: &str) -> Result<Admission<'_>, Error> {
        let Some((tenant, policy)) = self.of(agent) else {
            return Ok(Admission {
                policies: self,
                tenant: None,
            });
        };
        self.with_usage(tenant, |usage| {
            if let Some(most) = policy.max_concurrent_prompts
                && usage.running >= most
            {
                return Err(exceeded(
                    "max_concurrent_prompts",
                    format!("tenant '{tenant}' already runs {most} prompts at once"),
                ));
            }
            let started = usage.prompts.current(RATE_WINDOW);
            if let Some(most) = policy.prompts_per_minute
                && *started >= most
            {
                return Err(exceeded(
                    "prompts_per_minute",
                    format!("tenant '{tenant}' started {most} prompts this minute"),
                ));
            }
            *started += 1;
            usage.running += 1;
            Ok(())
        })?;
        Ok(Admission {
            policies: self,
            tenant: Some(tenant.to_string()),
        })
    }

    /// Refuses a model (`provider/model`) the agent's tenant may not use.
    fn check_model(&self, agent: &str, model: &str) -> Result<(), Error> {
        let Some((tenant, policy)) = self.of(agent) else {
            return Ok(());
        };
        match &policy.allowed_models {
            Some(allowed) if !allowed.iter().any(|p| crate::server::auth::glob(p, model)) => {
                Err(exceeded(
                    "allowed_models",
                    format!(
                        "tenant '{tenant}' may not use model '{model}' (allowed: {})",
                        list(allowed)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Makes a model call of `agent` (with `model`, as `provider/model`) under its
    /// tenant's policy: the model and the budget are checked before `call` runs, and the
    /// tokens it used are counted after. Every model call goes through here.
    pub async fn metered(
        &self,
        agent: &str,
        model: &str,
        call: impl Future<Output = Result<ModelResponse, ModelError>>,
    ) -> Result<ModelResponse, Error> {
        self.check_model(agent, model)?;
        self.check_budget(agent)?;
        let answer = call.await?;
        self.spend(agent, answer.usage.total());
        Ok(answer)
    }

    /// Refuses a model call once the agent's tenant has spent its tokens for the hour.
    fn check_budget(&self, agent: &str) -> Result<(), Error> {
        let Some((tenant, policy)) = self.of(agent) else {
            return Ok(());
        };
        let Some(budget) = policy.tokens_per_hour else {
            return Ok(());
        };
        let spent = self.with_usage(tenant, |u| *u.tokens.current(BUDGET_WINDOW));
        if spent >= budget {
            return Err(exceeded(
                "tokens_per_hour",
                format!("tenant '{tenant}' has spent its {budget} tokens for this hour"),
            ));
        }
        Ok(())
    }

    /// Counts tokens a model call of the agent used against its tenant's budget.
    fn spend(&self, agent: &str, tokens: u64) {
        if let Some((tenant, _)) = self.of(agent) {
            self.with_usage(tenant, |u| *u.tokens.current(BUDGET_WINDOW) += tokens);
        }
    }

    /// The guest limits for an instance of `agent`: the host's, tightened by its
    /// tenant's `memory_mb`, `cpu_ms_per_call` and `wall_ms_per_call`.
    pub fn guest_limits(&self, agent: &str, host: &Limits) -> Limits {
        let mut limits = host.clone();
        if let Some((_, policy)) = self.of(agent) {
            if let Some(mb) = policy.memory_mb {
                limits.memory_bytes = limits.memory_bytes.min(mb.saturating_mul(1 << 20));
            }
            if let Some(ms) = policy.cpu_ms_per_call {
                limits.cpu_per_call = limits.cpu_per_call.min(Duration::from_millis(ms));
            }
            if let Some(ms) = policy.wall_ms_per_call {
                limits.wall_per_call = limits.wall_per_call.min(Duration::from_millis(ms));
            }
        }
        limits
    }

    /// Refuses a sandbox kind (`virtual`, `local`) the agent's tenant may not use.
    pub fn check_sandbox(&self, agent: &str, kind: &str) -> Result<(), Error> {
        let Some((tenant, policy)) = self.of(agent) else {
            return Ok(());
        };
        match &policy.sandboxes {
            Some(allowed) if !allowed.iter().any(|k| k == kind) => Err(exceeded(
                "sandboxes",
                format!(
                    "tenant '{tenant}' may not use a {kind} sandbox (allowed: {})",
                    list(allowed)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The built-in tools the agent's tenant allows, if it names them.
    pub fn builtin_tools(&self, agent: &str) -> Option<&[String]> {
        self.of(agent)?.1.builtin_tools.as_deref()
    }

    /// How long a prompt to `agent` may take: `host`, tightened by its tenant's
    /// `wall_ms_per_prompt`.
    pub fn prompt_limit(&self, agent: &str, host: Duration) -> Duration {
        self.of(agent)
            .and_then(|(_, policy)| policy.wall_ms_per_prompt)
            .map_or(host, |ms| host.min(Duration::from_millis(ms)))
    }

    /// The tenant's bound on tool rounds per prompt, if it sets one.
    pub fn max_tool_rounds(&self, agent: &str) -> Option<u32> {
        self.of(agent)?.1.max_tool_rounds
    }
}
