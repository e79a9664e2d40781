//! Conclave: distributed coordination recipes on ZooKeeper semantics.
pub use conclave_core::*;
