//! conclave's `Election` and Apache Curator's `LeaderLatch` (or, with `Layout::Selector`, its
//! `LeaderSelector`) on one path are one election: the same node layout
//! (`_c_<uuid>-latch-<seq>` or `-lock-`, data = participant id) and order, each side names
//! the other's leader, leadership passes both ways, and while both sides campaign over and over
//! no two leaders ever run at once. The harness is the lock interop's (`crate::lock::interop`,
//! Curator in `tests/clients/CuratorLockCheck.java`, recipes `latch` and `selector`): its layout phase takes
//! turns, its contention phase has every leader run the exclusive section (an owner marker and a
//! versioned counter increment whose tickets must come out `0..n` once each).

use crate::lock::interop::{exclusion, without_the_lock, Recipe};
use crate::support::Env;

/// Curator and Rust participants on one path of a real ZooKeeper.
#[tokio::test]
async fn real_zookeeper() {
    if let Some(env) = Env::real("leader-interop", false).await {
        exclusion(env, Recipe::Latch).await;
    }
}

/// The same on the embedded server (over TCP, as Curator connects).
#[tokio::test]
async fn embedded() {
    exclusion(Env::embedded("leader-interop").await, Recipe::Latch).await;
}

/// The negative control: campaigning but running the section without waiting to be elected
/// sees overlapping "leaders" (on a real ZooKeeper), so the check above cannot pass by accident.
#[tokio::test]
async fn negative_control() {
    if let Some(env) = Env::real("leader-interop-nolock", false).await {
        without_the_lock(env, Recipe::Latch).await;
    }
}

/// `LeaderSelector` participants and ours (`Layout::Selector`) on one path of a real ZooKeeper.
#[tokio::test]
async fn selector_real_zookeeper() {
    if let Some(env) = Env::real("leader-selector-interop", false).await {
        exclusion(env, Recipe::Selector).await;
    }
}

/// The same on the embedded server.
#[tokio::test]
async fn selector_embedded() {
    exclusion(Env::embedded("leader-selector-interop").await, Recipe::Selector).await;
}
