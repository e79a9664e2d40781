//! Work queues on ZooKeeper: [`Queue`] (first in, first out), [`PriorityQueue`] and
//! [`DelayQueue`], one engine under all three, each consumed in one of two modes that the types
//! make explicit:
//!
//! - **at most once** ([`Queue::take`], [`Queue::stream`]): the item is read and deleted in one
//!   round trip and then returned. Exactly one consumer gets it. If the connection fails after
//!   the server deleted the item and before the reply arrives, the item is lost: that is what
//!   at-most-once means. Dropping a take in flight may lose the items it was taking.
//! - **at least once** ([`Queue::claim`], [`Queue::claims`]): the consumer gets a [`Claim`]
//!   on the item, which stays in the queue, in its place, invisible to other consumers, until
//!   the claim is [acked](Claim::ack) (the item is deleted) or [released](Claim::release)
//!   (the item is available again). If the claimant's session ends first, the claim goes with
//!   it and the item is available again, in its original place. No item is ever lost, and no
//!   item is handed to two live consumers at once.
//!
//! # Layout
//! Items are persistent sequential children of the queue path, their data the payload:
//! `<path>/qn-<seq>` for [`Queue`] (the layout of Curator's `SimpleDistributedQueue` and of
//! ZooKeeper's reference queue recipe), `<path>/qp-<priority>-<seq>` and
//! `<path>/qd-<due>-<seq>` for the others (see the item names below). A claim is two ephemeral
//! children of the item: `<item>/claim`, which only one consumer can create, and
//! `<item>/claim-<uuid>`, the claimant's own node, which proves whose the claim is. An ack is one
//! transaction that deletes both and the item, so it succeeds only while the claim is the
//! acker's own: an ack from a claimant whose claim was lost (its session ended, or its node was
//! deleted and someone else claimed the item) fails with [`Error::Lost`] and deletes nothing.
//!
//! | queue | item name |
//! | --- | --- |
//! | [`Queue`] | `qn-<seq>` |
//! | [`PriorityQueue`] | `qp-<8 hex digits: the i32 priority with its sign bit flipped>-<seq>` |
//! | [`DelayQueue`] | `qd-<16 hex digits: due time in ms since the Unix epoch>-<seq>` |
//!
//! # Sharing a queue with Java and Python
//! - Curator's `SimpleDistributedQueue` (and ZooKeeper's reference `DistributedQueue`): the
//!   same layout. Java producers and Rust consumers, or the reverse, share one queue. Mixing
//!   Java consumers with Rust *claimants* is not supported: a Java `take` of an item under claim
//!   fails (the item has children, `NotEmpty`) instead of skipping it.
//! - Curator's `DistributedQueue`, `DistributedPriorityQueue`, `DistributedDelayQueue`: not
//!   compatible (items are `queue-<seq>` whose data is Curator's own multi-item serialization,
//!   and their lock nodes live elsewhere).
//! - kazoo's `Queue` (`entry-<priority>-<seq>`) and `LockingQueue` (`entries/` and `taken/`
//!   subtrees): not compatible.
//!
//! # Many consumers, long queues
//! A consumer lists the queue once and works through its copy of the listing: a FIFO consumer
//! lists again only when its copy is used up, whatever the length of the queue (no listing per
//! item). Batches ([`Queue::take_batch`], [`Queue::claim_batch`]) send all their requests at
//! once. A consumer that finds nothing leaves one watch on the queue's children (and on the
//! claims it found, which it wakes for when they are released), so a put wakes the waiting
//! consumers once each, and each lists once for everything put meanwhile. A consumer's memory
//! is its copy of the listing, 24 bytes an item (the names are not kept), freed as it is used
//! up, and nothing per item taken (`tests/queue_memory.rs` drains 100 000 items).
//!
//! Order: a lone consumer takes items strictly in queue order. Consumers that meet each other
//! on the same items (most of a batch already taken or claimed) divide the listing into lanes
//! by sequence number and each takes from its own lane first, dropping the others' (what they
//! leave shows up in the next listing): they then mostly try different items instead of all
//! racing for the head, where every failed delete or claim costs the server a write. Such
//! consumers take items roughly, not strictly, in queue order. An item given back (a claim
//! released, dropped, or gone with its claimant's session) is in its original place in the
//! queue: the handle that gave it back takes it next, and every other consumer sees it at its
//! next listing.
//!
//! A listing is one reply. Each item's name costs 17 bytes of it (`qn-`; 26 for priority and
//! 34 for delay items), so a client with the default 4 MiB reply limit lists about 240 000
//! FIFO items, and a Java client with ZooKeeper's 1 MiB `jute.maxbuffer` about 60 000. Past its
//! limit, a listing fails at once with [`Error::TooManyChildren`] (checked against the
//! directory's child count before a listing that might not fit, and mapped from the server's
//! own limit), rather than breaking the connection and retrying forever. Split a queue that
//! long across several paths, or raise the limit.
//!
//! # What a put guarantees
//! A put whose reply is lost with the connection fails with `ConnectionLoss`, and whether the
//! item was added is unknown: a sequential node cannot be recognised afterwards. Retrying may
//! add it twice; consumers of such a queue should tolerate duplicates. [`Queue::put_all`] adds
//! all its items or none, in one transaction.

