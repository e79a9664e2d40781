//! conclave's `atomic::Counter` and Apache Curator's `DistributedAtomicLong` on one node are one
//! counter (the node's data is the value as 8 bytes big-endian; a missing or empty node is 0),
//! with `tests/clients/CuratorCounterCheck.java` as the Curator side, on both backends:
//!
//! - Values agree: Curator and Rust take turns on one counter (and on one the Rust side
//!   created): Curator `initialize`s, `add`s, `compareAndSet`s (with right and wrong expected
//!   values) and `forceSet`s; Rust `get`s what it wrote and does the same operations; Curator
//!   reads what Rust wrote. Values at the edges (`i64::MIN`, `i64::MAX`, negative ones) and
//!   wrapping additions give the same results on both sides, and the bytes in the node are the
//!   layout. Where the two differ (Curator's `compareAndSet` compares bytes, so it fails on a
//!   missing or empty node even when 0 is expected, while Rust's counts such a node as 0) the
//!   difference is pinned too.
//! - Concurrent increments: Curator increments N times (counting the calls that `succeeded()`)
//!   while two Rust tasks increment N times each, all at once (and interleaved: the case checks
//!   that the two sides' post-values overlap).
//!
//! Every concurrent run goes through one checker ([`problems`]): the final value is the number
//! of successful increments on both sides, each successful increment reported a post-value of
//! its own (no two report the same one: no update was lost), and each writer's post-values
//! increase. The negative controls show it failing: a live run in which a Rust writer sets the
//! value it read plus one (an unconditional set, not an increment) after Curator incremented
//! (lost updates), and a checker fed a run with a wrong total, a duplicate, a missing and a
//! misordered post-value. (`interop_shared` checks its concurrent runs with the same checker.)
//!
//! The Rust side's updates also write ephemeral markers under `<parent>/.conclave-markers`
//! (see `conclave::atomic`); Curator never lists the parent, so they do not disturb it.

use std::collections::BTreeMap;
use std::time::Duration;

use conclave::atomic::{Counter, Updated};
use conclave::{Client, CreateMode, Error, Result};
use tokio::task::JoinHandle;

use crate::conformance;
use crate::support::clients::{run, CuratorProgram};
use crate::support::{within, Env};

conformance!(values_agree_turn_by_turn, concurrent_increments_add_up, blind_sets_lose_increments);

/// Increments by each writer (Curator, and each Rust task) in the concurrent cases.
const N: usize = 300;
/// Rust tasks incrementing beside Curator.
const RUST_TASKS: usize = 2;
/// The Rust writers' pause after each increment. Without it, on the embedded server (reached
/// in-process, so a Rust increment takes a fraction of Curator's round trips over TCP) the Rust
/// writers change the value between every read and write of Curator's, and Curator only gets its
/// increments in once they are done: no race at all.
const PAUSE: Duration = Duration::from_millis(1);
/// Rounds of the Rust writer that sets instead of incrementing (the live negative control).
const BLIND_ROUNDS: usize = 10;
/// The Java program.
const PROGRAM: &str = "CuratorCounterCheck";

/// A Curator run in progress: its success, stdout and stderr once it ends.
pub(super) type JavaRun = JoinHandle<(bool, String, String)>;

/// Starts the Curator program on the node `path` of this test's chroot (given to Java as the
/// full path) with the operations `ops` (see the program's usage); [`finish`] waits for it.
/// The `SharedCount` interop runs its program through these helpers too.
pub(super) fn start(program: &CuratorProgram, env: &Env, path: &str, ops: &[String]) -> JavaRun {
    let mut cmd = program.command();
    cmd.arg(env.tcp_address()).arg(format!("{}{path}", env.root)).args(ops);
    tokio::spawn(run(cmd, None, Duration::from_secs(60)))
}

/// Waits for a Curator run started by [`start`], asserts that it succeeded and ended with
/// `ok done`, and returns the lines it printed before that.
pub(super) async fn finish(java: JavaRun) -> Vec<String> {
    let (ok, out, err) = within(70, java).await.expect("the Java runner");
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert!(
        ok && lines.pop().as_deref() == Some("ok done"),
        "the Curator program failed:\nstdout:\n{out}\nstderr:\n{err}"
    );
    lines
}

