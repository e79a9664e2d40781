//! The contention engine: every recipe in which contenders queue up for something — a mutex, a
//! read-write lock, a semaphore's internal lock, a leader latch — is a [`Spec`] (which node each
//! contender creates, and the [`Rule`] saying when it holds) run by [`acquire`].
//!
//! Each contender creates a protected ephemeral-sequential node, `_c_<uuid>-<kind><seq>`, under
//! the contention directory (missing parents are created as containers) and waits, watching
//! only the node it depends on, until the rule says it holds.
//!
//! Round trips: the `create` and the `getChildren` that follows it are sent back to back. A
//! session's requests are answered in order, so the listing already contains the new node and
//! an uncontended acquire costs one round trip. A waiter sets one `getData` watch on the node
//! that blocks it (Curator's choice: unlike `exists`, it leaves no watch behind on a node that is
//! already gone) and lists the directory again when it fires, through the shared
//! [watch loop](super::watch).
//!
//! Confirmation (the CURATOR-696 lesson): a contender reports "held" only from a listing that
//! contains its own node and was answered after the node's create, on the same session; the
//! create's stat shows that session as the node's `ephemeralOwner`. A [`Client`] never changes
//! session, so the node cannot be a leftover of an earlier, expired one.
//!
//! Ties: contenders sharing a sequence suffix (ZooKeeper 3.8's counter stuck at `i32::MAX`) are
//! ordered by `czxid`, read for the tied nodes only.
//!
//! Faults: a create whose reply is lost is found again by its protected `_c_<uuid>-` prefix (so
//! there is never a second node); a round that meets a connection loss is repeated once the
//! session is back; the session's end fails the acquire; a contender whose node is deleted by
//! someone else queues up again with a new node. Dropping the acquire future deletes the node
//! it created (in the background, through the session).

use bytes::Bytes;
use conclave_core::path::{self, protected_name};
use conclave_core::{Client, CreateMode, Error as ZkError, Stat};

use super::ensure_dir;
use super::order::{self, Contender, Kind};
use super::watch::{self, Round, Step};
use crate::error::Result;
use crate::wait::Bound;

/// When a contender holds, given the contenders in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Holds when fewer than `n` contenders are ahead (a mutex or a latch: 1); otherwise waits
    /// for the one `n` places ahead to go.
    Ahead(usize),
    /// Holds when fewer than `n` contenders are ahead; otherwise waits for any of them to go,
    /// since any departure frees a place (a semaphore's leases, which leave in any order). The
    /// waiter watches the whole directory, so this is for contenders that wait one at a time
    /// (a semaphore's acquirers queue on its mutex first, as in Curator); with many waiters every
    /// change would wake them all.
    Within(usize),
    /// Holds when no writer is ahead; otherwise waits for the first writer to go (Curator's read
    /// lock).
    Reader,
}

impl Rule {
    /// The contender that keeps the one at `index` waiting (for [`Rule::Within`], the first of
    /// those ahead), or `None` when it holds.
    pub(crate) fn blocker(self, sorted: &[Contender], index: usize) -> Option<&Contender> {
        match self {
            Rule::Ahead(n) => index.checked_sub(n).map(|i| &sorted[i]),
            Rule::Within(n) => index.checked_sub(n).map(|_| &sorted[0]),
            Rule::Reader => sorted[..index].iter().find(|c| c.kind == order::WRITE),
        }
    }

    /// Whether a blocked contender watches the whole directory rather than its blocker.
    fn watches_directory(self) -> bool {
        matches!(self, Rule::Within(_))
    }

    /// The rule for the contender `c` among contenders otherwise under `self` (a read-write
    /// lock's readers follow the read rule).
    pub(crate) fn for_kind(self, c: &Contender) -> Rule {
        if c.kind == order::READ {
            Rule::Reader
        } else {
            self
        }
    }
}

