//! [`PersistentNode`]: a node kept in place by a background task (its *keeper*), which
//! creates it, follows it through the shared watch loop and creates it again whenever it goes,
//! across connection losses, deletions by others and session expiries (Curator's
//! `PersistentNode`). The rules are documented on the type.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use conclave_core::path::{self, protected_name, strip_protection};
use conclave_core::{Client, CreateMode, Data, Error as ZkError, Stat};
use futures::future::BoxFuture;
use futures::Stream;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::internal::watch::{self as zkwatch, Step};
use crate::internal::{ensure_dir, session};
use crate::wait::{wait_forms, Wait};

mod keeper;

use keeper::{keep, remove, session_ended};

/// A node kept in place: an ephemeral node (by default) at a path, which a background task
/// creates and re-creates with the same data whenever it goes, across connection losses,
/// deletions by others and session expiries, until the `PersistentNode` is dropped or closed,
/// which deletes it: Apache Curator's `PersistentNode`, with the same node layouts. The rules
/// are below.
///
/// Created with [`PersistentNode::new`] (an ephemeral node at `path`) or
/// [`PersistentNode::builder`] (protected, sequential or persistent nodes, no parent creation, no
/// session renewal). Starting one spawns its keeper task on the current tokio runtime.
///
/// ```no_run
/// # async fn demo(client: conclave::Client) -> conclave::Result<()> {
/// use conclave::membership::PersistentNode;
///
/// let node = PersistentNode::new(&client, "/services/api/instance-7", "10.0.0.5:8080");
/// let path = node.created().await?;
/// println!("registered as {path}");
/// node.set_data("10.0.0.5:8081").await?;
/// // ... serve ...
/// node.close().await?;
/// # Ok(()) }
/// ```
///
/// # What the keeper does
/// The keeper creates the node (missing parents as containers, as Curator's
/// `creatingParentContainersIfNeeded`), then follows it with a one-shot exists watch on the
/// recipes' shared watch loop, which rides out connection losses and looks again after every
/// reconnection:
/// - the node is still there (same `czxid`) after a reconnection: nothing is done (no delete and
///   re-create churn);
/// - the node was deleted (or replaced: another `czxid`): it is created again, with the data last
///   given to [`PersistentNode::set_data`];
/// - the session expired: the keeper opens the expired session's successor (shared with every
///   other recipe that was on it, and reported by [`PersistentNode::client`]), retrying with
///   back-off while no server answers, and creates the node again on it, unless
///   [`PersistentNodeBuilder::renew_after_expiry`] was turned off;
/// - a create whose reply was lost (a connection loss) is found rather than repeated: by its
///   protected prefix, as this session's node at the path, or (sequential, unprotected) as this
///   session's node with the base name and a sequence number created after the create was sent;
/// - an error it cannot get past (an invalid path, `NoAuth` on the parent, data too large, a
///   closed client) ends it: the error is reported by [`PersistentNode::created_with`], the end
///   of [`PersistentNode::paths`], [`PersistentNode::set_data`] and [`PersistentNode::close`].
///
/// # Paths
/// | options | first create | re-created as |
/// | --- | --- | --- |
/// | (default) | `<path>` | `<path>` |
/// | [sequential](PersistentNodeBuilder::sequential) | `<path><seq>` | the same path (non-sequential mode); a new `<seq>` if it is taken |
/// | [protected](PersistentNodeBuilder::protected) | `<parent>/_c_<uuid>-<name>` | a new uuid: a new path |
/// | protected, sequential | `<parent>/_c_<uuid>-<name><seq>` | a new uuid with the old `<seq>` (non-sequential mode) |
///
/// These are Curator's rules, except that Curator keeps one protected uuid per `PersistentNode`,
/// and here every create gets its own: a protected name then always names one create. The
/// current path is [`PersistentNode::path`]; [`PersistentNode::paths`] reports its changes.
///
/// # A node already at the path
/// A create that finds its (non-sequential) path taken adopts the node only if it is this
/// session's own ephemeral node (in [persistent](PersistentNodeBuilder::persistent) mode: a
/// persistent node), not kept by another `PersistentNode` of the same session, writing its data
/// to it if they differ. Any other node (another session's, typically the node of this
/// process's previous session when the client gave the session up before the server expired
/// it) is waited out: the node is created once that one is gone. Curator adopts whatever it
/// finds, so a node of an earlier session, about to be deleted with it, can be taken for its
/// own (the mistake of CURATOR-696 in its leader latch). A sequential node whose path is taken
/// gets a new sequence number instead of waiting.
///
/// # Drop and close
/// Dropping a `PersistentNode` stops its keeper and deletes the node in the background: the
/// delete is queued on the session before `drop` returns and is sent again after a reconnect
/// until the server answers (no task is spawned), as a [`Hold`](crate::hold::Hold) does. If a
/// create is in flight at that moment (its reply not in yet), a small task looks at the path
/// (or lists the parent), queued behind the create, and deletes what the create made, if
/// anything, found as after a lost reply. [`PersistentNode::close`] does the same and reports
/// the outcome. A node the keeper adopted is deleted like one it made.
#[must_use = "the node is deleted as soon as the PersistentNode is dropped"]
pub struct PersistentNode {
    shared: Arc<Shared>,
    keeper: tokio::task::AbortHandle,
}

