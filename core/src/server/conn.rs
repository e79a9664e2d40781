//! Per-connection I/O: the reader task (handshake, four-letter words, framing, limits, batching
//! into the state lock) and the writer task that drains the connection's [`Outbox`].
//!
//! The server never trusts the client. A frame length below 0 or above the frame limit, a
//! header shorter than 8 bytes, an undecodable ConnectRequest, silence past the absolute
//! handshake deadline or past the session timeout once established, all close the connection.
//! A client that does not read its replies first stops being read from ([`HIGH_WATER`] bytes
//! queued), and is disconnected if events from other sessions' writes push its queue past the
//! configured cap. Requests are applied in bounded batches, one batch per acquisition of the
//! state lock (see [`FRAMES_PER_HOLD`], [`WORK_PER_HOLD`]); replies and notifications are encoded
//! into the outbox while the lock is held, so every connection sees them in apply order.
//!
//! Every connection's end is logged once, when its reader is done, with the first reason
//! decided for it (see [`Ending`]): at `info` as "connection refused" when it never had a
//! session, as "connection dropped" when it had one; at `debug` when the end is ordinary (the
//! client closed its session, a four-letter word was answered, a client left before its
//! handshake).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::fourlw;
use super::outbox::{Ending, Outbox, Step};
use super::peer::Peer;
use super::state::Flow;
use super::{Shared, TaskGuard};
use crate::proto::frame::split_frame;
use crate::proto::{ConnectRequest, Decode};

/// How long a new connection may take to complete its ConnectRequest, whatever it sends
/// meanwhile (ZooKeeper's `sessionlessCnxnTimeout` is 10 s, but re-armed by every byte, which
/// lets a slowloris hold a slot; this deadline is absolute).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Queued outgoing bytes above which the server stops reading a connection's requests until
/// the client has read some replies.
pub(crate) const HIGH_WATER: usize = 4 << 20;
/// Queued bytes below which reading resumes.
const LOW_WATER: usize = 1 << 20;
/// Most request frames of one connection applied in one hold of the state lock.
pub(crate) const FRAMES_PER_HOLD: usize = 256;
/// Work units (a request, a node visited, a name listed, a node deleted) after which a
/// connection's batch ends and the lock is released: about a millisecond.
pub(crate) const WORK_PER_HOLD: u64 = 20_000;
/// Longest a connection with more requests to apply waits for other connections' readers
/// to take the state lock first.
const POLITE_WAIT: Duration = Duration::from_millis(5);
/// Initial read buffer size; the buffer grows to hold a whole frame when one is larger.
const READ_CHUNK: usize = 64 << 10;

/// The writer task: drains the outbox into the stream until the connection ends.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(outbox: Arc<Outbox>, mut w: W, cancel: CancellationToken) {
    loop {
        match outbox.next_step(Instant::now()) {
            Step::Write(bytes) => {
                let res = tokio::select! {
                    r = w.write_all(&bytes) => Some(r),
                    _ = cancel.cancelled() => None,
                };
                drop(bytes);
                outbox.written();
                let Some(res) = res else { return };
                if let Err(e) = res {
                    outbox.end_because(Ending::because(format!("write failed: {e}")));
                    cancel.cancel();
                    return;
                }
                if outbox.queued() < LOW_WATER {
                    outbox.drained.notify_one();
                }
            }
            Step::Wait(until) => {
                tokio::select! {
                    _ = outbox.wake.notified() => {}
                    _ = sleep_until_opt(until) => {}
                    _ = cancel.cancelled() => return,
                }
            }
            Step::Finish => {
                tokio::select! {
                    _ = async {
                        let _ = w.flush().await;
                        let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
                    } => {}
                    _ = cancel.cancelled() => {}
                }
                cancel.cancel();
                return;
            }
            Step::Abort => return,
        }
    }
}

async fn sleep_until_opt(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// How a reader ended.
enum End {
    /// Flush what is queued, then close.
    AfterFlush,
    /// Close now.
    Abort,
}

/// Serves one connection: registers it, spawns its writer, runs the reader, cleans up, and
/// logs how it ended.
pub(crate) async fn serve<R, W>(shared: Arc<Shared>, mut rd: R, wr: W, peer: Peer, guard: TaskGuard)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cancel = shared.cancel.child_token();
    let outbox = Arc::new(Outbox::new(cancel.clone(), shared.cfg.max_queued_bytes, shared.budget.clone()));
    let conn = shared.lock_state().register_conn(outbox.clone(), cancel.clone(), &peer, shared.now());
    shared.spawn_tracked(write_loop(outbox.clone(), wr, cancel.clone()));
    let reader = Reader { shared: &shared, conn, outbox: &outbox, cancel: &cancel, buf: BytesMut::new() };
    let (session, (end, ending)) = reader.run(&mut rd).await;
    match end {
        End::AfterFlush => outbox.close_after_flush(ending.clone()),
        End::Abort => outbox.abort(ending.clone()),
    }
    shared.lock_state().remove_conn(conn);
    log_end(&peer, session, outbox.ending().unwrap_or(ending));
    drop(guard);
}

