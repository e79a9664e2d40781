//! [`RwLock`]: a fair read-write lock (Curator's `InterProcessReadWriteLock`).

use std::time::Duration;

use bytes::Bytes;
use conclave_core::{Client, Result};

use super::engine::{self, Rule, Spec, Wait};
use super::guard::{LockGuard, LossPolicy};
use super::order;
use super::participants::{participants_of, Participant};

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
/// other kind (see [`Mutex`](super::Mutex) for why and what to do instead). Acquire futures are
/// cancellation-safe, as for [`Mutex`](super::Mutex).
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
        let write = Spec {
            client,
            dir: path.to_string(),
            kind: order::WRITE,
            kinds: KINDS,
            rule: Rule::Ahead(1),
            data: Bytes::new(),
        };
        let read = Spec { kind: order::READ, rule: Rule::Reader, ..write.clone() };
        RwLock { read, write, policy: LossPolicy::default() }
    }

    /// Stores `data` in each node this lock creates (empty by default).
    pub fn with_data(mut self, data: impl Into<Bytes>) -> RwLock {
        let data = data.into();
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

    /// Waits for a shared (read) hold.
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn read(&self) -> Result<LockGuard> {
        self.wait(&self.read).await
    }

    /// Waits for an exclusive (write) hold.
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn write(&self) -> Result<LockGuard> {
        self.wait(&self.write).await
    }

    /// A read hold if no writer holds or waits, without waiting.
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn try_read(&self) -> Result<Option<LockGuard>> {
        self.acquire(&self.read, &Wait::once()).await
    }

    /// A write hold if nobody holds or waits, without waiting.
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn try_write(&self) -> Result<Option<LockGuard>> {
        self.acquire(&self.write, &Wait::once()).await
    }

    /// A read hold within `timeout`, or `None`.
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn read_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire(&self.read, &Wait::timeout(timeout)).await
    }

    /// A write hold within `timeout`, or `None`.
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn write_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire(&self.write, &Wait::timeout(timeout)).await
    }

    /// The contenders, holders first (several readers can hold at once), then the waiters in
    /// order.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants_of(&self.write.client, &self.write.dir, KINDS, Rule::Ahead(1)).await
    }

    async fn wait(&self, spec: &Spec) -> Result<LockGuard> {
        let held = self.acquire(spec, &Wait::forever()).await?;
        Ok(held.expect("an unbounded wait only ends holding the lock"))
    }

    async fn acquire(&self, spec: &Spec, wait: &Wait) -> Result<Option<LockGuard>> {
        let acquired = engine::acquire(spec, wait).await?;
        Ok(acquired.map(|a| LockGuard::new(spec.client.clone(), a, self.policy)))
    }
}