impl fmt::Debug for PersistentNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.shared.status.borrow();
        f.debug_struct("PersistentNode")
            .field("base_path", &self.shared.base)
            .field("path", &status.path)
            .field("session_id", &format_args!("{:#x}", status.client.session_id()))
            .field("failed", &status.failed)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

/// How a [`PersistentNode`] is created and kept: made by [`PersistentNode::builder`], started by
/// [`PersistentNodeBuilder::start`].
#[derive(Debug, Clone)]
#[must_use = "nothing happens until start()"]
pub struct PersistentNodeBuilder {
    client: Client,
    path: String,
    data: Bytes,
    options: Options,
}

impl PersistentNodeBuilder {
    /// Whether the node's name carries a protected prefix, `<parent>/_c_<uuid>-<name>` (Curator's
    /// `withProtection()`), so that a create whose reply was lost is found by its prefix; each
    /// create has its own uuid, so every re-creation is a new path. Default false.
    pub fn protected(mut self, on: bool) -> Self {
        self.options.protected = on;
        self
    }

    /// Whether the first create appends a sequence number to the name (`<path><seq>`, with
    /// ZooKeeper's 10 digits). Re-creations keep that number while they can (see the
    /// [paths](PersistentNode#paths)). Default false.
    pub fn sequential(mut self, on: bool) -> Self {
        self.options.sequential = on;
        self
    }

    /// Whether the node is persistent rather than ephemeral: it then outlives the session (it is
    /// adopted again after an expiry rather than re-created), and only a deletion by someone
    /// else makes the keeper create it again. Dropping or closing the `PersistentNode` still
    /// deletes it. Default false.
    pub fn persistent(mut self, on: bool) -> Self {
        self.options.persistent = on;
        self
    }

    /// Whether missing parents are created, as containers (nodes ZooKeeper removes once they
    /// had children and have none left), like Curator's `creatingParentContainersIfNeeded`.
    /// Default true; without it a missing parent ends the keeper with `NoNode`.
    pub fn create_parents(mut self, on: bool) -> Self {
        self.options.parents = on;
        self
    }

    /// Whether the keeper goes on after the session expired, on the expired session's successor
    /// (shared with every other recipe that was on the same session; see
    /// [`PersistentNode::client`]). Default true; without it an expiry ends the keeper with
    /// `SessionExpired`.
    pub fn renew_after_expiry(mut self, on: bool) -> Self {
        self.options.renew = on;
        self
    }

