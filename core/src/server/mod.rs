//! An embedded, in-memory ZooKeeper-compatible server that behaves like a standalone
//! ZooKeeper 3.8.0 (Debian's 3.8.0-11+deb12u2) on the wire.
//!
//! Start one with [`Server::builder`], connect over TCP ([`ServerHandle::connect_string`]) or
//! in-process ([`ServerHandle::connect_in_process`], the same bytes served by the same code),
//! and inject faults with [`ServerHandle::faults`]. Every timer (session expiry, the
//! container/TTL reaper, handshake and idle deadlines) runs on `tokio::time`, and node times
//! come from the start wall-clock time plus tokio's elapsed time, so tests can run the server
//! under `tokio::time::pause()`.
//!
//! ```
//! # use std::time::Duration;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> conclave_core::Result<()> {
//! use conclave_core::Server;
//!
//! let server = Server::builder().tick_time(Duration::from_millis(500)).start().await?;
//! println!("ZooKeeper clients can connect to {}", server.connect_string());
//! let pipe = server.connect_in_process()?; // the same protocol, without a socket
//! # drop(pipe);
//! assert_eq!(server.node_count(), 4); // /, /zookeeper, /zookeeper/quota, /zookeeper/config
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Compatibility
//!
//! Semantics follow what a real 3.8.0 was measured to do, including its quirks: notifications
//! carry zxid -1; `exists` checks no ACL; watch events are filtered by READ permission (the
//! CVE-2024-23944 fix Debian backported); one watch mode per connection and path, and
//! persistent-recursive watches registered in both tables (so they never see child-list
//! changes); `create2` results inside a multi are path-only; `checkWatches`/`removeWatches`
//! know only the types Children, Data and Any; the sequence counter sticks at 2147483647;
//! `ip` ACLs are IPv4 only; children, ephemeral and `whoAmI` lists come back in the real
//! server's (Java hash set) order. Deliberate divergences, each safer than the original:
//!
//! - a resume with a wrong password gets the "expired" answer but does **not** disconnect the
//!   session's legitimate connection;
//! - connections that never complete a ConnectRequest are closed at an absolute 10 s deadline
//!   (ZooKeeper re-arms its deadline on every byte);
//! - a standalone `check` request is answered UNIMPLEMENTED and the connection closed
//!   (3.8.0 drops it silently, which leaves the client waiting forever);
//! - a `createTTL` with a non-TTL mode is BADARGUMENTS (3.8.0 crashes on it when the TTL is
//!   negative);
//! - TTL nodes are enabled by default ([`ServerBuilder::ttl_enabled`]);
//! - a reply that would exceed the reply limit is answered MARSHALLINGERROR (ZooKeeper sends it,
//!   and a client with a smaller `jute.maxbuffer` drops the connection);
//! - a client that does not read its replies stops being served (past 4 MiB queued), and is
//!   disconnected once [`ServerBuilder::max_queued_bytes`] of output wait for it or when it
//!   has read nothing for a whole session timeout;
//! - a session whose connection keeps sending is not expired while its requests wait for the
//!   server (ZooKeeper expires it if its request processor is that far behind);
//! - one connection holds at most 256 identities: a further `auth` is AUTHFAILED and closes it.
//!
//! Not reproduced: the null-versus-empty distinction in a few request strings (a `sync` of a
//! null path echoes `""`; a `digest` ACL with a null id is INVALIDACL instead of 3.8.0's
//! MARSHALLINGERROR), the reaper's 10 000-deletions-per-minute limit, latency statistics
//! (reported as 0), the JVM-specific lines of `envi`, and the order of names inside a hash
//! bucket that ZooKeeper has turned into a tree (it takes names chosen to share one Java
//! `hashCode`).
//!
//! # Limits: what one client can make the server do
//!
//! The server is built to be exposed to clients it does not trust: no request, sequence of
//! requests or set of connections makes it exit, allocate without bound or hold its state for
//! more than a bounded slice of time. The bounds, with their defaults:
//!
//! | bound | default | setting |
//! | --- | --- | --- |
//! | request frame | 1 048 575 bytes (`jute.maxbuffer`); larger closes the connection | [`ServerBuilder::max_frame`] |
//! | reply body | 4 MiB; a larger reply (`getData` of a node stored under a larger limit, `getChildren`, `getEphemerals`, `whoAmI`, `multiRead`) is answered MARSHALLINGERROR before it is built, and the connection stays open | [`ServerBuilder::max_reply_bytes`] |
//! | replies waiting for one client | 4 MiB stops serving its requests until it reads; 64 MiB (notifications caused by others) closes it | [`ServerBuilder::max_queued_bytes`] |
//! | replies waiting for all clients | 256 MiB: past it the connections with the longest queues are closed | [`ServerBuilder::max_total_queued_bytes`] |
//! | work per lock hold | 256 requests of one connection, fewer once they have visited, listed or deleted 20 000 nodes or queued 4 MiB; then the connection waits its turn | fixed |
//! | connections per address | 60 (`maxClientCnxns`, 0 = no limit) | [`ServerBuilder::max_connections_per_ip`] |
//! | connections in all | 1024 (`zookeeper.maxCnxns`, 0 = no limit) | [`ServerBuilder::max_connections`] |
//! | handshake | 10 s from accept, however the bytes trickle in | fixed |
//! | four-letter words | `srvr` only, as ZooKeeper's default `4lw.commands.whitelist` (`srvr` is always answered) | [`ServerBuilder::four_letter_words`] |
//! | identities per connection | 256; a further `auth` is AUTHFAILED and closes the connection (ZooKeeper has no limit) | fixed |
//!
//! Every byte of replies and notifications queued is counted until written
//! ([`ServerHandle::queued_bytes`], [`ServerHandle::peak_queued_bytes`]). Sets a client can fill
//! with names of its choosing (children, a session's ephemerals, containers, TTL nodes) cost
//! O(1) per insertion and removal even when every name has the same Java `hashCode`.
//! `getAllChildrenNumber` walks the subtree without allocating per node. Refused connections
//! are logged at `info` and counted in `mntr`'s `zk_connection_rejected`.

