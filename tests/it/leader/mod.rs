//! The leader-election family (`conclave::leader`): behaviour on both backends (`basics`).

mod basics;
mod failover;
mod interop;
mod stress;
