//! conclave's locks and Apache Curator's on the same paths exclude each other: `Mutex` and
//! `InterProcessMutex` here, `RwLock` and `InterProcessReadWriteLock` in [`rwlock`], `Semaphore`
//! and `InterProcessSemaphoreV2` in [`semaphore`]. Same node layout (`_c_<uuid>-lock-<seq>`,
//! `-__READ__`/`-__WRIT__`, `-lease-`), same order (by sequence suffix), so each side sees the
//! other's holders and waits for them. Curator runs as a Java process
//! (`tests/clients/CuratorLockCheck.java`, Debian `libcurator-recipes-java`) at the same time as
//! the Rust contenders; without ZooKeeper or Curator the tests say so and pass, unless
//! `CONCLAVE_REQUIRE_ZOOKEEPER=1`.
//!
//! Each run has two phases. The layout phase takes turns: one side holds, the other checks that
//! it cannot get in, queues, sees the holder's nodes named and ordered as its own, and gets in
//! once the holder lets go; the sides signal each other with nodes under the test's root. Then
//! both sides contend for a few seconds, every holder on either side running the same critical
//! section against the server, built so that it cannot pass by accident:
//!
//! - exclusive holders (mutex, writers) create the ephemeral `<root>/owner` (`NodeExists` means
//!   someone else is inside), read `<root>/counter`, hold 1-5 ms, write the counter plus one
//!   *with the version it read* (`BadVersion` means someone else wrote meanwhile) and delete
//!   `owner`. The value each successful write replaced is a ticket: under exclusion the tickets
//!   of both sides together are exactly `0..n` once each, and `n` is the counter's final value.
//!   Writers also check, while `owner` exists, that no reader marker exists;
//! - readers create the ephemeral `<root>/readers/<who>`, check that `owner` does not exist, read
//!   the counter, count the readers holding with them, hold, and check `owner` and the counter
//!   again (a writer, or a write, while reading is a violation);
//! - semaphore holders add their name to the set in `<root>/holders` by a versioned
//!   read-modify-write, hold, and take it out the same way: more names than leases is a
//!   violation, and the node's final version is exactly two writes per acquisition.
//!
//! The negative controls run the same sections without the locks and must see violations.

mod rwlock;
mod semaphore;

use std::time::{Duration, Instant};

use conclave::leader::{self, Election, Layout, Leadership};
use conclave::lock::{LockGuard, Mutex, Participant, RwLock, Semaphore};
use conclave::{Client, CreateMode, ZkError as Error};
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
/// The semaphore's size, on both sides (`CuratorLockCheck.LEASES`).
const LEASES: u32 = 2;

/// The Java program's result: (success, stdout, stderr).
type JavaRun = JoinHandle<(bool, String, String)>;

/// Which lock both sides use (`CuratorLockCheck`'s RECIPE argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recipe {
    /// `Mutex` / `InterProcessMutex` on `<root>/lock`.
    Mutex,
    /// `RwLock` / `InterProcessReadWriteLock` on `<root>/rw`.
    RwLock,
    /// `Semaphore` / `InterProcessSemaphoreV2` of [`LEASES`] on `<root>/sem`.
    Semaphore,
    /// `Election` / `LeaderLatch` on `<root>/leader`: leaders run the exclusive section.
    Latch,
    /// `Election` with [`Layout::Selector`] / `LeaderSelector` on `<root>/leader`, likewise.
    Selector,
}

impl Recipe {
    /// The election layout of an election recipe.
    fn layout(self) -> Layout {
        if self == Recipe::Selector {
            Layout::Selector
        } else {
            Layout::Latch
        }
    }
}

impl Recipe {
    fn arg(self) -> &'static str {
        match self {
            Recipe::Mutex => "mutex",
            Recipe::RwLock => "rwlock",
            Recipe::Semaphore => "semaphore",
            Recipe::Latch => "latch",
            Recipe::Selector => "selector",
        }
    }
}