mod acl;
mod conn;
mod faults;
mod fourlw;
mod jhash;
mod ops;
mod outbox;
mod peer;
mod sessions;
mod state;
mod tree;
mod txn;
mod watches;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::DuplexStream;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

pub use faults::Faults;

use crate::error::{Error, Result};
use peer::Peer;
use state::State;

/// The default reply limit: 4 MiB, the largest reply a Java client (and ours) accepts by default.
pub const DEFAULT_MAX_REPLY: usize = 4 << 20;

/// Buffer size of an in-process connection's pipe.
const DUPLEX_BUFFER: usize = 256 << 10;

/// The embedded server. A namespace: see [`Server::builder`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder with ZooKeeper's sample-configuration defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

/// The server's settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub tick: Duration,
    pub min_session: Option<Duration>,
    pub max_session: Option<Duration>,
    pub max_frame: usize,
    pub ttl_enabled: bool,
    pub container_check_interval: Duration,
    pub super_digest: Option<String>,
    pub max_connections_per_ip: usize,
    pub max_connections: usize,
    pub tcp: bool,
    pub max_queued_bytes: usize,
    pub max_total_queued_bytes: usize,
    pub max_reply: usize,
    pub four_letter_words: fourlw::Whitelist,
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl Config {
    pub(crate) fn tick_ms(&self) -> i64 {
        i64::from(millis_i32(self.tick)).max(1)
    }

    pub(crate) fn min_session_ms(&self) -> i32 {
        self.min_session.map_or_else(|| millis_i32(self.tick).saturating_mul(2), millis_i32)
    }

    pub(crate) fn max_session_ms(&self) -> i32 {
        self.max_session.map_or_else(|| millis_i32(self.tick).saturating_mul(20), millis_i32)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tick: Duration::from_millis(2000),
            min_session: None,
            max_session: None,
            max_frame: crate::proto::DEFAULT_MAX_FRAME,
            ttl_enabled: true,
            container_check_interval: Duration::from_secs(60),
            super_digest: None,
            max_connections_per_ip: 60,
            max_connections: 1024,
            tcp: true,
            max_queued_bytes: 64 << 20,
            max_total_queued_bytes: 256 << 20,
            max_reply: DEFAULT_MAX_REPLY,
            four_letter_words: fourlw::Whitelist::default(),
        }
    }
}

