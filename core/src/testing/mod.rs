//! Test harness (feature `testing`): launch real Apache ZooKeeper servers and ensembles from
//! the local installation, and force a real session expiry — the Rust counterparts of Curator's
//! `TestingServer`, `TestingCluster` and `KillSession`.
//!
//! - [`ZooKeeperServer`]: one standalone server in its own temporary run directory, on free
//!   loopback ports, with a fast tick; `stop` / `start` (same data) / `kill` (SIGKILL) /
//!   `destroy`.
//! - [`ZooKeeperEnsemble`]: 3 or 5 servers on loopback; `kill(i)`, `restart(i)`, `leader()`.
//! - [`expire_session`]: ends a client's session on the server the way Curator's `KillSession`
//!   does (a second connection with the same session id and password, then `closeSession`), so
//!   tests need not wait out a session timeout.
//! - [`Proxy`]: a loopback TCP proxy in front of any server that cuts, stalls or black-holes
//!   connections, refuses new ones, loses a reply, or switches servers: network partitions and
//!   faults for the real server too.
//! - [`MockServer`]: a scripted peer at frame level that a client connects to in-process; the
//!   test plays the server frame by frame ([`MockConn`]), for the client edge cases no real
//!   server produces on demand (replies out of order, a connection cut mid-frame, ...).
//!
//! The installation is found through `ZOOKEEPER_HOME` (an Apache tarball layout: `lib/*.jar`),
//! else in the jars of Debian's `zookeeper` package (`/usr/share/java`). [`ZooKeeperInstall::find`]
//! returns `None` when there is neither, with [`INSTALL_HINT`] saying what to do.
//!
//! Servers never outlive the test process: each one is watched by a small shell watchdog that
//! SIGKILLs it as soon as the process that launched it is gone (even if that process was itself
//! killed and never ran its destructors), and dropping a handle kills the server and removes its
//! directory. All calls block (they manage processes and poll four-letter words); from async
//! code, call them through `tokio::task::spawn_blocking` when the wait matters.

mod ensemble;
mod expire;
mod mock;
mod process;
mod proxy;
mod server;

pub use ensemble::{EnsembleBuilder, ZooKeeperEnsemble};
pub use expire::{expire_session, expire_session_over};
pub use mock::{MockConn, MockServer, Received, MOCK_SESSION_TIMEOUT_MS};
pub use process::{four_letter_word, ZooKeeperInstall, INSTALL_HINT};
pub use proxy::Proxy;
pub use server::{ZooKeeperServer, ZooKeeperServerBuilder};

/// Whether tests that need a real ZooKeeper must fail (rather than be skipped) when it is not
/// installed: true when the environment variable `CONCLAVE_REQUIRE_ZOOKEEPER` is `1`.
pub fn zookeeper_required() -> bool {
    std::env::var("CONCLAVE_REQUIRE_ZOOKEEPER").is_ok_and(|v| v == "1")
}