/// What one side reports of a contention run.
#[derive(Debug, Default)]
struct Side {
    /// Holds, of every kind.
    acquisitions: usize,
    /// The counter values the exclusive holders replaced.
    tickets: Vec<u64>,
    violations: Vec<String>,
    /// Read holds.
    reads: usize,
    /// Holds that saw another holder at once (readers, semaphore holders).
    shared: usize,
    /// Holds that saw a holder of the other side at once.
    cross: usize,
    /// The most holders seen at once.
    peak: usize,
}

impl Side {
    fn merge(&mut self, other: Side) {
        self.acquisitions += other.acquisitions;
        self.tickets.extend(other.tickets);
        self.violations.extend(other.violations);
        self.reads += other.reads;
        self.shared += other.shared;
        self.cross += other.cross;
        self.peak = self.peak.max(other.peak);
    }

    /// The counts, and the first few violations.
    fn summary(&self) -> String {
        let Side { acquisitions, tickets, violations, reads, shared, cross, peak } = self;
        let first: Vec<&String> = violations.iter().take(10).collect();
        format!(
            "{acquisitions} acquisitions ({reads} reads), {} tickets, {shared} shared, {cross} cross, peak {peak}, \
             {} violations, first {first:#?}",
            tickets.len(),
            violations.len()
        )
    }

    /// Counts a hold that saw `holders` (names: `rust-<i>`, `java-<i>`) at once.
    fn saw(&mut self, who: &str, holders: &[String]) {
        self.peak = self.peak.max(holders.len());
        if holders.len() > 1 {
            self.shared += 1;
        }
        let other = if who.starts_with("rust-") { "java-" } else { "rust-" };
        if holders.iter().any(|h| h.starts_with(other)) {
            self.cross += 1;
        }
    }
}

/// Whether `name` is `_c_<36-character uuid>-<kind><10 digits>`, Curator's protected name of a
/// contender of `kind` (`lock-`, `__READ__`, `__WRIT__`, `lease-`).
fn is_curator_name(name: &str, kind: &str) -> bool {
    let Some(rest) = name.strip_prefix("_c_") else { return false };
    let (Some(uuid), Some(rest)) = (rest.get(..36), rest.get(36..)) else { return false };
    let uuid_ok = uuid.char_indices().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => c == '-',
        _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
    });
    let seq = rest.strip_prefix('-').and_then(|r| r.strip_prefix(kind)).unwrap_or("");
    uuid_ok && seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit())
}

/// The sequence suffix (the ten trailing digits) of a contender's node name.
fn sequence(name: &str) -> u64 {
    name.get(name.len().saturating_sub(10)..)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no sequence in {name:?}"))
}

/// The children of `dir`, by sequence suffix.
async fn children_in_order(client: &Client, dir: &str) -> Vec<String> {
    let mut children = client.get_children(dir).await.expect("list the lock directory");
    children.sort_by_key(|c| sequence(c));
    children
}

/// The name of a held node, checked to be a child of `dir`.
fn node_name(guard: &LockGuard, dir: &str) -> String {
    let name = guard.path().rsplit('/').next().expect("a name").to_string();
    assert_eq!(guard.path(), format!("{dir}/{name}"), "the held node is a child of {dir}");
    name
}

/// `participants()` as (node name, holder) pairs, in the order given.
fn holders(participants: Vec<Participant>) -> Vec<(String, bool)> {
    participants.into_iter().map(|p| (p.path.rsplit('/').next().expect("a name").to_string(), p.holder)).collect()
}

/// A comma-separated list of names (empty for none).
fn names(list: &str) -> Vec<String> {
    list.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect()
}

