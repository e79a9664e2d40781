//! The session task itself: serving one connection, matching replies, handling commands,
//! reconnecting, and ending the session.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connect::{self, AttemptError, BoxTransport, Connection};
use super::watches::Registry;
use super::{
    fail_command, forget_session, Command, Effect, Outgoing, RawReply, Responder, SessionConfig, SessionCredentials,
    SessionState, Shared, WatchKind,
};
use crate::error::{Error, Result};
use crate::proto::{
    frame, xid, AuthPacket, ConnectRequest, Decode, ErrorCode, EventType, OpCode, Reader, ReplyHeader, Request,
    WatcherEvent,
};

/// How much path text one `SetWatches` request carries at most (the Java client's figure).
const SET_WATCHES_BATCH: usize = 128 * 1024;
/// The Java client pings at least this often, whatever the session timeout.
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long `close()` waits for the server to confirm `closeSession`.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// Commands handled before the next socket write, so that a burst of requests goes out in one
/// write without starving the reader.
const COMMAND_BATCH: usize = 512;

/// Why serving a connection stopped.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The connection is gone; the session may live on.
    Lost(String),
    /// The session is over.
    Terminal(SessionState),
}

/// How long connection attempts may go on.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// Until then, and then give up (the first connection).
    GiveUpAt(Instant),
    /// Until then, and then the session is known to be expired (client-side expiry).
    ExpireAt(Instant),
    /// Until a server answers (or the session ends otherwise).
    Forever,
}

/// A request written to the current connection, awaiting its reply.
#[derive(Debug)]
struct InFlight {
    xid: i32,
    op: OpCode,
    responder: Option<Responder>,
    effect: Effect,
    /// For reads: the highest zxid seen when the request was written; a reply from an older
    /// state is stale.
    floor: i64,
    /// The frame of a guaranteed request, to send again after a reconnect.
    resend: Option<Bytes>,
    /// Whether this is such a repeat.
    resent: bool,
}

/// A request received while disconnected.
#[derive(Debug)]
enum Queued {
    Request(Outgoing),
    Auth { packet: AuthPacket, frame: Bytes, responder: Responder },
}

/// Something readable from the transport.
enum Io {
    Read(usize),
    Wrote(usize),
    Failed(io::Error),
}

pub(super) struct Session {
    shared: Arc<Shared>,
    config: SessionConfig,
    rx: mpsc::UnboundedReceiver<Command>,
    /// Identifies this session task in the registry of live sessions.
    owner: u64,
    /// Requests written (or in `wbuf`) in order, awaiting replies.
    pending: VecDeque<InFlight>,
    /// Auth requests awaiting replies (servers answer auth out of band, in order among themselves).
    auth_pending: VecDeque<Option<Responder>>,
    /// Requests received while disconnected, sent after the reconnect.
    queued: VecDeque<Queued>,
    registry: Registry,
    /// Credentials to replay after a reconnect.
    auths: Vec<AuthPacket>,
    wbuf: BytesMut,
    next_host: usize,
    /// When a server was last heard from.
    last_heard: Instant,
    close_waiters: Vec<oneshot::Sender<()>>,
    detach_waiters: Vec<oneshot::Sender<SessionCredentials>>,
}

impl Session {
    pub(super) fn new(
        shared: Arc<Shared>,
        config: SessionConfig,
        rx: mpsc::UnboundedReceiver<Command>,
        owner: u64,
    ) -> Session {
        Session {
            shared,
            config,
            rx,
            owner,
            pending: VecDeque::new(),
            auth_pending: VecDeque::new(),
            queued: VecDeque::new(),
            registry: Registry::default(),
            auths: Vec::new(),
            wbuf: BytesMut::with_capacity(64 * 1024),
            next_host: 0,
            last_heard: Instant::now(),
            close_waiters: Vec::new(),
            detach_waiters: Vec::new(),
        }
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout
    }

    /// The first connection of the session (a new one, or the one to resume).
    pub(super) async fn first_connection(&mut self, deadline: Instant) -> Result<Connection> {
        match self.connect_until(Limit::GiveUpAt(deadline)).await {
            Ok(conn) => {
                self.connected(&conn);
                Ok(conn)
            }
            Err(Outcome::Lost(why)) => Err(Error::Connect(why)),
            Err(Outcome::Terminal(state)) => Err(state.terminal_error().unwrap_or(Error::Closed)),
        }
    }