mod engine;
mod names;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use conclave_core::{path, Client, Data, Error as ZkError, Stat};
use futures::Stream;

use crate::error::{Error, Result};
use crate::hold::{Hold, LossPolicy, LossReason};
use crate::internal::watch;
use crate::wait::{wait_forms, Wait};

use engine::{Claiming, Engine, Take};
pub use names::{Delay, Fifo, Order, Priority};

/// An item taken from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    path: String,
    data: Bytes,
    stat: Stat,
}

impl Item {
    /// The item's node path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The item's node name (`qn-0000000042`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }

    /// The payload.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The payload, taken out.
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// The item node's stat when it was read.
    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    /// The priority of a [`PriorityQueue`] item.
    pub fn priority(&self) -> Option<i32> {
        names::parse::<Priority>(self.name()).map(|e| names::priority_of(e.key))
    }

    /// The due time of a [`DelayQueue`] item.
    pub fn due(&self) -> Option<SystemTime> {
        names::parse::<Delay>(self.name()).map(|e| names::due_of(e.key))
    }
}

/// A claimed item (at-least-once consumption): the item stays in the queue, invisible to other
/// consumers, until the claim is [acked](Claim::ack) (deleted with the item) or
/// [released](Claim::release) (the item is available again).
///
/// A claim is a [`Hold`] on the claimant's own node under the item, so it has what every hold
/// has: [`Claim::lost`] resolves when the claim may be gone (by default as soon as the
/// connection is lost; see [`LossPolicy`]), and [`Claim::fencing_token`] grows with each new
/// claim of the same item. Dropping a claim releases it in the background.
#[must_use = "a claim is released (the item given back) as soon as it is dropped"]
pub struct Claim {
    item: Item,
    /// `None` once acked or released.
    hold: Option<Hold>,
    /// Puts the item back into the claiming handle's listing when the claim gives it back.
    back: Option<engine::GiveBack>,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim").field("item", &self.item.path).field("hold", &self.hold).finish()
    }
}

impl Claim {
    /// The claimed item.
    pub fn item(&self) -> &Item {
        &self.item
    }

    /// The claimed item's payload.
    pub fn data(&self) -> &Bytes {
        &self.item.data
    }

    /// The hold behind the claim (the claimant's own node under the item).
    pub fn hold(&self) -> &Hold {
        self.hold.as_ref().expect("a claim holds until it is acked or released")
    }

    /// The `czxid` of the claimant's own node: every later claim of the same item has a
    /// greater one, so a resource that remembers the highest token it accepted per item can
    /// refuse a claimant that was paused past the end of its claim.
    pub fn fencing_token(&self) -> u64 {
        self.hold().fencing_token()
    }

