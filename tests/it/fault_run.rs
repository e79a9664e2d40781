//! Randomized fault runs: 8 clients doing mixed operations while connections are cut and stalled
//! at random. Every operation must end (none hangs) with success or an error its kind allows
//! (`ConnectionLoss`, or the logic errors concurrent work causes); sessions survive.
//!
//! - On the embedded server, in virtual time: 60 s and 1000 faults through the server's fault
//!   hooks (a few seconds of real time).
//! - On both backends in real time, through one `testing::Proxy` per client: 12 s and about 150
//!   faults in CI; `CONCLAVE_SOAK=k` multiplies duration and faults by k.
//!
//! Each run prints one `RESULT fault_run ...` line with its figures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave::{Client, CreateMode, Op, SessionState};
use conclave_core::{Error, Result};
use tokio::time::Instant;

use crate::support::stress::Rng;
use crate::support::{within, Env};

const CLIENTS: usize = 8;

/// What a run observed.
#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    ok: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    unexpected: Mutex<Vec<String>>,
    max_latency: Mutex<Duration>,
}

impl Tally {
    fn record(&self, op: &str, started: Instant, outcome: std::result::Result<(), Error>) {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let latency = started.elapsed();
        {
            let mut max = self.max_latency.lock().expect("lock");
            *max = (*max).max(latency);
        }
        match outcome {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let expected = matches!(
                    e,
                    Error::ConnectionLoss | Error::NodeExists | Error::NoNode | Error::BadVersion | Error::NotEmpty
                ) || matches!(&e, Error::MultiFailed { source, .. } if matches!(**source, Error::NodeExists | Error::NoNode | Error::BadVersion));
                *self
                    .errors
                    .lock()
                    .expect("lock")
                    .entry(format!("{e:?}").split(['(', ' ', '{']).next().unwrap_or("?").to_string())
                    .or_default() += 1;
                if !expected {
                    self.unexpected.lock().expect("lock").push(format!("{op}: {e}"));
                }
            }
        }
    }
}

/// One operation of a workload, type-erased.
type OpFuture = std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<(), Error>> + Send>>;

/// One client's workload until `stop`: random operations on its own subtree and a shared one.
async fn workload(c: Client, me: usize, seed: u64, stop: Arc<AtomicBool>, tally: Arc<Tally>, pace: Duration) {
    let mut rng = Rng(seed | 1);
    let mine = format!("/c{me}");
    let _ = c.create(&mine, b"", CreateMode::Persistent).await;
    while !stop.load(Ordering::Relaxed) {
        let n = rng.below(16);
        let node = format!("{mine}/n{n}");
        let shared = format!("/shared/s{}", rng.below(8));
        let started = Instant::now();
        let (op, fut): (&str, OpFuture) = match rng.below(9) {
            0 => (
                "create",
                Box::pin({
                    let f = c.create(&node, b"v", CreateMode::Persistent);
                    async move { f.await.map(|_| ()) }
                }),
            ),
            1 => (
                "create-ephemeral-seq",
                Box::pin({
                    let f = c.create(&format!("{mine}/e-"), b"", CreateMode::EphemeralSequential);
                    async move { f.await.map(|_| ()) }
                }),
            ),
            2 => (
                "get",
                Box::pin({
                    let f = c.get_data(&node);
                    async move { f.await.map(|_| ()) }
                }),
            ),
            3 => (
                "set",
                Box::pin({
                    let f = c.set_data(&node, b"w", None);
                    async move { f.await.map(|_| ()) }
                }),
            ),
            4 => (
                "set-versioned",
                Box::pin({
                    let f = c.set_data(&shared, b"x", Some(rng.below(3) as i32));
                    async move { f.await.map(|_| ()) }
                }),
            ),
            5 => ("delete", Box::pin(c.delete(&node, None))),
            6 => (
                "children",
                Box::pin({
                    let f = c.get_children(&mine);
                    async move { f.await.map(|_| ()) }
                }),
            ),
            7 => (
                "exists-watch",
                Box::pin({
                    let f = c.exists_and_watch(&shared);
                    async move { f.await.map(|_| ()) }
                }),
            ),
            _ => (
                "multi",
                Box::pin({
                    let f = c.multi([
                        Op::create(node.clone(), b"m".to_vec(), CreateMode::Persistent),
                        Op::delete(node.clone(), None),
                    ]);
                    async move { f.await.map(|_| ()) }
                }),
            ),
        };
        match tokio::time::timeout(Duration::from_secs(60), fut).await {
            Ok(outcome) => tally.record(op, started, outcome),
            Err(_) => tally.unexpected.lock().expect("lock").push(format!("{op} hung for 60 s")),
        }
        tokio::time::sleep(pace).await;
    }
}

