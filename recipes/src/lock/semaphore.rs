//! [`Semaphore`]: up to N leases held at once across processes (Curator's
//! `InterProcessSemaphoreV2`).

use std::time::Duration;

use bytes::Bytes;
use conclave_core::{path, Client, Error, Result};
use tokio_util::sync::CancellationToken;

use super::engine::{self, Pending, Rule, Spec, Wait};
use super::guard::{LockGuard, LossPolicy};
use super::mutex::Mutex;
use super::order;
use super::participants::{participants_of, Participant};

/// A lease of a [`Semaphore`]: the same kind of guard as a lock's. It dies with the session;
/// dropping it returns the lease in the background, [`LockGuard::release`] waits for it.
pub type Lease = LockGuard;

/// A distributed counting semaphore: at most `max_leases` leases are held at any time, across
/// every process using the same path. Interoperable with Curator's `InterProcessSemaphoreV2`.
///
/// Layout: `<path>/locks` is a [`Mutex`] that serialises acquirers, and each lease is a node
/// `<path>/leases/_c_<uuid>-lease-<seq>` (ephemeral, so leases go with their session). To
/// acquire, take the mutex, create the lease node, and, while there are more than
/// `max_leases` lease nodes, wait (holding the mutex, so acquirers are served in order) for
/// one to go; then release the mutex. The limit is a convention among clients: all of them
/// must use the same `max_leases`.
///
/// Acquire futures are cancellation-safe: dropping one removes the lease node it created and
/// releases the mutex.
#[derive(Debug, Clone)]
pub struct Semaphore {
    lock: Mutex,
    leases: Spec,
    max_leases: u32,
    policy: LossPolicy,
}

impl Semaphore {
    /// A semaphore on `path` with `max_leases` leases. Nothing is sent until an acquire.
    pub fn new(client: Client, path: &str, max_leases: u32) -> Semaphore {
        let lock = Mutex::new(client.clone(), &path::join(path, "locks"));
        let leases = Spec {
            client,
            dir: path::join(path, "leases"),
            kind: order::LEASE,
            kinds: &[order::LEASE],
            rule: Rule::Ahead(max_leases as usize),
            data: Bytes::new(),
        };
        Semaphore { lock, leases, max_leases, policy: LossPolicy::default() }
    }

    /// Stores `data` in each lease node (empty by default).
    pub fn with_data(mut self, data: impl Into<Bytes>) -> Semaphore {
        self.leases.data = data.into();
        self
    }

    /// When leases of this semaphore consider themselves lost (default
    /// [`LossPolicy::Suspended`]).
    pub fn loss_policy(mut self, policy: LossPolicy) -> Semaphore {
        self.policy = policy;
        self
    }

    /// The number of leases that can be held at once.
    pub fn max_leases(&self) -> u32 {
        self.max_leases
    }

    /// Waits for `n` leases.
    ///
    /// # Errors
    /// `InvalidArgument` if `n` exceeds `max_leases` (it could never succeed); otherwise as
    /// [`Mutex::lock`]. Leases already taken are returned first.
    pub async fn acquire(&self, n: u32) -> Result<Vec<Lease>> {
        let leases = self.acquire_within(n, &Wait::forever()).await?;
        Ok(leases.expect("an unbounded wait only ends with the leases"))
    }

    /// `n` leases if they are free now, without waiting.
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub async fn try_acquire(&self, n: u32) -> Result<Option<Vec<Lease>>> {
        self.acquire_within(n, &Wait::once()).await
    }

    /// Waits up to `timeout` (in all) for `n` leases; `None` if they were not all acquired in
    /// time (those taken are returned).
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub async fn acquire_timeout(&self, n: u32, timeout: Duration) -> Result<Option<Vec<Lease>>> {
        self.acquire_within(n, &Wait::timeout(timeout)).await
    }

    /// Waits for `n` leases until `token` is cancelled; `None` if it was cancelled first.
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub async fn acquire_cancellable(&self, n: u32, token: &CancellationToken) -> Result<Option<Vec<Lease>>> {
        self.acquire_within(n, &Wait::cancel(token)).await
    }

    /// The lease nodes, oldest first, with their data: the holders, then the one lease (if
    /// any) whose acquirer is waiting for a holder to leave.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants_of(&self.leases.client, &self.leases.dir, self.leases.kinds, self.leases.rule).await
    }

    async fn acquire_within(&self, n: u32, wait: &Wait) -> Result<Option<Vec<Lease>>> {
        if n > self.max_leases {
            return Err(Error::InvalidArgument(format!("{n} leases asked of a semaphore of {}", self.max_leases)));
        }
        let mut leases = Vec::with_capacity(n as usize);
        for _ in 0..n {
            match self.acquire_one(wait).await? {
                Some(lease) => leases.push(lease),
                // Dropping `leases` returns those taken.
                None => return Ok(None),
            }
        }
        Ok(Some(leases))
    }

    /// One lease, taken under the semaphore's mutex (released, in the background, on return).
    async fn acquire_one(&self, wait: &Wait) -> Result<Option<Lease>> {
        engine::bounded(wait, |wait| self.take_one(wait)).await
    }

    /// [`Semaphore::acquire_one`] without its bound.
    async fn take_one(&self, wait: &Wait) -> Result<Option<Lease>> {
        let Some(_turn) = self.lock.acquire(wait).await? else { return Ok(None) };
        let spec = &self.leases;
        'create: loop {
            let mut pending = Pending::new(spec);
            let (own, stat, mut listing) = engine::create(spec, &mut pending).await?;
            let own_name = path::name(&own).to_string();
            loop {
                let (children, watcher) = match listing.take() {
                    Some(children) => (children, None),
                    None => {
                        let (children, watcher) =
                            engine::answered(&spec.client, || spec.client.get_children_and_watch(&spec.dir)).await?;
                        (children, Some(watcher))
                    }
                };
                if !children.contains(&own_name) {
                    // Deleted by someone else while we waited: make another.
                    pending.clear();
                    continue 'create;
                }
                // Every child counts, as in Curator.
                if children.len() <= self.max_leases as usize {
                    pending.clear();
                    let acquired = engine::Acquired { path: own, stat };
                    return Ok(Some(LockGuard::new(spec.client.clone(), acquired, self.policy)));
                }
                if wait.once {
                    return Ok(None);
                }
                if let Some(watcher) = watcher {
                    watcher.await?;
                }
            }
        }
    }
}
