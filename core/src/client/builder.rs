//! [`ClientBuilder`]: everything about a session that is fixed when it is created.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::Chroot;
use crate::proto::DEFAULT_MAX_FRAME;

/// The Java client's default limit on reply frames (`ZKClientConfig.CLIENT_MAX_PACKET_LENGTH_DEFAULT`).
const DEFAULT_MAX_REPLY_FRAME: usize = 4 * 1024 * 1024;
use crate::session::{
    self, parse_connect_string, BoxTransport, Endpoints, SessionConfig, SessionCredentials, Transport, ZxidFloor,
};

/// Configures and connects a [`Client`]. Obtain one with [`Client::builder`].
///
/// ```no_run
/// # async fn demo() -> conclave_core::Result<()> {
/// use std::time::Duration;
/// let client = conclave_core::Client::builder()
///     .session_timeout(Duration::from_secs(10))
///     .digest_auth("app", "secret")
///     .connect("127.0.0.1:2181,127.0.0.1:2182/app")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    session_timeout: Duration,
    connect_timeout: Duration,
    chroot: Option<String>,
    auth: Vec<(String, Vec<u8>)>,
    read_only: bool,
    max_frame: usize,
    max_reply_frame: usize,
    request_timeout: Option<Duration>,
    fail_fast: bool,
    client_side_expiry: bool,
    resume: Option<SessionCredentials>,
    floor: Option<ZxidFloor>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            chroot: None,
            auth: Vec::new(),
            read_only: false,
            max_frame: DEFAULT_MAX_FRAME,
            max_reply_frame: DEFAULT_MAX_REPLY_FRAME,
            request_timeout: None,
            fail_fast: false,
            client_side_expiry: true,
            resume: None,
            floor: None,
        }
    }
}

impl ClientBuilder {
    /// The session timeout to ask for (default 10 s). The server clamps it to its own bounds
    /// (2 to 20 ticks by default); [`Client::negotiated_timeout`] tells the result.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long `connect` keeps trying the servers before giving up (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A path prefix applied to every path (like `host:port/chroot` in a connect string). The
    /// chroot node itself must exist.
    pub fn chroot(mut self, path: impl Into<String>) -> Self {
        self.chroot = Some(path.into());
        self
    }

    /// Credentials sent right after connecting (and after every reconnect), like `addAuth`.
    pub fn auth(mut self, scheme: impl Into<String>, credential: impl Into<Vec<u8>>) -> Self {
        self.auth.push((scheme.into(), credential.into()));
        self
    }

    /// `digest` credentials for `user:password`.
    pub fn digest_auth(self, user: &str, password: &str) -> Self {
        self.auth("digest", format!("{user}:{password}").into_bytes())
    }

    /// Whether a read-only server is acceptable (default false).
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// The largest request frame sent (default the server's `jute.maxbuffer`, 1 048 575
    /// bytes: a server closes the connection on anything larger). Larger requests fail with
    /// [`Error::DataTooLarge`] without being sent.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// The largest reply frame accepted (default 4 MiB, as the Java client's): a reply carries
    /// more than the request that stored the data (a getData reply adds a 68-byte stat), so this
    /// must stay above [`ClientBuilder::max_frame`]. A larger reply drops the connection.
    pub fn max_reply_frame(mut self, bytes: usize) -> Self {
        self.max_reply_frame = bytes;
        self
    }

