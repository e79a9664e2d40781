//! The lock recipes under faults: a holder's session expiring, what a connection cut means under
//! each loss policy, a waiter's session expiring, lost replies of the lock node's create, waiters
//! whose predecessors leave without holding, the guaranteed release across a cut, and the
//! sequence counter's edges (near `i32::MAX`, where ZooKeeper 3.8's counter sticks, and through
//! negative values). Faults are made with the `testing::Proxy` and `Env::expire` on both backends,
//! and with the embedded server's hooks where only they can (a reply lost after the server applied
//! the request, the parent's sequence counter).

use std::collections::BTreeMap;
use std::time::Duration;

use conclave::lock::{LossPolicy, LossReason, Mutex};
use conclave::proto::OpCode;
use conclave::{Client, CreateMode, Error, Result, SessionState, ZkError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{children, name, until_children};
use crate::conformance;
use crate::support::{cut_and_reconnect, pending_for, within, Env};

conformance!(
    expiry_while_holding_hands_the_lock_on,
    loss_policy_decides_what_a_cut_means,
    waiter_session_expiry_ends_its_acquire,
    lost_create_reply_makes_one_node,
    waiters_whose_predecessors_leave_keep_their_place,
    waiter_whose_node_is_deleted_queues_again,
    release_in_flight_survives_a_cut,
    dropped_guard_release_survives_a_cut,
    inspection_and_waits_ride_out_a_connection_loss,
);

/// The holder's session expires: its guard says so (`lost()`), its fenced writes and its release
/// fail, and the waiter gets the lock with a greater fencing token.
async fn expiry_while_holding_hands_the_lock_on(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    ga.fenced().create("/data", b"a".to_vec(), CreateMode::Persistent).commit().await?;
    let mb = Mutex::new(b.clone(), "/l");
    let waiter = tokio::spawn(async move { mb.lock().await });
    until_children(&b, "/l", 2).await;
    let lost = ga.lost();
    env.expire(&a).await?;
    let reason = within(30, lost).await;
    assert!(matches!(reason, LossReason::Suspended | LossReason::SessionLost), "{reason:?}");
    let gb = within(30, waiter).await.expect("waiter task")?;
    assert!(gb.fencing_token() > ga.fencing_token(), "{} > {}", gb.fencing_token(), ga.fencing_token());
    assert!(!ga.is_held());
    assert_eq!(within(10, ga.lost()).await, LossReason::SessionLost, "a later lost() resolves at once");
    assert!(ga.fenced().set_data("/data", b"stale".to_vec(), None).commit().await.is_err());
    assert_eq!(ga.release().await, Err(Error::Zk(ZkError::SessionExpired)));
    gb.fenced().set_data("/data", b"b".to_vec(), None).commit().await?;
    assert_eq!(b.get_data("/data").await?.0.as_ref(), b"b");
    gb.release().await?;
    Ok(())
}

/// A connection cut that the session survives: under the default policy (`Suspended`) the guard
/// reports the loss at once, and holds again once reconnected (its node is still there); under
/// `LossPolicy::Lost` it does not report the cut at all.
async fn loss_policy_decides_what_a_cut_means(env: Env) -> Result<()> {
    let (proxy, a) = env.proxied(env.builder()).await;
    let other = env.client().await;
    let patient = within(10, Mutex::new(a.clone(), "/patient").loss_policy(LossPolicy::Lost).lock()).await?;
    let careful = within(10, Mutex::new(a.clone(), "/careful").lock()).await?;
    let mut patient_lost = Box::pin(patient.lost());
    let careful_lost = careful.lost();
    cut_and_reconnect(&proxy, &a).await;
    assert_eq!(within(10, careful_lost).await, LossReason::Suspended);
    pending_for(300, &mut patient_lost).await;
    assert!(patient.is_held() && careful.is_held(), "same session, nodes still there");
    let mut again = Box::pin(careful.lost());
    pending_for(200, &mut again).await;
    careful.fenced().create("/w", b"".to_vec(), CreateMode::Persistent).commit().await?;
    assert!(within(10, Mutex::new(other.clone(), "/careful").try_lock()).await?.is_none(), "still held");
    // While the connection is down, a new lost() resolves at once; holding resumes after.
    proxy.refuse(true);
    proxy.cut();
    within(10, async {
        while a.state() != SessionState::Disconnected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(within(1, careful.lost()).await, LossReason::Suspended);
    assert!(!careful.is_held() && patient.is_held());
    proxy.refuse(false);
    a.wait_connected().await?;
    assert!(careful.is_held());
    // A node deleted by someone else ends both.
    other.delete(patient.path(), None).await?;
    assert_eq!(within(10, patient_lost).await, LossReason::NodeDeleted);
    patient.release().await.expect_err("the node was deleted");
    careful.release().await?;
    Ok(())
}

/// A waiter whose session expires gets the session's error, and its node went with the session.
async fn waiter_session_expiry_ends_its_acquire(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let mb = Mutex::new(b.clone(), "/l");
    let waiter = tokio::spawn(async move { mb.lock().await });
    until_children(&a, "/l", 2).await;
    env.expire(&b).await?;
    let err = within(30, waiter).await.expect("waiter task").expect_err("the session expired");
    assert_eq!(err, ZkError::SessionExpired);
    assert_eq!(children(&a, "/l").await, vec![name(ga.path()).to_string()]);
    // An acquire on the ended session fails at once; so does one on a closed client.
    assert_eq!(within(5, Mutex::new(b.clone(), "/l").lock()).await.map(drop), Err(Error::Zk(ZkError::SessionExpired)));
    let closed = env.client().await;
    closed.close().await;
    assert!(within(5, Mutex::new(closed, "/l").try_lock()).await.is_err());
    ga.release().await?;
    Ok(())
}

/// The reply to the lock node's create is lost (the server applied it; the proxy drops the reply
/// and cuts): the acquire finds its node by its protected name instead of making a second one,
/// uncontended and behind a holder.
async fn lost_create_reply_makes_one_node(env: Env) -> Result<()> {
    let obs = env.client().await;
    let (proxy, w) = env.proxied(env.builder()).await;
    obs.create("/l", b"", CreateMode::Persistent).await?;
    proxy.drop_next_reply();
    let g = within(30, Mutex::new(w.clone(), "/l").lock()).await?;
    assert_eq!(children(&obs, "/l").await, vec![name(g.path()).to_string()]);
    assert_eq!(obs.exists(g.path()).await?.map(|s| s.ephemeral_owner), Some(w.session_id()));
    g.release().await?;

    let h = within(10, Mutex::new(obs.clone(), "/l").lock()).await?;
    proxy.drop_next_reply();
    let mw = Mutex::new(w.clone(), "/l");
    let waiter = tokio::spawn(async move { mw.lock().await });
    until_children(&obs, "/l", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(children(&obs, "/l").await.len(), 2, "one node for the waiter");
    assert!(!waiter.is_finished());
    h.release().await?;
    let g = within(30, waiter).await.expect("waiter task")?;
    assert_eq!(children(&obs, "/l").await, vec![name(g.path()).to_string()]);
    g.release().await?;
    Ok(())
}

/// The same with the embedded server's exact hook: the `create2` of the lock node is applied
/// and its reply never sent. The first attempt finds no lock directory (the lost reply was
/// NONODE); then the node is made once and found; exactly one node, no second holder.
#[tokio::test]
async fn lost_create_reply_on_the_embedded_server() -> Result<()> {
    let env = Env::embedded("lock-lost-create").await;
    let obs = env.client().await;
    let w = env.client().await;
    let faults = env.server().faults();
    faults.drop_reply_after_apply(w.session_id(), Some(OpCode::Create2));
    let g = within(30, Mutex::new(w.clone(), "/l").lock()).await?;
    assert_eq!(children(&obs, "/l").await, vec![name(g.path()).to_string()]);
    let h = {
        let m = Mutex::new(obs.clone(), "/l");
        tokio::spawn(async move { m.lock().await })
    };
    until_children(&obs, "/l", 2).await;
    g.release().await?;
    let h = within(10, h).await.expect("task")?;
    faults.drop_reply_after_apply(w.session_id(), Some(OpCode::Create2));
    let mw = Mutex::new(w.clone(), "/l");
    let waiter = tokio::spawn(async move { mw.lock().await });
    until_children(&obs, "/l", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let both = children(&obs, "/l").await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(!waiter.is_finished(), "no second holder");
    h.release().await?;
    let g = within(30, waiter).await.expect("waiter task")?;
    assert_eq!(children(&obs, "/l").await, vec![name(g.path()).to_string()]);
    g.release().await?;
    Ok(())
}

/// Waits until none of `names` is among the children of `dir`.
async fn until_gone(client: &Client, dir: &str, names: &[&String]) {
    within(30, async {
        while children(client, dir).await.iter().any(|c| names.contains(&c)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Waiters whose predecessors leave without ever holding (one timed out, one was cancelled,
/// one dropped its acquire, one lost its session) look again, keep their place, and get the
/// lock in order, only once the holder releases.
async fn waiters_whose_predecessors_leave_keep_their_place(env: Env) -> Result<()> {
    let obs = env.client().await;
    let holder = within(10, Mutex::new(obs.clone(), "/l").lock()).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut nodes = BTreeMap::new();
    let mut expiring = None;
    for id in ["times-out", "second", "cancelled", "dropped", "expires", "fifth"] {
        let c = env.client().await;
        if id == "expires" {
            expiring = Some(c.clone());
        }
        let (m, tx, cancel) = (Mutex::new(c, "/l"), tx.clone(), cancel.clone());
        let before = children(&obs, "/l").await;
        tasks.push((
            id,
            tokio::spawn(async move {
                let g = match id {
                    "times-out" => m.lock_timeout(Duration::from_secs(2)).await?,
                    "cancelled" => m.lock_cancellable(&cancel).await?,
                    _ => Some(m.lock().await?),
                };
                let Some(g) = g else { return Ok(()) };
                tx.send(id).expect("send");
                tokio::time::sleep(Duration::from_millis(100)).await;
                g.release().await
            }),
        ));
        let after = until_children(&obs, "/l", before.len() + 1).await;
        nodes.insert(id, after.into_iter().find(|n| !before.contains(n)).expect("a new node"));
    }
    drop(tx);
    cancel.cancel();
    tasks[3].1.abort();
    env.expire(&expiring.expect("the expiring waiter")).await?;
    until_gone(&obs, "/l", &[&nodes["cancelled"], &nodes["dropped"], &nodes["expires"]]).await;
    until_gone(&obs, "/l", &[&nodes["times-out"]]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(children(&obs, "/l").await.len(), 3, "the holder, second and fifth");
    assert!(rx.try_recv().is_err(), "nobody acquired while the holder holds");
    holder.release().await?;
    let mut order = Vec::new();
    while let Some(id) = within(30, rx.recv()).await {
        order.push(id);
    }
    assert_eq!(order, ["second", "fifth"]);
    for (id, task) in tasks {
        match (id, task.await) {
            ("dropped", Err(e)) => assert!(e.is_cancelled()),
            ("expires", Ok(r)) => assert_eq!(r, Err(Error::Zk(ZkError::SessionExpired))),
            (_, Ok(r)) => r?,
            (id, Err(e)) => panic!("{id}: {e}"),
        }
    }
    assert_eq!(children(&obs, "/l").await, Vec::<String>::new());
    Ok(())
}

/// A waiter whose own node is deleted by someone else (an operator) does not hold on to a place
/// it no longer has: the one behind it moves up, and it queues again with a new node and gets the
/// lock after it.
async fn waiter_whose_node_is_deleted_queues_again(env: Env) -> Result<()> {
    let obs = env.client().await;
    let holder = within(10, Mutex::new(obs.clone(), "/l").lock()).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    let mut nodes = Vec::new();
    for id in ["deleted", "behind"] {
        let m = Mutex::new(env.client().await, "/l");
        let tx = tx.clone();
        let before = children(&obs, "/l").await;
        tasks.push(tokio::spawn(async move {
            let g = m.lock().await?;
            tx.send((id, g.path().to_string())).expect("send");
            tokio::time::sleep(Duration::from_millis(100)).await;
            g.release().await
        }));
        let after = until_children(&obs, "/l", before.len() + 1).await;
        nodes.push(after.into_iter().find(|n| !before.contains(n)).expect("a new node"));
    }
    drop(tx);
    obs.delete(&format!("/l/{}", nodes[0]), None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "nobody acquired while the holder holds");
    holder.release().await?;
    let mut order = Vec::new();
    while let Some(got) = within(30, rx.recv()).await {
        order.push(got);
    }
    assert_eq!(order.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ["behind", "deleted"]);
    assert_ne!(name(&order[1].1), nodes[0], "it queued again with a new node");
    for t in tasks {
        t.await.expect("task")?;
    }
    Ok(())
}

/// A release whose delete is held in the network when the connection breaks is sent again after
/// the reconnect: it succeeds, the node is gone, and the waiter gets the lock.
async fn release_in_flight_survives_a_cut(env: Env) -> Result<()> {
    let obs = env.client().await;
    let (proxy, a) = env.proxied(env.builder()).await;
    let g = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let path = g.path().to_string();
    let m = Mutex::new(obs.clone(), "/l");
    let waiter = tokio::spawn(async move { m.lock().await });
    until_children(&obs, "/l", 2).await;
    proxy.stall(Duration::from_secs(60));
    let release = tokio::spawn(g.release());
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    proxy.heal();
    within(30, release).await.expect("release task")?;
    assert_eq!(obs.exists(&path).await?, None);
    within(30, waiter).await.expect("waiter task")?.release().await?;
    Ok(())
}

/// The same for a guard dropped while the connection is stalled: the background delete is sent
/// again after the reconnect, and the waiter gets the lock.
async fn dropped_guard_release_survives_a_cut(env: Env) -> Result<()> {
    let obs = env.client().await;
    let (proxy, a) = env.proxied(env.builder()).await;
    let g = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let m = Mutex::new(obs.clone(), "/l");
    let waiter = tokio::spawn(async move { m.lock().await });
    until_children(&obs, "/l", 2).await;
    proxy.stall(Duration::from_secs(60));
    drop(g);
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    proxy.heal();
    let g = within(30, waiter).await.expect("waiter task")?;
    assert_eq!(children(&obs, "/l").await, vec![name(g.path()).to_string()]);
    g.release().await?;
    Ok(())
}

/// A release whose delete was applied but whose reply was lost is repeated after the reconnect
/// and finds no node. The lock was released by this very guard, so `release()` must succeed;
/// `LockLost` would tell the caller its hold had been lost when it had not.
async fn release_whose_reply_is_lost(env: Env) -> Result<()> {
    let obs = env.client().await;
    let (proxy, a) = env.proxied(env.builder()).await;
    let g = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let path = g.path().to_string();
    proxy.drop_next_reply();
    let released = within(30, g.release()).await;
    assert_eq!(obs.exists(&path).await?, None, "the delete was applied");
    assert_eq!(released, Ok(()), "release() of a lock this guard held and released");
    Ok(())
}

/// The embedded server's case of the above.
#[tokio::test]
async fn release_whose_reply_is_lost_succeeds_embedded() -> Result<()> {
    release_whose_reply_is_lost(Env::embedded("lock-release-lost-reply").await).await
}

/// As above, on a real ZooKeeper.
#[tokio::test]
async fn release_whose_reply_is_lost_succeeds_real_zookeeper() -> Result<()> {
    match Env::real("lock-release-lost-reply", false).await {
        Some(env) => release_whose_reply_is_lost(env).await,
        None => Ok(()),
    }
}

/// The sequence suffixes of the children of `dir`, in the order the lock serves them (as
/// `participants()` reports it).
async fn sequences(m: &Mutex) -> Vec<i32> {
    m.participants().await.expect("participants").iter().map(|p| p.sequence).collect()
}

/// Queues `n` waiters on `dir` one after another (each one's node is created after the
/// previous one's), returning their tasks; each sends its index when it acquires, holds briefly
/// and releases.
async fn queue(
    env: &Env,
    dir: &str,
    n: usize,
    already: usize,
    tx: &tokio::sync::mpsc::UnboundedSender<usize>,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let obs = env.client().await;
    let mut tasks = Vec::new();
    for i in 0..n {
        let m = Mutex::new(env.client().await, dir);
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let g = m.lock().await?;
            tx.send(i).expect("send");
            tokio::time::sleep(Duration::from_millis(20)).await;
            g.release().await
        }));
        until_children(&obs, dir, already + i + 1).await;
    }
    tasks
}

/// With the lock directory's counter set to `start`, a holder and `waiters` contenders queued
/// after it get the suffixes `expected` (the holder's, as ZooKeeper prints it, ends the holder's
/// path: `holder_suffix`) and are served in that order.
async fn served_in_order(name: &str, start: i32, holder_suffix: &str, waiters: usize, expected: &[i32]) -> Result<()> {
    let env = Env::embedded(name).await;
    let obs = env.client().await;
    obs.create("/l", b"", CreateMode::Persistent).await?;
    assert!(env.server().faults().set_cversion(&format!("{}/l", env.root), start));
    let m = Mutex::new(obs.clone(), "/l");
    let holder = within(10, m.lock()).await?;
    assert!(holder.path().ends_with(holder_suffix), "{}", holder.path());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks = queue(&env, "/l", waiters, 1, &tx).await;
    drop(tx);
    assert_eq!(sequences(&m).await, expected);
    assert!(rx.try_recv().is_err());
    holder.release().await?;
    let mut order = Vec::new();
    while let Some(i) = within(30, rx.recv()).await {
        order.push(i);
    }
    assert_eq!(order, (0..waiters).collect::<Vec<_>>());
    for t in tasks {
        t.await.expect("task")?;
    }
    Ok(())
}

/// Near `i32::MAX`: contenders numbered MAX-2, MAX-1 and MAX are served in order.
#[tokio::test]
async fn sequence_counter_near_i32_max() -> Result<()> {
    let expected = [i32::MAX - 3, i32::MAX - 2, i32::MAX - 1, i32::MAX];
    served_in_order("lock-seq-max", i32::MAX - 3, &format!("-lock-{}", i32::MAX - 3), 3, &expected).await
}

/// At `i32::MAX` ZooKeeper 3.8's counter sticks (MIN is not larger than MAX, so it is not
/// stored): every later sequential create gets the suffix 2147483647 again. Lock nodes carry a
/// protected `_c_<uuid>-` prefix, so their paths differ and the create does *not* fail with
/// NODEEXISTS: contenders share the suffix. Ordered by name (the random uuid), a newcomer would
/// sort ahead of the holder about half of the time and hold too; ties must be broken by
/// creation order (`czxid`).
#[tokio::test]
async fn stuck_sequence_counter_never_makes_a_second_holder() -> Result<()> {
    let env = Env::embedded("lock-seq-stuck").await;
    let obs = env.client().await;
    obs.create("/l", b"", CreateMode::Persistent).await?;
    assert!(env.server().faults().set_cversion(&format!("{}/l", env.root), i32::MAX));
    let holder = within(10, Mutex::new(obs.clone(), "/l").lock()).await?;
    assert!(holder.path().ends_with(&format!("-lock-{}", i32::MAX)), "{}", holder.path());
    let other = Mutex::new(env.client().await, "/l");
    for attempt in 0..20 {
        let started = Instant::now();
        let got = within(10, other.try_lock()).await;
        let names = children(&obs, "/l").await;
        assert!(
            matches!(got, Ok(None)),
            "attempt {attempt}: try_lock while {} holds gave {got:?} after {:?}; children {names:?}",
            holder.path(),
            started.elapsed()
        );
    }
    // A waiting contender gets it only after the holder releases.
    let mut waiting = Box::pin(other.lock());
    pending_for(500, &mut waiting).await;
    holder.release().await?;
    within(10, waiting).await?.release().await?;
    Ok(())
}

/// A counter that runs through negative values (ZOOKEEPER-4372; `%010d` of a negative number is
/// `-000000003`): contenders from -3 to 1 are served in numeric order, not name order.
#[tokio::test]
async fn sequence_counter_through_negative_values() -> Result<()> {
    served_in_order("lock-seq-negative", -3, "-lock--000000003", 4, &[-3, -2, -1, 0, 1]).await
}

/// `lock_timeout` should give up within about its timeout even when the network is slow (the
/// create's reply is held for 2 s).
#[tokio::test]
async fn lock_timeout_is_bounded_on_a_slow_network() -> Result<()> {
    let env = Env::embedded("lock-timeout-slow").await;
    let obs = env.client().await;
    let holder = within(10, Mutex::new(obs.clone(), "/l").lock()).await?;
    let w = env.client().await;
    let m = Mutex::new(w.clone(), "/l");
    env.server().faults().stall(Some(w.session_id()), Duration::from_secs(2));
    let started = Instant::now();
    let got = within(20, m.lock_timeout(Duration::from_millis(300))).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500) && matches!(got, Ok(None)),
        "lock_timeout(300 ms) gave {got:?} after {took:?}"
    );
    holder.release().await?;
    Ok(())
}

/// Every recipe read rides out a connection loss, even on a client that fails requests at once
/// while disconnected: `participants` asked then answers once the connection is back (it used to
/// fail with `ConnectionLoss`), and so does an acquire that has to wait.
async fn inspection_and_waits_ride_out_a_connection_loss(env: Env) -> Result<()> {
    let (proxy, a) = env.proxied(env.builder().fail_fast_when_disconnected(true)).await;
    let other = env.client().await;
    let held = within(10, Mutex::new(other.clone(), "/p").lock()).await?;
    proxy.refuse(true);
    proxy.cut();
    within(10, async {
        while a.state() != SessionState::Disconnected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(a.get_children("/p").await, Err(ZkError::ConnectionLoss), "the client fails fast");
    let mut asked = Box::pin(conclave::lock::participants(&a, "/p"));
    let waiter = Mutex::new(a.clone(), "/p");
    let mut waiting = Box::pin(waiter.lock());
    pending_for(300, &mut asked).await;
    pending_for(100, &mut waiting).await;
    proxy.refuse(false);
    let seen = within(30, asked).await?;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].holder && seen[0].path == held.path());
    pending_for(300, &mut waiting).await;
    held.release().await?;
    within(30, waiting).await?.release().await?;
    Ok(())
}
