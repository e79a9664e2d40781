//! What a [`TreeCache`] holds, counted by this binary's global allocator on the embedded
//! server: a cached node costs its data and at most 200 bytes more; nothing stays behind once
//! the cache is dropped; a cache waiting for its root to be created does not grow
//! (CURATOR-240). Its own test binary so that no other test's allocations count; its tests
//! take turns, for the same reason.

use std::time::{Duration, Instant};

use conclave::cache::TreeCache;
use conclave::{Client, CreateMode, Server, ServerHandle};
use futures::stream::{self, StreamExt};

#[path = "shared/counting.rs"]
mod counting;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// One test at a time: the allocator counts the whole process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The bytes a cached node may hold beyond its data.
const PER_NODE: usize = 200;

/// The live heap, after letting the tasks finish what they were doing.
async fn live() -> isize {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    counting::live_bytes() as isize
}

async fn connect(server: &ServerHandle) -> Client {
    Client::connect(&server.connect_string()).await.expect("connect")
}

/// Runs `calls` with at most `window` in flight; panics on a failure.
async fn pipelined<F, T>(calls: impl Iterator<Item = F>, window: usize)
where
    F: std::future::Future<Output = Result<T, conclave::ZkError>>,
{
    let mut replies = stream::iter(calls).buffer_unordered(window);
    while let Some(reply) = replies.next().await {
        reply.expect("request");
    }
}

/// A cache of 100 × 100 nodes with 16-byte data (10 101 with the parents and the root, as in
/// the `cache` benchmark) holds at most data + 200 bytes per node: both the live heap once it
/// is loaded minus before it was made, and minus after it is dropped. Three rounds on the same
/// session; after each, the heap is back where it was before the first (no leak). The heap's
/// peak during the load is printed, not bounded.
///
/// The cache's session first reads every node twice over, all reads at once, before the
/// baseline: the first load of a session grows its buffers and request queue (and the
/// in-process server's side of them) to what 10 000 replies in flight need, capacity the
/// session keeps and reuses; that is the session's, not the cache's.
#[tokio::test]
async fn a_cached_node_costs_its_data_and_at_most_200_bytes() {
    let _turn = SERIAL.lock().await;
    let (parents, children) = (100, 100);
    let server = Server::builder().start().await.expect("server");
    let admin = connect(&server).await;
    admin.create("/tree", b"", CreateMode::Persistent).await.expect("create");
    let ppaths: Vec<String> = (0..parents).map(|p| format!("/tree/p{p:02}")).collect();
    let cpaths: Vec<String> =
        (0..parents * children).map(|i| format!("{}/c{:02}", ppaths[i / children], i % children)).collect();
    pipelined(
        ppaths.iter().enumerate().map(|(i, p)| admin.create(p, format!("parent{i:010}"), CreateMode::Persistent)),
        1000,
    )
    .await;
    pipelined(
        cpaths.iter().enumerate().map(|(i, p)| admin.create(p, format!("init{i:012}"), CreateMode::Persistent)),
        1000,
    )
    .await;
    let nodes = 1 + parents + parents * children;
    let data = 16 * (parents + parents * children);
    let bound = (data + PER_NODE * nodes) as isize;

    let client = connect(&server).await;
    let all: Vec<&str> = std::iter::once("/tree").chain(ppaths.iter().chain(&cpaths).map(String::as_str)).collect();
    for _ in 0..2 {
        let reads: Vec<_> = all.iter().chain(&all).map(|p| client.get_data(p)).collect();
        for read in futures::future::join_all(reads).await {
            read.expect("read");
        }
    }

    let baseline = live().await;
    for round in 0..3 {
        counting::reset_peak();
        let t = Instant::now();
        let cache = TreeCache::new(&client, "/tree").expect("cache");
        tokio::time::timeout(Duration::from_secs(60), cache.initialized()).await.expect("in time").expect("loaded");
        let loaded = t.elapsed();
        let peak = counting::peak_bytes() as isize - baseline;
        assert_eq!(cache.len(), nodes);
        let with = live().await;
        drop(cache);
        let after = live().await;
        let held = with - after;
        println!(
            "RESULT cache_memory round={round} nodes={nodes} held_bytes={held} per_node={} above_baseline={} \
             after_drop={} load_ms={} load_peak_bytes={peak}",
            held / nodes as isize,
            with - baseline,
            after - baseline,
            loaded.as_millis()
        );
        assert!(
            held <= bound,
            "the cache held {held} bytes for {nodes} nodes with {data} bytes of data: {} per node beyond the data",
            (held - data as isize) / nodes as isize
        );
        assert!(with - baseline <= bound, "the heap grew by {} bytes with the cache", with - baseline);
        // A few kilobytes of slack: the session's and the server's queues are not always the
        // same size when idle.
        assert!(after - baseline <= 16 * 1024, "{} bytes more once the cache is dropped", after - baseline);
    }
}

/// A cache on a path that does not exist waits for it without polling and without growing
/// (CURATOR-240): while siblings of its root are created and deleted 1000 times (changes
/// right next to it, which its watch does not cover), the heap stays put. Then the root is
/// created and cached, and once the cache is dropped the heap is back where it started.
#[tokio::test]
async fn a_cache_on_a_missing_path_does_not_grow_while_waiting() {
    let _turn = SERIAL.lock().await;
    let server = Server::builder().start().await.expect("server");
    let admin = connect(&server).await;
    let client = connect(&server).await;
    admin.create("/parent", b"", CreateMode::Persistent).await.expect("create");
    let churn = |rounds: usize| {
        let admin = admin.clone();
        async move {
            for i in 0..rounds {
                let sibling = format!("/parent/sibling-{}", i % 10);
                admin.create(&sibling, b"x".as_slice(), CreateMode::Persistent).await.expect("create");
                admin.set_data("/parent", b"y".as_slice(), None).await.expect("set");
                admin.delete(&sibling, None).await.expect("delete");
            }
        }
    };
    // The session's and the server's buffers at their working size first.
    churn(100).await;

    let before = live().await;
    let cache = TreeCache::new(&client, "/parent/root").expect("cache");
    cache.initialized().await.expect("initialized");
    assert!(cache.is_empty());
    let waiting = live().await;
    churn(1000).await;
    cache.sync().await.expect("sync");
    let after_churn = live().await;
    println!(
        "RESULT cache_memory missing_root waiting_cache_bytes={} growth_over_1000_sibling_changes={}",
        waiting - before,
        after_churn - waiting
    );
    assert!(cache.is_empty());
    assert!(after_churn - waiting <= 4 * 1024, "the waiting cache grew by {} bytes", after_churn - waiting);

    admin.create("/parent/root", b"here".as_slice(), CreateMode::Persistent).await.expect("create");
    cache.sync().await.expect("sync");
    assert_eq!(cache.get("/parent/root").map(|n| n.data), Some(b"here".as_slice().into()));
    drop(cache);
    let after = live().await;
    println!("RESULT cache_memory missing_root after_drop={}", after - before);
    assert!(after - before <= 4 * 1024, "{} bytes more once the cache is dropped", after - before);
}
