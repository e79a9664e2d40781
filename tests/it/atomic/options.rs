//! `RetryChange`'s options on both backends: markers shared by a whole session (one-off
//! `retry_change` calls leave one marker per change at once, not one per call); a handle's next
//! change starting from its last write (a stale start is caught by the version, a `Keep` decided
//! on it is checked against a read, and `Counter::compare_and_set` still sees other writers);
//! and the promotion to a lock (a promoted change waits for the lock, and promoted and plain
//! writers together still count exactly, leaving no lock node behind).

use std::time::Duration;

use conclave::atomic::{retry_change, Change, Counter, RetryChange};
use conclave::lock::Mutex;
use conclave::{Error, Result};

use crate::atomic::basics::no_markers_left;
use crate::conformance;
use crate::lock::children;
use crate::support::{within, Env};

conformance!(
    one_off_calls_share_the_sessions_markers,
    a_handle_starts_from_its_last_write,
    a_promoted_change_waits_for_the_lock,
    promoted_and_plain_writers_count_exactly,
);

/// A change that appends `suffix` to the node's data.
fn append(current: Option<(&[u8], &conclave::Stat)>, suffix: &str) -> Result<Change> {
    let mut data = current.map(|(d, _)| d.to_vec()).unwrap_or_default();
    data.extend_from_slice(suffix.as_bytes());
    Ok(Change::Set(data.into()))
}

/// 40 one-off `retry_change` calls on one session leave one marker; 4 at once leave at most 4,
/// and later calls reuse them; another session has markers of its own, and all go with their
/// sessions.
async fn one_off_calls_share_the_sessions_markers(env: Env) -> Result<()> {
    let c = env.client().await;
    for _ in 0..40 {
        retry_change(&c, "/shared/doc", |cur| append(cur, "a")).await?;
    }
    assert_eq!(children(&c, "/shared/.conclave-markers").await.len(), 1, "one marker for one change at a time");
    let at_once = (0..4).map(|_| retry_change(&c, "/shared/doc", |cur| append(cur, "b")));
    for done in futures::future::join_all(at_once).await {
        done?;
    }
    for _ in 0..20 {
        retry_change(&c, "/shared/doc", |cur| append(cur, "c")).await?;
    }
    let mine = children(&c, "/shared/.conclave-markers").await;
    assert!((1..=4).contains(&mine.len()), "at most one marker per change at once: {mine:?}");
    let other = env.client().await;
    retry_change(&other, "/shared/doc", |cur| append(cur, "d")).await?;
    assert_eq!(children(&c, "/shared/.conclave-markers").await.len(), mine.len() + 1, "a marker of its own");
    assert_eq!(c.get_data("/shared/doc").await?.0.len(), 40 + 4 + 20 + 1, "every change applied once");
    c.close().await;
    other.close().await;
    no_markers_left(&env.client().await, "/shared/.conclave-markers").await;
    Ok(())
}

