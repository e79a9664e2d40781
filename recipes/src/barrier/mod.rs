//! Barriers. [`Barrier`] (Apache Curator's `DistributedBarrier`): a node that, while it exists,
//! holds back everyone who waits on it; removing it lets them all through. [`DoubleBarrier`]
//! (Curator's `DistributedDoubleBarrier`): members enter together once enough have arrived,
//! and leave together once all have finished.
//!
//! The barrier node is `<path>` itself (persistent; missing parents are created), so Curator's
//! `DistributedBarrier` and this one on the same path are the same barrier. A wait is one
//! watch-and-re-read loop on the node's existence: it rides out connection losses (a barrier
//! removed while the client was disconnected is seen on reconnection) and ends with the
//! session.

use conclave_core::{path, Client, CreateMode, Error as ZkError};

use crate::error::Result;
use crate::internal::ensure_persistent;
use crate::internal::watch::{self, Step};
use crate::wait::{wait_forms, Wait};

/// A barrier on a ZooKeeper path, interoperable with Curator's `DistributedBarrier`: set, it
/// holds back every waiter; removed, it lets them all through.
///
/// ```no_run
/// # async fn demo(client: conclave::Client) -> conclave::Result<()> {
/// use conclave::barrier::Barrier;
///
/// let gate = Barrier::new(client, "/deploy/gate");
/// gate.set().await?;
/// // ... elsewhere, workers call gate.wait().await? and block until:
/// gate.remove().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier on `path`. Nothing is sent until a call (a bad path is reported then).
    pub fn new(client: Client, path: &str) -> Barrier {
        Barrier { client, path: path.to_string() }
    }

    /// The barrier node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Sets the barrier: creates its node (and missing parents); already set is fine.
    /// Connection losses are ridden out.
    ///
    /// # Errors
    /// `InvalidPath`; `NoAuth` if the node may not be created; the session's terminal error.
    pub async fn set(&self) -> Result<()> {
        path::validate_path(&self.path)?;
        ensure_persistent(&self.client, &self.path).await
    }

    /// Removes the barrier, letting every waiter through; not set is fine. Connection losses
    /// are ridden out.
    ///
    /// # Errors
    /// `InvalidPath`; `NoAuth`; `NotEmpty` if someone created children under the barrier node;
    /// the session's terminal error.
    pub async fn remove(&self) -> Result<()> {
        path::validate_path(&self.path)?;
        let (client, node) = (&self.client, self.path.as_str());
        watch::answered(client, || async move {
            match client.delete(node, None).await {
                Ok(()) | Err(ZkError::NoNode) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Whether the barrier is set now.
    ///
    /// # Errors
    /// `InvalidPath`; the session's terminal error.
    pub async fn is_set(&self) -> Result<bool> {
        path::validate_path(&self.path)?;
        let (client, node) = (&self.client, self.path.as_str());
        watch::answered(client, || async move { Ok(client.exists(node).await?.is_some()) }).await
    }

    wait_forms! {
        what: "the barrier to be removed",
        with: wait_with() -> (),
        forever: wait,
        once: try_wait,
        timeout: wait_timeout,
        cancellable: wait_cancellable,
    }

    /// Waits within `wait`'s limits until the barrier is not set: `Some(())` once it is not
    /// (at once if it is not set now), `None` if the limits were reached first.
    ///
    /// # Errors
    /// `InvalidPath`; the session's terminal error if it ends first (connection losses are
    /// ridden out).
    pub async fn wait_with(&self, wait: Wait) -> Result<Option<()>> {
        path::validate_path(&self.path)?;
        let (client, node) = (&self.client, self.path.as_str());
        wait.start()
            .run(|bound| async move {
                let once = bound.once();
                watch::until(client, |round| async move {
                    Ok(match round.watch_exists(node).await? {
                        None => Step::Done(Some(())),
                        Some(_) if once => Step::Done(None),
                        Some(_) => Step::Wait,
                    })
                })
                .await
            })
            .await
    }
}

/// The name of the node that opens a [`DoubleBarrier`] (Curator's).
const READY: &str = "ready";

/// A double barrier on a ZooKeeper path, interoperable with Curator's
/// `DistributedDoubleBarrier`: [`enter`](DoubleBarrier::enter) returns once `count` members
/// have entered (a threshold, not a limit: later members enter at once), and
/// [`leave`](DoubleBarrier::leave) once every member that entered has left.
///
/// Each member is an ephemeral node `<path>/<uuid>` (its data the member id) and the barrier
/// opens with the persistent `<path>/ready`, as Curator lays them out, so Java and Rust members
/// share one barrier. A member whose session ends counts as left (its node goes with it), so
/// the others are not stuck waiting for it to leave. Every wait re-reads the members after each
/// watch event or reconnection, so a spurious wake-up never lets `enter` pass early
/// (apache/curator#1290), and every wait takes the common [`Wait`].
///
/// One `DoubleBarrier` value is one member: enter, then leave, then it may enter again.
///
/// # Cancellation safety
/// A dropped or timed-out `enter` removes the member's node (no stray member is counted by the
/// others). A dropped `leave` may leave the member in the barrier until its session ends.
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    id: bytes::Bytes,
    count: usize,
    /// Our node's name while we are a member.
    node: std::sync::Mutex<Option<String>>,
}

/// Deletes a member node unless disarmed (a dropped or failed `enter`).
struct Member {
    client: Client,
    path: String,
    armed: bool,
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.armed {
            // Queued on the session now (after the create, if that is in flight), sent again
            // after a reconnect.
            drop(self.client.delete_guaranteed(&self.path, None));
        }
    }
}

impl DoubleBarrier {
    /// Member `member_id` of the double barrier on `path` that opens with `count` members.
    pub fn new(client: Client, path: &str, member_id: impl Into<conclave_core::Data>, count: usize) -> DoubleBarrier {
        let id = member_id.into().into_bytes();
        DoubleBarrier { client, path: path.to_string(), id, count, node: std::sync::Mutex::new(None) }
    }

    /// The barrier path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this member has entered and not left.
    pub fn entered(&self) -> bool {
        self.member().is_some()
    }

    fn member(&self) -> Option<String> {
        self.node.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_member(&self, node: Option<String>) {
        *self.node.lock().unwrap_or_else(|e| e.into_inner()) = node;
    }

    wait_forms! {
        what: "the barrier to open",
        with: enter_with() -> (),
        forever: enter,
        once: try_enter,
        timeout: enter_timeout,
        cancellable: enter_cancellable,
    }

    /// Enters (creates this member's node) and waits within `wait`'s limits until the barrier
    /// opens: `Some(())` once `count` members have entered (this member counts), `None` if the
    /// limits were reached first (the member's node is removed again).
    ///
    /// # Errors
    /// `InvalidPath`; `InvalidArgument` if this member has entered already (leave first);
    /// `NoAuth`; the session's terminal error if it ends first (connection losses are ridden
    /// out).
    pub async fn enter_with(&self, wait: Wait) -> Result<Option<()>> {
        path::validate_path(&self.path)?;
        if self.entered() {
            return Err(ZkError::InvalidArgument("this member has entered already: leave first".into()).into());
        }
        let name = uuid::Uuid::new_v4().to_string();
        let node = path::join(&self.path, &name);
        let ready = path::join(&self.path, READY);
        let mut member = Member { client: self.client.clone(), path: node.clone(), armed: true };
        let (client, id, count) = (&self.client, &self.id, self.count);
        let dir = self.path.as_str();
        let created = std::sync::atomic::AtomicBool::new(false);
        // How much of the barrier's lineage to create first: 0 nothing, 1 its node, 2 all.
        let missing = std::sync::atomic::AtomicU8::new(0);
        let opened = wait
            .start()
            .run(|bound| {
                let (node, ready, name, once) = (&node, ready.as_str(), name.as_str(), bound.once());
                let (created, missing) = (&created, &missing);
                async move {
                    watch::until(client, |round| async move {
                        use std::sync::atomic::Ordering::SeqCst;
                        // Our node, the members and `ready`, in one round trip: the create is
                        // sent first, so the listing (in the same session's order) includes it;
                        // after a create that found the barrier's node missing, the barrier node's
                        // create goes first, in the same round trip (and if that was not enough,
                        // all of its ancestors'). Repeated after a connection loss, NODEEXISTS is
                        // ours (the name is fresh), unless the session changed, which ends the
                        // call anyway.
                        let parents: Vec<_> = match missing.load(SeqCst) {
                            0 => Vec::new(),
                            1 => vec![client.create(dir, b"", CreateMode::Persistent)],
                            _ => path::ancestors(dir)
                                .into_iter()
                                .chain([dir])
                                .map(|p| client.create(p, b"", CreateMode::Persistent))
                                .collect(),
                        };
                        let create =
                            (!created.load(SeqCst)).then(|| client.create(node, id.clone(), CreateMode::Ephemeral));
                        let children = client.get_children(dir);
                        let ready_stat = round.watch_exists(ready).await;
                        for parent in futures::future::join_all(parents).await {
                            match parent {
                                // NONODE: a higher one was refused, which its own outcome says.
                                Ok(_) | Err(ZkError::NodeExists) | Err(ZkError::NoNode) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                        if let Some(create) = create {
                            match create.await {
                                Ok(_) | Err(ZkError::NodeExists) => created.store(true, SeqCst),
                                Err(ZkError::NoNode) if missing.load(SeqCst) < 2 => {
                                    missing.fetch_add(1, SeqCst);
                                    return Ok(Step::Again);
                                }
                                Err(e) => return Err(e.into()),
                            }
                        }
                        let children = children.await;
                        if ready_stat?.is_some() {
                            return Ok(Step::Done(Some(())));
                        }
                        let members = children?.into_iter().filter(|c| c != READY && c != name).count() + 1;
                        if members >= count {
                            match client.create(ready, b"", CreateMode::Persistent).await {
                                Ok(_) | Err(ZkError::NodeExists) => return Ok(Step::Done(Some(()))),
                                Err(e) => return Err(e.into()),
                            }
                        }
                        Ok(if once { Step::Done(None) } else { Step::Wait })
                    })
                    .await
                }
            })
            .await?;
        if opened.is_some() {
            member.armed = false;
            self.set_member(Some(name));
        }
        Ok(opened)
    }

    wait_forms! {
        what: "every member to leave",
        with: leave_with() -> (),
        forever: leave,
        once: try_leave,
        timeout: leave_timeout,
        cancellable: leave_cancellable,
    }

    /// Leaves (removes this member's node) and waits within `wait`'s limits until every member
    /// has left: `Some(())` then (the `ready` node is removed too), `None` if the limits were
    /// reached first (this member may still be counted until it leaves again or its session
    /// ends). The lowest-named member leaves last, after watching the highest; the others leave
    /// at once and watch the lowest (Curator's protocol). A member that has not entered leaves
    /// at once.
    ///
    /// # Errors
    /// `InvalidPath`; the session's terminal error if it ends first (connection losses are
    /// ridden out).
    pub async fn leave_with(&self, wait: Wait) -> Result<Option<()>> {
        path::validate_path(&self.path)?;
        let Some(ours) = self.member() else { return Ok(Some(())) };
        let (client, dir) = (&self.client, self.path.as_str());
        let own = path::join(dir, &ours);
        let ready = path::join(dir, READY);
        let deleted = std::sync::atomic::AtomicBool::new(false);
        let left = wait
            .start()
            .run(|bound| {
                let (once, ours, own, ready, deleted) =
                    (bound.once(), ours.as_str(), own.as_str(), ready.as_str(), &deleted);
                async move {
                    watch::until(client, |round| async move {
                        use std::sync::atomic::Ordering::SeqCst;
                        let mut members: Vec<String> =
                            client.get_children(dir).await?.into_iter().filter(|c| c != READY).collect();
                        members.sort();
                        let Some(lowest) = members.first().cloned() else { return Ok(Step::Done(Some(()))) };
                        let last_out = lowest == ours && !deleted.load(SeqCst);
                        let watched = if last_out {
                            if members.len() == 1 {
                                // The last one out: our node and `ready` together, so that
                                // whoever sees our node gone sees the barrier reset too.
                                let txn = client.transaction().delete(own, None).delete(ready, None).commit();
                                match txn.await {
                                    Ok(_) => {}
                                    Err(ZkError::MultiFailed { index: 1, .. }) => delete_quietly(client, own).await?,
                                    Err(ZkError::MultiFailed { index: 0, .. }) => {}
                                    Err(e) => return Err(e.into()),
                                }
                                deleted.store(true, SeqCst);
                                return Ok(Step::Done(Some(())));
                            }
                            path::join(dir, members.last().expect("several members"))
                        } else {
                            path::join(dir, &lowest)
                        };
                        // Ours goes now (unless we are the lowest), in the same round trip as
                        // the watch on whom we wait for.
                        let delete = (!last_out && !deleted.load(SeqCst)).then(|| client.delete(own, None));
                        let stat = round.watch_exists(&watched).await;
                        if let Some(delete) = delete {
                            match delete.await {
                                Ok(()) | Err(ZkError::NoNode) => deleted.store(true, SeqCst),
                                Err(e) => return Err(e.into()),
                            }
                        }
                        Ok(match stat? {
                            None => Step::Again,
                            Some(_) if once => Step::Done(None),
                            Some(_) => Step::Wait,
                        })
                    })
                    .await
                }
            })
            .await?;
        if left.is_some() {
            self.set_member(None);
            // The last one out reset the barrier with its node; if it died instead, `ready`
            // is still there: queued now, not awaited.
            drop(client.delete(&ready, None));
        }
        Ok(left)
    }
}

/// Deletes `node` if it is there.
async fn delete_quietly(client: &Client, node: &str) -> Result<()> {
    match client.delete(node, None).await {
        Ok(()) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