/// One kind of contender on one contention directory.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) client: Client,
    /// The contention directory.
    pub(crate) dir: String,
    /// Our node's marker.
    pub(crate) kind: Kind,
    /// The markers of every contender that counts.
    pub(crate) kinds: &'static [Kind],
    pub(crate) rule: Rule,
    /// Our node's data.
    pub(crate) data: Bytes,
    /// The directory checked once, so that every acquire reports a bad path as given (not as
    /// the name of the node it would create) without checking it again.
    valid: std::result::Result<(), ZkError>,
}

impl Spec {
    /// Contenders of `kind` under `dir`, among those of `kinds`, holding by `rule`, with no data.
    pub(crate) fn new(client: Client, dir: &str, kind: Kind, kinds: &'static [Kind], rule: Rule) -> Spec {
        let valid = path::validate_path(dir);
        Spec { client, dir: dir.to_string(), kind, kinds, rule, data: Bytes::new(), valid }
    }

    /// The same directory and data, for contenders of another kind and rule.
    pub(crate) fn with_kind(&self, kind: Kind, rule: Rule) -> Spec {
        Spec { kind, rule, ..self.clone() }
    }

    /// The same contender, of `kind` among `kinds` (same rule), for another layout.
    pub(crate) fn with_kinds(&self, kind: Kind, kinds: &'static [Kind]) -> Spec {
        Spec { kind, kinds, ..self.clone() }
    }

    /// The same contender on another session.
    pub(crate) fn with_client(&self, client: Client) -> Spec {
        Spec { client, ..self.clone() }
    }
}

/// A node we hold.
#[derive(Debug, Clone)]
pub(crate) struct Acquired {
    pub(crate) path: String,
    /// The stat the create returned (its `czxid` is the fencing token).
    pub(crate) stat: Stat,
}

/// Runs one contender until it holds (`Some`), the wait is over (`None`; its node is deleted),
/// or an error ends it (its node is deleted too).
///
/// # Errors
/// `InvalidPath` (naming the directory) before anything is sent; the server's refusal of the
/// create (`NoAuth`, ...); the session's terminal error if it ends first.
pub(crate) async fn acquire(spec: &Spec, wait: &Bound) -> Result<Option<Acquired>> {
    spec.valid.clone()?;
    wait.run(|wait| contend(spec, wait)).await
}

/// Where a contender stands after looking at the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Held,
    /// Blocked, and told not to wait.
    Blocked,
    /// Our node is gone (someone deleted it): queue up again.
    Deleted,
}

/// [`acquire`] without its bound.
async fn contend(spec: &Spec, wait: &Bound) -> Result<Option<Acquired>> {
    let mut pending = Pending::new(spec);
    loop {
        let (own, stat, listing) = create(spec, &mut pending).await?;
        let own_name = path::name(&own).to_string();
        let Some(own_contender) = order::parse(&own_name, spec.kinds) else {
            return Err(ZkError::Protocol(format!("created node {own} carries no sequence suffix")).into());
        };
        if stat.ephemeral_owner != spec.client.session_id() {
            // Cannot happen for a node this session created; refuse rather than hold something
            // that dies with someone else's session (CURATOR-696).
            let owner = stat.ephemeral_owner;
            return Err(ZkError::Protocol(format!("node {own} is owned by session {owner:#x}")).into());
        }
        match queue(spec, &own_contender, listing, wait.once()).await? {
            Turn::Held => {
                // Our node is in a listing answered after it was created, in this session: it
                // exists and is ours.
                pending.clear();
                return Ok(Some(Acquired { path: own, stat }));
            }
            Turn::Blocked => return Ok(None),
            Turn::Deleted => {
                // The listing was answered, so the session is alive, but our node is gone.
                tracing::warn!(node = %own, "contender node deleted by someone else while waiting; queueing again");
                pending.clear();
            }
        }
    }
}

