//! The claim stress run: consumers on their own sessions claim, work on and ack the items a
//! producer keeps putting, while their connections are cut and stalled, their sessions killed,
//! their own claim nodes deleted, transaction replies lost after the server applied them, and
//! some of them drop a claim mid-item the way a crashing process would. Then the checker
//! ([`check`]) proves from the log:
//!
//! - nothing lost: every item put was acked, exactly once (an ack that succeeded);
//! - no double hand-out to live consumers: the claims of one item, in token order, all ended
//!   without an ack (dropped, released, or their ack refused because the claim was lost) except
//!   the last, which acked. An item is handed out again only after its claimant died (session
//!   killed), dropped it, gave it back, or lost its claim node; an ack from a superseded
//!   claimant would show as an acked claim that is not the last, and fails the check;
//! - every call returned: none of `claim` or `ack` hung.
//!
//! The three tests come from `stress_trio!` (`support::stress`): the embedded run in virtual time
//! (`CONCLAVE_QUEUE_STRESS_SECS`, default 30, about 240 faults), a shorter real-time run on a
//! real ZooKeeper through one proxy per session (`CONCLAVE_QUEUE_STRESS_REAL_SECS`, default 8),
//! each printing a `RESULT queue_stress` line, and the negative control: an unfenced ack by a
//! claimant whose claim was taken over, which the checker reports (and the fenced ack, which it
//! passes), on both backends.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use conclave::proto::OpCode;
use conclave::queue::{Claim, Queue};
use conclave::{Client, Error, Result, ZkError};
use tokio::time::Instant;

use crate::stress_trio;
use crate::support::stress::{Plan, Rng, Run};
use crate::support::{within, Env};

/// 6 consumer sessions on the embedded server for 30 virtual seconds, 8 faults a second; 4
/// through proxies on a real ZooKeeper for 8 s, 5 a second.
const PLAN: Plan = Plan {
    name: "queue_stress",
    sessions: (6, 4),
    secs: ("CONCLAVE_QUEUE_STRESS_SECS", 30),
    real_secs: ("CONCLAVE_QUEUE_STRESS_REAL_SECS", 8),
    faults_per_sec: (8, 5),
    lost_reply: Some(OpCode::Multi),
};

stress_trio!(PLAN, run, negative_control);

const PATH: &str = "/work";
/// Longer than any call may take (a session timeout and a reconnection, several times over).
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// How one claim ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    Acked,
    /// The ack was refused (the claim was lost), with the error's kind.
    AckRefused(String),
    /// The session ended while the ack was in flight: it may or may not have been applied.
    AckUnknown,
    Released,
    Dropped,
}

/// One claim, as its consumer saw it.
#[derive(Debug, Clone)]
struct Record {
    item: String,
    token: u64,
    who: usize,
    end: Option<End>,
}

#[derive(Default)]
struct Log {
    claims: StdMutex<Vec<Record>>,
    /// Own nodes of the claims in progress, by consumer (the `Delete` fault's targets).
    open: StdMutex<HashMap<usize, String>>,
    outcomes: StdMutex<BTreeMap<String, u64>>,
    unexpected: StdMutex<Vec<String>>,
    hung: AtomicU64,
}

impl Log {
    fn claimed(&self, who: usize, claim: &Claim) -> usize {
        let mut claims = self.claims.lock().expect("log");
        let item = String::from_utf8_lossy(claim.data()).into_owned();
        claims.push(Record { item, token: claim.fencing_token(), who, end: None });
        self.open.lock().expect("log").insert(who, claim.hold().path().to_string());
        claims.len() - 1
    }

    fn ended(&self, i: usize, end: End) {
        let mut claims = self.claims.lock().expect("log");
        self.open.lock().expect("log").remove(&claims[i].who);
        claims[i].end = Some(end);
    }

    fn count(&self, what: String) {
        *self.outcomes.lock().expect("log").entry(what).or_default() += 1;
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().expect("log").push(what);
    }
}

fn kind(e: &Error) -> String {
    let s = format!("{e:?}");
    s.split(|c: char| !c.is_alphanumeric()).find(|w| !w.is_empty() && *w != "Zk").unwrap_or("?").to_string()
}

