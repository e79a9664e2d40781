//! The cache stress run: 4 writer sessions make 10 000 random writes (creates, data changes,
//! deletes) on a tree up to 4 levels deep, while a `TreeCache` on its own session follows it
//! and that session's connection is cut at least 50 times and its session expired 5 times.
//! The checker proves, from the cache's event stream and the server's tree:
//!
//! - the stream is consistent: each node is added only when absent, updated and removed only as
//!   the node it was added as (same `czxid`), each update a later state (higher `mzxid`, higher
//!   version); `Initialized` once, before any `Resynced`;
//! - what the events say is what the cache holds (the checker's model equals the snapshot);
//! - after quiescence (`sync`), the snapshot equals the server's tree exactly: the same nodes,
//!   each with the same data, version and creation.
//!
//! The run is made twice: with the cache kept by its persistent recursive watch, and by one-shot
//! watches ([`WatchMode::OneShot`]). Faults follow the writers' progress (a cut every 150 writes, an expiry every 2 000), so both
//! backends get the same number: on the embedded server in virtual time, on a real ZooKeeper
//! through proxies. The negative control shows the checker catches a duplicated `Added`, an
//! update going back, a removal of an absent node, and a stream that lost one event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave::cache::{CacheEvent, TreeCache, WatchMode};
use conclave::{Client, CreateMode, Result, ZkError};
use futures::StreamExt;

use super::{assert_mirrors, state_of, Checker};
use crate::stress_trio;
use crate::support::stress::{Fault, Plan, Rng, Run};
use crate::support::{within, Env};

/// 4 writers and the cache's session (the last), on both backends; the run's length is set by
/// the number of writes, not by time.
const PLAN: Plan = Plan {
    name: "cache_stress",
    sessions: (5, 5),
    secs: ("CONCLAVE_CACHE_STRESS_SECS", 0),
    real_secs: ("CONCLAVE_CACHE_STRESS_REAL_SECS", 0),
    faults_per_sec: (0, 0),
    lost_reply: None,
};

stress_trio!(PLAN, run, negative_control);

const WRITES: u64 = 10_000;
const CUT_EVERY: u64 = 150;
const EXPIRE_EVERY: u64 = 2_000;

/// A random path of the workload: 1 to 4 levels of `a`, `b` or `c` under `/s`.
fn random_path(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(4);
    let mut path = String::from("/s");
    for _ in 0..depth {
        path.push('/');
        path.push(['a', 'b', 'c'][rng.below(3) as usize]);
    }
    path
}

/// What the writers share: the run (its fault injector), the cache (whose session is the
/// victim), and the counts.
struct Shared {
    run: Run,
    admin: Client,
    cache: TreeCache,
    done: AtomicU64,
    cuts: AtomicU64,
    expiries: AtomicU64,
    /// One fault at a time: a cut waits until an expired session has been replaced.
    faulting: tokio::sync::Mutex<()>,
}

