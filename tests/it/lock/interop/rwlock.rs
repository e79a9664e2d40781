//! `conclave::lock::RwLock` and Curator's `InterProcessReadWriteLock` on one path: a writer of
//! either side excludes readers and writers of both, readers of both sides share, and both see
//! the same `_c_<uuid>-__READ__<seq>` / `_c_<uuid>-__WRIT__<seq>` nodes in the same order.

use std::time::{Duration, Instant};

use conclave::lock::RwLock;
use conclave::Client;

use super::{
    children_in_order, holders, is_curator_name, node_name, signal, wait_for_node, without_the_lock, Interop, JavaRun,
    Outcome, Recipe,
};
use crate::support::clients::CuratorProgram;
use crate::support::{within, Env};

/// How long both sides contend (the layout phase takes a second more).
const CONTEND: Duration = Duration::from_millis(2500);

/// Curator's view of the lock directory as `CuratorLockCheck.view` prints it: the writers, then
/// the readers, each in sequence order (`writeLock()`/`readLock().getParticipantNodes()`).
fn curator_view(children: &[String]) -> String {
    let of = |kind: &str| children.iter().filter(|c| c.contains(kind)).cloned().collect::<Vec<_>>().join(",");
    format!("{}|{}", of("__WRIT__"), of("__READ__"))
}

impl Interop<'_> {
    /// A Rust writer; Curator (launched now) can neither read nor write and queues a reader,
    /// which holds once the writer leaves; a Rust reader joins it; a Curator writer then waits
    /// for the Rust reader, and holds once it leaves, keeping the Rust side out. See
    /// `CuratorLockCheck.rwLayout` for the Java side of each step.
    pub(super) async fn rwlock_layout(&self, admin: &Client) -> JavaRun {
        let root = self.env.root.as_str();
        let path = format!("{root}/rw");
        let rw = RwLock::new(admin.clone(), &path);
        let writer = within(10, rw.write()).await.expect("the Rust writer");
        let rust_writer = node_name(&writer, &path);
        assert!(is_curator_name(&rust_writer, "__WRIT__"), "the Rust writer's node {rust_writer:?} is not Curator's");
        let mut java = self.launch();

        // Curator could not get in, and queued a reader behind the Rust writer.
        let view = wait_for_node(admin, &format!("{root}/java-waiting"), &mut java).await;
        let children = children_in_order(admin, &path).await;
        assert_eq!(children.len(), 2, "the Rust writer and the Curator reader: {children:?}");
        assert_eq!(children[0], rust_writer, "the Rust writer first: {children:?}");
        assert!(is_curator_name(&children[1], "__READ__"), "the Curator reader's node: {children:?}");
        assert_eq!(view, curator_view(&children), "Curator sees the Rust writer, and its reader after it");
        let parts = holders(rw.participants().await.expect("participants"));
        assert_eq!(parts, [(children[0].clone(), true), (children[1].clone(), false)], "RwLock::participants()");
        assert!(rw.try_read().await.expect("try_read").is_none(), "no reader while the writer holds");
        assert!(rw.try_write().await.expect("try_write").is_none(), "no second writer");
        assert_eq!(children_in_order(admin, &path).await, children, "failed tries leave no node");
        writer.release().await.expect("release the Rust writer");

        // The Curator reader holds; a Rust reader shares with it.
        wait_for_node(admin, &format!("{root}/java-reading"), &mut java).await;
        let reader = rw.try_read().await.expect("try_read").expect("a Rust reader shares with the Curator reader");
        let rust_reader = node_name(&reader, &path);
        assert!(is_curator_name(&rust_reader, "__READ__"), "the Rust reader's node {rust_reader:?} is not Curator's");
        let parts = holders(rw.participants().await.expect("participants"));
        assert_eq!(parts, [(children[1].clone(), true), (rust_reader.clone(), true)], "two readers hold at once");
        assert!(rw.try_write().await.expect("try_write").is_none(), "no writer while two readers hold");
        let timed = rw.write_timeout(Duration::from_millis(100)).await.expect("write_timeout");
        assert!(timed.is_none(), "no writer within 100 ms while two readers hold");
        signal(admin, &format!("{root}/rust-reading"), "").await;

        // The Curator reader left (after checking it could not write), and a Curator writer
        // queued behind the Rust reader.
        let view = wait_for_node(admin, &format!("{root}/java-writer-waiting"), &mut java).await;
        let children = children_in_order(admin, &path).await;
        assert_eq!(children.len(), 2, "the Rust reader and the Curator writer: {children:?}");
        assert_eq!(children[0], rust_reader, "the Rust reader first: {children:?}");
        assert!(is_curator_name(&children[1], "__WRIT__"), "the Curator writer's node: {children:?}");
        assert_eq!(view, curator_view(&children), "Curator sees the Rust reader, and its writer after it");
        let parts = holders(rw.participants().await.expect("participants"));
        assert_eq!(parts, [(children[0].clone(), true), (children[1].clone(), false)], "RwLock::participants()");
        // A reader arriving after a waiting writer waits for it (writers are not starved), even
        // though only a reader holds.
        assert!(rw.try_read().await.expect("try_read").is_none(), "no new reader ahead of the waiting writer");
        let timed = rw.read_timeout(Duration::from_millis(100)).await.expect("read_timeout");
        assert!(timed.is_none(), "no new reader within 100 ms ahead of the waiting writer");
        assert_eq!(children_in_order(admin, &path).await, children, "failed tries leave no node");
        reader.release().await.expect("release the Rust reader");

        // The Curator writer holds: the Rust side can neither read nor write.
        wait_for_node(admin, &format!("{root}/java-writing"), &mut java).await;
        assert!(rw.try_read().await.expect("try_read").is_none(), "no Rust reader while Curator writes");
        assert!(rw.try_write().await.expect("try_write").is_none(), "no Rust writer while Curator writes");
        signal(admin, &format!("{root}/rust-checked"), "").await;
        java
    }
}

