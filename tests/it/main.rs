//! Behaviour tests, compiled as one binary (one link for all areas). Each module covers one area;
//! `support` holds the fixtures. Tests of ZooKeeper semantics are written once with
//! `conformance!` and run against every backend.

mod support;

mod acl;
mod cli;
mod data;
mod ensemble;
mod external;
mod fault_run;
mod faults;
mod harness;
mod limits;
mod lock;
mod lock_faults;
mod lock_interop;
mod lock_stress;
mod multi;
mod nodes;
mod ops;
mod semaphore;
mod session;
mod stat;
mod tree;
mod watches;
mod wire;
