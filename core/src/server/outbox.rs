//! [`Outbox`]: a connection's queue of encoded outgoing frames. The server's state fills it while
//! holding the state lock (so every connection sees replies and notifications in apply order);
//! the connection's writer task in [`super::conn`] drains it. It also carries the connection's
//! flow controls: close after flushing, abort, stall, black hole, and the byte cap past which a
//! connection that does not read is dropped; and why the connection ends ([`Ending`]), as first
//! decided by whoever ends it, for the one line the server logs about it.
//!
//! Every byte queued counts until the writer has written it (a batch handed to a client that does
//! not read still counts), against the connection's cap and, through the server's [`Budget`],
//! against the cap on all connections together.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a connection ends: said once, in the one line the server logs about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Refused or dropped for this reason: worth an `info` line.
    Because(Cow<'static, str>),
    /// An ordinary end that another line already reports (the client closed its session) or
    /// that needs none (a four-letter word was answered): logged at `debug`.
    Quietly(&'static str),
}

impl Ending {
    /// Refused or dropped because of `why`.
    pub(crate) fn because(why: impl Into<Cow<'static, str>>) -> Ending {
        Ending::Because(why.into())
    }
}

/// What the writer task should do next.
pub(super) enum Step {
    /// Write these bytes.
    Write(Bytes),
    /// Wait for more (until then, if stalled).
    Wait(Option<Instant>),
    /// Flush, shut the stream down and stop.
    Finish,
    /// Stop at once.
    Abort,
}

/// Bytes queued on all of a server's connections, against a cap.
#[derive(Debug)]
pub(crate) struct Budget {
    queued: AtomicUsize,
    peak: AtomicUsize,
    cap: usize,
}

impl Budget {
    /// An empty budget of `cap` bytes.
    pub(crate) fn new(cap: usize) -> Budget {
        Budget { queued: AtomicUsize::new(0), peak: AtomicUsize::new(0), cap }
    }

    fn add(&self, n: usize) {
        let now = self.queued.fetch_add(n, Ordering::AcqRel) + n;
        if now > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(now, Ordering::AcqRel);
        }
    }

    fn sub(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes queued now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The most bytes ever queued at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Whether more than the cap is queued.
    pub(crate) fn over(&self) -> bool {
        self.queued() > self.cap
    }

    /// Bytes queued beyond the cap.
    pub(crate) fn excess(&self) -> usize {
        self.queued().saturating_sub(self.cap)
    }
}

#[derive(Debug, Default)]
struct OutInner {
    buf: BytesMut,
    /// Bytes handed to the writer and not yet written.
    in_flight: usize,
    /// Write what is queued, then shut the stream down.
    closing: bool,
    /// Stop without writing anything more.
    aborted: bool,
    /// Hold every byte until then.
    stall_until: Option<Instant>,
    /// Silent network: neither read nor write, until the connection is cut.
    blackhole: bool,
    /// Frames queued so far (`sent` in `cons`).
    frames: u64,
    /// Why the connection ends, once someone has decided that it does.
    ending: Option<Ending>,
}

/// A connection's queue of encoded outgoing frames, filled under the state lock and drained by
/// the connection's writer task with one `write_all` per batch.
#[derive(Debug)]
pub(crate) struct Outbox {
    inner: Mutex<OutInner>,
    /// Wakes the writer.
    pub(super) wake: Notify,
    /// Wakes a reader waiting for the queue to drain.
    pub(super) drained: Notify,
    /// Wakes a reader blocked in `read` when the connection is black-holed.
    pub(super) hush: Notify,
    cancel: CancellationToken,
    cap: usize,
    budget: Arc<Budget>,
    /// Server-clock ms when the reader last received bytes.
    heard: AtomicI64,
    /// The reader holds requests and waits for the state lock to apply them.
    waiting: AtomicBool,
    /// `buf.len() + in_flight`, readable without the lock.
    queued: AtomicUsize,
}

impl Outbox {
    /// An empty outbox; `cancel` is the connection's token (fired when the cap is exceeded);
    /// `budget` counts its bytes with every other connection's.
    pub(crate) fn new(cancel: CancellationToken, cap: usize, budget: Arc<Budget>) -> Outbox {
        Outbox {
            inner: Mutex::default(),
            wake: Notify::new(),
            drained: Notify::new(),
            hush: Notify::new(),
            cancel,
            cap,
            budget,
            heard: AtomicI64::new(i64::MIN),
            waiting: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
        }
    }

    /// Says whether the reader is waiting for the state lock with requests in hand.
    pub(crate) fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Ordering::Release);
    }

    /// Whether the reader is waiting for the state lock with requests in hand.
    pub(crate) fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }

    /// Notes that bytes arrived from the client at server-clock `ms`.
    pub(crate) fn heard(&self, ms: i64) {
        self.heard.store(ms, Ordering::Release);
    }

    /// When bytes last arrived from the client (server-clock ms; `i64::MIN` if never).
    pub(crate) fn heard_at(&self) -> i64 {
        self.heard.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, OutInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one or more frames written by `encode`; returns false (and writes nothing) when
    /// the connection is closing. Past the byte cap the connection is dropped.
    pub(crate) fn push(&self, frames: u64, encode: impl FnOnce(&mut BytesMut)) -> bool {
        let mut g = self.lock();
        if g.closing || g.aborted {
            return false;
        }
        let before = g.buf.len();
        encode(&mut g.buf);
        let added = g.buf.len() - before;
        self.budget.add(added);
        g.frames += frames;
        let queued = self.queued.fetch_add(added, Ordering::AcqRel) + added;
        drop(g);
        if queued > self.cap {
            self.abort(Ending::because(format!(
                "{queued} bytes of replies and notifications queued, over the cap of {}: the client does not read",
                self.cap
            )));
        } else {
            self.wake.notify_one();
        }
        true
    }

    /// Takes everything queued (tests read the outbox directly).
    #[cfg(test)]
    pub(crate) fn take_all(&self) -> BytesMut {
        let out = self.lock().buf.split();
        self.queued.fetch_sub(out.len(), Ordering::AcqRel);
        self.budget.sub(out.len());
        out
    }

    /// Whether the connection has been told to close.
    #[cfg(test)]
    pub(crate) fn is_closing(&self) -> bool {
        let g = self.lock();
        g.closing || g.aborted
    }

    /// Bytes waiting to be written (a batch the writer holds included).
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// The writer is done with the batch it took (written or not).
    pub(super) fn written(&self) {
        let mut g = self.lock();
        let n = std::mem::take(&mut g.in_flight);
        self.queued.fetch_sub(n, Ordering::AcqRel);
        drop(g);
        self.budget.sub(n);
    }

    /// Frames queued since the connection opened.
    pub(crate) fn frames(&self) -> u64 {
        self.lock().frames
    }

    /// Records why the connection ends, unless that was decided already (the first reason
    /// stands: it is the cause, later ones are its consequences).
    pub(crate) fn end_because(&self, ending: Ending) {
        self.lock().ending.get_or_insert(ending);
    }

    /// Why the connection ends, if that has been decided.
    pub(crate) fn ending(&self) -> Option<Ending> {
        self.lock().ending.clone()
    }

    /// Writes what is queued, then closes; later pushes are dropped.
    pub(crate) fn close_after_flush(&self, ending: Ending) {
        let mut g = self.lock();
        g.closing = true;
        g.ending.get_or_insert(ending);
        drop(g);
        self.wake.notify_one();
    }

    /// Closes at once, dropping what is queued.
    pub(crate) fn abort(&self, ending: Ending) {
        let mut g = self.lock();
        g.aborted = true;
        let dropped = std::mem::take(&mut g.buf).len();
        self.queued.fetch_sub(dropped, Ordering::AcqRel);
        self.budget.sub(dropped);
        g.ending.get_or_insert(ending);
        drop(g);
        self.wake.notify_one();
        self.cancel.cancel();
    }

    /// Holds outgoing bytes until `until`.
    pub(crate) fn stall(&self, until: Instant) {
        let mut g = self.lock();
        g.stall_until = Some(g.stall_until.map_or(until, |u| u.max(until)));
    }

    /// Starts a silent network: nothing is read or written any more.
    pub(crate) fn blackhole(&self) {
        self.lock().blackhole = true;
        self.drained.notify_one();
        self.hush.notify_one();
    }

    /// Whether the connection is black-holed.
    pub(crate) fn is_blackholed(&self) -> bool {
        self.lock().blackhole
    }

    /// What the writer should do now.
    pub(super) fn next_step(&self, now: Instant) -> Step {
        let mut g = self.lock();
        if g.aborted {
            return Step::Abort;
        }
        if g.blackhole {
            return Step::Wait(None);
        }
        if let Some(until) = g.stall_until {
            if until > now {
                return Step::Wait(Some(until));
            }
            g.stall_until = None;
        }
        if !g.buf.is_empty() {
            let batch = g.buf.split().freeze();
            g.in_flight += batch.len();
            return Step::Write(batch);
        }
        if g.closing {
            return Step::Finish;
        }
        Step::Wait(None)
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let g = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        self.budget.sub(g.buf.len() + g.in_flight);
    }
}
