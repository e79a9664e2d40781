//! Caches: an in-memory mirror of a subtree kept current by watches, with a stream of what
//! changed — the piece services use to follow configuration, membership and discovery nodes
//! without re-reading them.
//!
//! A [`TreeCache`] follows a node and its descendants (optionally to a depth, or only the nodes
//! a filter keeps) and offers the cached nodes ([`TreeCache::get`], [`TreeCache::children`],
//! [`TreeCache::snapshot`]: data and [`Stat`] per node), [`TreeCache::initialized`], and
//! [`TreeCache::events`], a stream of [`CacheEvent`]s.
//!
//! # What the events promise
//!
//! - **Each node's events come in the order of its changes**, and its version only grows
//!   between two [`CacheEvent::Resynced`] markers. A node is identified by its path and its
//!   creation (`czxid`): deleted and created again, it is reported as [`CacheEvent::Removed`]
//!   then [`CacheEvent::Added`], even if its version and data are the same as before.
//! - Watches only say *that* something changed; the cache then reads the node, so a change
//!   followed quickly by another may be reported once, with the later state (as in every
//!   ZooKeeper cache). What is reported is always a state the node really had, never an older
//!   one after a newer.
//! - **Loading**: the cache reads the subtree whole (the reads pipelined), reporting each node
//!   as [`CacheEvent::Added`], then [`CacheEvent::Initialized`] once, when every read has been
//!   answered (reads that met a connection loss are made again first). Nothing reported before
//!   it is reported again. A cache on a path that does not exist is initialized empty and
//!   reports the node when it is created; it costs one watch while it waits.
//! - **After a reconnection** the server does not replay what happened while the client was
//!   away, so the cache reads the whole subtree again and reports only the differences from
//!   what it held, preceded by [`CacheEvent::Resynced`]: `possibly_missed` says whether the
//!   re-read shows that states were skipped (a version that grew by more than one, a removal,
//!   a re-creation, children that came and went). Live changes that race the re-read can set
//!   it too; `false` means nothing happened unseen. The events held back during the re-read
//!   come out together behind the marker, in the order the cache read them: the differences
//!   found and the changes made during the re-read, mixed (each node's in order), so a change
//!   made just after the reconnection can come before the difference of a node read later.
//! - **After the session expired**, the cache (by default) opens a new session — the same one
//!   every other recipe on the expired session moves to — and rebuilds the same way, with
//!   `possibly_missed: true`; [`TreeCache::client`] is the session it now uses.
//! - A subscriber that joins late gets the cached nodes as `Added` first (and `Initialized` if
//!   the cache is), then live events; one that joins during a re-read gets its first events
//!   when the re-read is done. A stream that stops taking its events is ended with
//!   [`Error::Lagged`] once too many are queued for it ([`CacheBuilder::max_lag`]), so memory
//!   stays bounded by the subtree and the streams that are read.
//!
//! # Kinds
//!
//! A [`TreeCache`] (optionally to a depth, or only the nodes a filter keeps), a
//! [`ChildrenCache`] (a node's children by name, like Curator's `PathChildrenCache`) and a
//! [`NodeCache`] (one node) are the same cache with different bounds, set up with a
//! [`CacheBuilder`].
//!
//! # How
//!
//! One background task per cache adds a persistent watch on the root (`addWatch`: recursive,
//! or plain for a node cache), *then* reads, and applies every read in the order the server
//! answered it; events only make it read. Where the server has no persistent watches (it
//! answers `UNIMPLEMENTED`), or with [`WatchMode::OneShot`], every read leaves a one-shot watch
//! instead, with the same guarantees. The task ends when the last handle (the cache or a
//! [`CacheEvents`] stream) is dropped, which removes the watches.

mod engine;
mod kinds;
mod mirror;
#[cfg(test)]
mod tests;

pub use kinds::{CacheKind, ChildrenCache, NodeCache};

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use conclave_core::{path, Client, Error as ZkError, Stat};
use futures::Stream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};

