//! The cache's task: one per cache, the only writer of its mirror.
//!
//! It adds a persistent recursive watch on the root, then *walks* the subtree: a read of the
//! root's data, a listing of every node the data read says has children, a data read of every
//! child listed, all pipelined. Events only make it read the node again. Every read goes into
//! one ordered pipeline and is applied in the order it was sent, which on one session is the order
//! the server answered: so a read is never applied after a later one, and the mirror never goes
//! back in time (events are not applied directly, because a reply and an event racing to the
//! task could otherwise be applied in the wrong order).
//!
//! A walk is made at the start (the first load: done when every read it sent was answered),
//! after every reconnection (persistent watches have no catch-up: what changed while away is
//! found only by reading again) and on a new session after an expiry. After the first load a
//! walk's events are held back and released behind a [`CacheEvent::Resynced`] once it is done;
//! a reconnection during a walk starts a new one, which carries the held events on. A read that
//! met a connection loss is not retried by itself: the reconnection's walk reads everything
//! again. A read that timed out on a live connection (`OperationTimeout`) is sent again.
//!
//! Where the server has no persistent watches (it answers `addWatch` with `UNIMPLEMENTED`), or
//! when asked to ([`WatchMode::OneShot`](super::WatchMode)), every read leaves a one-shot watch
//! instead: a data watch on each node, a child watch on each node whose children are cached.
//! A fired watch makes the task read again (re-arming it); a child watch lists the node and
//! reads the children that are new. The reads and their order are the same; only the source of
//! the reasons to read changes (and memory: two watchers per node).
//!
//! At most [`IN_FLIGHT`] reads are sent at a time; the others wait, in order, as a few bytes
//! each (a request future weighs about 2 KiB, and a walk of a large tree asks for one read per
//! node at once). Replies come back in the order the reads were sent, so only the oldest one is
//! polled.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use bytes::Bytes;
use conclave_core::OneshotWatcher;
use conclave_core::{
    AddWatchMode, Client, ConnectionState, ConnectionStateStream, Error as ZkError, EventType, PersistentWatcher,
    SessionState, Stat, WatchedEvent,
};
use futures::future::{AbortHandle, Abortable, BoxFuture, FutureExt};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::mirror::{child_path, relative, Applied, Out};
use super::{CacheEvent, Filter, Shared, Status, WatchMode};
use crate::error::Error;

/// A cache's settings, as the task needs them.
pub(super) struct Config {
    pub(super) path: String,
    pub(super) max_depth: Option<usize>,
    pub(super) filter: Option<Filter>,
    pub(super) rebuild_after_expiry: bool,
    pub(super) watch: WatchMode,
}

/// What the handles ask of the task.
#[derive(Debug)]
pub(super) enum Command {
    /// Answer `true` once every change before this command is applied and no walk is in
    /// progress (`false`: something got in the way, ask again).
    Fence(oneshot::Sender<bool>),
}

/// An answered read, with what it was for (and, with one-shot watches, the watch it left).
enum Reply {
    Data {
        path: String,
        walk: Option<u64>,
        result: Result<(Bytes, Stat, Option<OneshotWatcher>), ZkError>,
    },
    Children {
        path: String,
        walk: Option<u64>,
        result: Result<(Vec<String>, Option<OneshotWatcher>), ZkError>,
    },
    /// One-shot mode: the root is missing; this watch fires when it is created.
    Exists {
        path: String,
        result: Result<(Option<Stat>, OneshotWatcher), ZkError>,
    },
    Fence {
        second: bool,
        done: oneshot::Sender<bool>,
        result: Result<Option<Stat>, ZkError>,
    },
}

/// A read to send (in order, when there is room in the pipeline).
enum Read {
    Data { path: String, walk: Option<u64> },
    Children { path: String, walk: Option<u64> },
    Exists { path: String },
    Fence { second: bool, done: oneshot::Sender<bool> },
}

/// How many reads are in flight at most.
pub(super) const IN_FLIGHT: usize = 1000;

/// The reads in flight, oldest first, and those waiting to be sent.
#[derive(Default)]
struct Pipeline {
    sent: VecDeque<BoxFuture<'static, Reply>>,
    waiting: VecDeque<Read>,
}