/// What is wrong with the claims of `records`, given the items put (see the module doc).
fn check(records: &[Record], put: &[String]) -> Vec<String> {
    let mut by_item: HashMap<&str, Vec<&Record>> = HashMap::new();
    for r in records {
        by_item.entry(r.item.as_str()).or_default().push(r);
    }
    let mut wrong = Vec::new();
    for item in put {
        let Some(mut claims) = by_item.remove(item.as_str()) else {
            wrong.push(format!("{item}: never claimed (lost)"));
            continue;
        };
        claims.sort_by_key(|r| r.token);
        // The last claim acked, or acked with its outcome unknown (then it was applied: nobody
        // claimed the item after it, and the item is gone at the end). Every earlier claim
        // ended without an ack that was applied: its claimant died, dropped it, gave it back or
        // was refused (an earlier ack that was applied would have left nothing to claim).
        let last = claims.last().expect("claimed");
        let acked = claims.iter().filter(|r| r.end == Some(End::Acked)).count();
        if acked > 1 {
            wrong.push(format!("{item}: acked {acked} times: {claims:?}"));
        } else if acked == 1 && last.end != Some(End::Acked) {
            wrong.push(format!("{item}: acked by a claimant that was superseded: {claims:?}"));
        } else if acked == 0 && last.end != Some(End::AckUnknown) {
            wrong.push(format!("{item}: never acked (lost): {claims:?}"));
        }
        if claims.iter().any(|r| r.end.is_none()) {
            wrong.push(format!("{item}: a claim without an end: {claims:?}"));
        }
        let mut tokens: Vec<u64> = claims.iter().map(|r| r.token).collect();
        tokens.dedup();
        if tokens.len() != claims.len() {
            wrong.push(format!("{item}: two claims with one token: {claims:?}"));
        }
    }
    wrong.extend(by_item.keys().map(|k| format!("{k}: claimed but never put")));
    wrong
}