/// A cached node: its data and [`Stat`] as last read.
///
/// The child-related fields of the stat (`cversion`, `num_children`, `pzxid`) are as of that
/// read: recursive watches do not report a node's own child changes, so use the cache's
/// [`TreeCache::children`] for the current children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNode {
    /// The node's data.
    pub data: Bytes,
    /// The node's stat.
    pub stat: Stat,
}

/// What a cache reports (see the [module docs](self) for the order and the guarantees).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheEvent {
    /// A node is now cached: loaded, created, or created again.
    Added {
        /// Its path.
        path: String,
        /// Its data and stat.
        node: CachedNode,
    },
    /// A cached node's data changed (its `mzxid` grew).
    Updated {
        /// Its path.
        path: String,
        /// Its new data and stat.
        node: CachedNode,
    },
    /// A cached node is gone (deleted, or deleted before being created again).
    Removed {
        /// Its path.
        path: String,
        /// Its last cached data and stat.
        node: CachedNode,
    },
    /// The first load is complete: every node that existed when it was read has been reported.
    /// Reported once.
    Initialized,
    /// The cache read the subtree again after a reconnection or a new session (or a removed
    /// watch); the events held back meanwhile follow: the differences found, mixed with the
    /// changes made during the re-read (see the [module docs](self)).
    Resynced {
        /// Whether states may have been skipped (see the [module docs](self)).
        possibly_missed: bool,
    },
}

impl CacheEvent {
    /// The node's path, for `Added`, `Updated` and `Removed`.
    pub fn path(&self) -> Option<&str> {
        match self {
            CacheEvent::Added { path, .. } | CacheEvent::Updated { path, .. } | CacheEvent::Removed { path, .. } => {
                Some(path)
            }
            _ => None,
        }
    }

    /// The node, for `Added`, `Updated` and `Removed`.
    pub fn node(&self) -> Option<&CachedNode> {
        match self {
            CacheEvent::Added { node, .. } | CacheEvent::Updated { node, .. } | CacheEvent::Removed { node, .. } => {
                Some(node)
            }
            _ => None,
        }
    }
}

/// Which nodes under the root a cache keeps: a predicate on full paths.
type Filter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Which watches keep a cache current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchMode {
    /// One persistent watch (`addWatch`: recursive for a tree or its children, plain for a
    /// single node), or one-shot watches if the server answers `UNIMPLEMENTED` to it (servers
    /// before ZooKeeper 3.6). The default.
    #[default]
    Auto,
    /// One-shot watches, left by every read and set again each time one fires (a data watch per
    /// node, a child watch per node whose children are cached): what caches did before
    /// ZooKeeper 3.6. It costs a watch and a listing per node, and more memory; for servers
    /// that do not support `addWatch` although they accept it.
    OneShot,
}

/// How a cache is set up; [`CacheBuilder::start`] starts it. From [`TreeCache::builder`],
/// [`ChildrenCache::builder`] or [`NodeCache::builder`].
pub struct CacheBuilder<K> {
    client: Client,
    path: String,
    max_depth: Option<usize>,
    filter: Option<Filter>,
    rebuild_after_expiry: bool,
    watch: WatchMode,
    max_lag: Option<usize>,
    kind: std::marker::PhantomData<fn() -> K>,
}

impl<K> Clone for CacheBuilder<K> {
    fn clone(&self) -> Self {
        CacheBuilder {
            client: self.client.clone(),
            path: self.path.clone(),
            max_depth: self.max_depth,
            filter: self.filter.clone(),
            rebuild_after_expiry: self.rebuild_after_expiry,
            watch: self.watch,
            max_lag: self.max_lag,
            kind: std::marker::PhantomData,
        }
    }
}

impl<K> fmt::Debug for CacheBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("path", &self.path)
            .field("max_depth", &self.max_depth)
            .field("filter", &self.filter.as_ref().map(|_| "..."))
            .field("rebuild_after_expiry", &self.rebuild_after_expiry)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl<K> CacheBuilder<K> {
    fn new(client: &Client, path: &str) -> Self {
        CacheBuilder {
            client: client.clone(),
            path: path.to_string(),
            max_depth: None,
            filter: None,
            rebuild_after_expiry: true,
            watch: WatchMode::Auto,
            max_lag: None,
            kind: std::marker::PhantomData,
        }
    }
}

