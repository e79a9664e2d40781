//! A consumer of a long queue uses memory bounded by the queue's listing, not by what it has
//! consumed: 100 000 waiting items drained in batches, with the process's allocations counted
//! (this binary's global allocator), on the embedded server. Its own test binary so that no
//! other test's allocations count, and so that the allocator counts only this one test.

use conclave::queue::Queue;
use conclave::{Client, Server};

#[path = "shared/counting.rs"]
mod counting;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// 100 000 items of 16 bytes wait in a queue (about 17 bytes of listing per item); one consumer
/// drains them with `take_batch(256)`. The most the process ever holds above what it held
/// before the drain must stay within 120 bytes per waiting item: the listing reply as the
/// in-process server builds and sends it and as the client receives and decodes it (names
/// about 37 bytes each, dropped once parsed), and the consumer's ordered copy (24 bytes an item,
/// no names kept, freed once used up). Nothing is kept per item taken: after the drain, memory
/// is no higher than before it (the server's tables have shrunk).
#[tokio::test]
async fn a_hundred_thousand_waiting_items_drain_in_bounded_memory() {
    const N: usize = 100_000;
    let server = Server::builder().start().await.expect("server");
    let producer = Queue::new(Client::connect(&server.connect_string()).await.expect("connect"), "/long");
    for chunk in 0..N / 1000 {
        producer.put_all((0..1000).map(|i| format!("item-{:011}", chunk * 1000 + i))).await.expect("put");
    }
    let consumer = Queue::new(Client::connect(&server.connect_string()).await.expect("connect"), "/long");
    let before = counting::reset_peak();
    let mut taken = 0;
    while taken < N {
        let batch = consumer.take_batch(256).await.expect("take");
        assert!(!batch.is_empty());
        taken += batch.len();
    }
    let peak = counting::peak_bytes().saturating_sub(before);
    let after = counting::live_bytes() as isize - before as isize;
    println!("RESULT queue_memory items={N} peak_growth_bytes={peak} per_item={} after_bytes={after}", peak / N);
    assert!(peak <= 120 * N, "the drain held {peak} bytes above its start ({} per waiting item)", peak / N);
    assert!(after <= 0, "{after} bytes more after the drain than before it");
    assert_eq!(consumer.poll().await.expect("poll"), None);
}