impl Pipeline {
    fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// The oldest read's reply (replies come in the order the reads were sent).
    async fn next(&mut self) -> Reply {
        std::future::poll_fn(|cx| match self.sent.front_mut() {
            Some(oldest) => match oldest.poll_unpin(cx) {
                Poll::Ready(reply) => {
                    self.sent.pop_front();
                    Poll::Ready(reply)
                }
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        })
        .await
    }

    /// Gives back the memory of a burst once everything is answered.
    fn shrink(&mut self) {
        if self.sent.is_empty() && self.waiting.is_empty() {
            self.sent.shrink_to(IN_FLIGHT.min(64));
            self.waiting.shrink_to(64);
        }
    }
}

/// A one-shot watch that fired (or was replaced: `event` is `None`).
struct Fired {
    key: (String, bool),
    id: u64,
    event: Option<conclave_core::Result<WatchedEvent>>,
}

/// A walk in progress.
#[derive(Default)]
struct Walk {
    generation: u64,
    /// Reads of this walk not answered yet.
    outstanding: usize,
    /// One of its reads met a connection loss: a reconnection's walk takes over.
    failed: bool,
    /// After the first load: its events are held back until it is done.
    resync: bool,
    missed: bool,
    /// For nodes whose `cversion` shows unseen child changes: how many, to compare with what
    /// the listing finds.
    unseen: HashMap<String, i32>,
    record: bool,
    held: Vec<CacheEvent>,
}

/// Why the task stops following its session.
enum Interrupt {
    /// The session ended with this.
    Ended(ZkError),
    /// The watch was removed (`removeWatches` on the client): add it again and re-read.
    Rewatch,
    /// Every handle is gone.
    Stop,
}

impl From<ZkError> for Interrupt {
    fn from(e: ZkError) -> Self {
        Interrupt::Ended(e)
    }
}

struct Engine {
    config: Config,
    client: Client,
    shared: Arc<Mutex<Shared>>,
    status: watch::Sender<Status>,
    pipeline: Pipeline,
    generation: u64,
    walk: Option<Walk>,
    /// The next walk follows a time without a watch (a new session, a removed watch): states
    /// may have been skipped.
    renewed: bool,
    /// Kept by one-shot watches (asked for, or the server has no persistent ones).
    one_shot: bool,
    /// One-shot mode: the watch armed per (path, child watch), to replace it when the node is
    /// read again (so each node has at most one of each).
    armed: HashMap<(String, bool), (u64, AbortHandle)>,
    fired: FuturesUnordered<BoxFuture<'static, Fired>>,
    armings: u64,
}

/// The task: follows the session (and its successors) until the cache is dropped or its
/// session ends for good.
pub(super) async fn run(
    config: Config,
    client: Client,
    shared: Arc<Mutex<Shared>>,
    status: watch::Sender<Status>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut engine = Engine {
        config,
        client,
        shared,
        status,
        pipeline: Pipeline::default(),
        generation: 0,
        walk: None,
        renewed: false,
        one_shot: false,
        armed: HashMap::new(),
        fired: FuturesUnordered::new(),
        armings: 0,
    };
    engine.one_shot = engine.config.watch == WatchMode::OneShot;
    loop {
        let ended = match engine.follow(&mut commands).await {
            Interrupt::Stop => return,
            Interrupt::Rewatch => {
                // Changes between the watch's removal and its return were not heard of.
                engine.renewed = true;
                continue;
            }
            Interrupt::Ended(e) => e,
        };
        if ended != ZkError::SessionExpired || !engine.config.rebuild_after_expiry {
            engine.end(ended.into());
            return;
        }
        engine.renew().await;
    }
}

impl Engine {
    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One watch on the current session: add it, walk, and apply until interrupted.
    async fn follow(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> Interrupt {
        // Answers and watches of an earlier watch or session are of no use now: the walk reads
        // everything again.
        self.pipeline = Pipeline::default();
        self.armed.clear();
        self.fired = FuturesUnordered::new();
        let mut watcher = None;
        if !self.one_shot {
            let mode = match self.config.max_depth {
                Some(0) => AddWatchMode::Persistent,
                _ => AddWatchMode::PersistentRecursive,
            };
            match add_watch(self.client.clone(), self.config.path.clone(), mode).await {
                Ok(w) => watcher = Some(w),
                Err(ZkError::Unimplemented) if self.config.watch == WatchMode::Auto => {
                    tracing::info!(path = %self.config.path, "the server has no persistent watches: the cache uses one-shot watches");
                    self.one_shot = true;
                }
                Err(e) => return e.into(),
            }
        }
        let mut states = self.client.connection_states();
        // The condition at subscription (the walk below reads after it anyway).
        let _ = tokio::task::unconstrained(states.next()).now_or_never();
        self.start_walk();
        loop {
            let step = tokio::select! {
                biased;
                state = states.next() => self.on_state(state),
                event = next_event(&mut watcher) => self.on_event(event),
                Some(fired) = self.fired.next(), if !self.fired.is_empty() => self.on_fired(fired),
                reply = self.pipeline.next(), if !self.pipeline.is_empty() => {
                    let step = self.on_reply(reply, &mut watcher, &mut states);
                    self.refill();
                    step
                }
                command = commands.recv() => match command {
                    Some(Command::Fence(done)) => {
                        self.fence(false, done);
                        Ok(())
                    }
                    None => Err(Interrupt::Stop),
                },
            };
            if let Err(interrupt) = step {
                return interrupt;
            }
        }
    }

    /// The session's terminal error, once its streams have ended.
    fn terminal(&self) -> ZkError {
        match self.client.state() {
            SessionState::Expired => ZkError::SessionExpired,
            SessionState::AuthFailed => ZkError::AuthFailed,
            SessionState::Moved => ZkError::SessionMoved,
            _ => ZkError::Closed,
        }
    }

    fn on_state(&mut self, state: Option<ConnectionState>) -> Result<(), Interrupt> {
        match state {
            Some(ConnectionState::Reconnected | ConnectionState::ReadOnly) => {
                self.start_walk();
                Ok(())
            }
            Some(_) => Ok(()),
            None => Err(self.terminal().into()),
        }
    }

    fn on_event(&mut self, event: Option<conclave_core::Result<WatchedEvent>>) -> Result<(), Interrupt> {
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(self.terminal().into()),
        };
        match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged | EventType::NodeDeleted
                if self.in_scope(&event.path) =>
            {
                self.read_data(event.path, None)
            }
            EventType::NodeChildrenChanged
                if self.one_shot && self.in_scope(&event.path) && self.lists_children(&event.path) =>
            {
                self.list(event.path, None)
            }
            EventType::PersistentWatchRemoved if !self.one_shot => return Err(Interrupt::Rewatch),
            _ => {}
        }
        Ok(())
    }

