//! The lock recipes (`conclave::lock`): behaviour on both backends. Exclusion and FIFO order,
//! `try_lock` / `lock_timeout` / `lock_cancellable` / `lock_with`, fencing tokens and fenced
//! transactions, release and drop, participants, the read-write lock, the multi-lock,
//! cancellation of pending acquires (also while the create is in flight), and the herd check (a
//! release wakes exactly one waiter, counted in the server's watch tables). Faults (expiry, lost
//! replies, cuts, the sequence counter's edges) are in `faults`, the stress run in `stress`.
//!
//! "Leaves no node" is checked through the contender's own client: its cleanup delete is queued
//! on its session before the acquire returns, so a later read by the same client sees it done.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use conclave::lock::{participants, LossReason, MultiLock, Mutex, RwLock, Semaphore};
use conclave::{Acl, Client, CreateMode, CreateOptions, Error, Id, OpResult, Perms, Result, Wait, ZkError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{children, name, until_children};
use crate::conformance;
use crate::support::{pending_for, within, Env};

conformance!(
    lock_and_release,
    acquire_errors_are_reported,
    two_clients_exclude_each_other,
    try_lock_does_not_wait_or_leave_a_node,
    lock_timeout_gives_up_and_leaves_no_node,
    lock_cancellable_gives_up_when_cancelled,
    fencing_tokens_increase_across_holders_and_directories,
    fenced_transaction_needs_the_lock,
    dropping_the_guard_releases,
    participants_lists_the_holder_then_waiters,
    readers_share_the_lock,
    writer_excludes_readers_and_readers_exclude_writer,
    waiting_writer_holds_back_later_readers,
    read_write_lock_serves_in_order,
    multi_lock_is_all_or_nothing,
    dropped_acquire_deletes_its_node,
    acquire_dropped_while_its_create_is_held_leaves_nothing,
    every_acquire_takes_a_wait,
    bad_paths_are_reported_as_given,
);

/// An uncontended lock: one protected ephemeral-sequential node owned by the session, under
/// container parents; release removes it.
async fn lock_and_release(env: Env) -> Result<()> {
    let c = env.client().await;
    let m = Mutex::new(c.clone(), "/locks/a");
    assert_eq!(m.path(), "/locks/a");
    let g = within(10, m.lock()).await?;
    let node = name(g.path());
    assert!(g.path().starts_with("/locks/a/_c_") && node.ends_with("-lock-0000000000"), "{}", g.path());
    let stat = c.exists(g.path()).await?.expect("the lock node exists");
    assert_eq!(stat.ephemeral_owner, c.session_id());
    assert_eq!(g.fencing_token(), stat.czxid as u64);
    assert_eq!(g.stat().czxid, stat.czxid);
    assert!(g.is_held());
    assert_eq!(g.client().session_id(), c.session_id());
    g.release().await?;
    assert_eq!(children(&c, "/locks/a").await, Vec::<String>::new());
    // The same handle locks again.
    let g = within(10, m.lock()).await?;
    assert!(g.fencing_token() > stat.czxid as u64);
    g.release().await?;
    Ok(())
}

/// Errors an acquire reports at once (and leaves nothing behind for): a bad path, and a lock
/// directory whose ACL forbids creating children; for a read-write lock and a multi-lock too.
async fn acquire_errors_are_reported(env: Env) -> Result<()> {
    let c = env.client().await;
    let err = within(10, Mutex::new(c.clone(), "no-slash").lock()).await;
    assert!(matches!(err, Err(Error::Zk(ZkError::InvalidPath { .. }))), "{err:?}");
    let read_only = vec![Acl::new(Perms::READ, Id::anyone())];
    c.create("/sealed", b"", CreateOptions::new(CreateMode::Persistent).acl(read_only)).await?;
    assert_eq!(within(10, Mutex::new(c.clone(), "/sealed").lock()).await.map(drop), Err(Error::Zk(ZkError::NoAuth)));
    assert_eq!(
        within(10, Mutex::new(c.clone(), "/sealed").try_lock()).await.map(drop),
        Err(Error::Zk(ZkError::NoAuth))
    );
    assert_eq!(within(10, RwLock::new(c.clone(), "/sealed").read()).await.map(drop), Err(Error::Zk(ZkError::NoAuth)));
    let multi = MultiLock::new([Mutex::new(c.clone(), "/a"), Mutex::new(c.clone(), "/sealed")]);
    assert_eq!(within(10, multi.lock()).await.map(drop), Err(Error::Zk(ZkError::NoAuth)));
    assert_eq!(children(&c, "/a").await, Vec::<String>::new(), "the lock taken first was released");
    assert_eq!(children(&c, "/sealed").await, Vec::<String>::new());
    Ok(())
}

/// The second client waits while the first holds, and gets the lock when it is released.
async fn two_clients_exclude_each_other(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a, "/l").lock()).await?;
    let mb = Mutex::new(b.clone(), "/l");
    let mut waiting = Box::pin(mb.lock());
    pending_for(300, &mut waiting).await;
    assert!(ga.is_held());
    assert_eq!(children(&b, "/l").await.len(), 2, "the waiter queued a node");
    let token = ga.fencing_token();
    let released = Instant::now();
    ga.release().await?;
    let gb = within(10, waiting).await?;
    assert!(released.elapsed() < Duration::from_secs(5));
    assert!(gb.fencing_token() > token);
    assert!(gb.is_held());
    gb.release().await?;
    assert_eq!(children(&b, "/l").await, Vec::<String>::new());
    Ok(())
}

