//! The cache's task: one per cache, the only writer of its mirror.
//!
//! It adds a persistent recursive watch on the root, then *walks* the subtree: a read of the
//! root's data, a listing of every node the data read says has children, a data read of every
//! child listed, all pipelined. Events only make it read the node again. Every read goes into
//! one ordered queue and is applied in the order it was sent, which on one session is the order
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use conclave_core::{
    AddWatchMode, Client, ConnectionState, ConnectionStateStream, Error as ZkError, EventType, PersistentWatcher,
    SessionState, Stat, WatchedEvent,
};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};

use super::mirror::{child_path, relative, Applied, Out};
use super::{CacheEvent, Filter, Shared, Status};
use crate::error::Error;

/// A cache's settings, as the task needs them.
pub(super) struct Config {
    pub(super) path: String,
    pub(super) max_depth: Option<usize>,
    pub(super) filter: Option<Filter>,
    pub(super) rebuild_after_expiry: bool,
}

/// What the handles ask of the task.
#[derive(Debug)]
pub(super) enum Command {
    /// Answer `true` once every change before this command is applied and no walk is in
    /// progress (`false`: something got in the way, ask again).
    Fence(oneshot::Sender<bool>),
}

/// An answered read, with what it was for.
enum Reply {
    Data { path: String, walk: Option<u64>, result: Result<(Bytes, Stat), ZkError> },
    Children { path: String, walk: u64, result: Result<Vec<String>, ZkError> },
    Fence { second: bool, done: oneshot::Sender<bool>, result: Result<Option<Stat>, ZkError> },
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
    queue: FuturesOrdered<BoxFuture<'static, Reply>>,
    generation: u64,
    walk: Option<Walk>,
    /// The next walk is on a new session: states may have been skipped.
    renewed: bool,
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
        queue: FuturesOrdered::new(),
        generation: 0,
        walk: None,
        renewed: false,
    };
    loop {
        let ended = match engine.follow(&mut commands).await {
            Interrupt::Stop => return,
            Interrupt::Rewatch => continue,
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
        // Answers to an earlier watch or session are of no use now: the walk reads everything.
        self.queue = FuturesOrdered::new();
        let mut watcher = match add_watch(self.client.clone(), self.config.path.clone()).await {
            Ok(watcher) => watcher,
            Err(e) => return e.into(),
        };
        let mut states = self.client.connection_states();
        // The condition at subscription (the walk below reads after it anyway).
        let _ = tokio::task::unconstrained(states.next()).now_or_never();
        self.start_walk();
        loop {
            let step = tokio::select! {
                biased;
                state = states.next() => self.on_state(state),
                event = watcher.next() => self.on_event(event),
                Some(reply) = self.queue.next(), if !self.queue.is_empty() => {
                    self.on_reply(reply, &mut watcher, &mut states)
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
            EventType::PersistentWatchRemoved => return Err(Interrupt::Rewatch),
            _ => {}
        }
        Ok(())
    }

    /// Takes in the events and connection changes already queued: they preceded the reply
    /// being handled.
    fn drain(&mut self, watcher: &mut PersistentWatcher, states: &mut ConnectionStateStream) -> Result<(), Interrupt> {
        // Unconstrained: tokio's cooperative budget could make a ready channel look empty.
        while let Some(state) = tokio::task::unconstrained(states.next()).now_or_never() {
            self.on_state(state)?;
        }
        while let Some(event) = tokio::task::unconstrained(watcher.next()).now_or_never() {
            self.on_event(event)?;
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

    fn walking(&self, walk: Option<u64>) -> bool {
        walk.is_some() && self.walk.as_ref().map(|w| w.generation) == walk
    }

    fn read_data(&mut self, path: String, walk: Option<u64>) {
        let read = self.client.get_data(&path);
        if self.walking(walk) {
            if let Some(w) = self.walk.as_mut() {
                w.outstanding += 1;
            }
        }
        self.queue.push_back(async move { Reply::Data { result: read.await, path, walk } }.boxed());
    }

    fn list(&mut self, path: String, walk: u64) {
        let read = self.client.get_children(&path);
        if let Some(w) = self.walk.as_mut() {
            w.outstanding += 1;
        }
        self.queue.push_back(async move { Reply::Children { result: read.await, path, walk } }.boxed());
    }

    fn fence(&mut self, second: bool, done: oneshot::Sender<bool>) {
        let read = self.client.exists(&self.config.path);
        self.queue.push_back(async move { Reply::Fence { second, done, result: read.await } }.boxed());
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
        match walk.as_mut().filter(|w| w.resync) {
            Some(walk) => {
                walk.missed |= out.skipped;
                if walk.record {
                    walk.held.extend(out.events);
                }
            }
            None => deliver(&mut shared.subscribers, out.events),
        }
    }

    fn on_reply(
        &mut self,
        reply: Reply,
        watcher: &mut PersistentWatcher,
        states: &mut ConnectionStateStream,
    ) -> Result<(), Interrupt> {
        match reply {
            Reply::Data { path, walk, result } => {
                let walking = self.walking(walk);
                if let Some(w) = self.walk.as_mut().filter(|_| walking) {
                    w.outstanding -= 1;
                }
                match result {
                    Ok((data, stat)) => self.apply_data(path, walking, &data, stat),
                    Err(ZkError::NoNode) => self.apply_missing(&path),
                    Err(e) => self.failed(e, path, walk.filter(|_| walking))?,
                }
            }
            Reply::Children { path, walk, result } => {
                if !self.walking(Some(walk)) {
                    // A listing of a walk taken over: the current walk lists again.
                    return Ok(());
                }
                if let Some(w) = self.walk.as_mut() {
                    w.outstanding -= 1;
                }
                match result {
                    Ok(names) => self.apply_listing(path, walk, names),
                    Err(ZkError::NoNode) => self.apply_missing(&path),
                    Err(ZkError::OperationTimeout) if self.client.state().is_connected() => self.list(path, walk),
                    Err(e) if e.is_retryable() => self.walk.as_mut().into_iter().for_each(|w| w.failed = true),
                    Err(e) => self.failed(e, path, None)?,
                }
            }
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
    fn failed(&mut self, e: ZkError, path: String, walk: Option<u64>) -> Result<(), Interrupt> {
        if e.is_terminal() {
            return Err(e.into());
        }
        if e == ZkError::OperationTimeout && self.client.state().is_connected() {
            self.read_data(path, walk);
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
        let lists = walking && self.lists_children(&path);
        let limit = self.client.max_reply_frame();
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out(&shared);
        let applied = shared.mirror.apply_data(&path, data, stat, &mut out);
        let mut list = None;
        if let (true, Applied::Current { num_children, unseen_child_changes }) = (lists, applied) {
            let walk = self.walk.as_mut().expect("walking");
            if num_children == 0 {
                let removed = shared.mirror.remove_children(&path, &mut out);
                walk.missed |= walk.resync && unseen_child_changes as usize > removed;
            } else if (num_children as usize).saturating_mul(5) > limit {
                // Each name takes at least 5 bytes: a listing this long breaks the connection.
                tracing::warn!(path = %path, children = num_children, "too many children to list in one reply; the cache leaves them out");
            } else {
                if walk.resync && unseen_child_changes > 0 {
                    walk.unseen.insert(path.clone(), unseen_child_changes);
                }
                list = Some(walk.generation);
            }
        }
        Self::publish(&mut self.walk, &mut shared, out);
        drop(shared);
        if let Some(generation) = list {
            self.list(path, generation);
        }
    }

    fn apply_missing(&mut self, path: &str) {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out(&shared);
        shared.mirror.apply_missing(path, &mut out);
        Self::publish(&mut self.walk, &mut shared, out);
    }

    fn apply_listing(&mut self, path: String, walk: u64, mut names: Vec<String>) {
        // Sorted, so that the children's reads come back in the mirror's order.
        names.sort_unstable();
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out(&shared);
        let changes = shared.mirror.apply_listing(&path, &names, &mut out);
        if let (Some(changes), Some(w)) = (changes, self.walk.as_mut()) {
            if let Some(unseen) = w.unseen.remove(&path) {
                w.missed |= unseen as usize > changes;
            }
        }
        Self::publish(&mut self.walk, &mut shared, out);
        drop(shared);
        if changes.is_some() {
            for name in names {
                let child = child_path(&path, &name);
                if self.in_scope(&child) {
                    self.read_data(child, Some(walk));
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
            deliver(&mut shared.subscribers, vec![CacheEvent::Initialized]);
            self.status.send_modify(|s| s.initialized = true);
        } else if walk.resync {
            let mut events = Vec::with_capacity(walk.held.len() + 1);
            events.push(CacheEvent::Resynced { possibly_missed: walk.missed });
            events.extend(walk.held);
            deliver(&mut shared.subscribers, events);
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
        let mut delay = std::time::Duration::from_millis(100);
        let client = loop {
            match crate::internal::session::renewed(&self.client).await {
                Ok(client) => break client,
                Err(e) => {
                    tracing::warn!(path = %self.config.path, error = %e, "the cache cannot open a new session yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(10));
                }
            }
        };
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
            let _ = subscriber.send(Err(e.clone()));
        }
        drop(shared);
        self.status.send_modify(|s| s.ended = Some(e));
    }
}

/// Adds the recursive watch on `path`, waiting out connection losses. It is in place before
/// the walk's first read, so no change after that read goes unnoticed.
async fn add_watch(client: Client, path: String) -> Result<PersistentWatcher, ZkError> {
    loop {
        match client.add_watch(&path, AddWatchMode::PersistentRecursive).await {
            Err(e) if e.is_retryable() => client.wait_connected().await?,
            other => return other,
        }
    }
}

/// Sends `events` to every subscriber, forgetting those whose stream was dropped.
fn deliver(subscribers: &mut Vec<super::Subscriber>, events: Vec<CacheEvent>) {
    if events.is_empty() {
        return;
    }
    subscribers.retain(|s| !s.is_closed());
    if let [only] = subscribers.as_slice() {
        for event in events {
            let _ = only.send(Ok(event));
        }
        return;
    }
    for event in events {
        for subscriber in subscribers.iter() {
            let _ = subscriber.send(Ok(event.clone()));
        }
    }
}
