//! `Barrier` on both backends: set and remove (each idempotent), waits held back while it is
//! set and let through when it is removed, the wait forms' limits, a wait that rides out a
//! connection loss, and bad paths.

use std::time::Duration;

use conclave::barrier::{Barrier, DoubleBarrier};
use conclave::{CancellationToken, Result, ZkError};

use crate::conformance;
use crate::lock::children;
use crate::support::{pending_for, within, Env};

conformance!(
    set_holds_waiters_and_remove_lets_them_through,
    wait_forms_give_up_at_their_limits,
    bad_paths_are_reported,
    eight_members_enter_and_leave_together,
    a_member_that_dies_inside_counts_as_left,
    given_up_enters_leave_no_member,
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

/// Eight members on their own sessions, twice over: nobody passes `enter` before the eighth has
/// entered; `leave` returns to each once all have left; the barrier path is empty afterwards.
async fn eight_members_enter_and_leave_together(env: Env) -> Result<()> {
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(env.client().await);
    }
    let observer = env.client().await;
    for round in 0..2 {
        let members: Vec<std::sync::Arc<DoubleBarrier>> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| std::sync::Arc::new(DoubleBarrier::new(c.clone(), "/db", format!("m{i}"), 8)))
            .collect();
        let mut entering: Vec<_> = members[..7]
            .iter()
            .map(|m| {
                let m = m.clone();
                tokio::spawn(async move { m.enter().await })
            })
            .collect();
        within(10, async {
            while children(&observer, "/db").await.len() < 7 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let mut first = Box::pin(&mut entering[0]);
        pending_for(300, &mut first).await;
        assert!(!members[0].entered(), "round {round}: nobody passes before the eighth enters");
        within(10, members[7].enter()).await?;
        for e in entering {
            within(10, e).await.expect("enter task")?;
        }
        assert!(members.iter().all(|m| m.entered()));
        let (data, _) = observer
            .get_data(&format!(
                "/db/{}",
                children(&observer, "/db").await.iter().find(|c| *c != "ready").expect("a member")
            ))
            .await?;
        assert!(data.starts_with(b"m"), "member nodes hold the member id");
        let leaving: Vec<_> = members
            .iter()
            .map(|m| {
                let m = m.clone();
                tokio::spawn(async move { m.leave().await })
            })
            .collect();
        for l in leaving {
            within(10, l).await.expect("leave task")?;
        }
        assert!(members.iter().all(|m| !m.entered()));
        assert_eq!(children(&observer, "/db").await, Vec::<String>::new(), "round {round}: nothing left");
    }
    Ok(())
}

/// Three members enter; one's session expires inside the barrier: the other two still leave
/// (its node went with its session), without waiting for it.
async fn a_member_that_dies_inside_counts_as_left(env: Env) -> Result<()> {
    let (a, b, c) = (env.client().await, env.client().await, env.client().await);
    let members = [
        std::sync::Arc::new(DoubleBarrier::new(a.clone(), "/dies", "a", 3)),
        std::sync::Arc::new(DoubleBarrier::new(b.clone(), "/dies", "b", 3)),
        std::sync::Arc::new(DoubleBarrier::new(c.clone(), "/dies", "c", 3)),
    ];
    let entered = futures::future::join_all(members.iter().map(|m| m.enter())).await;
    assert!(entered.iter().all(|e| e.is_ok()), "{entered:?}");
    env.expire(&c).await?;
    let left = within(20, futures::future::join(members[0].leave(), members[1].leave())).await;
    left.0?;
    left.1?;
    assert_eq!(children(&a, "/dies").await, Vec::<String>::new());
    Ok(())
}

/// An `enter` that gives up — not enough members by the timeout, `try_enter` alone, a dropped
/// future — leaves no member node behind (so it is not counted by later members).
async fn given_up_enters_leave_no_member(env: Env) -> Result<()> {
    let a = env.client().await;
    let m = DoubleBarrier::new(a.clone(), "/few", "a", 2);
    assert_eq!(within(10, m.try_enter()).await?, None);
    assert_eq!(children(&a, "/few").await, Vec::<String>::new());
    assert_eq!(within(10, m.enter_timeout(Duration::from_millis(200))).await?, None);
    assert_eq!(children(&a, "/few").await, Vec::<String>::new());
    {
        let mut dropped = Box::pin(m.enter());
        pending_for(200, &mut dropped).await;
    }
    // The drop's delete is queued on a's session before this read.
    assert_eq!(children(&a, "/few").await, Vec::<String>::new());
    assert!(!m.entered());
    // Leaving without having entered returns at once.
    assert_eq!(within(10, m.try_leave()).await?, Some(()));
    Ok(())
}
