//! The keeper: the task that creates a [`PersistentNode`], follows it and
//! creates it again, session after session, and the per-session claims that keep two keepers of
//! one session from taking the same node; also what finds the node a lost create made.

use super::*;

/// The keeper task: keeps the node until aborted, or until an error it cannot get past, which
/// it publishes.
pub(super) async fn keep(shared: Arc<Shared>, valid: Result<()>) {
    let error = match valid {
        Ok(()) => run(&shared).await,
        Err(e) => e,
    };
    let shown = error.to_string();
    if shared.fail(error) {
        tracing::warn!(path = %shared.base, error = %shown, "PersistentNode: no longer kept");
    }
}

/// Keeps the node on one session after another; returns what ended it.
async fn run(shared: &Shared) -> Error {
    let mut client = shared.client();
    // The path of the last node created, for re-creations that keep it (or its sequence number).
    let mut last: Option<String> = None;
    loop {
        let error = on_session(shared, &client, &mut last).await;
        if !session_ended(&error) {
            return error;
        }
        if !shared.options.renew {
            return ZkError::SessionExpired.into();
        }
        if !shared.options.persistent {
            // The server deleted the node with the session.
            shared.gone();
        }
        client = session::renewed_patiently(&client, &shared.base).await;
        tracing::debug!(
            path = %shared.base,
            session = %format_args!("{:#x}", client.session_id()),
            "PersistentNode: session expired; keeping the node on a new session"
        );
        shared.renewed(&client);
    }
}

/// Whether `e` says that the session has expired: `SessionExpired`, or `UnknownSession`,
/// ZooKeeper's answer to an ephemeral create sent on a session it has just closed, before the
/// client hears of the expiry.
pub(super) fn session_ended(e: &Error) -> bool {
    *e == ZkError::SessionExpired || *e == ZkError::UnknownSession
}

/// Keeps the node on `client`'s session: creates it, follows it, and creates it again each time
/// it goes, until an error (the session's end, or one the keeper cannot get past).
async fn on_session(shared: &Shared, client: &Client, last: &mut Option<String>) -> Error {
    let claims = client.local::<Claims>();
    loop {
        let (path, stat, claim) = match establish(shared, client, &claims, last).await {
            Ok(created) => created,
            Err(e) => return e,
        };
        *last = Some(path.clone());
        let followed = follow(client, &path, stat.czxid).await;
        drop(claim);
        if let Err(e) = followed {
            return e;
        }
        tracing::debug!(path = %path, "PersistentNode: node gone; creating it again");
        shared.gone();
    }
}

/// Creates the node (or adopts this session's own), returning its path, its stat and the claim
/// on it.
async fn establish(
    shared: &Shared,
    client: &Client,
    claims: &Arc<Claims>,
    last: &mut Option<String>,
) -> Result<(String, Stat, Claim)> {
    let options = shared.options;
    // The floor of an earlier create whose outcome is still unknown: what it made, if
    // anything, was created after it.
    let mut unknown: Option<i64> = None;
    loop {
        let plan = shared.plan(last.as_deref());
        let sent = shared.send_create(client, &plan, unknown)?;
        match sent.reply.await {
            Ok((path, stat)) => {
                let claim = claims.force(&path, shared.id);
                let stat = shared.settle(client, &path, stat, Known::Generation(sent.generation)).await?;
                return Ok((path, stat, claim));
            }
            Err(ZkError::NodeExists) => {
                let Plan::Fixed(path) = plan else {
                    // Protected names are unique; sequential ones repeat only once ZooKeeper
                    // 3.8's counter is stuck at i32::MAX.
                    shared.unsent();
                    return Err(ZkError::NodeExists.into());
                };
                match existing(shared, client, claims, &path).await? {
                    Existing::Ours { data, stat, claim } => {
                        let stat = shared.settle(client, &path, stat, Known::Data(data)).await?;
                        return Ok((path, stat, claim));
                    }
                    Existing::Gone => {
                        shared.unsent();
                        unknown = None;
                    }
                    Existing::Foreign => {
                        shared.unsent();
                        unknown = None;
                        if options.sequential {
                            // The sequence number is taken: get a new one.
                            *last = None;
                        } else {
                            tracing::debug!(path = %path, "PersistentNode: path taken by another session; waiting");
                            wait_gone(shared, client, claims, &path).await?;
                        }
                    }
                }
            }
            Err(ZkError::NoNode) if options.parents => {
                shared.unsent();
                unknown = None;
                ensure_dir(client, &shared.parent).await?;
            }
            Err(e) if e.is_retryable() => {
                unknown.get_or_insert(sent.floor);
                client.wait_connected().await?;
                if !matches!(sent.probe, Probe::Fixed(_)) {
                    // A fixed path is found by the next create (NodeExists, then adopted).
                    if let Some((path, stat, claim)) =
                        find(client, &sent.probe, sent.floor, options, claims, shared.id, true).await?
                    {
                        let claim = claim.unwrap_or_else(|| claims.force(&path, shared.id));
                        let stat = shared.settle(client, &path, stat, Known::Generation(sent.generation)).await?;
                        return Ok((path, stat, claim));
                    }
                    shared.unsent();
                    unknown = None;
                }
            }
            Err(e) => {
                shared.unsent();
                return Err(e.into());
            }
        }
    }
}

