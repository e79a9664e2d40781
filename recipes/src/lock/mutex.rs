//! [`Mutex`]: the fair, exclusive lock (Curator's `InterProcessMutex`).

use std::time::Duration;

use bytes::Bytes;
use conclave_core::{Client, Result};
use tokio_util::sync::CancellationToken;

use super::engine::{self, Rule, Spec, Wait};
use super::guard::{LockGuard, LossPolicy};
use super::order;
use super::participants::{participants_of, Participant};

/// A distributed mutual-exclusion lock on a ZooKeeper path, fair (first come, first served)
/// and interoperable with Apache Curator's `InterProcessMutex` on the same path.
///
/// Each acquire creates `<path>/_c_<uuid>-lock-<seq>` (ephemeral, sequential; missing parents
/// are created as containers) and holds the lock when its node is first in sequence order.
/// A waiter watches only the node just ahead of it, so a release wakes exactly one waiter.
/// An uncontended acquire costs one round trip (the create and the listing are pipelined), a
/// release one more.
///
/// Cloning is cheap; clones are handles on the same lock, and each acquire is a separate
/// contender. The lock is **not reentrant**: a second `lock()` from the holder's task waits
/// for the first guard like anyone else's would (that is, forever). In Rust, pass the
/// [`LockGuard`] (or a reference to it) down to the code that needs the lock held, instead of
/// re-acquiring it; the guard's lifetime then documents the critical section.
///
/// Every acquire future is cancellation-safe: dropping it (a `select!` that lost, a timeout)
/// deletes the node it created, so no stray contender is left behind and no acquisition
/// happens later behind the caller's back.
///
/// ```no_run
/// # async fn demo(client: conclave::Client) -> conclave::Result<()> {
/// use conclave::lock::Mutex;
///
/// let mutex = Mutex::new(client, "/locks/billing");
/// let guard = mutex.lock().await?;
/// // Writes fenced by the lock are refused by ZooKeeper once it is lost.
/// guard.fenced().set_data("/billing/state", "closed", None).commit().await?;
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Mutex {
    spec: Spec,
    policy: LossPolicy,
}

impl Mutex {
    /// A mutex on the lock directory `path`. Nothing is sent until an acquire.
    pub fn new(client: Client, path: &str) -> Mutex {
        let spec = Spec {
            client,
            dir: path.to_string(),
            kind: order::LOCK,
            kinds: &[order::LOCK],
            rule: Rule::Ahead(1),
            data: Bytes::new(),
        };
        Mutex { spec, policy: LossPolicy::default() }
    }

    /// Stores `data` in each lock node this mutex creates (who holds or waits, for operators:
    /// see [`Mutex::participants`]). Empty by default.
    pub fn with_data(mut self, data: impl Into<Bytes>) -> Mutex {
        self.spec.data = data.into();
        self
    }

    /// When guards of this mutex consider the lock lost (default [`LossPolicy::Suspended`]).
    pub fn loss_policy(mut self, policy: LossPolicy) -> Mutex {
        self.policy = policy;
        self
    }

    /// The lock directory.
    pub fn path(&self) -> &str {
        &self.spec.dir
    }

    /// Waits until the lock is held.
    ///
    /// # Errors
    /// The session's terminal error if it ends first; `InvalidPath` for a bad path; `NoAuth`
    /// if the ACL of the lock directory forbids creating children.
    pub async fn lock(&self) -> Result<LockGuard> {
        let held = self.acquire(&Wait::forever()).await?;
        Ok(held.expect("an unbounded wait only ends holding the lock"))
    }

    /// Takes the lock if nobody holds it or waits for it, without waiting (one round trip).
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub async fn try_lock(&self) -> Result<Option<LockGuard>> {
        self.acquire(&Wait::once()).await
    }

    /// Waits up to `timeout` for the lock; `None` if it was not acquired in time (the waiting
    /// node is removed).
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub async fn lock_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire(&Wait::timeout(timeout)).await
    }

    /// Waits for the lock until `token` is cancelled; `None` if it was cancelled first (the
    /// waiting node is removed).
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub async fn lock_cancellable(&self, token: &CancellationToken) -> Result<Option<LockGuard>> {
        self.acquire(&Wait::cancel(token)).await
    }

    /// The contenders on this lock, holder first, then the waiters in the order they will get
    /// it, with their node data; empty if nobody holds the lock.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants_of(&self.spec.client, &self.spec.dir, self.spec.kinds, self.spec.rule).await
    }

    /// One acquire within `wait`'s limits.
    pub(crate) async fn acquire(&self, wait: &Wait) -> Result<Option<LockGuard>> {
        let Some(acquired) = engine::acquire(&self.spec, wait).await? else { return Ok(None) };
        tracing::debug!(node = %acquired.path, token = acquired.stat.czxid, "lock acquired");
        Ok(Some(LockGuard::new(self.spec.client.clone(), acquired, self.policy)))
    }
}
