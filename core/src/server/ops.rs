//! Request dispatch: one frame from an established connection in, replies and notifications
//! out, with ZooKeeper 3.8.0's reply-header rules.
//!
//! Reply zxids, as measured on 3.8.0: a write (successful or not, multi included, even empty)
//! carries its own new zxid; reads, pings, `sync`, `setWatches` and marshalling errors of reads
//! carry the last zxid; `auth` and `sasl` replies carry 0; `UNIMPLEMENTED` carries -1. A body
//! that does not decode is `MARSHALLINGERROR` and the connection stays open, but for a write
//! (create*, delete, setData, setACL, multi) it still consumes a zxid. Auth is answered in
//! order like everything else; an unknown scheme gets `AUTHFAILED` and the connection closes.
//! Reads and watch operations are here; the checked write path is in [`super::txn`].

use bytes::Bytes;

use super::acl;
use super::outbox::Ending;
use super::sessions::ConnId;
use super::state::{Flow, State};
use super::watches::{Mode, Table};
use super::Now;
use crate::proto::jute::write_buffer;
use crate::proto::{
    ClientInfo, Decode, ErrorCode, EventType, MultiResult, OpCode, Perms, Reader, ReplyHeader, Request, RequestHeader,
    Response, SetWatches,
};

/// ZooKeeper's four-letter name of an op, shown as `lop` by `cons`.
fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetData => "SETD",
        OpCode::GetAcl => "GETA",
        OpCode::SetAcl => "SETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::Sync => "SYNC",
        OpCode::Multi => "MULT",
        OpCode::MultiRead => "MLTR",
        OpCode::Reconfig => "RECO",
        OpCode::CheckWatches => "CHKW",
        OpCode::RemoveWatches => "REMW",
        OpCode::SetWatches => "SETW",
        OpCode::SetWatches2 => "STW2",
        OpCode::AddWatch => "ADDW",
        OpCode::GetEphemerals => "GETE",
        OpCode::GetAllChildrenNumber => "GETACN",
        OpCode::WhoAmI => "HOMI",
        OpCode::CloseSession => "CLOS",
        OpCode::CreateSession => "SESS",
        OpCode::Auth => "AUTH",
        OpCode::Sasl => "SASL",
        OpCode::Check => "CHEC",
        OpCode::Notification | OpCode::Error => "NA",
    }
}

/// Encoded size of a [`crate::proto::Stat`].
const STAT_SIZE: usize = 68;

/// Encoded sizes of reply bodies, added up before a reply is built.
mod reply_size {
    /// One multi result header: type, done flag, error.
    pub(super) const MULTI_HEADER: usize = 9;

    /// A jute buffer.
    pub(super) fn data(data: Option<&[u8]>) -> usize {
        4 + data.map_or(0, <[u8]>::len)
    }

    /// A jute vector of strings.
    pub(super) fn names<'a>(names: impl Iterator<Item = &'a str>) -> usize {
        4 + names.map(|n| 4 + n.len()).sum::<usize>()
    }
}

/// Reads a jute ustring keeping null apart from empty.
fn read_nullable_string(r: &mut Reader) -> Option<Option<String>> {
    r.read_opt_string().ok()
}

impl State {
    fn header(&self, xid: i32, err: ErrorCode) -> ReplyHeader {
        ReplyHeader { xid, zxid: self.zxid, err: err.as_i32() }
    }

    fn fail(&mut self, conn: ConnId, xid: i32, err: ErrorCode) {
        let h = self.header(xid, err);
        self.reply(conn, h, None);
    }

    fn ok(&mut self, conn: ConnId, xid: i32, body: &Response) {
        let h = self.header(xid, ErrorCode::Ok);
        self.reply(conn, h, Some(body));
    }

