//! Distributed locks: [`Mutex`], [`RwLock`], [`Semaphore`] and [`MultiLock`], held as RAII
//! guards that carry a fencing token, report their own loss, and fence writes in ZooKeeper.
//!
//! All of them run on one contention engine: every contender creates a protected,
//! ephemeral-sequential node under the lock path and waits, watching only the node it depends
//! on, until it is first in line (so a release wakes one waiter, never the herd). The node
//! layout is Apache Curator's, so Rust and Java services exclude each other on the same path.
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

mod engine;
mod guard;
mod multi;
mod mutex;
mod order;
mod participants;
mod rwlock;
mod semaphore;

pub use guard::{FencedTransaction, LockGuard, LossPolicy, LossReason};
pub use multi::{MultiGuard, MultiLock};
pub use mutex::Mutex;
pub use participants::{participants, Participant};
pub use rwlock::RwLock;
pub use semaphore::{Lease, Semaphore};

/// The guard of a [`Mutex`].
pub type MutexGuard = LockGuard;
