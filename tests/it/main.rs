//! Behaviour tests, compiled as one binary (one link for all areas). Each module covers one area;
//! `support` holds the fixtures. Tests of ZooKeeper semantics are written once with
//! `conformance!` and run against every backend.

mod support;

mod acl;
mod atomic;
mod barrier;
mod cache;
mod cli;
mod data;
mod discovery;
mod ensemble;
mod external;
mod fault_run;
mod faults;
mod harness;
mod leader;
mod limits;
mod lock;
mod membership;
mod multi;
mod nodes;
mod ops;
mod queue;
mod session;
mod stat;
mod tree;
mod watches;
mod wire;
