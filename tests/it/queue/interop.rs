//! conclave's `Queue` and Apache Curator's `SimpleDistributedQueue` on one path are one queue
//! (items `<path>/qn-<seq>`, data = payload), with `tests/clients/CuratorQueueCheck.java` as the
//! Curator side, on both backends:
//!
//! - Curator produces, Rust consumes: Curator offers 200 items; Rust takes them (`take`, then
//!   `take_batch`es), and on a second queue claims and acks them one by one.
//! - Rust produces (`put` and `put_all`), Curator consumes (`take()` and `poll(timeout)`, woken by
//!   Rust puts once it has drained the first half; then `poll()` finds the queue empty).
//! - Both consume at once: Rust puts 400 items while a Curator consumer and a Rust consumer (at
//!   most once, `take_batch`) drain the queue together.
//!
//! Every run goes through one checker ([`problems`]): each item consumed exactly once across the
//! consumers, nothing else consumed, and the items of each consumer that takes the head in
//! queue order (so a lone consumer got exactly what was put, in order; a Rust consumer racing
//! another takes from its own share of the listing, and is not checked for order); the queue
//! is empty at the end. The negative control feeds
//! the checker a run with a duplicate, a missing, a foreign and a misordered item. Curator
//! consumers are never mixed with Rust *claimants*: a Curator `take` of a claimed item fails with
//! `NotEmpty` (documented as unsupported in `conclave::queue`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave::queue::{Item, Queue};
use conclave::{CreateMode, Error, Result};
use tokio::task::JoinHandle;

use crate::conformance;
use crate::support::clients::{run, CuratorProgram};
use crate::support::{within, Env};

conformance!(curator_produces_rust_consumes, rust_produces_curator_consumes, curator_and_rust_drain_one_queue);

/// Items per queue in the producer/consumer cases.
const N: usize = 200;
/// Items put while both sides consume.
const RACE: usize = 400;
/// The Rust consumer's work on each item it took while both sides consume (without it, the
/// Rust consumer, whose takes are pipelined, leaves Curator, which lists, reads and deletes for
/// each item, next to nothing).
const WORK: Duration = Duration::from_millis(2);
/// The Java program.
const PROGRAM: &str = "CuratorQueueCheck";

/// A Curator run in progress: its success, stdout and stderr once it ends.
type JavaRun = JoinHandle<(bool, String, String)>;

/// The payloads of `items`, as text.
fn payloads(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| String::from_utf8_lossy(i.data()).into_owned()).collect()
}

/// The items the Curator program printed (its `item <payload>` lines), in the order it got them.
fn printed(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.strip_prefix("item ")).map(str::to_string).collect()
}

/// What is wrong with a run, one line per problem (none: it passed). `expected` is what was put,
/// in queue order; `consumed` is what each named consumer got, in the order it got it. Every
/// expected item must have been consumed exactly once across the consumers, nothing else
/// consumed, and each consumer's items must come in queue order. With one consumer that means it
/// got exactly `expected`, in order.
fn problems(expected: &[String], consumed: &[(&str, &[String], bool)]) -> Vec<String> {
    let place: HashMap<&str, usize> = expected.iter().enumerate().map(|(i, e)| (e.as_str(), i)).collect();
    let mut takers: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut problems = Vec::new();
    for &(who, items, ordered) in consumed {
        let mut last: Option<(usize, &str)> = None;
        for item in items {
            let Some(&at) = place.get(item.as_str()) else {
                problems.push(format!("{who} got {item:?}, which was never put"));
                continue;
            };
            if let Some((before, previous)) = last.filter(|_| ordered) {
                if at <= before {
                    problems.push(format!("{who} got {item:?} after {previous:?}: out of queue order"));
                }
            }
            last = Some((at, item));
            takers.entry(item.as_str()).or_default().push(who);
        }
    }
    for item in expected {
        match takers.get(item.as_str()).map(Vec::as_slice).unwrap_or_default() {
            [] => problems.push(format!("{item:?} was never consumed")),
            [_] => {}
            whos => problems.push(format!("{item:?} was consumed {} times (by {})", whos.len(), whos.join(", "))),
        }
    }
    problems
}

/// Starts the Curator program in `mode` on the queue `path` of this test's chroot (given to Java
/// as the full path) with `count`; [`finish`] waits for it.
fn start(program: &CuratorProgram, env: &Env, path: &str, mode: &str, count: usize) -> JavaRun {
    let mut cmd = program.command();
    cmd.arg(env.tcp_address()).arg(format!("{}{path}", env.root)).arg(mode).arg(count.to_string());
    tokio::spawn(run(cmd, None, Duration::from_secs(60)))
}

