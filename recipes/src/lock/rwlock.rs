//! [`RwLock`]: a fair read-write lock (Curator's `InterProcessReadWriteLock`).

use conclave_core::{Client, Data};

use super::{LockGuard, LossPolicy, Participant};
use crate::error::Result;
use crate::hold::Hold;
use crate::internal::contend::{self, Rule, Spec};
use crate::internal::order;
use crate::internal::participants::participants_of;
use crate::wait::{wait_forms, Wait};

/// A distributed read-write lock: any number of readers, or one writer. Interoperable with
/// Curator's `InterProcessReadWriteLock` on the same path.
///
/// Readers create `<path>/_c_<uuid>-__READ__<seq>`, writers `<path>/_c_<uuid>-__WRIT__<seq>`,
/// and everyone is served in sequence order: a reader holds once no writer is ahead of it, a
/// writer once nobody is. A waiting writer therefore holds back readers that come after it, so
/// writers are never starved. A waiting reader watches the first writer ahead of it; a waiting
/// writer the node just ahead.
///
/// Not reentrant, and there is no upgrade or downgrade: release one guard, then acquire the
/// other kind (see [`Mutex`](super::Mutex) for why and what to do instead).
///
/// # Cancellation safety
/// Every acquire future is cancellation-safe, as for [`Mutex`](super::Mutex): dropping it
/// deletes the node it created.
#[derive(Debug, Clone)]
pub struct RwLock {
    read: Spec,
    write: Spec,
    policy: LossPolicy,
}

const KINDS: &[order::Kind] = &[order::READ, order::WRITE];

impl RwLock {
    /// A read-write lock on the lock directory `path`. Nothing is sent until an acquire.
    pub fn new(client: Client, path: &str) -> RwLock {
        let write = Spec::new(client, path, order::WRITE, KINDS, Rule::Ahead(1));
        let read = write.with_kind(order::READ, Rule::Reader);
        RwLock { read, write, policy: LossPolicy::default() }
    }

    /// Stores `data` in each node this lock creates (empty by default).
    pub fn with_data(mut self, data: impl Into<Data>) -> RwLock {
        let data = data.into().into_bytes();
        self.read.data = data.clone();
        self.write.data = data;
        self
    }

    /// When guards of this lock consider it lost (default [`LossPolicy::Suspended`]).
    pub fn loss_policy(mut self, policy: LossPolicy) -> RwLock {
        self.policy = policy;
        self
    }

    /// The lock directory.
    pub fn path(&self) -> &str {
        &self.write.dir
    }

    wait_forms! {
        what: "a shared (read) hold",
        with: read_with() -> LockGuard,
        forever: read,
        once: try_read,
        timeout: read_timeout,
        cancellable: read_cancellable,
    }

    wait_forms! {
        what: "an exclusive (write) hold",
        with: write_with() -> LockGuard,
        forever: write,
        once: try_write,
        timeout: write_timeout,
        cancellable: write_cancellable,
    }

    /// A read hold within `wait`'s limits; `None` if they were reached first (the waiting node
    /// is removed). The other read methods are shorthands for this one.
    ///
    /// # Errors
    /// `InvalidPath` (naming the lock path) before anything is sent; `NoAuth` if the lock
    /// directory's ACL forbids creating children; the session's terminal error if it ends
    /// first. Connection losses are ridden out.
    ///
    /// # Cancellation safety
    /// Dropping the future leaves no node behind.
    pub async fn read_with(&self, wait: Wait) -> Result<Option<LockGuard>> {
        self.acquire(&self.read, wait).await
    }

    /// A write hold within `wait`'s limits; `None` if they were reached first. The other
    /// write methods are shorthands for this one.
    ///
    /// # Errors
    /// As [`RwLock::read_with`].
    ///
    /// # Cancellation safety
    /// Dropping the future leaves no node behind.
    pub async fn write_with(&self, wait: Wait) -> Result<Option<LockGuard>> {
        self.acquire(&self.write, wait).await
    }

    /// The contenders, holders first (several readers can hold at once), then the waiters in
    /// order.
    ///
    /// # Errors
    /// As [`participants`](super::participants).
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants_of(&self.write.client, &self.write.dir, KINDS, Rule::Ahead(1)).await
    }

    async fn acquire(&self, spec: &Spec, wait: Wait) -> Result<Option<LockGuard>> {
        let acquired = contend::acquire(spec, &wait.start()).await?;
        Ok(acquired.map(|a| Hold::new(spec.client.clone(), a.path, a.stat, self.policy)))
    }
}
