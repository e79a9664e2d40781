//! The one engine behind every kind of queue: puts, the consumer's cached listing, taking and
//! claiming items in pipelined batches, and the wait for items on the shared watch loop.
//!
//! A consumer lists the queue once and works through the listing in order; it lists again only
//! when the listing is used up (FIFO: items put later all sort after it) or, for priority and
//! delay queues, at each call (a later put may sort first). Taking `n` items sends the `n`
//! requests at once and waits for all the replies together. A consumer that finds nothing
//! available lists once more leaving a watch, and waits: for that watch (a put), for the claims
//! it found on items (a claim released or gone with its session), for the next item to fall due,
//! or for a reconnection. So a put wakes each *waiting* consumer once, and each lists once for
//! everything put meanwhile; consumers that are busy hold no watch and are not woken.

use std::collections::{HashSet, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use bytes::Bytes;
use conclave_core::{path, Client, CreateMode, Data, Error as ZkError, Stat};
use futures::future::{join_all, BoxFuture, FutureExt};

use super::names::{self, Entry, Order};
use super::{Claim, Item};
use crate::error::{Error, Result};
use crate::hold::{Hold, LossPolicy};
use crate::internal::ensure_persistent;
use crate::internal::watch::{self, Round, Step};
use crate::wait::Wait;

/// The name of the node that makes a claim exclusive: `<item>/claim`.
pub(crate) const CLAIM: &str = "claim";
/// The prefix of the claimant's own node, `<item>/claim-<uuid>`, which proves whose the claim is.
const OWN: &str = "claim-";

/// What one item's attempt came to.
pub(crate) enum Outcome<T> {
    /// Taken or claimed.
    Got(T),
    /// Gone (taken by someone else, or acked).
    Gone,
    /// Claimed by another consumer (`<item>/claim` exists).
    Claimed(Entry),
    /// The attempt failed; the entry goes back to the front of the listing.
    Failed(Entry, Error),
    /// A claim's reply was lost with the connection: whether it was made is settled after the
    /// reconnect, from its own node (item path, own node path).
    Uncertain(Entry, Error, (String, String)),
}

/// A consumption mode: what is done to an item, and where results are kept when a call fails
/// after getting some.
pub(crate) trait Mode<O: Order>: Sized {
    /// What the consumer gets.
    type Out: Send + 'static;
    /// The attempt on one item (its requests are sent before this returns).
    fn fire(engine: &Engine<O>, entry: Entry) -> BoxFuture<'static, Outcome<Self::Out>>;
    /// Results of an earlier call that failed before it could return them.
    fn stash(state: &mut State) -> &mut VecDeque<Self::Out>;
}

/// At-most-once: read the item and delete it, in one round trip.
pub(crate) enum Take {}

/// At-least-once: claim the item (read it and create its claim nodes, in one round trip).
pub(crate) enum Claiming {}

/// The consumer's state, shared by every clone of a queue handle.
#[derive(Default)]
pub(crate) struct State {
    /// The rest of the last listing, in order.
    cache: VecDeque<Entry>,
    /// Items taken by a call that then failed: handed out by the next call.
    taken: VecDeque<Item>,
    /// Claims made by a call that then failed: handed out by the next call.
    claims: VecDeque<Claim>,
    /// Claims whose transaction's reply was lost with the connection: (item path, own node).
    uncertain: Vec<(String, String)>,
    /// Check the directory's size before listing it (the last listing was large, or was lost).
    check_size: bool,
    /// Items of the listing found claimed by other consumers: skipped without a request until
    /// a waiting round finds their claim gone.
    claimed: HashSet<Entry>,
    /// How much other consumers work on the same listing (0 to [`MAX_CONTENTION`]): raised
    /// when most of a batch had been taken or claimed by others first, lowered when none of it
    /// had.
    contention: u32,
    /// This consumer's lane under contention (see [`State::take_from_lane`]), drawn anew each
    /// time the contention rises.
    lane: u64,
    /// Windows in a row that met no other consumer.
    calm: u32,
    /// Attempts, and races lost among them, since the contention was last judged.
    window: (usize, usize),
}

/// The most lanes a contended consumer divides a listing into: `2^MAX_CONTENTION`.
const MAX_CONTENTION: u32 = 3;

impl State {
    /// Removes from the listing and returns up to `n` entries to try, in order: from the head
    /// while no other consumer works on the same items, so that a lone consumer goes strictly
    /// in queue order. Under contention the listing is divided into `2^contention` lanes by
    /// sequence number and this consumer takes the entries of its own lane, dropping the
    /// others' (their consumers take them; what they leave is in the next listing), unless its
    /// lane has none left, when it takes the others' too. Consumers working on one listing then
    /// mostly try different items, instead of all racing for the head and failing: a failed
    /// delete or claim is a write on the server, as costly as one that succeeds (4 consumers
    /// draining 2000 items tried 8000 times without lanes, 4000 to 5000 with them). Entries
    /// claimed by others are dropped on the way.
    fn take_from_lane(&mut self, n: usize) -> Vec<Entry> {
        let lanes = 1u64 << self.contention;
        let mut batch = Vec::with_capacity(n.min(self.cache.len()));
        if lanes > 1 {
            // Other lanes' entries met on the way are dropped: their consumers take them, and
            // what they leave shows up again in the next listing (a read, far cheaper than a
            // failed write). Looked at no further than this, so that a pass costs O(n).
            let mut others = Vec::new();
            let scan = n.saturating_mul(lanes as usize * 2);
            while batch.len() < n && others.len() < scan {
                let Some(e) = self.cache.pop_front() else { break };
                if self.claimed.contains(&e) {
                    continue;
                }
                if (e.seq as u64) % lanes == self.lane {
                    batch.push(e);
                } else {
                    others.push(e);
                }
            }
            if batch.is_empty() {
                // Nothing in this lane: the others' entries after all (their consumers may be
                // gone), in order.
                for e in others.into_iter().rev() {
                    self.cache.push_front(e);
                }
            } else {
                return batch;
            }
        }
        while batch.len() < n {
            let Some(e) = self.cache.pop_front() else { break };
            if !self.claimed.contains(&e) {
                batch.push(e);
            }
        }
        batch
    }

    /// Learns from a batch of `tried` items of which `lost` had been taken or claimed by
    /// others first. Judged over at least [`CONTENTION_WINDOW`] attempts (one item found
    /// claimed is no race): more lanes when most were lost, fewer after a run of windows where
    /// none were.
    fn contended(&mut self, tried: usize, lost: usize) {
        self.window.0 += tried;
        self.window.1 += lost;
        if self.window.0 < CONTENTION_WINDOW {
            return;
        }
        let (tried, lost) = std::mem::take(&mut self.window);
        if lost * 2 > tried {
            self.calm = 0;
            if self.contention < MAX_CONTENTION {
                self.contention += 1;
                self.lane = random() % (1 << self.contention);
            }
        } else if lost == 0 && self.contention > 0 {
            self.calm += 1;
            if self.calm >= CALM_BATCHES {
                self.calm = 0;
                self.contention -= 1;
                self.lane %= 1 << self.contention;
            }
        }
    }
}

/// How many windows in a row must meet no other consumer before the lanes are halved.
const CALM_BATCHES: u32 = 4;

/// How many attempts the contention is judged over.
const CONTENTION_WINDOW: usize = 16;

/// A random number (from the standard library's randomly keyed hasher).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

/// What a pass over the listing found when nothing could be had.
struct Nothing {
    /// The earliest due time of an item not yet due (delay queues).
    next_due: Option<u64>,
}

/// The queue engine of one queue handle (shared by its clones).
pub(crate) struct Engine<O> {
    pub(crate) client: Client,
    pub(crate) dir: String,
    pub(crate) policy: LossPolicy,
    /// Shared (weakly) with the claims made through this engine, which put their item back
    /// into the listing when they give it back.
    state: Arc<Mutex<State>>,
    order: PhantomData<fn() -> O>,
}

impl<O: Order> Engine<O> {
    pub(crate) fn new(client: Client, dir: &str) -> Engine<O> {
        Engine {
            client,
            dir: dir.to_string(),
            policy: LossPolicy::default(),
            state: Arc::default(),
            order: PhantomData,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts items with the given keys in one transaction (one item: one create), creating the
    /// queue's missing parents. Returns the items' paths.
    ///
    /// A put whose reply is lost with the connection fails with `ConnectionLoss`, and whether
    /// the items were added is unknown: a sequential create cannot be recognised afterwards.
    pub(crate) async fn put(&self, items: Vec<(u64, Data)>) -> Result<Vec<String>> {
        path::validate_path(&self.dir)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let paths: Vec<String> =
            items.iter().map(|(key, _)| path::join(&self.dir, &names::prefix::<O>(*key))).collect();
        let mut created_parents = false;
        loop {
            let result = if items.len() == 1 {
                let (_, data) = &items[0];
                self.client
                    .create(&paths[0], data.clone(), CreateMode::PersistentSequential)
                    .await
                    .map(|(p, _)| vec![p])
            } else {
                let txn = items.iter().zip(&paths).fold(self.client.transaction(), |t, ((_, d), p)| {
                    t.create(p, d.clone(), CreateMode::PersistentSequential)
                });
                txn.commit().await.map(|results| {
                    results
                        .into_iter()
                        .filter_map(|r| match r {
                            conclave_core::OpResult::Create { path, .. } => Some(path),
                            _ => None,
                        })
                        .collect()
                })
            };
            // The queue node is missing: a create fails with NONODE, a transaction at its first.
            let missing = match &result {
                Err(ZkError::NoNode) => true,
                Err(ZkError::MultiFailed { index: 0, source }) => **source == ZkError::NoNode,
                _ => false,
            };
            if missing && !created_parents {
                created_parents = true;
                ensure_persistent(&self.client, &self.dir).await?;
                continue;
            }
            return result.map_err(Error::from);
        }
    }

    /// Up to `n` (at least one) items or claims, within `wait`: `None` if the wait was over
    /// first. A call in progress is never cut short by the wait's limits: they end only the
    /// waiting, so no taken item is dropped on the way.
    pub(crate) async fn get<M: Mode<O>>(&self, n: usize, wait: Wait) -> Result<Option<Vec<M::Out>>> {
        path::validate_path(&self.dir)?;
        let n = n.max(1);
        if O::KEY_DIGITS > 0 {
            // A priority or due time put since the last listing may sort first.
            self.state().cache.clear();
        }
        let bound = wait.start();
        let once = bound.once();
        // Whether the next listing leaves a watch: only just before waiting.
        let watched = std::sync::atomic::AtomicBool::new(false);
        let watched = &watched;
        watch::until_within(&self.client, &bound, |round| async move {
            use std::sync::atomic::Ordering::SeqCst;
            if let Ok(got) = self.pass::<M>(n).await? {
                return Ok(Step::Done(Some(got)));
            }
            let listed = self.list(watched.load(SeqCst).then_some(&round)).await?;
            let nothing = match self.pass::<M>(n).await? {
                Ok(got) => return Ok(Step::Done(Some(got))),
                Err(nothing) => nothing,
            };
            if once {
                return Ok(Step::Done(None));
            }
            if !watched.swap(true, SeqCst) {
                // Look once more, leaving a watch, before waiting.
                return Ok(Step::Again);
            }
            watched.store(false, SeqCst);
            if !listed && round.watch_exists(&self.dir).await?.is_some() {
                return Ok(Step::Again);
            }
            // Wake when a claim on an item of the listing goes (released, or gone with its
            // claimant's session); one that is gone already is tried at once.
            let claimed: Vec<Entry> = self.state().claimed.iter().copied().collect();
            let claims: Vec<String> =
                claimed.iter().map(|e| path::join(&path::join(&self.dir, &e.name::<O>()), CLAIM)).collect();
            let mut freed = false;
            for (entry, stat) in claimed.iter().zip(join_all(claims.iter().map(|c| round.watch_exists(c))).await) {
                if stat?.is_none() {
                    self.state().claimed.remove(entry);
                    freed = true;
                }
            }
            if freed {
                self.state().cache.clear();
                return Ok(Step::Again);
            }
            Ok(match nothing.next_due {
                Some(due) => Step::WaitUntil(instant_of(due)),
                None => Step::Wait,
            })
        })
        .await
    }

    /// Takes or claims up to `n` items from the cached listing, batch after batch until one
    /// gets something or the listing is used up.
    async fn pass<M: Mode<O>>(&self, n: usize) -> Result<std::result::Result<Vec<M::Out>, Nothing>> {
        self.resolve_uncertain().await?;
        {
            let mut state = self.state();
            let stash = M::stash(&mut state);
            if !stash.is_empty() {
                let k = n.min(stash.len());
                return Ok(Ok(stash.drain(..k).collect()));
            }
        }
        let mut got = Vec::new();
        loop {
            if got.len() >= n {
                return Ok(Ok(got));
            }
            let (batch, next_due) = self.next_batch(n - got.len());
            if batch.is_empty() {
                return Ok(if got.is_empty() { Err(Nothing { next_due }) } else { Ok(got) });
            }
            let tried = batch.len();
            let outcomes = join_all(batch.into_iter().map(|entry| M::fire(self, entry))).await;
            let lost = outcomes.iter().filter(|o| matches!(o, Outcome::Gone | Outcome::Claimed(_))).count();
            self.state().contended(tried, lost);
            let mut failure = None;
            let (mut retry, mut uncertain) = (Vec::new(), Vec::new());
            for outcome in outcomes {
                match outcome {
                    Outcome::Got(out) => got.push(out),
                    Outcome::Gone => {}
                    Outcome::Claimed(entry) => {
                        self.state().claimed.insert(entry);
                    }
                    Outcome::Failed(entry, e) => {
                        retry.push(entry);
                        failure.get_or_insert(e);
                    }
                    Outcome::Uncertain(entry, e, claim) => {
                        retry.push(entry);
                        uncertain.push(claim);
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failure {
                let mut state = self.state();
                state.uncertain.extend(uncertain);
                for entry in retry.into_iter().rev() {
                    state.cache.push_front(entry);
                }
                // Handed out by the next call rather than lost with this one.
                M::stash(&mut state).extend(got);
                return Err(e);
            }
            if !got.is_empty() {
                return Ok(Ok(got));
            }
        }
    }

    /// The next `n` entries of the listing that can be taken now, and the due time of the
    /// first one that cannot yet.
    fn next_batch(&self, n: usize) -> (Vec<Entry>, Option<u64>) {
        let mut state = self.state();
        if O::DELAYED {
            // Only what is due, from the head, in due order.
            let now = names::due_key(SystemTime::now());
            let mut batch = Vec::new();
            while batch.len() < n {
                match state.cache.front() {
                    Some(e) if e.key > now => return (batch, Some(e.key)),
                    Some(e) if state.claimed.contains(e) => drop(state.cache.pop_front()),
                    Some(_) => batch.extend(state.cache.pop_front()),
                    None => break,
                }
            }
            return (batch, None);
        }
        let batch = state.take_from_lane(n);
        if state.cache.is_empty() {
            // A long listing used up: give its memory back now, not at the next one.
            state.cache = VecDeque::new();
        }
        (batch, None)
    }

    /// Replaces the cached listing with a fresh one, leaving a watch on the queue's children if
    /// `round` is given. `false` if the queue node does not exist (an empty listing).
    ///
    /// # Errors
    /// [`Error::TooManyChildren`] if the listing cannot fit in one reply.
    async fn list(&self, round: Option<&Round>) -> Result<bool> {
        let Some(children) = self.children(round).await? else { return Ok(false) };
        let entries = names::sorted::<O>(&children);
        let mut state = self.state();
        if !state.claimed.is_empty() {
            let listed: HashSet<&Entry> = entries.iter().collect();
            let claimed = std::mem::take(&mut state.claimed);
            state.claimed = claimed.into_iter().filter(|e| listed.contains(e)).collect();
        }
        state.cache = entries.into();
        Ok(true)
    }

    /// The queue node's children (leaving a watch if `round` is given), or `None` if it does
    /// not exist. Checked against the reply limits first when a listing might not fit (the last
    /// one was large, or was lost with the connection), so that a listing too long fails at once
    /// instead of breaking the connection and being retried for ever.
    ///
    /// # Errors
    /// [`Error::TooManyChildren`] if the listing cannot fit in one reply.
    async fn children(&self, round: Option<&Round>) -> Result<Option<Vec<String>>> {
        let limit = self.client.max_reply_frame();
        if std::mem::replace(&mut self.state().check_size, true) {
            if let Some(stat) = self.client.exists(&self.dir).await? {
                self.fits(&stat, limit)?;
            }
        }
        let children = match round {
            Some(round) => round.watch_children(&self.dir).await,
            None => match self.client.get_children(&self.dir).await {
                Ok(children) => Ok(Some(children)),
                Err(ZkError::NoNode) => Ok(None),
                Err(e) => Err(e.into()),
            },
        };
        let children = match children {
            Err(e) if e == ZkError::MarshallingError => {
                // The server's own reply limit.
                let stat = self.client.exists(&self.dir).await?.unwrap_or_default();
                return Err(self.too_many(&stat, 0));
            }
            other => other?,
        };
        self.state().check_size = children.as_ref().is_some_and(|c| listing_bytes::<O>(c.len()) > limit / 4);
        Ok(children)
    }

    /// The first available item (not claimed, and due) without taking it, from a fresh listing.
    pub(crate) async fn peek(&self) -> Result<Option<Item>> {
        path::validate_path(&self.dir)?;
        let (client, dir) = (&self.client, self.dir.as_str());
        watch::answered(client, || async move {
            let Some(children) = self.children(None).await? else { return Ok(None) };
            let now = names::due_key(SystemTime::now());
            for entry in names::sorted::<O>(&children) {
                if O::DELAYED && entry.key > now {
                    break;
                }
                let item = path::join(dir, &entry.name::<O>());
                match client.get_data(&item).await {
                    Ok((data, stat)) if stat.num_children == 0 => return Ok(Some(Item { path: item, data, stat })),
                    Ok(_) | Err(ZkError::NoNode) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(None)
        })
        .await
    }

    /// How many children the queue node has; 0 if it does not exist.
    pub(crate) async fn len(&self) -> Result<usize> {
        path::validate_path(&self.dir)?;
        let (client, dir) = (&self.client, self.dir.as_str());
        watch::answered(client, || async move {
            Ok(client.exists(dir).await?.map_or(0, |s| usize::try_from(s.num_children).unwrap_or(0)))
        })
        .await
    }

    fn fits(&self, stat: &Stat, limit: usize) -> Result<()> {
        let bytes = listing_bytes::<O>(usize::try_from(stat.num_children).unwrap_or(0));
        if bytes > limit {
            return Err(self.too_many(stat, limit));
        }
        Ok(())
    }

    fn too_many(&self, stat: &Stat, limit: usize) -> Error {
        let children = usize::try_from(stat.num_children).unwrap_or(0);
        Error::TooManyChildren { path: self.dir.clone(), children, bytes: listing_bytes::<O>(children), limit }
    }

    /// Claims whose transaction's reply was lost: ours if our own node is there (then read the
    /// item and hand the claim out), else never made.
    async fn resolve_uncertain(&self) -> Result<()> {
        let uncertain = std::mem::take(&mut self.state().uncertain);
        if uncertain.is_empty() {
            return Ok(());
        }
        let mut claims = Vec::new();
        let mut failure = None;
        for (item, own) in uncertain {
            let found = async {
                let Some(stat) = self.client.exists(&own).await? else { return Ok::<_, Error>(None) };
                let (data, item_stat) = self.client.get_data(&item).await?;
                Ok(Some(self.claim_of(item.clone(), data, item_stat, own.clone(), stat)))
            };
            match found.await {
                Ok(Some(claim)) => claims.push(claim),
                Ok(None) => {}
                Err(e) => {
                    self.state().uncertain.push((item, own));
                    failure.get_or_insert(e);
                }
            }
        }
        self.state().claims.extend(claims);
        failure.map_or(Ok(()), Err)
    }

    fn claim_of(&self, item: String, data: Bytes, item_stat: Stat, own: String, own_stat: Stat) -> Claim {
        let back = names::parse::<O>(item.rsplit('/').next().unwrap_or_default())
            .map(|entry| GiveBack::new(&self.state, entry));
        new_claim(self.client.clone(), self.policy, back, Item { path: item, data, stat: item_stat }, own, own_stat)
    }
}

/// A claim on `item`, held by the claimant's own node `own` (the item's `claim` node goes with
/// it when the claim is released).
fn new_claim(
    client: Client,
    policy: LossPolicy,
    back: Option<GiveBack>,
    item: Item,
    own: String,
    own_stat: Stat,
) -> Claim {
    let hold = Hold::new(client, own, own_stat, policy).with_companion(path::join(&item.path, CLAIM));
    Claim { item, hold: Some(hold), back }
}

/// Roughly how many bytes a listing of `children` items of kind `O` takes (each name with its
/// length prefix, and the reply's header).
fn listing_bytes<O: Order>(children: usize) -> usize {
    let name = O::PREFIX.len() + O::KEY_DIGITS + usize::from(O::KEY_DIGITS > 0) + 10;
    children.saturating_mul(4 + name).saturating_add(64)
}

/// The instant on tokio's clock at which the wall-clock time `due` (ms since the epoch) comes.
fn instant_of(due: u64) -> tokio::time::Instant {
    let wait = names::due_of(due).duration_since(SystemTime::now()).unwrap_or_default();
    // Wake a millisecond late rather than early: due times are whole milliseconds.
    tokio::time::Instant::now() + wait + std::time::Duration::from_millis(1)
}

impl<O: Order> Mode<O> for Take {
    type Out = Item;

    fn fire(engine: &Engine<O>, entry: Entry) -> BoxFuture<'static, Outcome<Item>> {
        let item = path::join(&engine.dir, &entry.name::<O>());
        // Both sent now; the data is read before the delete is applied.
        let read = engine.client.get_data(&item);
        let delete = engine.client.delete(&item, None);
        async move {
            let (read, delete) = futures::join!(read, delete);
            match (delete, read) {
                (Ok(()), Ok((data, stat))) => Outcome::Got(Item { path: item, data, stat }),
                (Err(ZkError::NoNode), _) => Outcome::Gone,
                (Err(ZkError::NotEmpty), _) => Outcome::Claimed(entry),
                (Err(e), _) | (Ok(()), Err(e)) => Outcome::Failed(entry, e.into()),
            }
        }
        .boxed()
    }

    fn stash(state: &mut State) -> &mut VecDeque<Item> {
        &mut state.taken
    }
}

impl<O: Order> Mode<O> for Claiming {
    type Out = Claim;

    fn fire(engine: &Engine<O>, entry: Entry) -> BoxFuture<'static, Outcome<Claim>> {
        let item = path::join(&engine.dir, &entry.name::<O>());
        let claim = path::join(&item, CLAIM);
        let own = path::join(&item, &format!("{OWN}{}", uuid::Uuid::new_v4().simple()));
        let pending = Pending { client: engine.client.clone(), own: own.clone(), claim: claim.clone(), armed: true };
        // All three sent now, in this order: the claim, the item's data, our own node's stat.
        let txn = engine
            .client
            .transaction()
            .create(&claim, Bytes::new(), CreateMode::Ephemeral)
            .create(&own, Bytes::new(), CreateMode::Ephemeral)
            .commit();
        let read = engine.client.get_data(&item);
        let own_stat = engine.client.exists(&own);
        let (client, policy) = (engine.client.clone(), engine.policy);
        let back = GiveBack::new(&engine.state, entry);
        async move {
            // Moved in whole: undoes the attempt if this future is dropped before the outcome.
            let mut pending = pending;
            let (txn, read, own_stat) = futures::join!(txn, read, own_stat);
            let outcome = match (txn, read, own_stat) {
                (Ok(_), Ok((data, item_stat)), Ok(Some(stat))) => Outcome::Got(new_claim(
                    client,
                    policy,
                    Some(back),
                    Item { path: item, data, stat: item_stat },
                    own,
                    stat,
                )),
                (Err(ZkError::MultiFailed { index: 0, source }), _, _) => match *source {
                    ZkError::NodeExists => Outcome::Claimed(entry),
                    ZkError::NoNode => Outcome::Gone,
                    e => Outcome::Failed(entry, e.into()),
                },
                (Err(e), _, _) | (Ok(_), Err(e), _) | (Ok(_), _, Err(e)) if e.is_retryable() => {
                    // The claim may or may not have been made: settled after the reconnect.
                    pending.armed = false;
                    return Outcome::Uncertain(entry, e.into(), (item, own));
                }
                (Err(e), _, _) | (Ok(_), Err(e), _) | (Ok(_), _, Err(e)) => Outcome::Failed(entry, e.into()),
                (Ok(_), Ok(_), Ok(None)) => Outcome::Failed(entry, ZkError::NoNode.into()),
            };
            if matches!(outcome, Outcome::Got(_) | Outcome::Claimed(_) | Outcome::Gone) {
                pending.armed = false;
            }
            outcome
        }
        .boxed()
    }

    fn stash(state: &mut State) -> &mut VecDeque<Claim> {
        &mut state.claims
    }
}

/// Undoes a claim attempt that was dropped (or failed) before its outcome was known: deletes
/// our own node and, only if that existed (the claim was ours), the `claim` node, in one
/// transaction, in the background until the session answers or ends.
struct Pending {
    client: Client,
    own: String,
    claim: String,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (client, own, claim) = (self.client.clone(), self.own.clone(), self.claim.clone());
        let undo = async move {
            let _ = watch::answered(&client, || {
                let txn = client.transaction().delete(&own, None).delete(&claim, None).commit();
                async move {
                    match txn.await {
                        Ok(_) | Err(ZkError::MultiFailed { .. }) => Ok(()),
                        Err(e) => Err(Error::from(e)),
                    }
                }
            })
            .await;
        };
        // Without a runtime (dropped outside one), the session's end removes the nodes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(undo));
        }
    }
}

/// Puts a claimed item back into the listing of the queue handle that claimed it, in its
/// place, when the claim gives the item back (released or dropped): that consumer then sees it
/// again before the items after it, without listing the queue again.
pub(crate) struct GiveBack {
    state: Weak<Mutex<State>>,
    entry: Entry,
}

impl GiveBack {
    fn new(state: &Arc<Mutex<State>>, entry: Entry) -> GiveBack {
        GiveBack { state: Arc::downgrade(state), entry }
    }

    /// Puts the item back (if the handle is still there).
    pub(crate) fn give_back(self) {
        let Some(state) = self.state.upgrade() else { return };
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let at = state.cache.partition_point(|e| e.rank() < self.entry.rank());
        if state.cache.get(at) != Some(&self.entry) {
            state.cache.insert(at, self.entry);
        }
    }
}
