//! The membership stress run: 5 members, each on its own session, stay in one group while their
//! connections are cut and stalled, their sessions killed, their nodes deleted by another
//! client and their create replies lost, at random; each member changes its data every 100 ms.
//! An observer (a children cache on its own, unfaulted session) logs the group. The checker
//! proves, from that log and the final state:
//!
//! - presence: every absence of a member's node (from its removal to its return, as the
//!   observer saw them) is shorter than the session timeout plus one second — a member whose
//!   session was killed or whose node was deleted is back soon, on its new session;
//! - no stray or foreign node: at the end the group holds exactly the 5 members, each node owned
//!   by its member's current session, with the member's latest data;
//! - the views converge: every member's `members()` and the observer's cache equal that, and the
//!   observer's event stream is consistent (the cache checker).
//!
//! The discovery family runs the same harness with service registrations and a service cache
//! ([`Presence::Registrations`]). The negative control feeds the checker a member absent too
//! long, a missing member, a node left to a foreign session and stale data, and sees each
//! reported.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave::cache::{CacheEvent, ChildrenCache};
use conclave::discovery::{Registration, ServiceDiscovery, ServiceInstance};
use conclave::membership::GroupMember;
use conclave::{Bytes, Client, Result};
use futures::StreamExt;
use tokio::time::Instant;

use crate::cache::Checker;
use crate::stress_trio;
use crate::support::stress::{Plan, Rng, Run};
use crate::support::{within, Env};

/// 5 members and an observer: 20 virtual seconds with 10 faults a second on the embedded server;
/// 6 s with 4 a second through proxies on a real ZooKeeper.
pub(crate) const PLAN: Plan = Plan {
    name: "membership_stress",
    sessions: (6, 6),
    secs: ("CONCLAVE_MEMBERSHIP_STRESS_SECS", 20),
    real_secs: ("CONCLAVE_MEMBERSHIP_STRESS_REAL_SECS", 6),
    faults_per_sec: (10, 4),
    lost_reply: None,
};

stress_trio!(PLAN, run, negative_control);

const MEMBERS: usize = 5;
/// The test sessions' timeout (`Env::builder`).
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

async fn run(run: Run) {
    run_as(run, Presence::Members).await;
}

async fn negative_control(env: Env) -> Result<()> {
    negative_control_as(env, Presence::Members).await
}

/// What the members keep in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// `GroupMember`s of `/g`.
    Members,
    /// `Registration`s of the service `api` under `/svc` (the group is `/svc/api`).
    Registrations,
}

impl Presence {
    fn group(self) -> &'static str {
        match self {
            Presence::Members => "/g",
            Presence::Registrations => "/svc/api",
        }
    }
}

/// One member, of either kind.
enum Member {
    Group(GroupMember),
    Service(Registration),
}

impl Member {
    async fn join(presence: Presence, client: &Client, id: &str) -> Result<Member> {
        Ok(match presence {
            Presence::Members => Member::Group(GroupMember::new(client, "/g", id, data(id, 0))?),
            Presence::Registrations => {
                let discovery = ServiceDiscovery::new(client, "/svc")?;
                Member::Service(discovery.register(instance(id, 0)).await?)
            }
        })
    }

    async fn set(&self, id: &str, version: u64) -> Result<()> {
        match self {
            Member::Group(m) => m.set_data(data(id, version)).await,
            Member::Service(r) => r.update(instance(id, version)).await,
        }
    }

    fn client(&self) -> Client {
        match self {
            Member::Group(m) => m.client(),
            Member::Service(r) => r.client(),
        }
    }

    /// The data the member's node should hold.
    fn data(&self) -> Bytes {
        match self {
            Member::Group(m) => m.node().data(),
            Member::Service(r) => r.instance().to_json().into(),
        }
    }
}

fn data(id: &str, version: u64) -> String {
    format!("{id}:{version}")
}

fn instance(id: &str, version: u64) -> ServiceInstance {
    ServiceInstance::builder("api")
        .id(id)
        .address("10.0.0.1")
        .port(1000 + version as i32)
        .registration_time_utc(1)
        .build()
}

