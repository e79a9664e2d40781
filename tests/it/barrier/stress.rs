//! The double-barrier stress run: members on their own sessions go through round after round
//! of `enter` then `leave` on a `DoubleBarrier` of all of them, while their connections are cut
//! and stalled, replies are lost after the server applied the request, and sessions are killed
//! (a killed member is out for the rest of its round and comes back on a new session for the
//! next). Then the checker ([`check`]) proves from the log, on one logical clock:
//!
//! - no early pass: when any member's `enter` returned in a round, `count` members had called
//!   `enter` in that round (apache/curator#1290 let one member through alone);
//! - no early leave: when a member's `leave` returned, every member that had entered in that
//!   round had called `leave` or was dead;
//! - nobody stranded: every call returned (`enter` and `leave` are bounded, and a bound reached
//!   is only allowed in a round where a member died), every round without a death completed for
//!   everyone, and no member node is left at the end.
//!
//! The three tests come from `stress_trio!` (`support::stress`): the embedded run in virtual time
//! (`CONCLAVE_BARRIER_STRESS_SECS`, default 20), a shorter real-time run on a real ZooKeeper
//! through one proxy per session (`CONCLAVE_BARRIER_STRESS_REAL_SECS`, default 8), each printing
//! a `RESULT barrier_stress` line, and the negative control, which opens a barrier early (its
//! `ready` node created by hand) and sees the checker report the early pass, on both backends.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use conclave::barrier::DoubleBarrier;
use conclave::{Client, Result};
use tokio::time::Instant;

use crate::lock::children;
use crate::stress_trio;
use crate::support::stress::{Fault, Plan, Rng, Run};
use crate::support::{within, Env};

/// 6 members on the embedded server for 20 virtual seconds, 5 faults a second; 4 through
/// proxies on a real ZooKeeper for 8 s, 3 a second.
const PLAN: Plan = Plan {
    name: "barrier_stress",
    sessions: (6, 4),
    secs: ("CONCLAVE_BARRIER_STRESS_SECS", 20),
    real_secs: ("CONCLAVE_BARRIER_STRESS_REAL_SECS", 8),
    faults_per_sec: (5, 3),
    lost_reply: None,
};

stress_trio!(PLAN, run, negative_control);

/// How long a member waits to enter or leave before giving up (longer than a session timeout,
/// so a member that died is noticed first).
const BOUND: Duration = Duration::from_secs(10);
/// Longer than any bounded call may take.
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// What happened, on the log's logical clock.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Entering,
    /// `enter` returned: `true` through, `false` the bound was reached.
    Entered(bool),
    Leaving,
    Left(bool),
    Died,
    /// A call failed (the member's session ended).
    Failed(String),
}

#[derive(Default)]
struct Log {
    /// (round, member, tick, event).
    events: StdMutex<Vec<(u64, usize, u64, Event)>>,
    clock: AtomicU64,
    hung: AtomicU64,
}

impl Log {
    fn log(&self, round: u64, who: usize, event: Event) {
        let tick = self.clock.fetch_add(1, Ordering::SeqCst);
        self.events.lock().expect("log").push((round, who, tick, event));
    }
}

/// What is wrong with `events` for a barrier of `count` (see the module doc).
fn check(events: &[(u64, usize, u64, Event)], count: usize) -> Vec<String> {
    let mut rounds: BTreeMap<u64, Vec<(usize, u64, &Event)>> = BTreeMap::new();
    for (round, who, tick, event) in events {
        rounds.entry(*round).or_default().push((*who, *tick, event));
    }
    let mut wrong = Vec::new();
    for (round, events) in rounds {
        let first = |who: usize, what: &dyn Fn(&Event) -> bool| {
            events.iter().filter(|(w, _, e)| *w == who && what(e)).map(|(_, t, _)| *t).min()
        };
        let members: HashSet<usize> = events.iter().map(|(w, _, _)| *w).collect();
        let died = members.iter().any(|&m| first(m, &|e| matches!(e, Event::Died | Event::Failed(_))).is_some());
        for &(who, tick, event) in &events {
            match event {
                Event::Entered(true) => {
                    let entering =
                        members.iter().filter(|&&m| first(m, &|e| *e == Event::Entering) < Some(tick)).count();
                    if entering < count {
                        wrong.push(format!("round {round}: member {who} entered with {entering} of {count} in"));
                    }
                }
                Event::Left(true) => {
                    for &m in &members {
                        if first(m, &|e| *e == Event::Entered(true)).is_none() {
                            continue;
                        }
                        let gone = first(m, &|e| matches!(e, Event::Leaving | Event::Died | Event::Failed(_)));
                        if gone.is_none_or(|t| t > tick) {
                            wrong.push(format!("round {round}: member {who} left while member {m} was still in"));
                        }
                    }
                }
                Event::Entered(false) | Event::Left(false) if !died => {
                    wrong.push(format!("round {round}: member {who} gave up ({event:?}) though nobody died"));
                }
                _ => {}
            }
        }
    }
    wrong
}

