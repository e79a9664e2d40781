//! The lock stress run: 16 contenders (sessions) on one `Mutex` while
//! connections are cut and stalled, sessions killed, create replies lost and holders' nodes
//! deleted under them, at random. Then a checker proves, from what was logged:
//!
//! - no double hold: every acquisition is logged with its fencing token and its holder interval
//!   `[acquired, end]` on one logical clock, where `end` is the first of `lost()` resolving, the
//!   start of the release, and the moment the injector killed the session or deleted the node
//!   (the token's end of validity, which a paused holder may learn late). Ordered by token, each
//!   interval must end before the next one starts;
//! - no stale write: each holder appends its token to a store through fenced creates
//!   (sequential nodes, so the store keeps the order in which the server accepted them); the
//!   tokens in that order must never go backwards. Some holders ("zombies") ignore `lost()` and
//!   keep writing: their late writes are refused by the fence (`fence_rejects`);
//! - nothing lost: every `lock()` call returned a guard or a session error (none hung), every
//!   contender got the lock, and the lock directory is empty at the end.
//!
//! The three tests come from `stress_trio!` (`support::stress`): the embedded run in virtual time
//! (`CONCLAVE_LOCK_STRESS_SECS` of it, default 20), a shorter real-time run on a real ZooKeeper
//! through one `testing::Proxy` per session (`CONCLAVE_LOCK_STRESS_REAL_SECS`, default 8), each
//! printing one `RESULT lock_stress` line, and the negative control, which feeds the checker a
//! holder that ignores its loss and writes unfenced, and sees the checker report it. A fourth run
//! puts the lock directory's sequence counter where ZooKeeper 3.8's sticks.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use conclave::leader::Election;
use conclave::lock::{LockGuard, LossReason, Mutex};
use conclave::proto::OpCode;
use conclave::{Client, CreateMode, Error, Result, ZkError};
use tokio::time::Instant;

use super::children;
use crate::stress_trio;
use crate::support::stress::{Fault, Plan, Rng, Run};
use crate::support::{within, Env};

/// 16 sessions on the embedded server for 20 virtual seconds, 200 faults; 8 sessions through
/// proxies on a real ZooKeeper for 8 s, 40 faults.
const PLAN: Plan = Plan {
    name: "lock_stress",
    sessions: (16, 8),
    secs: ("CONCLAVE_LOCK_STRESS_SECS", 20),
    real_secs: ("CONCLAVE_LOCK_STRESS_REAL_SECS", 8),
    faults_per_sec: (10, 5),
    lost_reply: Some(OpCode::Create2),
};

stress_trio!(PLAN, run, negative_control);

/// What the contenders contend for: the lock, or (for the leader family's stress run, which
/// shares this harness) the leadership of an election, whose leaders are checked the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contended {
    /// `Mutex::lock` on [`DIR`].
    Mutex,
    /// `Election::campaign` on [`ELECTION`]; a leadership's hold is checked as a lock's.
    Election,
}

impl Contended {
    fn dir(self) -> &'static str {
        match self {
            Contended::Mutex => DIR,
            Contended::Election => ELECTION,
        }
    }

    /// One acquisition by `who` on `client`.
    async fn acquire(self, client: &Client, who: usize) -> Result<LockGuard> {
        match self {
            Contended::Mutex => Mutex::new(client.clone(), DIR).lock().await,
            Contended::Election => Election::new(client.clone(), ELECTION)
                .with_id(format!("p{who}"))
                .campaign()
                .await
                .map(|l| l.into_hold()),
        }
    }
}

const DIR: &str = "/lock";
const ELECTION: &str = "/election";
const STORE: &str = "/store";
/// How long one `lock()` may take before it counts as lost.
const LOCK_LIMIT: Duration = Duration::from_secs(120);