/// Configures and starts a [`Server`]. Setters take and return the builder.
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    cfg: Config,
}

impl ServerBuilder {
    /// The address to listen on (default `127.0.0.1`).
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.cfg.bind = ip;
        self
    }

    /// The TCP port (default 0: the OS picks one; see [`ServerHandle::local_addr`]).
    pub fn port(mut self, port: u16) -> Self {
        self.cfg.port = port;
        self
    }

    /// ZooKeeper's `tickTime` (default 2000 ms, as in the sample `zoo.cfg`): the session-expiry
    /// granularity, and the unit of the default session timeout bounds (2 and 20 ticks).
    pub fn tick_time(mut self, d: Duration) -> Self {
        self.cfg.tick = d;
        self
    }

    /// The smallest session timeout granted (default 2 × tick time).
    pub fn min_session_timeout(mut self, d: Duration) -> Self {
        self.cfg.min_session = Some(d);
        self
    }

    /// The largest session timeout granted (default 20 × tick time).
    pub fn max_session_timeout(mut self, d: Duration) -> Self {
        self.cfg.max_session = Some(d);
        self
    }

    /// The largest request frame accepted, in bytes (default
    /// [`DEFAULT_MAX_FRAME`](crate::proto::DEFAULT_MAX_FRAME), ZooKeeper's `jute.maxbuffer`).
    /// A larger frame closes the connection, as on ZooKeeper.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.cfg.max_frame = bytes;
        self
    }

    /// Whether TTL nodes are available (default true). When false, `createTTL` and create
    /// flags 5 and 6 answer UNIMPLEMENTED, like a ZooKeeper without
    /// `zookeeper.extendedTypesEnabled`.
    pub fn ttl_enabled(mut self, on: bool) -> Self {
        self.cfg.ttl_enabled = on;
        self
    }

    /// How often the reaper deletes empty containers that have had a child and expired TTL
    /// nodes (default 60 s, ZooKeeper's `znode.container.checkIntervalMs`).
    pub fn container_check_interval(mut self, d: Duration) -> Self {
        self.cfg.container_check_interval = d;
        self
    }

    /// The super user's digest, `super:<base64 sha1>` as in
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: a connection that authenticates
    /// with the matching `digest` credential passes every ACL check.
    pub fn super_digest(mut self, digest: impl Into<String>) -> Self {
        self.cfg.super_digest = Some(digest.into());
        self
    }

    /// Most TCP connections accepted from one IP address (default 60, ZooKeeper's
    /// `maxClientCnxns`; 0 means no limit). Further connections are closed at once, and each
    /// refusal is logged. In-process connections are not counted.
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.cfg.max_connections_per_ip = n;
        self
    }

    /// Most TCP connections open at once, from all addresses (default 1024, ZooKeeper's
    /// `zookeeper.maxCnxns`; 0 means no limit). Further connections are closed at once, and
    /// each refusal is logged. In-process connections are not counted.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.cfg.max_connections = n;
        self
    }

    /// The largest reply body the server builds (default [`DEFAULT_MAX_REPLY`], 4 MiB). A
    /// `getData`, `getChildren`, `getEphemerals`, `whoAmI` or `multiRead` whose reply would be
    /// larger is answered MARSHALLINGERROR, without the reply being built, and the connection
    /// stays open.
    /// (ZooKeeper has no such limit: it sends the reply, and a client whose `jute.maxbuffer` is
    /// smaller drops the connection.)
    pub fn max_reply_bytes(mut self, bytes: usize) -> Self {
        self.cfg.max_reply = bytes;
        self
    }

    /// The four-letter words answered, as ZooKeeper's `4lw.commands.whitelist`: a comma- or
    /// space-separated list of words, or `*` for all of them. As in ZooKeeper, `srvr` is always
    /// answered, so the default is `srvr` only. Any other word is answered "`<word>` is not
    /// executed because it is not in the whitelist." ZooKeeper's words this server does not
    /// implement (`dirs`, `gtmk`, `stmk`, `hash`) are accepted in the list and ignored. `dump`,
    /// `cons`, `wchc` and `wchp` show session ids, watched paths and ephemeral paths to whoever
    /// asks, without authentication: enable them only on trusted networks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming a word neither this server nor ZooKeeper knows.
    pub fn four_letter_words(mut self, list: &str) -> Result<Self> {
        self.cfg.four_letter_words = fourlw::Whitelist::parse(list)?;
        Ok(self)
    }

    /// Listens on no TCP port: the server is reachable only through
    /// [`ServerHandle::connect_in_process`], and [`ServerHandle::local_addr`] is `None`.
    pub fn no_tcp(mut self) -> Self {
        self.cfg.tcp = false;
        self
    }

    /// Most bytes of replies and notifications queued for one connection (default 64 MiB).
    /// The server stops applying a connection's requests while more than 4 MiB wait for it;
    /// this cap catches notifications caused by other sessions, and closes the connection past
    /// it.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.cfg.max_queued_bytes = bytes;
        self
    }

    /// Most bytes of replies and notifications queued for all connections together (default
    /// 256 MiB). Past it the server closes the connections with the longest queues (clients
    /// that do not read) until the total is back under the cap.
    pub fn max_total_queued_bytes(mut self, bytes: usize) -> Self {
        self.cfg.max_total_queued_bytes = bytes;
        self
    }

    /// Binds and starts the server; its tasks run on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for inconsistent settings or when called outside a tokio
    /// runtime, [`Error::Io`] when the port cannot be bound.
    pub async fn start(self) -> Result<ServerHandle> {
        let cfg = self.cfg;
        if cfg.tick.is_zero() || cfg.container_check_interval.is_zero() {
            return Err(Error::InvalidArgument("tick time and container check interval must be positive".into()));
        }
        if cfg.min_session_ms() > cfg.max_session_ms() || cfg.min_session_ms() <= 0 {
            return Err(Error::InvalidArgument("session timeout bounds must satisfy 0 < min <= max".into()));
        }
        if cfg.max_reply < 1024 {
            return Err(Error::InvalidArgument("max_reply_bytes must be at least 1024".into()));
        }
        if cfg.max_frame == 0 || cfg.max_frame > i32::MAX as usize {
            return Err(Error::InvalidArgument("max_frame must be in 1..=i32::MAX".into()));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::InvalidArgument("Server::start must run inside a tokio runtime".into()))?;
        let listener = if cfg.tcp { Some(TcpListener::bind((cfg.bind, cfg.port)).await?) } else { None };
        let local_addr = match &listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let start_wall =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
        let budget = Arc::new(outbox::Budget::new(cfg.max_total_queued_bytes));
        let cfg = Arc::new(cfg);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(cfg.clone(), start_wall)),
            cfg,
            cancel: CancellationToken::new(),
            start: Instant::now(),
            start_wall,
            local_addr,
            runtime,
            tasks: Arc::new(TaskCount::default()),
            admitted: Mutex::new(Admitted::default()),
            in_process: AtomicU64::new(0),
            budget,
            rejected: AtomicU64::new(0),
            lock_waiters: AtomicUsize::new(0),
        });
        if let Some(listener) = listener {
            shared.spawn_tracked(accept_loop(shared.clone(), listener));
        }
        shared.spawn_tracked(expiry_loop(shared.clone()));
        shared.spawn_tracked(reaper_loop(shared.clone()));
        match local_addr {
            Some(addr) => info!(%addr, "embedded ZooKeeper server started"),
            None => info!("embedded ZooKeeper server started (in-process only)"),
        }
        Ok(ServerHandle { inner: Arc::new(HandleInner { shared }) })
    }
}

