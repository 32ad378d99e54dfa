//! Live instances, one per (agent, id): created on first use by calling the guest's
//! `create`, discarded after a trap or timeout and created again on next use. An
//! instance that keeps failing to start is backed off (backoff.rs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backoff::{self, StartFailures};
use super::imports::GuestImports;
use super::{Shared, skills};
use crate::Error;
use crate::agent_config::AgentConfig;
use crate::models::{BoxFuture, Usage};
use crate::registry::AgentVersion;
use crate::runtime::{GuestError, Instance};
use crate::store::{InstanceKey, SessionKey};

/// An instance whose `create` has run.
struct Live {
    instance: Instance,
    host: Arc<GuestImports>,
    config: Arc<AgentConfig>,
    version: Arc<AgentVersion>,
    last_used: Instant,
}

/// What one (agent, id) has: its live instance, and its failures in a row to start one.
#[derive(Default)]
struct SlotState {
    live: Option<Live>,
    failures: Option<StartFailures>,
}

impl SlotState {
    /// Whether there is nothing worth keeping: no instance and no back-off in force.
    fn forgettable(&self) -> bool {
        self.live.is_none() && self.failures.as_ref().is_none_or(StartFailures::stale)
    }
}

type Slot = Arc<tokio::sync::Mutex<SlotState>>;

/// The table of instance slots. A slot's lock is held only during a guest call.
#[derive(Default)]
pub(crate) struct Instances {
    slots: Mutex<HashMap<InstanceKey, Slot>>,
    live: AtomicUsize,
}

