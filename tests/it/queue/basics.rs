//! The queues on both backends: FIFO order, batches and the stream; `put_all` all or nothing;
//! claims (invisible while held, given back by release, drop or the claimant's session end, in
//! their original place; fenced acks); priority and delay order; waits woken by puts and by
//! released claims; limits and cancellation that leave nothing behind; bad paths.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use conclave::hold::LossReason;
use conclave::queue::{DelayQueue, PriorityQueue, Queue};
use conclave::{CancellationToken, Error, Result, ZkError};
use futures::StreamExt;
use tokio::time::Instant;

use crate::conformance;
use crate::lock::children;
use crate::support::{pending_for, within, Env};

conformance!(
    fifo_order_batches_and_the_stream,
    put_all_is_all_or_nothing,
    a_claim_hides_its_item_until_acked_or_given_back,
    a_claimants_session_end_gives_the_item_back,
    an_ack_after_the_claim_was_lost_deletes_nothing,
    priorities_come_lowest_first_and_fifo_within_one,
    delayed_items_are_never_early_and_not_late,
    waiting_consumers_wake_for_puts_and_released_claims,
    limits_and_cancellation_leave_nothing_behind,
    bad_paths_are_reported,
);

fn payloads(items: &[conclave::queue::Item]) -> Vec<String> {
    items.iter().map(|i| String::from_utf8_lossy(i.data()).into_owned()).collect()
}

/// One consumer takes items in the order they were put, one at a time, in batches, and through
/// the stream; `poll` on an empty queue is `None` at once.
async fn fifo_order_batches_and_the_stream(env: Env) -> Result<()> {
    let (p, c) = (env.client().await, env.client().await);
    let producer = Queue::new(p, "/q/fifo");
    let consumer = Queue::new(c.clone(), "/q/fifo");
    assert_eq!(within(10, consumer.poll()).await?, None, "no queue node yet");
    for i in 0..40 {
        producer.put(format!("item-{i}")).await?;
    }
    assert_eq!(consumer.len().await?, 40);
    let peeked = consumer.peek().await?.expect("an item");
    assert_eq!(peeked.data(), "item-0".as_bytes());
    let first = consumer.take().await?;
    assert_eq!((first.data(), first.name()), (peeked.data(), peeked.name()), "peek does not take");
    assert!(first.name().starts_with("qn-"), "{}", first.name());
    let batch = consumer.take_batch(16).await?;
    assert_eq!(payloads(&batch), (1..17).map(|i| format!("item-{i}")).collect::<Vec<_>>());
    let rest: Vec<_> = within(10, consumer.stream().take(23).collect::<Vec<_>>()).await;
    let rest: Vec<_> = rest.into_iter().collect::<Result<Vec<_>>>()?;
    assert_eq!(payloads(&rest), (17..40).map(|i| format!("item-{i}")).collect::<Vec<_>>());
    assert_eq!(within(10, consumer.poll()).await?, None);
    assert!(consumer.is_empty().await?);
    assert!(children(&c, "/q/fifo").await.is_empty());
    Ok(())
}