    /// One-shot mode: a watch fired (or was replaced by a newer one).
    fn on_fired(&mut self, fired: Fired) -> Result<(), Interrupt> {
        if self.armed.get(&fired.key).is_some_and(|(id, _)| *id == fired.id) {
            self.armed.remove(&fired.key);
        }
        match fired.event {
            None => Ok(()),
            event => self.on_event(event),
        }
    }

    /// One-shot mode: keeps `watcher` as the watch of `path` (its data, or its children),
    /// replacing the one it had.
    fn arm(&mut self, path: String, children: bool, watcher: OneshotWatcher) {
        self.armings += 1;
        let id = self.armings;
        let (handle, registration) = AbortHandle::new_pair();
        let key = (path, children);
        if let Some((_, old)) = self.armed.insert(key.clone(), (id, handle)) {
            old.abort();
        }
        self.fired
            .push(async move { Fired { key, id, event: Abortable::new(watcher, registration).await.ok() } }.boxed());
    }

    /// Takes in the events and connection changes already queued: they preceded the reply
    /// being handled.
    fn drain(
        &mut self,
        watcher: &mut Option<PersistentWatcher>,
        states: &mut ConnectionStateStream,
    ) -> Result<(), Interrupt> {
        // Unconstrained: tokio's cooperative budget could make a ready channel look empty.
        while let Some(state) = tokio::task::unconstrained(states.next()).now_or_never() {
            self.on_state(state)?;
        }
        if let Some(w) = watcher.as_mut() {
            while let Some(event) = tokio::task::unconstrained(w.next()).now_or_never() {
                self.on_event(event)?;
            }
        }
        while let Some(Some(fired)) = tokio::task::unconstrained(self.fired.next()).now_or_never() {
            self.on_fired(fired)?;
        }
        Ok(())
    }

    /// Whether `path` is one the cache keeps (under the root, within the depth, kept by the
    /// filter with all its ancestors below the root).
    fn in_scope(&self, path: &str) -> bool {
        let Some(names) = relative(&self.config.path, path) else { return false };
        if self.config.max_depth.is_some_and(|max| names.clone().count() > max) {
            return false;
        }
        let Some(filter) = &self.config.filter else { return true };
        let mut prefix = self.config.path.clone();
        for name in names {
            prefix = child_path(&prefix, name);
            if !filter(&prefix) {
                return false;
            }
        }
        true
    }

