//! Session states and the cell that publishes them: a current-value getter, a stream of every
//! [`SessionState`] transition, and the recipe-level [`ConnectionState`] stream derived from it.
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
//!   |   +-------------+      (other servers, back-off)|  |
//!   |                                                 |  |
//!   |   server answers "expired" (timeout 0), or no --+--+--> Expired    (terminal)
//!   |     server heard for 4/3 of the session timeout
//!   |   addAuth refused --------------------------------------> AuthFailed (terminal)
//!   |   another Client took the session over -----------------> Moved      (terminal)
//!   |   close() / detach() / last Client dropped -------------> Closed     (terminal)
//! ```
//!
//! Requests in flight when the connection is lost fail with `ConnectionLoss` (they may or may not
//! have been applied); requests made while `Disconnected` wait for the reconnect (or fail at
//! once, or after a deadline, as the client was configured). On a terminal state every pending
//! request, watcher and stream ends with the matching error (`SessionExpired`, `AuthFailed`,
//! `SessionMoved`, `Closed`).
//!
//! # Connection states for recipes
//!
//! [`ConnectionState`] is the view recipes act on, after Apache Curator's `ConnectionState`:
//!
//! | event | fires when | what a holder of a lock or leadership must do |
//! | --- | --- | --- |
//! | `Connected` | the first connection of the session is established | — |
//! | `Suspended` | an established connection is lost; the client is reconnecting and the session may still live on the server | assume the lock may be lost: stop acting on it until `Reconnected` |
//! | `Reconnected` | the client is connected again to the **same** session after `Suspended` | resume: nothing was lost |
//! | `Lost` | the session is over: expired (said by the server, or 4/3 of the session timeout without hearing from any server), closed, moved to another client, or refused authentication | everything tied to the session is gone: ephemeral nodes, watches, locks |
//! | `ReadOnly` | connected to a read-only server (only when read-only mode was allowed) | reads only |
//!
//! A stream from [`crate::Client::connection_states`] starts with the current condition
//! (`Connected`, `Suspended` or `Lost`) and ends after `Lost`.

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
    /// Another [`crate::Client`] took the session over with its credentials; this handle no
    /// longer owns it. Terminal.
    Moved,
    /// The client closed the session. Terminal.
    Closed,
}

impl SessionState {
    /// Whether the session can never be used again.
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Expired | SessionState::AuthFailed | SessionState::Moved | SessionState::Closed)
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
            SessionState::Moved => Some(Error::SessionMoved),
            SessionState::Closed => Some(Error::Closed),
            _ => None,
        }
    }
}

/// The connection condition recipes act on (see the [module docs](self) for exactly when each
/// fires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// The session's first connection is up.
    Connected,
    /// The connection is lost; the session may still be alive. Stop acting on locks and
    /// leadership until `Reconnected`.
    Suspended,
    /// Connected again to the same session after `Suspended`.
    Reconnected,
    /// The session is over (expired, closed, moved or refused); ends the stream.
    Lost,
    /// Connected to a read-only server.
    ReadOnly,
}

impl ConnectionState {
    /// The connection event a session state transition means, if any.
    pub(crate) fn of_transition(old: SessionState, new: SessionState) -> Option<ConnectionState> {
        use SessionState as S;
        Some(match (old, new) {
            (_, n) if n.is_terminal() => ConnectionState::Lost,
            (_, S::ConnectedReadOnly) => ConnectionState::ReadOnly,
            (S::Connecting, S::Connected) => ConnectionState::Connected,
            (_, S::Connected) => ConnectionState::Reconnected,
            (S::Connected | S::ConnectedReadOnly, S::Disconnected) => ConnectionState::Suspended,
            _ => return None,
        })
    }

    /// The event a new subscriber starts with, given the current session state.
    fn initial(now: SessionState) -> Option<ConnectionState> {
        match now {
            SessionState::Connecting => None,
            SessionState::Connected => Some(ConnectionState::Connected),
            SessionState::ConnectedReadOnly => Some(ConnectionState::ReadOnly),
            SessionState::Disconnected => Some(ConnectionState::Suspended),
            _ => Some(ConnectionState::Lost),
        }
    }
}