/// One acquisition.
#[derive(Debug, Clone)]
struct Hold {
    who: usize,
    session: i64,
    path: String,
    token: u64,
    acquired: u64,
    /// When `lost()` resolved (while held).
    lost: Option<(u64, LossReason)>,
    /// When the release (or drop) started.
    released: Option<u64>,
}

/// Everything a run observed, on one logical clock.
#[derive(Default)]
struct Log {
    clock: AtomicU64,
    holds: StdMutex<Vec<Hold>>,
    /// Sessions killed by the injector, when.
    kills: StdMutex<HashMap<i64, u64>>,
    /// Lock nodes deleted by the injector, when.
    deletes: StdMutex<HashMap<String, u64>>,
    /// The current holder (who, path), for the injector to aim at.
    holder: StdMutex<Option<(usize, String)>>,
    calls: AtomicU64,
    guards: AtomicU64,
    hung: AtomicU64,
    accepted: AtomicU64,
    fence_rejects: AtomicU64,
    outcomes: StdMutex<BTreeMap<String, u64>>,
    unexpected: StdMutex<Vec<String>>,
}

/// The variant name of an error (`SessionExpired`, `Lost`, ...), the core one's for a
/// wrapped core error.
fn kind(e: &(impl std::fmt::Debug + ?Sized)) -> String {
    let text = format!("{e:?}");
    let text = text.strip_prefix("Zk(").unwrap_or(&text);
    text.split(['(', ' ', '{']).next().unwrap_or("?").to_string()
}

impl Log {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn count(&self, what: String) {
        *self.outcomes.lock().expect("log").entry(what).or_default() += 1;
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().expect("log").push(what);
    }

    fn acquired(&self, who: usize, g: &LockGuard) -> usize {
        let hold = Hold {
            who,
            session: g.client().session_id(),
            path: g.path().to_string(),
            token: g.fencing_token(),
            acquired: self.tick(),
            lost: None,
            released: None,
        };
        *self.holder.lock().expect("log") = Some((who, hold.path.clone()));
        let mut holds = self.holds.lock().expect("log");
        holds.push(hold);
        holds.len() - 1
    }

    fn lost(&self, i: usize, reason: LossReason) {
        let t = self.tick();
        let mut holds = self.holds.lock().expect("log");
        holds[i].lost.get_or_insert((t, reason));
    }

    fn is_lost(&self, i: usize) -> bool {
        self.holds.lock().expect("log")[i].lost.is_some()
    }

    fn released(&self, i: usize) {
        let t = self.tick();
        let mut holds = self.holds.lock().expect("log");
        holds[i].released.get_or_insert(t);
        let mut holder = self.holder.lock().expect("log");
        if holder.as_ref().is_some_and(|(_, p)| *p == holds[i].path) {
            *holder = None;
        }
    }

    fn killed(&self, session: i64) {
        let t = self.tick();
        self.kills.lock().expect("log").entry(session).or_insert(t);
    }

    fn deleted(&self, path: &str) {
        let t = self.tick();
        self.deletes.lock().expect("log").entry(path.to_string()).or_insert(t);
    }

    /// The holds whose interval starts before an earlier token's interval ended.
    fn double_holds(&self) -> Vec<String> {
        let kills = self.kills.lock().expect("log").clone();
        let deletes = self.deletes.lock().expect("log").clone();
        let mut holds = self.holds.lock().expect("log").clone();
        holds.sort_by_key(|h| h.token);
        let mut out = Vec::new();
        let mut latest: Option<(u64, &Hold)> = None;
        for h in &holds {
            if let Some((end, prev)) = latest {
                if end > h.acquired {
                    out.push(format!("{prev:?} still held at {end} when {h:?} acquired"));
                }
            }
            let invalidated = [kills.get(&h.session), deletes.get(&h.path)].into_iter().flatten();
            let end = [h.lost.map(|(t, _)| t), h.released]
                .into_iter()
                .flatten()
                .chain(invalidated.copied().filter(|&t| t > h.acquired))
                .min()
                .unwrap_or(u64::MAX);
            if latest.is_none_or(|(e, _)| end > e) {
                latest = Some((end, h));
            }
        }
        out
    }
}