impl Shared {
    /// The fault due after the `n`th write, injected on the cache's current session.
    async fn fault_after(&self, n: u64) {
        let fault = match n {
            n if n.is_multiple_of(EXPIRE_EVERY) => Fault::Kill,
            n if n.is_multiple_of(CUT_EVERY) => Fault::Cut,
            _ => return,
        };
        let _turn = self.faulting.lock().await;
        let victim = self.cache.client();
        self.run.inject(fault, &self.admin, 4, &victim, None).await.expect("inject");
        if fault == Fault::Kill {
            self.expiries.fetch_add(1, Ordering::Relaxed);
            let old = victim.session_id();
            within(60, async {
                while self.cache.client().session_id() == old {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        } else {
            self.cuts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One writer's share: creates, data changes and deletes in equal parts; refusals (a missing
/// parent, an existing node, children left) are part of the workload. Every write counts
/// towards the faults, which the writer that reaches one injects.
async fn write(client: Client, seed: u64, writes: u64, shared: Arc<Shared>) -> Result<()> {
    let mut rng = Rng(seed);
    for i in 0..writes {
        let path = random_path(&mut rng);
        let data = format!("{seed}-{i}");
        let result = match rng.below(3) {
            0 => client.create(&path, data, CreateMode::Persistent).await.map(drop),
            1 => client.set_data(&path, data, None).await.map(drop),
            _ => client.delete(&path, None).await,
        };
        match result {
            Ok(()) | Err(ZkError::NoNode | ZkError::NodeExists | ZkError::NotEmpty) => {}
            Err(e) => return Err(e.into()),
        }
        let n = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
        shared.fault_after(n).await;
    }
    Ok(())
}

async fn run(run: Run) {
    stress(run, WatchMode::Auto).await;
}

/// The same run with the cache kept by one-shot watches.
#[tokio::test(start_paused = true)]
async fn stress_one_shot_embedded() {
    stress(Run::embedded(&PLAN).await, WatchMode::OneShot).await;
}

/// The same run with the cache kept by one-shot watches, on a real ZooKeeper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_one_shot_real_zookeeper() {
    if let Some(run) = Run::real(&PLAN).await {
        stress(run, WatchMode::OneShot).await;
    }
}

async fn stress(run: Run, mode: WatchMode) {
    let admin = run.env.client().await;
    admin.create("/s", "", CreateMode::Persistent).await.expect("the root");
    let writers = run.clients[..4].to_vec();
    let cache = TreeCache::builder(&run.clients[4], "/s").watch_mode(mode).start().expect("start the cache");
    let mut events = cache.events();
    let checker = Arc::new(Mutex::new(Checker::default()));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let follower = {
        let (checker, violations) = (checker.clone(), violations.clone());
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                let e = e.expect("the cache goes on");
                if let Err(why) = checker.lock().unwrap().apply(&e) {
                    violations.lock().unwrap().push(why);
                }
            }
        })
    };
    within(60, cache.initialized()).await.expect("loaded");

    let (name, backend, seed) = (run.name, run.backend, run.seed());
    let shared = Arc::new(Shared {
        run,
        admin: admin.clone(),
        cache: cache.clone(),
        done: AtomicU64::new(0),
        cuts: AtomicU64::new(0),
        expiries: AtomicU64::new(0),
        faulting: tokio::sync::Mutex::new(()),
    });
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(w, client)| tokio::spawn(write(client, seed + w as u64 + 1, WRITES / 4, shared.clone())))
        .collect();
    for task in tasks {
        task.await.expect("a writer").expect("the writer's writes");
    }
    let nodes = within(120, assert_mirrors(&cache, &admin)).await.expect("the cache equals the server");
    // The stream has everything up to the sync queued: let the follower take it in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let snapshot = cache.snapshot();
    let violations = violations.lock().unwrap().clone();
    let checker = checker.lock().unwrap();
    let (cuts, expiries) = (shared.cuts.load(Ordering::Relaxed), shared.expiries.load(Ordering::Relaxed));
    println!(
        "RESULT {name} backend={backend} watches={mode:?} writes={WRITES} cuts={cuts} expiries={expiries} nodes={nodes} events={} resyncs={} missed={} violations={}",
        checker.events,
        checker.resyncs,
        checker.missed,
        violations.len()
    );
    assert!(violations.is_empty(), "inconsistent events: {:?}", &violations[..violations.len().min(10)]);
    assert_eq!(checker.state(), state_of(&snapshot), "the events say what the cache holds");
    assert!(cuts >= 50 && expiries == 5, "{cuts} cuts, {expiries} expiries");
    assert!(checker.resyncs >= 5, "every expiry is followed by a resync ({} resyncs)", checker.resyncs);
    drop(checker);
    drop(cache);
    follower.abort();
}

/// The checker fed broken streams: it catches each, and a stream that lost an event ends with a
/// model that differs from the cache.
async fn negative_control(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/s", "", CreateMode::Persistent).await?;
    c.create("/s/a", "1", CreateMode::Persistent).await?;
    let cache = TreeCache::new(&c, "/s")?;
    let mut events = cache.events();
    within(10, cache.initialized()).await?;
    for data in ["2", "3"] {
        c.set_data("/s/a", data, None).await?;
        within(10, cache.sync()).await?;
    }
    let mut seen = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
        seen.push(e?);
    }
    let feed = |stream: &[CacheEvent]| {
        let mut checker = Checker::default();
        stream.iter().try_for_each(|e| checker.apply(e)).map(|()| checker)
    };
    let good = feed(&seen).expect("the real stream passes");
    assert_eq!(good.state(), state_of(&cache.snapshot()));
    let updates: Vec<_> = seen.iter().filter(|e| matches!(e, CacheEvent::Updated { .. })).cloned().collect();
    assert_eq!(updates.len(), 2, "{seen:?}");

    let added = seen.iter().find(|e| e.path() == Some("/s/a")).cloned().expect("/s/a added");
    let mut duplicated = seen.clone();
    duplicated.push(added.clone());
    assert!(feed(&duplicated).is_err(), "a second Added is caught");

    let mut back = seen.clone();
    back.push(updates[0].clone());
    assert!(feed(&back).is_err(), "an update to an older state is caught");

    let mut phantom = seen.clone();
    phantom.push(CacheEvent::Removed { path: "/s/never".into(), node: added.node().cloned().expect("a node") });
    assert!(feed(&phantom).is_err(), "removing an absent node is caught");

    let lost: Vec<_> = seen.iter().filter(|e| **e != updates[1]).cloned().collect();
    let lossy = feed(&lost).expect("a stream missing its last update is consistent by itself");
    assert_ne!(lossy.state(), state_of(&cache.snapshot()), "but its model differs from the cache");
    Ok(())
}
