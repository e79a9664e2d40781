//! Optimistic updates: [`retry_change`] (and [`RetryChange`] to configure it) reads a node,
//! asks a closure for the change, and writes it at the version read, again and again until no
//! one else wrote in between: read-modify-write without a lock, like gozk's `RetryChange`.
//!
//! # The contract, step by step
//! 1. Read the node (data and stat), or see that it does not exist. Any error but `NoNode`
//!    stops here and is returned. (The first attempt of a handle that has written the node
//!    before starts from that write's result instead, saving the read; if the node changed
//!    since, the write fails on its version and the attempt goes on from a read at once:
//!    [`RetryChange::reuse_last_write`].)
//! 2. Call the closure with `Some((data, stat))`, or `None` if the node does not exist. An error
//!    from the closure stops here and is returned; the closure is called again only in step 4.
//! 3. Apply what the closure returned: [`Change::Set`] creates the node (if it did not exist,
//!    with the configured create options) or sets its data at the version read;
//!    [`Change::Delete`] deletes it at the version read; [`Change::Keep`] writes nothing.
//! 4. If the write lost a race (`BadVersion`: someone wrote since the read; `NodeExists`: someone
//!    created it; `NoNode`: someone deleted it), pause (the configured back-off, with jitter)
//!    and go back to step 1. Any other error stops here and is returned.
//! 5. Return what the node holds after the change ([`Changed`]).
//!
//! The closure must therefore be a pure function of what it is given: it can be called several
//! times, and only the call whose change was written counts. It only ever sees committed states.
//!
//! # Exactly once, even when a reply is lost
//! When the connection breaks after the write was sent and before its reply came, the write may
//! or may not have been applied. Retrying blindly could apply a change twice (an increment
//! counted twice); giving up would report a failure for a change that was applied. So each
//! write goes in one transaction with a *marker*: an ephemeral node under the markers directory
//! (by default `<parent>/.conclave-markers`, beside the node, a persistent node created when
//! missing and left in place) into which the write puts the
//! attempt's random id. After the reconnect, the marker says whether the transaction committed:
//! if it holds the attempt's id, the committed result is returned and the closure is not run
//! again; if not, the attempt starts again from step 1. Either way the change is applied
//! exactly once.
//!
//! Cost: none in requests or round trips. The marker is one more operation in the write's own
//! transaction (created the first time, then set). A session keeps one marker per change it
//! runs at once, per markers directory, and reuses them (the pool lives with the session, see
//! [`Client::local`], so one-off [`retry_change`] calls share it too): markers never
//! accumulate, their number is bounded by the session's most changes at once, and they go
//! with the session.
//!
//! Not covered: if the *session* ends while the outcome is unknown (the marker went with it),
//! the call fails with the session's terminal error and the outcome stays unknown, as with any
//! write. Callers whose closure is idempotent (setting a value rather than incrementing it) can
//! turn markers off ([`RetryChange::exactly_once`]) and save the marker's operation (a
//! lighter transaction; the counter benchmark measures the difference).
//!
//! # Hot nodes
//! With many writers on one node, most attempts lose a race. Two options change how:
//! - [`RetryChange::reuse_last_write`] (on by default) starts a change from the handle's own
//!   last write, so a writer that is not challenged needs one round trip per change, and the
//!   node's throughput is close to one write per server commit. It favours the last winner:
//!   calls are spread less evenly among writers.
//! - [`RetryChange::promote_to_lock`] (Curator's `PromotedToLock`) makes a change that keeps
//!   losing queue for a lock, so changes are served in turn: fairer and with a shorter tail,
//!   but each promoted change pays for the lock.
//!
//! The `counter` benchmark (`examples/bench.rs`) measures both beside Curator's
//! `DistributedAtomicLong`.

mod shared;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conclave_core::{path, Client, CreateMode, CreateOptions, Data, Error as ZkError, OpResult, RetryPolicy, Stat};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::internal::ensure_persistent;
use crate::internal::watch;
use crate::wait::Wait;