/// Waits for `own`'s turn: lists the directory (the first time, `listing` from the create), and
/// while blocked watches the blocking node (or, by [`Rule::Within`], the directory) and looks
/// again when it changes.
async fn queue(spec: &Spec, own: &Contender, mut listing: Option<Vec<String>>, once: bool) -> Result<Turn> {
    let client = &spec.client;
    watch::until(client, |round| {
        let first = listing.take();
        async move { decide(spec, own, first, once, round).await }
    })
    .await
}

/// One look at the queue for [`queue`]: `first` is the listing that came with the create.
async fn decide(
    spec: &Spec,
    own: &Contender,
    first: Option<Vec<String>>,
    once: bool,
    round: Round,
) -> Result<Step<Turn>> {
    let client = &spec.client;
    // Whether a watch on the directory covers this listing.
    let mut watched = false;
    let children = match first {
        Some(children) => children,
        None if spec.rule.watches_directory() && !once => {
            watched = true;
            round.watch_children(&spec.dir).await?.unwrap_or_default()
        }
        None => match client.get_children(&spec.dir).await {
            Ok(children) => children,
            Err(ZkError::NoNode) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
    };
    let sorted = break_ties(client, &spec.dir, order::sorted(&children, spec.kinds, own.seq)).await?;
    let Some(index) = sorted.iter().position(|c| c.name == own.name) else { return Ok(Step::Done(Turn::Deleted)) };
    let Some(blocker) = spec.rule.blocker(&sorted, index) else { return Ok(Step::Done(Turn::Held)) };
    if once {
        return Ok(Step::Done(Turn::Blocked));
    }
    if spec.rule.watches_directory() {
        // A listing read without the watch may already be out of date: read it with one.
        return Ok(if watched { Step::Wait } else { Step::Again });
    }
    // Gone between the listing and the watch: look again.
    Ok(match round.watch_data(&path::join(&spec.dir, &blocker.name)).await? {
        Some(_) => Step::Wait,
        None => Step::Again,
    })
}

/// Creates our node, returning its path and stat, and the directory listing sent right after
/// the create when there is one.
async fn create(spec: &Spec, pending: &mut Pending) -> Result<(String, Stat, Option<Vec<String>>)> {
    let id = uuid::Uuid::new_v4().to_string();
    let prefix = protected_name(&id, "");
    let path = path::join(&spec.dir, &protected_name(&id, spec.kind.0));
    loop {
        pending.in_flight(&prefix);
        let created = spec.client.create(&path, &spec.data, CreateMode::EphemeralSequential);
        let listing = spec.client.get_children(&spec.dir);
        match created.await {
            Ok((own, stat)) => {
                pending.created(&own);
                return Ok((own, stat, listing.await.ok()));
            }
            Err(ZkError::NoNode) => {
                pending.clear();
                ensure_dir(&spec.client, &spec.dir).await?;
            }
            Err(e) if e.is_retryable() => {
                spec.client.wait_connected().await?;
                if let Some((own, stat)) = find(spec, &prefix).await? {
                    pending.created(&own);
                    return Ok((own, stat, None));
                }
                pending.clear();
            }
            Err(e) => {
                pending.clear();
                return Err(e.into());
            }
        }
    }
}

/// Orders contenders that share a sequence suffix by creation (`czxid`). Suffixes only repeat
/// once ZooKeeper 3.8's counter has stuck at `i32::MAX` (protected names differ, so those
/// creates all succeed with the same suffix); then the names say nothing about who came
/// first. Costs one pipelined read per tied node, and nothing when there are no ties.
/// Contenders that left meanwhile are dropped. A read, to be run inside a watch-loop round.
pub(crate) async fn break_ties(client: &Client, dir: &str, mut sorted: Vec<Contender>) -> Result<Vec<Contender>> {
    let tied: Vec<usize> = (0..sorted.len())
        .filter(|&i| {
            (i > 0 && sorted[i - 1].seq == sorted[i].seq) || sorted.get(i + 1).is_some_and(|n| n.seq == sorted[i].seq)
        })
        .collect();
    if tied.is_empty() {
        return Ok(sorted);
    }
    tracing::warn!(
        dir,
        tied = tied.len(),
        "contenders share a sequence suffix (counter stuck at i32::MAX); ordering them by czxid"
    );
    // All reads are queued at once: one round trip for the lot.
    let reads: Vec<_> = tied.iter().map(|&i| client.exists(&path::join(dir, &sorted[i].name))).collect();
    let stats = futures::future::try_join_all(reads).await?;
    let mut gone = Vec::new();
    for (&i, stat) in tied.iter().zip(stats) {
        match stat {
            Some(stat) => sorted[i].czxid = stat.czxid,
            None => gone.push(i),
        }
    }
    for i in gone.into_iter().rev() {
        sorted.remove(i);
    }
    if let Some(first) = sorted.first() {
        let anchor = first.seq;
        sorted.sort_by_key(|c| (order::distance(anchor, c.seq), c.czxid));
    }
    Ok(sorted)
}

/// The node of ours named with `prefix`, if the create that lost its reply took effect. The
/// listing is sent after the create, so it shows the node if the create was applied.
async fn find(spec: &Spec, prefix: &str) -> Result<Option<(String, Stat)>> {
    let client = &spec.client;
    watch::answered(client, || async move {
        let children = match client.get_children(&spec.dir).await {
            Ok(children) => children,
            Err(ZkError::NoNode) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(name) = children.iter().find(|c| c.starts_with(prefix)) else { return Ok(None) };
        let found = path::join(&spec.dir, name);
        match client.exists(&found).await? {
            None => Ok(None),
            Some(stat) if stat.ephemeral_owner == client.session_id() => Ok(Some((found, stat))),
            Some(_) => Err(ZkError::NodeExists.into()),
        }
    })
    .await
}

/// What an acquire has put on the server, so that dropping it (or failing) takes it away.
#[derive(Debug)]
struct Pending {
    client: Client,
    dir: String,
    state: PendingState,
}

#[derive(Debug)]
enum PendingState {
    Nothing,
    /// A create with this protected prefix may or may not have been applied.
    InFlight(String),
    Created(String),
}

impl Pending {
    fn new(spec: &Spec) -> Pending {
        Pending { client: spec.client.clone(), dir: spec.dir.clone(), state: PendingState::Nothing }
    }

    fn in_flight(&mut self, prefix: &str) {
        self.state = PendingState::InFlight(prefix.to_string());
    }

    fn created(&mut self, path: &str) {
        self.state = PendingState::Created(path.to_string());
    }

    /// Nothing to clean up: the node is held, already gone, or was never made.
    fn clear(&mut self) {
        self.state = PendingState::Nothing;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, PendingState::Nothing) {
            PendingState::Nothing => {}
            // Queued on the session before this returns; sent again after a reconnect.
            PendingState::Created(path) => drop(self.client.delete_guaranteed(&path, None)),
            PendingState::InFlight(prefix) => {
                // The create's name is not known yet. A listing queued now is answered after
                // the create, so it shows the node if there is one. That takes a task; without
                // a runtime the process is going down, and the node with its session.
                let (client, dir) = (self.client.clone(), self.dir.clone());
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(remove_by_prefix(client, dir, prefix));
                }
            }
        }
    }
}