/// Server time: ms on the tokio clock since start, and the matching wall-clock ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub ms: i64,
    pub wall: i64,
}

/// Counts live tasks so that shutdown can wait for all of them.
#[derive(Debug, Default)]
pub(crate) struct TaskCount {
    live: AtomicUsize,
    idle: Notify,
}

/// Held by a running task; dropping it marks the task finished.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<TaskCount>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What the server's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: Arc<Config>,
    state: Mutex<State>,
    /// Fired at shutdown; every connection's token is a child of it.
    pub cancel: CancellationToken,
    start: Instant,
    start_wall: i64,
    pub local_addr: Option<SocketAddr>,
    runtime: tokio::runtime::Handle,
    tasks: Arc<TaskCount>,
    admitted: Mutex<Admitted>,
    in_process: AtomicU64,
    /// Bytes queued on every connection.
    pub budget: Arc<outbox::Budget>,
    /// TCP connections refused by a connection limit.
    rejected: AtomicU64,
    /// Readers blocked on the state lock with requests in hand.
    pub lock_waiters: AtomicUsize,
}

/// The TCP connections open, by address and in all.
#[derive(Debug, Default)]
struct Admitted {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

impl Shared {
    /// The state lock. A poisoned lock is taken over: the state is only ever changed by code
    /// that cannot panic halfway on client input.
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server clock now.
    pub(crate) fn now(&self) -> Now {
        let ms = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        Now { ms, wall: self.start_wall.saturating_add(ms) }
    }

