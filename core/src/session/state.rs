//! Session states and the cell that publishes them: a current-value getter plus a stream per
//! subscriber that sees every transition, in order, starting with the state at subscription.
//!
//! ```text
//!                 connect()
//!                     |
//!                     v
//!   +-----------> Connecting ----------------------------+
//!   |                 | handshake accepted               | every host failed (connect() errors)
//!   |                 v                                  |
//!   |   +------>  Connected / ConnectedReadOnly          |
//!   |   |             | connection lost (EOF, error,     |
//!   |   |             | read timeout, protocol error)    |
//!   |   | same        v                                  |
//!   |   | session  Disconnected ---- reconnecting ----+  |
//!   |   +-------------+                               |  |
//!   |                                                 |  |
//!   |   server answers "expired" (timeout 0) ---------+--+--> Expired    (terminal)
//!   |   addAuth refused --------------------------------------> AuthFailed (terminal)
//!   |   close() / last Client dropped ------------------------> Closed     (terminal)
//! ```
//!
//! Requests in flight when the connection is lost fail with `ConnectionLoss` (they may or may not
//! have been applied); requests made while `Disconnected` wait for the reconnect. On a terminal
//! state every pending request, watcher and stream ends with the matching error.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::{mpsc, watch};

use crate::error::Error;

/// The state of a client's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Establishing the first connection.
    Connecting,
    /// Connected; the session is live.
    Connected,
    /// Connected to a read-only server; writes fail with `NotReadOnly`.
    ConnectedReadOnly,
    /// The connection was lost; the client is reconnecting and the session may still be alive on
    /// the server. Whoever holds a lock must assume it may be lost.
    Disconnected,
    /// The server declared the session expired: its ephemeral nodes and watches are gone. Terminal.
    Expired,
    /// The server refused the client's credentials. Terminal.
    AuthFailed,
    /// The client closed the session. Terminal.
    Closed,
}

impl SessionState {
    /// Whether the session can never be used again.
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Expired | SessionState::AuthFailed | SessionState::Closed)
    }

    /// Whether requests are currently flowing.
    pub fn is_connected(self) -> bool {
        matches!(self, SessionState::Connected | SessionState::ConnectedReadOnly)
    }

    /// The error that requests get in a terminal state.
    pub(crate) fn terminal_error(self) -> Option<Error> {
        match self {
            SessionState::Expired => Some(Error::SessionExpired),
            SessionState::AuthFailed => Some(Error::AuthFailed),
            SessionState::Closed => Some(Error::Closed),
            _ => None,
        }
    }
}

/// Publishes session state: the current value, a `watch` for waiters, and a lossless stream per
/// subscriber.
#[derive(Debug)]
pub(crate) struct StateCell {
    inner: Mutex<Vec<mpsc::UnboundedSender<SessionState>>>,
    current: watch::Sender<SessionState>,
}

impl StateCell {
    pub(crate) fn new(initial: SessionState) -> Self {
        StateCell { inner: Mutex::new(Vec::new()), current: watch::Sender::new(initial) }
    }

    pub(crate) fn get(&self) -> SessionState {
        *self.current.borrow()
    }

    /// Moves to `state` (no-op if unchanged; terminal states are final).
    pub(crate) fn set(&self, state: SessionState) {
        let mut subs = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.get();
        if old == state || old.is_terminal() {
            return;
        }
        self.current.send_replace(state);
        subs.retain(|tx| tx.send(state).is_ok());
        if state.is_terminal() {
            subs.clear();
        }
    }

    pub(crate) fn subscribe(&self) -> StateStream {
        let mut subs = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (tx, rx) = mpsc::unbounded_channel();
        let now = self.get();
        let _ = tx.send(now);
        if !now.is_terminal() {
            subs.push(tx);
        }
        StateStream { rx }
    }

    pub(crate) fn watch(&self) -> watch::Receiver<SessionState> {
        self.current.subscribe()
    }
}

/// Every session state transition, starting with the state at the time of subscribing; ends after
/// a terminal state. Created by [`crate::Client::state_stream`].
#[derive(Debug)]
pub struct StateStream {
    rx: mpsc::UnboundedReceiver<SessionState>,
}

impl Stream for StateStream {
    type Item = SessionState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionState>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn subscribers_see_every_transition_then_the_end() {
        let cell = StateCell::new(SessionState::Connecting);
        let mut s = cell.subscribe();
        cell.set(SessionState::Connected);
        cell.set(SessionState::Disconnected);
        cell.set(SessionState::Connected);
        cell.set(SessionState::Expired);
        cell.set(SessionState::Connected); // ignored: terminal is final
        let seen: Vec<_> = (&mut s).collect().await;
        use SessionState::*;
        assert_eq!(seen, vec![Connecting, Connected, Disconnected, Connected, Expired]);
        assert_eq!(cell.get(), Expired);
        let late: Vec<_> = cell.subscribe().collect().await;
        assert_eq!(late, vec![Expired]);
    }
}