async fn exclusion(env: Env) {
    let Some(program) = CuratorProgram::compile("CuratorLockCheck").await else { return };
    let started = Instant::now();
    let backend = if env.is_embedded() { "embedded server" } else { "real ZooKeeper" };
    let interop = Interop { env: &env, program: &program, recipe: Recipe::RwLock, locked: true, period: CONTEND };
    let outcome = interop.both_sides().await;
    let Outcome { java, rust, counter, .. } = &outcome;
    let context = outcome.context();
    let (java_writes, rust_writes) = (java.acquisitions - java.reads, rust.acquisitions - rust.reads);
    eprintln!(
        "rwlock interop on the {backend}: Curator {} reads {java_writes} writes, Rust {} reads {rust_writes} writes, \
         {} reads shared ({} with the other side), at most {} readers at once, {:.1} s",
        java.reads,
        rust.reads,
        java.shared + rust.shared,
        java.cross + rust.cross,
        java.peak.max(rust.peak),
        started.elapsed().as_secs_f64()
    );
    assert!(outcome.violations() == 0, "read-write exclusion violated:\n{context}");
    assert!(java.reads >= 3 && rust.reads >= 3, "both sides must read repeatedly:\n{context}");
    assert!(java_writes >= 3 && rust_writes >= 3, "both sides must write repeatedly:\n{context}");
    assert_eq!(*counter, (java_writes + rust_writes) as u64, "one increment per write:\n{context}");
    let owners = outcome.tickets();
    let switches = owners.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(switches >= 2, "writes must pass between Curator and Rust ({switches} times):\n{context}");
    // Readers really shared: the check saw readers holding together, across the languages.
    assert!(java.shared + rust.shared > 0, "no two readers ever held at once:\n{context}");
    assert!(java.cross + rust.cross > 0, "no Rust and Curator readers ever held at once:\n{context}");
}

/// Curator's and the Rust read-write lock share and exclude on one path of a real ZooKeeper.
#[tokio::test]
async fn real_zookeeper() {
    if let Some(env) = Env::real("rwlock-interop", false).await {
        exclusion(env).await;
    }
}

/// The same on the embedded server (over TCP, as Curator connects).
#[tokio::test]
async fn embedded() {
    exclusion(Env::embedded("rwlock-interop").await).await;
}

/// The negative control: without the lock, readers and writers see each other (on a real
/// ZooKeeper), so the checks above cannot pass by accident.
#[tokio::test]
async fn negative_control() {
    if let Some(env) = Env::real("rwlock-interop-nolock", false).await {
        without_the_lock(env, Recipe::RwLock).await;
    }
}