impl CacheBuilder<TreeCache> {
    /// Caches nodes at most `depth` levels below the root: 0 is the root alone, 1 the root and
    /// its children. Default: no limit. ZooKeeper has no depth-limited watch, so changes deeper
    /// down still reach the client (and are ignored).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = Some(depth);
        self
    }
}

impl<K: CacheKind> CacheBuilder<K> {
    /// Caches only the nodes for which `keep(path)` is true, and none of the descendants of a
    /// node it refuses. The root is always kept. Called from the cache's task: keep it quick.
    pub fn filter(mut self, keep: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(keep));
        self
    }

    /// Whether the cache goes on after its session expired, on the expired session's successor
    /// (default true); if not, it ends with `SessionExpired` (its event streams yield it, and
    /// `sync` fails with it).
    pub fn rebuild_after_expiry(mut self, rebuild: bool) -> Self {
        self.rebuild_after_expiry = rebuild;
        self
    }

    /// How many events an event stream may have queued (sent, not yet taken) before the cache
    /// ends it with [`Error::Lagged`]. Default: four times the number of cached nodes, and at
    /// least 65 536.
    pub fn max_lag(mut self, events: usize) -> Self {
        self.max_lag = Some(events);
        self
    }

    /// Which watches keep the cache current (default [`WatchMode::Auto`]).
    pub fn watch_mode(mut self, mode: WatchMode) -> Self {
        self.watch = mode;
        self
    }

    /// Starts the cache: its task is spawned on the current tokio runtime at once.
    ///
    /// # Errors
    /// `InvalidPath` for a bad root path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(self) -> Result<K> {
        path::validate_path(&self.path)?;
        let (status_tx, status) = watch::channel(Status::default());
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared {
            mirror: mirror::Mirror::new(&self.path),
            client: self.client.clone(),
            subscribers: Vec::new(),
            deferred: Vec::new(),
            initialized: false,
            resyncing: false,
            ended: None,
            max_lag: self.max_lag,
            generation: 0,
        }));
        let config = engine::Config {
            path: self.path.clone(),
            max_depth: K::depth().or(self.max_depth),
            filter: self.filter,
            rebuild_after_expiry: self.rebuild_after_expiry,
            watch: self.watch,
        };
        let task = tokio::spawn(engine::run(config, self.client, shared.clone(), status_tx, commands_rx));
        let inner = Inner { path: self.path, shared, status, commands, task: task.abort_handle() };
        Ok(K::wrap(TreeCache { inner: Arc::new(inner) }))
    }
}

/// What the handles and the task share.
#[derive(Debug)]
pub(crate) struct Shared {
    mirror: mirror::Mirror,
    client: Client,
    subscribers: Vec<Subscriber>,
    /// Joined during a re-read: they get the cache's content once it is done.
    deferred: Vec<Subscriber>,
    initialized: bool,
    resyncing: bool,
    ended: Option<Error>,
    /// See [`CacheBuilder::max_lag`].
    max_lag: Option<usize>,
    /// Counts the applies that added, changed or removed a node: what a view derived from the
    /// cache (a service's decoded instances) is current for.
    generation: u64,
}

/// The smallest lag a stream is allowed by default (see [`CacheBuilder::max_lag`]).
const MIN_LAG: usize = 65_536;

/// One stream's end of its channel, with how many events it has not taken yet.
#[derive(Debug)]
pub(crate) struct Subscriber {
    tx: mpsc::UnboundedSender<Result<CacheEvent>>,
    queued: Arc<AtomicUsize>,
}

impl Subscriber {
    fn new() -> (Subscriber, mpsc::UnboundedReceiver<Result<CacheEvent>>, Arc<AtomicUsize>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        (Subscriber { tx, queued: queued.clone() }, rx, queued)
    }

    fn send(&self, item: Result<CacheEvent>) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(item);
    }
}