    /// How long a caller waits for any reply at most (default: no limit). Past it the request's
    /// future fails with [`Error::OperationTimeout`]; a request still queued for a reconnect by
    /// then is never sent, one already sent may or may not be applied.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Whether requests made while the connection is down fail at once with
    /// [`Error::ConnectionLoss`] (default false: they wait for the reconnect, up to the request
    /// timeout if one is set).
    pub fn fail_fast_when_disconnected(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Whether the client declares its session expired after 4/3 of the session timeout
    /// without hearing from any server (default true, as ZooKeeper's Java client since 3.9.3):
    /// by then every server has expired it, so waiting longer only delays recipes from learning
    /// that their locks and ephemeral nodes are gone. Turn it off to keep trying until a server
    /// answers (a whole ensemble that restarts keeps its sessions).
    pub fn client_side_expiry(mut self, on: bool) -> Self {
        self.client_side_expiry = on;
        self
    }

    /// Attaches to an existing session instead of creating one: the session of another
    /// [`Client`] (which then ends in state `Moved`, its requests failing with
    /// [`Error::SessionMoved`]) or of another process (which must stop using it: see
    /// [`Client::detach`]). Its ephemeral nodes and its server-side state carry over; its
    /// watches do not (they belong to the old connection).
    ///
    /// # Errors
    /// `connect` fails with [`Error::SessionExpired`] if the session no longer exists.
    pub fn session(mut self, credentials: SessionCredentials) -> Self {
        self.resume = Some(credentials);
        self
    }

    /// Shares a highest-zxid-seen with other clients (see [`ZxidFloor`]): none of them will
    /// then read state older than what any of them has seen.
    pub fn zxid_floor(mut self, floor: ZxidFloor) -> Self {
        self.floor = Some(floor);
        self
    }

    /// Connects to the servers of `connect_string` (`host:port,host:port[/chroot]`; port 2181 by
    /// default), trying them in random order until one accepts a new session or the connect
    /// timeout passes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed connect string, [`Error::Connect`] when no
    /// server could be reached, [`Error::AuthFailed`] when the server refused the credentials.
    pub async fn connect(self, connect_string: &str) -> Result<Client> {
        let (mut hosts, chroot) = parse_connect_string(connect_string)?;
        crate::random::shuffle(&mut hosts);
        self.start(Endpoints::Tcp(hosts), chroot).await
    }

    /// Connects over a custom transport: `open` is called for the first connection and again
    /// for every reconnect (an in-process duplex, a test proxy, TLS, ...).
    pub async fn connect_with<F, Fut, T>(self, open: F) -> Result<Client>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<T>> + Send + 'static,
        T: Transport,
    {
        let factory: session::TransportFactory =
            Arc::new(move || open().map(|r| r.map(|t| Box::new(t) as BoxTransport)).boxed());
        self.start(Endpoints::Factory(factory), None).await
    }

    /// Connects in-process to an embedded server: the same bytes as over TCP, through a
    /// `tokio::io::duplex` pipe, with no socket. Reconnects open a new pipe.
    pub async fn connect_in_process(self, server: &crate::server::ServerHandle) -> Result<Client> {
        let server = server.clone();
        self.connect_with(move || {
            let pipe = server.connect_in_process().map_err(io::Error::other);
            async move { pipe }
        })
        .await
    }

    async fn start(self, endpoints: Endpoints, string_chroot: Option<String>) -> Result<Client> {
        let chroot = match (string_chroot, self.chroot) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::InvalidArgument(format!("two different chroots: {a:?} and {b:?}")))
            }
            (Some(c), _) | (None, Some(c)) => Chroot::new(&c)?,
            (None, None) => Chroot::none(),
        };
        if self.session_timeout.is_zero() || self.session_timeout.as_millis() > i32::MAX as u128 {
            return Err(Error::InvalidArgument(format!("session timeout {:?}", self.session_timeout)));
        }
        let config = SessionConfig {
            endpoints,
            chroot,
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            read_only: self.read_only,
            max_frame: self.max_frame,
            max_reply_frame: self.max_reply_frame,
            request_timeout: self.request_timeout,
            fail_fast: self.fail_fast,
            client_side_expiry: self.client_side_expiry,
            auth: self.auth,
            resume: self.resume,
            floor: self.floor,
        };
        connect_config(config).await
    }
}

/// Starts a session from `config` and sends its credentials.
pub(crate) async fn connect_config(config: SessionConfig) -> Result<Client> {
    let auth = config.auth.clone();
    let (shared, tx) = session::start(config).await?;
    let client = Client::from_parts(shared, tx);
    for (scheme, credential) in auth {
        client.add_auth(&scheme, &credential).await?;
    }
    Ok(client)
}