/// The one line about a connection's end.
fn log_end(peer: &Peer, session: Option<i64>, ending: Ending) {
    let peer = &peer.display;
    match (ending, session) {
        (Ending::Quietly(why), None) => debug!(peer, reason = why, "connection closed"),
        (Ending::Quietly(why), Some(id)) => {
            debug!(session = %format_args!("0x{id:x}"), peer, reason = why, "connection closed")
        }
        (Ending::Because(why), None) => info!(peer, reason = %why, "connection refused"),
        (Ending::Because(why), Some(id)) => {
            info!(session = %format_args!("0x{id:x}"), peer, reason = %why, "connection dropped")
        }
    }
}

/// Why [`read_more`] read nothing more.
enum Stop {
    /// The connection's token was cancelled (by the server, or at shutdown).
    Cancelled,
    /// The deadline passed.
    TimedOut,
    /// The stream failed.
    Failed(io::Error),
}

/// Reads into `buf` until `cancel`, `deadline` or end of stream; `Ok(false)` on EOF.
async fn read_more<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    cancel: &CancellationToken,
    deadline: Instant,
) -> Result<bool, Stop> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(READ_CHUNK);
    }
    tokio::select! {
        _ = cancel.cancelled() => Err(Stop::Cancelled),
        r = tokio::time::timeout_at(deadline, rd.read_buf(buf)) => match r {
            Err(_) => Err(Stop::TimedOut),
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => Err(Stop::Failed(e)),
        },
    }
}

/// How the reader ended, and why.
type Closed = (End, Ending);

/// The reading side of one connection.
struct Reader<'a> {
    shared: &'a Arc<Shared>,
    conn: u64,
    outbox: &'a Outbox,
    cancel: &'a CancellationToken,
    buf: BytesMut,
}