/// What the run leaves for the checker.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// Per member id, how long each of its absences lasted (removal to return, as observed).
    pub gaps: BTreeMap<String, Vec<Duration>>,
    /// Absences not over at the end.
    pub open: Vec<String>,
    /// The group at the end, as the server has it: id → (data, owner session).
    pub server: BTreeMap<String, (Bytes, i64)>,
    /// What each member says it is: id → (data, current session).
    pub expected: BTreeMap<String, (Bytes, i64)>,
    /// Inconsistencies in the observer's events.
    pub violations: Vec<String>,
}

/// The checks of the module docs, on an outcome.
pub(crate) fn check(outcome: &Outcome) -> std::result::Result<(), String> {
    let bound = SESSION_TIMEOUT + Duration::from_secs(1);
    for (id, gaps) in &outcome.gaps {
        if let Some(worst) = gaps.iter().max().filter(|g| **g > bound) {
            return Err(format!("{id} was absent for {worst:?} (more than {bound:?})"));
        }
    }
    if !outcome.open.is_empty() {
        return Err(format!("absent at the end: {:?}", outcome.open));
    }
    if let Some(v) = outcome.violations.first() {
        return Err(format!("inconsistent observer events: {v}"));
    }
    if outcome.server != outcome.expected {
        return Err(format!("the group is {:?}, the members say {:?}", outcome.server, outcome.expected));
    }
    Ok(())
}