impl Instances {
    /// How many instances are live.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Drops a slot's instance, if it has one.
    fn discard(&self, live: &mut Option<Live>) {
        if live.take().is_some() {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Drops instances unused for `idle` (all idle ones with `Duration::ZERO`), oldest
    /// first, at most `limit` of them; instances in a call are left alone. Returns how
    /// many were dropped.
    pub(crate) fn evict_idle(&self, idle: Duration, limit: usize) -> usize {
        let mut slots = self.slots.lock().expect("instances lock");
        let mut idle_slots: Vec<(Instant, tokio::sync::OwnedMutexGuard<SlotState>)> = slots
            .values()
            .filter_map(|slot| slot.clone().try_lock_owned().ok())
            .filter_map(|guard| {
                let used = guard.live.as_ref()?.last_used;
                (used.elapsed() >= idle).then_some((used, guard))
            })
            .collect();
        idle_slots.sort_by_key(|(used, _)| *used);
        let evicted = idle_slots.len().min(limit);
        for (_, mut guard) in idle_slots.into_iter().take(evicted) {
            self.discard(&mut guard.live);
        }
        // Forget empty slots nobody holds, so the table does not grow without bound.
        slots.retain(|_, slot| {
            Arc::strong_count(slot) > 1 || slot.try_lock().map_or(true, |g| !g.forgettable())
        });
        evicted
    }

    fn slot(&self, key: &InstanceKey) -> Slot {
        self.slots
            .lock()
            .expect("instances lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }
}

/// The slot's instance if it runs `version`, marked as just used.
fn current<'a>(live: &'a mut Option<Live>, version: &Arc<AgentVersion>) -> Option<&'a mut Live> {
    let live = live
        .as_mut()
        .filter(|live| Arc::ptr_eq(&live.version, version))?;
    live.last_used = Instant::now();
    Some(live)
}

impl Shared {
    /// The configuration of an instance of the agent's current version, and that
    /// version; creates the instance (on the guest threads) if it is not live.
    pub(crate) async fn instance_config(
        self: &Arc<Self>,
        key: &InstanceKey,
    ) -> Result<(Arc<AgentConfig>, Arc<AgentVersion>), Error> {
        let version = self.agent(&key.agent)?;
        let mut held = self.instances.slot(key).lock_owned().await;
        if let Some(live) = current(&mut held.live, &version) {
            return Ok((live.config.clone(), version));
        }
        let (shared, owned, pinned) = (self.clone(), key.clone(), version.clone());
        let config = self
            .on_guest_threads(&key.agent, async move {
                let live = shared.ensure_live(&owned, &mut held, &pinned).await?;
                Ok(live.config.clone())
            })
            .await?;
        Ok((config, version))
    }

    /// Runs a task that calls into one of `agent`'s instances on the guest threads; the
    /// slot it holds moves there with it.
    async fn on_guest_threads<T: Send + 'static>(
        &self,
        agent: &str,
        task: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        self.runtime
            .on_guest_threads(task)
            .await
            .map_err(|source| Error::Guest {
                agent: agent.to_string(),
                source,
            })?
    }

    /// Runs one of the agent's own tools inside its instance, with the tokens its own
    /// model calls used. `Ok((Err(_), _))` is the tool's own error; `Err(_)` means the
    /// instance failed and was discarded. The tool runs in `version`, the one the prompt
    /// started with, even if a newer one was loaded since.
    pub(crate) async fn call_guest_tool(
        self: &Arc<Self>,
        key: &SessionKey,
        version: &Arc<AgentVersion>,
        name: &str,
        args: &str,
    ) -> Result<(Result<String, String>, Usage), Error> {
        let (session, name, args) = (key.session.clone(), name.to_string(), args.to_string());
        self.in_instance(&key.instance, version, move |live| {
            Box::pin(async move {
                let answer = live.instance.call_tool(&session, &name, &args).await?;
                let spent = live.host.take_spent();
                Ok((answer, spent))
            })
        })
        .await
    }

    /// Asks the agent whether `caller` (told as JSON: tenant, key, claims) may reach
    /// instance `key`, in that instance (made live if need be). Agents that do not decide (no
    /// `authorize` export) are not called: the answer is `true`.
    pub(crate) async fn guest_authorizes(
        self: &Arc<Self>,
        key: &InstanceKey,
        caller: &crate::Identity,
    ) -> Result<bool, Error> {
        let version = self.agent(&key.agent)?;
        if !version.compiled.authorizes() {
            return Ok(true);
        }
        let (caller, id) = (caller.clone(), key.id.clone());
        self.in_instance(key, &version, move |live| {
            Box::pin(async move { live.instance.authorize(&caller, &id).await })
        })
        .await
    }

    /// Runs `call` in instance `key` of `version` on the guest threads, holding its
    /// slot, made live first if need be. A call that trapped or passed a limit discards
    /// the instance; one whose answer was refused as too large leaves it as it was.
    async fn in_instance<T: Send + 'static>(
        self: &Arc<Self>,
        key: &InstanceKey,
        version: &Arc<AgentVersion>,
        call: impl for<'a> FnOnce(&'a mut Live) -> BoxFuture<'a, Result<T, GuestError>> + Send + 'static,
    ) -> Result<T, Error> {
        let mut held = self.instances.slot(key).lock_owned().await;
        let (shared, key, version) = (self.clone(), key.clone(), version.clone());
        self.on_guest_threads(&key.agent.clone(), async move {
            let live = shared.ensure_live(&key, &mut held, &version).await?;
            match call(live).await {
                Ok(answer) => Ok(answer),
                Err(source) => {
                    if !matches!(source, GuestError::Oversized(_)) {
                        shared.instances.discard(&mut held.live);
                    }
                    Err(shared.guest_failure(&key.agent, source))
                }
            }
        })
        .await
    }

    /// Makes the slot live on `version`: instantiates it and runs `create`, replacing
    /// an instance of another version. While the slot is backed off, answers with its
    /// last failure instead.
    async fn ensure_live<'a>(
        self: &Arc<Self>,
        key: &InstanceKey,
        slot: &'a mut SlotState,
        version: &Arc<AgentVersion>,
    ) -> Result<&'a mut Live, Error> {
        if current(&mut slot.live, version).is_none() {
            // Nothing live, or an instance of another version: start afresh.
            self.instances.discard(&mut slot.live);
            if let Some(source) = slot.failures.as_ref().and_then(|f| f.refusal(version)) {
                let agent = key.agent.clone();
                return Err(Error::Guest { agent, source });
            }
            let started = match self.start(key, version.clone()).await {
                Err(Error::Guest {
                    source: GuestError::TooManyInstances(_),
                    ..
                }) if self.instances.evict_idle(Duration::ZERO, 1) > 0 => {
                    self.start(key, version.clone()).await
                }
                other => other,
            };
            match started {
                Ok(started) => {
                    slot.live = Some(started);
                    slot.failures = None;
                    self.instances.live.fetch_add(1, Ordering::Relaxed);
                }
                Err(Error::Guest { agent, source }) if backoff::counts(&source) => {
                    let previous = slot.failures.take();
                    slot.failures = Some(StartFailures::record(previous, version, &source));
                    return Err(Error::Guest { agent, source });
                }
                Err(other) => return Err(other),
            }
        }
        Ok(current(&mut slot.live, version).expect("made live above"))
    }

    /// The error for a failed guest call, counting traps and limits passed.
    fn guest_failure(&self, agent: &str, source: GuestError) -> Error {
        if matches!(source, GuestError::Trap(_) | GuestError::Limit { .. }) {
            self.stats.guest_trapped(agent);
        }
        Error::Guest {
            agent: agent.to_string(),
            source,
        }
    }

    async fn start(
        self: &Arc<Self>,
        key: &InstanceKey,
        version: Arc<AgentVersion>,
    ) -> Result<Live, Error> {
        let guest_error = |source| self.guest_failure(&key.agent, source);
        let host = Arc::new(self.guest_imports(key.clone(), None));
        let mut instance = self
            .runtime
            .instantiate(
                &version.compiled,
                host.clone(),
                &self
                    .policies
                    .guest_limits(&key.agent, self.runtime.limits()),
            )
            .await
            .map_err(guest_error)?;
        let mut env = self.policies.env(&key.agent);
        env.extend(self.options.config.agent(&key.agent).env);
        let mut config = instance
            .create(&key.agent, &key.id, env.into_iter().collect(), None)
            .await
            .map_err(guest_error)?
            .resolved();
        skills::load(&mut config, &self.options.skills_dir).map_err(|reason| Error::Config {
            agent: key.agent.clone(),
            reason,
        })?;
        let config = Arc::new(config);
        host.created(config.clone());
        Ok(Live {
            instance,
            host,
            config,
            version,
            last_used: Instant::now(),
        })
    }
}