/// `try_lock` returns `None` at once while the lock is held (or waited for), leaving no node; it
/// takes a free lock.
async fn try_lock_does_not_wait_or_leave_a_node(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let mb = Mutex::new(b.clone(), "/l");
    let g = within(10, mb.try_lock()).await?.expect("a free lock is taken");
    g.release().await?;
    let ga = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let started = Instant::now();
    assert!(within(10, mb.try_lock()).await?.is_none());
    assert!(started.elapsed() < Duration::from_secs(2), "try_lock waited {:?}", started.elapsed());
    assert_eq!(children(&b, "/l").await, vec![name(ga.path()).to_string()], "no node left behind");
    ga.release().await?;
    let gb = within(10, mb.try_lock()).await?.expect("free again");
    gb.release().await?;
    assert_eq!(children(&b, "/l").await, Vec::<String>::new());
    Ok(())
}

/// `lock_timeout` gives up after its timeout, with no node left; it takes a free lock at once.
async fn lock_timeout_gives_up_and_leaves_no_node(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let mb = Mutex::new(b.clone(), "/l");
    let started = Instant::now();
    assert!(within(10, mb.lock_timeout(Duration::from_millis(300))).await?.is_none());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "waited {waited:?}");
    assert_eq!(children(&b, "/l").await, vec![name(ga.path()).to_string()]);
    assert!(within(10, mb.lock_timeout(Duration::ZERO)).await?.is_none(), "an expired timeout");
    assert_eq!(children(&b, "/l").await.len(), 1);
    ga.release().await?;
    let gb = within(10, mb.lock_timeout(Duration::from_secs(5))).await?.expect("free");
    gb.release().await?;
    assert_eq!(children(&b, "/l").await, Vec::<String>::new());
    Ok(())
}

/// `lock_cancellable` waits until its token is cancelled (then `None`, no node); a token
/// cancelled beforehand sends nothing; an uncancelled one gets the lock once it is free.
async fn lock_cancellable_gives_up_when_cancelled(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let mb = Mutex::new(b.clone(), "/l");
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    assert!(within(10, mb.lock_cancellable(&token)).await?.is_none());
    assert_eq!(children(&b, "/l").await.len(), 1, "the waiting node was removed");
    assert!(within(10, mb.lock_cancellable(&token)).await?.is_none(), "already cancelled");
    assert_eq!(children(&b, "/l").await.len(), 1);
    let fresh = CancellationToken::new();
    let mut waiting = Box::pin(mb.lock_cancellable(&fresh));
    pending_for(200, &mut waiting).await;
    ga.release().await?;
    let gb = within(10, waiting).await?.expect("acquired");
    gb.release().await?;
    Ok(())
}

