//! [`Wait`]: the one way every recipe call that can block is told how long it may: forever, not
//! at all (one attempt), up to a timeout or deadline, or until a [`CancellationToken`] is
//! cancelled — or the first of several of these.
//!
//! Each recipe offers shorthands (`lock()`, `try_lock()`, `lock_timeout(d)`,
//! `lock_cancellable(&token)`) and one general form taking a `Wait` (`lock_with(wait)`); they all
//! end the same way: `Ok(Some(..))` with what was asked for, `Ok(None)` when the wait is over
//! first (everything the attempt had put on the server is removed), or an error.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// How long a recipe call may wait for what it asks (a lock, a lease, leadership, an item).
///
/// Built with one of the constructors and narrowed with the `with_*` methods, which combine:
/// the wait is over at the first limit reached.
///
/// ```
/// use std::time::Duration;
/// use conclave::{CancellationToken, Wait};
///
/// let shutdown = CancellationToken::new();
/// // Up to 30 s, and not past shutdown.
/// let wait = Wait::timeout(Duration::from_secs(30)).with_cancel(&shutdown);
/// # let _ = wait;
/// ```
///
/// A timeout is relative to the start of each call the `Wait` is given to (one value can be
/// reused); a deadline is absolute. A call whose limit has already passed when it starts still
/// makes one attempt, without waiting, like [`Wait::once`].
#[derive(Debug, Clone, Default)]
pub struct Wait {
    once: bool,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    cancel: Option<CancellationToken>,
}

impl Wait {
    /// Wait as long as it takes (until the session ends).
    pub fn forever() -> Wait {
        Wait::default()
    }

    /// One attempt, no waiting: succeed only if what is asked is available at once.
    pub fn once() -> Wait {
        Wait { once: true, ..Wait::default() }
    }

    /// Up to `timeout` from the start of the call.
    pub fn timeout(timeout: Duration) -> Wait {
        Wait::forever().with_timeout(timeout)
    }

    /// Up to `deadline` (on tokio's clock, so virtual time in paused tests).
    pub fn deadline(deadline: Instant) -> Wait {
        Wait::forever().with_deadline(deadline)
    }

    /// Until `token` is cancelled.
    pub fn until(token: &CancellationToken) -> Wait {
        Wait::forever().with_cancel(token)
    }

    /// Also stops `timeout` after the start of the call (the earlier of the two timeouts
    /// counts).
    pub fn with_timeout(mut self, timeout: Duration) -> Wait {
        self.timeout = Some(self.timeout.map_or(timeout, |t| t.min(timeout)));
        self
    }

    /// Also stops at `deadline` (the earlier of the two deadlines counts).
    pub fn with_deadline(mut self, deadline: Instant) -> Wait {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// Also stops when `token` is cancelled. A `Wait` holds one token: a second call replaces
    /// the first (cancel a [child token](CancellationToken::child_token) of both instead).
    pub fn with_cancel(mut self, token: &CancellationToken) -> Wait {
        self.cancel = Some(token.clone());
        self
    }

    /// Whether this wait makes one attempt only.
    pub fn is_once(&self) -> bool {
        self.once
    }

    /// Whether this wait has no limit at all.
    pub fn is_forever(&self) -> bool {
        !self.once && self.timeout.is_none() && self.deadline.is_none() && self.cancel.is_none()
    }

    /// The limits of one call starting now.
    pub(crate) fn start(&self) -> Bound {
        let deadline = match (self.timeout, self.deadline) {
            (Some(t), d) => {
                let by_timeout = Instant::now().checked_add(t);
                match (by_timeout, d) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            (None, d) => d,
        };
        Bound { once: self.once, deadline, cancel: self.cancel.clone() }
    }
}

impl From<Duration> for Wait {
    /// [`Wait::timeout`].
    fn from(timeout: Duration) -> Wait {
        Wait::timeout(timeout)
    }
}

impl From<&CancellationToken> for Wait {
    /// [`Wait::until`].
    fn from(token: &CancellationToken) -> Wait {
        Wait::until(token)
    }
}

/// The limits of one call: a [`Wait`] whose timeout has been turned into a deadline.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    once: bool,
    deadline: Option<Instant>,
    cancel: Option<CancellationToken>,
}

impl Bound {
    /// One attempt, no waiting.
    const ONCE: Bound = Bound { once: true, deadline: None, cancel: None };