    /// Starts keeping the node: spawns the keeper task, which creates the node at once. An
    /// invalid path is reported by the `PersistentNode` (its keeper ends at once with
    /// `InvalidPath`, naming the path as given).
    ///
    /// # Panics
    /// Outside a tokio runtime (the keeper is a task).
    pub fn start(self) -> PersistentNode {
        let valid = validate(&self.path, self.options);
        let (parent, name) = split(&self.path);
        let status = Status { path: None, client: self.client, failed: None };
        let shared = Arc::new(Shared {
            id: NEXT_KEEPER.fetch_add(1, Ordering::Relaxed),
            parent: parent.to_string(),
            name: name.to_string(),
            base: self.path,
            options: self.options,
            status: watch::Sender::new(status),
            state: Mutex::new(State { closed: false, data: self.data, generation: 0, pending: Pending::Nothing }),
            writer: tokio::sync::Mutex::new(()),
        });
        let keeper = tokio::spawn(keep(shared.clone(), valid)).abort_handle();
        PersistentNode { shared, keeper }
    }
}

impl PersistentNode {
    /// Keeps an ephemeral node at `path` with `data` (missing parents are created as
    /// containers; the session is renewed after an expiry): [`PersistentNode::builder`] with
    /// the defaults, started.
    ///
    /// # Panics
    /// Outside a tokio runtime (the keeper is a task).
    pub fn new(client: &Client, path: &str, data: impl Into<Data>) -> PersistentNode {
        PersistentNode::builder(client, path, data).start()
    }

    /// A builder for a node at `path` with `data`, on `client`'s session: set the options, then
    /// [`start`](PersistentNodeBuilder::start).
    pub fn builder(client: &Client, path: &str, data: impl Into<Data>) -> PersistentNodeBuilder {
        PersistentNodeBuilder {
            client: client.clone(),
            path: path.to_string(),
            data: data.into().into_bytes(),
            options: Options { protected: false, sequential: false, persistent: false, parents: true, renew: true },
        }
    }

    /// The path as given (for protected or sequential nodes, the base of the node's name).
    pub fn base_path(&self) -> &str {
        &self.shared.base
    }

    /// The node's path while it is in place; `None` before it is created, while it is being
    /// created again, and after the keeper ended.
    pub fn path(&self) -> Option<String> {
        self.shared.status.borrow().path.clone()
    }

