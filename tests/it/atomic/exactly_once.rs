//! Exactly once under lost replies: writers on their own sessions increment one counter (8-byte
//! big-endian, Curator's `DistributedAtomicLong` layout) with `retry_change` while replies are
//! lost after the server applied the request (the embedded server's hook, aimed at
//! transactions; the proxy on a real ZooKeeper, whatever the next reply is) and connections
//! are cut. The checker ([`check`]): the counter's final value equals the number of calls that
//! returned `Ok`, every call returned (none hung), and at most one marker per writer is left,
//! none once the writers' sessions are closed. The negative control
//! runs the same writers without markers and sees the checker catch the double counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave::atomic::{Change, RetryChange};
use conclave::proto::OpCode;
use conclave::{Error, Result};
use futures::FutureExt;

use super::basics::no_markers_left;
use crate::lock::children;
use crate::stress_trio;
use crate::support::stress::{Fault, Plan, Run};
use crate::support::{within, Env};

/// 8 writers; the lengths are counts of increments, not seconds (see [`run`]).
const PLAN: Plan = Plan {
    name: "atomic_exactly_once",
    sessions: (8, 8),
    secs: ("CONCLAVE_ATOMIC_STRESS_SECS", 0),
    real_secs: ("CONCLAVE_ATOMIC_STRESS_REAL_SECS", 0),
    faults_per_sec: (0, 0),
    lost_reply: Some(OpCode::Multi),
};

stress_trio!(PLAN, run, negative_control);

const COUNTER: &str = "/counter";

/// What is wrong with a run whose counter ended at `value` after `oks` successful increments.
fn check(value: i64, oks: u64, hung: u64) -> Vec<String> {
    let mut wrong = Vec::new();
    if value != oks as i64 {
        wrong.push(format!("the counter is {value} after {oks} successful increments"));
    }
    if hung > 0 {
        wrong.push(format!("{hung} calls hung"));
    }
    wrong
}

fn decode(data: &[u8]) -> i64 {
    data.try_into().map(i64::from_be_bytes).unwrap_or(0)
}

/// One increment of the counter; `before_write` runs in the closure, after the read and before
/// the write (where a fault aimed at the write is armed), on the closure's first call only.
async fn increment(change: &RetryChange, before_write: impl FnOnce()) -> Result<()> {
    let mut before_write = Some(before_write);
    change
        .run(|current| {
            if let Some(arm) = before_write.take() {
                arm();
            }
            let n = current.map_or(0, |(data, _)| decode(data));
            Ok::<_, Error>(Change::set((n + 1).to_be_bytes().to_vec()))
        })
        .await
        .map(drop)
}

/// What [`increments`] counted.
#[derive(Debug, Default)]
struct Tally {
    value: i64,
    oks: u64,
    hung: u64,
    lost: u64,
    cuts: u64,
}

/// `each` increments from every client of `clients`, with `exactly_once` markers or not. Every
/// `lost_every`-th increment of a writer has the reply to its write lost (armed between its read
/// and its write: on the embedded server the hook aimed at transactions, on a real ZooKeeper the
/// writer's proxy dropping the next reply), and every `cut_every`-th is followed by a cut of the
/// writer's connection.
async fn increments(run: &Arc<Run>, each: u64, exactly_once: bool, lost_every: u64, cut_every: u64) -> Tally {
    let lost = Arc::new(AtomicU64::new(0));
    let (oks, hung, cuts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let admin = run.env.client().await;
    let tasks: Vec<_> = (0..run.clients.len())
        .map(|w| {
            let client = run.clients[w].clone();
            let change = RetryChange::new(client.clone(), COUNTER).exactly_once(exactly_once);
            let (run, admin) = (run.clone(), admin.clone());
            let (lost, oks, hung, cuts) = (lost.clone(), oks.clone(), hung.clone(), cuts.clone());
            tokio::spawn(async move {
                for i in 1..=each {
                    let arm = || {
                        if lost_every > 0 && i % lost_every == 0 {
                            let armed = run.inject(Fault::LostReply, &admin, w, &client, None).now_or_never();
                            assert!(matches!(armed, Some(Ok(()))), "the lost reply is armed at once");
                            lost.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    match tokio::time::timeout(Duration::from_secs(120), increment(&change, arm)).await {
                        Ok(Ok(())) => drop(oks.fetch_add(1, Ordering::SeqCst)),
                        Ok(Err(e)) => panic!("increment: {e}"),
                        Err(_) => drop(hung.fetch_add(1, Ordering::SeqCst)),
                    }
                    if cut_every > 0 && i % cut_every == 0 {
                        run.inject(Fault::Cut, &admin, w, &client, None).await.expect("cut");
                        cuts.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        within(600, t).await.expect("writer");
    }
    let value = decode(&admin.get_data(COUNTER).await.expect("read the counter").0);
    let n = |a: &AtomicU64| a.load(Ordering::SeqCst);
    Tally { value, oks: n(&oks), hung: n(&hung), lost: n(&lost), cuts: n(&cuts) }
}

/// 8 writers × 500 increments on the embedded server (100 on a real ZooKeeper, where each lost
/// reply costs a reconnection in real time), the reply of every 10th write lost (every 4th on
/// the real one) and a cut after every 100th increment (every 25th): 400 (200) lost replies and
/// 40 (32) cuts.
async fn run(run: Run) {
    let embedded = run.env.is_embedded();
    let (each, lost_every, cut_every) = if embedded { (500, 10, 100) } else { (100, 4, 25) };
    let run = Arc::new(run);
    let t = increments(&run, each, true, lost_every, cut_every).await;
    let admin = run.env.client().await;
    // The writers' markers (one each, reused) go with their sessions.
    let markers = children(&admin, "/.conclave-markers").await.len();
    assert!(markers <= run.clients.len(), "{markers} markers for {} writers", run.clients.len());
    for c in &run.clients {
        c.close().await;
    }
    no_markers_left(&admin, "/.conclave-markers").await;
    let wrong = check(t.value, t.oks, t.hung);
    println!(
        "RESULT {} backend={} writers={} increments={} value={} lost_replies={} cuts={} hung={} markers_left=0 problems={}",
        run.name,
        run.backend,
        run.clients.len(),
        t.oks,
        t.value,
        t.lost,
        t.cuts,
        t.hung,
        wrong.len()
    );
    assert!(wrong.is_empty(), "{wrong:?}");
    assert!(t.lost >= 200 && t.cuts >= 20, "{} lost replies, {} cuts", t.lost, t.cuts);
}

/// The same writers without markers (4 × 50, the reply of every 2nd write lost): a change whose
/// reply was lost is retried from its read, an increment that had been applied counts twice,
/// and the checker says so.
async fn negative_control(env: Env) -> Result<()> {
    let run = if env.is_embedded() {
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(env.client().await);
        }
        Run::embedded_with(&PLAN, env, "embedded", clients, Duration::ZERO, 0)
    } else {
        let Some(mut run) = Run::real(&PLAN).await else { return Ok(()) };
        run.clients.truncate(4);
        run
    };
    let t = increments(&Arc::new(run), 50, false, 2, 0).await;
    let wrong = check(t.value, t.oks, t.hung);
    assert!(!wrong.is_empty(), "without markers, {} increments counted {}: the checker saw nothing", t.oks, t.value);
    assert!(t.value > t.oks as i64, "double counts, not lost ones: {} for {}", t.value, t.oks);
    Ok(())
}