pub use shared::{BigEndianI32, Codec, Raw, SharedCount, SharedValue, Versioned};

/// What a [`retry_change`] closure asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set the node's data (creating the node if it does not exist).
    Set(Bytes),
    /// Delete the node (nothing if it does not exist).
    Delete,
    /// Write nothing: the node stays as read.
    Keep,
}

impl Change {
    /// [`Change::Set`] of `data`.
    pub fn set(data: impl Into<Data>) -> Change {
        Change::Set(data.into().into_bytes())
    }
}

/// What the node holds after a [`retry_change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The node's data after the change; `None` if it was deleted (or was missing and kept so).
    pub data: Option<Bytes>,
    /// The node's stat right after the change; `None` if it was deleted, or if the change's
    /// reply was lost and the node has been written again since (its data is then `data`'s
    /// successor, and the stat of the change itself is gone).
    pub stat: Option<Stat>,
    /// Whether the change wrote anything (`false` for [`Change::Keep`], and for
    /// [`Change::Delete`] of a node that did not exist).
    pub written: bool,
    /// How many times the closure was called (1 without a lost race, or 2 where the change
    /// started from this handle's last write and someone else had written since).
    pub attempts: u32,
    /// Whether the written attempt's reply was lost and its marker showed, after the reconnect,
    /// that it had committed (the exactly-once case; never without markers).
    pub settled: bool,
}

/// Changes the node at `path` with `change`, retrying lost races (see the [module docs](self)):
/// [`RetryChange::new`]`(client, path).run(change)` with the defaults (exactly once, a
/// 1 ms to 100 ms back-off between attempts, no time limit).
///
/// # Errors
/// The closure's error; `E::from` of the client's error (`NoAuth`, `InvalidPath`, the session's
/// terminal error, ...).
pub async fn retry_change<E, F>(client: &Client, path: &str, change: F) -> std::result::Result<Changed, E>
where
    F: FnMut(Option<(&[u8], &Stat)>) -> std::result::Result<Change, E>,
    E: From<Error>,
{
    RetryChange::new(client.clone(), path).run(change).await
}

/// A configured [`retry_change`].
#[derive(Debug, Clone)]
pub struct RetryChange {
    client: Client,
    path: String,
    exactly_once: bool,
    markers_at: Option<String>,
    create: CreateOptions,
    backoff: RetryPolicy,
    /// The session's markers in this handle's markers directory, one per change run at once,
    /// reused (shared by every handle on the session and the directory).
    markers: Markers,
    /// Whether a change starts from the node as this handle last wrote it.
    reuse: bool,
    /// The node as this handle last wrote it, and whether to start from it (shared by clones).
    last: Arc<std::sync::Mutex<LastWrite>>,
    /// The lock a change takes after so many lost races, if any.
    promotion: Option<(String, u32)>,
}

/// The default directory of markers, beside the node.
const MARKERS: &str = ".conclave-markers";

impl RetryChange {
    /// Changes of the node at `path`, exactly once, created persistent when missing, with a
    /// back-off of 1 ms doubling up to 100 ms (with jitter) between attempts.
    pub fn new(client: Client, path: &str) -> RetryChange {
        let markers = Markers::of(&client, &default_markers_dir(path));
        RetryChange {
            client,
            path: path.to_string(),
            exactly_once: true,
            markers_at: None,
            create: CreateOptions::new(CreateMode::Persistent),
            backoff: RetryPolicy::exponential(Duration::from_millis(1), Duration::from_millis(100)),
            markers,
            reuse: true,
            last: Arc::default(),
            promotion: None,
        }
    }

    /// Whether each write carries a marker (the default): without it, a change whose reply was
    /// lost is retried from step 1 and may be applied twice (fine for an idempotent closure),
    /// and each write is one operation lighter.
    pub fn exactly_once(mut self, on: bool) -> RetryChange {
        self.exactly_once = on;
        self
    }