    /// The node's path as it changes: first the current one, then `Some(path)` each time the
    /// node is in place again (for protected nodes, a new path) and `None` each time it is known
    /// to be gone and not yet back. A consumer that falls behind sees the latest path, not every
    /// one in between; the same item is never repeated. If the keeper ends on an error, the
    /// stream yields it and ends; it also ends once the `PersistentNode` is dropped or closed
    /// (after a last `None`). The stream does not keep the node alive.
    pub fn paths(&self) -> impl Stream<Item = Result<Option<String>>> + Send + 'static {
        let mut rx = self.shared.status.subscribe();
        async_stream::stream! {
            let mut last: Option<Option<String>> = None;
            loop {
                let (path, failed) = {
                    let status = rx.borrow_and_update();
                    (status.path.clone(), status.failed.clone())
                };
                if let Some(e) = failed {
                    yield Err(e);
                    return;
                }
                if last.as_ref() != Some(&path) {
                    last = Some(path.clone());
                    yield Ok(path);
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    wait_forms! {
        what: "the node's path (once the node is in place)",
        with: created_with() -> String,
        forever: created,
        once: try_created,
        timeout: created_timeout,
        cancellable: created_cancellable,
        dropped: "Dropping the future changes nothing: the node is kept by its own task.",
    }

    /// Waits within `wait`'s limits until the node is in place, and returns its path; `None` if
    /// the limits were reached first. Returns at once while the node is in place; while it is
    /// being created again (after a deletion or an expiry), waits for the new one. The other
    /// `created` methods are shorthands for this one.
    ///
    /// # Errors
    /// The error that ended the keeper: `InvalidPath` (naming the path as given), the server's
    /// refusal of the create (`NoAuth`, `NoNode` without parent creation, ...), `DataTooLarge`,
    /// `SessionExpired` without session renewal, `Closed` once the client is closed.
    ///
    /// # Cancellation safety
    /// Dropping the future changes nothing: the node is kept by its own task.
    pub async fn created_with(&self, wait: Wait) -> Result<Option<String>> {
        let mut rx = self.shared.status.subscribe();
        let bound = wait.start();
        bound
            .run(|bound| async move {
                loop {
                    {
                        let status = rx.borrow_and_update();
                        if let Some(e) = &status.failed {
                            return Err(e.clone());
                        }
                        if let Some(path) = &status.path {
                            return Ok(Some(path.clone()));
                        }
                    }
                    if bound.once() {
                        return Ok(None);
                    }
                    // The sender lives in `self`, borrowed by this call.
                    rx.changed().await.map_err(|_| Error::from(ZkError::Closed))?;
                }
            })
            .await
    }

    /// The data the node is (re-)created with: the data given last.
    pub fn data(&self) -> Bytes {
        self.shared.lock().data.clone()
    }

    /// [`PersistentNode::data`] as a function that outlives this handle (for streams built on
    /// the node, which must see later `set_data`s).
    pub(crate) fn data_source(&self) -> impl Fn() -> Bytes + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.lock().data.clone()
    }

    /// Sets the node's data, and remembers it for every later re-creation. Returns the node's
    /// new stat if it was written to the node in place; `None` if there is no node right now
    /// (not created yet, or being created again): the data is then written by the keeper, with
    /// the next create (or right after a create that was already in flight), so the node holds
    /// it as soon as it is back. Curator's `setData` fails before the first create instead.
    /// Connection losses are ridden out.
    ///
    /// # Errors
    /// The keeper's error if it has ended (see [`PersistentNode::created_with`]); `NoAuth` (the
    /// node's ACL forbids writing it); `DataTooLarge`. The data is not remembered then.
    ///
    /// # Cancellation safety
    /// If the future is dropped, the data may or may not have been remembered, and written to the
    /// node in place: call again to be sure. The node is kept either way.
    pub async fn set_data(&self, data: impl Into<Data>) -> Result<Option<Stat>> {
        let data = data.into().into_bytes();
        let shared = &self.shared;
        // Writes of the data (these and the keeper's catch-up) go one at a time, each with the
        // latest data: the last write is always of the last data.
        let _writer = shared.writer.lock().await;
        let (client, path) = {
            let status = shared.status.borrow();
            if let Some(e) = &status.failed {
                return Err(e.clone());
            }
            (status.client.clone(), status.path.clone())
        };
        let previous = shared.store(data.clone());
        let Some(path) = path else { return Ok(None) };
        let written = zkwatch::answered(&client, || {
            let reply = client.set_data(&path, data.clone(), None);
            async move { Ok(reply.await?) }
        })
        .await;
        match written {
            Ok(stat) => Ok(Some(stat)),
            // Gone (or going, with its session): the keeper creates it again with this data.
            Err(e) if e == ZkError::NoNode => Ok(None),
            Err(e) if session_ended(&e) && shared.options.renew => Ok(None),
            Err(e) => {
                shared.restore(previous);
                Err(e)
            }
        }
    }

    /// The client of the session the node is kept on: the one given, until its session expires;
    /// then its successor (see [`PersistentNodeBuilder::renew_after_expiry`]).
    pub fn client(&self) -> Client {
        self.shared.status.borrow().client.clone()
    }

    /// Stops the keeper and deletes the node, waiting for the server's answer (a create still in
    /// flight is waited for and undone).
    ///
    /// # Errors
    /// The error that had ended the keeper, if it had (see [`PersistentNode::created_with`]);
    /// otherwise the delete's (`NoAuth`, or the session's end for a persistent node). A node
    /// already gone, or an ephemeral node whose session has ended, is no error.
    pub async fn close(self) -> Result<()> {
        let pending = self.shared.close(&self.keeper);
        let failed = self.shared.status.borrow().failed.clone();
        let removed = remove(pending, self.shared.options, self.shared.id).await;
        match failed {
            Some(e) => Err(e),
            None => removed,
        }
    }
}

impl Drop for PersistentNode {
    fn drop(&mut self) {
        let (options, id) = (self.shared.options, self.shared.id);
        match self.shared.close(&self.keeper) {
            Pending::Nothing => {}
            // Queued on the session before this returns; sent again after a reconnect.
            Pending::Created { client, path } => drop(client.delete_guaranteed(&path, None)),
            pending @ Pending::InFlight { .. } => {
                // What the create made is known only from a look queued behind it. Without a
                // runtime the process is going down, and an ephemeral node with its session.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        if let Err(e) = remove(pending, options, id).await {
                            tracing::debug!(error = %e, "cleanup of a dropped PersistentNode's create failed");
                        }
                    });
                }
            }
        }
    }
}