/// Waits until `path` exists and returns its data, failing with the Java program's output if it
/// ends first.
async fn wait_for_node(client: &Client, path: &str, java: &mut JavaRun) -> String {
    let started = Instant::now();
    loop {
        match client.get_data(path).await {
            Ok((data, _)) => return String::from_utf8(data.to_vec()).expect("utf-8"),
            Err(Error::NoNode) => {}
            Err(e) => panic!("read {path}: {e}"),
        }
        if java.is_finished() {
            let (ok, out, err) = java.await.expect("the Java runner");
            panic!("Curator ended (success: {ok}) before creating {path}:\nstdout:\n{out}\nstderr:\n{err}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{path} did not appear within 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates the signal node `path` for the Java side.
async fn signal(client: &Client, path: &str, data: &str) {
    client.create(path, data.as_bytes(), CreateMode::Persistent).await.expect("create a signal node");
}

/// The exclusive section (the same as the Java side's): the ticket, or the violations seen. A
/// `writer` also checks that no reader holds while it does.
async fn exclusive(client: &Client, root: &str, who: &str, hold: Duration, writer: bool, side: &mut Side) {
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
    if writer {
        no_readers(client, root, who, side).await;
    }
    let (data, stat) = client.get_data(&counter).await.expect("read the counter");
    let n: u64 = std::str::from_utf8(&data).expect("utf-8").parse().expect("a number");
    tokio::time::sleep(hold).await;
    match client.set_data(&counter, (n + 1).to_string().as_bytes(), Some(stat.version)).await {
        Ok(_) => side.tickets.push(n),
        Err(Error::BadVersion) => side.violations.push(format!("{who} lost its increment of {n} (BadVersion)")),
        Err(e) => panic!("{who}: set {counter}: {e}"),
    }
    if writer {
        no_readers(client, root, who, side).await;
    }
    if created {
        client.delete(&owner, None).await.expect("delete the owner marker");
    }
}

async fn no_readers(client: &Client, root: &str, who: &str, side: &mut Side) {
    let readers = client.get_children(&format!("{root}/readers")).await.expect("list the readers");
    if !readers.is_empty() {
        side.violations.push(format!("{who} wrote while [{}] read", readers.join(", ")));
    }
}

/// The read section (the same as the Java side's).
async fn reading(client: &Client, root: &str, who: &str, hold: Duration, side: &mut Side) {
    let marker = format!("{root}/readers/{who}");
    let (owner, counter) = (format!("{root}/owner"), format!("{root}/counter"));
    client.create(&marker, b"", CreateMode::Ephemeral).await.expect("create the reader marker");
    if client.exists(&owner).await.expect("exists").is_some() {
        side.violations.push(format!("{who} read while a writer held"));
    }
    let before = client.get_data(&counter).await.expect("read the counter").0;
    let readers = client.get_children(&format!("{root}/readers")).await.expect("list the readers");
    side.saw(who, &readers);
    tokio::time::sleep(hold).await;
    if client.exists(&owner).await.expect("exists").is_some() {
        side.violations.push(format!("{who} read while a writer held"));
    }
    let after = client.get_data(&counter).await.expect("read the counter").0;
    if before != after {
        let (before, after) = (String::from_utf8_lossy(&before), String::from_utf8_lossy(&after));
        side.violations.push(format!("{who} saw the counter go from {before} to {after} while reading"));
    }
    client.delete(&marker, None).await.expect("delete the reader marker");
    side.reads += 1;
}

/// Adds `who` to (`enter`) or removes it from the set in `<root>/holders` by a versioned
/// read-modify-write; returns the set it wrote.
async fn update_holders(client: &Client, root: &str, who: &str, enter: bool, side: &mut Side) -> Vec<String> {
    let path = format!("{root}/holders");
    loop {
        let (data, stat) = client.get_data(&path).await.expect("read the holders");
        let mut holders: Vec<String> =
            std::str::from_utf8(&data).expect("utf-8").split_whitespace().map(str::to_string).collect();
        if holders.iter().any(|h| h == who) == enter {
            let state = if enter { "already" } else { "not" };
            side.violations.push(format!("{who} {state} in the holders [{}]", holders.join(", ")));
        }
        if enter {
            holders.push(who.to_string());
        } else {
            holders.retain(|h| h != who);
        }
        match client.set_data(&path, holders.join(" ").as_bytes(), Some(stat.version)).await {
            Ok(_) => return holders,
            // Another holder updated the set meanwhile: read it again.
            Err(Error::BadVersion) => {}
            Err(e) => panic!("{who}: set {path}: {e}"),
        }
    }
}

/// The semaphore holder's section (the same as the Java side's).
async fn leased(client: &Client, root: &str, who: &str, hold: Duration, side: &mut Side) {
    let holders = update_holders(client, root, who, true, side).await;
    side.saw(who, &holders);
    if holders.len() > LEASES as usize {
        side.violations.push(format!("{who} made {} holders: [{}]", holders.len(), holders.join(", ")));
    }
    tokio::time::sleep(hold).await;
    update_holders(client, root, who, false, side).await;
}

/// One Rust contender: acquire (unless `locked` is false), the recipe's section, release, until
/// `end`. Read-write contenders write one time in three.
async fn contend(env: &Env, recipe: Recipe, i: usize, locked: bool, end: Instant) -> Side {
    let client = env.unchrooted().await;
    let root = env.root.as_str();
    let mutex = Mutex::new(client.clone(), &format!("{root}/lock"));
    let rw = RwLock::new(client.clone(), &format!("{root}/rw"));
    let sem = Semaphore::new(client.clone(), &format!("{root}/sem"), LEASES);
    let who = format!("rust-{i}");
    let election =
        Election::new(client.clone(), &format!("{root}/leader")).layout(recipe.layout()).with_id(who.clone());
    let mut side = Side::default();
    let mut k = 0u64;
    while Instant::now() < end {
        k += 1;
        let hold = Duration::from_millis(1 + (k * 7 + i as u64 * 3) % 5);
        let write = (k + i as u64).is_multiple_of(3);
        let guard: Option<LockGuard> = match (locked, recipe) {
            (false, _) | (_, Recipe::Latch | Recipe::Selector) => None,
            (true, Recipe::Mutex) => Some(within(15, mutex.lock()).await.expect("lock")),
            (true, Recipe::RwLock) if write => Some(within(15, rw.write()).await.expect("write lock")),
            (true, Recipe::RwLock) => Some(within(15, rw.read()).await.expect("read lock")),
            (true, Recipe::Semaphore) => {
                Some(within(15, sem.acquire(1)).await.expect("a lease").pop().expect("one lease"))
            }
        };
        let leadership: Option<Leadership> = match (locked, recipe) {
            (true, Recipe::Latch | Recipe::Selector) => Some(within(15, election.campaign()).await.expect("elected")),
            _ => None,
        };
        match recipe {
            Recipe::Mutex | Recipe::Latch | Recipe::Selector => {
                exclusive(&client, root, &who, hold, false, &mut side).await
            }
            Recipe::RwLock if write => exclusive(&client, root, &who, hold, true, &mut side).await,
            Recipe::RwLock => reading(&client, root, &who, hold, &mut side).await,
            Recipe::Semaphore => leased(&client, root, &who, hold, &mut side).await,
        }
        if let Some(guard) = guard {
            guard.release().await.expect("release");
        }
        if let Some(leadership) = leadership {
            leadership.resign().await.expect("resign");
        }
        side.acquisitions += 1;
    }
    client.close().await;
    side
}

/// Parses the Java program's report.
fn java_side(out: &str) -> Side {
    let mut side = Side::default();
    let number = |n: &str| n.parse::<usize>().unwrap_or_else(|_| panic!("a count, not {n:?}"));
    for line in out.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "acquisitions" => side.acquisitions = number(value),
            "tickets" => side.tickets = value.split_whitespace().map(|t| t.parse().expect("a ticket")).collect(),
            "reads" => side.reads = number(value),
            "shared" => side.shared = number(value),
            "cross" => side.cross = number(value),
            "peak" => side.peak = number(value),
            "violation" => side.violations.push(value.to_string()),
            _ => {}
        }
    }
    side
}

/// One run of both sides.
struct Interop<'a> {
    env: &'a Env,
    program: &'a CuratorProgram,
    recipe: Recipe,
    locked: bool,
    period: Duration,
}

/// What a run left: both sides' reports, the shared state and the Java output.
#[derive(Debug)]
struct Outcome {
    java: Side,
    rust: Side,
    /// The counter's final value.
    counter: u64,
    /// The holders set's final data and version.
    holders: (String, i32),
    out: String,
}

impl Outcome {
    /// What to show when an assertion fails: a summary of each side, its first violations, the
    /// shared state and Curator's output without its long report lines.
    fn context(&self) -> String {
        let Outcome { java, rust, counter, holders, out } = self;
        let out: Vec<&str> =
            out.lines().filter(|l| !l.starts_with("tickets") && !l.starts_with("violation ")).collect();
        format!(
            "java: {}\nrust: {}\ncounter: {counter}\nholders: {holders:?}\nCurator's output:\n{}",
            java.summary(),
            rust.summary(),
            out.join("\n")
        )
    }

    fn violations(&self) -> usize {
        self.java.violations.len() + self.rust.violations.len()
    }

    /// The exclusive holders' tickets, with the side of each, in ticket order; checks that they
    /// are `0..counter` once each (no two holders ever read the same counter value).
    fn tickets(&self) -> Vec<(u64, &'static str)> {
        let mut owners: Vec<(u64, &str)> = self.java.tickets.iter().map(|&t| (t, "java")).collect();
        owners.extend(self.rust.tickets.iter().map(|&t| (t, "rust")));
        owners.sort();
        let tickets: Vec<u64> = owners.iter().map(|(t, _)| *t).collect();
        let n = self.counter;
        assert_eq!(tickets, (0..n).collect::<Vec<_>>(), "tickets are 0..{n}, once each:\n{}", self.context());
        owners
    }
}

impl Interop<'_> {
    /// Starts the Java side.
    fn launch(&self) -> JavaRun {
        let mut cmd = self.program.command();
        cmd.arg(self.env.tcp_address())
            .arg(&self.env.root)
            .arg(self.recipe.arg())
            .arg(JAVA_THREADS.to_string())
            .arg(self.period.as_millis().to_string())
            .arg(if self.locked { "lock" } else { "nolock" });
        tokio::spawn(run(cmd, None, Duration::from_secs(90)))
    }

    /// Runs both sides: the recipe's layout phase first when `locked` (it launches the Java side
    /// when it is ready for it), then contention (with or without the lock) for `period`.
    async fn both_sides(&self) -> Outcome {
        let admin = self.env.unchrooted().await;
        let root = self.env.root.as_str();
        admin.create(&format!("{root}/counter"), b"0", CreateMode::Persistent).await.expect("create the counter");
        admin.create(&format!("{root}/readers"), b"", CreateMode::Persistent).await.expect("create the readers");
        admin.create(&format!("{root}/holders"), b"", CreateMode::Persistent).await.expect("create the holders");
        let mut java = match (self.locked, self.recipe) {
            (false, _) => self.launch(),
            (true, Recipe::Mutex) => self.mutex_layout(&admin).await,
            (true, Recipe::RwLock) => self.rwlock_layout(&admin).await,
            (true, Recipe::Semaphore) => self.semaphore_layout(&admin).await,
            (true, Recipe::Latch | Recipe::Selector) => self.election_layout(&admin).await,
        };

        // Contention: both sides for `period` from Curator's signal.
        wait_for_node(&admin, &format!("{root}/go"), &mut java).await;
        let end = Instant::now() + self.period;
        let tasks = (0..RUST_TASKS).map(|i| contend(self.env, self.recipe, i, self.locked, end));
        let mut rust = Side::default();
        for side in futures::future::join_all(tasks).await {
            rust.merge(side);
        }
        let (ok, out, err) = within(60, java).await.expect("the Java runner");
        assert!(ok && out.contains("ok done"), "CuratorLockCheck failed:\nstdout:\n{out}\nstderr:\n{err}");
        let (counter, _) = admin.get_data(&format!("{root}/counter")).await.expect("read the counter");
        let counter: u64 = std::str::from_utf8(&counter).expect("utf-8").parse().expect("a number");
        let (holders, stat) = admin.get_data(&format!("{root}/holders")).await.expect("read the holders");
        let holders = (String::from_utf8(holders.to_vec()).expect("utf-8"), stat.version);
        admin.close().await;
        Outcome { java: java_side(&out), rust, counter, holders, out }
    }

    /// Mutex: a Rust holder, then Curator (launched now) looks at it and queues behind it.
    async fn mutex_layout(&self, admin: &Client) -> JavaRun {
        let root = self.env.root.as_str();
        let lock = format!("{root}/lock");
        let guard = within(10, Mutex::new(admin.clone(), &lock).lock()).await.expect("the first lock");
        let rust_node = node_name(&guard, &lock);
        assert!(is_curator_name(&rust_node, "lock-"), "the Rust lock node {rust_node:?} is not named as Curator's");
        let mut java = self.launch();

        let curator_order = names(&wait_for_node(admin, &format!("{root}/java-waiting"), &mut java).await);
        let children = children_in_order(admin, &lock).await;
        for c in &children {
            assert!(is_curator_name(c, "lock-"), "{c:?} in {children:?} is not named as Curator's");
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
        java
    }

    /// Latch or selector: a Rust leader (rust-0), then Curator (launched now) sees it, queues
    /// behind it and is elected once it resigns; a Rust participant (rust-1) queues behind
    /// Curator's leader and is elected once it resigns.
    async fn election_layout(&self, admin: &Client) -> JavaRun {
        let root = self.env.root.as_str();
        let path = format!("{root}/leader");
        let (layout, kind) = match self.recipe {
            Recipe::Selector => (Layout::Selector, "lock-"),
            _ => (Layout::Latch, "latch-"),
        };
        let first = within(10, Election::new(admin.clone(), &path).layout(layout).with_id("rust-0").campaign())
            .await
            .expect("elected");
        let rust_node = first.path().rsplit('/').next().expect("a name").to_string();
        assert!(is_curator_name(&rust_node, kind), "the Rust node {rust_node:?} is not named as Curator's");
        let mut java = self.launch();

        let curator_view = wait_for_node(admin, &format!("{root}/java-waiting"), &mut java).await;
        assert_eq!(curator_view, "rust-0*,java-0", "Curator's participants: the Rust leader, then its own");
        let children = children_in_order(admin, &path).await;
        assert!(children.iter().all(|c| is_curator_name(c, kind)), "{children:?} are not named as Curator's");
        assert_eq!(children[0], rust_node, "the Rust leader has the lower sequence: {children:?}");
        let ours: Vec<(String, bool)> = leader::participants(admin, &path)
            .await
            .expect("participants")
            .into_iter()
            .map(|p| (String::from_utf8(p.data.to_vec()).expect("utf-8"), p.holder))
            .collect();
        assert_eq!(ours, [("rust-0".to_string(), true), ("java-0".to_string(), false)]);
        let epoch = first.epoch();
        first.resign().await.expect("resign");

        wait_for_node(admin, &format!("{root}/java-leads"), &mut java).await;
        let java_leader = leader::leader(admin, &path).await.expect("leader").expect("Curator leads");
        assert_eq!(&java_leader.id[..], b"java-0");
        assert!(java_leader.epoch > epoch, "Curator's leader node has a greater epoch");
        let second = Election::new(self.env.unchrooted().await, &path).layout(layout).with_id("rust-1");
        let mut campaign = Box::pin(second.campaign());
        crate::support::pending_for(200, &mut campaign).await;
        signal(admin, &format!("{root}/rust-waiting"), "").await;
        let leadership = within(30, campaign).await.expect("rust-1 is elected once Curator resigned");
        assert!(leadership.epoch() > java_leader.epoch);
        wait_for_node(admin, &format!("{root}/java-resigned"), &mut java).await;
        leadership.resign().await.expect("resign");
        java
    }
}

/// Both sides contend on `recipe` (an exclusive one: the mutex, or the latch whose leaders run
/// the exclusive section): no violation, every acquisition counted once, and the hold passes
/// between Curator and Rust repeatedly.
pub(crate) async fn exclusion(env: Env, recipe: Recipe) {
    let Some(program) = CuratorProgram::compile("CuratorLockCheck").await else { return };
    let started = Instant::now();
    let backend = if env.is_embedded() { "embedded server" } else { "real ZooKeeper" };
    let interop = Interop { env: &env, program: &program, recipe, locked: true, period: CONTEND };
    let outcome = interop.both_sides().await;
    let Outcome { java, rust, counter, .. } = &outcome;
    let context = outcome.context();
    eprintln!(
        "lock interop ({}) on the {backend}: Curator {} acquisitions, Rust {} acquisitions, counter {counter}, {:.1} s",
        recipe.arg(),
        java.acquisitions,
        rust.acquisitions,
        started.elapsed().as_secs_f64()
    );
    assert!(outcome.violations() == 0, "mutual exclusion violated:\n{context}");
    assert!(java.acquisitions >= 3 && rust.acquisitions >= 3, "both sides must acquire repeatedly:\n{context}");
    let total = (java.acquisitions + rust.acquisitions) as u64;
    assert_eq!(*counter, total, "one increment per acquisition:\n{context}");
    let owners = outcome.tickets();
    // The holders alternate between the languages: contention really happened across them.
    let switches = owners.windows(2).filter(|w| w[0].1 != w[1].1).count();
    eprintln!("lock interop on the {backend}: the lock passed between Curator and Rust {switches} times");
    assert!(switches >= 4, "the lock must pass between Curator and Rust repeatedly ({switches} times):\n{context}");
}

/// Runs `recipe` on both sides without taking the lock: the checks must see violations, so
/// that they cannot pass by accident when the lock is taken.
pub(crate) async fn without_the_lock(env: Env, recipe: Recipe) {
    let Some(program) = CuratorProgram::compile("CuratorLockCheck").await else { return };
    let interop = Interop { env: &env, program: &program, recipe, locked: false, period: UNLOCKED };
    let outcome = interop.both_sides().await;
    let violations = outcome.violations();
    eprintln!("lock interop, negative control ({}): {violations} violations without the lock", recipe.arg());
    assert!(violations > 0, "without the lock, the check must see overlapping holders:\n{}", outcome.context());
}

/// Curator and the Rust Mutex exclude each other on one path of a real ZooKeeper, with the same
/// node names and order.
#[tokio::test]
async fn real_zookeeper() {
    if let Some(env) = Env::real("lock-interop", false).await {
        exclusion(env, Recipe::Mutex).await;
    }
}

/// The same on the embedded server (over TCP, as Curator connects).
#[tokio::test]
async fn embedded() {
    exclusion(Env::embedded("lock-interop").await, Recipe::Mutex).await;
}

/// The negative control: without the lock, the same check sees overlapping holders (on a real
/// ZooKeeper), so the check above cannot pass by accident.
#[tokio::test]
async fn negative_control() {
    if let Some(env) = Env::real("lock-interop-nolock", false).await {
        without_the_lock(env, Recipe::Mutex).await;
    }
}