    /// Where the markers go (default `<parent>/.conclave-markers`), created when missing.
    pub fn markers(mut self, dir: &str) -> RetryChange {
        self.markers_at = Some(dir.to_string());
        self.markers = Markers::of(&self.client, dir);
        self
    }

    /// Whether a change starts from the node as this handle last wrote it (the default), rather
    /// than from a read. If no one else wrote since, the change costs one round trip instead of
    /// two; if someone did, its write fails on the version, and the change goes on from a read
    /// at once (no back-off: that was no lost race), having cost one refused write. After such
    /// a miss the handle's changes read first again (unless one follows the last write sooner
    /// than that write took: a writer in a loop), until a read finds the node as the handle's
    /// last change left it: among writers that change the node between this handle's changes,
    /// a miss costs one refused write now and then, not one per change. The closure
    /// may thus be called with a state that is no longer the node's, but only ever with one that
    /// was committed, and only a change written at that state's version counts. A
    /// [`Change::Keep`] decided on such a state is checked against a read before it is
    /// returned.
    pub fn reuse_last_write(mut self, on: bool) -> RetryChange {
        self.reuse = on;
        self
    }

    /// How the node is created when a change finds it missing (default persistent).
    pub fn create_options(mut self, options: impl Into<CreateOptions>) -> RetryChange {
        self.create = options.into();
        self
    }

    /// The pause between attempts after a lost race (its retry limits apply too).
    pub fn backoff(mut self, policy: RetryPolicy) -> RetryChange {
        self.backoff = policy;
        self
    }

    /// Promoted to a lock, like Curator's `PromotedToLock`: a change that has lost `after` races
    /// (0: every change, from its first attempt) takes the [`Mutex`](crate::lock::Mutex) at
    /// `lock_path` (Curator's `InterProcessMutex` layout, so Java counters promoted to the same
    /// lock path queue with ours) and makes its further attempts holding it. For a hot node:
    /// the changes that keep losing queue in turn (first come, first served) instead of racing
    /// on, which bounds how long a change can lose. Holders still write at the version read
    /// (writers that do not take the lock may still win a race), and release the lock as soon
    /// as the change is written (in the background). The lock's wait counts against the call's
    /// [`Wait`]; the lock costs three requests (two round trips: create with listing, delete).
    ///
    /// It also turns [`RetryChange::reuse_last_write`] off (turn it on again after this call
    /// if wanted): a writer that starts from its own last write wins race after race while the
    /// others are at their reads, and the lock's queue would wait behind it (measured with 8
    /// writers: the slowest change took 1.6 s with it on, 63 ms with it off).
    pub fn promote_to_lock(mut self, lock_path: &str, after: u32) -> RetryChange {
        self.promotion = Some((lock_path.to_string(), after));
        self.reuse = false;
        self
    }

    fn markers_dir(&self) -> String {
        match &self.markers_at {
            Some(dir) => dir.clone(),
            None => default_markers_dir(&self.path),
        }
    }

