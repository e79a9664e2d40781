//! [`Semaphore`]: up to N leases held at once across processes (Curator's
//! `InterProcessSemaphoreV2`).

use conclave_core::{path, Client, Data, Error as ZkError};

use super::{LockGuard, LossPolicy, Mutex, Participant};
use crate::error::Result;
use crate::hold::Hold;
use crate::internal::contend::{self, Rule, Spec};
use crate::internal::order;
use crate::internal::participants::participants_of;
use crate::wait::{wait_forms, Bound, Wait};

/// A lease of a [`Semaphore`]: the same kind of [`Hold`] as a lock's guard. It dies with the
/// session; dropping it returns the lease in the background, [`Hold::release`] waits for it.
pub type Lease = LockGuard;

/// A distributed counting semaphore: at most `max_leases` leases are held at any time, across
/// every process using the same path. Interoperable with Curator's `InterProcessSemaphoreV2`.
///
/// Layout: `<path>/locks` is a [`Mutex`] that serialises acquirers, and each lease is a node
/// `<path>/leases/_c_<uuid>-lease-<seq>` (ephemeral, so leases go with their session). To
/// acquire, take the mutex, create the lease node, and, while `max_leases` or more leases are
/// ahead of it, wait (holding the mutex, so acquirers are served in order and only one of them
/// watches the leases) for one to go; then release the mutex. The limit is a convention among
/// clients: all of them must use the same `max_leases`. Children of `leases` that are not
/// lease nodes are not counted (Curator counts every child; its layout has no others).
///
/// # Cancellation safety
/// Acquire futures are cancellation-safe: dropping one removes the lease node it created and
/// releases the mutex; leases already taken by a multi-lease acquire are returned.
#[derive(Debug, Clone)]
pub struct Semaphore {
    path: String,
    lock: Mutex,
    leases: Spec,
    max_leases: u32,
    policy: LossPolicy,
}

impl Semaphore {
    /// A semaphore on `path` with `max_leases` leases. Nothing is sent until an acquire.
    pub fn new(client: Client, path: &str, max_leases: u32) -> Semaphore {
        let lock = Mutex::new(client.clone(), &path::join(path, "locks"));
        let leases_dir = path::join(path, "leases");
        let leases = Spec::new(client, &leases_dir, order::LEASE, &[order::LEASE], Rule::Within(max_leases as usize));
        Semaphore { path: path.to_string(), lock, leases, max_leases, policy: LossPolicy::default() }
    }

    /// Stores `data` in each lease node (empty by default).
    pub fn with_data(mut self, data: impl Into<Data>) -> Semaphore {
        self.leases.data = data.into().into_bytes();
        self
    }

    /// When leases of this semaphore consider themselves lost (default
    /// [`LossPolicy::Suspended`]).
    pub fn loss_policy(mut self, policy: LossPolicy) -> Semaphore {
        self.policy = policy;
        self
    }

    /// The semaphore's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The number of leases that can be held at once.
    pub fn max_leases(&self) -> u32 {
        self.max_leases
    }

    wait_forms! {
        what: "`n` leases",
        with: acquire_with(n: u32) -> Vec<Lease>,
        forever: acquire,
        once: try_acquire,
        timeout: acquire_timeout,
        cancellable: acquire_cancellable,
    }

    /// Waits for `n` leases within `wait`'s limits (shared by all `n`); `None` if they were
    /// reached first (the leases taken are returned). The other acquire methods are shorthands
    /// for this one.
    ///
    /// # Errors
    /// `InvalidArgument` if `n` exceeds `max_leases` (it could never succeed); `InvalidPath`
    /// (naming the semaphore's path) before anything is sent; `NoAuth` if an ACL forbids the
    /// creates; the session's terminal error if it ends first. Leases already taken are
    /// returned first.
    ///
    /// # Cancellation safety
    /// As [`Semaphore::acquire`].
    pub async fn acquire_with(&self, n: u32, wait: Wait) -> Result<Option<Vec<Lease>>> {
        if n > self.max_leases {
            let msg = format!("{n} leases asked of a semaphore of {}", self.max_leases);
            return Err(ZkError::InvalidArgument(msg).into());
        }
        path::validate_path(&self.path)?;
        let wait = wait.start();
        let mut leases = Vec::with_capacity(n as usize);
        for _ in 0..n {
            match self.acquire_one(&wait).await? {
                Some(lease) => leases.push(lease),
                // Dropping `leases` returns those taken.
                None => return Ok(None),
            }
        }
        Ok(Some(leases))
    }

    /// The lease nodes, oldest first, with their data: the holders, then the one lease (if
    /// any) whose acquirer is waiting for a holder to leave.
    ///
    /// # Errors
    /// As [`participants`](super::participants).
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        path::validate_path(&self.path)?;
        participants_of(&self.leases.client, &self.leases.dir, self.leases.kinds, self.leases.rule).await
    }

    /// One lease, taken under the semaphore's mutex (released, in the background, on return).
    /// Both steps are bounded by `wait`.
    async fn acquire_one(&self, wait: &Bound) -> Result<Option<Lease>> {
        let Some(_turn) = self.lock.acquire(wait).await? else { return Ok(None) };
        let acquired = contend::acquire(&self.leases, wait).await?;
        Ok(acquired.map(|a| Hold::new(self.leases.client.clone(), a.path, a.stat, self.policy)))
    }
}
