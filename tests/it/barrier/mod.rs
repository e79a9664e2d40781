//! The barrier family (`conclave::barrier`): behaviour on both backends (`basics`), interop with
//! Curator's `DistributedDoubleBarrier` (`interop`) and the double-barrier stress run (`stress`).

mod basics;
mod interop;
mod stress;