    /// Resolves, with the reason, once the claim may no longer be held (see [`Hold::lost`]):
    /// another consumer may then get the item.
    pub fn lost(&self) -> impl std::future::Future<Output = LossReason> + Send + 'static {
        self.hold().lost()
    }

    /// Whether the claim is held as far as this client can tell (see [`Hold::is_held`]).
    pub fn is_held(&self) -> bool {
        self.hold().is_held()
    }

    /// Acknowledges the item: deletes it with the claim, in one transaction that succeeds only
    /// while the claim is still this claimant's. A reply lost with the connection is settled
    /// after the reconnect to the same session (from whether the claimant's own node and the
    /// item are still there), so an ack is never reported refused when it was applied, nor
    /// applied twice.
    ///
    /// # Errors
    /// - [`Error::Lost`] if the claim was lost first (the session had ended, or the claimant's
    ///   node was deleted): nothing was deleted, and the item is (or will be) handed out again.
    /// - The session's terminal error (`SessionExpired`, ...) if the session ended while the
    ///   ack was in flight: whether it was applied is then unknown. If it was not, the item is
    ///   handed out again (at-least-once); if it was, it is gone.
    /// - `NoAuth` if the item may not be deleted (the claim is then released).
    pub async fn ack(mut self) -> Result<()> {
        let hold = self.hold.take().expect("a claim holds until it is acked or released");
        let client = hold.client().clone();
        let own = hold.path().to_string();
        let item = self.item.path.clone();
        let claim = path::join(&item, engine::CLAIM);
        if client.state().is_terminal() {
            // Nothing can be sent: the claim went with the session.
            hold.settle();
            return Err(Error::Lost { path: own, reason: LossReason::SessionLost });
        }
        let refused = |hold: Hold| {
            let (client, item, own) = (&client, &item, &own);
            async move {
                hold.settle();
                clear_orphan(client, item).await;
                Err(Error::Lost { path: own.clone(), reason: LossReason::NodeDeleted })
            }
        };
        let unknown = |hold: Hold, e: ZkError| {
            hold.settle();
            Err(Error::from(e))
        };
        loop {
            let txn = client.transaction().delete(&own, None).delete(&claim, None).delete(&item, None).commit();
            match txn.await {
                Ok(_) => {
                    hold.settle();
                    return Ok(());
                }
                Err(ZkError::MultiFailed { index, source }) if index > 0 || *source == ZkError::NoNode => {
                    if index > 0 {
                        // Our own node is there but the claim is not ours alone any more: remove
                        // ours only.
                        drop(client.delete_guaranteed(&own, None));
                    }
                    return refused(hold).await;
                }
                Err(e) if e.is_terminal() => return unknown(hold, e),
                Err(e) if e.is_retryable() => {
                    if let Err(e) = client.wait_connected().await {
                        return unknown(hold, e);
                    }
                    let gone = |node: String| {
                        let client = client.clone();
                        async move { watch::answered(&client, || async { Ok(client.exists(&node).await?.is_none()) }).await }
                    };
                    let outcome = match gone(own.clone()).await {
                        Ok(false) => continue,
                        Ok(true) => gone(item.clone()).await,
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(true) => {
                            hold.settle();
                            return Ok(());
                        }
                        Ok(false) => return refused(hold).await,
                        Err(Error::Zk(e)) => return unknown(hold, e),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Gives the item back: it is available to consumers again, in its original place.
    ///
    /// # Errors
    /// [`Error::Lost`] if the claim had been lost already; the session's terminal error if it
    /// ended first (the claim went with it).
    pub async fn release(mut self) -> Result<()> {
        let hold = self.hold.take().expect("a claim holds until it is acked or released");
        let client = hold.client().clone();
        let released = hold.release().await;
        match &released {
            Ok(()) => self.back.take().into_iter().for_each(engine::GiveBack::give_back),
            Err(Error::Lost { reason: LossReason::NodeDeleted, .. }) => clear_orphan(&client, &self.item.path).await,
            Err(_) => {}
        }
        released
    }
}

/// After the claimant's own node was deleted by someone else: if the item's `claim` node is
/// still this session's and no other claimant's node is under the item, it is this claim's
/// leftover, which nobody else could ever remove while the session lives: delete it, so the
/// item is available again. (Nobody can claim the item in between: `claim` exists.)
async fn clear_orphan(client: &Client, item: &str) {
    let claim = path::join(item, engine::CLAIM);
    let Ok(children) = client.get_children(item).await else { return };
    if children != [engine::CLAIM] {
        return;
    }
    if let Ok(Some(stat)) = client.exists(&claim).await {
        if stat.ephemeral_owner == client.session_id() {
            let _ = client.delete(&claim, Some(stat.version)).await;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.hold.take().is_some() {
            // The hold's own drop has queued the release.
            self.back.take().into_iter().for_each(engine::GiveBack::give_back);
        }
    }
}

/// Writes the consumer methods shared by every kind of queue (they differ only in `put`).
macro_rules! consumers {
    () => {
        /// The queue's path.
        pub fn path(&self) -> &str {
            &self.engine.dir
        }

        /// The client the queue works through.
        pub fn client(&self) -> &Client {
            &self.engine.client
        }

        /// This queue handle with claims that consider themselves lost under `policy`
        /// (default [`LossPolicy::Suspended`]). A handle shares its listing with its clones;
        /// this one starts its own.
        pub fn loss_policy(&self, policy: LossPolicy) -> Self {
            let mut engine = Engine::new(self.engine.client.clone(), &self.engine.dir);
            engine.policy = policy;
            Self { engine: Arc::new(engine) }
        }

        wait_forms! {
            what: "an item (taken at most once)",
            with: take_with() -> Item,
            forever: take,
            once: poll,
            timeout: take_timeout,
            cancellable: take_cancellable,
            dropped: "Dropping the future while its requests are in flight may lose the item being taken (deleted on the server, never returned); a timeout or cancellation through the `Wait` never does.",
        }

        /// Takes the first available item, at most once: reads and deletes it, then returns it.
        /// Waits within `wait`'s limits while the queue has no available item: `None` if they
        /// were reached first. The limits end only the waiting: an item being taken is always
        /// returned.
        ///
        /// # Errors
        /// `InvalidPath`; `NoAuth`; [`Error::TooManyChildren`] if the queue cannot be listed;
        /// the session's terminal error. Connection losses are ridden out, except that an item
        /// whose delete was applied but whose reply was lost is lost.
        pub async fn take_with(&self, wait: Wait) -> Result<Option<Item>> {
            Ok(self.take_batch_with(1, wait).await?.and_then(|mut items| items.pop()))
        }

        wait_forms! {
            what: "a batch of up to `n` items (taken at most once)",
            with: take_batch_with(n: usize) -> Vec<Item>,
            forever: take_batch,
            once: poll_batch,
            timeout: take_batch_timeout,
            cancellable: take_batch_cancellable,
            dropped: "Dropping the future while its requests are in flight may lose the items being taken; a timeout or cancellation through the `Wait` never does.",
        }

        /// Takes up to `n` available items (at least one) at most once, with their requests
        /// pipelined: as [`Self::take_with`], for as many items as are available at once, in
        /// queue order.
        ///
        /// # Errors
        /// As [`Self::take_with`]. Items taken by a call that then fails are returned by the
        /// next call on this handle (or a clone).
        pub async fn take_batch_with(&self, n: usize, wait: Wait) -> Result<Option<Vec<Item>>> {
            self.engine.get::<Take>(n, wait).await
        }

        wait_forms! {
            what: "a claim on an item (at-least-once consumption)",
            with: claim_with() -> Claim,
            forever: claim,
            once: try_claim,
            timeout: claim_timeout,
            cancellable: claim_cancellable,
        }

        /// Claims the first available item (at-least-once consumption): it stays in the queue,
        /// invisible to other consumers, until the [`Claim`] is acked or released, or this
        /// session ends. Waits within `wait`'s limits while no item is available (including
        /// items claimed by others, whose release wakes the wait): `None` if they were reached
        /// first.
        ///
        /// # Errors
        /// `InvalidPath`; `NoAuth`; [`Error::TooManyChildren`] if the queue cannot be listed;
        /// the session's terminal error. Connection losses are ridden out: a claim whose reply
        /// was lost is recognised after the reconnect, by its own node.
        pub async fn claim_with(&self, wait: Wait) -> Result<Option<Claim>> {
            Ok(self.claim_batch_with(1, wait).await?.and_then(|mut claims| claims.pop()))
        }

        wait_forms! {
            what: "claims on up to `n` items",
            with: claim_batch_with(n: usize) -> Vec<Claim>,
            forever: claim_batch,
            once: try_claim_batch,
            timeout: claim_batch_timeout,
            cancellable: claim_batch_cancellable,
        }

        /// Claims up to `n` available items (at least one), with their requests pipelined: as
        /// [`Self::claim_with`], for as many items as are available at once, in queue order.
        ///
        /// # Errors
        /// As [`Self::claim_with`].
        pub async fn claim_batch_with(&self, n: usize, wait: Wait) -> Result<Option<Vec<Claim>>> {
            self.engine.get::<Claiming>(n, wait).await
        }

        /// A consumer stream of items taken at most once, one at a time (an item is only taken
        /// when the stream is polled for it). It ends after the first error (the session's end,
        /// say), which it yields.
        pub fn stream(&self) -> impl Stream<Item = Result<Item>> + Send + 'static {
            let queue = self.clone();
            async_stream::stream! {
                loop {
                    let item = queue.take().await;
                    let end = item.is_err();
                    yield item;
                    if end {
                        break;
                    }
                }
            }
        }

        /// A consumer stream of claims (at-least-once), claimed up to `batch` at a time: claims
        /// not yet yielded are released when the stream is dropped. It ends after the first
        /// error, which it yields.
        pub fn claims(&self, batch: usize) -> impl Stream<Item = Result<Claim>> + Send + 'static {
            let queue = self.clone();
            async_stream::stream! {
                loop {
                    match queue.claim_batch(batch).await {
                        Ok(claims) => {
                            for claim in claims {
                                yield Ok(claim);
                            }
                        }
                        Err(e) => {
                            yield Err(e);
                            break;
                        }
                    }
                }
            }
        }

        /// The first available item (not claimed, and due), without taking it; `None` if there
        /// is none. Lists the queue.
        ///
        /// # Errors
        /// `InvalidPath`; `NoAuth`; [`Error::TooManyChildren`]; the session's terminal error
        /// (connection losses are ridden out).
        pub async fn peek(&self) -> Result<Option<Item>> {
            self.engine.peek().await
        }

        /// How many children the queue node has (its items, claimed or not, and any foreign
        /// node); 0 if it does not exist. One read, whatever the length.
        ///
        /// # Errors
        /// `InvalidPath`; the session's terminal error (connection losses are ridden out).
        pub async fn len(&self) -> Result<usize> {
            self.engine.len().await
        }

        /// Whether the queue has no children ([`Self::len`] is 0).
        ///
        /// # Errors
        /// As [`Self::len`].
        pub async fn is_empty(&self) -> Result<bool> {
            Ok(self.len().await? == 0)
        }
    };
}

/// A first-in, first-out queue (Curator's `SimpleDistributedQueue` layout: `<path>/qn-<seq>`).
/// See the [module docs](self) for the two consumption modes.
///
/// ```no_run
/// # async fn demo(client: conclave::Client) -> conclave::Result<()> {
/// use conclave::queue::Queue;
///
/// let jobs = Queue::new(client, "/jobs");
/// jobs.put(b"resize 42.png").await?;
/// // At least once: the item is deleted only by the ack.
/// let claim = jobs.claim().await?;
/// println!("working on {:?}", claim.data());
/// claim.ack().await?;
/// # Ok(()) }
/// ```
///
/// A handle is cheap to clone; clones share one copy of the listing.
#[derive(Clone)]
pub struct Queue {
    engine: Arc<Engine<Fifo>>,
}

/// A queue that hands out the lowest priority value first, and items of one priority in the
/// order they were put (`<path>/qp-<priority>-<seq>`).
#[derive(Clone)]
pub struct PriorityQueue {
    engine: Arc<Engine<Priority>>,
}

/// A queue whose items are invisible until their due time, earliest due first
/// (`<path>/qd-<due>-<seq>`). A waiting consumer sleeps until the earliest due item (or a put),
/// without polling.
///
/// Due times are wall-clock times (milliseconds since the Unix epoch) compared with the
/// consumer's clock: with producers and consumers on different machines, an item falls due when
/// the consumer's clock says so.
#[derive(Clone)]
pub struct DelayQueue {
    engine: Arc<Engine<Delay>>,
}

macro_rules! debug_queue {
    ($($queue:ident),*) => {$(
        impl fmt::Debug for $queue {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($queue)).field("path", &self.engine.dir).finish_non_exhaustive()
            }
        }
    )*};
}
debug_queue!(Queue, PriorityQueue, DelayQueue);

impl Queue {
    /// The queue on `path` (created with the first put). Nothing is sent until a call.
    pub fn new(client: Client, path: &str) -> Queue {
        Queue { engine: Arc::new(Engine::new(client, path)) }
    }

    /// Puts an item at the end of the queue, creating the queue node (and its parents) if
    /// needed. Returns the item's path.
    ///
    /// # Errors
    /// `InvalidPath`; `NoAuth`; `DataTooLarge`; `ConnectionLoss` if the reply was lost (the item
    /// may or may not have been added); the session's terminal error.
    pub async fn put(&self, data: impl Into<Data>) -> Result<String> {
        let mut paths = self.engine.put(vec![(0, data.into())]).await?;
        Ok(paths.pop().expect("one item put"))
    }

    /// Puts several items at the end of the queue, in order, in one transaction: all or none.
    /// Returns their paths.
    ///
    /// # Errors
    /// As [`Queue::put`]; a transaction must fit in one request (the client's frame limit).
    pub async fn put_all<I, D>(&self, items: I) -> Result<Vec<String>>
    where
        I: IntoIterator<Item = D>,
        D: Into<Data>,
    {
        self.engine.put(items.into_iter().map(|d| (0, d.into())).collect()).await
    }

    consumers!();
}

impl PriorityQueue {
    /// The priority queue on `path` (created with the first put). Nothing is sent until a call.
    pub fn new(client: Client, path: &str) -> PriorityQueue {
        PriorityQueue { engine: Arc::new(Engine::new(client, path)) }
    }

    /// Puts an item with `priority` (lower values are taken first). Returns its path.
    ///
    /// # Errors
    /// As [`Queue::put`].
    pub async fn put(&self, priority: i32, data: impl Into<Data>) -> Result<String> {
        let mut paths = self.engine.put(vec![(names::priority_key(priority), data.into())]).await?;
        Ok(paths.pop().expect("one item put"))
    }

    /// Puts several `(priority, data)` items in one transaction: all or none.
    ///
    /// # Errors
    /// As [`Queue::put_all`].
    pub async fn put_all<I, D>(&self, items: I) -> Result<Vec<String>>
    where
        I: IntoIterator<Item = (i32, D)>,
        D: Into<Data>,
    {
        self.engine.put(items.into_iter().map(|(p, d)| (names::priority_key(p), d.into())).collect()).await
    }

    consumers!();
}

impl DelayQueue {
    /// The delay queue on `path` (created with the first put). Nothing is sent until a call.
    pub fn new(client: Client, path: &str) -> DelayQueue {
        DelayQueue { engine: Arc::new(Engine::new(client, path)) }
    }

    /// Puts an item that falls due at `due` (to the millisecond). Returns its path.
    ///
    /// # Errors
    /// As [`Queue::put`].
    pub async fn put(&self, due: SystemTime, data: impl Into<Data>) -> Result<String> {
        let mut paths = self.engine.put(vec![(names::due_key(due), data.into())]).await?;
        Ok(paths.pop().expect("one item put"))
    }

    /// Puts an item that falls due `delay` from now. Returns its path.
    ///
    /// # Errors
    /// As [`Queue::put`].
    pub async fn put_in(&self, delay: Duration, data: impl Into<Data>) -> Result<String> {
        self.put(SystemTime::now() + delay, data).await
    }

    /// Puts several `(due, data)` items in one transaction: all or none.
    ///
    /// # Errors
    /// As [`Queue::put_all`].
    pub async fn put_all<I, D>(&self, items: I) -> Result<Vec<String>>
    where
        I: IntoIterator<Item = (SystemTime, D)>,
        D: Into<Data>,
    {
        self.engine.put(items.into_iter().map(|(t, d)| (names::due_key(t), d.into())).collect()).await
    }

    consumers!();
}
