//! Policies, a tenant's (`[tenants.<name>]`) and an agent's own (`[policies.<agent>]`):
//! which models, sandboxes and built-in tools an agent may use, how many tool rounds
//! and how long a prompt may take, how many tokens may be spent per hour, and how many
//! prompts may run at once and start per minute; also the `env` and `fetch` hosts they
//! grant. Where both bind an agent, both must allow: the tighter value wins, and each
//! counts its own usage. A prompt over a limit fails with [`Error::LimitExceeded`]
//! naming the limit; budgets are checked before the provider is called. Counters live
//! in memory: they start afresh when the host does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::models::{ModelError, ModelResponse};
use crate::project::TenantSettings;
use crate::registry::tenant_of;
use crate::runtime::Limits;
use crate::{Error, Limit};

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
    /// How long until the window of `length` starts again.
    fn remaining(&self, length: Duration) -> Duration {
        length.saturating_sub(self.started.elapsed())
    }

    fn current(&mut self, length: Duration) -> &mut u64 {
        if self.started.elapsed() >= length {
            *self = Self::new();
        }
        &mut self.used
    }
}

/// What a policy's holder has used.
#[derive(Debug)]
struct Usage {
    tokens: Window,
    prompts: Window,
    running: u64,
}

impl Usage {
    fn new() -> Self {
        Self {
            tokens: Window::new(),
            prompts: Window::new(),
            running: 0,
        }
    }
}

/// Whose policy it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    Tenant,
    Agent,
}

/// The policies of every tenant and agent, and what each has used.
#[derive(Default)]
pub(crate) struct Policies {
    tenants: BTreeMap<String, TenantSettings>,
    agents: BTreeMap<String, TenantSettings>,
    /// What each tenant (by name) and each agent with a policy of its own has used.
    usage: Mutex<HashMap<Holder, HashMap<String, Usage>>>,
}

/// One policy that binds an agent: its tenant's or its own.
struct Scope<'a> {
    holder: Holder,
    /// The tenant's or the agent's name.
    name: &'a str,
    policy: &'a TenantSettings,
}

impl Scope<'_> {
    /// Who the policy binds, for messages: `tenant 'acme'`, `agent 'acme/support'`.
    fn who(&self) -> String {
        match self.holder {
            Holder::Tenant => format!("tenant '{}'", self.name),
            Holder::Agent => format!("agent '{}'", self.name),
        }
    }
}

/// A prompt admitted under its limits; it counts as running until dropped.
pub(crate) struct Admission<'a> {
    policies: &'a Policies,
    scopes: Vec<Scope<'a>>,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        for scope in &self.scopes {
            self.policies.with_usage(scope, |u| u.running -= 1);
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

fn exceeded(limit: Limit, message: String) -> Error {
    Error::LimitExceeded {
        limit,
        message,
        retry_after: None,
    }
}

/// A refusal that lifts by itself after `retry_after`.
fn exceeded_for(limit: Limit, message: String, retry_after: Duration) -> Error {
    Error::LimitExceeded {
        limit,
        message,
        retry_after: Some(retry_after),
    }
}

/// How soon a prompt refused for running too many at once may try again: running
/// prompts end at no known time, so this is a short wait.
const CONCURRENCY_RETRY: Duration = Duration::from_secs(1);

impl Policies {
    /// Policies from `flue.toml`'s `[tenants.<name>]` and `[policies.<agent>]`.
    pub(crate) fn new(
        tenants: BTreeMap<String, TenantSettings>,
        agents: BTreeMap<String, TenantSettings>,
    ) -> Self {
        Self {
            tenants,
            agents,
            usage: Mutex::default(),
        }
    }