    /// Handles one request frame of an established connection.
    pub(crate) fn handle_frame(&mut self, now: Now, conn: ConnId, frame: Bytes) -> Flow {
        let mut r = Reader::new(frame);
        let Ok(header) = RequestHeader::decode(&mut r) else {
            self.end_because(conn, Ending::because("malformed request: shorter than its header"));
            return Flow::Abort;
        };
        let Some(c) = self.conns.get_mut(&conn) else { return Flow::Abort };
        let Some(session) = c.session else { return Flow::Abort };
        c.received += 1;
        c.last_cxid = header.xid;
        c.last_response = now.wall;
        self.received += 1;
        if self.sessions.get(session).is_none() {
            // The session ended while this connection was still open: drop it, as ZooKeeper drops
            // requests of a closed session and then the connection.
            self.end_because(conn, Ending::because("a request for a session that has ended"));
            return Flow::Abort;
        }
        let xid = header.xid;
        let op = OpCode::from_i32(header.op);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_op = op.map_or("NA", op_name);
        }
        match op {
            Some(OpCode::Auth) => return self.auth(conn, xid, r),
            Some(OpCode::Sasl) => {
                // No SASL server is configured: 3.8.0 answers OK with a null token.
                if r.read_buffer().is_err() {
                    self.end_because(conn, Ending::because("malformed sasl request"));
                    return Flow::Abort;
                }
                self.reply_with(conn, ReplyHeader { xid, zxid: 0, err: 0 }, |b| write_buffer(b, None));
                return Flow::Continue;
            }
            _ => {}
        }
        let tick = self.cfg.tick_ms();
        self.sessions.touch(session, now.ms, tick);
        let op = match op {
            None | Some(OpCode::Notification | OpCode::Check | OpCode::Error) => {
                self.end_because(conn, Ending::because(format!("unimplemented op code {}", header.op)));
                self.reply(conn, ReplyHeader { xid, zxid: -1, err: ErrorCode::Unimplemented.as_i32() }, None);
                return Flow::CloseAfterFlush;
            }
            Some(OpCode::DeleteContainer) => {
                // 3.8.0 reads the whole packet as the path, which never validates.
                let zxid = self.next_zxid();
                self.reply(conn, ReplyHeader { xid, zxid, err: ErrorCode::BadArguments.as_i32() }, None);
                return Flow::Continue;
            }
            Some(OpCode::CreateSession) => {
                let zxid = self.next_zxid();
                self.reply(conn, ReplyHeader { xid, zxid, err: ErrorCode::MarshallingError.as_i32() }, None);
                return Flow::Continue;
            }
            Some(op) => op,
        };
        let request = match Request::decode(op, &mut r) {
            Ok(req) => req,
            Err(e) => {
                tracing::debug!(conn, %op, error = %e, "undecodable request body");
                // Writes are deserialized in the write pipeline, after their zxid is taken.
                let zxid = if op.is_write() { self.next_zxid() } else { self.zxid };
                self.reply(conn, ReplyHeader { xid, zxid, err: ErrorCode::MarshallingError.as_i32() }, None);
                return Flow::Continue;
            }
        };
        // Faults::drop_reply_after_apply: apply, then close before the reply (pings excluded).
        let drop_reply = op != OpCode::Ping
            && self.sessions.get_mut(session).is_some_and(|s| match s.drop_reply {
                Some(want) if want.is_none_or(|w| w == op) => {
                    s.drop_reply = None;
                    true
                }
                _ => false,
            });
        if drop_reply {
            if let Some(c) = self.conns.get(&conn) {
                c.outbox.close_after_flush(Ending::because(format!("fault injection: {op} applied, reply dropped")));
            }
        }
        let flow = self.dispatch(now, conn, session, xid, request);
        if drop_reply {
            return Flow::CloseAfterFlush;
        }
        flow
    }

    fn dispatch(&mut self, now: Now, conn: ConnId, session: i64, xid: i32, request: Request) -> Flow {
        match request {
            Request::Ping => {
                let h = ReplyHeader { xid: crate::proto::xid::PING, zxid: self.zxid, err: 0 };
                self.reply(conn, h, None);
            }
            Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. } => self.write(now, conn, session, xid, request),
            Request::Multi(ops) => self.multi(now, conn, session, xid, ops),
            Request::Reconfig { .. } => {
                let zxid = self.next_zxid();
                self.reply(conn, ReplyHeader { xid, zxid, err: ErrorCode::ReconfigDisabled.as_i32() }, None);
            }
            Request::CloseSession => {
                let peer = self.conns.get(&conn).map(|c| c.peer.display.clone()).unwrap_or_default();
                tracing::info!(session = %format_args!("0x{session:x}"), peer, "session closed by the client");
                let zxid = self.close_session(session);
                self.reply(conn, ReplyHeader { xid, zxid, err: 0 }, None);
                self.close_conn(conn, true, Ending::Quietly("the client closed its session"));
                return Flow::CloseAfterFlush;
            }
            Request::Exists { path, watch } => self.exists(conn, xid, &path, watch),
            Request::GetData { path, watch } => self.get_data(conn, xid, &path, watch),
            Request::GetChildren { path, watch } => self.get_children(conn, xid, &path, watch, false),
            Request::GetChildren2 { path, watch } => self.get_children(conn, xid, &path, watch, true),
            Request::GetAcl { path } => self.get_acl(conn, xid, &path),
            Request::GetAllChildrenNumber { path } => match self.readable(conn, &path) {
                Ok(()) => {
                    let (n, visited) = self.tree.count_descendants(&path);
                    self.work += visited;
                    self.ok(conn, xid, &Response::Count(n));
                }
                Err(e) => self.fail(conn, xid, e),
            },
            Request::Sync { path } => self.ok(conn, xid, &Response::Path(path)),
            Request::GetEphemerals { prefix } => {
                let trimmed = prefix.trim_matches(|c: char| c <= ' ');
                let all = prefix.chars().all(char::is_whitespace) || trimmed == "/";
                let wanted = |p: &str| all || p.starts_with(&prefix);
                // Sized from the session's set as it is, before the listing is built.
                let listed = self.tree.ephemeral_paths(session).filter(|p| wanted(p));
                let size = reply_size::names(listed);
                self.work += self.tree.ephemerals_len(session) as u64;
                if self.fits(conn, xid, size) {
                    let list: Vec<String> =
                        self.tree.ephemerals_of(session).into_iter().filter(|p| wanted(p)).collect();
                    self.ok(conn, xid, &Response::Names(list));
                }
            }
            Request::WhoAmI => {
                // A user name is at most the id (digest ids lose their hash): sized before built.
                let (ids, size) = self.conns.get(&conn).map_or((0, 4), |c| {
                    (c.auth.len(), 4 + c.auth.iter().map(|id| 8 + id.scheme.len() + id.id.len()).sum::<usize>())
                });
                self.work += ids as u64;
                if self.fits(conn, xid, size) {
                    let infos: Vec<ClientInfo> = self.conns.get(&conn).map_or_else(Vec::new, |c| {
                        c.auth
                            .iter()
                            .map(|id| ClientInfo { auth_scheme: id.scheme.clone(), user: acl::user_name(id) })
                            .collect()
                    });
                    self.ok(conn, xid, &Response::WhoAmI(infos));
                }
            }
            Request::MultiRead(ops) => self.multi_read(conn, xid, ops),
            Request::CheckWatches { path, watcher_type } => self.watch_query(conn, xid, &path, watcher_type, false),
            Request::RemoveWatches { path, watcher_type } => self.watch_query(conn, xid, &path, watcher_type, true),
            Request::AddWatch { path, mode } => {
                let mode = match mode {
                    0 => Mode::Persistent,
                    1 => Mode::Recursive,
                    _ => {
                        self.fail(conn, xid, ErrorCode::MarshallingError);
                        return Flow::Continue;
                    }
                };
                // 3.8.0 registers the mode in both tables, the recursive one included.
                self.watches.add(Table::Data, &path, conn, mode);
                self.watches.add(Table::Child, &path, conn, mode);
                self.ok(conn, xid, &Response::Code(0));
            }
            Request::SetWatches(sw) | Request::SetWatches2(sw) => {
                self.set_watches(conn, &sw);
                let h = self.header(xid, ErrorCode::Ok);
                self.reply(conn, h, None);
            }
            // Handled before dispatch or refused by the decoder; answer rather than panic.
            Request::Auth(_) | Request::Sasl { .. } | Request::Check { .. } => {
                self.fail(conn, xid, ErrorCode::MarshallingError);
            }
        }
        Flow::Continue
    }

    /// `auth` (op 100): answered with zxid 0; failure closes the connection.
    fn auth(&mut self, conn: ConnId, xid: i32, mut r: Reader) -> Flow {
        let parsed = (|| {
            r.read_i32().ok()?;
            let scheme = read_nullable_string(&mut r)?;
            let auth = r.read_buffer().ok()?;
            Some((scheme, auth))
        })();
        let Some((scheme, auth)) = parsed else {
            self.end_because(conn, Ending::because("malformed auth packet"));
            return Flow::Abort;
        };
        let super_digest = self.cfg.super_digest.clone();
        let Some(c) = self.conns.get_mut(&conn) else { return Flow::Abort };
        if c.auth.len() >= acl::MAX_AUTH_IDS {
            self.reply(conn, ReplyHeader { xid, zxid: 0, err: ErrorCode::AuthFailed.as_i32() }, None);
            let why = format!("authentication refused: {} identities on one connection already", acl::MAX_AUTH_IDS);
            self.end_because(conn, Ending::because(why));
            return Flow::CloseAfterFlush;
        }
        let ip = c.peer.ip.clone();
        let ok = acl::authenticate(&mut c.auth, scheme.as_deref(), auth.as_deref(), &ip, super_digest.as_deref());
        let err = if ok { ErrorCode::Ok } else { ErrorCode::AuthFailed };
        self.reply(conn, ReplyHeader { xid, zxid: 0, err: err.as_i32() }, None);
        if ok {
            Flow::Continue
        } else {
            let scheme = scheme.as_deref().unwrap_or("null");
            self.end_because(conn, Ending::because(format!("authentication failed (scheme {scheme:?})")));
            Flow::CloseAfterFlush
        }
    }

    /// NONODE, then READ: the common check of getData, getChildren and getAllChildrenNumber.
    fn readable(&self, conn: ConnId, path: &str) -> Result<(), ErrorCode> {
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        let c = self.conns.get(&conn).ok_or(ErrorCode::SessionExpired)?;
        if acl::check(&node.acl, Perms::READ, &c.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// `exists`: NUL is BADARGUMENTS; the watch is left even on NONODE; 3.8.0 checks no ACL.
    fn exists(&mut self, conn: ConnId, xid: i32, path: &str, watch: bool) {
        if path.contains('\0') {
            return self.fail(conn, xid, ErrorCode::BadArguments);
        }
        if watch {
            self.watches.add(Table::Data, path, conn, Mode::Standard);
        }
        match self.tree.get(path).map(|n| n.stat()) {
            Some(stat) => self.ok(conn, xid, &Response::Stat(stat)),
            None => self.fail(conn, xid, ErrorCode::NoNode),
        }
    }

    fn get_data(&mut self, conn: ConnId, xid: i32, path: &str, watch: bool) {
        if let Err(e) = self.readable(conn, path) {
            return self.fail(conn, xid, e);
        }
        let size = self.tree.get(path).map_or(0, |n| reply_size::data(n.data.as_deref()) + STAT_SIZE);
        if !self.fits(conn, xid, size) {
            return;
        }
        if watch {
            self.watches.add(Table::Data, path, conn, Mode::Standard);
        }
        if let Some(node) = self.tree.get(path) {
            let body = Response::Data { data: node.data.clone(), stat: node.stat() };
            self.ok(conn, xid, &body);
        }
    }

    fn get_children(&mut self, conn: ConnId, xid: i32, path: &str, watch: bool, with_stat: bool) {
        if let Err(e) = self.readable(conn, path) {
            return self.fail(conn, xid, e);
        }
        let Some(node) = self.tree.get(path) else { return };
        let listed = node.num_children() as u64;
        let size = node.listing_size() + if with_stat { STAT_SIZE } else { 0 };
        self.work += listed;
        if !self.fits(conn, xid, size) {
            return;
        }
        if watch {
            self.watches.add(Table::Child, path, conn, Mode::Standard);
        }
        let Some(node) = self.tree.get(path) else { return };
        let children = node.child_names();
        let body =
            if with_stat { Response::Children { children, stat: node.stat() } } else { Response::Names(children) };
        self.ok(conn, xid, &body);
    }

    /// `getACL`: NONODE, then READ or ADMIN; digest ids are redacted without ADMIN.
    fn get_acl(&mut self, conn: ConnId, xid: i32, path: &str) {
        let Some(node) = self.tree.get(path) else { return self.fail(conn, xid, ErrorCode::NoNode) };
        let Some(c) = self.conns.get(&conn) else { return };
        if !acl::check(&node.acl, Perms::READ | Perms::ADMIN, &c.auth) {
            return self.fail(conn, xid, ErrorCode::NoAuth);
        }
        let shown =
            if acl::check(&node.acl, Perms::ADMIN, &c.auth) { node.acl.to_vec() } else { acl::redact(&node.acl) };
        let body = Response::Acl { acl: shown, stat: node.stat() };
        self.ok(conn, xid, &body);
    }

    /// `multiRead`: each op on its own, errors in place, no watches. The reply's size is added
    /// up before each result is built, so a request that names a large node many times is
    /// refused (MARSHALLINGERROR) having built no more than the reply limit.
    fn multi_read(&mut self, conn: ConnId, xid: i32, ops: Vec<Request>) {
        let mut results = Vec::with_capacity(ops.len());
        // The end marker (type, done, err).
        let mut size = reply_size::MULTI_HEADER;
        for op in ops {
            self.work += 1;
            size += reply_size::MULTI_HEADER;
            let (path, data) = match &op {
                Request::GetData { path, .. } => (path, true),
                Request::GetChildren { path, .. } => (path, false),
                _ => {
                    size += 4;
                    results.push(MultiResult::error(ErrorCode::MarshallingError));
                    continue;
                }
            };
            let node = match self.readable(conn, path) {
                Ok(()) => self.tree.get(path),
                Err(e) => {
                    size += 4;
                    results.push(MultiResult::error(e));
                    continue;
                }
            };
            let Some(node) = node else { continue };
            if data {
                size += reply_size::data(node.data.as_deref()) + STAT_SIZE;
            } else {
                self.work += node.num_children() as u64;
                size += node.listing_size();
            }
            if size > self.cfg.max_reply {
                self.fits(conn, xid, size);
                return;
            }
            results.push(if data {
                MultiResult::GetData { data: node.data.clone(), stat: node.stat() }
            } else {
                MultiResult::GetChildren { children: node.child_names() }
            });
        }
        self.ok(conn, xid, &Response::Multi(results));
    }

    /// Whether a reply body of `size` bytes is within the reply limit; if not, answers
    /// MARSHALLINGERROR instead (the server cannot marshal a reply that large) and logs it at
    /// `debug` (a client can ask for such replies as fast as it likes: not worth an `info` line
    /// each).
    fn fits(&mut self, conn: ConnId, xid: i32, size: usize) -> bool {
        if size <= self.cfg.max_reply {
            return true;
        }
        let peer = self.conns.get(&conn).map(|c| c.peer.display.clone()).unwrap_or_default();
        tracing::debug!(
            peer,
            size,
            limit = self.cfg.max_reply,
            "reply over the reply limit refused (MARSHALLINGERROR)"
        );
        self.fail(conn, xid, ErrorCode::MarshallingError);
        false
    }

    /// `checkWatches` (17) and `removeWatches` (18). 3.8.0 knows only the types Children (1),
    /// Data (2) and Any (3); the persistent types are a MARSHALLINGERROR there.
    fn watch_query(&mut self, conn: ConnId, xid: i32, path: &str, watcher_type: i32, remove: bool) {
        let tables: &[Table] = match watcher_type {
            1 => &[Table::Child],
            2 => &[Table::Data],
            3 => &[Table::Child, Table::Data],
            _ => return self.fail(conn, xid, ErrorCode::MarshallingError),
        };
        let mut found = false;
        for &t in tables {
            found |= if remove { self.watches.remove(t, path, conn) } else { self.watches.contains(t, path, conn) };
        }
        if found {
            let h = self.header(xid, ErrorCode::Ok);
            self.reply(conn, h, None);
        } else {
            self.fail(conn, xid, ErrorCode::NoWatcher);
        }
    }

    /// `setWatches`/`setWatches2` replay (`DataTree.setWatches`): catch-up events (no ACL
    /// filter) go out before the reply; everything else is re-registered.
    fn set_watches(&mut self, conn: ConnId, sw: &SetWatches) {
        let rel = sw.relative_zxid;
        for path in &sw.data_watches {
            match self.tree.get(path).map(|n| n.mzxid) {
                None => self.push_event(conn, EventType::NodeDeleted, path),
                Some(m) if m > rel => self.push_event(conn, EventType::NodeDataChanged, path),
                Some(_) => self.watches.add(Table::Data, path, conn, Mode::Standard),
            }
        }
        for path in &sw.exist_watches {
            if self.tree.get(path).is_some() {
                self.push_event(conn, EventType::NodeCreated, path);
            } else {
                self.watches.add(Table::Data, path, conn, Mode::Standard);
            }
        }
        for path in &sw.child_watches {
            match self.tree.get(path).map(|n| n.pzxid) {
                None => self.push_event(conn, EventType::NodeDeleted, path),
                Some(p) if p > rel => self.push_event(conn, EventType::NodeChildrenChanged, path),
                Some(_) => self.watches.add(Table::Child, path, conn, Mode::Standard),
            }
        }
        for (paths, mode) in
            [(&sw.persistent_watches, Mode::Persistent), (&sw.persistent_recursive_watches, Mode::Recursive)]
        {
            for path in paths {
                self.watches.add(Table::Data, path, conn, mode);
                self.watches.add(Table::Child, path, conn, mode);
            }
        }
    }
}