/// `put_all` adds its items in one transaction: another session listing the queue all along
/// sees none of them or all of them, and they are consecutive, in order.
async fn put_all_is_all_or_nothing(env: Env) -> Result<()> {
    let (p, watcher) = (env.client().await, env.client().await);
    let queue = Queue::new(p, "/q/all");
    queue.put("before").await?;
    let stop = CancellationToken::new();
    let seen = {
        let (watcher, stop) = (watcher.clone(), stop.clone());
        tokio::spawn(async move {
            let mut counts = HashSet::new();
            while !stop.is_cancelled() {
                counts.insert(watcher.get_children("/q/all").await.expect("list").len());
            }
            counts
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let paths = queue.put_all((0..300).map(|i| format!("batch-{i}"))).await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop.cancel();
    let counts = within(10, seen).await.expect("lister");
    assert!(counts.iter().all(|&n| n == 1 || n == 301), "a partial batch was visible: {counts:?}");
    assert_eq!(paths.len(), 300);
    let consumer = Queue::new(watcher, "/q/all");
    let all = consumer.take_batch(1000).await?;
    assert_eq!(all.len(), 301);
    assert_eq!(payloads(&all[1..]), (0..300).map(|i| format!("batch-{i}")).collect::<Vec<_>>());
    assert_eq!(all[1..].iter().map(|i| i.path().to_string()).collect::<Vec<_>>(), paths);
    // An empty batch puts nothing and needs no queue node.
    assert!(Queue::new(env.client().await, "/q/none").put_all(Vec::<Vec<u8>>::new()).await?.is_empty());
    Ok(())
}

/// A claimed item stays in the queue, invisible to other consumers (claimers and takers); a
/// release gives it back in its original place, a dropped claim too, and an ack deletes it.
async fn a_claim_hides_its_item_until_acked_or_given_back(env: Env) -> Result<()> {
    let (a, b) = (env.client().await, env.client().await);
    let qa = Queue::new(a.clone(), "/q/claims");
    let qb = Queue::new(b.clone(), "/q/claims");
    qa.put_all(["one", "two", "three"]).await?;
    let claim = qa.claim().await?;
    assert_eq!(claim.data(), "one".as_bytes());
    assert!(claim.is_held());
    let mut nodes = children(&a, claim.item().path()).await;
    nodes.retain(|n| n != "claim");
    assert_eq!(nodes.len(), 1, "the claimant's own node");
    assert_eq!(claim.hold().path(), format!("{}/{}", claim.item().path(), nodes[0]));
    assert_eq!(claim.fencing_token(), claim.hold().stat().czxid as u64);
    assert_eq!(qb.peek().await?.expect("an item").data(), "two".as_bytes(), "peek skips claimed items");
    let other = qb.try_claim().await?.expect("the next item");
    assert_eq!(other.data(), "two".as_bytes());
    other.release().await?;
    // A taker skips the claimed item too.
    let taken = qb.poll().await?.expect("an unclaimed item");
    assert_eq!(taken.data(), "two".as_bytes(), "released in its original place, ahead of three");
    // Given back: first in line again, for a consumer that lists the queue now and for the
    // handle that gave it back (another handle sees it at its next listing).
    claim.release().await?;
    let again = Queue::new(b.clone(), "/q/claims").claim().await?;
    assert_eq!(again.data(), "one".as_bytes());
    assert!(again.fencing_token() > 0);
    // Dropped: given back in the background.
    let item = again.item().path().to_string();
    drop(again);
    within(10, async {
        while !children(&a, &item).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let again = qa.claim().await?;
    assert_eq!(again.data(), "one".as_bytes());
    again.ack().await?;
    let last = qb.claim().await?;
    assert_eq!(last.data(), "three".as_bytes());
    last.ack().await?;
    assert_eq!(qb.try_claim().await?.map(|c| c.item().path().to_string()), None);
    assert!(children(&a, "/q/claims").await.is_empty(), "acked items are gone");
    Ok(())
}

/// A claimant whose session ends before it acks loses the claim with it: the item is available
/// again, first in line, and the old claimant's ack fails.
async fn a_claimants_session_end_gives_the_item_back(env: Env) -> Result<()> {
    let (a, b) = (env.client().await, env.client().await);
    let qb = Queue::new(b.clone(), "/q/expiry");
    qb.put_all(["first", "second"]).await?;
    let claim = Queue::new(a.clone(), "/q/expiry").claim().await?;
    assert_eq!(claim.data(), "first".as_bytes());
    let lost = claim.lost();
    env.expire(&a).await?;
    let reason = within(30, lost).await;
    assert!(matches!(reason, LossReason::Suspended | LossReason::SessionLost), "{reason:?}");
    let next = within(30, qb.claim()).await?;
    assert_eq!(next.data(), "first".as_bytes(), "back in its original place");
    assert!(matches!(claim.ack().await, Err(Error::Lost { .. })));
    next.ack().await?;
    assert_eq!(qb.take().await?.data(), "second".as_bytes());
    Ok(())
}

/// Fenced acks: once a claimant's own node is deleted (an operator) and another consumer
/// claims the item, the first claimant's ack fails and deletes nothing; the second's works.
async fn an_ack_after_the_claim_was_lost_deletes_nothing(env: Env) -> Result<()> {
    let (a, b, admin) = (env.client().await, env.client().await, env.client().await);
    let qa = Queue::new(a.clone(), "/q/fenced");
    qa.put("job").await?;
    let first = qa.claim().await?;
    let item = first.item().path().to_string();
    admin.delete(first.hold().path(), None).await?;
    admin.delete(&format!("{item}/claim"), None).await?;
    assert_eq!(within(10, first.lost()).await, LossReason::NodeDeleted);
    let second = Queue::new(b, "/q/fenced").claim().await?;
    assert_eq!(second.item().path(), item);
    assert!(second.fencing_token() > first.fencing_token());
    assert!(matches!(first.ack().await, Err(Error::Lost { .. })));
    assert!(admin.exists(&item).await?.is_some(), "the failed ack deleted nothing");
    assert!(second.is_held());
    second.ack().await?;
    assert!(admin.exists(&item).await?.is_none());
    Ok(())
}

/// A priority queue hands out the lowest value first, and items of one priority in put order,
/// whatever the order of the puts; claims follow the same order.
async fn priorities_come_lowest_first_and_fifo_within_one(env: Env) -> Result<()> {
    let c = env.client().await;
    let queue = PriorityQueue::new(c.clone(), "/q/prio");
    let puts = [(5, "e"), (-1, "a1"), (3, "d"), (-1, "a2"), (0, "c"), (i32::MIN, "min"), (i32::MAX, "max"), (-1, "a3")];
    for (p, d) in puts {
        queue.put(p, d).await?;
    }
    let claim = queue.claim().await?;
    assert_eq!((claim.data().as_ref(), claim.item().priority()), ("min".as_bytes(), Some(i32::MIN)));
    claim.release().await?;
    let mut order = Vec::new();
    while let Some(item) = queue.poll().await? {
        order.push(String::from_utf8_lossy(item.data()).into_owned());
    }
    assert_eq!(order, ["min", "a1", "a2", "a3", "c", "d", "e", "max"]);
    // A higher priority put after a listing is still taken first.
    queue.put_all([(9, "late-low"), (1, "b")]).await?;
    assert_eq!(queue.take().await?.data(), "b".as_bytes());
    queue.put(-5, "urgent").await?;
    assert_eq!(queue.take().await?.data(), "urgent".as_bytes());
    Ok(())
}

/// A delayed item is never handed out before its due time, and a waiting consumer gets it
/// soon after (it sleeps until the earliest due time: no polling).
async fn delayed_items_are_never_early_and_not_late(env: Env) -> Result<()> {
    let c = env.client().await;
    let queue = DelayQueue::new(c.clone(), "/q/delay");
    let now = SystemTime::now();
    queue.put(now + Duration::from_millis(600), "later").await?;
    queue.put(now + Duration::from_millis(300), "soon").await?;
    queue.put(now - Duration::from_secs(1), "overdue").await?;
    assert_eq!(queue.poll().await?.expect("due").data(), "overdue".as_bytes());
    assert_eq!(queue.poll().await?, None, "nothing else is due yet");
    assert_eq!(queue.peek().await?, None);
    // A round trip, for the bound on lateness.
    let t = Instant::now();
    c.exists("/q/delay").await?;
    let rtt = t.elapsed();
    for (name, due) in [("soon", 300), ("later", 600)] {
        let item = within(10, queue.take()).await?;
        let at = SystemTime::now();
        assert_eq!(item.data(), name.as_bytes());
        let exact = now + Duration::from_millis(due);
        let due = item.due().expect("a delay item");
        assert!(due <= exact && exact.duration_since(due).unwrap() < Duration::from_millis(1), "{due:?} {exact:?}");
        assert!(at >= due, "{name} handed out {:?} early", due.duration_since(at).unwrap_or_default());
        let late = at.duration_since(due).unwrap_or_default();
        // One round trip (the take), the timer's millisecond and the scheduler's slack.
        assert!(late <= rtt * 2 + Duration::from_millis(60), "{name} late by {late:?} (rtt {rtt:?})");
    }
    // Claims wait for the due time too.
    queue.put_in(Duration::from_millis(200), "claimed").await?;
    let t = Instant::now();
    let claim = within(10, queue.claim()).await?;
    assert!(t.elapsed() >= Duration::from_millis(190), "claimed after {:?}", t.elapsed());
    claim.ack().await?;
    Ok(())
}

/// Consumers waiting on an empty queue are woken by a put; a claimer waiting while every item
/// is claimed is woken when a claim is given back.
async fn waiting_consumers_wake_for_puts_and_released_claims(env: Env) -> Result<()> {
    let (a, b, c) = (env.client().await, env.client().await, env.client().await);
    let waiters: Vec<_> = [b.clone(), c.clone()]
        .into_iter()
        .map(|client| tokio::spawn(async move { Queue::new(client, "/q/wake").take().await }))
        .collect();
    let mut all = Box::pin(futures::future::join_all(waiters));
    pending_for(300, &mut all).await;
    Queue::new(a.clone(), "/q/wake").put_all(["x", "y"]).await?;
    let mut got: Vec<String> = Vec::new();
    for t in within(10, all).await {
        got.push(String::from_utf8_lossy(t.expect("task")?.data()).into_owned());
    }
    got.sort();
    assert_eq!(got, ["x", "y"], "each item to one consumer");
    let qa = Queue::new(a.clone(), "/q/wake");
    qa.put("only").await?;
    let claim = qa.claim().await?;
    let mut waiting = Box::pin(tokio::spawn(async move { Queue::new(b, "/q/wake").claim().await }));
    pending_for(300, &mut waiting).await;
    claim.release().await?;
    let claim = within(10, waiting).await.expect("task")?;
    assert_eq!(claim.data(), "only".as_bytes());
    claim.ack().await?;
    Ok(())
}

/// Timeouts, cancellations and dropped calls give up without leaving a node; an item put
/// after a given-up claim has no claim on it.
async fn limits_and_cancellation_leave_nothing_behind(env: Env) -> Result<()> {
    let c = env.client().await;
    let queue = Queue::new(c.clone(), "/q/limits");
    assert_eq!(within(10, queue.take_timeout(Duration::from_millis(200))).await?, None);
    assert!(within(10, queue.claim_timeout(Duration::from_millis(200))).await?.is_none());
    let token = CancellationToken::new();
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
    };
    let (claimed, ()) = within(10, futures::future::join(queue.claim_cancellable(&token), cancel)).await;
    assert!(claimed?.is_none());
    // A dropped claim.
    let mut claim = Box::pin(queue.claim());
    pending_for(100, &mut claim).await;
    drop(claim);
    let path = queue.put("x").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(children(&c, &path).await.is_empty(), "no claim on the item");
    assert_eq!(children(&c, "/q/limits").await.len(), 1);
    let item = queue.take_timeout(Duration::from_secs(5)).await?.expect("the item");
    assert_eq!(item.path(), path);
    Ok(())
}

/// A bad path is reported by every call.
async fn bad_paths_are_reported(env: Env) -> Result<()> {
    let queue = Queue::new(env.client().await, "no-slash");
    let bad = |e: Error| matches!(e, Error::Zk(ZkError::InvalidPath { .. }));
    assert!(bad(queue.put("x").await.unwrap_err()));
    assert!(bad(queue.take().await.unwrap_err()));
    assert!(bad(queue.claim().await.unwrap_err()));
    assert!(bad(queue.peek().await.unwrap_err()));
    assert!(bad(queue.len().await.unwrap_err()));
    Ok(())
}
