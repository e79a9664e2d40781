//! [`Mutex`]: the fair, exclusive lock (Curator's `InterProcessMutex`).

use conclave_core::{Client, Data};

use super::{LockGuard, LossPolicy, Participant};
use crate::error::Result;
use crate::hold::Hold;
use crate::internal::contend::{self, Rule, Spec};
use crate::internal::order;
use crate::internal::participants::participants_of;
use crate::wait::{wait_forms, Bound, Wait};

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
/// # Cancellation safety
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
    /// A mutex on the lock directory `path`. Nothing is sent until an acquire (a bad path is
    /// reported then).
    pub fn new(client: Client, path: &str) -> Mutex {
        let spec = Spec::new(client, path, order::LOCK, &[order::LOCK], Rule::Ahead(1));
        Mutex { spec, policy: LossPolicy::default() }
    }

    /// Stores `data` in each lock node this mutex creates (who holds or waits, for operators:
    /// see [`Mutex::participants`]). Empty by default.
    pub fn with_data(mut self, data: impl Into<Data>) -> Mutex {
        self.spec.data = data.into().into_bytes();
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

    wait_forms! {
        what: "the lock",
        with: lock_with() -> LockGuard,
        forever: lock,
        once: try_lock,
        timeout: lock_timeout,
        cancellable: lock_cancellable,
    }

    /// Waits for the lock within `wait`'s limits; `None` if they were reached first (the
    /// waiting node is removed). The other acquire methods are shorthands for this one.
    ///
    /// # Errors
    /// `InvalidPath` (naming the lock path) before anything is sent; `NoAuth` if the ACL of
    /// the lock directory (or of a missing parent's parent) forbids creating children;
    /// `DataTooLarge` for oversized [`Mutex::with_data`]; the session's terminal error
    /// (`SessionExpired`, `Closed`, ...) if it ends first. Connection losses are ridden out.
    ///
    /// # Cancellation safety
    /// Dropping the future leaves no node behind (see [`Mutex`]).
    pub async fn lock_with(&self, wait: Wait) -> Result<Option<LockGuard>> {
        self.acquire(&wait.start()).await
    }

    /// The contenders on this lock, holder first, then the waiters in the order they will get
    /// it, with their node data; empty if nobody holds the lock.
    ///
    /// # Errors
    /// As [`participants`](super::participants).
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants_of(&self.spec.client, &self.spec.dir, self.spec.kinds, self.spec.rule).await
    }

    /// One acquire within `wait`'s limits (also a step of a semaphore's or multi-lock's).
    pub(crate) async fn acquire(&self, wait: &Bound) -> Result<Option<LockGuard>> {
        let Some(acquired) = contend::acquire(&self.spec, wait).await? else { return Ok(None) };
        tracing::debug!(node = %acquired.path, token = acquired.stat.czxid, "lock acquired");
        Ok(Some(Hold::new(self.spec.client.clone(), acquired.path, acquired.stat, self.policy)))
    }
}
