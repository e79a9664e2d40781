#![doc = include_str!("../../README.md")]
//!
//! ## This crate
//!
//! `conclave` holds the coordination recipes, built only on the public API of
//! [`conclave_core`] (which it re-exports whole: the client, the embedded server and the wire
//! protocol):
//! - [`lock`]: distributed locks ([`lock::Mutex`], [`lock::RwLock`], [`lock::Semaphore`],
//!   [`lock::MultiLock`]) with fencing tokens and loss signals.

#![deny(missing_docs)]

pub use conclave_core::*;

pub mod lock;