    /// The wall-clock time of server-clock `ms`.
    pub(crate) fn wall_at(&self, ms: i64) -> i64 {
        self.start_wall.saturating_add(ms)
    }

    fn guard(&self) -> TaskGuard {
        self.tasks.live.fetch_add(1, Ordering::AcqRel);
        TaskGuard(self.tasks.clone())
    }

    /// Spawns a task that shutdown waits for.
    pub(crate) fn spawn_tracked(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let guard = self.guard();
        self.runtime.spawn(async move {
            fut.await;
            drop(guard);
        });
    }

    fn spawn_conn<R, W>(self: &Arc<Self>, rd: R, wr: W, peer: Peer)
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let guard = self.guard();
        let shared = self.clone();
        self.runtime.spawn(async move {
            let tcp_ip = peer.tcp.map(|a| a.ip());
            conn::serve(shared.clone(), rd, wr, peer, guard).await;
            if let Some(ip) = tcp_ip {
                shared.release_ip(ip);
            }
        });
    }

    /// TCP connections refused by a connection limit so far.
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn release_ip(&self, ip: IpAddr) {
        let mut a = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        a.total = a.total.saturating_sub(1);
        if let Some(n) = a.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                a.per_ip.remove(&ip);
            }
        }
    }

    /// Counts a new TCP connection from `ip`; if a limit refuses it, why.
    fn admit_ip(&self, ip: IpAddr) -> std::result::Result<(), String> {
        let mut a = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        let (per_ip, total) = (self.cfg.max_connections_per_ip, self.cfg.max_connections);
        if total != 0 && a.total >= total {
            return Err(format!("{total} connections open already (the server's limit)"));
        }
        let n = a.per_ip.entry(ip).or_insert(0);
        if per_ip != 0 && *n >= per_ip {
            return Err(format!("{per_ip} connections from this address already"));
        }
        *n += 1;
        a.total += 1;
        Ok(())
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                debug!(error = %e, "accept failed");
                tokio::select! {
                    _ = shared.cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => continue,
                }
            }
        };
        let ip = acl::java_host_address(addr.ip());
        let peer = format!("/{ip}:{}", addr.port());
        if let Err(why) = shared.admit_ip(addr.ip()) {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            info!(peer, reason = %why, "connection refused");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let peer = Peer { display: peer, ip, tcp: Some(addr) };
        shared.spawn_conn(rd, wr, peer);
    }
    debug!("accept loop stopped");
}

async fn expiry_loop(shared: Arc<Shared>) {
    let tick = Duration::from_millis(u64::try_from(shared.cfg.tick_ms()).unwrap_or(1));
    let mut next = shared.start + tick;
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = shared.now();
        // Counted as a waiter, so that a connection between two batches lets it go first.
        shared.lock_waiters.fetch_add(1, Ordering::AcqRel);
        let mut st = shared.lock_state();
        shared.lock_waiters.fetch_sub(1, Ordering::AcqRel);
        st.expire_due(now);
        drop(st);
        let current = Instant::now();
        while next <= current {
            next += tick;
        }
    }
}

