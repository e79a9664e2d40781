//! `Barrier` on both backends: set and remove (each idempotent), waits held back while it is
//! set and let through when it is removed, the wait forms' limits, a wait that rides out a
//! connection loss, and bad paths.

use std::time::Duration;

use conclave::barrier::Barrier;
use conclave::{CancellationToken, Result, ZkError};

use crate::conformance;
use crate::support::{pending_for, within, Env};

conformance!(
    set_holds_waiters_and_remove_lets_them_through,
    wait_forms_give_up_at_their_limits,
    bad_paths_are_reported
);

/// Three waiters on two sessions are held while the barrier is set (and set again); removing it
/// (twice) lets them all through; a wait on a barrier not set passes at once.
async fn set_holds_waiters_and_remove_lets_them_through(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let gate = Barrier::new(a.clone(), "/gates/g");
    assert!(!gate.is_set().await?);
    assert_eq!(within(10, gate.try_wait()).await?, Some(()), "not set: through at once");
    gate.set().await?;
    gate.set().await?;
    assert!(gate.is_set().await?);
    assert!(b.exists("/gates/g").await?.is_some(), "the barrier is the node itself");
    let waiters: Vec<_> = [a.clone(), b.clone(), b.clone()]
        .into_iter()
        .map(|c| tokio::spawn(async move { Barrier::new(c, "/gates/g").wait().await }))
        .collect();
    let mut all = Box::pin(futures::future::join_all(waiters));
    pending_for(300, &mut all).await;
    Barrier::new(b.clone(), "/gates/g").remove().await?;
    for waited in within(10, all).await {
        waited.expect("waiter task")?;
    }
    gate.remove().await?;
    assert!(!gate.is_set().await?);
    Ok(())
}

/// `try_wait`, `wait_timeout` and `wait_cancellable` give up (`None`) while the barrier is set.
async fn wait_forms_give_up_at_their_limits(env: Env) -> Result<()> {
    let c = env.client().await;
    let gate = Barrier::new(c.clone(), "/g2");
    gate.set().await?;
    assert_eq!(within(10, gate.try_wait()).await?, None);
    assert_eq!(within(10, gate.wait_timeout(Duration::from_millis(200))).await?, None);
    let token = CancellationToken::new();
    let waiting = gate.wait_cancellable(&token);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
    };
    let (waited, ()) = within(10, futures::future::join(waiting, cancel)).await;
    assert_eq!(waited?, None);
    gate.remove().await?;
    assert_eq!(within(10, gate.wait_timeout(Duration::from_secs(5))).await?, Some(()));
    Ok(())
}

/// A bad path is reported by every call.
async fn bad_paths_are_reported(env: Env) -> Result<()> {
    let c = env.client().await;
    let gate = Barrier::new(c, "no-slash");
    let bad = |r: Result<()>| matches!(r, Err(conclave::Error::Zk(ZkError::InvalidPath { .. })));
    assert!(bad(gate.set().await));
    assert!(bad(gate.remove().await));
    assert!(bad(gate.is_set().await.map(drop)));
    assert!(bad(gate.wait().await));
    Ok(())
}

/// A wait rides out a cut connection: the barrier removed while the waiter was disconnected is
/// seen once it reconnects. Embedded only: the cut comes from the server's fault hooks.
#[tokio::test]
async fn a_wait_rides_out_a_connection_loss() -> Result<()> {
    let env = Env::embedded("barrier-cut").await;
    let waiter = env.client().await;
    let other = env.client().await;
    Barrier::new(other.clone(), "/g3").set().await?;
    let gate = Barrier::new(waiter.clone(), "/g3");
    let mut waiting = Box::pin(gate.wait());
    pending_for(200, &mut waiting).await;
    assert!(env.server().faults().cut_connection(waiter.session_id()));
    Barrier::new(other.clone(), "/g3").remove().await?;
    within(20, waiting).await?;
    Ok(())
}
