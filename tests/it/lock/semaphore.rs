//! The distributed [`Semaphore`]: never more than `max_leases` holders, leases that die with
//! their session, Curator's `locks`/`leases` layout, and acquires that clean up when dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave::lock::Semaphore;
use conclave::{Error, Result, ZkError};

use crate::conformance;
use crate::support::{within, Env};

conformance!(
    never_more_than_max_holders,
    layout_is_curators,
    try_and_timeout_leave_no_lease,
    dropped_acquire_returns_its_lease,
    leases_die_with_the_session,
    asking_more_than_max_is_refused
);

/// Ten clients cycle through a semaphore of three: at no instant do more than three hold a
/// lease, and every client gets leases.
async fn never_more_than_max_holders(env: Env) -> Result<()> {
    let holders = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = env.client().await;
        let (holders, peak) = (holders.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let sem = Semaphore::new(client, "/sem", 3);
            for _ in 0..5 {
                let lease = sem.acquire(1).await?;
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                holders.fetch_sub(1, Ordering::SeqCst);
                lease.into_iter().next().expect("one lease").release().await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        within(60, t).await.expect("task")?;
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} holders at once");
    assert!(peak >= 2, "leases were never held concurrently (peak {peak})");
    Ok(())
}

/// `<path>/locks` holds the acquirers' mutex, `<path>/leases/_c_<uuid>-lease-<seq>` the leases.
async fn layout_is_curators(env: Env) -> Result<()> {
    let c = env.client().await;
    let sem = Semaphore::new(c.clone(), "/layout", 2).with_data("me");
    let leases = sem.acquire(2).await?;
    let mut top = c.get_children("/layout").await?;
    top.sort();
    assert_eq!(top, ["leases", "locks"]);
    assert!(c.get_children("/layout/locks").await?.is_empty(), "the mutex is released after acquiring");
    let names = c.get_children("/layout/leases").await?;
    assert_eq!(names.len(), 2);
    for name in &names {
        let (prefix, seq) = name.split_at(name.len() - 10);
        assert!(prefix.starts_with("_c_") && prefix.ends_with("-lease-") && prefix.len() == 3 + 36 + 1 + 6, "{name}");
        assert!(seq.bytes().all(|b| b.is_ascii_digit()), "{name}");
    }
    let listed = sem.participants().await?;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|p| p.holder && p.data == "me" && p.kind == "lease-"));
    assert_eq!(listed[0].path, leases[0].path());
    Ok(())
}

/// `try_acquire` and `acquire_timeout` give up when the semaphore is full and leave no lease
/// node behind; a partial multi-lease acquire returns what it took.
async fn try_and_timeout_leave_no_lease(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let held = Semaphore::new(a, "/full", 2).acquire(1).await?;
    let other = Semaphore::new(b.clone(), "/full", 2);
    assert!(other.try_acquire(2).await?.is_none());
    assert!(other.acquire_timeout(2, Duration::from_millis(300)).await?.is_none());
    // The deletes are queued before the calls return; this read is answered after them.
    assert_eq!(b.get_children("/full/leases").await?.len(), 1, "only the holder's lease is left");
    let one = other.try_acquire(1).await?.expect("one lease is free");
    drop(held);
    drop(one);
    Ok(())
}

/// Dropping a waiting acquire removes its lease node and releases the semaphore's mutex, so
/// the next acquirer is not blocked behind it.
async fn dropped_acquire_returns_its_lease(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let c = env.client().await;
    let held = Semaphore::new(a, "/drop", 1).acquire(1).await?;
    let waiting = Semaphore::new(b.clone(), "/drop", 1);
    let mut pending = Box::pin(waiting.acquire(1));
    assert!(tokio::time::timeout(Duration::from_millis(300), &mut pending).await.is_err(), "full: must wait");
    drop(pending);
    assert_eq!(b.get_children("/drop/leases").await?.len(), 1);
    assert!(b.get_children("/drop/locks").await?.is_empty());
    drop(held);
    let next = within(10, Semaphore::new(c, "/drop", 1).acquire(1)).await?;
    assert_eq!(next.len(), 1);
    Ok(())
}

/// A holder whose session ends frees its lease for a waiter.
async fn leases_die_with_the_session(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let held = Semaphore::new(a.clone(), "/die", 1).acquire(1).await?;
    let waiter = tokio::spawn(async move { Semaphore::new(b, "/die", 1).acquire(1).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    let lost = held[0].lost();
    a.close().await;
    within(10, lost).await;
    let got = within(30, waiter).await.expect("task")?;
    assert!(got[0].fencing_token() > held[0].fencing_token());
    Ok(())
}

/// More leases than the semaphore has could never be granted: a typed error, nothing created.
async fn asking_more_than_max_is_refused(env: Env) -> Result<()> {
    let c = env.client().await;
    let sem = Semaphore::new(c.clone(), "/small", 2);
    assert!(matches!(sem.acquire(3).await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    assert!(sem.acquire(0).await?.is_empty());
    assert_eq!(c.exists("/small").await?, None);
    Ok(())
}