/// The tokens in the store, in the order the server accepted them; and how many went backwards.
async fn store(client: &Client) -> (Vec<u64>, usize) {
    let mut entries: Vec<(i32, u64)> = children(client, STORE)
        .await
        .iter()
        .map(|n| {
            let (token, seq) = n.strip_prefix('t').and_then(|n| n.split_once('-')).expect("t<token>-<seq>");
            (seq.parse().expect("a sequence"), token.parse().expect("a token"))
        })
        .collect();
    entries.sort();
    let tokens: Vec<u64> = entries.into_iter().map(|(_, t)| t).collect();
    let mut max = 0;
    let mut stale = 0;
    for &t in &tokens {
        if t < max {
            stale += 1;
        }
        max = max.max(t);
    }
    (tokens, stale)
}

/// Appends `token` to the store, fenced by `g` (or not).
async fn write(g: &LockGuard, fenced: bool) -> Result<()> {
    let path = format!("{STORE}/t{:020}-", g.fencing_token());
    if fenced {
        g.fenced().create(&path, b"".to_vec(), CreateMode::PersistentSequential).commit().await.map(drop)
    } else {
        Ok(g.client().create(&path, b"", CreateMode::PersistentSequential).await.map(drop)?)
    }
}

/// Holds `g` for a few fenced writes (or until `lost()`, unless a zombie), then releases it.
async fn hold(log: &Arc<Log>, who: usize, g: LockGuard, rng: &mut Rng) {
    let i = log.acquired(who, &g);
    let lost = g.lost();
    let recorder = {
        let log = log.clone();
        tokio::spawn(async move {
            let reason = lost.await;
            log.lost(i, reason);
        })
    };
    let zombie = rng.below(5) == 0;
    for _ in 0..1 + rng.below(3) {
        tokio::time::sleep(Duration::from_millis(rng.below(8))).await;
        if !zombie && log.is_lost(i) {
            break;
        }
        match write(&g, true).await {
            Ok(()) => {
                log.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(Error::Lost { .. }) => {
                log.fence_rejects.fetch_add(1, Ordering::Relaxed);
            }
            Err(e @ Error::Zk(ZkError::ConnectionLoss | ZkError::SessionExpired)) => {
                log.count(format!("write:{}", kind(&e)))
            }
            Err(e) => log.unexpected(format!("fenced write of {}: {e}", g.path())),
        }
    }
    log.released(i);
    if rng.below(3) == 0 {
        drop(g);
        log.count("release:drop".into());
    } else {
        match g.release().await {
            Ok(()) => log.count("release:ok".into()),
            Err(e @ (Error::Lost { .. } | Error::Zk(ZkError::SessionExpired))) => {
                log.count(format!("release:{}", kind(&e)))
            }
            Err(e) => log.unexpected(format!("release: {e}")),
        }
    }
    recorder.abort();
}

/// One contender: lock (or campaign), hold, release, until `stop`; a new session when its
/// session ended.
async fn contender(
    what: Contended,
    who: usize,
    current: Arc<StdMutex<Client>>,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = Rng(seed | 1);
    let mut client = current.lock().expect("client").clone();
    while !stop.load(Ordering::Relaxed) {
        if client.state().is_terminal() {
            client = loop {
                match client.reconnect_new_session().await {
                    Ok(c) => break c,
                    Err(e) => {
                        log.count(format!("new-session:{}", kind(&e)));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            };
            *current.lock().expect("client") = client.clone();
        }
        log.calls.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(LOCK_LIMIT, what.acquire(&client, who)).await {
            Err(_) => {
                log.hung.fetch_add(1, Ordering::Relaxed);
                log.unexpected(format!("contender {who}: lock() hung for {LOCK_LIMIT:?}"));
            }
            Ok(Err(e)) => {
                log.count(format!("lock:{}", kind(&e)));
                if e != ZkError::SessionExpired {
                    log.unexpected(format!("contender {who}: lock(): {e}"));
                }
            }
            Ok(Ok(g)) => {
                log.guards.fetch_add(1, Ordering::Relaxed);
                hold(&log, who, g, &mut rng).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.below(5))).await;
    }
}

/// The lock's run.
async fn run(run: Run) {
    run_as(run, Contended::Mutex).await;
}

/// Runs the contenders for the run's length while its faults are injected, checks, and
/// prints the figures.
pub(crate) async fn run_as(run: Run, what: Contended) {
    let env = &run.env;
    let admin = env.client().await;
    admin.create(STORE, b"", CreateMode::Persistent).await.expect("create the store");
    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let current: Vec<Arc<StdMutex<Client>>> = run.clients.iter().map(|c| Arc::new(StdMutex::new(c.clone()))).collect();
    let (duration, faults) = (run.duration, run.faults);
    let seed = run.seed();
    let tasks: Vec<_> = current
        .iter()
        .enumerate()
        .map(|(who, c)| {
            tokio::spawn(contender(what, who, c.clone(), log.clone(), stop.clone(), seed + who as u64 * 7919))
        })
        .collect();
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let gap = duration / faults.max(1) as u32;
    for _ in 0..faults {
        tokio::time::sleep(gap).await;
        // Half of the faults hit the holder.
        let holder = log.holder.lock().expect("log").as_ref().map(|(who, _)| *who);
        let victim = match holder {
            Some(who) if rng.below(2) == 0 => who,
            _ => rng.below(current.len() as u64) as usize,
        };
        let client = current[victim].lock().expect("client").clone();
        let fault = run.draw(&mut rng);
        let holder = log.holder.lock().expect("log").as_ref().map(|(_, path)| path.clone());
        match fault {
            Fault::Kill => log.killed(client.session_id()),
            Fault::Delete => holder.iter().for_each(|path| log.deleted(path)),
            _ => {}
        }
        if let Err(e) = run.inject(fault, &admin, victim, &client, holder.as_deref()).await {
            log.count(format!("{}-failed:{}", fault.name(), kind(&e)));
        }
        *kinds.entry(fault.name()).or_default() += 1;
    }
    tokio::time::sleep_until(started + duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        within(600, t).await.expect("contender task");
    }
    let seconds = started.elapsed().as_secs_f64();
    // Every node was released (dropped guards' deletes may still be on their way).
    let left = within(60, async {
        loop {
            let left = children(&admin, what.dir()).await;
            if left.is_empty() {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (tokens, stale) = store(&admin).await;
    let double = log.double_holds();
    let holds = log.holds.lock().expect("log").clone();
    let calls = log.calls.load(Ordering::Relaxed);
    let guards = log.guards.load(Ordering::Relaxed);
    let outcomes = log.outcomes.lock().expect("log").clone();
    let errors: u64 = outcomes.iter().filter(|(k, _)| k.starts_with("lock:")).map(|(_, n)| n).sum();
    let lost = calls - guards - errors;
    println!(
        "RESULT {} backend={} contenders={} seconds={seconds:.1} acq={guards} faults={faults} kinds={kinds:?} double_holds={} stale_accepted={stale} fence_rejects={} accepted_writes={} store_entries={} lost={lost} hung={} outcomes={outcomes:?}",
        run.name,
        run.backend,
        current.len(),
        double.len(),
        log.fence_rejects.load(Ordering::Relaxed),
        log.accepted.load(Ordering::Relaxed),
        tokens.len(),
        log.hung.load(Ordering::Relaxed),
    );
    let unexpected = log.unexpected.lock().expect("log").clone();
    assert!(unexpected.is_empty(), "unexpected outcomes: {unexpected:#?}");
    assert!(double.is_empty(), "double holds: {double:#?}");
    assert_eq!(stale, 0, "the store went backwards: {tokens:?}");
    assert_eq!(lost, 0, "lock() calls without an outcome");
    assert!(left.is_empty());
    let mut sorted: Vec<u64> = holds.iter().map(|h| h.token).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), holds.len(), "each acquisition has a token of its own");
    let mut held = vec![0u32; current.len()];
    for h in &holds {
        held[h.who] += 1;
    }
    assert!(held.iter().all(|&n| n > 0), "every contender got the lock: {held:?}");
    assert!(tokens.len() as u64 >= log.accepted.load(Ordering::Relaxed));
}

/// The same run with the lock directory's sequence counter at `i32::MAX`, where ZooKeeper 3.8's
/// counter sticks: every contender's node gets the suffix 2147483647, and only their creation
/// order (czxid) tells who came first. The lock must still exclude.
#[tokio::test(start_paused = true)]
async fn lock_stress_with_a_stuck_sequence_counter() {
    let env = Env::embedded("lock-stress-stuck").await;
    let admin = env.client().await;
    admin.create(DIR, b"", CreateMode::Persistent).await.expect("create the lock directory");
    assert!(env.server().faults().set_cversion(&format!("{}{DIR}", env.root), i32::MAX));
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(env.client().await);
    }
    let stuck = Run::embedded_with(&PLAN, env, "embedded-virtual-stuck-counter", clients, Duration::from_secs(5), 0);
    run(stuck).await;
}

/// The lock's negative control.
async fn negative_control(env: Env) -> Result<()> {
    negative_control_as(env, Contended::Mutex).await
}

/// The negative control: a holder that ignores `lost()` (its node was deleted under it) and
/// keeps writing. Its fenced write is refused; its unfenced write is accepted after the next
/// holder's, and the store check reports it; its interval, ended only by its own release,
/// overlaps the next holder's, and the interval check reports it. Had it stopped at `lost()`,
/// the interval check would find nothing.
pub(crate) async fn negative_control_as(env: Env, what: Contended) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let admin = env.client().await;
    admin.create(STORE, b"", CreateMode::Persistent).await?;
    let log = Log::default();
    let ga = within(10, what.acquire(&a, 0)).await?;
    let ia = log.acquired(0, &ga);
    write(&ga, true).await?;
    let lost = ga.lost();
    admin.delete(ga.path(), None).await?;
    let reason = within(10, lost).await;
    assert_eq!(reason, LossReason::NodeDeleted);
    let gb = within(10, what.acquire(&b, 1)).await?;
    let ib = log.acquired(1, &gb);
    write(&gb, true).await?;
    // The zombie writes on.
    assert!(matches!(write(&ga, true).await, Err(Error::Lost { .. })), "the fence refuses it");
    write(&ga, false).await?;
    log.released(ia);
    log.released(ib);
    let (tokens, stale) = store(&admin).await;
    assert_eq!(tokens, [ga.fencing_token(), gb.fencing_token(), ga.fencing_token()]);
    assert_eq!(stale, 1, "the unfenced stale write is caught");
    assert_eq!(log.double_holds().len(), 1, "the overlap is caught");
    // The same holder honouring lost() (its interval ends when lost() resolved, before the
    // next acquisition) is not reported.
    let honest = Log::default();
    let ia = honest.acquired(0, &ga);
    honest.lost(ia, reason);
    let ib = honest.acquired(1, &gb);
    honest.released(ia);
    honest.released(ib);
    assert_eq!(honest.double_holds(), Vec::<String>::new());
    assert!(matches!(ga.release().await, Err(Error::Lost { .. })));
    gb.release().await?;
    println!(
        "RESULT {}_stress_negative_control backend={} double_holds=1 stale_accepted={stale} fence_rejects=1",
        if what == Contended::Mutex { "lock" } else { "leader" },
        if env.is_embedded() { "embedded" } else { "real-zookeeper" }
    );
    Ok(())
}
