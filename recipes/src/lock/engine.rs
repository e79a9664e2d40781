//! The contention engine every lock of this module runs on: each contender creates a protected
//! ephemeral-sequential node under the lock directory and waits, watching only the node it
//! depends on, until a [`Rule`] says it holds the lock.
//!
//! Round trips: the `create` and the `getChildren` that follows it are sent back to back. A
//! session's requests are answered in order, so the listing already contains the new node and
//! an uncontended acquire costs one round trip. A waiter sets one `getData` watch (Curator's
//! choice: unlike `exists`, it leaves no watch behind on a node that is already gone) and lists
//! the directory again when it fires.
//!
//! Confirmation (the CURATOR-696 lesson): a contender reports "acquired" only on a listing that
//! contains its own node and was answered after the node's create, on the same session; the
//! create's stat shows that session as the node's `ephemeralOwner`. A [`Client`] never changes
//! session, so the node cannot be a leftover of an earlier, expired one.
//!
//! Faults: a create whose reply is lost is found again by its protected `_c_<uuid>-` prefix (so
//! there is never a second node); a read that meets a connection loss is repeated once the
//! session is back; the session's end fails the acquire. Dropping the acquire future deletes
//! the node it created (in the background, through the session).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use conclave_core::path::{self, protected_name};
use conclave_core::{Client, CreateMode, Error, Result, Stat};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::order::{self, Contender, Kind};

/// When a contender holds the lock, given the contenders in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Holds when fewer than `n` contenders are ahead (a mutex: 1); otherwise waits for the one
    /// `n` places ahead to go.
    Ahead(usize),
    /// Holds when no writer is ahead; otherwise waits for the first writer to go (Curator's read
    /// lock).
    Reader,
}

impl Rule {
    /// The contender to wait for, or `None` when the one at `index` holds.
    pub(crate) fn blocker(self, sorted: &[Contender], index: usize) -> Option<&Contender> {
        match self {
            Rule::Ahead(n) => index.checked_sub(n).map(|i| &sorted[i]),
            Rule::Reader => sorted[..index].iter().find(|c| c.kind == order::WRITE),
        }
    }
}

/// One kind of contender on one lock directory.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) client: Client,
    /// The lock directory.
    pub(crate) dir: String,
    /// Our node's marker.
    pub(crate) kind: Kind,
    /// The markers of every contender that counts.
    pub(crate) kinds: &'static [Kind],
    pub(crate) rule: Rule,
    /// Our node's data.
    pub(crate) data: Bytes,
}

/// How long an acquire may wait.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wait {
    /// Give up at once if the lock is held (`try_lock`).
    pub(crate) once: bool,
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<CancellationToken>,
}

impl Wait {
    /// Wait as long as it takes.
    pub(crate) fn forever() -> Wait {
        Wait::default()
    }

    /// One attempt, no waiting.
    pub(crate) fn once() -> Wait {
        Wait { once: true, ..Wait::default() }
    }

    /// Up to `d`.
    pub(crate) fn timeout(d: Duration) -> Wait {
        Wait { deadline: Some(Instant::now() + d), ..Wait::default() }
    }

    /// Until `token` is cancelled.
    pub(crate) fn cancel(token: &CancellationToken) -> Wait {
        Wait { cancel: Some(token.clone()), ..Wait::default() }
    }

    /// Resolves when the wait is over (never, for `forever`).
    pub(crate) async fn over(&self) {
        let deadline = async {
            match self.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &self.cancel {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline => {}
            () = cancelled => {}
        }
    }

    /// Whether the wait is over already.
    pub(crate) fn is_over(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d) || self.cancel.as_ref().is_some_and(|t| t.is_cancelled())
    }
}

/// A node we hold.
#[derive(Debug, Clone)]
pub(crate) struct Acquired {
    pub(crate) path: String,
    /// The stat the create returned (its `czxid` is the fencing token).
    pub(crate) stat: Stat,
}

