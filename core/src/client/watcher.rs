//! Watchers handed to users: [`OneshotWatcher`] (a future, returned together with the result of
//! the read that set it) and [`PersistentWatcher`] (a stream, from `add_watch`). Dropping either
//! unregisters it; when nothing else relies on the server-side watch, the client removes that too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::proto::EventType;
use crate::session::{Command, WatchedEvent, WatcherId};

/// Unregisters a watcher on drop (through a weak handle, so watchers never keep a session
/// alive).
#[derive(Debug)]
struct Unregister {
    id: WatcherId,
    tx: mpsc::WeakUnboundedSender<Command>,
}

impl Unregister {
    fn send(&self) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Command::Unwatch(self.id));
        }
    }
}

/// A one-shot watch: resolves with the first event on the watched node, or with the error that
/// ended the session (`SessionExpired`, `Closed`, `AuthFailed`). Watches survive reconnects to
/// the same session. Dropping it unregisters the watch.
#[derive(Debug)]
#[must_use = "a watcher does nothing unless awaited; dropping it removes the watch"]
pub struct OneshotWatcher {
    rx: oneshot::Receiver<Result<WatchedEvent>>,
    unregister: Option<Unregister>,
}

impl OneshotWatcher {
    pub(crate) fn new(
        rx: oneshot::Receiver<Result<WatchedEvent>>,
        id: WatcherId,
        tx: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        OneshotWatcher { rx, unregister: Some(Unregister { id, tx }) }
    }
}

impl Future for OneshotWatcher {
    type Output = Result<WatchedEvent>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(r)) => r,
            Poll::Ready(Err(_)) => Err(Error::Closed),
        };
        // Fired: the registry already forgot it.
        self.unregister = None;
        Poll::Ready(out)
    }
}

impl Drop for OneshotWatcher {
    fn drop(&mut self) {
        if let Some(u) = self.unregister.take() {
            u.send();
        }
    }
}

/// A persistent watch (`addWatch`): a stream of every event on the node (mode `Persistent`) or
/// on the node and all its descendants (mode `PersistentRecursive`, which never reports
/// `NodeChildrenChanged`). It ends after an `Err` when the session ends, or after a
/// `PersistentWatchRemoved` event when the watch is removed. Dropping it removes the watch.
///
/// Events that happen while the client is disconnected are not replayed for persistent watches
/// (ZooKeeper re-registers them without catch-up events).
#[derive(Debug)]
#[must_use = "a watcher does nothing unless polled; dropping it removes the watch"]
pub struct PersistentWatcher {
    rx: mpsc::UnboundedReceiver<Result<WatchedEvent>>,
    unregister: Unregister,
    done: bool,
}

impl PersistentWatcher {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Result<WatchedEvent>>,
        id: WatcherId,
        tx: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        PersistentWatcher { rx, unregister: Unregister { id, tx }, done: false }
    }
}

impl Stream for PersistentWatcher {
    type Item = Result<WatchedEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match self.rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let last = match &item {
            None | Some(Err(_)) => true,
            Some(Ok(ev)) => ev.event_type == EventType::PersistentWatchRemoved,
        };
        self.done = last;
        Poll::Ready(item)
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if !self.done {
            self.unregister.send();
        }
    }
}