    /// Whether the call may not wait at all.
    pub(crate) fn once(&self) -> bool {
        self.once
    }

    /// Resolves when the wait is over (never, for `forever` and `once`).
    pub(crate) async fn over(&self) {
        let deadline = async {
            match self.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &self.cancel {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline => {}
            () = cancelled => {}
        }
    }

    /// The rest of these limits as a [`Wait`], for a call made within this one.
    pub(crate) fn rest(&self) -> Wait {
        Wait { once: self.once, timeout: None, deadline: self.deadline, cancel: self.cancel.clone() }
    }

    /// Whether the wait is over already.
    pub(crate) fn is_over(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d) || self.cancel.as_ref().is_some_and(|t| t.is_cancelled())
    }

    /// Runs `body` within these limits: `body` is dropped (and so cleans up after itself) when
    /// the wait is over, whatever it was waiting for — a watch, a reply, a reconnect — and the
    /// call ends with `Ok(None)`. A wait that is over before it starts still runs `body` once,
    /// as [`Wait::once`].
    pub(crate) async fn run<'a, T, F, Fut>(&'a self, body: F) -> Result<Option<T>>
    where
        F: FnOnce(&'a Bound) -> Fut,
        Fut: Future<Output = Result<Option<T>>> + 'a,
    {
        if self.is_over() {
            return body(&Bound::ONCE).await;
        }
        tokio::select! {
            biased;
            done = body(self) => done,
            () = self.over() => Ok(None),
        }
    }
}

/// Writes the four shorthand forms of a recipe call that takes a [`Wait`] (`$with`), with their
/// docs: as long as it takes (`$forever`, which returns what was asked, not an `Option`), once
/// (`$once`), up to a timeout (`$timeout`), and until a token is cancelled (`$cancellable`).
/// Leading arguments of `$with` (a semaphore's lease count) are passed through.
macro_rules! wait_forms {
    (
        what: $what:literal,
        with: $with:ident($($arg:ident: $ty:ty),*) -> $out:ty,
        forever: $forever:ident,
        once: $once:ident,
        timeout: $timeout:ident,
        cancellable: $cancellable:ident $(,)?
    ) => {
        $crate::wait::wait_forms! {
            what: $what,
            with: $with($($arg: $ty),*) -> $out,
            forever: $forever,
            once: $once,
            timeout: $timeout,
            cancellable: $cancellable,
            dropped: "Dropping the future leaves nothing behind on the server.",
        }
    };
    (
        what: $what:literal,
        with: $with:ident($($arg:ident: $ty:ty),*) -> $out:ty,
        forever: $forever:ident,
        once: $once:ident,
        timeout: $timeout:ident,
        cancellable: $cancellable:ident,
        dropped: $dropped:literal $(,)?
    ) => {
        #[doc = concat!("Waits as long as it takes for ", $what, ": [`Self::", stringify!($with), "`] with [`Wait::forever`](crate::Wait::forever).")]
        ///
        /// # Errors
        #[doc = concat!("As [`Self::", stringify!($with), "`].")]
        ///
        /// # Cancellation safety
        #[doc = $dropped]
        pub async fn $forever(&self $(, $arg: $ty)*) -> $crate::Result<$out> {
            let done = self.$with($($arg,)* $crate::Wait::forever()).await?;
            Ok(done.expect("an unbounded wait only ends with what it waited for"))
        }

        #[doc = concat!("Takes ", $what, " only if that needs no waiting; `None` otherwise (nothing is left behind): [`Self::", stringify!($with), "`] with [`Wait::once`](crate::Wait::once).")]
        ///
        /// # Errors
        #[doc = concat!("As [`Self::", stringify!($with), "`].")]
        ///
        /// # Cancellation safety
        #[doc = $dropped]
        pub async fn $once(&self $(, $arg: $ty)*) -> $crate::Result<Option<$out>> {
            self.$with($($arg,)* $crate::Wait::once()).await
        }

        #[doc = concat!("Waits up to `timeout` for ", $what, "; `None` if the time ran out first (nothing is left behind). A zero timeout still tries once: [`Self::", stringify!($with), "`] with [`Wait::timeout`](crate::Wait::timeout).")]
        ///
        /// # Errors
        #[doc = concat!("As [`Self::", stringify!($with), "`].")]
        ///
        /// # Cancellation safety
        #[doc = $dropped]
        pub async fn $timeout(&self $(, $arg: $ty)*, timeout: std::time::Duration) -> $crate::Result<Option<$out>> {
            self.$with($($arg,)* $crate::Wait::timeout(timeout)).await
        }

        #[doc = concat!("Waits for ", $what, " until `token` is cancelled; `None` if it was cancelled first (nothing is left behind; a token cancelled beforehand still tries once): [`Self::", stringify!($with), "`] with [`Wait::until`](crate::Wait::until).")]
        ///
        /// # Errors
        #[doc = concat!("As [`Self::", stringify!($with), "`].")]
        ///
        /// # Cancellation safety
        #[doc = $dropped]
        pub async fn $cancellable(
            &self $(, $arg: $ty)*,
            token: &tokio_util::sync::CancellationToken,
        ) -> $crate::Result<Option<$out>> {
            self.$with($($arg,)* $crate::Wait::until(token)).await
        }
    };
}

pub(crate) use wait_forms;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limits_combine_and_the_earliest_counts() {
        assert!(Wait::forever().is_forever() && !Wait::once().is_forever() && Wait::once().is_once());
        let now = Instant::now();
        let b = Wait::timeout(Duration::from_secs(5)).with_deadline(now + Duration::from_secs(2)).start();
        assert_eq!(b.deadline, Some(now + Duration::from_secs(2)));
        let b = Wait::deadline(now + Duration::from_secs(9)).with_timeout(Duration::from_secs(3)).start();
        assert_eq!(b.deadline, Some(now + Duration::from_secs(3)));
        let b = Wait::timeout(Duration::from_secs(3)).with_timeout(Duration::from_secs(1)).start();
        assert_eq!(b.deadline, Some(now + Duration::from_secs(1)));
        assert_eq!(Wait::from(Duration::MAX).start().deadline, None, "an unrepresentable deadline is no deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_is_counted_from_each_start() {
        let wait = Wait::timeout(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let b = wait.start();
        assert!(!b.is_over(), "reused after its first second, the wait starts again");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(b.is_over());
    }

    #[tokio::test(start_paused = true)]
    async fn run_ends_with_none_when_the_wait_is_over() {
        let token = CancellationToken::new();
        let b = Wait::until(&token).start();
        let cancel = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            token.cancel();
        };
        let (r, ()) = tokio::join!(b.run(|_| async { std::future::pending::<Result<Option<()>>>().await }), cancel);
        assert_eq!(r, Ok(None));
        let b = Wait::timeout(Duration::from_millis(10)).start();
        let r = b.run(|_| async { std::future::pending::<Result<Option<()>>>().await }).await;
        assert_eq!(r, Ok(None));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_wait_still_tries_once() {
        let b = Wait::timeout(Duration::ZERO).start();
        let r = b.run(|b| async move { Ok(Some(b.once())) }).await;
        assert_eq!(r, Ok(Some(true)), "the body ran, told not to wait");
        let b = Wait::forever().start();
        assert_eq!(b.run(|b| async move { Ok(Some(b.once())) }).await, Ok(Some(false)));
    }
}