/// The keepers of this process, numbered (for [`keeper::Claims`]).
static NEXT_KEEPER: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Clone, Copy)]
struct Options {
    protected: bool,
    sequential: bool,
    persistent: bool,
    parents: bool,
    renew: bool,
}

impl Options {
    fn mode(self, sequential: bool) -> CreateMode {
        match (self.persistent, sequential) {
            (false, false) => CreateMode::Ephemeral,
            (false, true) => CreateMode::EphemeralSequential,
            (true, false) => CreateMode::Persistent,
            (true, true) => CreateMode::PersistentSequential,
        }
    }

    /// Whether a node with `stat` may be ours on `client`'s session: its own ephemeral node
    /// (in persistent mode, any persistent node).
    fn owns(self, stat: &Stat, client: &Client) -> bool {
        if self.persistent {
            stat.ephemeral_owner == 0
        } else {
            stat.ephemeral_owner == client.session_id()
        }
    }
}

/// `InvalidPath` naming `path` as given if no node can be kept there.
fn validate(path: &str, options: Options) -> Result<()> {
    if options.sequential {
        path::validate_sequential_path(path)?;
    } else {
        path::validate_path(path)?;
        if path == "/" {
            let reason = "the root cannot be kept as a node";
            return Err(ZkError::InvalidPath { path: path.to_string(), reason }.into());
        }
    }
    Ok(())
}

/// The parent and the name of a (validated) path: `/a/b` gives `/a` and `b`; a sequential base
/// may end with `/` (then the name is empty).
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// What the handles see, published by the keeper.
#[derive(Debug, Clone)]
struct Status {
    /// The node's path while it is in place.
    path: Option<String>,
    /// The current session.
    client: Client,
    /// What ended the keeper.
    failed: Option<Error>,
}

/// What the handle and the keeper share.
#[derive(Debug)]
struct Shared {
    /// This keeper's number.
    id: u64,
    base: String,
    /// The parent and name of `base`.
    parent: String,
    name: String,
    options: Options,
    status: watch::Sender<Status>,
    state: Mutex<State>,
    /// Taken by every write of the data to the node.
    writer: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    /// Set by drop or close: no create may be sent any more.
    closed: bool,
    /// The data to create the node with, and how many times it was set.
    data: Bytes,
    generation: u64,
    /// What the keeper has on the server, for drop and close to remove.
    pending: Pending,
}

/// What the keeper has put on the server.
#[derive(Debug)]
enum Pending {
    Nothing,
    /// A create was sent on `client`'s session whose outcome is not known yet; `probe` finds
    /// what it made, created after `floor` (a zxid seen before it was sent).
    InFlight {
        client: Client,
        probe: Probe,
        floor: i64,
    },
    /// The node is in place at `path`, on `client`'s session.
    Created {
        client: Client,
        path: String,
    },
}

/// How to find what a create made when its reply is not known.
#[derive(Debug, Clone)]
enum Probe {
    /// The node at this path.
    Fixed(String),
    /// The child of `parent` named with this protected prefix.
    Prefix { parent: String, prefix: String },
    /// A child of `parent` named `name` and a sequence suffix.
    Sequence { parent: String, name: String },
}

/// What the next create makes.
#[derive(Debug, Clone)]
enum Plan {
    /// This path, non-sequential.
    Fixed(String),
    /// The base path with a new sequence number.
    Sequence,
    /// A new protected name for `name` under the parent, sequential or not.
    Protected { name: String, sequential: bool },
}