impl Shared {
    /// Sends the cache's content to a new subscriber, as `Added`s (and `Initialized` if it is).
    fn replay(&self, subscriber: &Subscriber) {
        self.mirror.for_each(|path, entry| {
            subscriber.send(Ok(CacheEvent::Added { path: path.to_string(), node: entry.node() }));
        });
        if self.initialized {
            subscriber.send(Ok(CacheEvent::Initialized));
        }
    }

    /// How many events a stream may have queued before it is ended.
    fn lag_limit(&self) -> usize {
        self.max_lag.unwrap_or_else(|| MIN_LAG.max(4 * self.mirror.len()))
    }

    /// Sends `events` to every subscriber, forgetting those whose stream was dropped, and
    /// ending (with [`Error::Lagged`]) those that fell too far behind.
    pub(crate) fn deliver(&mut self, events: Vec<CacheEvent>) {
        if events.is_empty() {
            return;
        }
        let limit = self.lag_limit();
        let path = self.mirror.root();
        self.subscribers.retain(|s| {
            if s.tx.is_closed() {
                return false;
            }
            if s.queued.load(Ordering::Relaxed) > limit {
                s.send(Err(Error::Lagged { path: path.to_string(), limit }));
                return false;
            }
            true
        });
        if let [only] = self.subscribers.as_slice() {
            for event in events {
                only.send(Ok(event));
            }
            return;
        }
        for event in events {
            for subscriber in &self.subscribers {
                subscriber.send(Ok(event.clone()));
            }
        }
    }
}

/// The task's progress, for the waits of the handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// How many sessions the cache moved to after expiries.
    session: u64,
    initialized: bool,
    resyncing: bool,
    ended: Option<Error>,
}

#[derive(Debug)]
struct Inner {
    path: String,
    shared: Arc<Mutex<Shared>>,
    status: watch::Receiver<Status>,
    commands: mpsc::UnboundedSender<engine::Command>,
    task: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A cache of a node and its descendants (see the [module docs](self)). Cheap to clone: the
/// clones share one cache, which stops once every clone and every [`CacheEvents`] stream is
/// dropped.
#[derive(Debug, Clone)]
pub struct TreeCache {
    inner: Arc<Inner>,
}

impl TreeCache {
    /// Starts caching `path` and its whole subtree (see [`TreeCache::builder`] for options).
    ///
    /// # Errors
    /// `InvalidPath` for a bad path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(client: &Client, path: &str) -> Result<TreeCache> {
        TreeCache::builder(client, path).start()
    }

