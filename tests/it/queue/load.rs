//! Many producers and consumers, and long queues: 4 producers × 4 consumers × 5000 items, each
//! item consumed exactly once (at most once: `take`) or claimed once and acked (claims), checked
//! by [`check_once`]; a queue of 100 000 items drained by one consumer in a few round trips per
//! batch, with no listing per item; a queue too long to list failing with a clear error, not a
//! stall, on both backends; and the negative control of the checker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave::queue::Queue;
use conclave::{Error, Result};

use crate::conformance;
use crate::support::round_trips::RoundTrips;
use crate::support::{within, Env};

conformance!(
    four_producers_four_consumers_take_each_item_once,
    four_producers_four_consumers_claim_each_item_once,
    a_queue_too_long_to_list_is_a_clear_error,
    the_checker_catches_lost_and_doubled_items,
);

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;
const ITEMS: usize = 5000;

/// Checks that `consumed` holds every item `producer-i` for each producer and i below `items`
/// exactly once; returns what is wrong.
fn check_once(consumed: &[String], producers: usize, items: usize) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for item in consumed {
        *seen.entry(item.as_str()).or_default() += 1;
    }
    let mut wrong = Vec::new();
    for p in 0..producers {
        for i in 0..items {
            let name = format!("{p}-{i}");
            match seen.remove(name.as_str()) {
                Some(1) => {}
                Some(n) => wrong.push(format!("{name} consumed {n} times")),
                None => wrong.push(format!("{name} lost")),
            }
        }
    }
    wrong.extend(seen.keys().map(|k| format!("{k} was never put")));
    wrong
}

/// Puts `ITEMS` items from each of `PRODUCERS` sessions, one put each.
async fn produce(env: &Env, path: &'static str) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let queue = Queue::new(env.client().await, path);
        tasks.push(tokio::spawn(async move {
            for i in 0..ITEMS {
                queue.put(format!("{p}-{i}")).await?;
            }
            Ok(())
        }));
    }
    tasks
}