/// Deletes the child of `dir` named with `prefix`, if any (cleanup of a dropped acquire).
async fn remove_by_prefix(client: Client, dir: String, prefix: String) {
    let removed = async {
        let (client, dir) = (&client, &dir);
        let children = watch::answered(client, || async move { Ok(client.get_children(dir).await?) }).await?;
        match children.iter().find(|c| c.starts_with(&prefix)) {
            Some(name) => Ok(client.delete_guaranteed(&path::join(dir, name), None).await?),
            None => Ok::<_, crate::Error>(()),
        }
    };
    // Nobody waits for this; a session that ended took the node with it.
    if let Err(e) = removed.await {
        tracing::debug!(dir = %dir, prefix = %prefix, error = %e, "cleanup of an abandoned contender node failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal::order::{LEASE, LOCK, READ, WRITE};

    fn c(kind: Kind, seq: i32) -> Contender {
        Contender { name: format!("{}{seq:010}", kind.0), kind, seq, czxid: 0 }
    }

    #[test]
    fn mutex_waits_for_its_immediate_predecessor() {
        let s = [c(LOCK, 1), c(LOCK, 2), c(LOCK, 3)];
        assert_eq!(Rule::Ahead(1).blocker(&s, 0), None);
        assert_eq!(Rule::Ahead(1).blocker(&s, 2), Some(&s[1]));
        assert_eq!(Rule::Ahead(2).blocker(&s, 1), None);
        assert_eq!(Rule::Ahead(2).blocker(&s, 2), Some(&s[0]));
    }

    #[test]
    fn a_lease_holds_while_fewer_than_n_are_ahead() {
        let s = [c(LEASE, 1), c(LEASE, 2), c(LEASE, 3), c(LEASE, 4)];
        assert_eq!(Rule::Within(3).blocker(&s, 2), None);
        assert_eq!(Rule::Within(3).blocker(&s, 3), Some(&s[0]));
        assert!(Rule::Within(3).watches_directory() && !Rule::Ahead(1).watches_directory());
    }

    #[test]
    fn readers_share_until_the_first_writer() {
        let s = [c(READ, 1), c(READ, 2), c(WRITE, 3), c(READ, 4), c(WRITE, 5), c(READ, 6)];
        assert_eq!(Rule::Reader.blocker(&s, 1), None);
        assert_eq!(Rule::Reader.blocker(&s, 3), Some(&s[2]));
        assert_eq!(Rule::Reader.blocker(&s, 5), Some(&s[2]), "the first writer, not the nearest");
        // A writer waits for whoever is immediately ahead, reader or writer.
        assert_eq!(Rule::Ahead(1).blocker(&s, 2), Some(&s[1]));
        assert_eq!(Rule::Ahead(1).blocker(&s, 4), Some(&s[3]));
        assert_eq!(Rule::Ahead(1).for_kind(&s[0]), Rule::Reader);
        assert_eq!(Rule::Ahead(1).for_kind(&s[2]), Rule::Ahead(1));
    }
}

/// A new contender kind is a `Spec` value and nothing else: a leader latch (Curator's `latch-`
/// nodes, "first in line holds") runs on the engine as it is, on the embedded server.
#[cfg(test)]
mod new_kind {
    use std::time::Duration;

    use conclave_core::{Client, Server};

    use super::*;
    use crate::wait::Wait;

    const LATCH: Kind = Kind("latch-");

    fn latch(client: &Client, id: &str) -> Spec {
        let spec = Spec::new(client.clone(), "/election", LATCH, &[LATCH], Rule::Ahead(1));
        Spec { data: Bytes::copy_from_slice(id.as_bytes()), ..spec }
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_latch_is_a_spec() {
        let server = Server::builder().start().await.expect("server");
        let a = Client::builder().connect_in_process(&server).await.expect("a");
        let b = Client::builder().connect_in_process(&server).await.expect("b");
        let first = acquire(&latch(&a, "a"), &Wait::forever().start()).await.expect("a").expect("a leads");
        assert!(first.path.starts_with("/election/_c_") && first.path.contains("-latch-"), "{}", first.path);
        let (data, _) = b.get_data(&first.path).await.expect("the leader's node");
        assert_eq!(&data[..], b"a", "the participant id is the node's data, as Curator stores it");
        let once = acquire(&latch(&b, "b"), &Wait::once().start()).await.expect("b tries");
        assert!(once.is_none(), "one leader at a time");
        let spec = latch(&b, "b");
        let waiting = tokio::spawn(async move { acquire(&spec, &Wait::forever().start()).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        a.delete(&first.path, None).await.expect("the leader steps down");
        let second = waiting.await.expect("task").expect("b").expect("b leads");
        assert!(second.stat.czxid > first.stat.czxid, "the epoch grows");
        server.shutdown().await;
    }
}
