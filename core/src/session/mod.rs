//! The session task: one background task per client that owns the connection and all of its
//! state. Client handles only send it commands; it writes requests in the order they were
//! made (batching everything queued into one write), matches replies to requests in FIFO order
//! (checking every xid), dispatches watch notifications before the replies that follow them,
//! pings when idle, detects silent servers with a read timeout, reconnects to the same session
//! after a connection loss (other servers of the connect string first, with back-off; replaying
//! credentials and re-registering watches with `SetWatches`), never goes back to a server that
//! is behind what it has seen, and ends everything with a typed error when the session ends.
//! See [`state`] for the state diagram and the recipe-level connection states.
//!
//! Inside, `task` is the loop, `inflight` the bookkeeping of requests written to the current
//! connection, `reconnect` the connecting and replaying, `connect` one connection attempt and
//! `watches` the watch registry.

mod connect;
mod event;
mod inflight;
mod reconnect;
pub mod state;
mod task;
mod watches;

#[cfg(all(test, feature = "testing"))]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::path::Chroot;
use crate::proto::{AuthPacket, OpCode, Reader, WatcherType, PASSWORD_LEN};

pub(crate) use connect::{parse_connect_string, Endpoints};
pub use connect::{BoxTransport, Transport, TransportFactory};
pub use event::WatchedEvent;
pub use state::{ConnectionState, ConnectionStateStream, SessionState, StateStream};
pub(crate) use watches::{WatchKind, WatchRegistration, WatchSink, WatcherId};

use connect::Connection;
use state::StateCell;

/// A successful reply: the undecoded body.
#[derive(Debug)]
pub(crate) struct RawReply {
    pub(crate) body: Bytes,
}

impl RawReply {
    pub(crate) fn reader(self) -> Reader {
        Reader::new(self.body)
    }
}

/// Why serving a connection stopped.
#[derive(Debug)]
enum Outcome {
    /// The connection is gone; the session may live on.
    Lost(String),
    /// The session is over.
    Terminal(SessionState),
}

/// Where a request's outcome goes.
pub(crate) type Responder = oneshot::Sender<Result<RawReply>>;

/// What the session does with a reply besides handing it over.
#[derive(Debug)]
pub(crate) enum Effect {
    None,
    /// Register a watcher if the request succeeds (for exists: also on `NONODE`, as an exists
    /// watch).
    Watch(WatchRegistration),
    /// After a successful `removeWatches`, end the matching local watchers.
    RemoveLocal {
        path: String,
        watcher_type: WatcherType,
        client_path: String,
    },
}

/// A request on its way to the session task: a complete frame (its xid already assigned).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) xid: i32,
    pub(crate) op: OpCode,
    pub(crate) frame: Bytes,
    pub(crate) responder: Option<Responder>,
    pub(crate) effect: Effect,
    /// When the caller stops waiting (`ClientBuilder::request_timeout`): a request still queued
    /// for a reconnect by then is never sent.
    pub(crate) deadline: Option<Instant>,
    /// Sent again after a reconnect if the connection breaks before the reply (only for requests
    /// that are safe to repeat: [`crate::Client::delete_guaranteed`]). Never failed fast.
    pub(crate) guaranteed: bool,
    /// A guaranteed request sent again after a connection loss: an earlier attempt may have
    /// been applied.
    pub(crate) resent: bool,
}

/// Messages from client handles (and watchers) to the session task.
#[derive(Debug)]
pub(crate) enum Command {
    Request(Outgoing),
    /// `addAuth`: remembered and replayed after every reconnect.
    Auth {
        packet: AuthPacket,
        frame: Bytes,
        responder: Responder,
    },
    /// A watcher was dropped.
    Unwatch(WatcherId),
    /// Close the session; the sender is told when it is done.
    Close(oneshot::Sender<()>),
    /// Stop using the session without closing it (another client takes it over); the sender
    /// gets the credentials once the task has let go.
    Detach(oneshot::Sender<SessionCredentials>),
}

