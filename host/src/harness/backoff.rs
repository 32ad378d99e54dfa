//! Back-off for an instance that keeps failing to start: after each failure in a row it
//! is left alone twice as long as before (1 s, 2 s, … up to 30 s), and calls in the
//! meantime get the last failure at once instead of paying for another instantiation and
//! `create`. A new version of the agent, or a start that succeeds, ends the back-off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::registry::AgentVersion;
use crate::runtime::GuestError;

/// The pause after the first failure to start.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between two attempts to start.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// The failures in a row of one instance to start one version of its agent.
pub(super) struct StartFailures {
    version: Arc<AgentVersion>,
    failures: u32,
    last: GuestError,
    retry_at: Instant,
}

impl StartFailures {
    /// Records a failure to start `version` with `error`, counting on from `previous`
    /// if that was for the same version.
    pub(super) fn record(
        previous: Option<StartFailures>,
        version: &Arc<AgentVersion>,
        error: &GuestError,
    ) -> Self {
        let earlier = previous
            .filter(|p| Arc::ptr_eq(&p.version, version))
            .map_or(0, |p| p.failures);
        let failures = earlier + 1;
        let pause = FIRST_PAUSE
            .saturating_mul(1 << (failures - 1).min(16))
            .min(LONGEST_PAUSE);
        Self {
            version: version.clone(),
            failures,
            last: error.clone(),
            retry_at: Instant::now() + pause,
        }
    }

    /// The answer for a call to `version` while the back-off lasts: the last failure,
    /// saying when the next attempt will be made. `None` once an attempt may be made.
    pub(super) fn refusal(&self, version: &Arc<AgentVersion>) -> Option<GuestError> {
        let retry_in = self.retry_at.checked_duration_since(Instant::now())?;
        Arc::ptr_eq(&self.version, version).then(|| GuestError::BackingOff {
            last: Box::new(self.last.clone()),
            failures: self.failures,
            retry_in,
        })
    }

    /// Whether the record no longer matters: its back-off ended longer ago than the
    /// longest pause.
    pub(super) fn stale(&self) -> bool {
        self.retry_at.elapsed() > LONGEST_PAUSE
    }
}

/// Whether a failure to start says something about the instance itself (its code, its
/// configuration), rather than about the host's capacity or its own I/O.
pub(super) fn counts(error: &GuestError) -> bool {
    !matches!(error, GuestError::TooManyInstances(_) | GuestError::Host(_))
}
