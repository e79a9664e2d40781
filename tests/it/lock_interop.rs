//! `conclave::lock::Mutex` and Apache Curator's `InterProcessMutex` on one lock path exclude each
//! other: same node layout (`<path>/_c_<uuid>-lock-<seq>`), same order (by sequence suffix), so
//! each side sees the other's holder and waits for it. Curator runs as a Java process
//! (`tests/clients/CuratorLockCheck.java`, Debian `libcurator-recipes-java`) at the same time as
//! the Rust contenders; without ZooKeeper or Curator the tests say so and pass, unless
//! `CONCLAVE_REQUIRE_ZOOKEEPER=1`.
//!
//! How exclusion is checked, so that it cannot pass by accident: every holder, on either side,
//! runs the same critical section against the server. It creates the ephemeral `<root>/owner`
//! (`NodeExists` means someone else is inside), reads `<root>/counter`, holds 1-5 ms, writes the
//! counter plus one *with the version it read* (`BadVersion` means someone else wrote meanwhile)
//! and deletes `owner`. The value each successful write replaced is a ticket: under exclusion the
//! tickets of both sides together are exactly `0..n` once each, `n` is the counter's final value
//! and the number of acquisitions, and sorted by ticket the holders alternate between the sides.
//! The negative control runs the same thing without the lock and must see violations.

use std::time::{Duration, Instant};

use conclave::lock::Mutex;
use conclave::{Client, CreateMode, Error};
use tokio::task::JoinHandle;

use crate::support::clients::{run, CuratorProgram};
use crate::support::{within, Env};

/// How long both sides contend.
const CONTEND: Duration = Duration::from_millis(3000);
/// How long both sides run without the lock (the negative control).
const UNLOCKED: Duration = Duration::from_millis(1000);
/// Curator threads (each with a session of its own).
const JAVA_THREADS: usize = 2;
/// Rust contenders (each with a client of its own).
const RUST_TASKS: usize = 2;

/// The Java program's result: (success, stdout, stderr).
type JavaRun = JoinHandle<(bool, String, String)>;

/// What one side reports of a contention run.
#[derive(Debug, Default)]
struct Side {
    acquisitions: usize,
    tickets: Vec<u64>,
    violations: Vec<String>,
}

/// Whether `name` is `_c_<36-character uuid>-lock-<10 digits>`, Curator's protected lock name.
fn is_curator_lock_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("_c_") else { return false };
    let (Some(uuid), Some(rest)) = (rest.get(..36), rest.get(36..)) else { return false };
    let uuid_ok = uuid.char_indices().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => c == '-',
        _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
    });
    let seq = rest.strip_prefix("-lock-").unwrap_or("");
    uuid_ok && seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit())
}

/// The sequence suffix of a lock node name.
fn sequence(name: &str) -> u64 {
    name.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no sequence in {name:?}"))
}