/// What it takes to attach to a live session from another [`crate::Client`] or process:
/// [`crate::Client::credentials`] gives them, [`crate::ClientBuilder::session`] uses them.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// The session id.
    pub session_id: i64,
    /// The session password.
    pub password: Bytes,
    /// The highest zxid the previous owner saw: the new connection refuses servers behind it.
    pub last_zxid: i64,
}

impl fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("password", &"<redacted>")
            .field("last_zxid", &self.last_zxid)
            .finish()
    }
}

/// A highest-zxid-seen shared by several clients, so that together they never read older state
/// than any of them has seen (a monotonic-reads guarantee across sessions, like etcd's ordering
/// wrapper). Give the same floor to each client with [`crate::ClientBuilder::zxid_floor`]: each
/// raises it with every reply, refuses to connect to servers behind it, and fails a read whose
/// reply predates it with [`Error::StaleRead`] (`sync()` and retrying then sees the newer data).
#[derive(Debug, Clone, Default)]
pub struct ZxidFloor(Arc<AtomicI64>);

impl ZxidFloor {
    /// A floor at zxid 0.
    pub fn new() -> Self {
        ZxidFloor::default()
    }

    /// The highest zxid seen so far.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    fn raise(&self, zxid: i64) {
        self.0.fetch_max(zxid, Ordering::AcqRel);
    }
}

/// State shared between the session task and its client handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) chroot: Chroot,
    pub(crate) max_frame: usize,
    pub(crate) state: StateCell,
    /// What the session was built from (for `reconnect_new_session`).
    pub(crate) config: SessionConfig,
    next_xid: AtomicI32,
    next_watcher: AtomicU64,
    session_id: AtomicI64,
    password: Mutex<Bytes>,
    timeout_ms: AtomicI32,
    last_zxid: ZxidFloor,
    /// The server of the current connection (`host:port`, or `in-process`).
    server: Mutex<Option<String>>,
    /// Values kept with the session for libraries on the client ([`crate::Client::local`]),
    /// one per type.
    pub(crate) locals: Mutex<HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>,
}

impl Shared {
    /// The next request xid: 1, 2, ... wrapping back to 1 after `i32::MAX`.
    pub(crate) fn next_xid(&self) -> i32 {
        loop {
            let cur = self.next_xid.load(Ordering::Relaxed);
            let next = if cur == i32::MAX { 1 } else { cur + 1 };
            if self.next_xid.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                return cur;
            }
        }
    }

    pub(crate) fn next_watcher_id(&self) -> WatcherId {
        self.next_watcher.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn session_id(&self) -> i64 {
        self.session_id.load(Ordering::Acquire)
    }

    pub(crate) fn password(&self) -> Bytes {
        self.password.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn negotiated_timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Acquire).max(0) as u64)
    }

    pub(crate) fn last_zxid(&self) -> i64 {
        self.last_zxid.get()
    }

    pub(crate) fn zxid_floor(&self) -> ZxidFloor {
        self.last_zxid.clone()
    }

    pub(crate) fn credentials(&self) -> SessionCredentials {
        SessionCredentials { session_id: self.session_id(), password: self.password(), last_zxid: self.last_zxid() }
    }

    pub(crate) fn connected_server(&self) -> Option<String> {
        self.server.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_server(&self, server: Option<String>) {
        *self.server.lock().unwrap_or_else(|e| e.into_inner()) = server;
    }

    fn adopt(&self, conn: &Connection) {
        self.set_server(Some(conn.server.clone()));
        let r = &conn.response;
        *self.password.lock().unwrap_or_else(|e| e.into_inner()) = r.passwd.clone();
        self.timeout_ms.store(r.timeout, Ordering::Release);
        self.session_id.store(r.session_id, Ordering::Release);
    }
}