/// One consumer: claim, work a little, then ack (mostly), give back, or drop the claim like a
/// crashing process; a new session when its session ended.
async fn consumer(who: usize, current: Arc<StdMutex<Client>>, log: Arc<Log>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = Rng(seed | 1);
    let mut client = current.lock().expect("client").clone();
    let mut queue = Queue::new(client.clone(), PATH);
    while !stop.load(Ordering::Relaxed) {
        if client.state().is_terminal() {
            client = loop {
                match client.reconnect_new_session().await {
                    Ok(c) => break c,
                    Err(e) => {
                        log.count(format!("new-session:{}", kind(&e.into())));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            };
            *current.lock().expect("client") = client.clone();
            queue = Queue::new(client.clone(), PATH);
        }
        let claim = match tokio::time::timeout(CALL_LIMIT, queue.claim_timeout(Duration::from_millis(300))).await {
            Err(_) => {
                log.hung.fetch_add(1, Ordering::Relaxed);
                log.unexpected(format!("consumer {who}: claim() hung"));
                continue;
            }
            Ok(Err(e)) => {
                log.count(format!("claim:{}", kind(&e)));
                if !e.is_terminal() {
                    log.unexpected(format!("consumer {who}: claim(): {e}"));
                }
                continue;
            }
            Ok(Ok(None)) => continue,
            Ok(Ok(Some(claim))) => claim,
        };
        let i = log.claimed(who, &claim);
        tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
        match rng.below(20) {
            0 => {
                drop(claim);
                log.ended(i, End::Dropped);
            }
            1 => match claim.release().await {
                Ok(()) => log.ended(i, End::Released),
                Err(e) => {
                    log.count(format!("release:{}", kind(&e)));
                    log.ended(i, End::Dropped);
                }
            },
            _ => match tokio::time::timeout(CALL_LIMIT, claim.ack()).await {
                Err(_) => {
                    log.hung.fetch_add(1, Ordering::Relaxed);
                    log.unexpected(format!("consumer {who}: ack() hung"));
                    log.ended(i, End::Dropped);
                }
                Ok(Ok(())) => log.ended(i, End::Acked),
                Ok(Err(e)) => {
                    log.count(format!("ack:{}", kind(&e)));
                    if e.is_terminal() {
                        log.ended(i, End::AckUnknown);
                    } else {
                        if !matches!(e, Error::Lost { .. }) {
                            log.unexpected(format!("consumer {who}: ack(): {e}"));
                        }
                        log.ended(i, End::AckRefused(kind(&e)));
                    }
                }
            },
        }
    }
}

/// The run: a producer puts an item every 25 ms during the fault phase; then the consumers
/// finish the queue, and the checker runs.
async fn run(run: Run) {
    let env = &run.env;
    let admin = env.client().await;
    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let current: Vec<Arc<StdMutex<Client>>> = run.clients.iter().map(|c| Arc::new(StdMutex::new(c.clone()))).collect();
    let seed = run.seed();
    let consumers: Vec<_> = current
        .iter()
        .enumerate()
        .map(|(who, c)| tokio::spawn(consumer(who, c.clone(), log.clone(), stop.clone(), seed + who as u64 * 7919)))
        .collect();
    let started = Instant::now();
    let (duration, faults) = (run.duration, run.faults);
    let producer = {
        let queue = Queue::new(env.client().await, PATH);
        tokio::spawn(async move {
            let mut put = Vec::new();
            let mut n = 0;
            while started.elapsed() < duration {
                let item = format!("item-{n}");
                n += 1;
                match queue.put(item.clone()).await {
                    Ok(_) => put.push(item),
                    Err(e) => panic!("put: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            put
        })
    };
    let mut rng = Rng(seed);
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let gap = duration / faults.max(1) as u32;
    for _ in 0..faults {
        tokio::time::sleep(gap).await;
        let victim = rng.below(current.len() as u64) as usize;
        let client = current[victim].lock().expect("client").clone();
        let fault = run.draw(&mut rng);
        let node = log.open.lock().expect("log").get(&victim).cloned();
        if let Err(e) = run.inject(fault, &admin, victim, &client, node.as_deref()).await {
            log.count(format!("{}-failed:{}", fault.name(), kind(&e.into())));
        }
        *kinds.entry(fault.name()).or_default() += 1;
    }
    let put = within(600, producer).await.expect("producer");
    // Quiescence: the consumers finish the queue.
    let drained = within(300, async {
        loop {
            match admin.get_children(PATH).await {
                Ok(c) if c.is_empty() => return,
                Ok(_) | Err(ZkError::ConnectionLoss) => {}
                Err(e) => panic!("list: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    drained.await;
    stop.store(true, Ordering::Relaxed);
    for t in consumers {
        within(600, t).await.expect("consumer task");
    }
    let seconds = started.elapsed().as_secs_f64();
    let records = log.claims.lock().expect("log").clone();
    let wrong = check(&records, &put);
    let acked = records.iter().filter(|r| r.end == Some(End::Acked)).count();
    let again = records.len() - put.len();
    println!(
        "RESULT {} backend={} consumers={} seconds={seconds:.1} items={} claims={} acked={acked} handed_out_again={again} faults={faults} kinds={kinds:?} problems={} hung={} outcomes={:?}",
        run.name,
        run.backend,
        current.len(),
        put.len(),
        records.len(),
        wrong.len(),
        log.hung.load(Ordering::Relaxed),
        log.outcomes.lock().expect("log"),
    );
    let unexpected = log.unexpected.lock().expect("log").clone();
    assert!(unexpected.is_empty(), "unexpected outcomes: {unexpected:#?}");
    assert!(wrong.is_empty(), "{} problems, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    assert!(!put.is_empty());
}

/// A claimant whose claim was taken over (its own node deleted by an operator, the item then
/// claimed by another) acks *unfenced*, deleting the item with everything under it: the checker
/// reports an ack by a superseded claimant. The same story with the real, fenced `ack` passes.
async fn negative_control(env: Env) -> Result<()> {
    for fenced in [false, true] {
        let path = if fenced { "/control-fenced" } else { "/control-unfenced" };
        let (a, b, admin) = (env.client().await, env.client().await, env.client().await);
        Queue::new(admin.clone(), path).put("x").await?;
        let first = Queue::new(a.clone(), path).claim().await?;
        let item = first.item().path().to_string();
        admin.delete(first.hold().path(), None).await?;
        admin.delete(&format!("{item}/claim"), None).await?;
        let second = Queue::new(b, path).claim().await?;
        let mut records = vec![
            Record { item: "x".into(), token: first.fencing_token(), who: 0, end: None },
            Record { item: "x".into(), token: second.fencing_token(), who: 1, end: None },
        ];
        if fenced {
            records[0].end = Some(match first.ack().await {
                Ok(()) => End::Acked,
                Err(e) => End::AckRefused(kind(&e)),
            });
        } else {
            a.delete_all(&item).await?;
            records[0].end = Some(End::Acked);
            drop(first);
        }
        records[1].end = Some(match second.ack().await {
            Ok(()) => End::Acked,
            Err(e) => End::AckRefused(kind(&e)),
        });
        let wrong = check(&records, &["x".to_string()]);
        if fenced {
            assert!(wrong.is_empty(), "{wrong:?}");
        } else {
            assert!(wrong.iter().any(|w| w.contains("superseded")), "the checker missed it: {wrong:?}");
        }
    }
    // A lost item and a doubled ack are reported too.
    let acked = |item: &str, token| Record { item: item.into(), token, who: 0, end: Some(End::Acked) };
    let wrong = check(&[acked("a", 1), acked("a", 2)], &["a".into(), "b".into()]);
    assert_eq!(wrong.len(), 2, "{wrong:?}");
    Ok(())
}