    /// The policies that bind an agent: its tenant's, then its own; both must allow.
    fn scopes<'a>(&'a self, agent: &str) -> Vec<Scope<'a>> {
        let tenant = tenant_of(agent).and_then(|t| self.tenants.get_key_value(t));
        let tenant = tenant.map(|(name, policy)| (Holder::Tenant, name, policy));
        let own = self.agents.get_key_value(agent);
        let own = own.map(|(name, policy)| (Holder::Agent, name, policy));
        tenant
            .into_iter()
            .chain(own)
            .map(|(holder, name, policy)| Scope {
                holder,
                name,
                policy,
            })
            .collect()
    }

    /// The tightest of the values the agent's policies set, if any sets one.
    fn tightest<T: Ord>(
        &self,
        agent: &str,
        value: impl Fn(&TenantSettings) -> Option<T>,
    ) -> Option<T> {
        self.scopes(agent)
            .iter()
            .filter_map(|s| value(s.policy))
            .min()
    }

    fn with_usage<T>(&self, scope: &Scope, f: impl FnOnce(&mut Usage) -> T) -> T {
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = usage.entry(scope.holder).or_default();
        if !used.contains_key(scope.name) {
            used.insert(scope.name.to_string(), Usage::new());
        }
        f(used.get_mut(scope.name).expect("inserted above"))
    }

    /// Admits a prompt to `agent` if each of its policies is under its concurrency and
    /// rate limits.
    pub(crate) fn admit(&self, agent: &str) -> Result<Admission<'_>, Error> {
        let scopes = self.scopes(agent);
        for scope in &scopes {
            self.with_usage(scope, |usage| {
                if let Some(most) = scope.policy.max_concurrent_prompts
                    && usage.running >= most
                {
                    return Err(exceeded_for(
                        Limit::MaxConcurrentPrompts,
                        format!("{} already runs {most} prompts at once", scope.who()),
                        CONCURRENCY_RETRY,
                    ));
                }
                if let Some(most) = scope.policy.prompts_per_minute
                    && *usage.prompts.current(RATE_WINDOW) >= most
                {
                    return Err(exceeded_for(
                        Limit::PromptsPerMinute,
                        format!("{} started {most} prompts this minute", scope.who()),
                        usage.prompts.remaining(RATE_WINDOW),
                    ));
                }
                Ok(())
            })?;
        }
        for scope in &scopes {
            self.with_usage(scope, |usage| {
                *usage.prompts.current(RATE_WINDOW) += 1;
                usage.running += 1;
            });
        }
        Ok(Admission {
            policies: self,
            scopes,
        })
    }

    /// Refuses a model (`provider/model`) one of the agent's policies does not allow.
    fn check_model(&self, agent: &str, model: &str) -> Result<(), Error> {
        for scope in self.scopes(agent) {
            if let Some(allowed) = &scope.policy.allowed_models
                && !allowed.iter().any(|p| crate::access::glob(p, model))
            {
                return Err(exceeded(
                    Limit::AllowedModels,
                    format!(
                        "{} may not use model '{model}' (allowed: {})",
                        scope.who(),
                        list(allowed)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Makes a model call of `agent` (with `model`, as `provider/model`) under its
    /// policies: the model and the budgets are checked before `call` runs, and the
    /// tokens it used are counted after. Every model call goes through here.
    pub(crate) async fn metered(
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

    /// Refuses a model call once a policy of the agent has spent its tokens for the hour.
    fn check_budget(&self, agent: &str) -> Result<(), Error> {
        for scope in self.scopes(agent) {
            let Some(budget) = scope.policy.tokens_per_hour else {
                continue;
            };
            let (spent, remaining) = self.with_usage(&scope, |u| {
                (
                    *u.tokens.current(BUDGET_WINDOW),
                    u.tokens.remaining(BUDGET_WINDOW),
                )
            });
            if spent >= budget {
                return Err(exceeded_for(
                    Limit::TokensPerHour,
                    format!(
                        "{} has spent its {budget} tokens for this hour",
                        scope.who()
                    ),
                    remaining,
                ));
            }
        }
        Ok(())
    }

    /// Counts tokens a model call of the agent used against each of its policies.
    fn spend(&self, agent: &str, tokens: u64) {
        for scope in self.scopes(agent) {
            self.with_usage(&scope, |u| *u.tokens.current(BUDGET_WINDOW) += tokens);
        }
    }

    /// The guest limits for an instance of `agent`: the host's, tightened by its
    /// policies' `memory_mb`, `cpu_ms_per_call` and `wall_ms_per_call`.
    pub(crate) fn guest_limits(&self, agent: &str, host: &Limits) -> Limits {
        let mut limits = host.clone();
        if let Some(mb) = self.tightest(agent, |p| p.memory_mb) {
            limits.memory_bytes = limits.memory_bytes.min(mb.saturating_mul(1 << 20));
        }
        if let Some(ms) = self.tightest(agent, |p| p.cpu_ms_per_call) {
            limits.cpu_per_call = limits.cpu_per_call.min(Duration::from_millis(ms));
        }
        if let Some(ms) = self.tightest(agent, |p| p.wall_ms_per_call) {
            limits.wall_per_call = limits.wall_per_call.min(Duration::from_millis(ms));
        }
        limits
    }

    /// Refuses a sandbox kind (`virtual`, `local`) one of the agent's policies does not
    /// allow.
    pub(crate) fn check_sandbox(&self, agent: &str, kind: &str) -> Result<(), Error> {
        for scope in self.scopes(agent) {
            if let Some(allowed) = &scope.policy.sandboxes
                && !allowed.iter().any(|k| k == kind)
            {
                return Err(exceeded(
                    Limit::Sandboxes,
                    format!(
                        "{} may not use a {kind} sandbox (allowed: {})",
                        scope.who(),
                        list(allowed)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The built-in tools the agent may use, if its policies name them: those every
    /// policy that names them allows.
    pub(crate) fn builtin_tools(&self, agent: &str) -> Option<Vec<String>> {
        self.scopes(agent)
            .iter()
            .filter_map(|s| s.policy.builtin_tools.clone())
            .reduce(|kept, next| kept.into_iter().filter(|t| next.contains(t)).collect())
    }

    /// How long a prompt to `agent` may take: `host`, tightened by its policies'
    /// `wall_ms_per_prompt`.
    pub(crate) fn prompt_limit(&self, agent: &str, host: Duration) -> Duration {
        self.tightest(agent, |p| p.wall_ms_per_prompt)
            .map_or(host, |ms| host.min(Duration::from_millis(ms)))
    }

    /// How many tool rounds a prompt to `agent` may take: `host`, tightened by its
    /// policies' `max_tool_rounds`.
    pub(crate) fn max_tool_rounds(&self, agent: &str, host: u32) -> u32 {
        self.tightest(agent, |p| p.max_tool_rounds)
            .map_or(host, |rounds| host.min(rounds))
    }

    /// The `env` the agent's policies hand to its `create`: its tenant's, then its own
    /// policy's, a later value winning.
    pub(crate) fn env(&self, agent: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for scope in self.scopes(agent) {
            env.extend(scope.policy.env.clone());
        }
        env
    }

    /// The hosts the agent's policies let its `fetch` reach.
    pub(crate) fn fetch_hosts(&self, agent: &str) -> Vec<String> {
        let scopes = self.scopes(agent);
        scopes
            .iter()
            .flat_map(|s| s.policy.fetch_hosts.iter().cloned())
            .collect()
    }
}
