//! The server's whole mutable state behind one lock: data tree, sessions, watch tables,
//! connections and the last zxid. Everything that changes it runs with the lock held and with
//! no `.await`, which makes the server linearizable by construction; replies and notifications
//! are encoded into connection outboxes before the lock is released, so each connection sees a
//! transaction's notifications before any reply that follows the change.
//!
//! This module holds the connection registry, the handshake (new session, resume, the
//! "expired" answer, refusing a client that has seen a newer zxid), session close and expiry,
//! the container/TTL reaper pass, and watch-event delivery (with the READ check that 3.8.0 as
//! Debian ships it applies, CVE-2024-23944). Request dispatch is in [`super::ops`] and the write
//! path in [`super::txn`].

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::acl::{self, AuthIds};
use super::outbox::{Budget, Ending, Outbox};
use super::peer::Peer;
use super::sessions::{negotiate, ConnId, Sessions};
use super::tree::{self, DataTree, NewNode};
use super::watches::{Table, Watches};
use super::{Config, Now};
use crate::proto::frame::{finish_frame, start_frame, write_record_frame};
use crate::proto::jute::write_string;
use crate::proto::{
    Acl, ConnectRequest, ConnectResponse, Encode, EventType, KeeperState, Perms, ReplyHeader, Stat, PASSWORD_LEN,
};

/// What the connection must do after the server handled its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep going.
    Continue,
    /// Send what is queued, then close (replies after closeSession, AUTHFAILED, ...).
    CloseAfterFlush,
    /// Close now without reading further.
    Abort,
}

/// A connection as the state sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub outbox: Arc<Outbox>,
    pub cancel: CancellationToken,
    pub session: Option<i64>,
    pub auth: AuthIds,
    pub peer: Peer,
    /// Wall ms when the connection was accepted.
    pub established: i64,
    /// Requests received (`recved` in `cons`; the ConnectRequest counts).
    pub received: u64,
    /// ZooKeeper's four-letter name of the last op (`lop`).
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    /// Wall ms of the last reply.
    pub last_response: i64,
    /// Frames sent before the last `crst`.
    pub sent_base: u64,
}

/// Everything behind the server's lock.
#[derive(Debug)]
pub(crate) struct State {
    pub cfg: Arc<Config>,
    pub tree: DataTree,
    pub sessions: Sessions,
    pub watches: Watches,
    pub conns: HashMap<ConnId, Conn>,
    /// The last zxid handed out.
    pub zxid: i64,
    /// Requests received by the server (`Received` in `srvr`).
    pub received: u64,
    /// Frames sent to connections that have ended.
    sent_closed: u64,
    /// Frames sent before the last `srst`.
    sent_reset_base: u64,
    /// Black-holed connections detached from the server, by session: they stay silent and open
    /// until `Faults::cut_connection` or shutdown.
    pub zombies: HashMap<i64, Vec<CancellationToken>>,
    next_conn: ConnId,
    /// The shared `world:anyone` ALL list.
    pub open_acl: Arc<[Acl]>,
    /// Scratch buffer for watch triggers.
    fired: Vec<ConnId>,
    /// Work done so far, in units of a request, a node visited, a name listed or a node
    /// deleted: readers compare it before and after to bound one lock hold.
    pub work: u64,
}