/// Runs the Curator program with `ops` on the node `path` and returns what it printed.
pub(super) async fn curator(program: &CuratorProgram, env: &Env, path: &str, ops: &[String]) -> Vec<String> {
    finish(start(program, env, path, ops)).await
}

/// `&str`s as owned lines (the expected transcripts and operations).
pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The node's data: the layout the two sides share.
pub(super) async fn raw(client: &Client, path: &str) -> Result<Vec<u8>> {
    Ok(client.get_data(path).await?.0.to_vec())
}

/// Curator and Rust take turns on `/counters/agree` (and on `/counters/by-rust`, which Rust
/// creates): each turn's Curator transcript is compared line by line with the expected one, and
/// each Rust step's result with the expected value, so a disagreement on any value, on the
/// layout, on wrapping, or on a compare-and-set's outcome fails the case.
async fn values_agree_turn_by_turn(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let (path, by_rust, never) = ("/counters/agree", "/counters/by-rust", "/counters/never");
    let (min, max) = (i64::MIN, i64::MAX);
    let c = env.client().await;
    let agree = Counter::new(c.clone(), path);

    // Rust creates a counter (and its parent); Curator reads and adds to it below.
    let mine = Counter::new(c.clone(), by_rust);
    assert_eq!(mine.increment().await?, Updated { pre: 0, post: 1 });
    assert_eq!(mine.add(41).await?, Updated { pre: 1, post: 42 });

    // Turn 1, Curator: a missing counter is 0; initialize creates it once; then the Rust one.
    let ops = strings(&["get", "init:42", "init:43", "get"]);
    let ops = [ops, vec![format!("path:{}{by_rust}", env.root), "get".into(), "add:-2".into()]].concat();
    let expected = strings(&["get 0", "init true", "init false", "get 42", "get 42", "add true 42 40"]);
    assert_eq!(curator(&program, &env, path, &ops).await, expected, "Curator, turn 1");

    // Rust: sees Curator's values and layout; adds; compares and sets, wrongly and rightly.
    assert_eq!(mine.get().await?, 40, "Curator's add to the Rust counter");
    assert_eq!(raw(&c, path).await?, 42i64.to_be_bytes(), "Curator's layout");
    assert_eq!(agree.get().await?, 42, "Curator's initialize");
    assert_eq!(agree.add(-7).await?, Updated { pre: 42, post: 35 });
    assert_eq!(agree.compare_and_set(42, 0).await?, None, "a wrong expected value");
    assert_eq!(agree.compare_and_set(35, -1_000_000).await?, Some(Updated { pre: 35, post: -1_000_000 }));

    // Turn 2, Curator: sees Rust's value; a wrong and a right compare-and-set; wraps past MAX.
    let ops = ["get".into(), "cas:35:1".into(), format!("cas:-1000000:{max}"), "add:1".into(), "get".into()];
    let expected = [
        "get -1000000".into(),
        "cas false -1000000 0".into(),
        format!("cas true -1000000 {max}"),
        format!("add true {max} {min}"),
        format!("get {min}"),
    ];
    assert_eq!(curator(&program, &env, path, &ops).await, expected, "Curator, turn 2");

    // Rust: sees MIN (and its bytes); wraps back past MIN; a wrong compare-and-set; forces -1.
    assert_eq!(raw(&c, path).await?, min.to_be_bytes(), "i64::MIN's bytes");
    assert_eq!(agree.get().await?, min);
    assert_eq!(agree.add(-1).await?, Updated { pre: min, post: max }, "wraps like Java");
    assert_eq!(agree.compare_and_set(min, 0).await?, None, "a wrong expected value");
    assert_eq!(agree.force_set(-1).await?, Updated { pre: max, post: -1 });
    assert_eq!(raw(&c, path).await?, [0xff; 8], "-1's bytes");

    // Turn 3, Curator: sees -1; adds; forces MIN and wraps it; compares and sets MAX away.
    let ops = ["get".into(), "add:-7".into(), format!("set:{min}"), "add:-1".into(), format!("cas:{max}:123")];
    let expected = [
        "get -1".into(),
        "add true -1 -8".into(),
        format!("set {min}"),
        format!("add true {min} {max}"),
        format!("cas true {max} 123"),
    ];
    assert_eq!(curator(&program, &env, path, &ops).await, expected, "Curator, turn 3");

    // Rust: sees Curator's last value, then empties the node (0 for both).
    assert_eq!(agree.get().await?, 123);
    c.set_data(path, b"", None).await?;
    assert_eq!(agree.get().await?, 0, "an empty node");

    // Turn 4, Curator: an empty node is 0 and adds from 0. Where the two differ: Curator's
    // compareAndSet compares bytes, so 0 expected fails on an empty node and on a missing one.
    let ops = strings(&["get", "cas:0:5", "add:5"]);
    let ops = [ops, vec![format!("path:{}{never}", env.root), "get".into(), "cas:0:5".into()]].concat();
    let expected = strings(&["get 0", "cas false 0 0", "add true 0 5", "get 0", "cas false 0 0"]);
    assert_eq!(curator(&program, &env, path, &ops).await, expected, "Curator, turn 4");

    // Rust: sees Curator's add; where Curator's compareAndSet failed, Rust's succeeds.
    assert_eq!(agree.get().await?, 5);
    c.set_data(path, b"", None).await?;
    assert_eq!(agree.compare_and_set(0, 6).await?, Some(Updated { pre: 0, post: 6 }), "an empty node is 0");
    assert_eq!(raw(&c, path).await?, 6i64.to_be_bytes());
    let never = Counter::new(c.clone(), never);
    assert_eq!(never.compare_and_set(0, 7).await?, Some(Updated { pre: 0, post: 7 }), "a missing node is 0");
    c.close().await;
    eprintln!("counter interop on the {}: 4 Curator turns agreed with Rust's", env.backend_name());
    Ok(())
}