    pub(super) async fn run(mut self, mut conn: Connection) {
        loop {
            match self.serve(&mut conn).await {
                Outcome::Terminal(state) => return self.finish(state),
                Outcome::Lost(why) => {
                    tracing::debug!(session_id = format_args!("{:#x}", self.shared.session_id()), server = %conn.server, reason = %why, "connection lost");
                    self.connection_lost();
                    drop(conn);
                    match self.reconnect().await {
                        Ok(c) => {
                            conn = c;
                            self.connected(&conn);
                            tracing::debug!(server = %conn.server, "session reconnected");
                        }
                        Err(state) => return self.finish(state),
                    }
                }
            }
        }
    }

    /// Serves one connection until it is lost or the session ends.
    async fn serve(&mut self, conn: &mut Connection) -> Outcome {
        let timeout = self.shared.negotiated_timeout();
        let read_timeout = timeout * 2 / 3;
        let ping_interval = (read_timeout / 2).min(MAX_PING_INTERVAL);
        let mut last_send = Instant::now();
        let mut closing: Option<Instant> = None;
        let mut rx_done = false;
        let sleep = tokio::time::sleep_until(last_send + ping_interval);
        tokio::pin!(sleep);
        // Frames that arrived with the handshake response.
        if let Err(o) = self.drain_frames(&mut conn.rbuf) {
            return o;
        }
        loop {
            let Connection { stream, rbuf, .. } = &mut *conn;
            let wbuf = &self.wbuf;
            tokio::select! {
                biased;
                io = poll_fn(|cx| poll_io(cx, stream, rbuf, wbuf)) => match io {
                    Io::Wrote(n) => self.wbuf.advance(n),
                    Io::Read(0) if closing.is_some() => return Outcome::Terminal(SessionState::Closed),
                    Io::Read(0) => return Outcome::Lost("the server closed the connection".into()),
                    Io::Read(_) => {
                        self.last_heard = Instant::now();
                        if let Err(o) = self.drain_frames(&mut conn.rbuf) {
                            return o;
                        }
                    }
                    Io::Failed(e) if closing.is_some() => {
                        tracing::debug!(error = %e, "connection error while closing");
                        return Outcome::Terminal(SessionState::Closed);
                    }
                    Io::Failed(e) => return Outcome::Lost(e.to_string()),
                },
                cmd = self.rx.recv(), if !rx_done => {
                    rx_done |= cmd.is_none();
                    if let Some(end) = self.on_command(cmd, &mut closing) {
                        return end;
                    }
                    for _ in 0..COMMAND_BATCH {
                        let cmd = match self.rx.try_recv() {
                            Ok(cmd) => Some(cmd),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => {
                                rx_done = true;
                                None
                            }
                        };
                        if let Some(end) = self.on_command(cmd, &mut closing) {
                            return end;
                        }
                        if rx_done {
                            break;
                        }
                    }
                    last_send = Instant::now();
                    if let Some(deadline) = closing {
                        let next = deadline.min(sleep.deadline());
                        sleep.as_mut().reset(next);
                    }
                },
                () = &mut sleep => {
                    let now = Instant::now();
                    if closing.is_some_and(|d| now >= d) {
                        return Outcome::Terminal(SessionState::Closed);
                    }
                    if now >= self.last_heard + read_timeout {
                        return Outcome::Lost(format!("nothing received for {read_timeout:?} (read timeout)"));
                    }
                    if now >= last_send + ping_interval {
                        frame::write_request_frame(&mut self.wbuf, xid::PING, &Request::Ping);
                        last_send = now;
                    }
                    let mut next = (self.last_heard + read_timeout).min(last_send + ping_interval);
                    if let Some(d) = closing {
                        next = next.min(d);
                    }
                    sleep.as_mut().reset(next);
                },
            }
        }
    }

    /// Decodes every complete frame in `rbuf`.
    fn drain_frames(&mut self, rbuf: &mut BytesMut) -> std::result::Result<(), Outcome> {
        loop {
            match frame::split_frame(rbuf, self.config.max_reply_frame) {
                Ok(Some(f)) => self.on_frame(f)?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(Outcome::Lost(format!("bad frame from server: {e}"))),
            }
        }
    }

