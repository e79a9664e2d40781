//! Test fixtures: an [`Env`] is one test's view of a ZooKeeper backend, with its own chroot so
//! tests never see each other's nodes.
//!
//! - [`Env::embedded`]: a fresh embedded server for this test; clients connect in-process (the
//!   same bytes as TCP), so the tests also run under `tokio::time::pause`.
//! - [`Env::real`]: a real ZooKeeper 3.8 shared by every test of this binary, launched on first
//!   use by `conclave_core::testing::ZooKeeperServer` (or the one named by
//!   `CONCLAVE_TEST_ZK=host:port`). Without an installation the real-backend variant of a test
//!   prints one line saying how to install it and passes, unless `CONCLAVE_REQUIRE_ZOOKEEPER=1`,
//!   which makes it fail.
//!
//! Both backends use the same tick (500 ms: session timeouts from 1 s to 10 s) and container
//! reaper period (500 ms), so timing-related assertions hold on both.
//!
//! [`conformance!`] turns `async fn case(env: Env) -> Result<()>` into one test per backend:
//! behaviour that states ZooKeeper semantics is written once and checked against both.

#![allow(dead_code)]

pub mod clients;
pub mod round_trips;
pub mod stress;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conclave::{Client, ClientBuilder, CreateMode, ServerHandle};
use conclave_core::Result;

/// Which server a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded server, reached in-process.
    Embedded(ServerHandle),
    /// A real ZooKeeper at this connect string.
    Real(String),
}

/// One test's environment: a backend and a chroot of its own.
#[derive(Debug)]
pub struct Env {
    pub backend: Backend,
    /// The chroot (created by the fixture) all clients of this test use.
    pub root: String,
    /// Keeps other tests of this binary off a shared real server while an exclusive test runs.
    _turn: Option<Turn>,
}

/// A test's turn on the shared real server: shared by ordinary tests, exclusive for tests whose
/// assertions count every zxid.
#[derive(Debug)]
enum Turn {
    Shared(tokio::sync::OwnedRwLockReadGuard<()>),
    Exclusive(tokio::sync::OwnedRwLockWriteGuard<()>),
}