/// What is wrong with a run of concurrent increments, one line per problem (none: it passed).
/// `final_value` is the counter's value after the run (it started missing, at 0); `writers` are
/// the post-values each writer's successful increments reported, in the order it made them.
/// The final value must be the number of successful increments, the post-values must be
/// 1..=that number, each reported once (two increments that report the same value mean an
/// update was lost), and each writer's must increase (its increments came one after another).
pub(super) fn problems(final_value: i64, writers: &[(&str, &[i64])]) -> Vec<String> {
    let total = writers.iter().map(|(_, posts)| posts.len()).sum::<usize>() as i64;
    let mut problems = Vec::new();
    if final_value != total {
        let counts: Vec<String> = writers.iter().map(|(who, posts)| format!("{who} {}", posts.len())).collect();
        problems.push(format!("final value {final_value}, but {total} increments succeeded ({})", counts.join(", ")));
    }
    let mut reporters: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for &(who, posts) in writers {
        for (i, &post) in posts.iter().enumerate() {
            reporters.entry(post).or_default().push(who);
            if i > 0 && post <= posts[i - 1] {
                problems.push(format!("{who} got {post} after {}: not increasing", posts[i - 1]));
            }
        }
    }
    for (post, whos) in &reporters {
        if !(1..=total).contains(post) {
            problems.push(format!("{} reported {post}, outside 1..={total}", whos.join(", ")));
        } else if whos.len() > 1 {
            problems.push(format!("{post} was reported {} times (by {})", whos.len(), whos.join(", ")));
        }
    }
    let missing: Vec<i64> = (1..=total).filter(|v| !reporters.contains_key(v)).collect();
    if let Some(first) = missing.first() {
        problems.push(format!("{} of 1..={total} reported by no increment (the first: {first})", missing.len()));
    }
    problems
}

/// Asserts that the checker found nothing wrong with a run.
#[track_caller]
pub(super) fn assert_clean(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}: {} problems:\n{}", problems.len(), problems.join("\n"));
}