    /// A cache of `path`, to be set up and then [started](CacheBuilder::start).
    pub fn builder(client: &Client, path: &str) -> CacheBuilder<TreeCache> {
        CacheBuilder::new(client, path)
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The root path.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The session the cache reads on: the client given, or its successor after an expiry.
    pub fn client(&self) -> Client {
        self.shared().client.clone()
    }

    /// Whether the first load is complete.
    pub fn is_initialized(&self) -> bool {
        self.shared().initialized
    }

    /// Waits until the first load is complete (returns at once if it is).
    ///
    /// # Errors
    /// The cache's end, if it ended before the load was complete: the session's terminal error
    /// (`SessionExpired` without [rebuilding](CacheBuilder::rebuild_after_expiry),
    /// `Closed`, ...).
    ///
    /// # Cancellation safety
    /// Dropping the future only stops the wait.
    pub async fn initialized(&self) -> Result<()> {
        self.wait_for(|s| s.initialized).await
    }

    async fn wait_for(&self, ready: impl Fn(&Status) -> bool) -> Result<()> {
        let mut status = self.inner.status.clone();
        let status = status.wait_for(|s| ready(s) || s.ended.is_some()).await.map_err(|_| ZkError::Closed)?;
        match &status.ended {
            Some(e) if !ready(&status) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// The cached node at `path` (a full path, under the root).
    pub fn get(&self, path: &str) -> Option<CachedNode> {
        self.shared().mirror.get(path).map(|e| e.node())
    }

    /// The names of the cached children of `path`, sorted; `None` if `path` is not cached.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.shared().mirror.get(path).map(|e| e.child_names().map(str::to_string).collect())
    }

    /// How many nodes are cached.
    pub fn len(&self) -> usize {
        self.shared().mirror.len()
    }

    /// Whether no node is cached (the root does not exist, or is not loaded yet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every cached node by path (a copy).
    pub fn snapshot(&self) -> BTreeMap<String, CachedNode> {
        self.shared().mirror.snapshot()
    }

    /// A stream of the cache's events from now on: first the nodes already cached, as `Added`
    /// (and `Initialized` if the cache is), then every change (see the [module docs](self)).
    /// If the cache ends (its session ended and it does not rebuild), the stream yields that
    /// error and ends. The stream keeps the cache running.
    ///
    /// Events are queued for each stream until it takes them. A stream that falls too far behind
    /// (more than [`CacheBuilder::max_lag`] events not taken) is ended with
    /// [`Error::Lagged`] after the events it holds, so that a consumer that stopped reading
    /// cannot grow the process without bound; take a new stream to go on.
    pub fn events(&self) -> CacheEvents {
        let (subscriber, rx, queued) = Subscriber::new();
        let mut shared = self.shared();
        if let Some(e) = &shared.ended {
            shared.replay(&subscriber);
            subscriber.send(Err(e.clone()));
        } else if shared.resyncing {
            shared.deferred.push(subscriber);
        } else {
            shared.replay(&subscriber);
            shared.subscribers.push(subscriber);
        }
        CacheEvents { rx, queued, skip: None, _cache: self.inner.clone() }
    }

    /// Waits until the cache reflects every change made (on any session) before this call:
    /// after it returns, [`TreeCache::get`] and [`TreeCache::snapshot`] show them, and the
    /// streams have them queued. For tests and for read-your-writes across sessions.
    ///
    /// # Errors
    /// The cache's end (the session's terminal error, if the cache does not rebuild).
    /// Connection losses are waited out.
    ///
    /// # Cancellation safety
    /// Dropping the future only stops the wait.
    pub async fn sync(&self) -> Result<()> {
        loop {
            self.wait_for(|s| s.initialized && !s.resyncing && s.ended.is_none()).await?;
            let session = self.inner.status.borrow().session;
            let client = self.client();
            let synced = match client.sync(&self.inner.path).await {
                Err(e) if e.is_retryable() => client.wait_connected().await.and(Err(e)),
                other => other,
            };
            match synced {
                Ok(()) => {}
                Err(e) if e.is_retryable() => continue,
                // The task sees the session's end too: wait until it ends or moves on.
                Err(e) if e.is_terminal() => {
                    self.wait_for(|s| s.session != session).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            let (tx, rx) = oneshot::channel();
            if self.inner.commands.send(engine::Command::Fence(tx)).is_err() {
                return Err(self.ended());
            }
            match rx.await {
                Ok(true) => return Ok(()),
                // Something got in the way (a reconnection, a new session, a removed watch).
                Ok(false) | Err(_) if self.shared().ended.is_none() => continue,
                Ok(_) | Err(_) => return Err(self.ended()),
            }
        }
    }

    fn ended(&self) -> Error {
        self.shared().ended.clone().unwrap_or(Error::Zk(ZkError::Closed))
    }
}

/// A stream of a cache's events (see [`TreeCache::events`]).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct CacheEvents {
    rx: mpsc::UnboundedReceiver<Result<CacheEvent>>,
    /// Events sent to this stream and not taken yet.
    queued: Arc<AtomicUsize>,
    /// A path whose own events are left out (a children cache's parent).
    skip: Option<String>,
    _cache: Arc<Inner>,
}

impl Stream for CacheEvents {
    type Item = Result<CacheEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let item = std::task::ready!(self.rx.poll_recv(cx));
            if item.is_some() {
                self.queued.fetch_sub(1, Ordering::Relaxed);
            }
            let skipped = match (&item, &self.skip) {
                (Some(Ok(e)), Some(skip)) => e.path() == Some(skip.as_str()),
                _ => false,
            };
            if !skipped {
                return Poll::Ready(item);
            }
        }
    }
}