fn turns() -> std::sync::Arc<tokio::sync::RwLock<()>> {
    static TURNS: std::sync::OnceLock<std::sync::Arc<tokio::sync::RwLock<()>>> = std::sync::OnceLock::new();
    TURNS.get_or_init(Default::default).clone()
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The tick of both backends.
pub const TICK: Duration = Duration::from_millis(500);
/// The container/TTL reaper period of both backends.
pub const CONTAINER_CHECK: Duration = Duration::from_millis(500);

/// The connect string of the real ZooKeeper shared by this binary's tests: `CONCLAVE_TEST_ZK`,
/// or a server launched on first use. `None` (after one line on stderr) when ZooKeeper is not
/// installed; a panic instead when `CONCLAVE_REQUIRE_ZOOKEEPER=1` or when it fails to start.
pub fn real_zookeeper() -> Option<String> {
    if let Ok(hosts) = std::env::var("CONCLAVE_TEST_ZK") {
        if !hosts.is_empty() {
            return Some(hosts);
        }
    }
    static SHARED: std::sync::OnceLock<Option<conclave_core::testing::ZooKeeperServer>> = std::sync::OnceLock::new();
    let server = SHARED.get_or_init(|| {
        conclave_core::testing::ZooKeeperInstall::find()?;
        let server = conclave_core::testing::ZooKeeperServer::builder()
            .tick_time(TICK)
            .container_check_interval(CONTAINER_CHECK)
            .launch()
            .unwrap_or_else(|e| panic!("the real ZooKeeper did not start: {e}"));
        Some(server)
    });
    match server {
        Some(s) => Some(s.connect_string()),
        None if conclave_core::testing::zookeeper_required() => {
            panic!("CONCLAVE_REQUIRE_ZOOKEEPER=1 but {}", conclave_core::testing::INSTALL_HINT)
        }
        None => {
            eprintln!("skipped: {}", conclave_core::testing::INSTALL_HINT);
            None
        }
    }
}

fn unique_root(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/t-{name}-{}-{n}", std::process::id())
}

impl Env {
    /// A fresh embedded server with the shared test settings.
    pub async fn embedded(name: &str) -> Env {
        let server = conclave::Server::builder()
            .tick_time(TICK)
            .container_check_interval(CONTAINER_CHECK)
            .four_letter_words("*")
            .expect("every word is known")
            .start()
            .await
            .expect("start embedded server");
        Env::with_backend(Backend::Embedded(server), name).await
    }

    /// The real ZooKeeper shared by this binary's tests, if there is one (see the module doc).
    /// An `exclusive` test runs alone on it (among this binary's tests), for assertions that no
    /// other writer may disturb.
    pub async fn real(name: &str, exclusive: bool) -> Option<Env> {
        let hosts = tokio::task::spawn_blocking(real_zookeeper).await.expect("launch the real ZooKeeper")?;
        let turn = if exclusive {
            Turn::Exclusive(turns().write_owned().await)
        } else {
            Turn::Shared(turns().read_owned().await)
        };
        let mut env = Env::with_backend(Backend::Real(hosts), name).await;
        env._turn = Some(turn);
        Some(env)
    }

    async fn with_backend(backend: Backend, name: &str) -> Env {
        let env = Env { backend, root: unique_root(name), _turn: None };
        let admin = env.builder().connect_raw(&env.backend).await.expect("connect to the test backend");
        admin.create(&env.root, b"", CreateMode::Persistent).await.expect("create the test chroot");
        admin.close().await;
        env
    }

    /// The embedded server (panics on a real backend: use only in embedded-only tests).
    pub fn server(&self) -> &ServerHandle {
        match &self.backend {
            Backend::Embedded(s) => s,
            Backend::Real(_) => panic!("this test needs the embedded server"),
        }
    }

    /// Expires `client`'s session the way Curator's KillSession does (a second connection to
    /// the session sends closeSession), on either backend, and waits until the client saw it.
    pub async fn expire(&self, client: &Client) -> Result<()> {
        match &self.backend {
            Backend::Embedded(server) => {
                let open = || {
                    let pipe = server.connect_in_process().map_err(std::io::Error::other);
                    async move { pipe }
                };
                conclave_core::testing::expire_session_over(client, open).await
            }
            Backend::Real(_) => conclave_core::testing::expire_session(client).await,
        }
    }

    /// The backend's TCP address (`host:port`).
    pub fn tcp_address(&self) -> String {
        match &self.backend {
            Backend::Embedded(server) => server.connect_string(),
            Backend::Real(hosts) => hosts.split(',').next().expect("a host").to_string(),
        }
    }

    /// A fault-injecting proxy in front of the backend, and a client (built from `builder`,
    /// chrooted at this test's root) connected through it.
    pub async fn proxied(&self, builder: ClientBuilder) -> (conclave_core::testing::Proxy, Client) {
        let proxy = conclave_core::testing::Proxy::start(&self.tcp_address()).await.expect("start the proxy");
        let client = builder
            .chroot(self.root.clone())
            .connect(&proxy.connect_string())
            .await
            .expect("connect through the proxy");
        (proxy, client)
    }

    /// Whether the backend is the embedded server.
    pub fn is_embedded(&self) -> bool {
        matches!(self.backend, Backend::Embedded(_))
    }

    /// The backend's name, for summary lines: `embedded server` or `real ZooKeeper`.
    pub fn backend_name(&self) -> &'static str {
        if self.is_embedded() {
            "embedded server"
        } else {
            "real ZooKeeper"
        }
    }

    /// A builder preset for tests (short session timeout).
    pub fn builder(&self) -> ClientBuilder {
        Client::builder().session_timeout(Duration::from_secs(4)).connect_timeout(Duration::from_secs(10))
    }

    /// A client chrooted at this test's root.
    pub async fn client(&self) -> Client {
        self.connect(self.builder()).await
    }

    /// A client built from `builder`, chrooted at this test's root.
    pub async fn connect(&self, builder: ClientBuilder) -> Client {
        builder.chroot(self.root.clone()).connect_raw(&self.backend).await.expect("connect")
    }

    /// A client without chroot.
    pub async fn unchrooted(&self) -> Client {
        self.builder().connect_raw(&self.backend).await.expect("connect")
    }
}