/// The post-values of Curator's successful increments (its `inc <post>` lines), after checking
/// its `race <succeeded> <failed>` line against them and against the N calls it made.
fn curator_posts(lines: &[String]) -> Vec<i64> {
    let posts: Vec<i64> =
        lines.iter().filter_map(|l| l.strip_prefix("inc ")).map(|v| v.parse().expect("a post-value")).collect();
    let tally = lines.iter().find_map(|l| l.strip_prefix("race ")).expect("Curator's race line");
    let (succeeded, failed) = tally.split_once(' ').expect("succeeded and failed");
    let (succeeded, failed): (usize, usize) = (succeeded.parse().expect("a count"), failed.parse().expect("a count"));
    assert_eq!((succeeded, succeeded + failed), (posts.len(), N), "Curator's tally: {tally}");
    posts
}

/// Starts Curator's N increments on `path` and returns once it is ready and told to go (it
/// created `<path>-ready`; this creates `<path>-go`), or once it failed (its output says why).
async fn start_race(program: &CuratorProgram, env: &Env, client: &Client, path: &str) -> Result<JavaRun> {
    let java = start(program, env, path, &[format!("race:{N}")]);
    let ready = format!("{path}-ready");
    within(30, async {
        while !java.is_finished() && client.exists(&ready).await?.is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok::<_, Error>(())
    })
    .await?;
    client.create(&format!("{path}-go"), b"", CreateMode::Persistent).await?;
    Ok(java)
}