    fn on_frame(&mut self, payload: Bytes) -> std::result::Result<(), Outcome> {
        let protocol = |e: crate::proto::DecodeError| Outcome::Lost(format!("malformed reply: {e}"));
        let mut r = Reader::new(payload);
        let h = ReplyHeader::decode(&mut r).map_err(protocol)?;
        match h.xid {
            xid::NOTIFICATION => {
                let ev = WatcherEvent::decode(&mut r).map_err(protocol)?;
                match EventType::from_i32(ev.event_type) {
                    Some(t) => self.registry.dispatch(t, &ev.path, h.zxid, &self.shared.chroot),
                    None => tracing::debug!(event_type = ev.event_type, "unknown watch event type ignored"),
                }
            }
            xid::PING => {}
            xid::AUTH => {
                let responder = self.auth_pending.pop_front().flatten();
                let result =
                    if h.err == 0 { Ok(RawReply { body: Bytes::new() }) } else { Err(Error::from_code(h.err)) };
                if let Some(tx) = responder {
                    let _ = tx.send(result);
                }
                if h.err == ErrorCode::AuthFailed.as_i32() {
                    return Err(Outcome::Terminal(SessionState::AuthFailed));
                }
            }
            got => {
                let Some(p) = self.pending.pop_front() else {
                    return Err(Outcome::Lost(format!("reply with xid {got} but no request in flight")));
                };
                if p.xid != got {
                    let expected = p.xid;
                    self.pending.push_front(p);
                    return Err(Outcome::Lost(format!("xid out of order: expected {expected}, got {got}")));
                }
                let stale = p.op.is_read() && h.zxid > 0 && h.zxid < p.floor;
                if h.zxid > 0 {
                    self.shared.last_zxid.raise(h.zxid);
                }
                // A repeated guaranteed delete that finds the node gone may have been the one
                // that deleted it: the end it was sent for is reached.
                let done_before = p.resent && p.op == OpCode::Delete && h.err == ErrorCode::NoNode.as_i32();
                let result = if stale {
                    Err(Error::StaleRead { zxid: h.zxid, floor: p.floor })
                } else if h.err == 0 || done_before {
                    Ok(RawReply { body: r.into_rest() })
                } else {
                    Err(Error::from_code(h.err))
                };
                match p.effect {
                    Effect::Watch(mut reg) => {
                        let announced = reg.kind;
                        let path = reg.path.clone();
                        let keep = match &result {
                            Ok(_) => true,
                            Err(Error::NoNode) if p.op == OpCode::Exists => {
                                reg.kind = WatchKind::Exist;
                                true
                            }
                            Err(_) => false,
                        };
                        self.registry.settle(announced, &path, keep.then_some(reg));
                    }
                    Effect::RemoveLocal { path, watcher_type, client_path } if result.is_ok() => {
                        self.registry.remove_local(&path, watcher_type, client_path)
                    }
                    Effect::RemoveLocal { .. } | Effect::None => {}
                }
                if let Some(tx) = p.responder {
                    let _ = tx.send(result);
                }
                if p.op == OpCode::CloseSession {
                    return Err(Outcome::Terminal(SessionState::Closed));
                }
                if h.err == ErrorCode::SessionMoved.as_i32() {
                    // The server says another connection owns the session now.
                    return Err(Outcome::Terminal(SessionState::Moved));
                }
            }
        }
        Ok(())
    }

    /// Handles a command while connected (`None`: every client handle is gone). Returns how
    /// serving ends, if the command ends it.
    fn on_command(&mut self, cmd: Option<Command>, closing: &mut Option<Instant>) -> Option<Outcome> {
        match cmd {
            None => self.begin_close(closing),
            Some(Command::Close(done)) => {
                self.close_waiters.push(done);
                self.begin_close(closing);
            }
            Some(Command::Detach(done)) => {
                self.detach_waiters.push(done);
                return Some(Outcome::Terminal(SessionState::Moved));
            }
            Some(cmd) if closing.is_some() => fail_command(cmd, Error::Closed),
            Some(Command::Request(mut out)) => {
                self.announce(&mut out);
                self.write_request(out);
            }
            Some(Command::Auth { packet, frame, responder }) => self.write_auth(packet, frame, responder),
            Some(Command::Unwatch(id)) => {
                if let Some((path, t)) = self.registry.unwatch(id) {
                    self.write_internal(Request::RemoveWatches { path, watcher_type: t.as_i32() });
                }
            }
        }
        None
    }

