//! Distributed locks: [`Mutex`], [`RwLock`], [`Semaphore`] and [`MultiLock`], held as
//! [`LockGuard`]s (a [`Hold`](crate::hold::Hold)) that carry a fencing token, report their own
//! loss, and fence writes in ZooKeeper.
//!
//! All of them run on the shared contention engine: every contender creates a protected,
//! ephemeral-sequential node under the lock path and waits, watching only the node it depends
//! on, until it is first in line (so a release wakes one waiter, never the herd). The node
//! layout is Apache Curator's, so Rust and Java services exclude each other on the same path.
//!
//! # Waiting
//! Every acquire comes in the same five forms, all ending with what was asked or `None` when
//! the wait is over (see [`Wait`](crate::Wait)): `lock()` waits as long as it takes,
//! `try_lock()` does not wait, `lock_timeout(d)` waits up to `d`, `lock_cancellable(&token)`
//! until the token is cancelled, and `lock_with(wait)` takes any [`Wait`](crate::Wait).
//!
//! # Holding a lock safely
//! A lock held through ZooKeeper ends when the session does, and the holder may learn of it
//! late (a long pause, a partition). Three tools cover that:
//! - [`LockGuard::lost`] resolves as soon as the lock *may* be gone: by default when the
//!   connection is lost, which leaves at least a third of the session timeout before the
//!   server can expire the session and hand the lock to someone else;
//! - [`LockGuard::fenced`] builds a transaction that begins with a check of the holder's own
//!   node, so ZooKeeper refuses the write once the lock is gone;
//! - [`LockGuard::fencing_token`] (the node's `czxid`) increases with every new holder, for
//!   resources outside ZooKeeper that can remember the highest token they have accepted.
//!
//! # Reentrancy
//! None of these locks is reentrant: reentrancy ties a lock to a thread, which async tasks do
//! not have. Hold the guard and pass it (or `&guard`) to the code that needs the lock.

mod multi;
mod mutex;
mod rwlock;
mod semaphore;

pub use crate::hold::{FencedTransaction, LossPolicy, LossReason};
pub use crate::internal::participants::Participant;
pub use multi::{MultiGuard, MultiLock};
pub use mutex::Mutex;
pub use rwlock::RwLock;
pub use semaphore::{Lease, Semaphore};

/// Proof of holding a lock: a [`Hold`](crate::hold::Hold) on the holder's own lock node, made
/// by [`Mutex::lock`] and the other acquire methods of this module.
pub type LockGuard = crate::hold::Hold;

/// The guard of a [`Mutex`].
pub type MutexGuard = LockGuard;

/// The contenders on the lock directory `path` — a [`Mutex`] (or Curator `InterProcessMutex`)
/// or a [`RwLock`] (`InterProcessReadWriteLock`) — holders first, then waiters in the order they
/// will get the lock. Empty if the directory does not exist. Children that are not contenders
/// are left out.
///
/// # Errors
/// `InvalidPath` (naming `path`); `NoAuth` if the directory may not be read; the session's
/// terminal error if it ends first (connection losses are ridden out).
pub async fn participants(client: &conclave_core::Client, path: &str) -> crate::Result<Vec<Participant>> {
    use crate::internal::{contend::Rule, order};
    let kinds = &[order::LOCK, order::READ, order::WRITE];
    crate::internal::participants::participants_of(client, path, kinds, Rule::Ahead(1)).await
}