/// One member's round: enter, then leave, each bounded.
async fn member(barrier: &DoubleBarrier, round: u64, who: usize, log: &Log) {
    log.log(round, who, Event::Entering);
    match tokio::time::timeout(CALL_LIMIT, barrier.enter_timeout(BOUND)).await {
        Err(_) => {
            log.hung.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Ok(Err(e)) => return log.log(round, who, Event::Failed(format!("{e}"))),
        Ok(Ok(None)) => return log.log(round, who, Event::Entered(false)),
        Ok(Ok(Some(()))) => log.log(round, who, Event::Entered(true)),
    }
    tokio::time::sleep(Duration::from_millis(5 + (who as u64 * 7) % 20)).await;
    log.log(round, who, Event::Leaving);
    match tokio::time::timeout(CALL_LIMIT, barrier.leave_timeout(BOUND)).await {
        Err(_) => {
            log.hung.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(e)) => log.log(round, who, Event::Failed(format!("{e}"))),
        Ok(Ok(left)) => log.log(round, who, Event::Left(left.is_some())),
    }
}

/// The run: rounds of every member entering and leaving a fresh barrier path, while faults are
/// injected; then the checker.
async fn run(run: Run) {
    let env = &run.env;
    let admin = env.client().await;
    let log = Arc::new(Log::default());
    let current: Vec<Arc<StdMutex<Client>>> = run.clients.iter().map(|c| Arc::new(StdMutex::new(c.clone()))).collect();
    let n = current.len();
    let stop = Arc::new(AtomicBool::new(false));
    let round_now = Arc::new(AtomicU64::new(0));
    let rounds = {
        let (log, current, stop, round_now) = (log.clone(), current.clone(), stop.clone(), round_now.clone());
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                round_now.store(round, Ordering::SeqCst);
                let mut members = Vec::new();
                for (who, c) in current.iter().enumerate() {
                    let mut client = c.lock().expect("client").clone();
                    if client.state().is_terminal() {
                        client = client.reconnect_new_session().await.expect("a new session");
                        *c.lock().expect("client") = client.clone();
                    }
                    let log = log.clone();
                    members.push(async move {
                        let barrier = DoubleBarrier::new(client, &format!("/rounds/r{round}"), format!("m{who}"), n);
                        member(&barrier, round, who, &log).await;
                    });
                }
                futures::future::join_all(members).await;
            }
            round
        })
    };
    let started = Instant::now();
    let (duration, faults) = (run.duration, run.faults);
    let mut rng = Rng(run.seed());
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let gap = duration / faults.max(1) as u32;
    for _ in 0..faults {
        tokio::time::sleep(gap).await;
        let victim = rng.below(n as u64) as usize;
        let client = current[victim].lock().expect("client").clone();
        let fault = run.draw(&mut rng);
        if fault == Fault::Delete {
            // Nothing of a member's is deleted by others; count it as a cut.
            *kinds.entry("delete-as-cut").or_default() += 1;
        }
        if fault == Fault::Kill {
            log.log(round_now.load(Ordering::SeqCst), victim, Event::Died);
        }
        let fault = if fault == Fault::Delete { Fault::Cut } else { fault };
        if let Err(e) = run.inject(fault, &admin, victim, &client, None).await {
            *kinds.entry("inject-failed").or_default() += 1;
            println!("# inject {fault:?}: {e}");
        }
        *kinds.entry(fault.name()).or_default() += 1;
    }
    tokio::time::sleep_until(started + duration).await;
    stop.store(true, Ordering::Relaxed);
    let rounds = within(600, rounds).await.expect("rounds task");
    let seconds = started.elapsed().as_secs_f64();
    let events = log.events.lock().expect("log").clone();
    let wrong = check(&events, n);
    let count = |what: &dyn Fn(&Event) -> bool| events.iter().filter(|(_, _, _, e)| what(e)).count();
    let complete = (1..=rounds)
        .filter(|r| events.iter().filter(|(round, _, _, e)| round == r && *e == Event::Left(true)).count() == n)
        .count();
    // Nothing left behind: every round's directory has no member node.
    let mut left_over = Vec::new();
    for r in 1..=rounds {
        let nodes = children(&admin, &format!("/rounds/r{r}")).await;
        left_over.extend(nodes.into_iter().map(|c| format!("r{r}/{c}")));
    }
    println!(
        "RESULT {} backend={} members={n} seconds={seconds:.1} rounds={rounds} complete_rounds={complete} entered={} gave_up={} failed={} faults={faults} kinds={kinds:?} problems={} left_over={} hung={}",
        run.name,
        run.backend,
        count(&|e| *e == Event::Entered(true)),
        count(&|e| matches!(e, Event::Entered(false) | Event::Left(false))),
        count(&|e| matches!(e, Event::Failed(_))),
        wrong.len(),
        left_over.len(),
        log.hung.load(Ordering::Relaxed),
    );
    assert_eq!(log.hung.load(Ordering::Relaxed), 0, "calls hung");
    assert!(wrong.is_empty(), "{} problems, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(5)]);
    assert!(left_over.is_empty(), "member nodes left behind: {left_over:?}");
    assert!(complete > 0, "no round completed");
}