    /// Records the watch a request will register. A one-shot watch that a persistent watch on
    /// the same path already serves is not requested from the server (see
    /// `Registry::covered`): the request's watch flag is cleared.
    fn announce(&mut self, out: &mut Outgoing) {
        let Effect::Watch(reg) = &out.effect else { return };
        if self.registry.covered(reg.kind, &reg.path) {
            match frame::clear_watch_flag(&out.frame) {
                Ok(cleared) => out.frame = cleared,
                // Only the client's own watching reads carry a watch registration.
                Err(e) => tracing::warn!(op = %out.op, error = %e, "watch flag not cleared"),
            }
        }
        self.registry.expect(reg.kind, &reg.path);
    }

    fn write_auth(&mut self, packet: AuthPacket, frame: Bytes, responder: Responder) {
        self.auths.push(packet);
        self.auth_pending.push_back(Some(responder));
        self.wbuf.extend_from_slice(&frame);
    }

    /// Appends a request whose watch expectation (if any) is already recorded.
    fn write_request(&mut self, out: Outgoing) {
        self.wbuf.extend_from_slice(&out.frame);
        let floor = self.shared.last_zxid();
        self.pending.push_back(InFlight {
            xid: out.xid,
            op: out.op,
            responder: out.responder,
            effect: out.effect,
            floor,
            resend: out.guaranteed.then_some(out.frame),
            resent: out.resent,
        });
    }

    /// Sends a request of the session's own whose reply nobody waits for.
    fn write_internal(&mut self, req: Request) {
        let xid = self.shared.next_xid();
        frame::write_request_frame(&mut self.wbuf, xid, &req);
        self.pending.push_back(InFlight {
            xid,
            op: req.op_code(),
            responder: None,
            effect: Effect::None,
            floor: 0,
            resend: None,
            resent: false,
        });
    }

    fn begin_close(&mut self, closing: &mut Option<Instant>) {
        if closing.is_none() {
            self.write_internal(Request::CloseSession);
            *closing = Some(Instant::now() + CLOSE_WAIT);
        }
    }

    fn connected(&mut self, conn: &Connection) {
        self.shared.adopt(conn);
        self.last_heard = Instant::now();
        let state = if conn.response.read_only == Some(true) {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        };
        self.shared.state.set(state);
    }

    /// Fails what was in flight on the lost connection; watches stay registered locally and are
    /// re-registered after the reconnect. Guaranteed requests are queued again, ahead of what
    /// was queued meanwhile, to be sent after the reconnect.
    fn connection_lost(&mut self) {
        self.shared.set_server(None);
        self.shared.state.set(SessionState::Disconnected);
        self.wbuf.clear();
        let mut again = Vec::new();
        for p in self.pending.drain(..) {
            if let Some(frame) = p.resend {
                let out = Outgoing {
                    xid: p.xid,
                    op: p.op,
                    frame,
                    responder: p.responder,
                    effect: p.effect,
                    deadline: None,
                    guaranteed: true,
                    resent: true,
                };
                again.push(Queued::Request(out));
                continue;
            }
            if let Effect::Watch(reg) = p.effect {
                self.registry.settle(reg.kind, &reg.path, None);
            }
            if let Some(tx) = p.responder {
                let _ = tx.send(Err(Error::ConnectionLoss));
            }
        }
        for q in again.into_iter().rev() {
            self.queued.push_front(q);
        }
        for tx in self.auth_pending.drain(..).flatten() {
            let _ = tx.send(Err(Error::ConnectionLoss));
        }
    }

    /// Reconnects to the same session, queueing commands meanwhile. Returns the terminal state
    /// if the session ended instead. With client-side expiry, a session that has not heard from
    /// any server for 4/3 of its timeout is expired on every server by then: give up on it.
    async fn reconnect(&mut self) -> std::result::Result<Connection, SessionState> {
        let limit = if self.config.client_side_expiry {
            Limit::ExpireAt(self.last_heard + self.shared.negotiated_timeout() * 4 / 3)
        } else {
            Limit::Forever
        };
        match self.connect_until(limit).await {
            Ok(conn) => {
                self.prime();
                Ok(conn)
            }
            Err(Outcome::Terminal(state)) => Err(state),
            // Only `GiveUpAt` ends in `Lost`.
            Err(Outcome::Lost(_)) => Err(SessionState::Closed),
        }
    }

