//! Opening a session's sandbox from its agent's configuration and the host's policy,
//! and keeping a virtual tree with the session.

use std::time::Duration;

use super::Shared;
use crate::Error;
use crate::agent_config::{AgentConfig, Sandbox as Kind};
use crate::store::{SessionKey, Store};
use crate::tools::{Sandbox, ShellPolicy, VirtualTree};

/// How long a `bash` command may run unless `flue.toml` says otherwise.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The state key a session's virtual tree is kept under.
fn state_key(session: &str) -> String {
    format!("flue.sandbox:{session}")
}

/// Empties a session's stored virtual tree, if it has one.
pub(super) async fn forget(store: &dyn Store, key: &SessionKey) -> Result<(), Error> {
    let state = state_key(&key.session);
    if store.state_get(&key.instance, &state).await?.is_some() {
        store.state_set(&key.instance, &state, "{}").await?;
    }
    Ok(())
}

impl Shared {
    /// The sandbox of a session, as its agent configured it; `None` for no sandbox.
    /// A `local` sandbox must lie inside a folder `flue.toml` lists for the agent. The
    /// agent's tenant may forbid the kind, or some of the built-in tools.
    pub(super) async fn open_sandbox(
        &self,
        key: &SessionKey,
        config: &AgentConfig,
    ) -> Result<Option<Sandbox>, Error> {
        let agent = &key.instance.agent;
        let refuse = |reason: String| Error::Config {
            agent: agent.clone(),
            reason,
        };
        let kind = match config.sandbox {
            None | Some(Kind::None) => return Ok(None),
            Some(Kind::Virtual) => "virtual",
            Some(Kind::Local) => "local",
        };
        self.policies.check_sandbox(agent, kind)?;
        let builtins = self.policies.builtin_tools(agent);
        let sandbox = match config.sandbox {
            None | Some(Kind::None) => return Ok(None),
            Some(Kind::Virtual) => {
                let stored = self
                    .store_for(config)
                    .state_get(&key.instance, &state_key(&key.session))
                    .await?;
                let files = match stored {
                    Some(json) => serde_json::from_str(&json)
                        .map_err(|e| refuse(format!("its stored sandbox is unreadable: {e}")))?,
                    None => Default::default(),
                };
                Sandbox::virtual_tree(config.cwd.as_deref(), VirtualTree { files })
            }
            Some(Kind::Local) => {
                let cwd = config
                    .cwd
                    .as_deref()
                    .ok_or_else(|| refuse("a local sandbox needs a cwd".into()))?;
                let root = self
                    .options
                    .project_dir()
                    .join(cwd)
                    .canonicalize()
                    .map_err(|e| refuse(format!("its sandbox folder {cwd}: {e}")))?;
                let settings = self.options.config.agent(agent);
                let allowed = settings
                    .local_dirs
                    .iter()
                    .filter_map(|dir| dir.canonicalize().ok())
                    .any(|dir| root.starts_with(dir));
                if !allowed {
                    return Err(refuse(format!(
                        "its local sandbox {} is not allowed; list it (or a folder above it) in flue.toml under [agents.{agent}] local_dirs",
                        root.display()
                    )));
                }
                let host_files = self.options.host_files();
                let reached = host_files
                    .iter()
                    .find(|kept| root.starts_with(kept) || kept.starts_with(&root));
                if let Some(kept) = reached {
                    return Err(refuse(format!(
                        "its local sandbox {} would reach the host's own files ({}): bind a \
                         folder that neither holds them nor lies inside them",
                        root.display(),
                        kept.display()
                    )));
                }
                let shell = ShellPolicy {
                    commands: settings.commands,
                    timeout: settings
                        .command_timeout_ms
                        .map_or(DEFAULT_COMMAND_TIMEOUT, Duration::from_millis),
                };
                Sandbox::local(&root, Some(shell)).map_err(refuse)?
            }
        };
        Ok(Some(match builtins {
            Some(allowed) => sandbox.only(&allowed),
            None => sandbox,
        }))
    }

    /// Keeps a virtual tree that changed with its session.
    pub(super) async fn save_sandbox(
        &self,
        key: &SessionKey,
        config: &AgentConfig,
        sandbox: &Sandbox,
    ) -> Result<(), Error> {
        if let Some(tree) = sandbox.changed_virtual_tree() {
            let json = serde_json::to_string(&tree.files).expect("a map of strings serializes");
            self.store_for(config)
                .state_set(&key.instance, &state_key(&key.session), &json)
                .await?;
        }
        Ok(())
    }
}
