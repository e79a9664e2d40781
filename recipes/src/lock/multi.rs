//! [`MultiLock`]: several locks taken all-or-nothing (Curator's `InterProcessMultiLock`).

use std::future::Future;

use conclave_core::Error as ZkError;

use super::{FencedTransaction, LockGuard, LossReason, Mutex};
use crate::error::Result;
use crate::wait::{wait_forms, Wait};

/// A set of [`Mutex`]es acquired together: [`MultiLock::lock`] returns only once all are held,
/// and a failed or timed-out acquire releases those already taken, in reverse order.
///
/// The mutexes are taken in the order of their paths (not the order given), so two multi-locks
/// over overlapping sets cannot deadlock each other; duplicates are taken once.
///
/// # Cancellation safety
/// Dropping an acquire future releases the locks already taken and removes the node of the one
/// being waited for.
#[derive(Debug, Clone)]
pub struct MultiLock {
    locks: Vec<Mutex>,
}

impl MultiLock {
    /// A multi-lock over `locks`.
    pub fn new(locks: impl IntoIterator<Item = Mutex>) -> MultiLock {
        let mut locks: Vec<Mutex> = locks.into_iter().collect();
        locks.sort_by(|a, b| a.path().cmp(b.path()));
        locks.dedup_by(|a, b| a.path() == b.path());
        MultiLock { locks }
    }

    /// The lock directories, in acquisition order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.locks.iter().map(Mutex::path)
    }

    wait_forms! {
        what: "every lock",
        with: lock_with() -> MultiGuard,
        forever: lock,
        once: try_lock,
        timeout: lock_timeout,
        cancellable: lock_cancellable,
    }

    /// Waits for every lock within `wait`'s limits (shared by all the locks); `None` if they
    /// were reached first (the locks taken are released). The other acquire methods are
    /// shorthands for this one.
    ///
    /// # Errors
    /// `InvalidArgument` for a multi-lock over no lock; otherwise as
    /// [`Mutex::lock_with`]. The locks already taken are released first.
    ///
    /// # Cancellation safety
    /// See [`MultiLock`].
    pub async fn lock_with(&self, wait: Wait) -> Result<Option<MultiGuard>> {
        if self.locks.is_empty() {
            return Err(ZkError::InvalidArgument("a MultiLock needs at least one lock".into()).into());
        }
        let wait = wait.start();
        let mut guards = MultiGuard { guards: Vec::with_capacity(self.locks.len()) };
        for mutex in &self.locks {
            match mutex.acquire(&wait).await? {
                Some(guard) => guards.guards.push(guard),
                // Dropping `guards` releases what was taken, last first.
                None => return Ok(None),
            }
        }
        Ok(Some(guards))
    }
}

/// Proof of holding every lock of a [`MultiLock`]. Dropping it releases them in reverse order
/// of acquisition, in the background.
#[derive(Debug)]
#[must_use = "the locks are released as soon as the guard is dropped"]
pub struct MultiGuard {
    guards: Vec<LockGuard>,
}

impl MultiGuard {
    /// The guard of each lock, in acquisition order.
    pub fn guards(&self) -> &[LockGuard] {
        &self.guards
    }

    /// Resolves once any of the locks may no longer be held.
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        let all: Vec<_> = self.guards.iter().map(|g| Box::pin(g.lost())).collect();
        async move { futures::future::select_all(all).await.0 }
    }

    /// Whether every lock is held, as far as this client can tell.
    pub fn is_held(&self) -> bool {
        self.guards.iter().all(LockGuard::is_held)
    }

    /// A transaction applied only while every lock node still exists.
    pub fn fenced(&self) -> FencedTransaction {
        // Never empty: an acquire over no locks is refused.
        let client = self.guards[0].client();
        FencedTransaction::new(client, self.guards.iter().map(|g| g.path().to_string()))
    }

    /// Releases every lock, last acquired first, and waits for each.
    ///
    /// # Errors
    /// The first error met (every lock is released regardless).
    pub async fn release(mut self) -> Result<()> {
        let mut first_error = Ok(());
        while let Some(guard) = self.guards.pop() {
            if let Err(e) = guard.release().await {
                if first_error.is_ok() {
                    first_error = Err(e);
                }
            }
        }
        first_error
    }
}

impl Drop for MultiGuard {
    fn drop(&mut self) {
        while let Some(guard) = self.guards.pop() {
            drop(guard);
        }
    }
}
