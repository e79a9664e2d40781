//! The session task's loop: serving one connection (a `select!` over socket I/O, commands from
//! the client handles, and the ping/read-timeout timer), routing each frame that arrives
//! (notifications to the watch registry, replies to the in-flight bookkeeping of
//! [`super::inflight`]), writing requests in the order they were made, and, once a connection is
//! lost, handing over to [`super::reconnect`] until the session goes on or ends. Ending the
//! session fails everything still waiting with the terminal error.

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

use super::connect::{BoxTransport, Connection};
use super::inflight::InFlight;
use super::reconnect::Queued;
use super::watches::Registry;
use super::{
    fail_command, forget_session, Command, Effect, Outcome, Outgoing, Responder, SessionConfig, SessionCredentials,
    SessionState, Shared,
};
use crate::error::Error;
use crate::proto::{frame, xid, AuthPacket, Decode, EventType, Reader, ReplyHeader, Request, WatcherEvent};

/// The Java client pings at least this often, whatever the session timeout.
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long `close()` waits for the server to confirm `closeSession`.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// Commands handled before the next socket write, so that a burst of requests goes out in one
/// write without starving the reader.
const COMMAND_BATCH: usize = 512;

/// Something readable from the transport.
enum Io {
    Read(usize),
    Wrote(usize),
    Failed(io::Error),
}

/// The state of one session task (its connecting half is in [`super::reconnect`]).
pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) config: SessionConfig,
    pub(super) rx: mpsc::UnboundedReceiver<Command>,
    /// Identifies this session task in the registry of live sessions.
    owner: u64,
    /// Requests and auth packets written (or in `wbuf`), awaiting replies.
    pub(super) inflight: InFlight,
    /// Commands received while disconnected, carried out after the reconnect.
    pub(super) queued: VecDeque<Queued>,
    pub(super) registry: Registry,
    /// Credentials to replay after a reconnect.
    pub(super) auths: Vec<AuthPacket>,
    /// Bytes to write to the current connection.
    pub(super) wbuf: BytesMut,
    /// The server to try next (an index into the endpoints).
    pub(super) next_host: usize,
    /// When a server was last heard from.
    pub(super) last_heard: Instant,
    pub(super) close_waiters: Vec<oneshot::Sender<()>>,
    pub(super) detach_waiters: Vec<oneshot::Sender<SessionCredentials>>,
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
            inflight: InFlight::default(),
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

    /// How long the first connection may take.
    pub(super) fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout
    }

    /// Serves `conn`, and every connection after it, until the session ends.
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
            xid::AUTH => self.inflight.on_auth_reply(h.err)?,
            _ => self.inflight.on_reply(h, r, &mut self.registry, &self.shared)?,
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
    pub(super) fn announce(&mut self, out: &mut Outgoing) {
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

    /// Appends an `addAuth` packet (remembered for replay after reconnects).
    pub(super) fn write_auth(&mut self, packet: AuthPacket, frame: Bytes, responder: Responder) {
        self.auths.push(packet);
        self.inflight.write_auth(&mut self.wbuf, &frame, Some(responder));
    }

    /// Appends a request whose watch expectation (if any) is already recorded.
    pub(super) fn write_request(&mut self, out: Outgoing) {
        let floor = self.shared.last_zxid();
        self.inflight.write(&mut self.wbuf, out, floor);
    }

    /// Sends a request of the session's own whose reply nobody waits for.
    pub(super) fn write_internal(&mut self, req: Request) {
        let xid = self.shared.next_xid();
        self.inflight.write_internal(&mut self.wbuf, xid, &req);
    }

    fn begin_close(&mut self, closing: &mut Option<Instant>) {
        if closing.is_none() {
            self.write_internal(Request::CloseSession);
            *closing = Some(Instant::now() + CLOSE_WAIT);
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
        self.inflight.fail_all(&err);
        for tx in self.queued.drain(..).filter_map(Queued::into_responder) {
            let _ = tx.send(Err(err.clone()));
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
