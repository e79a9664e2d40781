//! # conclave-core
//!
//! The foundation of Conclave: the ZooKeeper wire protocol, an async ZooKeeper client, and an
//! embedded ZooKeeper-compatible server.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod error;
pub mod path;
pub mod proto;

pub use error::{Error, Result};