    /// Whether the cache lists the children of `path`.
    fn lists_children(&self, path: &str) -> bool {
        match self.config.max_depth {
            None => true,
            Some(max) => relative(&self.config.path, path).is_some_and(|names| names.count() < max),
        }
    }

    fn read_data(&mut self, path: String, walk: Option<u64>) {
        self.count(walk);
        self.issue(Read::Data { path, walk });
    }

    fn list(&mut self, path: String, walk: Option<u64>) {
        self.count(walk);
        self.issue(Read::Children { path, walk });
    }

    /// One-shot mode: a watch on the missing root, which fires when it is created.
    fn watch_root(&mut self) {
        self.issue(Read::Exists { path: self.config.path.clone() });
    }

    fn fence(&mut self, second: bool, done: oneshot::Sender<bool>) {
        self.issue(Read::Fence { second, done });
    }

    /// Sends `read` now if there is room (and nothing is waiting before it), else queues it.
    fn issue(&mut self, read: Read) {
        if self.pipeline.sent.len() < IN_FLIGHT && self.pipeline.waiting.is_empty() {
            let sent = self.send(read);
            self.pipeline.sent.push_back(sent);
        } else {
            self.pipeline.waiting.push_back(read);
        }
    }

    /// Sends waiting reads while there is room.
    fn refill(&mut self) {
        while self.pipeline.sent.len() < IN_FLIGHT {
            let Some(read) = self.pipeline.waiting.pop_front() else { break };
            let sent = self.send(read);
            self.pipeline.sent.push_back(sent);
        }
        self.pipeline.shrink();
    }