/// A create sent: its reply, how to find what it made, the zxid seen before it was sent and
/// the generation of the data it carries.
struct Sent {
    reply: BoxFuture<'static, std::result::Result<(String, Stat), ZkError>>,
    probe: Probe,
    floor: i64,
    generation: u64,
}

/// What the keeper knows of the data on the server, for [`Shared::settle`].
#[derive(Debug)]
enum Known {
    /// The data of this generation.
    Generation(u64),
    /// These bytes.
    Data(Bytes),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self) -> Client {
        self.status.borrow().client.clone()
    }

    /// Remembers `data` as the node's; returns what it replaces, for [`Shared::restore`].
    fn store(&self, data: Bytes) -> (u64, Bytes) {
        let mut st = self.lock();
        st.generation += 1;
        (st.generation, std::mem::replace(&mut st.data, data))
    }

    /// Takes back a [`Shared::store`] whose write failed, unless the data was set again since.
    fn restore(&self, (generation, data): (u64, Bytes)) {
        let mut st = self.lock();
        if st.generation == generation {
            st.generation += 1;
            st.data = data;
        }
    }

    /// The data and its generation.
    fn data(&self) -> (u64, Bytes) {
        let st = self.lock();
        (st.generation, st.data.clone())
    }

    /// What to create next, given the path of the last node created (if any).
    fn plan(&self, last: Option<&str>) -> Plan {
        let o = self.options;
        match (o.protected, o.sequential, last) {
            (false, false, _) => Plan::Fixed(self.base.clone()),
            (false, true, None) => Plan::Sequence,
            (false, true, Some(last)) => Plan::Fixed(last.to_string()),
            (true, false, _) | (true, true, None) => {
                Plan::Protected { name: self.name.clone(), sequential: o.sequential }
            }
            (true, true, Some(last)) => {
                // `_c_<uuid>-<name><seq>`: the same name and sequence number, under a new uuid.
                match strip_protection(path::name(last)).strip_prefix(self.name.as_str()) {
                    Some(seq) => Plan::Protected { name: format!("{}{seq}", self.name), sequential: false },
                    None => Plan::Protected { name: self.name.clone(), sequential: true },
                }
            }
        }
    }

    /// Sends the create of `plan` on `client`'s session, recording it as in flight (with
    /// `floor`, if an earlier attempt's outcome is still unknown) in the same step, so that a
    /// drop either prevents it or sees it.
    ///
    /// # Errors
    /// `Closed` once dropped or closed: nothing is sent.
    fn send_create(&self, client: &Client, plan: &Plan, floor: Option<i64>) -> Result<Sent> {
        let mut st = self.lock();
        if st.closed {
            return Err(ZkError::Closed.into());
        }
        let (path, sequential, probe) = match plan {
            Plan::Fixed(p) => (p.clone(), false, Probe::Fixed(p.clone())),
            Plan::Sequence => {
                (self.base.clone(), true, Probe::Sequence { parent: self.parent.clone(), name: self.name.clone() })
            }
            Plan::Protected { name, sequential } => {
                let id = uuid::Uuid::new_v4().to_string();
                let probe = Probe::Prefix { parent: self.parent.clone(), prefix: protected_name(&id, "") };
                (path::join(&self.parent, &protected_name(&id, name)), *sequential, probe)
            }
        };
        let floor = floor.unwrap_or_else(|| client.last_zxid());
        let reply = client.create(&path, st.data.clone(), self.options.mode(sequential));
        st.pending = Pending::InFlight { client: client.clone(), probe: probe.clone(), floor };
        Ok(Sent { reply, probe, floor, generation: st.generation })
    }

    /// The create in flight made nothing (or nothing of ours).
    fn unsent(&self) {
        self.lock().pending = Pending::Nothing;
    }

    /// Makes sure the node at `path` holds the latest data (the node holds `known`), then
    /// publishes it as in place. Returns its stat.
    ///
    /// # Errors
    /// The write's (`NoAuth`, `DataTooLarge`, the session's end); `Closed` if dropped or closed
    /// meanwhile (the node is then deleted).
    async fn settle(&self, client: &Client, path: &str, mut stat: Stat, mut known: Known) -> Result<Stat> {
        let _writer = self.writer.lock().await;
        loop {
            let (generation, data) = self.data();
            let current = match &known {
                Known::Generation(g) => *g == generation,
                Known::Data(d) => *d == data,
            };
            if current {
                break;
            }
            let written = zkwatch::answered(client, || {
                let reply = client.set_data(path, data.clone(), None);
                async move { Ok(reply.await?) }
            })
            .await;
            match written {
                Ok(s) => {
                    stat = s;
                    known = Known::Generation(generation);
                }
                // Gone already: following it finds that out.
                Err(e) if e == ZkError::NoNode => break,
                Err(e) => return Err(e),
            }
        }
        // Published under the writer lock: a `set_data` after this sees the path and writes to
        // the node itself.
        let mut st = self.lock();
        if st.closed {
            // Dropped while this was being settled: the node is ours, and must go.
            drop(client.delete_guaranteed(path, None));
            return Err(ZkError::Closed.into());
        }
        st.pending = Pending::Created { client: client.clone(), path: path.to_string() };
        self.status.send_modify(|s| s.path = Some(path.to_string()));
        Ok(stat)
    }

    /// The node is gone (deleted, replaced, or gone with its session).
    fn gone(&self) {
        let mut st = self.lock();
        st.pending = Pending::Nothing;
        self.status.send_if_modified(|s| s.path.take().is_some());
    }

    /// The keeper is on `client`'s session from now on.
    fn renewed(&self, client: &Client) {
        let mut st = self.lock();
        if let Pending::Created { client: c, .. } = &mut st.pending {
            // A persistent node outlives the session: delete it through the new one.
            *c = client.clone();
        }
        self.status.send_modify(|s| s.client = client.clone());
    }

    /// The keeper ended on `e`: published (the node, if any, is no longer kept), unless the
    /// keeper was stopped (then `e` only says so). Returns whether it was.
    fn fail(&self, e: Error) -> bool {
        let st = self.lock();
        if st.closed {
            return false;
        }
        self.status.send_modify(|s| {
            s.path = None;
            s.failed = Some(e);
        });
        true
    }

    /// Stops the keeper for good: no create is sent from now on, and what it had on the server
    /// is returned, for the caller to remove.
    fn close(&self, keeper: &tokio::task::AbortHandle) -> Pending {
        keeper.abort();
        let mut st = self.lock();
        st.closed = true;
        let pending = std::mem::replace(&mut st.pending, Pending::Nothing);
        self.status.send_if_modified(|s| s.path.take().is_some());
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_suffixes_are_zookeepers() {
        use super::keeper::is_sequence_suffix;
        assert!(is_sequence_suffix("0000000042"));
        assert!(is_sequence_suffix("-000000042"));
        assert!(is_sequence_suffix("2147483647"));
        assert!(!is_sequence_suffix("42"));
        assert!(!is_sequence_suffix("x0000000042"));
        assert!(!is_sequence_suffix("00000000042"));
    }

    #[test]
    fn paths_split_into_parent_and_name() {
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(split("/a/b/c"), ("/a/b", "c"));
        assert_eq!(split("/a/"), ("/a", ""));
    }

    #[test]
    fn bad_paths_are_named_as_given() {
        let plain = Options { protected: false, sequential: false, persistent: false, parents: true, renew: true };
        let e = validate("no-slash", plain).unwrap_err();
        assert!(matches!(&e, Error::Zk(ZkError::InvalidPath { path, .. }) if path == "no-slash"), "{e:?}");
        let e = validate("/", plain).unwrap_err();
        assert!(matches!(&e, Error::Zk(ZkError::InvalidPath { path, .. }) if path == "/"), "{e:?}");
        let sequential = Options { sequential: true, ..plain };
        assert_eq!(validate("/dir/", sequential), Ok(()));
        assert!(validate("/dir/", plain).is_err());
    }
}
