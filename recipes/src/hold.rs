//! What a recipe grants: a [`Hold`] on one node of the holder's own — a lock, a semaphore
//! lease, and the same piece under leadership and queue-item claims — with what every holder
//! needs to use it safely.
//!
//! A hold through ZooKeeper ends when the session does, and the holder may learn of it late (a
//! long pause, a partition). Four tools cover that, the same for every recipe:
//! - [`Hold::lost`] resolves, with a [`LossReason`], as soon as the hold *may* be gone: by default
//!   when the connection is lost ([`LossPolicy::Suspended`]), which leaves at least a third of
//!   the session timeout before the server can expire the session and grant the hold to
//!   someone else;
//! - [`Hold::fenced`] builds a transaction that begins with a check of the holder's own node, so
//!   ZooKeeper refuses the write once the hold is gone ([`Error::Lost`]);
//! - [`Hold::fencing_token`] (the node's `czxid`) increases with every new holder, for
//!   resources outside ZooKeeper that can remember the highest token they have accepted;
//! - dropping the hold releases it in the background (the delete is queued on the session and
//!   sent again after a reconnect), and [`Hold::release`] does it and reports the outcome.

use std::fmt;
use std::future::Future;

use conclave_core::{
    Client, ConnectionState, CreateOptions, Data, Error as ZkError, OpResult, SessionState, Stat, Transaction,
};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::internal::watch::{self, Step};

/// When a holder must consider its hold gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LossPolicy {
    /// As soon as the connection is lost (`Suspended`), even though the session, and with it
    /// the hold, may still be alive: the server may expire the session before the client hears
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

/// Why a hold may no longer be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// The connection was lost; the session may still be alive ([`LossPolicy::Suspended`]).
    Suspended,
    /// The session ended (expired, closed, moved, refused): its nodes are gone.
    SessionLost,
    /// The holder's node was deleted: by someone else (an operator, a revoking process), or by
    /// the server expiring the session, when that deletion is seen before the expiry itself.
    NodeDeleted,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossReason::Suspended => "the connection to ZooKeeper was lost (suspended)",
            LossReason::SessionLost => "the ZooKeeper session ended",
            LossReason::NodeDeleted => "the holder's node was deleted",
        })
    }
}

/// Proof of holding something a recipe grants (a lock is a [`LockGuard`](crate::lock::LockGuard),
/// a semaphore lease a [`Lease`](crate::lock::Lease)): the holder's own ephemeral node, with its
/// fencing token, its loss signal and fenced writes.
///
/// Dropping the hold releases it in the background: the delete is queued on the session before
/// `drop` returns and is sent again after a reconnect until the server answers (no task is
/// spawned). [`Hold::release`] does the same and waits for the answer.
///
/// Holding is never certain in a distributed system: a paused process can wake up after its
/// session expired. Watch [`Hold::lost`], and make writes to shared resources either
/// [fenced](Hold::fenced) in ZooKeeper or checked against the
/// [fencing token](Hold::fencing_token) by the resource.
#[must_use = "the hold is released as soon as it is dropped"]
pub struct Hold {
    client: Client,
    path: String,
    stat: Stat,
    policy: LossPolicy,
    /// Resolves when the node is deleted or the session ends; started on first use.
    node: Shared<BoxFuture<'static, LossReason>>,
    /// A second node of the holder's that goes with the first, deleted after it (a queue
    /// claim's exclusive `claim` node, which the holder's own node proves is its own).
    companion: Option<String>,
    /// Set by [`Hold::release`], which has sent the delete itself.
    released: bool,
}

