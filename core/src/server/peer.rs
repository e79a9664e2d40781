//! [`Peer`]: where a connection comes from, as the server's state, its ACL checks (`ip` scheme),
//! its four-letter words and its logs see it.

/// Where a connection comes from.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// `ip` auth id: Java's host-address text (`127.0.0.1` for in-process connections).
    pub ip: String,
    /// Display form for `cons`/`stat` (`/127.0.0.1:54321`, `/in-process:7`).
    pub display: String,
    /// The TCP peer address, if any (per-IP accounting).
    pub tcp: Option<std::net::SocketAddr>,
}
