//! The discovery family (`conclave::discovery`): registration, reads, caches and providers on
//! both backends (`registry`).

mod interop;
mod registry;
mod stress;