    /// Sends a read: the request goes out now; the future is its reply.
    fn send(&self, read: Read) -> BoxFuture<'static, Reply> {
        match read {
            Read::Data { path, walk } if self.one_shot => {
                let read = self.client.get_data_and_watch(&path);
                async move { Reply::Data { result: read.await.map(|(d, s, w)| (d, s, Some(w))), path, walk } }.boxed()
            }
            Read::Data { path, walk } => {
                let read = self.client.get_data(&path);
                async move { Reply::Data { result: read.await.map(|(d, s)| (d, s, None)), path, walk } }.boxed()
            }
            Read::Children { path, walk } if self.one_shot => {
                let read = self.client.get_children_and_watch(&path);
                async move { Reply::Children { result: read.await.map(|(n, w)| (n, Some(w))), path, walk } }.boxed()
            }
            Read::Children { path, walk } => {
                let read = self.client.get_children(&path);
                async move { Reply::Children { result: read.await.map(|n| (n, None)), path, walk } }.boxed()
            }
            Read::Exists { path } => {
                let read = self.client.exists_and_watch(&path);
                async move { Reply::Exists { result: read.await, path } }.boxed()
            }
            Read::Fence { second, done } => {
                let read = self.client.exists(&self.config.path);
                async move { Reply::Fence { second, done, result: read.await } }.boxed()
            }
        }
    }

    /// Counts a read of the current walk.
    fn count(&mut self, walk: Option<u64>) {
        if self.walking(walk) {
            if let Some(w) = self.walk.as_mut() {
                w.outstanding += 1;
            }
        }
    }

    /// Starts a walk of the whole subtree (taking over one in progress).
    fn start_walk(&mut self) {
        self.generation += 1;
        let previous = self.walk.take();
        let mut shared = self.shared();
        let resync = shared.initialized;
        let mut walk = Walk { generation: self.generation, resync, missed: self.renewed, ..Walk::default() };
        match previous {
            Some(p) if p.resync => {
                walk.missed |= p.missed;
                walk.record = p.record;
                walk.held = p.held;
            }
            _ => walk.record = resync && !shared.subscribers.is_empty(),
        }
        if resync {
            shared.resyncing = true;
            self.status.send_modify(|s| s.resyncing = true);
        }
        drop(shared);
        self.renewed = false;
        let generation = walk.generation;
        self.walk = Some(walk);
        self.read_data(self.config.path.clone(), Some(generation));
    }

    /// Whether a walk is in progress and `walk` is its generation.
    fn walking(&self, walk: Option<u64>) -> bool {
        walk.is_some() && self.walk.as_ref().map(|w| w.generation) == walk
    }

    /// An empty event sink for one reply: recording if anyone will see the events.
    fn out(&self, shared: &Shared) -> Out {
        let record = match self.walk.as_ref().filter(|w| w.resync) {
            Some(walk) => walk.record,
            None => !shared.subscribers.is_empty(),
        };
        Out { record, ..Out::default() }
    }

    /// Sends an apply's events on, or holds them back during a resync.
    fn publish(walk: &mut Option<Walk>, shared: &mut Shared, out: Out) {
        if out.changed > 0 {
            shared.generation += 1;
        }
        match walk.as_mut().filter(|w| w.resync) {
            Some(walk) => {
                walk.missed |= out.skipped;
                if walk.record {
                    walk.held.extend(out.events);
                }
            }
            None => shared.deliver(out.events),
        }
    }

    fn on_reply(
        &mut self,
        reply: Reply,
        watcher: &mut Option<PersistentWatcher>,
        states: &mut ConnectionStateStream,
    ) -> Result<(), Interrupt> {
        match reply {
            Reply::Data { path, walk, result } => {
                let walking = self.walking(walk);
                if let Some(w) = self.walk.as_mut().filter(|_| walking) {
                    w.outstanding -= 1;
                }
                match result {
                    Ok((data, stat, armed)) => {
                        if let Some(w) = armed {
                            self.arm(path.clone(), false, w);
                        }
                        self.apply_data(path, walking, &data, stat);
                    }
                    Err(ZkError::NoNode) => {
                        if self.one_shot && path == self.config.path {
                            self.watch_root();
                        }
                        self.apply_missing(&path);
                    }
                    Err(e) => self.failed(e, path, walk.filter(|_| walking), false)?,
                }
            }
            Reply::Children { path, walk, result } => {
                let walking = self.walking(walk);
                if walk.is_some() && !walking {
                    // A listing of a walk taken over: the current walk lists again.
                    return Ok(());
                }
                if let Some(w) = self.walk.as_mut().filter(|_| walking) {
                    w.outstanding -= 1;
                }
                match result {
                    Ok((names, armed)) => {
                        if let Some(w) = armed {
                            self.arm(path.clone(), true, w);
                        }
                        self.apply_listing(path, walk, names);
                    }
                    Err(ZkError::NoNode) => self.apply_missing(&path),
                    Err(e) => self.failed(e, path, walk, true)?,
                }
            }
            Reply::Exists { path, result } => match result {
                Ok((stat, w)) => {
                    self.arm(path.clone(), false, w);
                    if stat.is_some() {
                        self.read_data(path, None);
                    }
                }
                Err(e) if e.is_terminal() => return Err(e.into()),
                Err(ZkError::OperationTimeout) if self.client.state().is_connected() => self.watch_root(),
                // A reconnection's walk reads the root again.
                Err(_) => {}
            },
            Reply::Fence { second, done, result } => {
                return match result {
                    Ok(_) => {
                        self.drain(watcher, states)?;
                        if second {
                            let _ = done.send(self.walk.is_none());
                        } else {
                            self.fence(true, done);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        let _ = done.send(false);
                        if e.is_terminal() {
                            return Err(e.into());
                        }
                        Ok(())
                    }
                };
            }
        }
        self.check_walk();
        Ok(())
    }

    /// A read that failed with `e`: the session's end, a connection loss (the reconnection's
    /// walk reads again), a timeout on a live connection (read again), or a refusal (the node
    /// is left out).
    fn failed(&mut self, e: ZkError, path: String, walk: Option<u64>, listing: bool) -> Result<(), Interrupt> {
        if e.is_terminal() {
            return Err(e.into());
        }
        if e == ZkError::OperationTimeout && self.client.state().is_connected() {
            if listing {
                self.list(path, walk);
            } else {
                self.read_data(path, walk);
            }
        } else if e.is_retryable() {
            if let Some(w) = self.walk.as_mut().filter(|_| walk.is_some()) {
                w.failed = true;
            }
        } else {
            tracing::warn!(path = %path, error = %e, "the cache cannot read this node; it is left out");
        }
        Ok(())
    }

    fn apply_data(&mut self, path: String, walking: bool, data: &[u8], stat: Stat) {
        let lists = self.lists_children(&path);
        let limit = self.client.max_reply_frame();
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out(&shared);
        let applied = shared.mirror.apply_data(&path, data, stat, &mut out);
        let mut list = None;
        if let (true, Applied::Current { added, num_children, unseen_child_changes }) = (lists, applied) {
            if let Some(walk) = self.walk.as_mut().filter(|_| walking) {
                if num_children == 0 && !self.one_shot {
                    let removed = shared.mirror.remove_children(&path, &mut out);
                    walk.missed |= walk.resync && unseen_child_changes as usize > removed;
                } else if (num_children as usize).saturating_mul(5) > limit {
                    // Each name takes at least 5 bytes: a listing this long breaks the connection.
                    tracing::warn!(path = %path, children = num_children, "too many children to list in one reply; the cache leaves them out");
                } else {
                    if walk.resync && unseen_child_changes > 0 {
                        walk.unseen.insert(path.clone(), unseen_child_changes);
                    }
                    list = Some(Some(walk.generation));
                }
            } else if added && self.one_shot {
                // Found by a child watch: list it too (its children, and a watch on them).
                list = Some(None);
            }
        }
        Self::publish(&mut self.walk, &mut shared, out);
        drop(shared);
        if let Some(walk) = list {
            self.list(path, walk);
        }
    }

    fn apply_missing(&mut self, path: &str) {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out(&shared);
        shared.mirror.apply_missing(path, &mut out);
        Self::publish(&mut self.walk, &mut shared, out);
    }

    fn apply_listing(&mut self, path: String, walk: Option<u64>, mut names: Vec<String>) {
        // Sorted, so that the children's reads come back in the mirror's order.
        names.sort_unstable();
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out(&shared);
        let listed = shared.mirror.apply_listing(&path, &names, &mut out);
        if let (Some(listed), Some(w)) = (&listed, self.walk.as_mut()) {
            if let Some(unseen) = w.unseen.remove(&path) {
                w.missed |= unseen as usize > listed.changes();
            }
        }
        Self::publish(&mut self.walk, &mut shared, out);
        drop(shared);
        let Some(listed) = listed else { return };
        for (name, new) in names.into_iter().zip(listed.new) {
            // A walk reads every child again; a child watch only the new ones.
            if walk.is_some() || new {
                let child = child_path(&path, &name);
                if self.in_scope(&child) {
                    self.read_data(child, walk);
                }
            }
        }
    }

    /// Completes the walk if every read of it was answered.
    fn check_walk(&mut self) {
        if !self.walk.as_ref().is_some_and(|w| w.outstanding == 0 && !w.failed) {
            return;
        }
        let walk = self.walk.take().expect("checked");
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if !shared.initialized {
            shared.initialized = true;
            shared.deliver(vec![CacheEvent::Initialized]);
            self.status.send_modify(|s| s.initialized = true);
        } else if walk.resync {
            let mut events = Vec::with_capacity(walk.held.len() + 1);
            events.push(CacheEvent::Resynced { possibly_missed: walk.missed });
            events.extend(walk.held);
            shared.deliver(events);
            let deferred = std::mem::take(&mut shared.deferred);
            for subscriber in deferred {
                shared.replay(&subscriber);
                shared.subscribers.push(subscriber);
            }
            shared.resyncing = false;
            self.status.send_modify(|s| s.resyncing = false);
        }
    }

    /// Moves to the expired session's successor (shared with the other recipes on it),
    /// trying again with back-off while no server can be reached.
    async fn renew(&mut self) {
        let client = crate::internal::session::renewed_patiently(&self.client, &self.config.path).await;
        tracing::debug!(path = %self.config.path, session = %format_args!("{:#x}", client.session_id()), "the cache moves to a new session");
        self.client = client.clone();
        self.shared().client = client;
        self.renewed = true;
        self.status.send_modify(|s| s.session += 1);
    }

    /// The cache's end: every stream gets the error.
    fn end(&mut self, e: Error) {
        let mut shared = self.shared();
        shared.ended = Some(e.clone());
        let subscribers = std::mem::take(&mut shared.subscribers);
        for subscriber in subscribers.into_iter().chain(std::mem::take(&mut shared.deferred)) {
            subscriber.send(Err(e.clone()));
        }
        drop(shared);
        self.status.send_modify(|s| s.ended = Some(e));
    }
}

/// Adds the persistent watch on `path`, waiting out connection losses. It is in place before
/// the walk's first read, so no change after that read goes unnoticed.
async fn add_watch(client: Client, path: String, mode: AddWatchMode) -> Result<PersistentWatcher, ZkError> {
    loop {
        match client.add_watch(&path, mode).await {
            Err(e) if e.is_retryable() => client.wait_connected().await?,
            other => return other,
        }
    }
}

/// The next event of the persistent watch, if there is one (never, in one-shot mode).
async fn next_event(watcher: &mut Option<PersistentWatcher>) -> Option<conclave_core::Result<WatchedEvent>> {
    match watcher {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}
