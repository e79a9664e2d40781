//! What holding a lock gives: the [`LockGuard`] with its fencing token, its loss signal and
//! fenced writes, and the [`FencedTransaction`] those writes are built with.

use std::fmt;
use std::future::Future;

use conclave_core::Data;
use conclave_core::{
    Client, ConnectionState, CreateOptions, Error, EventType, OpResult, Result, SessionState, Stat, Transaction,
};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::StreamExt;

use super::engine::Acquired;

/// When a holder must consider its lock gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossPolicy {
    /// As soon as the connection is lost (`Suspended`), even though the session, and with it
    /// the lock, may still be alive: the server may expire the session before the client hears
    /// of it, so only stopping at `Suspended` keeps a margin (of at least a third of the session
    /// timeout) before anyone else can acquire. The safe default, like Curator's standard
    /// policy.
    #[default]
    Suspended,
    /// Only when the session is lost (or the node deleted). Holders keep working through short
    /// disconnections, at the risk of overlapping with the next holder if the session expires
    /// meanwhile; use it only with fenced writes.
    Lost,
}

/// Why a lock may no longer be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// The connection was lost; the session may still be alive ([`LossPolicy::Suspended`]).
    Suspended,
    /// The session ended (expired, closed, moved, refused): its nodes are gone.
    SessionLost,
    /// The lock node was deleted: by someone else (an operator, a revoking process), or by the
    /// server expiring the session, when that deletion is seen before the expiry itself.
    NodeDeleted,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Suspended => "the connection to ZooKeeper was lost (suspended)",
            LossReason::SessionLost => "the ZooKeeper session ended",
            LossReason::NodeDeleted => "the lock node was deleted",
        })
    }
}

/// Proof of holding a lock: created by [`Mutex::lock`](super::Mutex::lock) and the other
/// acquire methods of this module.
///
/// Dropping the guard releases the lock in the background: the delete is queued on the session
/// before `drop` returns and is sent again after a reconnect until the server answers (no task
/// is spawned). [`LockGuard::release`] does the same and waits for the answer.
///
/// Holding is never certain in a distributed system: a paused process can wake up after its
/// session expired. Watch [`LockGuard::lost`], and make writes to shared resources either
/// [fenced](LockGuard::fenced) in ZooKeeper or checked against the
/// [fencing token](LockGuard::fencing_token) by the resource.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    client: Client,
    path: String,
    stat: Stat,
    policy: LossPolicy,
    /// Resolves when the node is deleted or the session ends; started on first use.
    node: Shared<BoxFuture<'static, LossReason>>,
    /// Set by [`LockGuard::release`], which has sent the delete itself.
    released: bool,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("path", &self.path)
            .field("fencing_token", &self.fencing_token())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    pub(crate) fn new(client: Client, acquired: Acquired, policy: LossPolicy) -> LockGuard {
        let node = watch_node(client.clone(), acquired.path.clone()).boxed().shared();
        LockGuard { client, path: acquired.path, stat: acquired.stat, policy, node, released: false }
    }

    /// The fencing token of this acquisition: the `czxid` of the holder's own lock node. Every
    /// later holder of the same lock (on the same ZooKeeper ensemble) gets a strictly greater
    /// token, even if the lock directory was deleted and re-created meanwhile, so a resource
    /// that remembers the highest token it has seen can refuse a write from a holder that was
    /// paused past the end of its hold.
    pub fn fencing_token(&self) -> u64 {
        self.stat.czxid as u64
    }

    /// The holder's own lock node (`<lock path>/_c_<uuid>-lock-<seq>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The stat of the lock node as created.
    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    /// The client the lock is held through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resolves, with the reason, once the lock may no longer be held: the connection is lost
    /// (under [`LossPolicy::Suspended`], the default), the session ends, or the lock node is
    /// deleted by someone else. Resolves at once if that is already the case. Each call makes
    /// an independent future; it needs no task of its own.
    ///
    /// Under `Suspended`, a lock whose connection comes back to the same session in time is
    /// still held (its node is still there): [`LockGuard::is_held`] turns true again and a new
    /// call to `lost` waits for the next loss.
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        let node = self.node.clone();
        let mut states = self.client.connection_states();
        let policy = self.policy;
        async move {
            let session = async move {
                while let Some(state) = states.next().await {
                    match state {
                        ConnectionState::Suspended if policy == LossPolicy::Suspended => return LossReason::Suspended,
                        ConnectionState::Lost => break,
                        _ => {}
                    }
                }
                LossReason::SessionLost
            };
            tokio::select! {
                reason = node => reason,
                reason = session => reason,
            }
        }
    }

    /// Whether the lock is held as far as this client can tell right now: the session is in
    /// good standing for the [`LossPolicy`] and the node has not been seen deleted.
    pub fn is_held(&self) -> bool {
        let state = self.client.state();
        let standing = match self.policy {
            LossPolicy::Suspended => matches!(state, SessionState::Connected | SessionState::ConnectedReadOnly),
            LossPolicy::Lost => !state.is_terminal(),
        };
        standing && self.node.clone().now_or_never().is_none()
    }

    /// A transaction that ZooKeeper applies only while this lock node exists: it starts with a
    /// `check` of the node, so once the lock is lost (session expired, node deleted) the write
    /// is rejected by the server itself, however late it arrives.
    pub fn fenced(&self) -> FencedTransaction {
        FencedTransaction::new(&self.client, [self.path.clone()])
    }

    /// Releases the lock and waits for the server to confirm.
    ///
    /// # Errors
    /// [`Error::LockLost`] if the node was already gone (the lock had been lost); the session's
    /// terminal error if it ended first (the lock went with it).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        match self.client.delete_guaranteed(&self.path, None).await {
            Ok(()) => Ok(()),
            Err(Error::NoNode) => Err(Error::LockLost { path: self.path.clone(), reason: "the lock node was deleted" }),
            Err(e) => Err(e),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            // Queued on the session before this returns; the reply is not awaited.
            drop(self.client.delete_guaranteed(&self.path, None));
        }
    }
}