/// A barrier opened early (its `ready` node created by hand before anyone entered) lets a
/// member through alone: the checker reports the early pass. The same round without the
/// tampering passes the checker.
async fn negative_control(env: Env) -> Result<()> {
    for tampered in [true, false] {
        let path = if tampered { "/control/tampered" } else { "/control/clean" };
        let admin = env.client().await;
        if tampered {
            admin.create_all(&format!("{path}/ready"), b"", conclave::CreateMode::Persistent).await?;
        }
        let log = Log::default();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(env.client().await);
        }
        // The first member enters alone; the others follow once it is through (or after a
        // while, for the clean barrier, which holds it back).
        let first = DoubleBarrier::new(clients[0].clone(), path, "m0", 3);
        let others: Vec<_> = (1..3).map(|i| DoubleBarrier::new(clients[i].clone(), path, format!("m{i}"), 3)).collect();
        let lone = async {
            log.log(1, 0, Event::Entering);
            let entered = first.enter_timeout(Duration::from_secs(10)).await.map(|e| e.is_some());
            log.log(1, 0, Event::Entered(entered.unwrap_or(false)));
        };
        let later = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            futures::future::join_all(others.iter().enumerate().map(|(i, b)| {
                let log = &log;
                async move {
                    log.log(1, i + 1, Event::Entering);
                    let entered = b.enter_timeout(Duration::from_secs(10)).await.map(|e| e.is_some());
                    log.log(1, i + 1, Event::Entered(entered.unwrap_or(false)));
                }
            }))
            .await;
        };
        within(30, futures::future::join(lone, later)).await;
        let leaves = std::iter::once(&first).chain(&others).map(|b| b.leave_timeout(Duration::from_secs(10)));
        for left in within(30, futures::future::join_all(leaves)).await {
            assert_eq!(left?, Some(()));
        }
        let events = log.events.lock().expect("log").clone();
        let wrong = check(&events, 3);
        if tampered {
            assert!(wrong.iter().any(|w| w.contains("entered with 1 of 3")), "the checker missed it: {wrong:?}");
        } else {
            assert!(wrong.is_empty(), "{wrong:?}");
        }
    }
    // An early leave and a give-up without a death are reported too.
    let e = |who, tick, event| (1, who, tick, event);
    let early_leave = [
        e(0, 0, Event::Entering),
        e(1, 1, Event::Entering),
        e(0, 2, Event::Entered(true)),
        e(1, 3, Event::Entered(true)),
        e(0, 4, Event::Leaving),
        e(0, 5, Event::Left(true)),
        e(1, 6, Event::Leaving),
        e(1, 7, Event::Left(false)),
    ];
    let wrong = check(&early_leave, 2);
    assert_eq!(wrong.len(), 2, "{wrong:?}");
    assert!(wrong[0].contains("member 0 left while member 1 was still in"), "{wrong:?}");
    assert!(wrong[1].contains("gave up"), "{wrong:?}");
    Ok(())
}