impl fmt::Debug for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hold")
            .field("path", &self.path)
            .field("fencing_token", &self.fencing_token())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Hold {
    /// A hold on `path`, a node this client's session created with `stat` (and confirmed as
    /// granted).
    pub(crate) fn new(client: Client, path: String, stat: Stat, policy: LossPolicy) -> Hold {
        let node = watch_node(client.clone(), path.clone()).boxed().shared();
        Hold { client, path, stat, policy, node, companion: None, released: false }
    }

    /// This hold, with `companion` deleted after the own node whenever the hold is released:
    /// only once the own node is confirmed deleted by [`Hold::release`]; queued right behind
    /// it on drop.
    pub(crate) fn with_companion(mut self, companion: String) -> Hold {
        self.companion = Some(companion);
        self
    }

    /// Ends the hold without releasing it: its nodes were removed by the recipe itself (a
    /// queue claim's ack deletes them with the item, in one transaction).
    pub(crate) fn settle(mut self) {
        self.released = true;
    }

    /// The fencing token of this hold: the `czxid` of the holder's own node. Every later holder
    /// of the same lock (or leadership, on the same ZooKeeper ensemble) gets a strictly greater
    /// token, even if the directory was deleted and re-created meanwhile, so a resource that
    /// remembers the highest token it has seen can refuse a write from a holder that was paused
    /// past the end of its hold.
    pub fn fencing_token(&self) -> u64 {
        self.stat.czxid as u64
    }

    /// The holder's own node (for a mutex `<lock path>/_c_<uuid>-lock-<seq>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The stat of the node as created.
    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    /// The client the hold is held through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// When this hold considers itself lost.
    pub fn loss_policy(&self) -> LossPolicy {
        self.policy
    }

    /// Resolves, with the reason, once the hold may no longer be held: the connection is lost
    /// (under [`LossPolicy::Suspended`], the default), the session ends, or the node is deleted
    /// by someone else. Resolves at once if that is already the case. Each call makes an
    /// independent future; it needs no task of its own.
    ///
    /// Under `Suspended`, a hold whose connection comes back to the same session in time is
    /// still held (its node is still there): [`Hold::is_held`] turns true again and a new call
    /// to `lost` waits for the next loss.
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

    /// Whether the hold is held as far as this client can tell right now: the session is in
    /// good standing for the [`LossPolicy`] and the node has not been seen deleted.
    pub fn is_held(&self) -> bool {
        let state = self.client.state();
        let standing = match self.policy {
            LossPolicy::Suspended => matches!(state, SessionState::Connected | SessionState::ConnectedReadOnly),
            LossPolicy::Lost => !state.is_terminal(),
        };
        standing && self.node.clone().now_or_never().is_none()
    }

    /// A transaction that ZooKeeper applies only while this hold's node exists: it starts with a
    /// `check` of the node, so once the hold is lost (session expired, node deleted) the write
    /// is rejected by the server itself, however late it arrives.
    pub fn fenced(&self) -> FencedTransaction {
        FencedTransaction::new(&self.client, [self.path.clone()])
    }

    /// Releases the hold and waits for the server to confirm.
    ///
    /// # Errors
    /// [`Error::Lost`] if the node was already gone (the hold had been lost); the session's
    /// terminal error if it ended first (the hold went with it).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        match self.client.delete_guaranteed(&self.path, None).await {
            Ok(()) => match self.companion.take() {
                Some(companion) => match self.client.delete_guaranteed(&companion, None).await {
                    Ok(()) | Err(ZkError::NoNode) => Ok(()),
                    Err(e) => Err(e.into()),
                },
                None => Ok(()),
            },
            Err(ZkError::NoNode) => Err(Error::Lost { path: self.path.clone(), reason: LossReason::NodeDeleted }),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.released {
            // Queued on the session before this returns; the reply is not awaited.
            drop(self.client.delete_guaranteed(&self.path, None));
            if let Some(companion) = &self.companion {
                // Behind the own node's delete on the same session, so never before it.
                drop(self.client.delete_guaranteed(companion, None));
            }
        }
    }
}

/// Follows the holder's own node until it is deleted or the session ends. A data change (a
/// Curator revoker writes to the node) is only a reason to look again.
async fn watch_node(client: Client, path: String) -> LossReason {
    let path = &path;
    let gone = watch::until(&client, |round| async move {
        Ok(match round.watch_data(path).await? {
            Some(_) => Step::Wait,
            None => Step::Done(()),
        })
    });
    match gone.await {
        Ok(()) => LossReason::NodeDeleted,
        Err(_) => LossReason::SessionLost,
    }
}

/// A [`Transaction`] fenced by one or more holds: it begins with a `check` of each hold's node,
/// so the server applies it only while every hold is still held. Made by [`Hold::fenced`] (and
/// the `fenced` methods of the recipes' other guards).
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
    /// [`Error::Lost`] if a hold's node is gone (nothing was applied); otherwise as
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
                Err(ZkError::MultiFailed { index, .. }) if index < n => {
                    Err(Error::Lost { path: fences.swap_remove(index), reason: LossReason::NodeDeleted })
                }
                Err(ZkError::MultiFailed { index, source }) => {
                    Err(ZkError::MultiFailed { index: index - n, source }.into())
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