    /// After a reconnect: replay credentials, re-register watches, then send what was queued
    /// (except requests whose callers have stopped waiting).
    fn prime(&mut self) {
        for packet in &self.auths {
            frame::write_request_frame(&mut self.wbuf, xid::AUTH, &Request::Auth(packet.clone()));
            self.auth_pending.push_back(None);
        }
        let last_zxid = self.shared.last_zxid();
        for sw in self.registry.set_watches(last_zxid, SET_WATCHES_BATCH) {
            let v2 = !sw.persistent_watches.is_empty() || !sw.persistent_recursive_watches.is_empty();
            self.write_internal(if v2 { Request::SetWatches2(sw) } else { Request::SetWatches(sw) });
        }
        let now = Instant::now();
        while let Some(q) = self.queued.pop_front() {
            match q {
                Queued::Request(out) if out.deadline.is_some_and(|d| d <= now) => {
                    if let Effect::Watch(reg) = &out.effect {
                        self.registry.settle(reg.kind, &reg.path, None);
                    }
                    if let Some(tx) = out.responder {
                        let _ = tx.send(Err(Error::OperationTimeout));
                    }
                }
                // The watch expectation was recorded when the request was queued.
                Queued::Request(out) => self.write_request(out),
                Queued::Auth { packet, frame, responder } => self.write_auth(packet, frame, responder),
            }
        }
    }