/// Waits for a Curator run started by [`start`] and returns its stdout, after asserting that it
/// succeeded and printed `ok done`.
async fn finish(java: JavaRun) -> String {
    let (ok, out, err) = within(70, java).await.expect("the Java runner");
    assert!(ok && out.contains("ok done"), "{PROGRAM} failed:\nstdout:\n{out}\nstderr:\n{err}");
    out
}

/// Asserts that the checker found nothing wrong with a run.
#[track_caller]
fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}: {} problems:\n{}", problems.len(), problems.join("\n"));
}

/// Puts `items` in order, 10 at a time, alternately with one `put_all` and with single `put`s,
/// pausing `pause` after each 10.
async fn put_mixed(queue: &Queue, items: &[String], pause: Duration) -> Result<()> {
    for (i, chunk) in items.chunks(10).enumerate() {
        if i % 2 == 0 {
            queue.put_all(chunk.iter().cloned()).await?;
        } else {
            for item in chunk {
                queue.put(item.clone()).await?;
            }
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(())
}

/// Curator offers N items ("java-0".."java-199"); Rust takes them at most once (one `take`, then
/// `take_batch`es): all of them, in order, named `qn-<seq>`, and the queue is empty after. Then on
/// a second queue filled the same way, Rust claims (`claim`) and acks each item: all of them, in
/// order, and nothing is left to claim.
async fn curator_produces_rust_consumes(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let expected: Vec<String> = (0..N).map(|i| format!("java-{i}")).collect();
    let (taken_path, claimed_path) = ("/q/curator-to-take", "/q/curator-to-claim");
    // Both queues filled at once (two JVMs), each by one producer, so in order.
    let (to_take, to_claim) =
        (start(&program, &env, taken_path, "offer", N), start(&program, &env, claimed_path, "offer", N));
    let (out_take, out_claim) = (finish(to_take).await, finish(to_claim).await);
    assert!(out_take.contains(&format!("ok offered {N}")) && out_claim.contains(&format!("ok offered {N}")));
    let client = env.client().await;

    // At most once.
    let queue = Queue::new(client.clone(), taken_path);
    assert_eq!(queue.len().await?, N, "Curator's items");
    let mut taken = vec![within(10, queue.take()).await?];
    while taken.len() < N {
        taken.extend(within(10, queue.take_batch((N - taken.len()).min(64))).await?);
    }
    assert!(taken.iter().all(|i| i.name().starts_with("qn-")), "Curator's layout");
    assert_eq!(within(10, queue.poll()).await?, None, "nothing after Curator's items");
    assert!(queue.is_empty().await?);
    assert_clean("Rust takes of Curator's items", problems(&expected, &[("rust", &payloads(&taken), true)]));

    // At least once: claimed and acked.
    let queue = Queue::new(client.clone(), claimed_path);
    let mut claimed = Vec::new();
    for _ in 0..N {
        let claim = within(10, queue.claim()).await?;
        claimed.push(String::from_utf8_lossy(claim.data()).into_owned());
        claim.ack().await?;
    }
    assert!(within(10, queue.try_claim()).await?.is_none(), "nothing after Curator's items");
    assert!(queue.is_empty().await?, "acked items are gone");
    assert_clean("Rust claims of Curator's items", problems(&expected, &[("rust", &claimed, true)]));
    client.close().await;
    eprintln!("queue interop on the {}: {N} Curator items taken, {N} claimed by Rust", env.backend_name());
    Ok(())
}

/// Rust puts N items (`put_all` and `put` in turn); Curator takes them with `take()` and
/// `poll(10 s)` in turn: the first half is there when it starts, the second half is put only once
/// it has drained the first, so its waits are woken by Rust puts. Curator got all N in order, its
/// `poll()` then found the queue empty, and the queue is empty.
async fn rust_produces_curator_consumes(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let expected: Vec<String> = (0..N).map(|i| format!("rust-{i}")).collect();
    let (first, second) = expected.split_at(N / 2);
    let path = "/q/rust-to-curator";
    let queue = Queue::new(env.client().await, path);
    put_mixed(&queue, first, Duration::ZERO).await?;
    let java = start(&program, &env, path, "consume", N);
    // Until Curator has taken the first half (or failed: its output says why).
    within(30, async {
        while !java.is_finished() && !queue.is_empty().await? {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok::<_, Error>(())
    })
    .await?;
    put_mixed(&queue, second, Duration::ZERO).await?;
    let out = finish(java).await;
    assert!(out.contains("ok empty"), "Curator's poll() found the queue empty:\n{out}");
    assert_clean("Curator takes of Rust's items", problems(&expected, &[("curator", &printed(&out), true)]));
    assert!(queue.is_empty().await?);
    queue.client().close().await;
    eprintln!("queue interop on the {}: {N} Rust items taken by Curator", env.backend_name());
    Ok(())
}

/// Rust puts RACE items (as [`put_mixed`], pausing between chunks) while a Curator consumer and
/// a Rust consumer (at most once, `take_batch` of up to 4) drain the queue together: each item is
/// consumed exactly once across the two, each consumer got its own in queue order, both got some,
/// and the queue is empty at the end.
async fn curator_and_rust_drain_one_queue(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let expected: Vec<String> = (0..RACE).map(|i| format!("item-{i}")).collect();
    let path = "/q/shared";
    let client = env.client().await;
    let java = start(&program, &env, path, "race", RACE);
    // Until Curator is connected and consuming (or failed: its output says why).
    let ready = format!("{path}-ready");
    within(30, async {
        while !java.is_finished() && client.exists(&ready).await?.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok::<_, Error>(())
    })
    .await?;
    let produced = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (queue, produced) = (Queue::new(env.client().await, path), produced.clone());
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                // Once every item was put, a wait that finds nothing means the queue is drained.
                let finished = produced.load(Ordering::SeqCst);
                match queue.take_batch_timeout(4, Duration::from_millis(100)).await? {
                    Some(items) => {
                        // The work on the items, so that the Curator consumer gets its share.
                        tokio::time::sleep(WORK * items.len() as u32).await;
                        got.extend(payloads(&items));
                    }
                    None if finished => break,
                    None => {}
                }
            }
            queue.client().close().await;
            Ok::<_, Error>(got)
        })
    };
    put_mixed(&Queue::new(client.clone(), path), &expected, Duration::from_millis(10)).await?;
    produced.store(true, Ordering::SeqCst);
    let rust = within(30, consumer).await.expect("the Rust consumer")?;
    client.create(&format!("{path}-done"), b"", CreateMode::Persistent).await?;
    let curator = printed(&finish(java).await);
    // Curator takes the head each time; a Rust consumer that meets another consumer on the
    // same items takes from its own share of the listing (`conclave::queue`: lanes), so only
    // Curator's items are checked for order here.
    let consumed = [("curator", curator.as_slice(), true), ("rust", rust.as_slice(), false)];
    assert_clean("Curator and Rust consumers", problems(&expected, &consumed));
    assert!(!curator.is_empty() && !rust.is_empty(), "both consumed: Curator {}, Rust {}", curator.len(), rust.len());
    assert!(Queue::new(client.clone(), path).is_empty().await?, "the queue is drained");
    client.close().await;
    eprintln!(
        "queue interop on the {}: {RACE} items, {} taken by Curator and {} by Rust",
        env.backend_name(),
        curator.len(),
        rust.len()
    );
    Ok(())
}