/// Waits until `path` exists, failing with the Java program's output if it ends first.
async fn wait_for_node(client: &Client, path: &str, java: &mut JavaRun) {
    let started = Instant::now();
    loop {
        if client.exists(path).await.expect("exists").is_some() {
            return;
        }
        if java.is_finished() {
            let (ok, out, err) = java.await.expect("the Java runner");
            panic!("Curator ended (success: {ok}) before creating {path}:\nstdout:\n{out}\nstderr:\n{err}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{path} did not appear within 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The critical section (the same as the Java side's): the ticket, or the violations seen.
async fn critical(client: &Client, root: &str, who: &str, hold: Duration, side: &mut Side) {
    let owner = format!("{root}/owner");
    let counter = format!("{root}/counter");
    let created = match client.create(&owner, who.as_bytes(), CreateMode::Ephemeral).await {
        Ok(_) => true,
        Err(Error::NodeExists) => {
            side.violations.push(format!("{who} entered while {owner} existed"));
            false
        }
        Err(e) => panic!("{who}: create {owner}: {e}"),
    };
    let (data, stat) = client.get_data(&counter).await.expect("read the counter");
    let n: u64 = std::str::from_utf8(&data).expect("utf-8").parse().expect("a number");
    tokio::time::sleep(hold).await;
    match client.set_data(&counter, (n + 1).to_string().as_bytes(), Some(stat.version)).await {
        Ok(_) => side.tickets.push(n),
        Err(Error::BadVersion) => side.violations.push(format!("{who} lost its increment of {n} (BadVersion)")),
        Err(e) => panic!("{who}: set {counter}: {e}"),
    }
    if created {
        client.delete(&owner, None).await.expect("delete the owner marker");
    }
}

/// One Rust contender: acquire (unless `locked` is false), critical section, release, until `end`.
async fn contend(env: &Env, i: usize, locked: bool, end: Instant) -> Side {
    let client = env.unchrooted().await;
    let mutex = Mutex::new(client.clone(), &format!("{}/lock", env.root));
    let who = format!("rust-{i}");
    let mut side = Side::default();
    let mut k = 0u64;
    while Instant::now() < end {
        let guard = if locked { Some(within(15, mutex.lock()).await.expect("lock")) } else { None };
        k += 1;
        let hold = Duration::from_millis(1 + (k * 7 + i as u64 * 3) % 5);
        critical(&client, &env.root, &who, hold, &mut side).await;
        if let Some(guard) = guard {
            guard.release().await.expect("release");
        }
        side.acquisitions += 1;
    }
    client.close().await;
    side
}

/// Parses the Java program's report.
fn java_side(out: &str) -> Side {
    let mut side = Side::default();
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("acquisitions ") {
            side.acquisitions = n.parse().expect("acquisitions");
        } else if let Some(t) = line.strip_prefix("tickets") {
            side.tickets = t.split_whitespace().map(|t| t.parse().expect("a ticket")).collect();
        } else if let Some(v) = line.strip_prefix("violation ") {
            side.violations.push(v.to_string());
        }
    }
    side
}

/// Runs both sides: the layout phase first when `locked`, then contention (with or without the
/// lock) for `period`. Returns the two sides' reports, the counter's final value and the Java
/// output.
async fn interop(env: &Env, program: &CuratorProgram, locked: bool, period: Duration) -> (Side, Side, u64, String) {
    let admin = env.unchrooted().await;
    let root = env.root.clone();
    let lock = format!("{root}/lock");
    admin.create(&format!("{root}/counter"), b"0", CreateMode::Persistent).await.expect("create the counter");

    // Layout: a Rust holder, then Curator (launched now) looks at it and queues behind it.
    let holder = if locked {
        let guard = within(10, Mutex::new(admin.clone(), &lock).lock()).await.expect("the first lock");
        let name = guard.path().rsplit('/').next().expect("a name").to_string();
        assert!(is_curator_lock_name(&name), "the Rust lock node {:?} is not named as Curator's", guard.path());
        assert_eq!(guard.path(), format!("{lock}/{name}"), "the Rust lock node is a child of the lock path");
        Some((guard, name))
    } else {
        None
    };
    let mut cmd = program.command();
    cmd.arg(env.tcp_address())
        .arg(&root)
        .arg(JAVA_THREADS.to_string())
        .arg(period.as_millis().to_string())
        .arg(if locked { "lock" } else { "nolock" });
    let mut java: JavaRun = tokio::spawn(run(cmd, None, Duration::from_secs(90)));

    if let Some((guard, rust_node)) = holder {
        wait_for_node(&admin, &format!("{root}/java-waiting"), &mut java).await;
        let (curator_order, _) = admin.get_data(&format!("{root}/java-waiting")).await.expect("Curator's view");
        let curator_order: Vec<String> =
            std::str::from_utf8(&curator_order).expect("utf-8").split(',').map(str::to_string).collect();
        let mut children = admin.get_children(&lock).await.expect("list the lock path");
        children.sort_by_key(|c| sequence(c));
        for c in &children {
            assert!(is_curator_lock_name(c), "{c:?} in {children:?} is not named as Curator's");
        }
        assert_eq!(children.len(), 2, "the Rust holder and the Curator waiter: {children:?}");
        assert_eq!(children[0], rust_node, "the Rust holder has the lower sequence: {children:?}");
        assert_eq!(curator_order, children, "Curator's getParticipantNodes() order is the sequence order");
        let ours: Vec<(String, i64, bool)> = Mutex::new(admin.clone(), &lock)
            .participants()
            .await
            .expect("participants")
            .into_iter()
            .map(|p| (p.path, i64::from(p.sequence), p.holder))
            .collect();
        let expected: Vec<(String, i64, bool)> =
            children.iter().enumerate().map(|(i, c)| (format!("{lock}/{c}"), sequence(c) as i64, i == 0)).collect();
        assert_eq!(ours, expected, "Mutex::participants(): the Rust holder, then the Curator waiter");
        assert!(guard.is_held(), "the Rust guard is still held while Curator waits");
        guard.release().await.expect("release the first lock");
    }

    // Contention: both sides for `period` from Curator's signal.
    wait_for_node(&admin, &format!("{root}/go"), &mut java).await;
    let end = Instant::now() + period;
    let tasks: Vec<_> = (0..RUST_TASKS).map(|i| contend(env, i, locked, end)).collect();
    let mut rust = Side::default();
    for side in futures::future::join_all(tasks).await {
        rust.acquisitions += side.acquisitions;
        rust.tickets.extend(side.tickets);
        rust.violations.extend(side.violations);
    }
    let (ok, out, err) = within(60, java).await.expect("the Java runner");
    assert!(ok && out.contains("ok done"), "CuratorLockCheck failed:\nstdout:\n{out}\nstderr:\n{err}");
    let java = java_side(&out);
    let (counter, _) = admin.get_data(&format!("{root}/counter")).await.expect("read the counter");
    let counter: u64 = std::str::from_utf8(&counter).expect("utf-8").parse().expect("a number");
    admin.close().await;
    (java, rust, counter, out)
}

async fn exclusion(env: Env) {
    let Some(program) = CuratorProgram::compile("CuratorLockCheck").await else { return };
    let started = Instant::now();
    let backend = if env.is_embedded() { "embedded server" } else { "real ZooKeeper" };
    let (java, rust, counter, out) = interop(&env, &program, true, CONTEND).await;
    let context = format!("java: {java:?}\nrust: {rust:?}\ncounter: {counter}\nCurator's output:\n{out}");
    eprintln!(
        "lock interop on the {backend}: Curator {} acquisitions, Rust {} acquisitions, counter {counter}, {:.1} s",
        java.acquisitions,
        rust.acquisitions,
        started.elapsed().as_secs_f64()
    );
    assert!(java.violations.is_empty() && rust.violations.is_empty(), "mutual exclusion violated:\n{context}");
    assert!(java.acquisitions >= 3 && rust.acquisitions >= 3, "both sides must acquire repeatedly:\n{context}");
    let total = (java.acquisitions + rust.acquisitions) as u64;
    assert_eq!(counter, total, "one increment per acquisition:\n{context}");
    // Each ticket once: no two holders ever read the same counter value.
    let mut owners: Vec<(u64, &str)> = java.tickets.iter().map(|&t| (t, "java")).collect();
    owners.extend(rust.tickets.iter().map(|&t| (t, "rust")));
    owners.sort();
    let tickets: Vec<u64> = owners.iter().map(|(t, _)| *t).collect();
    assert_eq!(tickets, (0..total).collect::<Vec<_>>(), "tickets are 0..{total}, once each:\n{context}");
    // The holders alternate between the languages: contention really happened across them.
    let switches = owners.windows(2).filter(|w| w[0].1 != w[1].1).count();
    eprintln!("lock interop on the {backend}: the lock passed between Curator and Rust {switches} times");
    assert!(switches >= 4, "the lock must pass between Curator and Rust repeatedly ({switches} times):\n{context}");
}

async fn without_the_lock(env: Env) {
    let Some(program) = CuratorProgram::compile("CuratorLockCheck").await else { return };
    let (java, rust, counter, out) = interop(&env, &program, false, UNLOCKED).await;
    let context = format!("java: {java:?}\nrust: {rust:?}\ncounter: {counter}\nCurator's output:\n{out}");
    let violations = java.violations.len() + rust.violations.len();
    eprintln!("lock interop, negative control: {violations} violations without the lock");
    assert!(violations > 0, "without the lock, the check must see overlapping holders:\n{context}");
}

/// Curator and the Rust Mutex exclude each other on one path of a real ZooKeeper, with the same
/// node names and order.
#[tokio::test]
async fn real_zookeeper() {
    if let Some(env) = Env::real("lock-interop", false).await {
        exclusion(env).await;
    }
}

/// The same on the embedded server (over TCP, as Curator connects).
#[tokio::test]
async fn embedded() {
    exclusion(Env::embedded("lock-interop").await).await;
}

/// The negative control: without the lock, the same check sees overlapping holders (on a real
/// ZooKeeper), so the check above cannot pass by accident.
#[tokio::test]
async fn negative_control() {
    if let Some(env) = Env::real("lock-interop-nolock", false).await {
        without_the_lock(env).await;
    }
}