/// Runs one contender until it holds the lock (`Some`), the wait is over (`None`; its node is
/// deleted), or an error ends it (its node is deleted too).
pub(crate) async fn acquire(spec: &Spec, wait: &Wait) -> Result<Option<Acquired>> {
    bounded(wait, |wait| contend(spec, wait)).await
}

/// Runs `body` within `wait`'s limits: it is dropped (and so cleans up after itself) when the
/// wait is over, whatever it was waiting for — a watch, a reply, a reconnect. A wait that is
/// over before it starts (a zero timeout) still makes one attempt, without waiting.
pub(crate) async fn bounded<'a, T, F, Fut>(wait: &'a Wait, body: F) -> Result<Option<T>>
where
    F: FnOnce(&'a Wait) -> Fut,
    Fut: Future<Output = Result<Option<T>>> + 'a,
{
    static ONCE: Wait = Wait { once: true, deadline: None, cancel: None };
    if wait.is_over() {
        return body(&ONCE).await;
    }
    tokio::select! {
        biased;
        done = body(wait) => done,
        () = wait.over() => Ok(None),
    }
}

/// [`acquire`] without its bound.
async fn contend(spec: &Spec, wait: &Wait) -> Result<Option<Acquired>> {
    let mut pending = Pending::new(spec);
    'create: loop {
        let (own, stat, mut listing) = create(spec, &mut pending).await?;
        let own_name = path::name(&own).to_string();
        let Some(own_contender) = order::parse(&own_name, spec.kinds) else {
            return Err(Error::Protocol(format!("created lock node {own} carries no sequence suffix")));
        };
        if stat.ephemeral_owner != spec.client.session_id() {
            // Cannot happen for a node this session created; refuse rather than hold a lock
            // that dies with someone else's session (CURATOR-696).
            return Err(Error::Protocol(format!("lock node {own} is owned by session {:#x}", stat.ephemeral_owner)));
        }
        loop {
            let children = match listing.take() {
                Some(children) => children,
                None => list(spec).await?.unwrap_or_default(),
            };
            let sorted =
                break_ties(&spec.client, &spec.dir, order::sorted(&children, spec.kinds, own_contender.seq)).await?;
            let Some(index) = sorted.iter().position(|c| c.name == own_name) else {
                // The listing was answered, so the session is alive, but our node is gone:
                // someone deleted it. Queue up again with a new node.
                tracing::warn!(node = %own, "lock node deleted by someone else while waiting; contending again");
                pending.clear();
                continue 'create;
            };
            let Some(blocker) = spec.rule.blocker(&sorted, index) else {
                // Our node is in a listing answered after it was created, in this session:
                // it exists and is ours.
                pending.clear();
                return Ok(Some(Acquired { path: own, stat }));
            };
            if wait.once {
                return Ok(None);
            }
            let blocker = path::join(&spec.dir, &blocker.name);
            match answered(&spec.client, || spec.client.get_data_and_watch(&blocker)).await {
                Ok((_, _, watcher)) => {
                    watcher.await?;
                }
                // Gone between the listing and the watch: look again.
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Creates our node, returning its path and stat, and the directory listing sent right after
/// the create when there is one.
pub(crate) async fn create(spec: &Spec, pending: &mut Pending) -> Result<(String, Stat, Option<Vec<String>>)> {
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
            Err(Error::NoNode) => {
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
                return Err(e);
            }
        }
    }
}

/// Orders contenders that share a sequence suffix by creation (`czxid`). Suffixes only repeat
/// once ZooKeeper 3.8's counter has stuck at `i32::MAX` (protected names differ, so those
/// creates all succeed with the same suffix); then the names say nothing about who came
/// first. Costs one pipelined read per tied node, and nothing when there are no ties.
/// Contenders that left meanwhile are dropped.
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
    let paths: Vec<String> = tied.iter().map(|&i| path::join(dir, &sorted[i].name)).collect();
    // All reads are queued at once: one round trip for the lot.
    let stats = answered(client, || futures::future::try_join_all(paths.iter().map(|p| client.exists(p)))).await?;
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

/// Runs `op` (a request that is safe to repeat) until the server answers it, waiting for the
/// session to reconnect after each connection loss; fails only with the server's answer or
/// the session's end.
pub(crate) async fn answered<T, F, Fut>(client: &Client, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    loop {
        match op().await {
            Err(e) if e.is_retryable() => client.wait_connected().await?,
            done => return done,
        }
    }
}

/// Lists the lock directory, riding out connection losses. `None` if it does not exist.
async fn list(spec: &Spec) -> Result<Option<Vec<String>>> {
    match answered(&spec.client, || spec.client.get_children(&spec.dir)).await {
        Ok(children) => Ok(Some(children)),
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The node of ours named with `prefix`, if the create that lost its reply took effect. The
/// listing is sent after the create, so it shows the node if the create was applied.
async fn find(spec: &Spec, prefix: &str) -> Result<Option<(String, Stat)>> {
    let Some(children) = list(spec).await? else { return Ok(None) };
    let Some(name) = children.iter().find(|c| c.starts_with(prefix)) else { return Ok(None) };
    let found = path::join(&spec.dir, name);
    match answered(&spec.client, || spec.client.exists(&found)).await? {
        None => Ok(None),
        Some(stat) if stat.ephemeral_owner == spec.client.session_id() => Ok(Some((found, stat))),
        Some(_) => Err(Error::NodeExists),
    }
}

/// Creates `dir` and its missing ancestors as container nodes (which ZooKeeper removes once
/// they are empty), as Curator's `creatingParentContainersIfNeeded` does.
pub(crate) async fn ensure_dir(client: &Client, dir: &str) -> Result<()> {
    let mut at = 0;
    while at < dir.len() {
        let end = dir[at + 1..].find('/').map_or(dir.len(), |i| at + 1 + i);
        let ancestor = &dir[..end];
        // Repeating the create is safe: a second one finds NodeExists.
        match answered(client, || client.create(ancestor, b"", CreateMode::Container)).await {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
        at = end;
    }
    Ok(())
}

/// What an acquire has put on the server, so that dropping it (or failing) takes it away.
#[derive(Debug)]
pub(crate) struct Pending {
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
    pub(crate) fn new(spec: &Spec) -> Pending {
        Pending { client: spec.client.clone(), dir: spec.dir.clone(), state: PendingState::Nothing }
    }

    fn in_flight(&mut self, prefix: &str) {
        self.state = PendingState::InFlight(prefix.to_string());
    }

    fn created(&mut self, path: &str) {
        self.state = PendingState::Created(path.to_string());
    }

    /// Nothing to clean up: the node is held, already gone, or was never made.
    pub(crate) fn clear(&mut self) {
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
        let children = answered(&client, || client.get_children(&dir)).await?;
        match children.iter().find(|c| c.starts_with(&prefix)) {
            Some(name) => client.delete_guaranteed(&path::join(&dir, name), None).await,
            None => Ok(()),
        }
    };
    // Nobody waits for this; a session that ended took the node with it.
    if let Err(e) = removed.await {
        tracing::debug!(dir = %dir, prefix = %prefix, error = %e, "cleanup of an abandoned lock node failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::order::{LOCK, READ, WRITE};

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
    fn readers_share_until_the_first_writer() {
        let s = [c(READ, 1), c(READ, 2), c(WRITE, 3), c(READ, 4), c(WRITE, 5), c(READ, 6)];
        assert_eq!(Rule::Reader.blocker(&s, 1), None);
        assert_eq!(Rule::Reader.blocker(&s, 3), Some(&s[2]));
        assert_eq!(Rule::Reader.blocker(&s, 5), Some(&s[2]), "the first writer, not the nearest");
        // A writer waits for whoever is immediately ahead, reader or writer.
        assert_eq!(Rule::Ahead(1).blocker(&s, 2), Some(&s[1]));
        assert_eq!(Rule::Ahead(1).blocker(&s, 4), Some(&s[3]));
    }
}
