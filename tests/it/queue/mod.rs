//! The queue family (`conclave::queue`): behaviour on both backends (`basics`), many producers
//! and consumers (`load`), the claim stress run with its checker (`stress`), and interop with
//! Curator's `SimpleDistributedQueue` (`interop`).

mod basics;
mod interop;
mod load;
mod stress;
