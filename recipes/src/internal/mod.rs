//! The machinery every recipe family shares (crate-private): a recipe is a small driver on
//! these, not a new copy of them.
//!
//! - [`contend`]: the contention engine. Contenders queue up with protected ephemeral-sequential
//!   nodes; a [`contend::Spec`] (node marker, data) and a [`contend::Rule`] (who holds) describe
//!   one kind of contender. Mutex, read-write lock and semaphore are specs.
//! - [`order`]: contender node names (Curator's markers) and the overflow-safe order of their
//!   sequence suffixes.
//! - [`watch`]: the one watch-and-re-read loop every wait runs on (connection losses ridden
//!   out, a re-read after reconnecting, the session's end ends it).
//! - [`participants`]: who holds and who waits on a contention directory.
//! - [`session`]: the successor of an expired session, shared by every recipe that was on it.
//!
//! What a recipe grants is a [`Hold`](crate::hold::Hold), and how long a call may wait is a
//! [`Wait`](crate::Wait); both are public, in their own modules.

pub(crate) mod contend;
pub(crate) mod order;
pub(crate) mod participants;
pub(crate) mod session;
pub(crate) mod watch;

use conclave_core::{Client, CreateMode, Error as ZkError};

use crate::error::Result;

/// Makes sure the persistent node `path` exists (with its missing ancestors), riding out
/// connection losses: the directory a recipe writes under (a queue, the markers, a barrier).
pub(crate) async fn ensure_persistent(client: &Client, path: &str) -> Result<()> {
    watch::answered(client, || async move {
        match client.create_all(path, b"", CreateMode::Persistent).await {
            Ok(_) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// Creates `dir` and its missing ancestors as container nodes (which ZooKeeper removes once
/// they are empty), as Curator's `creatingParentContainersIfNeeded` does.
pub(crate) async fn ensure_dir(client: &Client, dir: &str) -> Result<()> {
    let mut at = 0;
    while at < dir.len() {
        let end = dir[at + 1..].find('/').map_or(dir.len(), |i| at + 1 + i);
        let ancestor = &dir[..end];
        // Repeating the create is safe: a second one finds NodeExists.
        watch::answered(client, || async move {
            match client.create(ancestor, b"", CreateMode::Container).await {
                Ok(_) | Err(ZkError::NodeExists) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        at = end;
    }
    Ok(())
}

/// `stream` without the `Ok` items equal to the `Ok` item before them: for level-triggered
/// streams of a derived view (a group's members, a service's instances), where a change of the
/// underlying nodes may leave the view as it was.
pub(crate) fn distinct<T, S>(stream: S) -> impl futures::Stream<Item = Result<T>> + Send + 'static
where
    T: PartialEq + Clone + Send + 'static,
    S: futures::Stream<Item = Result<T>> + Send + 'static,
{
    use futures::StreamExt;
    let mut last: Option<T> = None;
    stream.filter_map(move |item| {
        let keep = match &item {
            Ok(now) if last.as_ref() == Some(now) => false,
            Ok(now) => {
                last = Some(now.clone());
                true
            }
            Err(_) => true,
        };
        std::future::ready(keep.then_some(item))
    })
}