/// A handle starts its next change from its last write: when another client wrote meanwhile,
/// the closure is called with the handle's last write, then (the write refused on its version)
/// with the node as read, and the handle reads first until a read finds the node as it left
/// it; a `Keep` decided on the old state is checked against a read; with the option off, the
/// closure sees the node as read at once.
async fn a_handle_starts_from_its_last_write(env: Env) -> Result<()> {
    let (mine, theirs) = (env.client().await, env.client().await);
    let handle = RetryChange::new(mine.clone(), "/last");
    handle.run(|_| Ok::<_, Error>(Change::set("v1"))).await?;
    theirs.set_data("/last", "x", None).await?;

    let mut seen = Vec::new();
    let done = handle
        .run(|cur| {
            let (data, stat) = cur.expect("the node exists");
            seen.push((data.to_vec(), stat.version));
            Ok::<_, Error>(Change::Set([data, b"+"].concat().into()))
        })
        .await?;
    assert_eq!(seen, [(b"v1".to_vec(), 0), (b"x".to_vec(), 1)], "its last write, then the node as read");
    assert_eq!((done.data.as_deref(), done.attempts), (Some(&b"x+"[..]), 2));

    // Having found the node changed, the handle reads first (once its last write is older than
    // that write's round trip, a writer in a loop being the exception): another writer's change
    // is seen at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    theirs.set_data("/last", "z", None).await?;
    let mut calls = Vec::new();
    handle
        .run(|cur| {
            calls.push(cur.expect("the node exists").0.to_vec());
            append(cur, "+")
        })
        .await?;
    assert_eq!(calls, [b"z".to_vec()]);
    // Unchallenged, a change is written at its first attempt. Its read (after a pause) finds
    // the node as the handle left it, so the handle trusts its last write again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = handle.run(|cur| append(cur, "!")).await?;
    assert_eq!((next.data.as_deref(), next.attempts), (Some(&b"z+!"[..]), 1));

    // Trusted again, the handle starts from its last write even after a pause; a Keep decided
    // on it is not believed: the node is read.
    theirs.set_data("/last", "go", None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    calls.clear();
    let kept_or_set = handle
        .run(|cur| {
            let data = cur.expect("the node exists").0.to_vec();
            calls.push(data.clone());
            Ok::<_, Error>(if data == b"go" { Change::set("went") } else { Change::Keep })
        })
        .await?;
    assert_eq!(calls, [b"z+!".to_vec(), b"go".to_vec()]);
    assert!(kept_or_set.written && kept_or_set.data.as_deref() == Some(&b"went"[..]));

    // The counter's compare-and-set sees the other writer's value, not its own last write.
    let counter = Counter::new(mine.clone(), "/count");
    assert_eq!(counter.increment().await?.post, 1);
    Counter::new(theirs.clone(), "/count").force_set(5).await?;
    let swapped = counter.compare_and_set(5, 6).await?.expect("the value is 5");
    assert_eq!((swapped.pre, swapped.post), (5, 6));
    assert!(counter.compare_and_set(5, 7).await?.is_none(), "the value is 6 now");

    // Off: the closure is given the node as read.
    let reading = RetryChange::new(mine.clone(), "/last").reuse_last_write(false);
    reading.run(|cur| append(cur, "1")).await?;
    theirs.set_data("/last", "y", None).await?;
    let mut first = None;
    reading
        .run(|cur| {
            first.get_or_insert_with(|| cur.expect("the node exists").0.to_vec());
            append(cur, "2")
        })
        .await?;
    assert_eq!(first.as_deref(), Some(&b"y"[..]));
    Ok(())
}

/// A change promoted from its first attempt waits while another holds the lock, and is written
/// once it is released; the lock is Curator's mutex layout at the given path.
async fn a_promoted_change_waits_for_the_lock(env: Env) -> Result<()> {
    let (c, holder) = (env.client().await, env.client().await);
    let guard = Mutex::new(holder.clone(), "/hot-lock").lock().await?;
    let promoted = RetryChange::new(c.clone(), "/hot").promote_to_lock("/hot-lock", 0);
    let mut change = Box::pin(promoted.run(|cur| append(cur, "p")));
    tokio::select! {
        done = &mut change => panic!("written while another held the lock: {done:?}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    assert_eq!(children(&c, "/hot-lock").await.len(), 2, "the holder's node and the change's");
    assert!(c.exists("/hot").await?.is_none(), "nothing written yet");
    guard.release().await?;
    let done = within(20, change).await?;
    assert_eq!(done.data.as_deref(), Some(&b"p"[..]));
    // A promoted change bounded by a timeout gives up waiting for a held lock.
    let guard = Mutex::new(holder.clone(), "/hot-lock").lock().await?;
    let bounded =
        promoted.run_with(conclave::Wait::timeout(Duration::from_millis(200)), |cur| append(cur, "q")).await?;
    assert!(bounded.is_none(), "the lock's wait counts against the call's");
    guard.release().await?;
    within(20, async {
        while !children(&c, "/hot-lock").await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(c.get_data("/hot").await?.0, &b"p"[..]);
    Ok(())
}

/// 6 writers promoted after one lost race and 2 plain ones increment one counter (200 times
/// each on the embedded server, 50 on a real ZooKeeper): the final value is the number of
/// successful increments and every post-value was reported once; no lock node is left.
async fn promoted_and_plain_writers_count_exactly(env: Env) -> Result<()> {
    let per_writer = if env.is_embedded() { 200 } else { 50 };
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = env.client().await;
        let change = RetryChange::new(client.clone(), "/hits");
        let change = if w < 6 { change.promote_to_lock("/hits-lock", 1) } else { change };
        let counter = Counter::with(change);
        writers.push(tokio::spawn(async move {
            let mut posts = Vec::new();
            for _ in 0..per_writer {
                posts.push(counter.increment().await?.post);
            }
            Ok::<_, Error>(posts)
        }));
    }
    let mut posts = Vec::new();
    for w in writers {
        posts.extend(within(300, w).await.expect("writer")?);
    }
    posts.sort_unstable();
    let expected: Vec<i64> = (1..=posts.len() as i64).collect();
    assert!(posts == expected, "post-values are 1..={} each once", expected.len());
    let admin = env.client().await;
    assert_eq!(Counter::new(admin.clone(), "/hits").get().await?, posts.len() as i64);
    within(20, async {
        while !children(&admin, "/hits-lock").await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    Ok(())
}