/// The negative control: the checker every case uses reports a run in which an item was consumed
/// twice, one never, one that was never put, and one consumer got its items out of queue order;
/// and passes the same run without those faults.
#[test]
fn negative_control() {
    let expected: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (curator, rust) = (strings(&["a", "c", "e"]), strings(&["b", "d"]));
    assert_clean("a correct run", problems(&expected, &[("curator", &curator, true), ("rust", &rust, true)]));
    assert_clean("one consumer", problems(&expected, &[("rust", &expected, true)]));

    let (curator, rust) = (strings(&["a", "c", "e"]), strings(&["d", "c", "x"]));
    let found = problems(&expected, &[("curator", &curator, true), ("rust", &rust, true)]);
    eprintln!("queue interop, negative control: {} problems caught:\n{}", found.len(), found.join("\n"));
    let caught = |what: &str| found.iter().any(|p| p.contains(what));
    assert!(caught(r#""c" was consumed 2 times (by curator, rust)"#), "the duplicate: {found:#?}");
    assert!(caught(r#""b" was never consumed"#), "the missing item: {found:#?}");
    assert!(caught(r#"rust got "x", which was never put"#), "the foreign item: {found:#?}");
    assert!(caught(r#"rust got "c" after "d": out of queue order"#), "the order: {found:#?}");
    assert_eq!(found.len(), 4, "nothing else: {found:#?}");
    // A lone consumer that got everything but in the wrong order fails too.
    let swapped = strings(&["a", "c", "b", "d", "e"]);
    assert_eq!(problems(&expected, &[("curator", &swapped, true)]).len(), 1);
    assert!(problems(&expected, &[("curator", &swapped, false)]).is_empty(), "order not asked");
}
