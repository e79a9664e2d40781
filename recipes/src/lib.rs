#![doc = include_str!("../../README.md")]
//!
//! ## This crate
//!
//! `conclave` holds the coordination recipes, built only on the public API of
//! [`conclave_core`], which it re-exports whole (the client, the embedded server and the wire
//! protocol) — except for the error type: [`Error`] here is the recipes' error, which wraps the
//! client's ([`ZkError`]) and adds what only a recipe can report (see [`error`]).
//!
//! | recipe | module | znode layout | Curator equivalent |
//! | --- | --- | --- | --- |
//! | mutex | [`lock::Mutex`] | `<path>/_c_<uuid>-lock-<seq>` | `InterProcessMutex` |
//! | read-write lock | [`lock::RwLock`] | `<path>/_c_<uuid>-__READ__<seq>`, `…-__WRIT__<seq>` | `InterProcessReadWriteLock` |
//! | semaphore | [`lock::Semaphore`] | `<path>/locks/…-lock-<seq>`, `<path>/leases/_c_<uuid>-lease-<seq>` | `InterProcessSemaphoreV2` |
//! | several locks at once | [`lock::MultiLock`] | the mutexes' | `InterProcessMultiLock` |
//! | barrier | [`barrier::Barrier`] | `<path>` (exists = set) | `DistributedBarrier` |
//! | double barrier | [`barrier::DoubleBarrier`] | `<path>/<uuid>` (data = member id), `<path>/ready` | `DistributedDoubleBarrier` |
//! | leader election | [`leader::Election`] | `<path>/_c_<uuid>-latch-<seq>` (or `-lock-`), data = participant id | `LeaderLatch` (`LeaderSelector`) |
//! | read-modify-write | [`atomic::retry_change`] | the node itself; markers `<parent>/.conclave-markers/<uuid>` (ephemeral, one per change in flight) | (gozk `RetryChange`) |
//! | counter | [`atomic::Counter`] | the node, 8 bytes big-endian (missing = 0) | `DistributedAtomicLong` (`PromotedToLock`: [`atomic::RetryChange::promote_to_lock`]) |
//! | shared count, shared value | [`atomic::SharedCount`], [`atomic::SharedValue`] | the node, 4 bytes big-endian / the bytes as they are | `SharedCount`, `SharedValue` |
//! | FIFO queue | [`queue::Queue`] | `<path>/qn-<seq>` (data = payload); a claim: `<item>/claim`, `<item>/claim-<uuid>` | `SimpleDistributedQueue` |
//! | priority queue | [`queue::PriorityQueue`] | `<path>/qp-<priority>-<seq>` | (none compatible) |
//! | delay queue | [`queue::DelayQueue`] | `<path>/qd-<due ms>-<seq>` | (none compatible) |
//! | tree, children, node cache | [`cache::TreeCache`], [`cache::ChildrenCache`], [`cache::NodeCache`] | reads only (a persistent watch on `<path>`) | `CuratorCache` / `TreeCache`, `PathChildrenCache`, `NodeCache` |
//! | node kept in place | [`membership::PersistentNode`] | `<path>`, or `<parent>/_c_<uuid>-<name>[<seq>]` (protected) | `PersistentNode` |
//! | group membership | [`membership::GroupMember`] | `<group>/<id>` (ephemeral, data = member data) | `GroupMember` |
//! | service discovery | [`discovery::ServiceDiscovery`], [`discovery::ServiceCache`], [`discovery::ServiceProvider`] | `<base>/<name>/<id>` (data = Curator's `ServiceInstance` JSON) | `ServiceDiscovery` (curator-x-discovery) |
//!
//! ## Layout
//!
//! Every recipe family is a small driver on one shared foundation:
//!
//! ```text
//! recipes/src/
//!   lib.rs          this page; re-exports conclave_core
//!   error.rs        Error: the core error (ZkError) wrapped, plus Lost { path, reason }
//!   wait.rs         Wait: how long any recipe call may wait (forever, once, timeout, deadline,
//!                   cancellation token, or the first of several)
//!   hold.rs         Hold: what a recipe grants (fencing token, lost(), fenced writes, release on
//!                   drop and release()), with LossPolicy, LossReason, FencedTransaction
//!   internal/       crate-private machinery shared by every family
//!     contend.rs    the contention engine: protected ephemeral-sequential nodes, one-round-trip
//!                   create + list, predecessor watch, ties by czxid, confirmation on the own
//!                   session; a contender kind is a Spec (marker, data) and a Rule (who holds)
//!     order.rs      Curator's node-name markers and the overflow-safe order of sequence suffixes
//!     watch.rs      the one watch-and-re-read loop every wait runs on (rides out connection
//!                   losses, re-reads after a reconnect, ends with the session)
//!     participants.rs  who holds and who waits on a contention directory
//!     session.rs    the successor of an expired session, shared by every recipe that was on it
//!   lock/           Mutex, RwLock, Semaphore, MultiLock: specs on the engine, guards are Holds
//!   leader/         Election (a latch spec on the engine; a Leadership is a Hold with an epoch),
//!                   leader, participants, observe
//!   barrier/        Barrier, DoubleBarrier (rounds of watch::until on the members and `ready`)
//!   atomic/         retry_change: read, closure, write at the version read, retried on lost
//!                   races; exactly once across lost replies through a marker in the write's
//!                   transaction (markers pooled per session); Counter on it; SharedValue
//!                   (typed by a Codec) and SharedCount: versioned reads, try_set, changes
//!   queue/          Queue, PriorityQueue, DelayQueue: one engine (a cached listing, pipelined
//!                   batches, take or claim per item, the wait as rounds of
//!                   watch::until_within); a claim is a Hold on the claimant's node under the item
//!   cache/          TreeCache, ChildrenCache, NodeCache: one task per cache (engine.rs) that
//!                   adds a persistent watch (or one-shot watches), walks the subtree with
//!                   pipelined reads and applies every read in server order to a mirror
//!                   (mirror.rs: a tree of entries, nodes identified by czxid); resync after a
//!                   reconnect, rebuild after an expiry, behind Resynced markers
//!   membership/     PersistentNode (a keeper task: create, watch::until on the node, re-create;
//!                   the session renewed through internal/session.rs), GroupMember (a
//!                   PersistentNode and a ChildrenCache)
//!   discovery/      ServiceInstance (Curator's JSON), ServiceDiscovery and Registration (a
//!                   PersistentNode per instance), ServiceCache (a ChildrenCache), ServiceProvider
//!                   (an InstancePicker: strategies and down instances)
//! ```
//!
//! A new contender kind — a leader latch (`latch-` nodes, "first in line holds"), say — is a
//! `Spec` value with a `Rule` and a thin public type that turns the engine's result into a
//! [`hold::Hold`]; a recipe that waits for something else (a barrier, a queue item) writes one
//! round of reads for `internal::watch::until`. Neither writes waiting code of its own.
//!
//! ## Errors
//!
//! The core crate speaks ZooKeeper: each of its [`ZkError`] variants is a result code or a
//! client-side condition of the protocol. A recipe can also report conditions that only exist
//! above it — a hold that ended before it was released ([`Error::Lost`], with a typed
//! [`LossReason`](hold::LossReason)). So the recipes have an error of their own that *wraps* the
//! core one ([`Error::Zk`]) rather than a recipe variant inside core: `?` converts, and
//! [`Error::code`], [`Error::is_retryable`] and [`Error::is_terminal`] answer as the core error
//! does. Match a core condition with `Error::Zk(ZkError::NoNode)` (or compare:
//! `err == ZkError::NoNode`).

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub use conclave_core::*;

pub mod atomic;
pub mod barrier;
pub mod cache;
pub mod discovery;
pub mod error;
pub mod hold;
mod internal;
pub mod leader;
pub mod lock;
pub mod membership;
pub mod queue;
mod wait;

pub use error::{Error, Result, ZkError};
pub use wait::Wait;
