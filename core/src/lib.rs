//! # conclave-core
//!
//! The foundation of Conclave: the ZooKeeper wire protocol, an async ZooKeeper client, and an
//! embedded ZooKeeper-compatible server.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod client;
pub mod error;
pub mod path;
pub mod proto;
mod random;
pub mod retry;
pub mod server;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;

/// Node data as read back, and a cheap way to give it (re-exported from the `bytes` crate, so
/// callers need not depend on it).
pub use bytes::Bytes;
pub use client::{
    Client, ClientBuilder, CreateOptions, Data, OneshotWatcher, Op, OpResult, PersistentWatcher, ReadOp, ReadResult,
    Transaction, WatchedEvent,
};
pub use error::{Error, Result};
pub use proto::{Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, EventType, Id, Perms, Stat, WatcherType};
pub use retry::RetryPolicy;
pub use server::{Faults, Server, ServerBuilder, ServerHandle};
pub use session::{ConnectionState, ConnectionStateStream, SessionCredentials, SessionState, StateStream, ZxidFloor};
/// Cancels a waiting acquire or any task that takes one (re-exported from `tokio-util`).
pub use tokio_util::sync::CancellationToken;