/// Waits until the value `read` returns is no longer 0: Curator's first increment landed (or
/// its run ended: its output says why), so that a slow start of the JVM cannot leave the Rust
/// writers alone. The `SharedCount` interop waits the same way.
pub(super) async fn until_curator_wrote<F, Fut, T>(java: &JavaRun, mut read: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
    T: PartialEq + Default,
{
    within(30, async {
        while !java.is_finished() && read().await? == T::default() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    })
    .await
}

/// Curator increments N times (retrying lost races up to 1000 times, counting the calls that
/// `succeeded()`) while RUST_TASKS Rust tasks, each on its own session, increment N times each
/// (pausing PAUSE after each), starting as soon as Curator's first increment landed: the checker
/// finds the run clean, and the two sides' increments overlapped (so it was a race).
async fn concurrent_increments_add_up(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let path = "/counters/race";
    let client = env.client().await;
    let mut sessions = Vec::new();
    for _ in 0..RUST_TASKS {
        sessions.push(env.client().await);
    }
    let java = start_race(&program, &env, &client, path).await?;
    let counter = Counter::new(client.clone(), path);
    until_curator_wrote(&java, || counter.get()).await?;
    let tasks: Vec<JoinHandle<Result<Vec<i64>>>> = sessions
        .into_iter()
        .map(|session| {
            tokio::spawn(async move {
                let counter = Counter::new(session.clone(), path);
                let mut posts = Vec::with_capacity(N);
                for _ in 0..N {
                    posts.push(counter.increment().await?.post);
                    tokio::time::sleep(PAUSE).await;
                }
                session.close().await;
                Ok(posts)
            })
        })
        .collect();
    let mut rust = Vec::new();
    for task in tasks {
        rust.push(within(60, task).await.expect("a Rust writer")?);
    }
    let java = curator_posts(&finish(java).await);
    let final_value = counter.get().await?;
    let names: Vec<String> = (0..RUST_TASKS).map(|i| format!("rust-{i}")).collect();
    let mut writers = vec![("curator", java.as_slice())];
    writers.extend(names.iter().map(String::as_str).zip(rust.iter().map(Vec::as_slice)));
    assert_clean("Curator and Rust incrementing together", problems(final_value, &writers));
    let (java_span, rust_span) = (span(&java), span(&rust.concat()));
    assert!(
        java_span.0 < rust_span.1 && rust_span.0 < java_span.1,
        "the two sides' increments overlapped: Curator's post-values {java_span:?}, Rust's {rust_span:?}"
    );
    client.close().await;
    eprintln!(
        "counter interop on the {}: {final_value} increments, {} by Curator ({} failed), {} by Rust; \
         the turn passed between Curator and Rust {} times",
        env.backend_name(),
        java.len(),
        N - java.len(),
        rust.iter().map(Vec::len).sum::<usize>(),
        switches(&java, final_value)
    );
    Ok(())
}

/// How many times, going through the post-values 1..=`last` in order, the writer changed
/// between Curator (whose post-values are `java`) and Rust (all the others).
fn switches(java: &[i64], last: i64) -> usize {
    let java: std::collections::HashSet<i64> = java.iter().copied().collect();
    let sides: Vec<bool> = (1..=last).map(|post| java.contains(&post)).collect();
    sides.windows(2).filter(|pair| pair[0] != pair[1]).count()
}

/// The smallest and largest of `posts` (which are not empty).
pub(super) fn span(posts: &[i64]) -> (i64, i64) {
    let (min, max) = (posts.iter().min(), posts.iter().max());
    (*min.expect("some post-values"), *max.expect("some post-values"))
}

/// The live negative control: Curator increments N times while a Rust writer, BLIND_ROUNDS
/// times, reads the value, waits until Curator has incremented it, and then sets what it read
/// plus one (`force_set`, an unconditional set instead of an increment), reporting that as its
/// post-value. Each such round loses Curator's increments in between, so the checker must report
/// the final value short of the total and a post-value reported twice.
async fn blind_sets_lose_increments(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let path = "/counters/blind";
    let client = env.client().await;
    let counter = Counter::new(client.clone(), path);
    let java = start_race(&program, &env, &client, path).await?;
    let (mut blind, mut overtaken) = (Vec::new(), 0);
    while blind.len() < BLIND_ROUNDS && !java.is_finished() {
        let read = counter.get().await?;
        // Until Curator has incremented since the read (or it has finished).
        let moved = within(30, async {
            loop {
                if counter.get().await? != read {
                    return Ok::<_, Error>(true);
                }
                if java.is_finished() {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await?;
        overtaken += usize::from(moved);
        blind.push(counter.force_set(read + 1).await?.post);
    }
    let java = curator_posts(&finish(java).await);
    let final_value = counter.get().await?;
    assert!(overtaken > 0, "setup: Curator incremented during none of the {} blind rounds", blind.len());
    let found = problems(final_value, &[("curator", &java), ("rust-blind", &blind)]);
    eprintln!(
        "counter interop, negative control on the {}: {} blind sets ({overtaken} overtaken) beside {} Curator \
         increments, final value {final_value}; {} problems caught, the first:\n{}",
        env.backend_name(),
        blind.len(),
        java.len(),
        found.len(),
        found.iter().take(4).cloned().collect::<Vec<_>>().join("\n")
    );
    let caught = |what: &str| found.iter().any(|p| p.contains(what));
    assert!(caught("increments succeeded"), "the lost updates in the final value: {found:#?}");
    assert!(caught("times (by curator, rust-blind)"), "a post-value reported twice: {found:#?}");
    client.close().await;
    Ok(())
}

/// The negative control of the checker alone: it passes a correct run (two writers' interleaved
/// post-values, 1..=5, final value 5), and reports a run with a final value short of the total,
/// a post-value reported twice, one reported by none, one out of range, and a writer whose
/// post-values go down.
#[test]
fn negative_control() {
    assert_clean("a correct run", problems(5, &[("curator", &[1, 3, 4]), ("rust", &[2, 5])]));
    assert_clean("no increments", problems(0, &[("curator", &[]), ("rust", &[])]));

    let found = problems(5, &[("curator", &[1, 3, 4]), ("rust", &[3, 2, 9])]);
    eprintln!("counter interop, negative control: {} problems caught:\n{}", found.len(), found.join("\n"));
    let caught = |what: &str| found.iter().any(|p| p == what);
    assert!(caught("final value 5, but 6 increments succeeded (curator 3, rust 3)"), "the total: {found:#?}");
    assert!(caught("3 was reported 2 times (by curator, rust)"), "the duplicate: {found:#?}");
    assert!(caught("rust got 2 after 3: not increasing"), "the order: {found:#?}");
    assert!(caught("rust reported 9, outside 1..=6"), "out of range: {found:#?}");
    assert!(caught("2 of 1..=6 reported by no increment (the first: 5)"), "the missing: {found:#?}");
    assert_eq!(found.len(), 5, "nothing else: {found:#?}");
}