/// What the client asked for when building the session.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub(crate) endpoints: Endpoints,
    pub(crate) chroot: Chroot,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_only: bool,
    /// Largest request frame (checked by the client handles).
    pub(crate) max_frame: usize,
    /// Largest reply frame accepted.
    pub(crate) max_reply_frame: usize,
    /// How long a caller waits for a reply at most (`None`: until the session ends).
    pub(crate) request_timeout: Option<Duration>,
    /// Requests made while disconnected fail at once with `ConnectionLoss` instead of waiting.
    pub(crate) fail_fast: bool,
    /// Declare the session expired after 4/3 of its timeout without hearing from any server.
    pub(crate) client_side_expiry: bool,
    /// Credentials sent after each new session is established (and replayed on reconnects).
    pub(crate) auth: Vec<(String, Vec<u8>)>,
    /// A session to attach to instead of creating one.
    pub(crate) resume: Option<SessionCredentials>,
    /// A highest-zxid-seen shared with other clients.
    pub(crate) floor: Option<ZxidFloor>,
}

/// The sessions of this process, by id, so that attaching to a session from a second `Client`
/// stops the first one (it would otherwise reconnect and take the session back).
type LiveSessions = Mutex<HashMap<i64, (u64, mpsc::WeakUnboundedSender<Command>)>>;

fn live_sessions() -> &'static LiveSessions {
    static LIVE: OnceLock<LiveSessions> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// Tells the client of this process that owns `session_id`, if any, that its session is being
/// taken over, and waits until it has let go.
async fn take_over(session_id: i64) {
    let owner = live_sessions().lock().unwrap_or_else(|e| e.into_inner()).remove(&session_id);
    if let Some(tx) = owner.and_then(|(_, weak)| weak.upgrade()) {
        let (done, let_go) = oneshot::channel();
        if tx.send(Command::Detach(done)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), let_go).await;
        }
    }
}

/// Connects (trying every server until `connect_timeout`), then spawns the session task.
pub(crate) async fn start(config: SessionConfig) -> Result<(Arc<Shared>, mpsc::UnboundedSender<Command>)> {
    static OWNER_IDS: AtomicU64 = AtomicU64::new(1);
    let floor = config.floor.clone().unwrap_or_default();
    let (session_id, password) = match &config.resume {
        Some(creds) => {
            floor.raise(creds.last_zxid);
            take_over(creds.session_id).await;
            (creds.session_id, creds.password.clone())
        }
        None => (0, Bytes::from_static(&[0; PASSWORD_LEN])),
    };
    let shared = Arc::new(Shared {
        chroot: config.chroot.clone(),
        max_frame: config.max_frame,
        state: StateCell::new(SessionState::Connecting),
        config: SessionConfig { resume: None, ..config.clone() },
        next_xid: AtomicI32::new(1),
        next_watcher: AtomicU64::new(1),
        session_id: AtomicI64::new(session_id),
        password: Mutex::new(password),
        timeout_ms: AtomicI32::new(0),
        last_zxid: floor,
        server: Mutex::new(None),
        locals: Mutex::default(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let owner = OWNER_IDS.fetch_add(1, Ordering::Relaxed);
    let mut session = task::Session::new(shared.clone(), config, rx, owner);
    let deadline = Instant::now() + session.connect_timeout();
    let conn = session.first_connection(deadline).await?;
    live_sessions().lock().unwrap_or_else(|e| e.into_inner()).insert(shared.session_id(), (owner, tx.downgrade()));
    tracing::debug!(session_id = format_args!("{:#x}", shared.session_id()), server = %conn.server, "session established");
    tokio::spawn(session.run(conn));
    Ok((shared, tx))
}

/// Forgets `session_id` in the registry of live sessions if `owner` still holds it.
fn forget_session(session_id: i64, owner: u64) {
    let mut live = live_sessions().lock().unwrap_or_else(|e| e.into_inner());
    if live.get(&session_id).is_some_and(|(o, _)| *o == owner) {
        live.remove(&session_id);
    }
}

/// Ends a command that can no longer be carried out with `err`.
fn fail_command(cmd: Command, err: Error) {
    match cmd {
        Command::Request(out) => {
            if let Some(tx) = out.responder {
                let _ = tx.send(Err(err));
            }
        }
        Command::Auth { responder, .. } => {
            let _ = responder.send(Err(err));
        }
        Command::Close(done) => {
            let _ = done.send(());
        }
        Command::Detach(_) | Command::Unwatch(_) => {}
    }
}