/// Follows the holder's own node until it is deleted or the session ends.
async fn watch_node(client: Client, path: String) -> LossReason {
    loop {
        match client.exists_and_watch(&path).await {
            Ok((None, _)) => return LossReason::NodeDeleted,
            Ok((Some(_), watcher)) => match watcher.await {
                Ok(event) if event.event_type == EventType::NodeDeleted => return LossReason::NodeDeleted,
                // A data change (Curator's revoker writes to the node): watch again.
                Ok(_) => {}
                Err(_) => return LossReason::SessionLost,
            },
            Err(e) if e.is_retryable() => {
                if client.wait_connected().await.is_err() {
                    return LossReason::SessionLost;
                }
            }
            Err(_) => return LossReason::SessionLost,
        }
    }
}

/// A [`Transaction`] fenced by one or more lock nodes: it begins with a `check` of each, so the
/// server applies it only while every lock is still held. Made by [`LockGuard::fenced`] (and
/// the `fenced` methods of the other guards).
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct FencedTransaction {
    txn: Transaction,
    fences: Vec<String>,
}

impl FencedTransaction {
    pub(crate) fn new(client: &Client, fences: impl IntoIterator<Item = String>) -> FencedTransaction {
        let fences: Vec<String> = fences.into_iter().collect();
        let txn = fences.iter().fold(client.transaction(), |txn, path| txn.check(path, None));
        FencedTransaction { txn, fences }
    }

    /// Adds a create.
    pub fn create(self, path: &str, data: impl Into<Data>, options: impl Into<CreateOptions>) -> Self {
        FencedTransaction { txn: self.txn.create(path, data, options), ..self }
    }

    /// Adds a delete.
    pub fn delete(self, path: &str, version: Option<i32>) -> Self {
        FencedTransaction { txn: self.txn.delete(path, version), ..self }
    }

    /// Adds a setData.
    pub fn set_data(self, path: &str, data: impl Into<Data>, version: Option<i32>) -> Self {
        FencedTransaction { txn: self.txn.set_data(path, data, version), ..self }
    }

    /// Adds a version check.
    pub fn check(self, path: &str, version: Option<i32>) -> Self {
        FencedTransaction { txn: self.txn.check(path, version), ..self }
    }

    /// Sends the transaction. The results are those of the ops added (the fence checks are
    /// left out), and a failing op's index counts only the ops added.
    ///
    /// # Errors
    /// [`Error::LockLost`] if a lock node is gone (nothing was applied); otherwise as
    /// [`Client::multi`](conclave_core::Client::multi).
    pub fn commit(self) -> impl Future<Output = Result<Vec<OpResult>>> + Send + 'static {
        let mut fences = self.fences;
        let n = fences.len();
        let reply = self.txn.commit();
        async move {
            match reply.await {
                Ok(mut results) => {
                    results.drain(..n.min(results.len()));
                    Ok(results)
                }
                Err(Error::MultiFailed { index, .. }) if index < n => Err(Error::LockLost {
                    path: fences.swap_remove(index),
                    reason: "the lock node is gone; the fenced transaction was rejected",
                }),
                Err(Error::MultiFailed { index, source }) => Err(Error::MultiFailed { index: index - n, source }),
                Err(e) => Err(e),
            }
        }
    }
}
