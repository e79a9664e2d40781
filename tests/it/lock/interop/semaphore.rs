//! `conclave::lock::Semaphore` and Curator's `InterProcessSemaphoreV2` (2 leases) on one path:
//! never more than two holders across both languages, each side waits for the other's leases,
//! and both use `<path>/locks` (the acquirers' mutex) and `<path>/leases/_c_<uuid>-lease-<seq>`.

use std::time::{Duration, Instant};

use conclave::lock::Semaphore;
use conclave::{Client, ZkError as Error};

use super::{
    children_in_order, holders, is_curator_name, names, node_name, signal, wait_for_node, without_the_lock, Interop,
    JavaRun, Outcome, Recipe, CONTEND, LEASES,
};
use crate::support::clients::CuratorProgram;
use crate::support::{within, Env};

impl Interop<'_> {
    /// The Rust side holds every lease; Curator (launched now) gets none and queues a waiter,
    /// which holds once Rust returns them; Curator takes the second lease too, and a Rust waiter
    /// queues behind Curator's and gets a lease when Curator returns one. See
    /// `CuratorLockCheck.semaphoreLayout` for the Java side of each step.
    pub(super) async fn semaphore_layout(&self, admin: &Client) -> JavaRun {
        let root = self.env.root.as_str();
        let path = format!("{root}/sem");
        let (leases_dir, locks_dir) = (format!("{path}/leases"), format!("{path}/locks"));
        let sem = Semaphore::new(admin.clone(), &path, LEASES);
        let ours = within(10, sem.acquire(LEASES)).await.expect("every lease");
        let rust_leases: Vec<String> = ours.iter().map(|l| node_name(l, &leases_dir)).collect();
        for name in &rust_leases {
            assert!(is_curator_name(name, "lease-"), "the Rust lease node {name:?} is not named as Curator's");
        }
        // A container: the server may have removed it once empty.
        let locks = match admin.get_children(&locks_dir).await {
            Err(Error::NoNode) => Vec::new(),
            listed => listed.expect("the acquirers' mutex directory"),
        };
        assert!(locks.is_empty(), "the Rust acquirer released {locks_dir}: {locks:?}");
        let mut java = self.launch();

        // Curator got no lease, and queued a waiter that holds the acquirers' mutex.
        let curator = names(&wait_for_node(admin, &format!("{root}/java-waiting"), &mut java).await);
        let leases = children_in_order(admin, &leases_dir).await;
        assert_eq!(leases.len(), LEASES as usize + 1, "the Rust leases and the Curator waiter's: {leases:?}");
        assert_eq!(leases[..LEASES as usize], rust_leases[..], "the Rust leases first: {leases:?}");
        let waiter = leases[LEASES as usize].clone();
        assert!(is_curator_name(&waiter, "lease-"), "the Curator waiter's lease node: {leases:?}");
        let mut sorted = leases.clone();
        sorted.sort();
        assert_eq!(curator, sorted, "Curator's getParticipantNodes() lists the same lease nodes");
        let locks = admin.get_children(&locks_dir).await.expect("the acquirers' mutex");
        assert!(
            locks.len() == 1 && is_curator_name(&locks[0], "lock-"),
            "the Curator waiter holds the acquirers' mutex while it waits: {locks:?}"
        );
        let parts = holders(sem.participants().await.expect("participants"));
        let expected: Vec<(String, bool)> = leases.iter().map(|l| (l.clone(), *l != waiter)).collect();
        assert_eq!(parts, expected, "Semaphore::participants(): the Rust holders, then the Curator waiter");
        assert!(sem.try_acquire(1).await.expect("try_acquire").is_none(), "no lease while Curator waits first");
        assert_eq!(children_in_order(admin, &leases_dir).await, leases, "a failed try leaves no lease");
        for lease in ours {
            lease.release().await.expect("return a Rust lease");
        }

        // Curator holds both leases: a Rust acquirer waits, and Curator sees its lease node.
        let full = names(&wait_for_node(admin, &format!("{root}/java-full"), &mut java).await);
        let leases = children_in_order(admin, &leases_dir).await;
        let mut sorted = leases.clone();
        sorted.sort();
        assert_eq!(sorted, full, "Curator's two leases");
        assert!(leases.contains(&waiter), "the Curator waiter's lease is one of them: {leases:?}");
        assert!(sem.try_acquire(1).await.expect("try_acquire").is_none(), "no lease while Curator holds both");
        let timed = sem.acquire_timeout(1, Duration::from_millis(100)).await.expect("acquire_timeout");
        assert!(timed.is_none(), "no lease within 100 ms while Curator holds both");
        assert_eq!(children_in_order(admin, &leases_dir).await, leases, "failed acquires leave no lease");
        let mut acquiring = tokio::spawn({
            let sem = sem.clone();
            async move { sem.acquire(1).await }
        });
        let started = Instant::now();
        let queued = loop {
            let now = children_in_order(admin, &leases_dir).await;
            if now.len() > LEASES as usize {
                break now;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the Rust waiter's lease did not appear: {now:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let rust_waiter = queued.last().expect("a lease").clone();
        assert!(!leases.contains(&rust_waiter), "the newest lease is the Rust waiter's: {queued:?}");
        assert!(is_curator_name(&rust_waiter, "lease-"), "the Rust waiter's lease node {rust_waiter:?}");
        assert!(!acquiring.is_finished(), "the Rust acquirer waits while Curator holds both leases");
        signal(admin, &format!("{root}/rust-waiting"), &rust_waiter).await;

        // Curator returned one lease: the Rust waiter holds with the same node.
        let lease = within(10, &mut acquiring).await.expect("the Rust acquirer").expect("a lease").pop().expect("one");
        assert_eq!(node_name(&lease, &leases_dir), rust_waiter, "the Rust waiter holds with the node it queued");
        let now = children_in_order(admin, &leases_dir).await;
        assert_eq!(now.len(), LEASES as usize, "one Curator lease and the Rust lease: {now:?}");
        lease.release().await.expect("return the Rust lease");
        signal(admin, &format!("{root}/rust-done"), "").await;
        java
    }
}

async fn limit(env: Env) {
    let Some(program) = CuratorProgram::compile("CuratorLockCheck").await else { return };
    let started = Instant::now();
    let backend = if env.is_embedded() { "embedded server" } else { "real ZooKeeper" };
    let interop = Interop { env: &env, program: &program, recipe: Recipe::Semaphore, locked: true, period: CONTEND };
    let outcome = interop.both_sides().await;
    let Outcome { java, rust, holders, .. } = &outcome;
    let context = outcome.context();
    let total = java.acquisitions + rust.acquisitions;
    eprintln!(
        "semaphore interop on the {backend}: Curator {} leases, Rust {} leases, {} holds shared ({} with the other \
         side), at most {} holders at once, {:.1} s",
        java.acquisitions,
        rust.acquisitions,
        java.shared + rust.shared,
        java.cross + rust.cross,
        java.peak.max(rust.peak),
        started.elapsed().as_secs_f64()
    );
    assert!(outcome.violations() == 0, "the semaphore's limit was violated:\n{context}");
    assert!(java.acquisitions >= 3 && rust.acquisitions >= 3, "both sides must acquire repeatedly:\n{context}");
    // Every hold entered and left the set exactly once, by a versioned write each.
    assert_eq!(holders.0, "", "every holder left the set:\n{context}");
    assert_eq!(holders.1 as usize, 2 * total, "two versioned writes per hold:\n{context}");
    // The limit was reached, across the languages: two holders, not one, at once.
    assert_eq!(java.peak.max(rust.peak), LEASES as usize, "two holders must have held at once:\n{context}");
    assert!(java.cross + rust.cross > 0, "a Rust and a Curator holder must have held at once:\n{context}");
}

/// Curator's and the Rust semaphore share two leases on one path of a real ZooKeeper.
#[tokio::test]
async fn real_zookeeper() {
    if let Some(env) = Env::real("semaphore-interop", false).await {
        limit(env).await;
    }
}

/// The same on the embedded server (over TCP, as Curator connects).
#[tokio::test]
async fn embedded() {
    limit(Env::embedded("semaphore-interop").await).await;
}

/// The negative control: without the semaphore, more than two hold at once (on a real
/// ZooKeeper), so the check above cannot pass by accident.
#[tokio::test]
async fn negative_control() {
    if let Some(env) = Env::real("semaphore-interop-nolock", false).await {
        without_the_lock(env, Recipe::Semaphore).await;
    }
}