impl Reader<'_> {
    /// Runs the handshake, then serves requests; returns the session the connection had (if
    /// the handshake got that far) and how it ended.
    async fn run<R: AsyncRead + Unpin>(mut self, rd: &mut R) -> (Option<i64>, Closed) {
        match self.handshake(rd).await {
            Err(closed) => (None, closed),
            Ok((session, idle)) => (Some(session), self.requests(rd, idle).await),
        }
    }

    /// Why the connection ends after a read stopped (`timed_out` says what a timeout means at
    /// that point).
    fn stopped(&self, stop: Stop, timed_out: impl FnOnce() -> String) -> Ending {
        match stop {
            // Whoever cancelled said why on the outbox; otherwise it is the shutdown.
            Stop::Cancelled if self.shared.cancel.is_cancelled() => Ending::because("server shutdown"),
            Stop::Cancelled => Ending::because("closed by the server"),
            Stop::TimedOut => Ending::because(timed_out()),
            Stop::Failed(e) => Ending::because(format!("read failed: {e}")),
        }
    }

    /// A four-letter word (answered, then `Err`), or one ConnectRequest frame before the
    /// deadline, answered by the state: the session and its timeout.
    async fn handshake<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Result<(i64, Duration), Closed> {
        let max_frame = self.shared.cfg.max_frame;
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let first = loop {
            if self.buf.len() >= 4 {
                if let Some(word) = fourlw::Word::parse(&self.buf[..4]) {
                    let text = fourlw::respond(word, self.shared);
                    self.outbox.push(0, |b| b.extend_from_slice(text.as_bytes()));
                    return Err((End::AfterFlush, Ending::Quietly("a four-letter word was answered")));
                }
                match split_frame(&mut self.buf, max_frame) {
                    Err(e) => return Err((End::Abort, Ending::because(format!("bad first frame: {e}")))),
                    Ok(Some(frame)) => break frame,
                    Ok(None) => {}
                }
            }
            match read_more(rd, &mut self.buf, self.cancel, deadline).await {
                Ok(true) => {}
                Ok(false) => return Err((End::Abort, Ending::Quietly("the client left before its handshake"))),
                Err(stop) => {
                    let why = self.stopped(stop, || format!("no ConnectRequest within {HANDSHAKE_TIMEOUT:?}"));
                    return Err((End::Abort, why));
                }
            }
        };
        let request = ConnectRequest::decode_bytes(first)
            .map_err(|e| (End::Abort, Ending::because(format!("undecodable ConnectRequest: {e}"))))?;
        let attached = self.shared.lock_state().connect(self.shared.now(), self.conn, &request);
        match attached {
            Ok((session, timeout)) => Ok((session, Duration::from_millis(u64::try_from(timeout).unwrap_or(0).max(1)))),
            // The state said why on the outbox.
            Err(Flow::Abort) => Err((End::Abort, Ending::because("refused by the server"))),
            Err(_) => Err((End::AfterFlush, Ending::because("refused by the server"))),
        }
    }

    /// Serves requests in bounded batches: each lock acquisition applies at most
    /// [`FRAMES_PER_HOLD`] frames and stops early once they have done [`WORK_PER_HOLD`] units of
    /// work or queued more than [`HIGH_WATER`] bytes of replies; then the reader yields, so one
    /// connection's pipeline of expensive requests cannot hold the state from everyone else.
    /// `idle` is the session timeout: a client silent that long is dropped.
    async fn requests<R: AsyncRead + Unpin>(&mut self, rd: &mut R, idle: Duration) -> Closed {
        let max_frame = self.shared.cfg.max_frame;
        let mut pending: VecDeque<Bytes> = VecDeque::new();
        let mut bad = None;
        loop {
            if self.outbox.is_blackholed() {
                // A silent network: what the client sends now is never read.
                self.cancel.cancelled().await;
                return (End::Abort, self.stopped(Stop::Cancelled, String::new));
            }
            let before = pending.len();
            while bad.is_none() {
                match split_frame(&mut self.buf, max_frame) {
                    Ok(Some(f)) => pending.push_back(f),
                    Ok(None) => break,
                    Err(e) => bad = Some(e),
                }
            }
            if pending.len() > before {
                // Heard from: whole requests arrived (bytes of an unfinished one do not count,
                // as in ZooKeeper).
                self.outbox.heard(self.shared.now().ms);
            }
            if self.cancel.is_cancelled() {
                // Closed by the server (its queue went over the cap, or shutdown): what is still
                // pending is not applied.
                return (End::Abort, self.stopped(Stop::Cancelled, String::new));
            }
            if !pending.is_empty() {
                // When the state ends a connection, it says why on the outbox.
                match self.apply_batch(&mut pending) {
                    Flow::Continue => {}
                    Flow::CloseAfterFlush => return (End::AfterFlush, Ending::because("closed by the server")),
                    Flow::Abort => return (End::Abort, Ending::because("closed by the server")),
                }
            }
            if pending.is_empty() {
                if let Some(e) = bad.take() {
                    return (End::Abort, Ending::because(format!("bad frame: {e}")));
                }
            }
            // A client that does not read its replies is not served either; one that reads
            // nothing for a whole session timeout is dropped.
            let stuck_until = Instant::now() + idle;
            while self.outbox.queued() > HIGH_WATER && !self.outbox.is_blackholed() {
                tokio::select! {
                    _ = self.outbox.drained.notified() => {}
                    _ = self.cancel.cancelled() => return (End::Abort, self.stopped(Stop::Cancelled, String::new)),
                    _ = tokio::time::sleep_until(stuck_until) => {
                        let why = format!(
                            "the client read no replies for {idle:?} ({} bytes queued)",
                            self.outbox.queued()
                        );
                        return (End::Abort, Ending::because(why));
                    }
                }
            }
            if self.outbox.is_blackholed() {
                continue;
            }
            if !pending.is_empty() {
                // More is waiting: let other connections and the expiry timer have the lock first.
                self.let_others_go_first().await;
                continue;
            }
            let more = tokio::select! {
                biased;
                _ = self.outbox.hush.notified() => continue,
                r = read_more(rd, &mut self.buf, self.cancel, Instant::now() + idle) => r,
            };
            match more {
                Ok(true) => {}
                Ok(false) => return (End::Abort, Ending::because("closed by the client")),
                Err(stop) => {
                    return (
                        End::Abort,
                        self.stopped(stop, || format!("nothing received for {idle:?} (session timeout)")),
                    )
                }
            }
        }
    }

    /// Between two batches of one connection: yields, and while other connections' readers are
    /// blocked on the state lock keeps yielding (for at most [`POLITE_WAIT`]) so that they take
    /// it first. The lock is not fair by itself: a thread that releases it and asks again at
    /// once usually gets it back before a woken waiter runs.
    async fn let_others_go_first(&self) {
        let until = Instant::now() + POLITE_WAIT;
        loop {
            tokio::task::yield_now().await;
            if self.shared.lock_waiters.load(Ordering::Acquire) == 0 || Instant::now() >= until {
                return;
            }
        }
    }

    /// Applies frames from the front of `pending` in one hold of the state lock, within the
    /// per-hold bounds; sheds the connections with the longest queues if all queues together
    /// went over their cap.
    fn apply_batch(&self, pending: &mut VecDeque<Bytes>) -> Flow {
        self.outbox.set_waiting(true);
        self.shared.lock_waiters.fetch_add(1, Ordering::AcqRel);
        let mut st = self.shared.lock_state();
        self.shared.lock_waiters.fetch_sub(1, Ordering::AcqRel);
        self.outbox.set_waiting(false);
        let now = self.shared.now();
        let start = st.work;
        let mut flow = Flow::Continue;
        for _ in 0..FRAMES_PER_HOLD {
            let Some(frame) = pending.pop_front() else { break };
            st.work += 1;
            flow = st.handle_frame(now, self.conn, frame);
            if flow != Flow::Continue
                || st.work - start >= WORK_PER_HOLD
                || self.outbox.queued() > HIGH_WATER
                || self.shared.budget.over()
            {
                break;
            }
        }
        if self.shared.budget.over() {
            st.shed(&self.shared.budget);
        }
        flow
    }
}