/// The path a create or delete reports `NodeChildrenChanged` on (`""` is the root).
pub(crate) fn parent_trigger_path(path: &str) -> &str {
    match tree::split_parent(path) {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

impl State {
    /// A fresh server's state.
    pub(crate) fn new(cfg: Arc<Config>, wall_ms: i64) -> State {
        State {
            cfg,
            tree: DataTree::new(),
            sessions: Sessions::new(wall_ms),
            watches: Watches::default(),
            conns: HashMap::new(),
            zxid: 0,
            received: 0,
            sent_closed: 0,
            sent_reset_base: 0,
            zombies: HashMap::new(),
            next_conn: 1,
            open_acl: tree::open_acl(),
            fired: Vec::new(),
            work: 0,
        }
    }

    fn sent_raw(&self) -> u64 {
        self.sent_closed + self.conns.values().map(|c| c.outbox.frames()).sum::<u64>()
    }

    /// Frames sent since start or the last `srst` (`Sent` in `srvr`).
    pub(crate) fn sent_total(&self) -> u64 {
        self.sent_raw().saturating_sub(self.sent_reset_base)
    }

    /// `srst`: resets the server's packet counters.
    pub(crate) fn reset_server_stats(&mut self) {
        self.received = 0;
        self.sent_reset_base = self.sent_raw();
    }

    /// Hands out the next zxid.
    pub(crate) fn next_zxid(&mut self) -> i64 {
        self.zxid += 1;
        self.zxid
    }

    /// Registers a new connection.
    pub(crate) fn register_conn(
        &mut self,
        outbox: Arc<Outbox>,
        cancel: CancellationToken,
        peer: &Peer,
        now: Now,
    ) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                outbox,
                cancel,
                session: None,
                auth: AuthIds::for_ip(&peer.ip),
                peer: peer.clone(),
                established: now.wall,
                received: 0,
                last_op: "NA",
                last_cxid: -1,
                last_zxid: -1,
                last_response: now.wall,
                sent_base: 0,
            },
        );
        id
    }

    /// Forgets a connection that has ended: its watches go, its session (if any) lives on,
    /// unattached, until it expires or is resumed.
    pub(crate) fn remove_conn(&mut self, id: ConnId) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        self.sent_closed += conn.outbox.frames();
        self.watches.remove_conn(id);
        if let Some(s) = conn.session.and_then(|sid| self.sessions.get_mut(sid)) {
            if s.conn == Some(id) {
                s.conn = None;
            }
        }
        Some(conn)
    }

    /// Closes a connection from the server side because of `ending`: at once (`flush == false`)
    /// or after writing what is queued. A black-holed connection is detached but left silent and
    /// open.
    pub(crate) fn close_conn(&mut self, id: ConnId, flush: bool, ending: Ending) {
        let Some(conn) = self.remove_conn(id) else { return };
        if conn.outbox.is_blackholed() {
            conn.outbox.end_because(ending);
            self.zombies.entry(conn.session.unwrap_or(0)).or_default().push(conn.cancel);
        } else if flush {
            conn.outbox.close_after_flush(ending);
        } else {
            conn.outbox.abort(ending);
        }
    }

    /// Records why a connection that the caller is about to end (with a [`Flow`]) ends.
    pub(crate) fn end_because(&self, conn: ConnId, ending: Ending) {
        if let Some(c) = self.conns.get(&conn) {
            c.outbox.end_because(ending);
        }
    }

    /// Queues a reply frame on `conn`.
    pub(crate) fn reply(&mut self, conn: ConnId, header: ReplyHeader, body: Option<&crate::proto::Response>) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = header.zxid;
            c.outbox.push(1, |b| {
                crate::proto::frame::write_reply_frame(b, header, body);
            });
        }
    }

    /// Queues a reply frame whose body is written by `body`.
    pub(crate) fn reply_with(&mut self, conn: ConnId, header: ReplyHeader, body: impl FnOnce(&mut bytes::BytesMut)) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = header.zxid;
            c.outbox.push(1, |b| {
                let start = start_frame(b);
                header.encode(b);
                body(b);
                finish_frame(b, start);
            });
        }
    }

    /// Queues a notification on `conn`. ZooKeeper 3.8.0 sends every notification with zxid -1.
    pub(crate) fn push_event(&self, conn: ConnId, event: EventType, path: &str) {
        if let Some(c) = self.conns.get(&conn) {
            c.outbox.push(1, |b| {
                let start = start_frame(b);
                ReplyHeader { xid: crate::proto::xid::NOTIFICATION, zxid: -1, err: 0 }.encode(b);
                b.put_i32(event.as_i32());
                b.put_i32(KeeperState::SyncConnected.as_i32());
                write_string(b, path);
                finish_frame(b, start);
            });
        }
    }

    /// Triggers `table` for `event` on `path` and delivers the notification to every matched
    /// connection that may READ a node with `acl`. Returns the matched connections in
    /// `self.fired` (suppressed ones included), for a following trigger's `suppress`.
    pub(crate) fn notify(&mut self, table: Table, path: &str, event: EventType, acl: &[Acl], suppress: &[ConnId]) {
        let targets = self.watches.trigger(table, path, event, suppress, &mut self.fired);
        for c in targets {
            let allowed = self.conns.get(&c).is_some_and(|conn| acl::check(acl, Perms::READ, &conn.auth));
            if allowed {
                self.push_event(c, event, path);
            }
        }
    }

    /// Fires NodeChildrenChanged on the parent of `path` (filtered by the parent's ACL).
    fn notify_parent(&mut self, path: &str) {
        let parent = parent_trigger_path(path);
        let parent_acl = self.acl_of(parent);
        self.notify(Table::Child, parent, EventType::NodeChildrenChanged, &parent_acl, &[]);
    }

    /// A node's ACL (the open ACL for a node that is gone).
    fn acl_of(&self, path: &str) -> Arc<[Acl]> {
        self.tree.get(path).map(|n| n.acl.clone()).unwrap_or_else(|| self.open_acl.clone())
    }

    /// Creates a checked node and fires NodeCreated and the parent's NodeChildrenChanged.
    pub(crate) fn apply_create(&mut self, node: &NewNode, zxid: i64, time: i64) -> Stat {
        let stat = self.tree.create(node, zxid, time);
        self.notify(Table::Data, &node.path, EventType::NodeCreated, &node.acl, &[]);
        self.notify_parent(&node.path);
        stat
    }

    /// Deletes a node and fires NodeDeleted (data table, then child table without the
    /// connections already told) and the parent's NodeChildrenChanged.
    pub(crate) fn apply_delete(&mut self, path: &str, zxid: i64) {
        let Some(node) = self.tree.delete(path, zxid) else { return };
        self.notify(Table::Data, path, EventType::NodeDeleted, &node.acl, &[]);
        let told = std::mem::take(&mut self.fired);
        self.notify(Table::Child, path, EventType::NodeDeleted, &node.acl, &told);
        self.notify_parent(path);
    }

    /// Replaces a node's data and fires NodeDataChanged.
    pub(crate) fn apply_set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Stat {
        let data = data.map(|d| Bytes::copy_from_slice(&d));
        let stat = self.tree.set_data(path, data, version, zxid, time);
        let acl = self.acl_of(path);
        self.notify(Table::Data, path, EventType::NodeDataChanged, &acl, &[]);
        stat
    }

    /// The handshake (`processConnectRequest`): on success the session and its negotiated
    /// timeout, otherwise how to close. A client that has seen a newer zxid is dropped without
    /// an answer; an unknown, expired or wrong-password resume gets the "expired" answer
    /// (timeout 0) and is closed. Unlike ZooKeeper 3.8.0, a wrong password does not disconnect
    /// the session's current connection. A new session is logged at `info`.
    pub(crate) fn connect(&mut self, now: Now, conn: ConnId, req: &ConnectRequest) -> Result<(i64, i32), Flow> {
        let Some(c) = self.conns.get_mut(&conn) else { return Err(Flow::Abort) };
        c.received += 1;
        if req.last_zxid_seen > self.zxid {
            c.outbox.end_because(Ending::because(format!(
                "the client has seen zxid 0x{:x}, newer than the server's 0x{:x}",
                req.last_zxid_seen, self.zxid
            )));
            return Err(Flow::Abort);
        }
        let timeout = negotiate(req.timeout, self.cfg.min_session_ms(), self.cfg.max_session_ms());
        let read_only = req.read_only.map(|_| false);
        let tick = self.cfg.tick_ms();
        let (session_id, passwd) = if req.session_id == 0 {
            let passwd = *uuid::Uuid::new_v4().as_bytes();
            self.next_zxid();
            let id = self.sessions.create(passwd, timeout, now.ms, tick);
            (id, passwd)
        } else {
            let valid = self.sessions.get(req.session_id).filter(|s| s.password[..] == req.passwd[..]);
            let Some(s) = valid else {
                c.outbox.end_because(Ending::because(format!(
                    "session 0x{:x} is unknown, expired or has another password",
                    req.session_id
                )));
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout: 0,
                    session_id: 0,
                    passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
                    read_only,
                };
                c.outbox.push(1, |b| {
                    write_record_frame(b, &resp);
                });
                return Err(Flow::CloseAfterFlush);
            };
            let (id, passwd, old) = (s.id, s.password, s.conn);
            if let Some(old) = old.filter(|o| *o != conn) {
                self.close_conn(old, false, Ending::because("its session moved to a new connection"));
            }
            if let Some(s) = self.sessions.get_mut(id) {
                s.timeout = timeout;
            }
            self.sessions.touch(id, now.ms, tick);
            (id, passwd)
        };
        if let Some(s) = self.sessions.get_mut(session_id) {
            s.conn = Some(conn);
        }
        let Some(c) = self.conns.get_mut(&conn) else { return Err(Flow::Abort) };
        c.session = Some(session_id);
        c.last_op = "SESS";
        c.last_zxid = self.zxid;
        c.last_response = now.wall;
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id,
            passwd: Bytes::copy_from_slice(&passwd),
            read_only,
        };
        c.outbox.push(1, |b| {
            write_record_frame(b, &resp);
        });
        let session = format_args!("0x{session_id:x}");
        if req.session_id == 0 {
            info!(session = %session, timeout_ms = timeout, peer = %c.peer.display, "session opened");
        } else {
            debug!(session = %session, timeout_ms = timeout, peer = %c.peer.display, "session resumed");
        }
        Ok((session_id, timeout))
    }

    /// Ends a session (closeSession from the client, or expiry): one zxid, every ephemeral of
    /// the session deleted with its watch events. Returns the closeSession zxid.
    pub(crate) fn close_session(&mut self, id: i64) -> i64 {
        let zxid = self.next_zxid();
        for path in self.tree.ephemerals_of(id) {
            self.work += 1;
            self.apply_delete(&path, zxid);
        }
        self.tree.drop_session(id);
        self.sessions.remove(id);
        zxid
    }

    /// Expires a session at `now`, as its timeout would: close it, then drop its connection.
    /// Logged at `info` with how long the session went without a request.
    pub(crate) fn expire_session(&mut self, id: i64, now: Now) -> bool {
        let Some(s) = self.sessions.get(id) else { return false };
        let (conn, timeout, idle) = (s.conn, s.timeout, now.ms.saturating_sub(s.touched_at));
        info!(session = %format_args!("0x{id:x}"), timeout_ms = timeout, idle_ms = idle, "session expired");
        self.close_session(id);
        if let Some(c) = conn {
            self.close_conn(c, false, Ending::because("its session expired"));
        }
        true
    }

    /// Expires every session whose deadline has passed, except one whose connection received
    /// bytes within its timeout or has requests waiting for the lock: a client that keeps
    /// talking must not lose its session because others keep the server busy. That session's
    /// deadline counts from when it was last heard from (now, if its requests are waiting).
    pub(crate) fn expire_due(&mut self, now: Now) {
        let tick = self.cfg.tick_ms();
        for id in self.sessions.due(now.ms) {
            let timeout = self.sessions.get(id).map_or(0, |s| i64::from(s.timeout));
            let heard = self.session_conn(id).map_or(i64::MIN, |c| {
                if c.outbox.is_waiting() {
                    now.ms
                } else {
                    c.outbox.heard_at()
                }
            });
            if now.ms.saturating_sub(heard) < timeout {
                self.sessions.touch(id, heard, tick);
                continue;
            }
            self.expire_session(id, now);
        }
    }

    /// Closes connections, longest queue first, until the bytes queued on all connections are
    /// back under the server's cap. The connections that do not read are the ones with long
    /// queues; one that reads its replies keeps a short queue and is not chosen.
    pub(crate) fn shed(&mut self, budget: &Budget) {
        // A closed connection's bytes leave the count when its writer stops, a little later:
        // count them out here so that no more connections are closed than needed.
        let mut excess = budget.excess();
        while excess > 0 {
            let longest = self.conns.iter().map(|(id, c)| (c.outbox.queued(), *id)).max();
            let Some((queued, id)) = longest.filter(|(q, _)| *q > 0) else { return };
            let why = format!(
                "all connections together have {} bytes queued, over the server's cap; this one had the most ({queued})",
                budget.queued()
            );
            self.close_conn(id, false, Ending::because(why));
            excess = excess.saturating_sub(queued);
        }
    }

    /// One pass of the container/TTL reaper (`ContainerManager`): each candidate is deleted
    /// by its own deleteContainer transaction, which consumes a zxid even if the node gained a
    /// child or vanished meanwhile.
    pub(crate) fn reap(&mut self, now: Now) -> usize {
        let mut deleted = 0;
        for path in self.tree.reap_candidates(now.wall) {
            self.work += 1;
            let zxid = self.next_zxid();
            let deletable = self
                .tree
                .get(&path)
                .is_some_and(|n| n.num_children() == 0 && !matches!(n.kind(), tree::Owner::Session(_)));
            if deletable {
                self.apply_delete(&path, zxid);
                deleted += 1;
            }
        }
        deleted
    }

    /// Cuts the session's current connection and any black-holed connection it left behind.
    pub(crate) fn cut_session_connections(&mut self, id: i64) -> bool {
        let mut cut = false;
        if let Some(conn) = self.sessions.get(id).and_then(|s| s.conn) {
            if let Some(c) = self.remove_conn(conn) {
                c.outbox.abort(Ending::because("cut by fault injection"));
                cut = true;
            }
        }
        for token in self.zombies.remove(&id).unwrap_or_default() {
            token.cancel();
            cut = true;
        }
        cut
    }

    /// The connection attached to a session.
    pub(crate) fn session_conn(&self, id: i64) -> Option<&Conn> {
        self.sessions.get(id).and_then(|s| s.conn).and_then(|c| self.conns.get(&c))
    }
}