/// The node found at a path a create found taken.
enum Existing {
    /// This session's own (or, in persistent mode, a persistent node), now claimed.
    Ours { data: Bytes, stat: Stat, claim: Claim },
    /// Gone already.
    Gone,
    /// Someone else's: another session's, or one another keeper of this session holds.
    Foreign,
}

async fn existing(shared: &Shared, client: &Client, claims: &Arc<Claims>, path: &str) -> Result<Existing> {
    let read = zkwatch::answered(client, || async move {
        match client.get_data(path).await {
            Ok(found) => Ok(Some(found)),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(match read {
        None => Existing::Gone,
        Some((data, stat)) if shared.options.owns(&stat, client) => match claims.try_claim(path, shared.id) {
            Some(claim) => Existing::Ours { data: Bytes::copy_from_slice(&data), stat, claim },
            None => Existing::Foreign,
        },
        Some(_) => Existing::Foreign,
    })
}

/// Waits until the node at `path`, someone else's, is gone (or has become one this keeper may
/// adopt).
async fn wait_gone(shared: &Shared, client: &Client, claims: &Claims, path: &str) -> Result<()> {
    let options = shared.options;
    zkwatch::until(client, |round| async move {
        Ok(match round.watch_exists(path).await? {
            Some(stat) if !options.owns(&stat, client) || claims.held_by_other(path, shared.id) => Step::Wait,
            _ => Step::Done(()),
        })
    })
    .await
}

/// Follows the node created as `czxid` at `path` until it is gone (deleted, or replaced by
/// another node); ends with the session's error if the session ends first. A data change is
/// only a reason to look again. An exists watch: each look costs a stat, never the data.
async fn follow(client: &Client, path: &str, czxid: i64) -> Result<()> {
    zkwatch::until(client, |round| async move {
        Ok(match round.watch_exists(path).await? {
            Some(stat) if stat.czxid == czxid => Step::Wait,
            _ => Step::Done(()),
        })
    })
    .await
}

/// What a create in flight on `client`'s session made, if anything: a node of this session
/// (in persistent mode: a persistent node) found by `probe`, created after `floor` and not held
/// by another keeper. With `take`, the node found is claimed for keeper `id`.
async fn find(
    client: &Client,
    probe: &Probe,
    floor: i64,
    options: Options,
    claims: &Arc<Claims>,
    id: u64,
    take: bool,
) -> Result<Option<(String, Stat, Option<Claim>)>> {
    let ours =
        |path: &str, stat: &Stat| options.owns(stat, client) && stat.czxid > floor && !claims.held_by_other(path, id);
    let found = zkwatch::answered(client, || async move {
        let candidates = match probe {
            Probe::Fixed(path) => vec![path.clone()],
            Probe::Prefix { parent, prefix } => children(client, parent)
                .await?
                .into_iter()
                .filter(|c| c.starts_with(prefix.as_str()))
                .map(|c| path::join(parent, &c))
                .collect(),
            Probe::Sequence { parent, name } => children(client, parent)
                .await?
                .into_iter()
                .filter(|c| c.strip_prefix(name.as_str()).is_some_and(is_sequence_suffix))
                .map(|c| path::join(parent, &c))
                .collect(),
        };
        // One round trip for all of them.
        let stats = futures::future::try_join_all(candidates.iter().map(|c| client.exists(c))).await?;
        Ok(candidates
            .into_iter()
            .zip(stats)
            .filter_map(|(path, stat)| stat.map(|stat| (path, stat)))
            .collect::<Vec<_>>())
    })
    .await?;
    for (path, stat) in found {
        if !ours(&path, &stat) {
            continue;
        }
        if !take {
            return Ok(Some((path, stat, None)));
        }
        if let Some(claim) = claims.try_claim(&path, id) {
            return Ok(Some((path, stat, Some(claim))));
        }
    }
    Ok(None)
}

/// The children of `parent` (none if it does not exist).
async fn children(client: &Client, parent: &str) -> Result<Vec<String>> {
    match client.get_children(parent).await {
        Ok(children) => Ok(children),
        Err(ZkError::NoNode) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Whether `s` is a sequence suffix as ZooKeeper writes it (Java's `%010d`).
pub(super) fn is_sequence_suffix(s: &str) -> bool {
    path::sequence_number(s).is_some_and(|n| s == format!("{n:010}"))
}

/// Removes what a stopped keeper had on the server (`pending`), and reports the outcome.
pub(super) async fn remove(pending: Pending, options: Options, id: u64) -> Result<()> {
    let removed = match pending {
        Pending::Nothing => return Ok(()),
        Pending::Created { client, path } => client.delete_guaranteed(&path, None).await.map_err(Error::from),
        Pending::InFlight { client, probe, floor } => {
            let claims = client.local::<Claims>();
            match find(&client, &probe, floor, options, &claims, id, false).await {
                Ok(Some((path, _, _))) => client.delete_guaranteed(&path, None).await.map_err(Error::from),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    match removed {
        Err(e) if e == ZkError::NoNode => Ok(()),
        // An ephemeral node went with its session.
        Err(e) if !options.persistent && (e.is_terminal() || session_ended(&e)) => Ok(()),
        other => other,
    }
}

/// The nodes the keepers on one session hold (kept with the session's handle state), so that
/// two keepers of one session never both take the same node as their own.
#[derive(Debug, Default)]
pub(super) struct Claims(Mutex<HashMap<String, u64>>);

impl Claims {
    fn map(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `path` for keeper `id`, unless another keeper holds it.
    fn try_claim(self: &Arc<Self>, path: &str, id: u64) -> Option<Claim> {
        let mut map = self.map();
        match map.get(path) {
            Some(holder) if *holder != id => None,
            _ => {
                map.insert(path.to_string(), id);
                Some(Claim { claims: self.clone(), path: path.to_string(), id })
            }
        }
    }

    /// Claims `path`, a node keeper `id` has just created (so any other claim on it is stale).
    fn force(self: &Arc<Self>, path: &str, id: u64) -> Claim {
        self.map().insert(path.to_string(), id);
        Claim { claims: self.clone(), path: path.to_string(), id }
    }

    fn held_by_other(&self, path: &str, id: u64) -> bool {
        self.map().get(path).is_some_and(|holder| *holder != id)
    }
}

/// A keeper's claim on its node, given up when dropped.
#[derive(Debug)]
struct Claim {
    claims: Arc<Claims>,
    path: String,
    id: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut map = self.claims.map();
        if map.get(&self.path) == Some(&self.id) {
            map.remove(&self.path);
        }
    }
}