/// A subscriber of a [`StateCell`].
#[derive(Debug)]
enum Subscriber {
    Session(mpsc::UnboundedSender<SessionState>),
    Connection(mpsc::UnboundedSender<ConnectionState>),
}

/// Publishes session state: the current value, a `watch` for waiters, and a lossless stream per
/// subscriber.
#[derive(Debug)]
pub(crate) struct StateCell {
    inner: Mutex<Vec<Subscriber>>,
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
        let event = ConnectionState::of_transition(old, state);
        subs.retain(|sub| match sub {
            Subscriber::Session(tx) => tx.send(state).is_ok(),
            Subscriber::Connection(tx) => event.is_none_or(|e| tx.send(e).is_ok()),
        });
        if state.is_terminal() {
            subs.clear();
        }
    }

    /// The subscribers, without those whose stream was dropped: a dropped stream is otherwise
    /// only noticed at the next transition, and a long-lived session may see none for days
    /// while recipes subscribe for every wait.
    fn live_subscribers(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        let mut subs = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|sub| match sub {
            Subscriber::Session(tx) => !tx.is_closed(),
            Subscriber::Connection(tx) => !tx.is_closed(),
        });
        subs
    }

    pub(crate) fn subscribe(&self) -> StateStream {
        let mut subs = self.live_subscribers();
        let (tx, rx) = mpsc::unbounded_channel();
        let now = self.get();
        let _ = tx.send(now);
        if !now.is_terminal() {
            subs.push(Subscriber::Session(tx));
        }
        StateStream { rx }
    }

    pub(crate) fn subscribe_connection(&self) -> ConnectionStateStream {
        let mut subs = self.live_subscribers();
        let (tx, rx) = mpsc::unbounded_channel();
        let now = self.get();
        if let Some(first) = ConnectionState::initial(now) {
            let _ = tx.send(first);
        }
        if !now.is_terminal() {
            subs.push(Subscriber::Connection(tx));
        }
        ConnectionStateStream { rx }
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

/// The recipe-level connection events ([`ConnectionState`]), starting with the current
/// condition; ends after `Lost`. Created by [`crate::Client::connection_states`].
#[derive(Debug)]
pub struct ConnectionStateStream {
    rx: mpsc::UnboundedReceiver<ConnectionState>,
}

impl Stream for ConnectionStateStream {
    type Item = ConnectionState;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionState>> {
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

    #[tokio::test]
    async fn connection_events_follow_curator() {
        use ConnectionState as C;
        let cell = StateCell::new(SessionState::Connecting);
        let mut early = cell.subscribe_connection();
        cell.set(SessionState::Connected);
        let mut late = cell.subscribe_connection();
        cell.set(SessionState::Disconnected);
        cell.set(SessionState::Connected);
        cell.set(SessionState::Disconnected);
        let mut during = cell.subscribe_connection();
        cell.set(SessionState::Expired);
        let seen: Vec<_> = (&mut early).collect().await;
        assert_eq!(seen, vec![C::Connected, C::Suspended, C::Reconnected, C::Suspended, C::Lost]);
        let seen: Vec<_> = (&mut late).collect().await;
        assert_eq!(seen, vec![C::Connected, C::Suspended, C::Reconnected, C::Suspended, C::Lost]);
        let seen: Vec<_> = (&mut during).collect().await;
        assert_eq!(seen, vec![C::Suspended, C::Lost]);
        let seen: Vec<_> = cell.subscribe_connection().collect().await;
        assert_eq!(seen, vec![C::Lost]);
        assert_eq!(
            ConnectionState::of_transition(SessionState::Connecting, SessionState::ConnectedReadOnly),
            Some(C::ReadOnly)
        );
        assert_eq!(ConnectionState::of_transition(SessionState::Connected, SessionState::Moved), Some(C::Lost));
    }

    #[test]
    fn dropped_streams_do_not_pile_up() {
        let cell = StateCell::new(SessionState::Connected);
        for _ in 0..1000 {
            drop(cell.subscribe_connection());
            drop(cell.subscribe());
        }
        let kept = cell.subscribe_connection();
        assert_eq!(cell.inner.lock().unwrap().len(), 1, "only the live stream is kept");
        drop(kept);
    }
}