/// Runs `CONSUMERS` consumers on their own sessions until `PRODUCERS * ITEMS` items were
/// consumed between them, each with `consume` (which returns the payloads it consumed).
async fn consume<F, Fut>(env: &Env, path: &'static str, consume: F) -> Vec<String>
where
    F: Fn(Queue) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<String>>> + Send,
{
    let total = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONSUMERS {
        let queue = Queue::new(env.client().await, path);
        let (total, consume) = (total.clone(), consume.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while total.load(Ordering::SeqCst) < PRODUCERS * ITEMS {
                let got = consume(queue.clone()).await?;
                total.fetch_add(got.len(), Ordering::SeqCst);
                mine.extend(got);
            }
            Ok::<_, Error>(mine)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(within(300, t).await.expect("consumer task").expect("consumer"));
    }
    all
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// At most once: 20 000 items from 4 producers, taken in batches by 4 consumers while they are
/// put; every item is taken by exactly one consumer.
async fn four_producers_four_consumers_take_each_item_once(env: Env) -> Result<()> {
    const PATH: &str = "/load/take";
    let producers = produce(&env, PATH).await;
    let taken = consume(&env, PATH, |q: Queue| async move {
        let items = q.take_batch_timeout(32, Duration::from_millis(200)).await?.unwrap_or_default();
        Ok(items.iter().map(|i| text(i.data())).collect())
    })
    .await;
    for p in producers {
        p.await.expect("producer")?;
    }
    let wrong = check_once(&taken, PRODUCERS, ITEMS);
    assert!(wrong.is_empty(), "{} problems, first: {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    assert_eq!(Queue::new(env.client().await, PATH).len().await?, 0);
    Ok(())
}

/// At least once: the same load with claims, each acked; with no fault, every item is claimed
/// exactly once (no double hand-out) and all are acked.
async fn four_producers_four_consumers_claim_each_item_once(env: Env) -> Result<()> {
    const PATH: &str = "/load/claim";
    let producers = produce(&env, PATH).await;
    let claimed = consume(&env, PATH, |q: Queue| async move {
        let claims = q.claim_batch_timeout(32, Duration::from_millis(200)).await?.unwrap_or_default();
        let names: Vec<String> = claims.iter().map(|c| text(c.data())).collect();
        for result in futures::future::join_all(claims.into_iter().map(|c| c.ack())).await {
            result?;
        }
        Ok(names)
    })
    .await;
    for p in producers {
        p.await.expect("producer")?;
    }
    let wrong = check_once(&claimed, PRODUCERS, ITEMS);
    assert!(wrong.is_empty(), "{} problems, first: {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    assert_eq!(Queue::new(env.client().await, PATH).len().await?, 0);
    Ok(())
}

/// A client whose reply limit (64 KiB) cannot hold the listing of a 6000-item queue (about
/// 100 KB) gets `TooManyChildren` from take, claim and peek, at once, rather than a connection
/// broken by an oversized reply and retried forever; a client with the default limit drains it.
async fn a_queue_too_long_to_list_is_a_clear_error(env: Env) -> Result<()> {
    const PATH: &str = "/load/long";
    let producer = Queue::new(env.client().await, PATH);
    for chunk in 0..6 {
        producer.put_all((0..1000).map(|i| format!("{chunk}-{i}"))).await?;
    }
    let small = env.connect(env.builder().max_reply_frame(64 * 1024)).await;
    let queue = Queue::new(small, PATH);
    let too_many = |r: Result<bool>| match r {
        Err(Error::TooManyChildren { children, bytes, limit, .. }) => {
            assert_eq!(children, 6000);
            assert!(bytes > limit && limit > 0, "{bytes} {limit}");
            true
        }
        other => panic!("expected TooManyChildren, got {other:?}"),
    };
    assert!(too_many(within(60, queue.take_timeout(Duration::from_secs(1))).await.map(|i| i.is_some())));
    assert!(too_many(within(60, queue.claim_timeout(Duration::from_secs(1))).await.map(|c| c.is_some())));
    assert!(too_many(within(60, queue.peek()).await.map(|i| i.is_some())));
    let drained = Queue::new(env.client().await, PATH).take_batch(10_000).await?;
    assert_eq!(drained.len(), 6000);
    Ok(())
}

/// The checker reports a lost item, an item consumed twice and one never put.
async fn the_checker_catches_lost_and_doubled_items(_env: Env) -> Result<()> {
    let mut consumed: Vec<String> = (0..3).flat_map(|p| (0..10).map(move |i| format!("{p}-{i}"))).collect();
    assert!(check_once(&consumed, 3, 10).is_empty());
    consumed.retain(|c| c != "1-4");
    consumed.push("2-7".into());
    consumed.push("9-9".into());
    let wrong = check_once(&consumed, 3, 10);
    assert_eq!(wrong.len(), 3, "{wrong:?}");
    assert!(wrong.contains(&"1-4 lost".to_string()));
    assert!(wrong.contains(&"2-7 consumed 2 times".to_string()));
    assert!(wrong.contains(&"9-9 was never put".to_string()));
    Ok(())
}

/// 100 000 items (put 1000 per transaction) drained by one consumer in batches of 256: every
/// item once, in order, in about one round trip per batch plus a handful of listings (no
/// listing per item). Embedded only: the size is what is tested, not ZooKeeper's semantics,
/// which the smaller runs cover on both backends.
#[tokio::test]
async fn a_hundred_thousand_waiting_items_drain_in_batches() {
    const N: usize = 100_000;
    let env = Env::embedded("queue_100k").await;
    let producer = Queue::new(env.client().await, "/long");
    for chunk in 0..N / 1000 {
        producer.put_all((0..1000).map(|i| format!("{:06}", chunk * 1000 + i))).await.expect("put");
    }
    let consumer = Queue::new(env.client().await, "/long");
    let trips = RoundTrips::start();
    let mut next = 0;
    while next < N {
        let batch = consumer.take_batch(256).await.expect("take");
        for item in batch {
            assert_eq!(text(item.data()), format!("{next:06}"), "in order");
            next += 1;
        }
    }
    let (count, requests) = (trips.count(), trips.requests());
    println!("RESULT queue_100k items={N} round_trips={count} requests={requests}");
    assert!(count <= N / 256 + 10, "{count} round trips for {N} items");
    assert!(requests <= 2 * N + 10, "{requests} requests for {N} items");
    assert_eq!(consumer.poll().await.expect("poll"), None);
}
