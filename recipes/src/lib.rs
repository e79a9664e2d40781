#![doc = include_str!("../../README.md")]
//!
//! ## This crate
//!
//! `conclave` will hold the coordination recipes (locks, leader election, barriers, queues,
//! counters, caches, membership). Until they land it re-exports the whole of
//! [`conclave_core`]: the client, the embedded server and the wire protocol.

#![deny(missing_docs)]

pub use conclave_core::*;