/// Runs the workload on `clients` while `inject` injects one fault per call, `faults` times
/// over `duration`; checks and reports.
async fn run(
    name: &str,
    clients: Vec<Client>,
    duration: Duration,
    faults: u32,
    mut inject: impl FnMut(&mut Rng, usize) -> &'static str,
    pace: Duration,
) -> Result<()> {
    let seed = 0x5eed_0000 + faults as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let sessions: Vec<i64> = clients.iter().map(Client::session_id).collect();
    let setup = clients[0].clone();
    let _ = setup.create("/shared", b"", CreateMode::Persistent).await;
    for i in 0..8 {
        let _ = setup.create(&format!("/shared/s{i}"), b"", CreateMode::Persistent).await;
    }
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(workload(c.clone(), i, seed + i as u64 * 7919, stop.clone(), tally.clone(), pace)))
        .collect();
    let mut rng = Rng(seed);
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    let started = Instant::now();
    let gap = duration / faults.max(1);
    for _ in 0..faults {
        tokio::time::sleep(gap).await;
        let victim = rng.below(clients.len() as u64) as usize;
        *kinds.entry(inject(&mut rng, victim)).or_default() += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        within(120, t).await.expect("workload task");
    }
    let elapsed = started.elapsed();
    for (c, s) in clients.iter().zip(&sessions) {
        within(60, c.wait_connected()).await?;
        assert_eq!(c.session_id(), *s, "sessions survive the faults");
        assert_eq!(c.state(), SessionState::Connected);
    }
    let errors = tally.errors.lock().expect("lock").clone();
    println!(
        "RESULT fault_run backend={name} clients={} seconds={:.1} faults={} kinds={kinds:?} ops={} ok={} errors={errors:?} max_op_ms={} hung_or_unexpected={}",
        clients.len(),
        elapsed.as_secs_f64(),
        faults,
        tally.ops.load(Ordering::Relaxed),
        tally.ok.load(Ordering::Relaxed),
        tally.max_latency.lock().expect("lock").as_millis(),
        tally.unexpected.lock().expect("lock").len(),
    );
    let unexpected = tally.unexpected.lock().expect("lock").clone();
    assert!(unexpected.is_empty(), "unexpected outcomes: {unexpected:?}");
    assert!(tally.ops.load(Ordering::Relaxed) > 0);
    for c in clients {
        c.close().await;
    }
    Ok(())
}

fn soak() -> u32 {
    std::env::var("CONCLAVE_SOAK").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

/// 60 s of virtual time with 1000 faults on the embedded server.
#[tokio::test(start_paused = true)]
async fn embedded_virtual_time_fault_run() -> Result<()> {
    let env = Env::embedded("fault-run").await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(env.client().await);
    }
    let ids: Vec<i64> = clients.iter().map(Client::session_id).collect();
    let faults = env.server().faults();
    let k = soak();
    run(
        "embedded-virtual",
        clients,
        Duration::from_secs(60) * k,
        1000 * k,
        |rng, victim| {
            if rng.below(2) == 0 {
                faults.cut_connection(ids[victim]);
                "cut"
            } else {
                faults.stall(Some(ids[victim]), Duration::from_millis(50 + rng.below(1950)));
                "stall"
            }
        },
        Duration::from_millis(5),
    )
    .await
}

async fn proxied_fault_run(env: Env, name: &str) -> Result<()> {
    let mut proxies = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (p, c) = env.proxied(env.builder()).await;
        proxies.push(p);
        clients.push(c);
    }
    let k = soak();
    run(
        name,
        clients,
        Duration::from_secs(12) * k,
        150 * k,
        |rng, victim| {
            if rng.below(2) == 0 {
                proxies[victim].cut();
                "cut"
            } else {
                proxies[victim].stall(Duration::from_millis(20 + rng.below(980)));
                "stall"
            }
        },
        Duration::from_millis(2),
    )
    .await
}

/// Real time, through proxies, on the embedded server over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_proxied_fault_run() -> Result<()> {
    proxied_fault_run(Env::embedded("fault-run-tcp").await, "embedded-proxied").await
}

/// Real time, through proxies, on a real ZooKeeper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_zookeeper_proxied_fault_run() -> Result<()> {
    match Env::real("fault-run-real", false).await {
        Some(env) => proxied_fault_run(env, "real-zookeeper-proxied").await,
        None => Ok(()),
    }
}
