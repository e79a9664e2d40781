//! Per-connection I/O: the reader task (handshake, four-letter words, framing, limits, batching
//! into the state lock) and the writer task that drains the connection's [`Outbox`].
//!
//! The server never trusts the client. A frame length below 0 or above the frame limit, a
//! header shorter than 8 bytes, an undecodable ConnectRequest, silence past the absolute
//! handshake deadline or past the session timeout once established, all close the connection
//! (logged at debug level). A client that does not read its replies first stops being read from
//! ([`HIGH_WATER`] bytes queued), and is disconnected if events from other sessions' writes push
//! its queue past the configured cap. All requests complete in the buffer are applied in one
//! acquisition of the state lock; replies and notifications are encoded into the outbox while
//! the lock is held, so every connection sees them in apply order.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::fourlw;
use super::outbox::{Outbox, Step};
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
/// Initial read buffer size; the buffer grows to hold a whole frame when one is larger.
const READ_CHUNK: usize = 64 << 10;

/// The writer task: drains the outbox into the stream until the connection ends.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(outbox: Arc<Outbox>, mut w: W, cancel: CancellationToken) {
    loop {
        match outbox.next_step(Instant::now()) {
            Step::Write(bytes) => {
                let res = tokio::select! {
                    r = w.write_all(&bytes) => r,
                    _ = cancel.cancelled() => return,
                };
                if let Err(e) = res {
                    debug!(error = %e, "write failed; closing the connection");
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

/// Serves one connection: registers it, spawns its writer, runs the reader, cleans up.
pub(crate) async fn serve<R, W>(shared: Arc<Shared>, rd: R, wr: W, peer: Peer, guard: TaskGuard)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let cancel = shared.cancel.child_token();
    let outbox = Arc::new(Outbox::new(cancel.clone(), shared.cfg.max_queued_bytes));
    let conn = shared.lock_state().register_conn(outbox.clone(), cancel.clone(), &peer, shared.now());
    shared.spawn_tracked(write_loop(outbox.clone(), wr, cancel.clone()));
    let end = read_loop(&shared, rd, conn, &outbox, &cancel).await;
    match end {
        End::AfterFlush => outbox.close_after_flush(),
        End::Abort => outbox.abort(),
    }
    shared.lock_state().remove_conn(conn);
    drop(guard);
}

/// Reads into `buf` until `cancel`, `deadline` or end of stream; `Ok(false)` on EOF.
async fn read_more<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    cancel: &CancellationToken,
    deadline: Instant,
) -> Result<bool, &'static str> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(READ_CHUNK);
    }
    tokio::select! {
        _ = cancel.cancelled() => Err("closed by the server"),
        r = tokio::time::timeout_at(deadline, rd.read_buf(buf)) => match r {
            Err(_) => Err("timed out"),
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(_)) => Err("read error"),
        },
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    mut rd: R,
    conn: u64,
    outbox: &Outbox,
    cancel: &CancellationToken,
) -> End {
    let max_frame = shared.cfg.max_frame;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);

    // Handshake: a four-letter word, or one ConnectRequest frame, before the deadline.
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let first = loop {
        if buf.len() >= 4 {
            if let Some(word) = fourlw::Word::parse(&buf[..4]) {
                let text = fourlw::answer(word, shared);
                outbox.push(0, |b| b.extend_from_slice(text.as_bytes()));
                return End::AfterFlush;
            }
            match split_frame(&mut buf, max_frame) {
                Err(e) => {
                    debug!(conn, error = %e, "bad first frame; closing");
                    return End::Abort;
                }
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
            }
        }
        match read_more(&mut rd, &mut buf, cancel, deadline).await {
            Ok(true) => {}
            Ok(false) => return End::Abort,
            Err(why) => {
                debug!(conn, why, "no ConnectRequest; closing");
                return End::Abort;
            }
        }
    };
    let request = match ConnectRequest::decode_bytes(first) {
        Ok(r) => r,
        Err(e) => {
            debug!(conn, error = %e, "undecodable ConnectRequest; closing");
            return End::Abort;
        }
    };
    let idle = match shared.lock_state().connect(shared.now(), conn, &request) {
        Ok(timeout) => Duration::from_millis(u64::try_from(timeout).unwrap_or(0).max(1)),
        Err(Flow::Abort) => return End::Abort,
        Err(_) => return End::AfterFlush,
    };

    // Established: apply every complete frame of each read in one lock acquisition.
    let mut frames: Vec<Bytes> = Vec::new();
    loop {
        if outbox.is_blackholed() {
            // A silent network: what the client sends now is never read.
            cancel.cancelled().await;
            return End::Abort;
        }
        let mut bad = None;
        loop {
            match split_frame(&mut buf, max_frame) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        if !frames.is_empty() {
            let flow = {
                let mut st = shared.lock_state();
                let now = shared.now();
                let mut flow = Flow::Continue;
                for f in frames.drain(..) {
                    flow = st.handle_frame(now, conn, f);
                    if flow != Flow::Continue {
                        break;
                    }
                }
                flow
            };
            frames.clear();
            match flow {
                Flow::Continue => {}
                Flow::CloseAfterFlush => return End::AfterFlush,
                Flow::Abort => return End::Abort,
            }
        }
        if let Some(e) = bad {
            debug!(conn, error = %e, "frame length out of range; closing");
            return End::Abort;
        }
        // A client that does not read its replies is not read from either; one that reads
        // nothing for a whole session timeout is dropped.
        let stuck_until = Instant::now() + idle;
        while outbox.queued() > HIGH_WATER && !outbox.is_blackholed() {
            tokio::select! {
                _ = outbox.drained.notified() => {}
                _ = cancel.cancelled() => return End::Abort,
                _ = tokio::time::sleep_until(stuck_until) => {
                    debug!(conn, queued = outbox.queued(), "client reads no replies; closing");
                    return End::Abort;
                }
            }
        }
        if outbox.is_blackholed() {
            continue;
        }
        let more = tokio::select! {
            biased;
            _ = outbox.hush.notified() => continue,
            r = read_more(&mut rd, &mut buf, cancel, Instant::now() + idle) => r,
        };
        match more {
            Ok(true) => {}
            Ok(false) => return End::Abort,
            Err(why) => {
                debug!(conn, why, "connection ended");
                return End::Abort;
            }
        }
    }
}