async fn reaper_loop(shared: Arc<Shared>) {
    let period = shared.cfg.container_check_interval;
    let mut next = shared.start + period;
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = shared.now();
        let n = shared.lock_state().reap(now);
        if n > 0 {
            debug!(deleted = n, "reaper deleted containers / expired TTL nodes");
        }
        let current = Instant::now();
        while next <= current {
            next += period;
        }
    }
}

#[derive(Debug)]
struct HandleInner {
    shared: Arc<Shared>,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        // The last handle is gone: stop everything; the tasks end on their own.
        self.shared.cancel.cancel();
    }
}

/// A running server. Cheap to clone; when the last clone is dropped the server shuts down by
/// itself (its tasks end shortly after).
#[derive(Debug, Clone)]
pub struct ServerHandle {
    inner: Arc<HandleInner>,
}

impl ServerHandle {
    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The TCP address the server listens on; `None` for a [`ServerBuilder::no_tcp`] server.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared().local_addr
    }

    /// `host:port` for a client's connect string (empty for a [`ServerBuilder::no_tcp`]
    /// server). An unspecified bind address (`0.0.0.0`, `::`) is given as loopback.
    pub fn connect_string(&self) -> String {
        match self.local_addr() {
            None => String::new(),
            Some(addr) => {
                let ip = match addr.ip() {
                    IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                SocketAddr::new(ip, addr.port()).to_string()
            }
        }
    }

    /// Opens an in-process connection: the returned stream carries exactly the bytes a TCP
    /// connection would, served by the same connection code (but not counted against the
    /// per-IP limit; its `ip` identity is `127.0.0.1`).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after shutdown.
    pub fn connect_in_process(&self) -> Result<DuplexStream> {
        let shared = self.shared();
        if shared.cancel.is_cancelled() {
            return Err(Error::Closed);
        }
        let (client, server) = tokio::io::duplex(DUPLEX_BUFFER);
        let (rd, wr) = tokio::io::split(server);
        let n = shared.in_process.fetch_add(1, Ordering::Relaxed) + 1;
        let peer = Peer { ip: "127.0.0.1".into(), display: format!("/in-process:{n}"), tcp: None };
        shared.spawn_conn(rd, wr, peer);
        Ok(client)
    }

    /// Stops accepting, closes every connection and ends every task; returns when they have
    /// ended. Idempotent. Sessions are not closed (no closeSession transactions).
    pub async fn shutdown(&self) {
        let shared = self.shared();
        let first = !shared.cancel.is_cancelled();
        shared.cancel.cancel();
        loop {
            let idle = shared.tasks.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if shared.tasks.live.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
        if first {
            info!("embedded ZooKeeper server stopped");
        }
    }

    /// Fault injection hooks.
    pub fn faults(&self) -> Faults {
        Faults { shared: self.shared().clone() }
    }

    /// The last zxid the server handed out.
    pub fn last_zxid(&self) -> i64 {
        self.shared().lock_state().zxid
    }

    /// Ids of the live sessions, ascending.
    pub fn session_ids(&self) -> Vec<i64> {
        self.shared().lock_state().sessions.ids()
    }

    /// Bytes of replies and notifications queued on all connections now (counted until
    /// written; see [`ServerBuilder::max_total_queued_bytes`]).
    pub fn queued_bytes(&self) -> usize {
        self.shared().budget.queued()
    }

    /// The most bytes ever queued on all connections at once.
    pub fn peak_queued_bytes(&self) -> usize {
        self.shared().budget.peak()
    }

    /// Number of znodes (a fresh server has 4: `/`, `/zookeeper`, `/zookeeper/quota`,
    /// `/zookeeper/config`; `srvr` prints one more, as ZooKeeper does).
    pub fn node_count(&self) -> usize {
        self.shared().lock_state().tree.len()
    }
}