/// Fencing tokens strictly increase from holder to holder, also across the lock directory (a
/// container) being removed by the server and created again.
async fn fencing_tokens_increase_across_holders_and_directories(env: Env) -> Result<()> {
    let clients = [env.client().await, env.client().await];
    let mut tokens = Vec::new();
    for round in 0..2 {
        for i in 0..6 {
            let g = within(10, Mutex::new(clients[i % 2].clone(), "/fence/lock").lock()).await?;
            tokens.push(g.fencing_token());
            // Unrelated writes in between move the zxid on.
            clients[0].create("/fence/other-", b"", CreateMode::EphemeralSequential).await?;
            if i % 3 == 0 {
                drop(g);
            } else {
                g.release().await?;
            }
        }
        if round == 0 {
            // The empty container is reaped; the next acquire creates it again.
            within(20, async {
                while clients[1].exists("/fence/lock").await.expect("exists").is_some() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
        }
    }
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    Ok(())
}

/// A fenced transaction is applied while the lock is held and refused (`LockLost`, nothing
/// applied) once another client deleted the lock node; the guard notices the deletion, and
/// releasing it then reports `LockLost` too.
async fn fenced_transaction_needs_the_lock(env: Env) -> Result<()> {
    let a = env.client().await;
    let op = env.client().await;
    let g = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let results = g.fenced().create("/data", b"one".to_vec(), CreateMode::Persistent).commit().await?;
    assert!(matches!(&results[..], [OpResult::Create { path, .. }] if path == "/data"), "{results:?}");
    let results = g.fenced().set_data("/data", b"two".to_vec(), Some(0)).commit().await?;
    assert!(matches!(&results[..], [OpResult::SetData { stat }] if stat.version == 1), "{results:?}");
    // A failing op of the caller's is reported with its own index (the fence is not counted).
    let err = g.fenced().check("/data", Some(1)).set_data("/data", b"x".to_vec(), Some(7)).commit().await;
    assert!(
        matches!(&err, Err(Error::Zk(ZkError::MultiFailed { index: 1, source })) if **source == ZkError::BadVersion),
        "{err:?}"
    );

    let lost = g.lost();
    op.delete(g.path(), None).await?;
    assert_eq!(within(10, lost).await, LossReason::NodeDeleted);
    assert!(!g.is_held());
    let err = g.fenced().set_data("/data", b"stale".to_vec(), None).commit().await;
    assert!(matches!(&err, Err(Error::Lost { path, .. }) if path == g.path()), "{err:?}");
    assert_eq!(op.get_data("/data").await?.0.as_ref(), b"two", "nothing applied");
    let path = g.path().to_string();
    assert!(matches!(g.release().await, Err(Error::Lost { path: p, .. }) if p == path));
    Ok(())
}

/// Dropping a guard releases the lock: a waiter gets it.
async fn dropping_the_guard_releases(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let mb = Mutex::new(b.clone(), "/l");
    let mut waiting = Box::pin(mb.lock());
    pending_for(200, &mut waiting).await;
    drop(ga);
    let gb = within(10, waiting).await?;
    assert_eq!(children(&a, "/l").await, vec![name(gb.path()).to_string()]);
    drop(gb);
    assert_eq!(children(&b, "/l").await, Vec::<String>::new(), "the drop's delete is queued before later requests");
    Ok(())
}

/// Starts `lock()` on a task and waits until its node is queued (`dir` then has `n` children).
async fn queue_waiter(
    m: Mutex,
    observer: &Client,
    n: usize,
) -> tokio::task::JoinHandle<Result<conclave::lock::LockGuard>> {
    let dir = m.path().to_string();
    let task = tokio::spawn(async move { m.lock().await });
    until_children(observer, &dir, n).await;
    task
}

/// `participants()`: the holder first, then the waiters in the order they will get the lock,
/// each with its node's data; empty for a lock nobody holds.
async fn participants_lists_the_holder_then_waiters(env: Env) -> Result<()> {
    let obs = env.client().await;
    assert_eq!(Mutex::new(obs.clone(), "/l").participants().await?, Vec::new());
    assert_eq!(participants(&obs, "/l").await?, Vec::new());
    let h = env.client().await;
    let g = within(10, Mutex::new(h.clone(), "/l").with_data("holder").lock()).await?;
    let mut tasks = Vec::new();
    for (i, who) in ["first", "second"].iter().enumerate() {
        let c = env.client().await;
        tasks.push((queue_waiter(Mutex::new(c.clone(), "/l").with_data(*who), &obs, i + 2).await, c));
    }
    let seen = Mutex::new(obs.clone(), "/l").participants().await?;
    let summary: Vec<(&str, bool, i64)> =
        seen.iter().map(|p| (std::str::from_utf8(&p.data).expect("utf-8"), p.holder, p.stat.ephemeral_owner)).collect();
    assert_eq!(
        summary,
        [
            ("holder", true, h.session_id()),
            ("first", false, tasks[0].1.session_id()),
            ("second", false, tasks[1].1.session_id())
        ]
    );
    assert_eq!(seen[0].path, g.path());
    assert_eq!(seen[0].stat.czxid as u64, g.fencing_token());
    assert!(seen.iter().all(|p| p.kind == "lock-"));
    assert!(seen.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert_eq!(participants(&obs, "/l").await?, seen, "the free function sees the same");
    g.release().await?;
    for (task, _) in tasks {
        within(10, task).await.expect("task")?.release().await?;
    }
    Ok(())
}

/// Any number of readers hold a read-write lock at once.
async fn readers_share_the_lock(env: Env) -> Result<()> {
    let mut guards = Vec::new();
    for _ in 0..5 {
        let c = env.client().await;
        guards.push(within(10, RwLock::new(c, "/rw").read()).await?);
    }
    assert!(guards.iter().all(|g| g.is_held()));
    let c = env.client().await;
    let rw = RwLock::new(c.clone(), "/rw");
    assert!(within(10, rw.try_read()).await?.is_some(), "one more reader");
    let parts = rw.participants().await?;
    assert!(parts.iter().all(|p| p.holder && p.kind == "__READ__"), "{parts:?}");
    assert!(within(10, rw.try_write()).await?.is_none(), "readers hold");
    for g in guards {
        g.release().await?;
    }
    assert_eq!(children(&c, "/rw").await, Vec::<String>::new());
    Ok(())
}

/// A writer excludes readers and other writers; readers exclude a writer.
async fn writer_excludes_readers_and_readers_exclude_writer(env: Env) -> Result<()> {
    let (a, b, c) = (env.client().await, env.client().await, env.client().await);
    let w = within(10, RwLock::new(a.clone(), "/rw").write()).await?;
    let rb = RwLock::new(b.clone(), "/rw");
    assert!(within(10, rb.try_read()).await?.is_none());
    assert!(within(10, rb.try_write()).await?.is_none());
    assert!(within(10, rb.read_timeout(Duration::from_millis(200))).await?.is_none());
    assert!(within(10, rb.write_timeout(Duration::from_millis(200))).await?.is_none());
    assert_eq!(children(&b, "/rw").await.len(), 1, "nothing left behind");
    let mut reading = Box::pin(rb.read());
    pending_for(300, &mut reading).await;
    w.release().await?;
    let r1 = within(10, reading).await?;
    let r2 = within(10, RwLock::new(c.clone(), "/rw").read()).await?;
    let wa = RwLock::new(a.clone(), "/rw");
    let mut writing = Box::pin(wa.write());
    pending_for(300, &mut writing).await;
    r1.release().await?;
    pending_for(300, &mut writing).await;
    r2.release().await?;
    within(10, writing).await?.release().await?;
    Ok(())
}

/// A waiting writer holds back readers that come after it, even though only readers hold: a
/// stream of readers cannot starve a writer.
async fn waiting_writer_holds_back_later_readers(env: Env) -> Result<()> {
    let (a, b, c) = (env.client().await, env.client().await, env.client().await);
    let r1 = within(10, RwLock::new(a.clone(), "/rw").read()).await?;
    let wb = RwLock::new(b.clone(), "/rw");
    let writer = tokio::spawn(async move { wb.write().await });
    until_children(&a, "/rw", 2).await;
    let rc = RwLock::new(c.clone(), "/rw");
    assert!(within(10, rc.try_read()).await?.is_none(), "a writer is waiting");
    let mut reading = Box::pin(rc.read());
    pending_for(300, &mut reading).await;
    r1.release().await?;
    let w = within(10, writer).await.expect("writer task")?;
    pending_for(300, &mut reading).await;
    w.release().await?;
    within(10, reading).await?.release().await?;
    Ok(())
}

/// What one contender did, in the order the test saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Acquired(usize),
    Released(usize),
}

/// Contenders queued in the order R1 R2 W3 R4 W5 behind a writer are served in that order:
/// R1 and R2 together, then W3 alone, then R4, then W5.
async fn read_write_lock_serves_in_order(env: Env) -> Result<()> {
    let obs = env.client().await;
    let w0 = within(10, RwLock::new(obs.clone(), "/rw").write()).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let both_readers = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let plan = [(1, false), (2, false), (3, true), (4, false), (5, true)];
    let mut tasks = Vec::new();
    for (queued, (id, write)) in plan.into_iter().enumerate() {
        let rw = RwLock::new(env.client().await, "/rw");
        let (tx, barrier) = (tx.clone(), both_readers.clone());
        tasks.push(tokio::spawn(async move {
            let g = if write { rw.write().await? } else { rw.read().await? };
            tx.send(Step::Acquired(id)).expect("send");
            if id <= 2 {
                // R1 and R2 hold at the same time: each waits here for the other.
                within(10, barrier.wait()).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.send(Step::Released(id)).expect("send");
            g.release().await
        }));
        until_children(&obs, "/rw", queued + 2).await;
    }
    drop(tx);
    w0.release().await?;
    let mut steps = Vec::new();
    while let Some(s) = within(30, rx.recv()).await {
        steps.push(s);
    }
    for t in tasks {
        t.await.expect("task")?;
    }
    let at = |s: Step| steps.iter().position(|x| *x == s).unwrap_or_else(|| panic!("{s:?} missing in {steps:?}"));
    use Step::{Acquired as A, Released as R};
    assert!(at(A(1)) < at(R(2)) && at(A(2)) < at(R(1)), "R1 and R2 held together: {steps:?}");
    assert!(at(A(3)) > at(R(1)) && at(A(3)) > at(R(2)), "W3 after both readers: {steps:?}");
    assert!(at(A(4)) > at(R(3)), "R4 after W3: {steps:?}");
    assert!(at(A(5)) > at(R(4)), "W5 after R4: {steps:?}");
    Ok(())
}

/// A multi-lock takes every lock or none: with one of them held elsewhere, `lock_timeout` and
/// `try_lock` give up and leave no node on any of them; once free, it takes them all, fences
/// writes with all of them, and releases them all.
async fn multi_lock_is_all_or_nothing(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    let held = within(10, Mutex::new(other.clone(), "/m/b").lock()).await?;
    let multi =
        MultiLock::new([Mutex::new(c.clone(), "/m/b"), Mutex::new(c.clone(), "/m/a"), Mutex::new(c.clone(), "/m/b")]);
    assert_eq!(multi.paths().collect::<Vec<_>>(), ["/m/a", "/m/b"], "path order, duplicates once");
    assert!(within(10, multi.lock_timeout(Duration::from_millis(300))).await?.is_none());
    assert_eq!(children(&c, "/m/a").await, Vec::<String>::new(), "the lock taken was released");
    assert_eq!(children(&c, "/m/b").await, vec![name(held.path()).to_string()], "the waiting node was removed");
    assert!(within(10, multi.try_lock()).await?.is_none());
    assert_eq!(children(&c, "/m/a").await, Vec::<String>::new());
    assert_eq!(children(&c, "/m/b").await.len(), 1);
    let mut waiting = Box::pin(multi.lock());
    pending_for(300, &mut waiting).await;
    held.release().await?;
    let all = within(10, waiting).await?;
    assert_eq!(all.guards().len(), 2);
    assert!(all.is_held());
    assert!(within(10, Mutex::new(other.clone(), "/m/a").try_lock()).await?.is_none());
    all.fenced().create("/m/data", b"".to_vec(), CreateMode::Persistent).commit().await?;
    let lost = all.lost();
    other.delete(all.guards()[1].path(), None).await?;
    assert_eq!(within(10, lost).await, LossReason::NodeDeleted);
    let err = all.fenced().delete("/m/data", None).commit().await;
    assert!(matches!(&err, Err(Error::Lost { path, .. }) if path == all.guards()[1].path()), "{err:?}");
    assert!(matches!(all.release().await, Err(Error::Lost { .. })), "one lock was lost");
    assert_eq!(children(&c, "/m/a").await, Vec::<String>::new(), "the other one was still released");
    assert!(matches!(MultiLock::new([]).try_lock().await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    Ok(())
}

/// Dropping a pending `lock()` (a timeout around it, a `select!` that went the other way)
/// deletes its node at once: no stray contender, and no acquisition later.
async fn dropped_acquire_deletes_its_node(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    let mb = Mutex::new(b.clone(), "/l");
    assert!(tokio::time::timeout(Duration::from_millis(300), mb.lock()).await.is_err());
    assert_eq!(children(&b, "/l").await, vec![name(ga.path()).to_string()]);
    tokio::select! {
        g = mb.lock() => panic!("acquired while held: {g:?}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    assert_eq!(children(&b, "/l").await, vec![name(ga.path()).to_string()]);
    ga.release().await?;
    // Nobody holds it now: nothing of b's was left to take it behind its back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(children(&a, "/l").await, Vec::<String>::new());
    let g = within(10, Mutex::new(a.clone(), "/l").try_lock()).await?.expect("free");
    g.release().await?;
    Ok(())
}

/// An acquire dropped while its create is held in the network (a stalled proxy): the create
/// reaches the server after the drop, and the node it makes is found and deleted; it never
/// holds the lock.
async fn acquire_dropped_while_its_create_is_held_leaves_nothing(env: Env) -> Result<()> {
    let (proxy, b) = env.proxied(env.builder()).await;
    let a = env.client().await;
    let mb = Mutex::new(b.clone(), "/l");
    a.create("/l", b"", CreateMode::Persistent).await?;
    proxy.stall(Duration::from_millis(700));
    assert!(tokio::time::timeout(Duration::from_millis(100), mb.lock()).await.is_err());
    // The create lands when the stall ends; the cleanup finds it right after.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let left = within(10, async {
        loop {
            let left = children(&b, "/l").await;
            if left.is_empty() {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(left.is_empty());
    let dir = a.exists("/l").await?.expect("the lock directory");
    assert!(dir.cversion >= 2, "the held create did land (and was deleted): {dir:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let g = within(10, Mutex::new(a.clone(), "/l").try_lock()).await?.expect("nobody holds the lock");
    assert_eq!(children(&a, "/l").await, vec![name(g.path()).to_string()], "nothing of b's came back");
    g.release().await?;
    Ok(())
}

/// An acquire dropped while the server has applied its create but holds the reply (the
/// embedded server's stall): the node is found by its protected prefix and deleted, and it
/// never takes the lock from a later contender.
#[tokio::test]
async fn acquire_dropped_after_its_create_was_applied_leaves_nothing() -> Result<()> {
    let env = Env::embedded("lock-drop-applied").await;
    let b = env.client().await;
    let a = env.client().await;
    let mb = Mutex::new(b.clone(), "/l");
    a.create("/l", b"", CreateMode::Persistent).await?;
    env.server().faults().stall(Some(b.session_id()), Duration::from_millis(500));
    assert!(tokio::time::timeout(Duration::from_millis(100), mb.lock()).await.is_err());
    // Applied: b's node is there, first in line, though b's acquire is gone.
    assert_eq!(children(&a, "/l").await.len(), 1);
    let g = within(10, Mutex::new(a.clone(), "/l").lock()).await?;
    assert_eq!(children(&a, "/l").await, vec![name(g.path()).to_string()], "b's node was removed");
    g.release().await?;
    Ok(())
}

/// Fetches a four-letter word's answer from the backend (the harness enables them all).
async fn four_letter_word(env: &Env, word: &'static str) -> String {
    let address = env.tcp_address();
    let port: u16 = address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    tokio::task::spawn_blocking(move || conclave_core::testing::four_letter_word(port, word))
        .await
        .expect("four-letter word task")
        .unwrap_or_else(|e| panic!("{word}: {e}"))
}

/// The data watches under `prefix`, by session, from `wchc`.
async fn watches_by_session(env: &Env, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut session = String::new();
    for line in four_letter_word(env, "wchc").await.lines() {
        if let Some(path) = line.strip_prefix('\t') {
            if path.starts_with(prefix) {
                out.entry(session.clone()).or_default().insert(path.to_string());
            }
        } else if !line.is_empty() {
            session = line.trim().to_string();
        }
    }
    out
}

/// The herd check: `n` waiters queue on one lock, each watching only the node just ahead of it
/// (`wchc`: every node but the newest watched by exactly one session). A release wakes exactly
/// one of them: one acquires, exactly one session's watch fired (the others' are untouched),
/// and nobody else moves. Then the lock passes down the queue in order.
async fn herd(env: Env, n: usize) -> Result<()> {
    let dir = "/herd";
    let server_dir = format!("{}{dir}/", env.root);
    let obs = env.client().await;
    let holder = within(10, Mutex::new(obs.clone(), dir).with_data("holder").lock()).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
    let go = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut sessions = BTreeMap::new();
    for i in 0..n {
        let c = env.client().await;
        sessions.insert(format!("0x{:x}", c.session_id()), i);
        let m = Mutex::new(c, dir).with_data(i.to_string());
        let (tx, go) = (tx.clone(), go.clone());
        tasks.push(tokio::spawn(async move {
            let g = m.lock().await?;
            tx.send(i).expect("send");
            go.cancelled().await;
            g.release().await
        }));
    }
    drop(tx);
    until_children(&obs, dir, n + 1).await;
    let order: Vec<usize> = Mutex::new(obs.clone(), dir).participants().await?[1..]
        .iter()
        .map(|p| std::str::from_utf8(&p.data).expect("utf-8").parse().expect("an index"))
        .collect();
    // Every waiter has set its one watch.
    let before = within(30, async {
        loop {
            let w = watches_by_session(&env, &server_dir).await;
            if w.values().map(BTreeSet::len).sum::<usize>() >= n {
                return w;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(before.len(), n, "one watching session per waiter: {before:?}");
    assert!(before.values().all(|paths| paths.len() == 1), "each waiter watches one node: {before:?}");
    let watched: BTreeSet<&String> = before.values().flatten().collect();
    assert_eq!(watched.len(), n, "no node is watched by two waiters");
    let holder_path = format!("{}{}", env.root, holder.path());
    let on_holder: Vec<&String> = before.iter().filter(|(_, p)| p.contains(&holder_path)).map(|(s, _)| s).collect();
    assert_eq!(on_holder.len(), 1, "exactly one waiter watches the holder");
    assert_eq!(sessions[on_holder[0]], order[0], "and it is the first in line");

    holder.release().await?;
    let first = within(10, rx.recv()).await.expect("a waiter acquires");
    assert_eq!(first, order[0], "the first in line got the lock");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "a single release let a second waiter through");
    let after = watches_by_session(&env, &server_dir).await;
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|s| before.get(*s) != after.get(*s))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let fired = changed.len();
    println!(
        "RESULT lock_herd backend={} waiters={n} watches_before={} watches_after={} sessions_woken_by_one_release={fired}",
        if env.is_embedded() { "embedded" } else { "real-zookeeper" },
        before.values().map(BTreeSet::len).sum::<usize>(),
        after.values().map(BTreeSet::len).sum::<usize>(),
    );
    assert_eq!(changed, [on_holder[0]], "only the first waiter's watch fired: {before:?} -> {after:?}");
    assert!(!after.contains_key(on_holder[0]), "the new holder watches nothing");

    // The rest pass the lock down the queue, in order.
    go.cancel();
    let mut got = vec![first];
    while let Some(i) = within(60, rx.recv()).await {
        got.push(i);
    }
    assert_eq!(got, order, "FIFO");
    for t in tasks {
        t.await.expect("waiter task")?;
    }
    assert_eq!(children(&obs, dir).await, Vec::<String>::new());
    Ok(())
}

/// 100 waiters on the embedded server.
#[tokio::test]
async fn one_release_wakes_one_of_100_waiters() -> Result<()> {
    herd(Env::embedded("lock-herd").await, 100).await
}

/// 50 waiters on a real ZooKeeper.
#[tokio::test]
async fn one_release_wakes_one_of_50_waiters_on_zookeeper() -> Result<()> {
    match Env::real("lock-herd", false).await {
        Some(env) => herd(env, 50).await,
        None => Ok(()),
    }
}

/// Cancels `token` after `ms` milliseconds.
fn cancel_after(token: &CancellationToken, ms: u64) {
    let token = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        token.cancel();
    });
}

/// One `Wait` for every acquire: its limits combine (the first one reached ends the wait), each
/// lock type takes it (`lock_with`, `read_with`/`write_with`, `acquire_with`), and a wait that
/// ends leaves no node. The read-write lock has the cancellable forms of the others.
async fn every_acquire_takes_a_wait(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let ga = within(10, Mutex::new(a.clone(), "/w").lock()).await?;
    let mb = Mutex::new(b.clone(), "/w");
    // The token comes first.
    let token = CancellationToken::new();
    cancel_after(&token, 200);
    let started = Instant::now();
    assert!(within(10, mb.lock_with(Wait::timeout(Duration::from_secs(8)).with_cancel(&token))).await?.is_none());
    assert!(started.elapsed() < Duration::from_secs(4), "stopped by the token: {:?}", started.elapsed());
    // The timeout comes first.
    let never = CancellationToken::new();
    let started = Instant::now();
    assert!(within(10, mb.lock_with(Wait::until(&never).with_timeout(Duration::from_millis(300)))).await?.is_none());
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A deadline already passed still tries once.
    assert!(within(10, mb.lock_with(Wait::deadline(Instant::now()))).await?.is_none());
    assert_eq!(children(&b, "/w").await, vec![name(ga.path()).to_string()], "no waiter left behind");

    let writer = within(10, RwLock::new(a.clone(), "/rw").write()).await?;
    let rw = RwLock::new(b.clone(), "/rw");
    let token = CancellationToken::new();
    cancel_after(&token, 200);
    assert!(within(10, rw.read_cancellable(&token)).await?.is_none());
    assert!(within(10, rw.write_cancellable(&token)).await?.is_none(), "a cancelled token still tries once");
    assert!(within(10, rw.write_with(Wait::once())).await?.is_none());
    assert_eq!(children(&b, "/rw").await.len(), 1);
    let mut reading = Box::pin(rw.read_cancellable(&never));
    pending_for(200, &mut reading).await;
    writer.release().await?;
    within(10, reading).await?.expect("the writer left").release().await?;

    let sem = Semaphore::new(b.clone(), "/sem", 1);
    let lease = within(10, sem.acquire_with(1, Wait::forever())).await?.expect("a free lease");
    let other = Semaphore::new(a.clone(), "/sem", 1);
    assert!(within(10, other.acquire_with(1, Wait::timeout(Duration::from_millis(200)))).await?.is_none());
    drop(lease);
    within(10, other.acquire_with(1, Wait::timeout(Duration::from_secs(5)))).await?.expect("returned");

    let multi = MultiLock::new([Mutex::new(b.clone(), "/m1"), Mutex::new(b.clone(), "/w")]);
    assert!(within(10, multi.lock_with(Wait::timeout(Duration::from_millis(200)))).await?.is_none());
    assert_eq!(children(&b, "/m1").await, Vec::<String>::new(), "the lock taken first was released");
    ga.release().await?;
    within(10, multi.lock_with(Wait::forever())).await?.expect("all free").release().await?;
    Ok(())
}

/// A bad path is reported as the caller wrote it — not as an internal node or directory name —
/// before anything is sent, by every lock type and by the inspection calls.
async fn bad_paths_are_reported_as_given(env: Env) -> Result<()> {
    let c = env.client().await;
    for path in ["no-slash", "/trailing/", "/a//b", "/dot/./x"] {
        let given = |r: std::result::Result<(), Error>| {
            matches!(&r, Err(Error::Zk(ZkError::InvalidPath { path: p, .. })) if p == path)
                .then_some(())
                .ok_or_else(|| format!("{path}: {r:?}"))
        };
        given(Mutex::new(c.clone(), path).lock().await.map(drop)).unwrap();
        given(Mutex::new(c.clone(), path).try_lock().await.map(drop)).unwrap();
        given(Mutex::new(c.clone(), path).participants().await.map(drop)).unwrap();
        given(RwLock::new(c.clone(), path).read().await.map(drop)).unwrap();
        given(RwLock::new(c.clone(), path).write_with(Wait::once()).await.map(drop)).unwrap();
        given(Semaphore::new(c.clone(), path, 2).acquire(1).await.map(drop)).unwrap();
        given(Semaphore::new(c.clone(), path, 2).participants().await.map(drop)).unwrap();
        given(MultiLock::new([Mutex::new(c.clone(), "/ok"), Mutex::new(c.clone(), path)]).lock().await.map(drop))
            .unwrap();
        given(participants(&c, path).await.map(drop)).unwrap();
    }
    assert_eq!(children(&c, "/ok").await, Vec::<String>::new(), "nothing left by the multi-lock");
    Ok(())
}
