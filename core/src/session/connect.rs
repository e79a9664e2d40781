//! Reaching a server: the endpoints of a connect string (or a custom transport such as an
//! in-process duplex to the embedded server), one connection attempt, and the handshake.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::proto::{frame, ConnectRequest, ConnectResponse, Decode};

/// A byte stream a session can run over: TCP, an in-process duplex, or anything else.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

/// A boxed [`Transport`].
pub type BoxTransport = Box<dyn Transport>;

/// Opens a new transport to a server each time it is called (for custom or in-process
/// connections); used by [`crate::ClientBuilder::connect_with`].
pub type TransportFactory = Arc<dyn Fn() -> BoxFuture<'static, io::Result<BoxTransport>> + Send + Sync>;

/// A host name (or address) and a port.
pub(crate) type HostPort = (String, u16);

/// Where the servers are.
#[derive(Clone)]
pub(crate) enum Endpoints {
    /// `host:port` pairs from a connect string, shuffled once and then tried round-robin.
    Tcp(Vec<HostPort>),
    /// A custom transport (one logical server).
    Factory(TransportFactory),
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoints::Tcp(hosts) => f.debug_list().entries(hosts.iter().map(|(h, p)| format!("{h}:{p}"))).finish(),
            Endpoints::Factory(_) => f.write_str("custom transport"),
        }
    }
}

impl Endpoints {
    /// Number of distinct servers.
    pub(crate) fn len(&self) -> usize {
        match self {
            Endpoints::Tcp(h) => h.len(),
            Endpoints::Factory(_) => 1,
        }
    }

    /// A printable name of server `i`.
    pub(crate) fn describe(&self, i: usize) -> String {
        match self {
            Endpoints::Tcp(h) => {
                let (host, port) = &h[i % h.len()];
                format!("{host}:{port}")
            }
            Endpoints::Factory(_) => "in-process".to_string(),
        }
    }

    /// Opens a transport to server `i`.
    pub(crate) async fn open(&self, i: usize) -> io::Result<BoxTransport> {
        match self {
            Endpoints::Tcp(h) => {
                let (host, port) = &h[i % h.len()];
                let stream = TcpStream::connect((host.as_str(), *port)).await?;
                // Requests are small and latency-bound: never wait for Nagle.
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
            Endpoints::Factory(f) => f().await,
        }
    }
}

/// Parses `host:port,host:port/chroot`: the hosts (default port 2181; IPv6 as `[addr]:port`) and
/// the chroot part, if any.
pub(crate) fn parse_connect_string(s: &str) -> Result<(Vec<HostPort>, Option<String>)> {
    let bad = |why: &str| Error::InvalidArgument(format!("connect string {s:?}: {why}"));
    let (hosts, chroot) = match s.find('/') {
        Some(i) => (&s[..i], Some(s[i..].to_string())),
        None => (s, None),
    };
    let mut out = Vec::new();
    for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (name, port) = if let Some(rest) = host.strip_prefix('[') {
            let end = rest.find(']').ok_or_else(|| bad("unterminated IPv6 address"))?;
            let port = match &rest[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("expected :port after ]"))?),
            };
            (rest[..end].to_string(), port)
        } else {
            match host.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (host.to_string(), None),
            }
        };
        let port = match port {
            None => 2181,
            Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
        };
        if name.is_empty() {
            return Err(bad("empty host name"));
        }
        out.push((name, port));
    }
    if out.is_empty() {
        return Err(bad("no host"));
    }
    Ok((out, chroot))
}

/// A connection that completed its handshake.
pub(crate) struct Connection {
    pub(crate) stream: BoxTransport,
    /// Bytes read past the handshake response.
    pub(crate) rbuf: BytesMut,
    pub(crate) response: ConnectResponse,
    /// Which server (for logs).
    pub(crate) server: String,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("server", &self.server).field("response", &self.response).finish()
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// The server said the session is expired (negotiated timeout 0).
    Expired,
    /// Anything else: unreachable, refused, timed out, closed without answering (a server
    /// behind the client's zxid does that), or a malformed answer.
    Failed(String),
}

/// Connects to server `i` and performs the handshake within `limit`.
pub(crate) async fn attempt(
    endpoints: &Endpoints,
    i: usize,
    request: &ConnectRequest,
    max_frame: usize,
    limit: Duration,
) -> std::result::Result<Connection, AttemptError> {
    let server = endpoints.describe(i);
    let fut = async {
        let mut stream = endpoints.open(i).await.map_err(|e| AttemptError::Failed(format!("{server}: {e}")))?;
        let mut out = BytesMut::with_capacity(64);
        frame::write_record_frame(&mut out, request);
        stream.write_all(&out).await.map_err(|e| AttemptError::Failed(format!("{server}: {e}")))?;
        let mut rbuf = BytesMut::with_capacity(8 * 1024);
        let payload = loop {
            match frame::split_frame(&mut rbuf, max_frame) {
                Ok(Some(p)) => break p,
                Ok(None) => {}
                Err(e) => return Err(AttemptError::Failed(format!("{server}: {e}"))),
            }
            match stream.read_buf(&mut rbuf).await {
                Ok(0) => return Err(AttemptError::Failed(format!("{server}: connection closed during the handshake"))),
                Ok(_) => {}
                Err(e) => return Err(AttemptError::Failed(format!("{server}: {e}"))),
            }
        };
        let response = ConnectResponse::decode_bytes(payload)
            .map_err(|e| AttemptError::Failed(format!("{server}: bad handshake response: {e}")))?;
        if response.timeout <= 0 {
            return Err(AttemptError::Expired);
        }
        Ok(Connection { stream, rbuf, response, server: server.clone() })
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(AttemptError::Failed(format!("{server}: no handshake within {limit:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings() {
        let (hosts, chroot) = parse_connect_string("a:1,b,[::1]:3,[::2]/app/x").unwrap();
        assert_eq!(hosts, vec![("a".into(), 1), ("b".into(), 2181), ("::1".into(), 3), ("::2".into(), 2181)]);
        assert_eq!(chroot.as_deref(), Some("/app/x"));
        assert_eq!(parse_connect_string("127.0.0.1:2181").unwrap().1, None);
        for bad in ["", "/app", "a:x", ":1", "[::1", "[::1]x"] {
            assert!(parse_connect_string(bad).is_err(), "{bad:?}");
        }
    }
}
