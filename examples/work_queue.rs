//! A work queue with Conclave: two producers put jobs on an at-least-once queue, three workers
//! claim them, do the work and ack. One worker dies in the middle of a job (its session is
//! expired on the server, as when a process freezes past its session timeout): its claim goes
//! with its session, the job becomes available again in its place, and another worker does it.
//! Totals at the end: every job done, and done once by a live worker.
//!
//! ```text
//! cargo run --example work_queue                              # embedded server on a free port
//! cargo run --example work_queue -- --connect 127.0.0.1:2181  # the same on a real ZooKeeper
//! ```

#[path = "support/target.rs"]
mod target;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave::queue::Queue;
use conclave::{Client, Result};

const PATH: &str = "/work-queue-example/jobs";
const JOBS_PER_PRODUCER: usize = 10;

#[tokio::main]
async fn main() -> Result<()> {
    let (server, hosts) = target::server_or_hosts().await?;
    let connect = || Client::builder().session_timeout(Duration::from_secs(4)).connect(&hosts);

    // Who completed which job.
    let done: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();

    // Three workers, each on its own session. worker-1 freezes on its third job.
    let mut workers = Vec::new();
    for name in ["worker-1", "worker-2", "worker-3"] {
        let client = connect().await?;
        let queue = Queue::new(client.clone(), PATH);
        let done = done.clone();
        let task = tokio::spawn(async move {
            let mut jobs = 0;
            loop {
                let claim = match queue.claim().await {
                    Ok(claim) => claim,
                    Err(e) => {
                        println!("{name}: stops: {e}");
                        return;
                    }
                };
                let job = String::from_utf8_lossy(claim.data()).into_owned();
                jobs += 1;
                if name == "worker-1" && jobs == 3 {
                    println!("{name}: working on {job} ... and freezes (its session is expired on the server)");
                    let _ = conclave_core::testing::expire_session(queue.client()).await;
                    let lost = claim.lost().await;
                    println!("{name}: learns its claim on {job} is gone ({lost}); the job is back in the queue");
                    match claim.ack().await {
                        Ok(()) => println!("{name}: acked {job}?! (this must not happen)"),
                        Err(e) => println!("{name}: its late ack is refused: {e}"),
                    }
                    return;
                }
                // The work.
                tokio::time::sleep(Duration::from_millis(20)).await;
                match claim.ack().await {
                    Ok(()) => {
                        println!("{name}: did {job}");
                        done.lock().expect("totals").insert(job, name.to_string());
                    }
                    Err(e) => println!("{name}: could not ack {job}: {e}"),
                }
            }
        });
        workers.push((client, task));
    }

    // Two producers.
    let mut producers = Vec::new();
    for name in ["producer-a", "producer-b"] {
        let queue = Queue::new(connect().await?, PATH);
        producers.push(tokio::spawn(async move {
            for i in 0..JOBS_PER_PRODUCER {
                queue.put(format!("{name}/job-{i}")).await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            queue.client().close().await;
            Ok::<_, conclave::Error>(())
        }));
    }
    for p in producers {
        p.await.expect("producer task")?;
    }

    // Wait until every job is done.
    let all = 2 * JOBS_PER_PRODUCER;
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        while done.lock().expect("totals").len() < all {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let done = done.lock().expect("totals").clone();
    let mut per_worker: BTreeMap<&str, usize> = BTreeMap::new();
    for worker in done.values() {
        *per_worker.entry(worker).or_default() += 1;
    }
    println!("\n{} of {all} jobs done{}", done.len(), if finished.is_ok() { "" } else { " (gave up waiting)" });
    for (worker, n) in per_worker {
        println!("  {worker}: {n}");
    }

    for (client, task) in workers {
        task.abort();
        client.close().await;
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