    /// The node as this handle last wrote it, if it knows and is to start from it.
    fn last_written(&self) -> Option<(Bytes, Stat)> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.state.clone().filter(|_| self.reuse && (last.trusted || last.fresh()))
    }

    /// Updates what this handle knows of its last write with `f`.
    fn last_write(&self, f: impl FnOnce(&mut LastWrite)) {
        f(&mut self.last.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Runs the change until it is written (or kept), with no time limit.
    ///
    /// # Errors
    /// As [`retry_change`]; `E::from(Error::Zk(BadVersion))` (or the race's own code) if the
    /// back-off's retry limits are reached.
    pub async fn run<E, F>(&self, change: F) -> std::result::Result<Changed, E>
    where
        F: FnMut(Option<(&[u8], &Stat)>) -> std::result::Result<Change, E>,
        E: From<Error>,
    {
        let done = self.run_with(Wait::forever(), change).await?;
        Ok(done.expect("an unbounded change only ends with its result"))
    }

    /// Runs the change within `wait`'s limits, which are checked between attempts (an attempt
    /// in progress always finishes, so a written change is always reported): `None` if they
    /// were reached first, with nothing written.
    ///
    /// # Errors
    /// As [`RetryChange::run`].
    pub async fn run_with<E, F>(&self, wait: Wait, mut change: F) -> std::result::Result<Option<Changed>, E>
    where
        F: FnMut(Option<(&[u8], &Stat)>) -> std::result::Result<Change, E>,
        E: From<Error>,
    {
        path::validate_path(&self.path).map_err(|e| E::from(e.into()))?;
        let bound = wait.start();
        let start = Instant::now();
        let mut attempts = 0u32;
        let mut races = 0u32;
        // The first attempt may start from the node as this handle last wrote it.
        let mut guess = self.last_written();
        // The lock, once the change is promoted to it (released when the change returns).
        let mut lock = None;
        loop {
            if let Some((lock_path, after)) = &self.promotion {
                if lock.is_none() && races >= *after {
                    let mutex = crate::lock::Mutex::new(self.client.clone(), lock_path);
                    match mutex.lock_with(bound.rest()).await.map_err(E::from)? {
                        Some(guard) => lock = Some(guard),
                        None => return Ok(None),
                    }
                }
            }
            attempts += 1;
            let guessed = guess.is_some();
            let current = match guess.take() {
                Some(state) => Some(state),
                None => {
                    let read = self.read().await.map_err(E::from)?;
                    self.last_write(|last| last.read(read.as_ref()));
                    read
                }
            };
            let wanted = change(current.as_ref().map(|(d, s)| (&d[..], s)))?;
            if guessed && wanted == Change::Keep {
                // Nothing to write would show whether the state is still the node's: read.
                continue;
            }
            let sent = Instant::now();
            let outcome = self.write(current.as_ref(), &wanted).await.map_err(E::from)?;
            match outcome {
                Written::Done(data, stat, settled) => {
                    let written = !matches!((&wanted, &current), (Change::Keep, _) | (Change::Delete, None));
                    if written {
                        self.last_write(|last| last.wrote(data.clone().zip(stat), sent));
                    }
                    return Ok(Some(Changed { data, stat, written, attempts, settled }));
                }
                Written::Race(_) if guessed => {
                    // Someone else wrote since this handle did: on from a read, at once.
                    self.last_write(LastWrite::stale);
                }
                Written::Race(e) => {
                    self.last_write(|last| last.state = None);
                    races += 1;
                    let Some(pause) = self.backoff.next_pause(races, start.elapsed()) else {
                        return Err(E::from(e.into()));
                    };
                    if bound.once() {
                        return Ok(None);
                    }
                    tokio::select! {
                        biased;
                        () = bound.over() => return Ok(None),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// Step 1: the node's data and stat, or `None`; connection losses are ridden out.
    async fn read(&self) -> Result<Option<(Bytes, Stat)>> {
        let (client, node) = (&self.client, self.path.as_str());
        watch::answered(client, || async move {
            match client.get_data(node).await {
                Ok(found) => Ok(Some(found)),
                Err(ZkError::NoNode) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Step 3 for one attempt: the write (with its marker), settled across connection losses.
    async fn write(&self, read: Option<&(Bytes, Stat)>, wanted: &Change) -> Result<Written> {
        let (client, node) = (&self.client, self.path.as_str());
        let (op, data): (Op, Option<Bytes>) = match (wanted, read) {
            // Kept: the node as read (the state the closure decided on).
            (Change::Keep, Some((data, stat))) => return Ok(Written::Done(Some(data.clone()), Some(*stat), false)),
            (Change::Keep, None) | (Change::Delete, None) => return Ok(Written::Done(None, None, false)),
            (Change::Set(data), Some((_, stat))) => (Op::Set(stat.version), Some(data.clone())),
            (Change::Set(data), None) => (Op::Create, Some(data.clone())),
            (Change::Delete, Some((_, stat))) => (Op::Delete(stat.version), None),
        };
        // This attempt's id, written into the marker with the change.
        let attempt = Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let mut marker = self.exactly_once.then(|| self.markers.take(&self.markers_dir()));
        let (mut made_markers_dir, mut made_parents) = (false, false);
        loop {
            let txn = client.transaction();
            let txn = match (&op, &data) {
                (Op::Set(version), Some(d)) => txn.set_data(node, d.clone(), Some(*version)),
                (Op::Create, Some(d)) => txn.create(node, d.clone(), self.create.clone()),
                (Op::Delete(version), _) => txn.delete(node, Some(*version)),
                (_, None) => unreachable!("sets and creates carry data"),
            };
            let txn = match marker.as_mut() {
                Some(m) => m.mark(txn, attempt.clone()),
                None => txn,
            };
            match txn.commit().await {
                Ok(results) => {
                    if let Some(m) = marker.as_mut() {
                        m.set(MarkerState::Present);
                    }
                    let stat = match results.first() {
                        Some(OpResult::SetData { stat }) => Some(*stat),
                        Some(OpResult::Create { stat, .. }) => match stat {
                            Some(stat) => Some(*stat),
                            None => self.stat_if_version(0).await?,
                        },
                        _ => None,
                    };
                    return Ok(Written::Done(data, stat, false));
                }
                Err(ZkError::MultiFailed { index: 0, source })
                    if matches!(op, Op::Create) && *source == ZkError::NoNode && !made_parents =>
                {
                    // The node's parent is missing: make it (and its own), then the same write.
                    made_parents = true;
                    marker.as_mut().into_iter().for_each(Marker::rolled_back);
                    if let Some(parent) = path::parent(node).filter(|p| *p != "/") {
                        ensure_persistent(client, parent).await?;
                    }
                }
                Err(ZkError::MultiFailed { index: 0, source }) => {
                    marker.as_mut().into_iter().for_each(Marker::rolled_back);
                    match *source {
                        e @ (ZkError::BadVersion | ZkError::NodeExists | ZkError::NoNode) => {
                            return Ok(Written::Race(e))
                        }
                        e => return Err(e.into()),
                    }
                }
                Err(ZkError::MultiFailed { index: 1, source }) if marker.is_some() => {
                    let m = marker.as_mut().expect("a marker");
                    match (*source, m.state) {
                        // The marker is there already (an earlier attempt's fate was unknown).
                        (ZkError::NodeExists, _) => m.set(MarkerState::Present),
                        // Gone (its session's end would have ended this call): create it.
                        (ZkError::NoNode, MarkerState::Present) => m.set(MarkerState::Absent),
                        // The markers directory is missing: make it, then the same write.
                        (ZkError::NoNode, _) if !made_markers_dir => {
                            made_markers_dir = true;
                            m.set(MarkerState::Absent);
                            ensure_persistent(client, &self.markers_dir()).await?;
                        }
                        (e, _) => return Err(e.into()),
                    }
                }
                Err(ZkError::MultiFailed { source, .. }) => return Err((*source).into()),
                Err(e) if e.is_retryable() => {
                    client.wait_connected().await?;
                    let Some(m) = marker.as_mut() else {
                        // Without a marker the outcome stays unknown: start the attempt again.
                        return Ok(Written::Race(e));
                    };
                    // The marker holds this attempt's id if, and only if, the write committed.
                    let held = watch::answered(client, || async {
                        match client.get_data(&m.path).await {
                            Ok((data, _)) => Ok(Some(data)),
                            Err(ZkError::NoNode) => Ok(None),
                            Err(e) => Err(e.into()),
                        }
                    })
                    .await?;
                    m.set(if held.is_some() { MarkerState::Present } else { MarkerState::Absent });
                    if held != Some(attempt.clone()) {
                        // Not applied: the attempt starts again from the read.
                        return Ok(Written::Race(e));
                    }
                    let expected = match op {
                        Op::Set(version) => Some(version.wrapping_add(1)),
                        Op::Create => Some(0),
                        Op::Delete(_) => None,
                    };
                    let stat = match expected {
                        Some(version) => self.stat_if_version(version).await?,
                        None => None,
                    };
                    return Ok(Written::Done(data, stat, true));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The node's stat if it is still at `version` (its state right after our change).
    async fn stat_if_version(&self, version: i32) -> Result<Option<Stat>> {
        let (client, node) = (&self.client, self.path.as_str());
        watch::answered(client, || async move {
            match client.exists(node).await {
                Ok(Some(stat)) if stat.version == version => Ok(Some(stat)),
                Ok(_) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

/// What a handle knows of its last write, for [`RetryChange::reuse_last_write`].
#[derive(Debug)]
struct LastWrite {
    /// The node as the handle's last change left it, while that may still be the node's.
    state: Option<(Bytes, Stat)>,
    /// Whether to start from it: not after a change that did so found the node changed, until
    /// a read finds the node as the handle's last change left it again (so a handle among
    /// writers that change the node between its changes reads first, as without the option).
    trusted: bool,
    /// When the last write was sent and when its reply came: a change that follows it sooner
    /// than that write took starts from it even when not trusted (a writer in a loop).
    sent: Instant,
    answered: Instant,
}

impl Default for LastWrite {
    fn default() -> LastWrite {
        let now = Instant::now();
        LastWrite { state: None, trusted: true, sent: now, answered: now }
    }
}

impl LastWrite {
    /// The node as a write sent at `sent` just left it.
    fn wrote(&mut self, state: Option<(Bytes, Stat)>, sent: Instant) {
        self.state = state;
        (self.sent, self.answered) = (sent, Instant::now());
    }

    /// Whether the last write was answered less than its own round trip ago.
    fn fresh(&self) -> bool {
        self.answered.elapsed() <= self.answered - self.sent
    }

    /// A change started from the last write found the node changed.
    fn stale(&mut self) {
        self.state = None;
        self.trusted = false;
    }

    /// A read found `node`: if it is still as the last write left it, starting from the last
    /// write would have been right.
    fn read(&mut self, node: Option<&(Bytes, Stat)>) {
        match (&self.state, node) {
            (Some((_, mine)), Some((_, now))) if mine.mzxid == now.mzxid => self.trusted = true,
            _ => self.state = None,
        }
    }
}

/// The default markers directory of the node at `node`: `.conclave-markers` beside it.
fn default_markers_dir(node: &str) -> String {
    path::join(path::parent(node).unwrap_or("/"), MARKERS)
}

/// A session's pools of markers, one per markers directory, kept with the session
/// ([`Client::local`]) so that every handle on it (and every call of [`retry_change`], which
/// makes a handle per call) reuses the markers its earlier changes left.
#[derive(Debug, Default)]
struct MarkerPools(std::sync::Mutex<std::collections::HashMap<String, Markers>>);

/// A pool of markers: ephemeral nodes `<markers dir>/<uuid>`, each used by one change at a time
/// and reused by the next, so a change costs no request of its own for its marker.
#[derive(Debug, Clone, Default)]
struct Markers {
    free: Arc<std::sync::Mutex<Vec<(String, MarkerState)>>>,
}

impl Markers {
    /// The pool of `client`'s session for the markers directory `dir`.
    fn of(client: &Client, dir: &str) -> Markers {
        let pools = client.local::<MarkerPools>();
        let mut pools = pools.0.lock().unwrap_or_else(|e| e.into_inner());
        pools.entry(dir.to_string()).or_default().clone()
    }

    /// A marker for one change: a free one, or a new name (created by the change's write).
    fn take(&self, dir: &str) -> Marker {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (path, state) =
            free.unwrap_or_else(|| (path::join(dir, &uuid::Uuid::new_v4().simple().to_string()), MarkerState::Absent));
        Marker { pool: self.free.clone(), path, state, previous: state }
    }
}

/// What a change knows of its marker node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerState {
    /// Not created yet: the write creates it.
    Absent,
    /// There: the write sets its data.
    Present,
    /// Unknown (a write in flight when the change was dropped): the next write creates it, and
    /// learns from `NodeExists` that it is there.
    Unknown,
}

/// One change's marker; back in its pool when dropped, with what is known of it.
struct Marker {
    pool: Arc<std::sync::Mutex<Vec<(String, MarkerState)>>>,
    path: String,
    state: MarkerState,
    /// The state before the write in flight.
    previous: MarkerState,
}

impl Marker {
    /// `txn` with this marker written: created or set, holding `attempt`. Until the outcome is
    /// known, the marker's state is unknown.
    fn mark(&mut self, txn: conclave_core::Transaction, attempt: Bytes) -> conclave_core::Transaction {
        let txn = match self.state {
            MarkerState::Present => txn.set_data(&self.path, attempt, None),
            MarkerState::Absent | MarkerState::Unknown => txn.create(&self.path, attempt, CreateMode::Ephemeral),
        };
        self.previous = self.state;
        self.state = MarkerState::Unknown;
        txn
    }

    /// The transaction failed before the marker's op: it is as it was.
    fn rolled_back(&mut self) {
        self.state = self.previous;
    }

    fn set(&mut self, state: MarkerState) {
        self.state = state;
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let entry = (std::mem::take(&mut self.path), self.state);
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }
}

/// The write of one attempt.
enum Op {
    /// setData at this version.
    Set(i32),
    /// create.
    Create,
    /// delete at this version.
    Delete(i32),
}

/// How one attempt's write ended.
enum Written {
    /// Applied (or kept), with the data and, when known, the stat after it; and whether that
    /// was learnt from the marker after the reply was lost.
    Done(Option<Bytes>, Option<Stat>, bool),
    /// Lost a race (or, without markers, its outcome was lost): try again from the read.
    Race(ZkError),
}

/// A 64-bit counter in one node, interoperable with Curator's `DistributedAtomicLong`: the value
/// is 8 bytes, big-endian, and a missing or empty node counts as 0. Every update is a
/// [`retry_change`] (so exactly once by default, see the [module docs](self)), and reports the
/// value before and after it ([`Updated`]). Arithmetic wraps, as Java's does.
///
/// ```no_run
/// # async fn demo(client: conclave::Client) -> conclave::Result<()> {
/// use conclave::atomic::Counter;
///
/// let hits = Counter::new(client, "/stats/hits");
/// let updated = hits.increment().await?;
/// println!("{} -> {}", updated.pre, updated.post);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Counter {
    change: RetryChange,
}

/// A counter's value before and after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Updated {
    /// The value the update was applied to.
    pub pre: i64,
    /// The value after it.
    pub post: i64,
}

impl Counter {
    /// The counter at `path` (created, with its parents, by the first update).
    pub fn new(client: Client, path: &str) -> Counter {
        Counter { change: RetryChange::new(client, path) }
    }

    /// The counter with updates configured by `change` (markers, back-off, create options), for
    /// its path.
    pub fn with(change: RetryChange) -> Counter {
        Counter { change }
    }

    /// Whether updates carry a marker (the default; see [`RetryChange::exactly_once`]). Without
    /// it an update whose reply was lost may be applied twice.
    pub fn exactly_once(self, on: bool) -> Counter {
        Counter { change: self.change.exactly_once(on) }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.change.path
    }

    /// The current value (0 if the node does not exist).
    ///
    /// # Errors
    /// `InvalidArgument` if the node's data is not a counter (neither empty nor 8 bytes); the
    /// client's errors (connection losses are ridden out).
    pub async fn get(&self) -> Result<i64> {
        path::validate_path(self.path())?;
        match self.change.read().await? {
            Some((data, _)) => decode(self.path(), &data),
            None => Ok(0),
        }
    }

    /// Adds `delta` (negative to subtract), exactly once.
    ///
    /// # Errors
    /// As [`Counter::get`]; the session's terminal error if it ended with the update's outcome
    /// unknown.
    pub async fn add(&self, delta: i64) -> Result<Updated> {
        let updated = self.update(|pre| Some(pre.wrapping_add(delta))).await?;
        Ok(updated.expect("an addition always writes"))
    }

    /// Adds 1.
    ///
    /// # Errors
    /// As [`Counter::add`].
    pub async fn increment(&self) -> Result<Updated> {
        self.add(1).await
    }

    /// Subtracts 1.
    ///
    /// # Errors
    /// As [`Counter::add`].
    pub async fn decrement(&self) -> Result<Updated> {
        self.add(-1).await
    }

    /// Sets `new` if the value is `expected`: `Some` with the update if it was, `None` (nothing
    /// written) if it was not. A missing or empty node is 0 here too (Curator's
    /// `compareAndSet` compares bytes, so its `compareAndSet(0, _)` fails on such a node).
    ///
    /// # Errors
    /// As [`Counter::add`].
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<Option<Updated>> {
        self.update(|pre| (pre == expected).then_some(new)).await
    }

    /// Sets `new` in one optimistic attempt: `None` if someone else wrote between its read and
    /// its write (nothing written). A start from the handle's last write that finds the node
    /// changed is not that attempt: the read follows it (see [`RetryChange::reuse_last_write`]).
    ///
    /// # Errors
    /// As [`Counter::add`].
    pub async fn try_set(&self, new: i64) -> Result<Option<Updated>> {
        let once = Counter { change: self.change.clone().backoff(RetryPolicy::never()) };
        match once.update(|_| Some(new)).await {
            Err(Error::Zk(ZkError::BadVersion | ZkError::NodeExists | ZkError::NoNode)) => Ok(None),
            other => other,
        }
    }

    /// Sets `new` whatever the value, retrying lost races until it is written.
    ///
    /// # Errors
    /// As [`Counter::add`].
    pub async fn force_set(&self, new: i64) -> Result<Updated> {
        let updated = self.update(|_| Some(new)).await?;
        Ok(updated.expect("a forced set always writes"))
    }

    /// One update: `next` maps the value read to the one to write (`None`: write nothing).
    async fn update(&self, mut next: impl FnMut(i64) -> Option<i64>) -> Result<Option<Updated>> {
        let path = self.path().to_string();
        let mut last = None;
        let changed = self
            .change
            .run(|current| {
                let pre = match current {
                    Some((data, _)) => decode(&path, data)?,
                    None => 0,
                };
                let post = next(pre);
                last = Some((pre, post));
                Ok::<_, Error>(match post {
                    Some(post) => Change::Set(Bytes::copy_from_slice(&post.to_be_bytes())),
                    None => Change::Keep,
                })
            })
            .await?;
        Ok(match last {
            Some((pre, Some(post))) if changed.written => Some(Updated { pre, post }),
            _ => None,
        })
    }
}

/// A counter's value from its node's data: 8 bytes big-endian, or empty for 0.
fn decode(path: &str, data: &[u8]) -> Result<i64> {
    match data.len() {
        0 => Ok(0),
        8 => Ok(i64::from_be_bytes(data.try_into().expect("8 bytes"))),
        n => Err(ZkError::InvalidArgument(format!("{path}: {n} bytes of data, not an 8-byte counter")).into()),
    }
}
