//! Retrying a model call the provider could not answer now: HTTP 429, 529 and 5xx, an
//! error event before any content, an answer that broke off. Delays grow exponentially
//! with jitter and are never shorter than the provider's `retry-after`. Once part of an
//! answer has reached the caller the call is not retried, so no text is shown twice.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use super::ModelError;

/// Retries after the first attempt, unless `flue.toml` says otherwise.
pub(super) const DEFAULT_MAX_RETRIES: u32 = 3;
/// The delay before the first retry, unless `flue.toml` says otherwise.
pub(super) const DEFAULT_FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest delay between two attempts that back-off chooses.
const LONGEST_DELAY: Duration = Duration::from_secs(8);
/// The longest `retry-after` waited out; a provider asking for more is not retried, and
/// its `retry-after` goes to the caller.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How one provider's transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// The delay before the first retry; each further one doubles it, with jitter.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            first_delay: DEFAULT_FIRST_DELAY,
        }
    }
}

impl RetryPolicy {
    /// The retries of one model call.
    pub(super) fn start(&self) -> Retries {
        let delays = ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(LONGEST_DELAY.max(self.first_delay))
            .with_max_times(self.max_retries as usize)
            .with_jitter()
            .build();
        Retries {
            delays,
            attempts: 0,
            last_delay: self.first_delay,
        }
    }
}

/// The retries left to one model call.
pub(super) struct Retries {
    delays: ExponentialBackoff,
    attempts: u32,
    /// The delay before the latest retry (the first delay before any).
    last_delay: Duration,
}

impl Retries {
    /// Called with each failed attempt: waits and returns `Ok` when the call should be
    /// made again, or returns the error to give up with. `may_retry` is false once part of
    /// the answer has reached the caller.
    pub(super) async fn after(
        &mut self,
        mut error: ModelError,
        may_retry: bool,
    ) -> Result<(), ModelError> {
        self.attempts += 1;
        if let ModelError::Busy { attempts, .. } = &mut error {
            *attempts = self.attempts;
        }
        let asked = error.retry_after();
        if !may_retry || !error.is_transient() || asked.is_some_and(|a| a > LONGEST_RETRY_AFTER) {
            return Err(error);
        }
        let Some(delay) = self.delays.next() else {
            // Out of retries: a provider that named no time to come back is given the
            // last delay, so the caller still learns when to try again.
            if let ModelError::Busy { retry_after, .. } = &mut error {
                retry_after.get_or_insert(self.last_delay);
            }
            return Err(error);
        };
        let delay = delay.max(asked.unwrap_or_default());
        self.last_delay = delay;
        tracing::warn!("{error}; trying again in {delay:.1?}");
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Reads a `retry-after` (RFC 9110 §10.2.3, whole seconds) or OpenAI's `retry-after-ms`
/// header; an HTTP date is not honoured (back-off applies instead).
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let value = headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()?;
        (value.is_finite() && value >= 0.0).then_some(value)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(retry_after: Option<Duration>) -> ModelError {
        ModelError::Busy {
            provider: "p".into(),
            rate_limited: true,
            detail: "slow down".into(),
            retry_after,
            attempts: 0,
        }
    }

    #[tokio::test]
    async fn retries_are_bounded_and_honour_retry_after() {
        let policy = RetryPolicy {
            max_retries: 2,
            first_delay: Duration::from_millis(1),
        };
        let mut retries = policy.start();
        assert!(retries.after(busy(None), true).await.is_ok());
        let started = std::time::Instant::now();
        let asked = Duration::from_millis(150);
        assert!(retries.after(busy(Some(asked)), true).await.is_ok());
        assert!(started.elapsed() >= asked, "waited {:?}", started.elapsed());
        match retries.after(busy(None), true).await {
            Err(ModelError::Busy {
                attempts: 3,
                retry_after: Some(after),
                ..
            }) => assert!(after >= asked, "the last delay is passed on: {after:?}"),
            other => panic!("the third failure ends the call: {other:?}"),
        }
        let mut fresh = policy.start();
        assert!(
            fresh.after(busy(None), false).await.is_err(),
            "not after text was sent"
        );
        let far = busy(Some(Duration::from_secs(120)));
        assert!(
            fresh.after(far, true).await.is_err(),
            "a long retry-after goes to the caller"
        );
        let refused = ModelError::Status {
            provider: "p".into(),
            status: 400,
            body: "bad".into(),
        };
        assert!(policy.start().after(refused, true).await.is_err());
    }

    #[test]
    fn retry_after_headers_are_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        headers.clear();
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