    /// Tries the servers round-robin until one accepts the session or the limit passes. While
    /// waiting, commands are queued (or end the session).
    async fn connect_until(&mut self, limit: Limit) -> std::result::Result<Connection, Outcome> {
        let hosts = self.config.endpoints.len().max(1);
        let mut failures_in_row = 0u32;
        let mut last_error = String::from("no server tried");
        let remaining = |last_error: &str| {
            let now = Instant::now();
            match limit {
                Limit::GiveUpAt(d) if now >= d => Err(Outcome::Lost(last_error.to_string())),
                Limit::ExpireAt(d) if now >= d => Err(Outcome::Terminal(SessionState::Expired)),
                Limit::GiveUpAt(d) | Limit::ExpireAt(d) => Ok(d - now),
                Limit::Forever => Ok(Duration::MAX),
            }
        };
        loop {
            // A full cycle without success: back off (exponential, capped at 1 s, with jitter).
            if failures_in_row > 0 && (failures_in_row as usize).is_multiple_of(hosts) {
                let round = (failures_in_row as usize / hosts).min(7) as u32;
                let pause = Duration::from_millis(10 << round).min(Duration::from_secs(1));
                let pause = crate::random::upper_half(pause).min(remaining(&last_error)?);
                self.wait_queueing(Instant::now() + pause).await?;
            }
            let limit = remaining(&last_error)?.min(self.attempt_limit());
            let i = self.next_host;
            self.next_host = (self.next_host + 1) % hosts;
            let request = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: self.shared.last_zxid(),
                timeout: self.config.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                session_id: self.shared.session_id(),
                passwd: self.shared.password(),
                read_only: Some(self.config.read_only),
            };
            let endpoints = self.config.endpoints.clone();
            let max_frame = self.config.max_reply_frame;
            let attempt = connect::attempt(&endpoints, i, &request, max_frame, limit);
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    r = &mut attempt => break r,
                    cmd = self.rx.recv() => self.queue_command(cmd)?,
                }
            };
            match result {
                Ok(conn) => return Ok(conn),
                Err(AttemptError::Expired) => return Err(Outcome::Terminal(SessionState::Expired)),
                Err(AttemptError::Failed(why)) => {
                    tracing::debug!(reason = %why, "connection attempt failed");
                    last_error = why;
                    failures_in_row += 1;
                }
            }
        }
    }

    /// One attempt may take a fair share of the session timeout (as the Java client's
    /// `connectTimeout = sessionTimeout / hostCount`), but never less than a second.
    fn attempt_limit(&self) -> Duration {
        let base = if self.shared.state.get() == SessionState::Connecting {
            self.config.session_timeout
        } else {
            self.shared.negotiated_timeout()
        };
        (base / self.config.endpoints.len().max(1) as u32).max(Duration::from_secs(1))
    }

    /// Sleeps until `until`, queueing commands that arrive meanwhile.
    async fn wait_queueing(&mut self, until: Instant) -> std::result::Result<(), Outcome> {
        let sleep = tokio::time::sleep_until(until);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ok(()),
                cmd = self.rx.recv() => self.queue_command(cmd)?,
            }
        }
    }

    /// Handles a command while no connection is up.
    fn queue_command(&mut self, cmd: Option<Command>) -> std::result::Result<(), Outcome> {
        match cmd {
            // Nobody can reach this session any more, or it was asked to close: without a
            // connection closeSession cannot be sent, so the server expires the session later.
            None => Err(Outcome::Terminal(SessionState::Closed)),
            Some(Command::Close(done)) => {
                self.close_waiters.push(done);
                Err(Outcome::Terminal(SessionState::Closed))
            }
            Some(Command::Detach(done)) => {
                self.detach_waiters.push(done);
                Err(Outcome::Terminal(SessionState::Moved))
            }
            Some(Command::Unwatch(id)) => {
                // Not re-registered after the reconnect, so nothing to remove on the server.
                self.registry.unwatch(id);
                Ok(())
            }
            Some(Command::Request(out)) if self.config.fail_fast && !out.guaranteed => {
                if let Some(tx) = out.responder {
                    let _ = tx.send(Err(Error::ConnectionLoss));
                }
                Ok(())
            }
            Some(Command::Request(mut out)) => {
                self.announce(&mut out);
                self.queued.push_back(Queued::Request(out));
                Ok(())
            }
            Some(Command::Auth { packet, frame, responder }) => {
                self.queued.push_back(Queued::Auth { packet, frame, responder });
                Ok(())
            }
        }
    }

    /// Ends the session: every pending request, queued command, watcher and stream gets the
    /// terminal error.
    fn finish(mut self, state: SessionState) {
        forget_session(self.shared.session_id(), self.owner);
        self.shared.set_server(None);
        self.shared.state.set(state);
        let err = self.shared.state.get().terminal_error().unwrap_or(Error::Closed);
        tracing::debug!(session_id = format_args!("{:#x}", self.shared.session_id()), state = ?state, "session ended");
        self.rx.close();
        for p in self.pending.drain(..) {
            if let Some(tx) = p.responder {
                let _ = tx.send(Err(err.clone()));
            }
        }
        for tx in self.auth_pending.drain(..).flatten() {
            let _ = tx.send(Err(err.clone()));
        }
        for q in self.queued.drain(..) {
            let responder = match q {
                Queued::Request(out) => out.responder,
                Queued::Auth { responder, .. } => Some(responder),
            };
            if let Some(tx) = responder {
                let _ = tx.send(Err(err.clone()));
            }
        }
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Close(done) => self.close_waiters.push(done),
                Command::Detach(done) => self.detach_waiters.push(done),
                cmd => fail_command(cmd, err.clone()),
            }
        }
        self.registry.terminate(&err);
        for done in self.close_waiters.drain(..) {
            let _ = done.send(());
        }
        let credentials = self.shared.credentials();
        for done in self.detach_waiters.drain(..) {
            let _ = done.send(credentials.clone());
        }
    }
}

/// Writes pending bytes if the transport accepts them, otherwise reads what arrived.
fn poll_io(cx: &mut Context<'_>, stream: &mut BoxTransport, rbuf: &mut BytesMut, wbuf: &BytesMut) -> Poll<Io> {
    if !wbuf.is_empty() {
        match Pin::new(&mut *stream).poll_write(cx, wbuf) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Io::Failed(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => return Poll::Ready(Io::Wrote(n)),
            Poll::Ready(Err(e)) => return Poll::Ready(Io::Failed(e)),
            Poll::Pending => {}
        }
    }
    if rbuf.capacity() - rbuf.len() < 4096 {
        rbuf.reserve(64 * 1024);
    }
    match tokio_util::io::poll_read_buf(Pin::new(&mut *stream), cx, rbuf) {
        Poll::Ready(Ok(n)) => Poll::Ready(Io::Read(n)),
        Poll::Ready(Err(e)) => Poll::Ready(Io::Failed(e)),
        Poll::Pending => Poll::Pending,
    }
}
