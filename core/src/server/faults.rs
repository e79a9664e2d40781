//! Fault injection for tests: expire a session, cut or silence its connection, delay what the
//! server sends, lose a reply after the request was applied, and move a parent's sequence
//! counter. Every hook acts under the server's lock, so it lands between two requests, never in
//! the middle of one.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Shared;
use crate::proto::OpCode;

/// Fault injection into a running embedded server, for tests. Obtained from
/// [`ServerHandle::faults`](super::ServerHandle::faults); cheap to clone. After the server has
/// shut down every hook does nothing (and reports `false`).
#[derive(Debug, Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// Expires the session now, exactly as its timeout would: a closeSession transaction
    /// (consuming a zxid) deletes its ephemeral nodes, firing their watches, and its connection
    /// is closed. Returns false if no such session is live.
    pub fn expire_session(&self, session_id: i64) -> bool {
        !self.shared.cancel.is_cancelled() && self.shared.lock_state().expire_session(session_id, self.shared.now())
    }

    /// Abruptly closes the session's current connection (and any connection of it that
    /// [`blackhole`](Self::blackhole) left behind). Replies not yet written are lost. The
    /// session stays alive until it expires, so the client can reconnect and resume it. Returns
    /// false if there was nothing to close.
    pub fn cut_connection(&self, session_id: i64) -> bool {
        !self.shared.cancel.is_cancelled() && self.shared.lock_state().cut_session_connections(session_id)
    }

    /// Holds every byte the server sends (replies and notifications) to the session's current
    /// connection, or to every current connection when `session_id` is `None`, for `d`.
    /// Requests are still read and applied in order meanwhile (up to the read-pause threshold of
    /// queued replies); afterwards the held bytes go out in order.
    pub fn stall(&self, session_id: Option<i64>, d: Duration) {
        let now = Instant::now();
        let until = now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let st = self.shared.lock_state();
        match session_id {
            Some(id) => {
                if let Some(c) = st.session_conn(id) {
                    c.outbox.stall(until);
                }
            }
            None => {
                for c in st.conns.values() {
                    c.outbox.stall(until);
                }
            }
        }
    }

    /// Turns the session's current connection into a silent network: the server stops reading
    /// from it and writing to it but does not close it, so the client sees neither data nor EOF.
    /// Server-side the connection counts as gone (its watches are dropped when the session
    /// resumes elsewhere or expires), but the socket stays open until
    /// [`cut_connection`](Self::cut_connection) or shutdown. Returns false if the session has
    /// no connection.
    pub fn blackhole(&self, session_id: i64) -> bool {
        let st = self.shared.lock_state();
        match st.session_conn(session_id) {
            Some(c) => {
                c.outbox.blackhole();
                true
            }
            None => false,
        }
    }

    /// Arms a lost reply: the next request of the session (of type `op` when `Some`; pings and
    /// auth packets never match) is applied, then its connection is closed after the replies already queued but
    /// before this request's reply (and before any notification it triggers on that same
    /// connection). The client sees a connection loss for a request that took effect.
    pub fn drop_reply_after_apply(&self, session_id: i64, op: Option<OpCode>) {
        if let Some(s) = self.shared.lock_state().sessions.get_mut(session_id) {
            s.drop_reply = Some(op);
        }
    }

    /// Sets the persisted child counter of the node at `path`: the next sequential child gets
    /// this number as its suffix. Useful for the edge around `i32::MAX` (on ZooKeeper 3.8 the
    /// counter then sticks at 2147483647: every later sequential child gets that suffix, so a
    /// second create of the same name fails with NODEEXISTS, and differently named children
    /// share the suffix). Returns false if the node does not exist.
    pub fn set_cversion(&self, path: &str, cversion: i32) -> bool {
        self.shared.lock_state().tree.set_cversion(path, cversion)
    }
}
