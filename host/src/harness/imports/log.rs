//! `flue:agent/log`: a guest's log lines, into the host's log under target
//! `flue::guest`, tagged with the instance they come from.

use crate::runtime::GuestLogLevel;
use crate::store::InstanceKey;

/// Writes one instance's log lines.
pub(super) struct LogImport {
    instance: InstanceKey,
}

impl LogImport {
    /// Lines tagged with `instance`'s agent and id.
    pub(super) fn new(instance: InstanceKey) -> Self {
        Self { instance }
    }

    pub(super) fn log(&self, session: Option<&str>, level: GuestLogLevel, message: &str) {
        let (agent, id) = (&self.instance.agent, &self.instance.id);
        let session = session.unwrap_or("-");
        match level {
            GuestLogLevel::Trace => {
                tracing::trace!(target: "flue::guest", agent, id, session, "{message}");
            }
            GuestLogLevel::Debug => {
                tracing::debug!(target: "flue::guest", agent, id, session, "{message}");
            }
            GuestLogLevel::Info => {
                tracing::info!(target: "flue::guest", agent, id, session, "{message}");
            }
            GuestLogLevel::Warn => {
                tracing::warn!(target: "flue::guest", agent, id, session, "{message}");
            }
            GuestLogLevel::Error => {
                tracing::error!(target: "flue::guest", agent, id, session, "{message}");
            }
        }
    }
}
