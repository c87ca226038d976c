//! What an async operator (`#[stoat::operator]` on an `async fn`) is run with: how many of its
//! calls a lane keeps in flight, how long one may take, how failures are retried, and how many
//! calls may reach the remote side at once across lanes ([`AsyncSettings`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::output::Emitter;
use crate::error::BoxError;

/// One call of an async operator: its outputs, or its error.
#[doc(hidden)]
pub type AsyncCall<K, V> = Pin<Box<dyn Future<Output = Result<Emitter<K, V>, BoxError>> + Send + 'static>>;

/// How an async operator runs. Set with `#[stoat::operator(concurrency = 64, timeout = "2s",
/// retries = 3, backoff = "100ms", limit = 256)]`, or per use with
/// [`Stream::process_with`](crate::topology::Stream::process_with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncSettings {
    /// Calls in flight at once per lane, across different keys (records of one key are called
    /// one after another, in order). Default 64.
    pub concurrency: usize,
    /// Calls in flight at once across all lanes (a limit towards the remote side); `None`
    /// (the default) for `lanes x concurrency`.
    pub limit: Option<usize>,
    /// How long one attempt may take before it counts as failed. Default 30 s.
    pub timeout: Duration,
    /// How many times a failed or timed-out attempt is retried before the record goes to the
    /// error policy. Default 3. A panic is never retried.
    pub retries: u32,
    /// The first retry's delay; each next one doubles, up to `max_backoff`, with jitter (a
    /// random half of it). Default 100 ms.
    pub backoff: Duration,
    /// The longest delay between retries. Default 10 s.
    pub max_backoff: Duration,
}

impl AsyncSettings {
    /// The defaults.
    pub const DEFAULT: AsyncSettings = AsyncSettings {
        concurrency: 64,
        limit: None,
        timeout: Duration::from_secs(30),
        retries: 3,
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(10),
    };

    /// Sets the calls in flight per lane.
    pub const fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = calls;
        self
    }
    /// Sets the calls in flight across lanes.
    pub const fn limit(mut self, calls: usize) -> Self {
        self.limit = Some(calls);
        self
    }
    /// Sets the timeout of one attempt.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Sets how many times a failed attempt is retried.
    pub const fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
    /// Sets the first retry's delay.
    pub const fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }
    /// Sets the longest delay between retries.
    pub const fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Why these settings cannot run, if they cannot.
    pub(crate) fn invalid(&self) -> Option<&'static str> {
        if self.concurrency == 0 {
            return Some("`concurrency` must be at least 1");
        }
        if self.limit == Some(0) {
            return Some("`limit` must be at least 1");
        }
        if self.timeout.is_zero() {
            return Some("`timeout` must be longer than zero");
        }
        None
    }

    /// The delay before retry `n` (1 for the first), with jitter drawn from `random`: a random
    /// point in the upper half of the doubled backoff.
    pub(crate) fn delay(&self, n: u32, random: u64) -> Duration {
        let doubled = self.backoff.saturating_mul(1u32 << n.saturating_sub(1).min(20));
        let cap = doubled.min(self.max_backoff);
        let half = cap / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if nanos == 0 { 0 } else { random % (nanos + 1) })
    }
}

impl Default for AsyncSettings {
    fn default() -> Self {
        AsyncSettings::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_cap_with_jitter_in_the_upper_half() {
        let s = AsyncSettings::DEFAULT
            .backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(500));
        for random in [0, 1, u64::MAX / 3, u64::MAX] {
            let d1 = s.delay(1, random);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100), "{d1:?}");
            let d2 = s.delay(2, random);
            assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200), "{d2:?}");
            let d9 = s.delay(9, random);
            assert!(d9 >= Duration::from_millis(250) && d9 <= Duration::from_millis(500), "{d9:?}");
        }
        assert_ne!(s.delay(3, 12_345), s.delay(3, 67_890_123), "jitter varies");
    }
}