pub(crate) async fn run_as(run: Run, presence: Presence) {
    let admin = run.env.client().await;
    let observer = ChildrenCache::new(&admin, presence.group()).expect("observer");
    let log = Arc::new(Mutex::new((Checker::default(), BTreeMap::<String, Instant>::new(), Outcome::default())));
    let follower = {
        let (log, mut events) = (log.clone(), observer.events());
        tokio::spawn(async move {
            while let Some(e) = events.next().await {
                let e = e.expect("the observer goes on");
                let mut log = log.lock().unwrap();
                let (checker, gone, outcome) = &mut *log;
                if let Err(why) = checker.apply(&e) {
                    outcome.violations.push(why);
                }
                let id = e.path().and_then(|p| p.rsplit('/').next()).map(str::to_string);
                match (&e, id) {
                    (CacheEvent::Removed { .. }, Some(id)) => {
                        gone.insert(id, Instant::now());
                    }
                    (CacheEvent::Added { .. }, Some(id)) => {
                        if let Some(since) = gone.remove(&id) {
                            outcome.gaps.entry(id).or_default().push(since.elapsed());
                        }
                    }
                    _ => {}
                }
            }
        })
    };
    within(30, observer.initialized()).await.expect("observer loaded");
    let mut members = Vec::new();
    for (i, client) in run.clients[..MEMBERS].iter().enumerate() {
        let id = format!("m{i}");
        members.push((id.clone(), Arc::new(Member::join(presence, client, &id).await.expect("join"))));
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let writers: Vec<_> = members
        .iter()
        .map(|(id, member)| {
            let (id, member, stop) = (id.clone(), member.clone(), stop.clone());
            tokio::spawn(async move {
                let mut version = 0;
                while !stop.is_cancelled() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    version += 1;
                    member.set(&id, version).await.expect("set the member's data");
                }
            })
        })
        .collect();

    let mut rng = Rng(run.seed());
    let pause = run.duration / run.faults.max(1) as u32;
    let mut counts = BTreeMap::<&str, u64>::new();
    for _ in 0..run.faults {
        tokio::time::sleep(pause).await;
        let victim = rng.below(MEMBERS as u64) as usize;
        let fault = run.draw(&mut rng);
        let (id, member) = &members[victim];
        let node = format!("{}/{id}", presence.group());
        run.inject(fault, &admin, victim, &member.client(), Some(&node)).await.expect("inject");
        *counts.entry(fault.name()).or_default() += 1;
    }
    stop.cancel();
    for w in writers {
        w.await.expect("a writer");
    }
    // Quiescence: every member back in place, the observer caught up.
    let expected: BTreeMap<String, (Bytes, i64)> = within(60, async {
        loop {
            let mut all = BTreeMap::new();
            for (id, member) in &members {
                let client = member.client();
                if let Ok(Some(stat)) = client.exists(&format!("{}/{id}", presence.group())).await {
                    if stat.ephemeral_owner == client.session_id() {
                        all.insert(id.clone(), (member.data(), client.session_id()));
                    }
                }
            }
            if all.len() == MEMBERS {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    within(60, observer.sync()).await.expect("observer synced");
    let mut server = BTreeMap::new();
    for id in admin.get_children(presence.group()).await.expect("the group") {
        let (data, stat) = admin.get_data(&format!("{}/{id}", presence.group())).await.expect("a member");
        server.insert(id, (data, stat.ephemeral_owner));
    }
    // Views converge.
    if presence == Presence::Members {
        let view: BTreeMap<String, Bytes> = expected.iter().map(|(id, (d, _))| (id.clone(), d.clone())).collect();
        within(30, async {
            for (_, member) in &members {
                let Member::Group(m) = &**member else { unreachable!() };
                while m.members() != view {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
        .await;
    } else {
        let cache = ServiceDiscovery::new(&admin, "/svc").expect("discovery").cache("api").expect("cache");
        within(30, cache.sync()).await.expect("cache synced");
        let seen: Vec<String> = cache.instances().into_iter().map(|i| i.id).collect();
        assert_eq!(seen, expected.keys().cloned().collect::<Vec<_>>(), "a service cache sees every instance");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let snapshot = observer.children();
    let mut log = log.lock().unwrap();
    let (checker, gone, outcome) = &mut *log;
    outcome.open = gone.keys().cloned().collect();
    outcome.server = server;
    outcome.expected = expected;
    let observed: BTreeMap<String, Bytes> = snapshot.into_iter().map(|(id, n)| (id, n.data)).collect();
    let worst = outcome.gaps.values().flatten().max().copied().unwrap_or_default();
    println!(
        "RESULT {} kind={presence:?} backend={} faults={counts:?} absences={} worst_absence_ms={} events={} violations={}",
        run.name,
        run.backend,
        outcome.gaps.values().map(Vec::len).sum::<usize>(),
        worst.as_millis(),
        checker.events,
        outcome.violations.len()
    );
    check(outcome).expect("the membership checker");
    let want: BTreeMap<String, Bytes> = outcome.server.iter().map(|(id, (d, _))| (id.clone(), d.clone())).collect();
    assert_eq!(observed, want, "the observer's cache holds the group");
    drop(log);
    follower.abort();
}

/// The checker fed outcomes with one fault each.
pub(crate) async fn negative_control_as(env: Env, presence: Presence) -> Result<()> {
    // A real outcome first (a quiet run of two members), which passes.
    let c = env.client().await;
    let (a, b) = (Member::join(presence, &c, "a").await?, Member::join(presence, &c, "b").await?);
    let cache = ChildrenCache::new(&c, presence.group())?;
    within(10, cache.initialized()).await?;
    within(10, cache.sync()).await?;
    let mut good = Outcome::default();
    for (id, m) in [("a", &a), ("b", &b)] {
        good.expected.insert(id.to_string(), (m.data(), m.client().session_id()));
    }
    for (id, node) in cache.children() {
        good.server.insert(id, (node.data, node.stat.ephemeral_owner));
    }
    check(&good).map_err(conclave::ZkError::InvalidArgument)?;

    let mut long = good.clone();
    long.gaps.insert("a".into(), vec![SESSION_TIMEOUT * 2]);
    assert!(check(&long).is_err(), "a member absent too long is caught");
    let mut missing = good.clone();
    missing.server.remove("b");
    assert!(check(&missing).is_err(), "a missing member is caught");
    let mut foreign = good.clone();
    foreign.server.get_mut("a").expect("a").1 = 0x5eed;
    assert!(check(&foreign).is_err(), "a node of another session is caught");
    let mut stale = good.clone();
    stale.server.get_mut("b").expect("b").0 = Bytes::from_static(b"old");
    assert!(check(&stale).is_err(), "stale data is caught");
    let mut open = good.clone();
    open.open.push("a".into());
    assert!(check(&open).is_err(), "a member still gone at the end is caught");
    Ok(())
}
