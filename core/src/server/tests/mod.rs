//! Tests of the embedded server: the apply layer driven directly (writes, reads, watches,
//! sessions, the reaper) and raw frames over in-process connections (wire, faults).

mod faults;
mod harness;
mod lifecycle;
mod logging;
mod props;
mod reads;
mod watch_events;
mod wire;
mod writes;
