//! Retrying operations whose outcome is unknown.
//!
//! A request that fails with [`Error::ConnectionLoss`](crate::Error::ConnectionLoss) or [`Error::OperationTimeout`](crate::Error::OperationTimeout) may or may
//! not have been applied: the connection broke (or the caller stopped waiting) before the reply
//! arrived. [`retry`] (or [`crate::Client::retry`]) runs an operation again under a
//! [`RetryPolicy`] in exactly those cases, and never after any other error: not after
//! `SessionExpired` (the session is gone: build a new one), nor after logic errors (`NoNode`,
//! `BadVersion`, ...), which would only repeat.
//!
//! Retrying is only safe for operations that are idempotent, or made so:
//!
//! | operation | after an unknown outcome, a retry... |
//! | --- | --- |
//! | reads (`get_data`, `exists`, `get_children`, ...), `sync` | is always safe |
//! | `set_data` / `delete` with an expected version | is safe: if the first attempt was applied, the retry fails with `BadVersion` / `NoNode` (check the data to tell) |
//! | `set_data` without a version | writes the same value again (the version goes up twice) |
//! | `delete` without a version | may delete a node someone else created meanwhile |
//! | `create` of a fixed name | may fail with `NodeExists` although the first attempt created it (compare data, or `ephemeral_owner` with your session id) |
//! | `create` of a **sequential** node | may create a **second** node: use [`crate::Client::create_protected`], which names the node with a unique `_c_<uuid>-` prefix (as Curator does) and finds it after a connection loss instead of creating another |
//! | `multi` | behaves as its ops do; guard it with `check` ops on versions |

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Result;

/// When and how often to retry an operation whose outcome is unknown.
///
/// Delays grow exponentially from `base` and are capped at `max_delay`; each is drawn at random
/// from its upper half (jitter, so that clients disconnected together do not retry together).
/// Retries stop after `max_retries`, or once the next one would start after `deadline` from the
/// first attempt, whichever comes first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    base: Duration,
    max_delay: Duration,
    max_retries: Option<u32>,
    deadline: Option<Duration>,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// 10 retries from 20 ms, doubling up to 2 s each (about 8 s in all), with jitter.
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_millis(20), Duration::from_secs(2)).max_retries(10)
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn never() -> Self {
        RetryPolicy {
            base: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retries: Some(0),
            deadline: None,
            jitter: false,
        }
    }

    /// Retry without limit (bound it with [`max_retries`](Self::max_retries) or
    /// [`deadline`](Self::deadline)), waiting `base`, `2·base`, `4·base`, ... up to `max_delay`.
    pub fn exponential(base: Duration, max_delay: Duration) -> Self {
        RetryPolicy { base, max_delay: max_delay.max(base), max_retries: None, deadline: None, jitter: true }
    }

    /// At most `n` retries (after the first attempt).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// No retry starting later than `d` after the first attempt.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Exact delays, without jitter (for tests and reproducible back-off).
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// The longest pause before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.max_delay)
    }

    /// The pause before retry number `retry`, `elapsed` after the first attempt, or `None` if
    /// the policy allows no more retries.
    pub fn next_pause(&self, retry: u32, elapsed: Duration) -> Option<Duration> {
        if self.max_retries.is_some_and(|max| retry > max) {
            return None;
        }
        let full = self.delay(retry);
        let pause = if self.jitter { crate::random::upper_half(full) } else { full };
        if self.deadline.is_some_and(|d| elapsed + pause > d) {
            return None;
        }
        Some(pause)
    }
}

/// Runs `op` until it succeeds, fails with an error that is not retryable
/// ([`Error::is_retryable`](crate::Error::is_retryable): only `ConnectionLoss` and `OperationTimeout` are), or `policy`
/// allows no more retries (the last error is returned).
///
/// `op` is called again for every attempt; it must be safe to repeat (see the module docs).
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut retries = 0;
    loop {
        match op().await {
            Err(e) if e.is_retryable() => {
                retries += 1;
                match policy.next_pause(retries, start.elapsed()) {
                    Some(pause) => {
                        tracing::debug!(error = %e, retry = retries, pause_ms = pause.as_millis() as u64, "retrying");
                        tokio::time::sleep(pause).await;
                    }
                    None => return Err(e),
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_and_cap() {
        let p = RetryPolicy::exponential(Duration::from_millis(10), Duration::from_millis(70)).without_jitter();
        let delays: Vec<_> = (1..=5).map(|r| p.delay(r).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 70, 70]);
        assert_eq!(p.next_pause(3, Duration::ZERO), Some(Duration::from_millis(40)));
        let j = RetryPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..100 {
            let d = j.next_pause(1, Duration::ZERO).unwrap();
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100), "{d:?}");
        }
    }

    #[test]
    fn limits() {
        let p =
            RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1)).max_retries(2).without_jitter();
        assert!(p.next_pause(2, Duration::ZERO).is_some());
        assert_eq!(p.next_pause(3, Duration::ZERO), None);
        let d = RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1))
            .deadline(Duration::from_millis(100))
            .without_jitter();
        assert!(d.next_pause(1, Duration::from_millis(50)).is_some());
        assert_eq!(d.next_pause(1, Duration::from_millis(95)), None);
        assert_eq!(RetryPolicy::never().next_pause(1, Duration::ZERO), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_unknown_outcomes() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::default();
        let r: Result<u32> = retry(&policy, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 3 {
                Err(Error::ConnectionLoss)
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(r, Ok(3));
        for e in [Error::SessionExpired, Error::NoNode, Error::BadVersion] {
            let calls = AtomicU32::new(0);
            let r: Result<()> = retry(&policy, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(e.clone())
            })
            .await;
            assert_eq!(r, Err(e));
            assert_eq!(calls.load(Ordering::SeqCst), 1, "never retried");
        }
        let calls = AtomicU32::new(0);
        let r: Result<()> = retry(&RetryPolicy::default().max_retries(4), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::OperationTimeout)
        })
        .await;
        assert_eq!(r, Err(Error::OperationTimeout));
        assert_eq!(calls.load(Ordering::SeqCst), 5, "the first attempt and 4 retries");
    }
}
