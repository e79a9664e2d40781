//! The watch-and-re-read loop every recipe wait runs on, and the only place in the recipes that
//! reads with a watch.
//!
//! A recipe that waits for something (its turn in a lock, a lease to free up, its own node to
//! go) writes one *round*: reads that look at the state, some of them leaving a one-shot watch
//! through [`Round`], and a verdict ([`Step`]): done, wait for a watch to fire, or look again at
//! once. [`until`] runs rounds until one is done, and owns the rules every wait must follow:
//! - a round that meets a connection loss (`ConnectionLoss`, `OperationTimeout`) is run again
//!   once the session is connected again: its reads are repeatable, and their outcome unknown;
//! - while waiting, a reconnection to the same session (`Reconnected`, or a read-only server)
//!   runs the round again even though no watch fired, since something may have changed while
//!   the client could not hear about it;
//! - the session's end ends the loop with the session's error (a watcher fails with it, and so
//!   does the next read).
//!
//! [`answered`] is the degenerate loop of one round that never waits: a read (or a write that
//! is safe to repeat) ridden through connection losses. Dropping either future drops the round
//! in progress and its watchers, which unregister themselves.

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use conclave_core::{Client, ConnectionState, ConnectionStateStream, Error as ZkError, OneshotWatcher, Stat};
use futures::future::{select_all, FutureExt};
use futures::StreamExt;

use crate::error::Result;

/// A round's verdict.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// The wait is over, with this.
    Done(T),
    /// Wait until a watch set in this round fires, or the client reconnects, then run the round
    /// again. A round that set no watch is run again at once.
    Wait,
    /// Run the round again at once (what it would have waited for is already gone).
    Again,
}

/// One round's reads with a watch. Plain reads (without a watch) go straight to the client.
/// A cheap handle, passed by value to the round (which keeps the loop's future `Send`).
#[derive(Debug, Clone)]
pub(crate) struct Round {
    client: Client,
    watchers: Arc<Mutex<Vec<OneshotWatcher>>>,
}

impl Round {
    fn keep(&self, watcher: OneshotWatcher) {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner()).push(watcher);
    }

    fn take(&self) -> Vec<OneshotWatcher> {
        std::mem::take(&mut *self.watchers.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The node's children, leaving a watch that fires when a child is created or deleted or
    /// the node is deleted; `None` (and no watch) if the node does not exist.
    pub(crate) async fn watch_children(&self, path: &str) -> Result<Option<Vec<String>>> {
        match self.client.get_children_and_watch(path).await {
            Ok((children, watcher)) => {
                self.keep(watcher);
                Ok(Some(children))
            }
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The node's data and stat, leaving a watch that fires when it changes or is deleted;
    /// `None` (and no watch: a node that is gone for good leaves nothing behind on the server)
    /// if the node does not exist.
    pub(crate) async fn watch_data(&self, path: &str) -> Result<Option<(Bytes, Stat)>> {
        match self.client.get_data_and_watch(path).await {
            Ok((data, stat, watcher)) => {
                self.keep(watcher);
                Ok(Some((data, stat)))
            }
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `round` until it is [done](Step::Done), under the rules of the [module docs](self).
/// Each call of `round` makes the future of one round (state carried from one round to the
/// next lives in the closure, and is moved into the future).
///
/// # Errors
/// The first error of a round that is not a connection loss; the session's terminal error if
/// it ends first.
pub(crate) async fn until<T, F, Fut>(client: &Client, mut round: F) -> Result<T>
where
    F: FnMut(Round) -> Fut,
    Fut: Future<Output = Result<Step<T>>>,
{
    let mut states = client.connection_states();
    loop {
        // What happened before this round is seen by its reads.
        while let Some(Some(_)) = states.next().now_or_never() {}
        let r = Round { client: client.clone(), watchers: Arc::default() };
        let step = round(r.clone()).await;
        let watchers = r.take();
        match step {
            Ok(Step::Done(done)) => return Ok(done),
            Ok(Step::Again) => {}
            Ok(Step::Wait) if watchers.is_empty() => {}
            Ok(Step::Wait) => changed(watchers, &mut states).await?,
            Err(e) if e.is_retryable() => client.wait_connected().await?,
            Err(e) => return Err(e),
        }
    }
}

/// Runs `op` (reads, or writes that are safe to repeat) until the server answers it, waiting for
/// the session to reconnect after each connection loss.
///
/// # Errors
/// The server's answer if it is an error; the session's terminal error if it ends first.
pub(crate) async fn answered<T, F, Fut>(client: &Client, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    until(client, |_| op().map(|done| done.map(Step::Done))).await
}

/// Waits until one of `watchers` fires or the client is connected again after a disconnection.
/// A watcher failing with the session's end, or the connection states ending, also returns: the
/// next round's reads report the end.
async fn changed(watchers: Vec<OneshotWatcher>, states: &mut ConnectionStateStream) -> Result<()> {
    let reconnected = async {
        while let Some(state) = states.next().await {
            match state {
                ConnectionState::Reconnected | ConnectionState::ReadOnly | ConnectionState::Lost => return,
                _ => {}
            }
        }
    };
    tokio::select! {
        (fired, _, _) = select_all(watchers) => {
            if let Err(e) = fired {
                return Err(e.into());
            }
        }
        () = reconnected => {}
    }
    Ok(())
}
