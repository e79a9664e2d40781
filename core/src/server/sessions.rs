//! The session table: ids and passwords, negotiated timeouts, the tick-bucketed expiry times of
//! ZooKeeper's `ExpiryQueue`, and which connection a session is attached to.
//!
//! Times are milliseconds on the server's `tokio::time` clock since start, so a test that pauses
//! tokio's clock controls expiry exactly. A session expires at the first tick boundary after
//! `last touch + timeout` (`ExpiryQueue.roundToNextInterval`), which is how a real server
//! behaves: between `timeout` and `timeout + tickTime` after the last request.

use std::collections::HashMap;

use crate::proto::{OpCode, PASSWORD_LEN};

/// A connection's id inside the server.
pub(crate) type ConnId = u64;

/// One live session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The session id.
    pub id: i64,
    /// The 16-byte password handed out at creation.
    pub password: [u8; PASSWORD_LEN],
    /// The negotiated timeout, ms.
    pub timeout: i32,
    /// Server-clock ms of the session's last request (or of its creation or resume).
    pub touched_at: i64,
    /// Server-clock ms at which the session expires unless touched.
    pub expires_at: i64,
    /// The connection currently attached, if any.
    pub conn: Option<ConnId>,
    /// Armed `Faults::drop_reply_after_apply`: `Some(None)` matches any op.
    pub drop_reply: Option<Option<OpCode>>,
}

/// `negotiated = max(min, min(max, requested))`.
pub(crate) fn negotiate(requested: i32, min: i32, max: i32) -> i32 {
    requested.min(max).max(min)
}

/// `ExpiryQueue.roundToNextInterval`: the first multiple of `tick` strictly after `t`.
pub(crate) fn round_to_next_tick(t: i64, tick: i64) -> i64 {
    let tick = tick.max(1);
    (t / tick + 1) * tick
}

/// All live sessions.
#[derive(Debug)]
pub(crate) struct Sessions {
    map: HashMap<i64, Session>,
    next_id: i64,
}

impl Sessions {
    /// An empty table whose ids are laid out like `SessionTrackerImpl.initializeNextSessionId`
    /// for server id 1: `1` in the top byte, a millisecond clock in the next 40 bits (the low
    /// 40 bits of the wall clock here, so restarted servers do not reuse ids), +1 per session.
    pub(crate) fn new(wall_ms: i64) -> Sessions {
        let next_id = ((wall_ms & 0xff_ffff_ffff) << 16) | (1 << 56);
        Sessions { map: HashMap::new(), next_id }
    }

    /// Creates a session with a fresh id and `password`, expiring `timeout` after `now`.
    pub(crate) fn create(&mut self, password: [u8; PASSWORD_LEN], timeout: i32, now: i64, tick: i64) -> i64 {
        let mut id = self.next_id;
        while id == 0 || id == i64::MIN || self.map.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(1);
        let expires_at = round_to_next_tick(now + i64::from(timeout), tick);
        self.map
            .insert(id, Session { id, password, timeout, touched_at: now, expires_at, conn: None, drop_reply: None });
        id
    }

    /// The session, if live.
    pub(crate) fn get(&self, id: i64) -> Option<&Session> {
        self.map.get(&id)
    }

    /// The session, if live.
    pub(crate) fn get_mut(&mut self, id: i64) -> Option<&mut Session> {
        self.map.get_mut(&id)
    }

    /// Pushes the session's expiry to `now + timeout`, rounded up to a tick.
    pub(crate) fn touch(&mut self, id: i64, now: i64, tick: i64) {
        if let Some(s) = self.map.get_mut(&id) {
            s.touched_at = now;
            s.expires_at = round_to_next_tick(now + i64::from(s.timeout), tick);
        }
    }

    /// Removes a session.
    pub(crate) fn remove(&mut self, id: i64) -> Option<Session> {
        self.map.remove(&id)
    }

    /// Sessions whose expiry time has come, oldest deadline first.
    pub(crate) fn due(&self, now: i64) -> Vec<i64> {
        let mut due: Vec<(i64, i64)> =
            self.map.values().filter(|s| s.expires_at <= now).map(|s| (s.expires_at, s.id)).collect();
        due.sort_unstable();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Live session ids, ascending.
    pub(crate) fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.map.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Number of live sessions.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every session (for `dump`).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Session> + '_ {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_clamps_like_zookeeper() {
        // Measured on 3.8.0 with tickTime 1000 (bounds 2000..20000).
        for (req, got) in [(100, 2000), (4000, 4000), (60000, 20000), (0, 2000), (-5, 2000)] {
            assert_eq!(negotiate(req, 2000, 20000), got);
        }
    }

    #[test]
    fn expiry_is_bucketed_by_tick() {
        assert_eq!(round_to_next_tick(0, 1000), 1000);
        assert_eq!(round_to_next_tick(999, 1000), 1000);
        assert_eq!(round_to_next_tick(1000, 1000), 2000);
        let mut s = Sessions::new(1_700_000_000_000);
        let id = s.create([1; 16], 4000, 500, 1000);
        assert_eq!(id >> 56, 1, "server id 1 in the top byte");
        assert_eq!(s.get(id).unwrap().expires_at, 5000);
        assert!(s.due(4999).is_empty());
        assert_eq!(s.due(5000), vec![id]);
        s.touch(id, 3000, 1000);
        assert!(s.due(5000).is_empty());
        let id2 = s.create([2; 16], 4000, 0, 1000);
        assert_eq!(id2, id + 1);
    }
}
