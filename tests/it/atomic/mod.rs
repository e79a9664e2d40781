//! The optimistic-update family (`conclave::atomic`): `retry_change`'s contract and concurrent
//! writers on both backends (`basics`), and exactly-once changes under lost replies and cut
//! connections with the negative control that shows the check catching a double count
//! (`exactly_once`); `Counter` against Curator's `DistributedAtomicLong` on one node
//! (`interop`), and `SharedCount` against Curator's `SharedCount` on one node
//! (`interop_shared`); the options of `RetryChange`: session-wide markers, starting from the
//! last write, promotion to a lock (`options`).

mod basics;
mod counter;
mod exactly_once;
mod interop;
mod interop_shared;
mod options;
mod shared;