/// Connecting a builder to a backend.
pub trait ConnectTo {
    /// Connects to `backend`.
    async fn connect_raw(self, backend: &Backend) -> Result<Client>;
}

impl ConnectTo for ClientBuilder {
    async fn connect_raw(self, backend: &Backend) -> Result<Client> {
        match backend {
            Backend::Embedded(server) => self.connect_in_process(server).await,
            Backend::Real(hosts) => self.connect(hosts).await,
        }
    }
}

/// Runs a ZooKeeper-semantics test case against each backend:
/// `conformance!(name, ...)` for `async fn name(env: Env) -> Result<()>`; cases listed after
/// `exclusive:` run alone on a shared real server.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)? $(; exclusive: $($xname:ident),* $(,)?)?) => {
        $( $crate::conformance!(@case $name, false); )*
        $($( $crate::conformance!(@case $xname, true); )*)?
    };
    (@case $name:ident, $exclusive:expr) => {
        mod $name {
            #[tokio::test]
            async fn embedded() {
                let env = $crate::support::Env::embedded(stringify!($name)).await;
                super::$name(env).await.expect("embedded server");
            }

            #[tokio::test]
            async fn real_zookeeper() {
                if let Some(env) = $crate::support::Env::real(stringify!($name), $exclusive).await {
                    super::$name(env).await.expect("real ZooKeeper");
                }
            }
        }
    };
}

/// Waits for the next `Disconnected` and then `Connected` in `states` (subscribed before the
/// fault, so no transition is missed); fails if the session ends instead.
pub async fn reconnects(mut states: conclave::StateStream) {
    use futures::StreamExt;
    within(60, async {
        let mut down = false;
        while let Some(s) = states.next().await {
            match s {
                conclave::SessionState::Disconnected => down = true,
                conclave::SessionState::Connected if down => return,
                s if s.is_terminal() => panic!("session ended: {s:?}"),
                _ => {}
            }
        }
    })
    .await;
}

/// Cuts the client's connection at the proxy and waits until it is connected again (to the same
/// session).
pub async fn cut_and_reconnect(proxy: &conclave_core::testing::Proxy, client: &Client) {
    use futures::StreamExt;
    let mut states = client.connection_states();
    assert_eq!(states.next().await, Some(conclave::ConnectionState::Connected));
    proxy.cut();
    assert_eq!(within(30, states.next()).await, Some(conclave::ConnectionState::Suspended));
    assert_eq!(within(30, states.next()).await, Some(conclave::ConnectionState::Reconnected));
}

/// Waits for `fut` at most `secs` seconds (so a broken test fails instead of hanging, naming
/// the line that waited).
#[track_caller]
pub fn within<F: std::future::Future>(secs: u64, fut: F) -> impl std::future::Future<Output = F::Output> {
    let caller = std::panic::Location::caller();
    async move {
        match tokio::time::timeout(Duration::from_secs(secs), fut).await {
            Ok(v) => v,
            Err(_) => panic!("timed out after {secs} s waiting at {caller}"),
        }
    }
}

/// Asserts that `fut` does not complete within `ms` milliseconds.
pub async fn pending_for<F: std::future::Future + Unpin>(ms: u64, fut: &mut F)
where
    F::Output: std::fmt::Debug,
{
    if let Ok(v) = tokio::time::timeout(Duration::from_millis(ms), fut).await {
        panic!("expected nothing yet, got {v:?}");
    }
}
