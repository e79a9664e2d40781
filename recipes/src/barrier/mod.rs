//! Barriers. [`Barrier`] (Apache Curator's `DistributedBarrier`): a node that, while it exists,
//! holds back everyone who waits on it; removing it lets them all through.
//!
//! The barrier node is `<path>` itself (persistent; missing parents are created), so Curator's
//! `DistributedBarrier` and this one on the same path are the same barrier. A wait is one
//! watch-and-re-read loop on the node's existence: it rides out connection losses (a barrier
//! removed while the client was disconnected is seen on reconnection) and ends with the
//! session.

use conclave_core::{path, Client, CreateMode, Error as ZkError};

use crate::error::Result;
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
        let (client, node) = (&self.client, self.path.as_str());
        watch::answered(client, || async move {
            match client.create_all(node, b"", CreateMode::Persistent).await {
                Ok(_) | Err(ZkError::NodeExists) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
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
