//! conclave's `atomic::SharedCount` and Apache Curator's `SharedCount` on one node are one count
//! (the node's data is the count as 4 bytes big-endian; the version a conditional set expects is
//! the node's data version), with `tests/clients/CuratorSharedCountCheck.java` as the Curator
//! side, on both backends:
//!
//! - Values agree: Curator and Rust take turns on one count (and on ones the Rust side created):
//!   Curator `start`s (seeding a missing node), sets and `trySetCount`s (with the value it just
//!   read, and with a stale one); Rust `get`s the same value at the same version, `try_set`s at
//!   the version it read (and at a stale one); Curator reads what Rust wrote, in the middle of a
//!   run too. Values at the edges (`i32::MIN`, `i32::MAX`, negative ones) round-trip, and the
//!   bytes in the node are the layout. Where the two differ the difference is pinned: a missing
//!   node is `None` to Rust (and `try_set` at a version fails on it, only `-1` creates it) while
//!   Curator's `start` creates it with its seed; data longer than 4 bytes is refused by Rust
//!   (`InvalidArgument`) while Curator reads its first 4 bytes (though its `trySetCount` always
//!   fails there, comparing those 4 bytes with the whole data; `setCount` replaces it); shorter
//!   data is refused by both.
//! - Concurrent increments: Curator's read/`trySetCount(v + 1)`/retry loop and two Rust tasks
//!   doing the same with `get`/`try_set` on one node, all at once; the run goes through the
//!   counter interop's checker ([`problems`]): the final value is the number of increments, no
//!   two successful writes report the same post-value, each writer's post-values increase (and
//!   the node's version is the number of writes).
//! - Following: a Rust `changes()` stream sees the values Curator writes ([`stream_problems`]:
//!   every value it yields is one Curator wrote, at the version Curator wrote it, versions and
//!   zxids strictly increase, the last one is seen), and a Curator listener sees the values Rust
//!   writes ([`listener_problems`]: each is one Rust wrote, they never go back, the last is seen).
//!
//! The negative controls show the checkers failing: a live run in which a Rust writer sets the
//! value of an earlier read plus one at the version of a later read (a stale value that the
//! version no longer protects) after Curator incremented, which loses increments; and the two
//! following checkers fed runs with values never written, values at the wrong version, versions
//! going back and a missing last value.

use std::collections::HashMap;
use std::time::Duration;

use conclave::atomic::{SharedCount, Versioned};
use conclave::{Client, CreateMode, Error, Result, ZkError};
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::interop::{
    assert_clean, curator, finish, problems, raw, span, start, strings, until_curator_wrote, JavaRun,
};
use crate::conformance;
use crate::support::clients::CuratorProgram;
use crate::support::{within, Env};

conformance!(
    values_agree_turn_by_turn,
    concurrent_increments_add_up,
    stale_values_lose_increments,
    rust_stream_follows_curator,
    curator_listener_follows_rust
);

/// Increments by each writer (Curator, and each Rust task) in the concurrent cases.
const N: usize = 200;
/// Rust tasks incrementing beside Curator.
const RUST_TASKS: usize = 2;
/// The Rust writers' pause after each increment (as in the counter interop: without it, on the
/// embedded server, reached in-process, the Rust writers would win every race until they are
/// done).
const PAUSE: Duration = Duration::from_millis(1);
/// Rounds of the Rust writer that sets stale values (the live negative control).
const STALE_ROUNDS: usize = 10;
/// Values written by the writer the other side follows.
const FOLLOWED: i32 = 200;
/// The Java program.
const PROGRAM: &str = "CuratorSharedCountCheck";

/// A Rust writer in progress: its increments' post-values and its failed `try_set`s once it ends.
type RustRun = JoinHandle<Result<(Vec<i32>, usize)>>;

/// The count and version Rust reads at `count` (which must exist).
async fn read(count: &SharedCount) -> Result<(i32, i32)> {
    let v = count.get().await?.expect("the count exists");
    Ok((v.value, v.version))
}

/// Waits until the Curator run `java` has created `<tag>-ready` (the program's hand-over: it
/// waits for `<tag>-go`, which [`go`] creates), and returns it; if it ended first, fails with its
/// output.
async fn ready(client: &Client, java: JavaRun, tag: &str) -> Result<JavaRun> {
    let ready = format!("{tag}-ready");
    let there = within(30, async {
        loop {
            if client.exists(&ready).await?.is_some() {
                return Ok::<_, Error>(true);
            }
            if java.is_finished() {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await?;
    if !there {
        let lines = finish(java).await;
        panic!("{PROGRAM} ended without creating {ready}:\n{}", lines.join("\n"));
    }
    Ok(java)
}

/// Tells the Curator run waiting at `tag` (see [`ready`]) to go on.
async fn go(client: &Client, tag: &str) -> Result<()> {
    client.create(&format!("{tag}-go"), b"", CreateMode::Persistent).await?;
    Ok(())
}

/// Curator and Rust take turns on `/shared/agree` (and on nodes Rust creates or fills): each
/// turn's Curator transcript is compared line by line with the expected one, and each Rust
/// step's result with the expected value and version, so a disagreement on any value, version,
/// byte of the layout, or conditional set's outcome fails the case.
async fn values_agree_turn_by_turn(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let (path, by_rust, seeded) = ("/shared/agree", "/shared/by-rust", "/shared/seeded");
    let (wide, short) = ("/shared/wide", "/shared/short");
    let (min, max) = (i32::MIN, i32::MAX);
    let path_op = |p: &str| format!("path:{}{p}", env.root);
    let c = env.client().await;
    let agree = SharedCount::new(c.clone(), path);

    // Rust first: a missing node has no count and no version to set at; -1 creates it, once.
    let mine = SharedCount::new(c.clone(), by_rust);
    assert_eq!(mine.get().await?, None, "a missing node");
    assert!(!mine.try_set(1, 0).await?, "a version of a missing node");
    assert!(mine.try_set(7, -1).await?, "-1 creates the node");
    assert!(!mine.try_set(8, -1).await?, "-1 on an existing node");
    assert_eq!(raw(&c, by_rust).await?, 7i32.to_be_bytes(), "Rust's layout");
    assert_eq!(read(&mine).await?, (7, 0));
    assert_eq!(SharedCount::new(c.clone(), seeded).get().await?, None, "a missing node");

    // Turn 1, Curator: start seeds a missing count (and leaves an existing one as it is); a
    // trySetCount with the value read before its own set fails, with the one read after succeeds.
    let ops = strings(&["start:42", "get", "set:-5", "tryset:100", "get", "tryset:100", "get"]);
    let more = [path_op(by_rust), "start:99".into(), "get".into(), "tryset:8".into()];
    let ops = [ops, more.to_vec(), vec![path_op(seeded), "start:-1".into()]].concat();
    let expected = strings(&[
        "start 42 0",
        "get 42 0",
        "set -5 1",
        "tryset false",
        "get -5 1",
        "tryset true",
        "get 100 2",
        "start 7 0",
        "get 7 0",
        "tryset true",
        "start -1 0",
    ]);
    assert_eq!(curator(&program, &env, path, &ops).await, expected, "Curator, turn 1");

    // Rust: the same values at the same versions, in the layout; sets at the version it read
    // (MIN), then at that stale version (nothing written).
    assert_eq!(read(&agree).await?, (100, 2), "Curator's sets");
    assert_eq!(raw(&c, path).await?, 100i32.to_be_bytes(), "Curator's layout");
    assert_eq!(read(&mine).await?, (8, 1), "Curator's trySetCount of the Rust count");
    assert_eq!(read(&SharedCount::new(c.clone(), seeded)).await?, (-1, 0), "Curator's seed");
    assert_eq!(raw(&c, seeded).await?, [0xff; 4], "-1's bytes");
    assert!(agree.try_set(min, 2).await?, "at the version read");
    assert!(!agree.try_set(0, 2).await?, "at a stale version");
    assert_eq!(read(&agree).await?, (min, 3));
    assert_eq!(raw(&c, path).await?, min.to_be_bytes(), "i32::MIN's bytes");

    // Turn 2, Curator: reads MIN, sets MAX at that version, hands over (Rust sets -1 meanwhile),
    // fails to set at the version it read before, reads -1, sets a negative value.
    let tryset_max = format!("tryset:{max}");
    let ops = strings(&["start:0", "get", &tryset_max, "get", "sync:stale", "tryset:0", "get", "set:-123456789"]);
    let java = start(&program, &env, path, &ops);
    let tag = format!("{path}-stale");
    let java = ready(&c, java, &tag).await?;
    assert_eq!(read(&agree).await?, (max, 4), "Curator's trySetCount");
    assert_eq!(raw(&c, path).await?, max.to_be_bytes(), "i32::MAX's bytes");
    assert!(agree.try_set(-1, 4).await?, "-1 at the version read");
    go(&c, &tag).await?;
    let expected = [
        format!("start {min} 3"),
        format!("get {min} 3"),
        "tryset true".into(),
        format!("get {max} 4"),
        "tryset false".into(),
        "get -1 5".into(),
        "set -123456789 6".into(),
    ];
    assert_eq!(finish(java).await, expected, "Curator, turn 2");

    // Rust: Curator's last set; a set at the version before it writes nothing.
    assert_eq!(read(&agree).await?, (-123456789, 6));
    assert!(!agree.try_set(0, 5).await?, "at a stale version");
    assert_eq!(raw(&c, path).await?, (-123456789i32).to_be_bytes());

    // Where the two differ: data longer than a count is an error to Rust, while Curator reads its
    // first 4 bytes (but its trySetCount fails there: it compares the 4 bytes of the value read
    // with the data) and sets a count over it; shorter data is an error to both.
    c.create_all(wide, vec![0, 0, 0, 9, 1, 2, 3, 4], CreateMode::Persistent).await?;
    c.create_all(short, vec![0, 0, 9], CreateMode::Persistent).await?;
    let (wide_count, short_count) = (SharedCount::new(c.clone(), wide), SharedCount::new(c.clone(), short));
    assert!(matches!(wide_count.get().await, Err(Error::Zk(ZkError::InvalidArgument(_)))), "8 bytes");
    assert!(matches!(short_count.get().await, Err(Error::Zk(ZkError::InvalidArgument(_)))), "3 bytes");

    // Turn 3, Curator: the wide node and the short one.
    let ops = [path_op(wide), "start:0".into(), "get".into(), "tryset:10".into(), "set:10".into()];
    let ops = [ops.to_vec(), vec![path_op(short), "start:5".into(), "get".into()]].concat();
    let expected = strings(&[
        "start 9 0",
        "get 9 0",
        "tryset false",
        "set 10 1",
        "start error java.nio.BufferUnderflowException",
        "get error java.nio.BufferUnderflowException",
    ]);
    assert_eq!(curator(&program, &env, path, &ops).await, expected, "Curator, turn 3");

    // Rust: Curator's set over the wide node made it a count again.
    assert_eq!(raw(&c, wide).await?, 10i32.to_be_bytes());
    assert_eq!(read(&wide_count).await?, (10, 1));
    c.close().await;
    eprintln!("shared count interop on the {}: 3 Curator turns agreed with Rust's", env.backend_name());
    Ok(())
}

/// One increment on `count`: reads it, sets the value read plus one at the version read, and
/// again until a set succeeds; returns the post-value and how many sets failed.
async fn increment(count: &SharedCount) -> Result<(i32, usize)> {
    let mut failed = 0;
    loop {
        let (value, version) = read(count).await?;
        if count.try_set(value + 1, version).await? {
            return Ok((value + 1, failed));
        }
        failed += 1;
    }
}

/// The post-values of Curator's increments (its `inc <post>` lines) and its failed
/// `trySetCount` calls, after checking its `race <K> <failed>` line against them.
fn curator_posts(lines: &[String]) -> (Vec<i64>, usize) {
    let posts: Vec<i64> =
        lines.iter().filter_map(|l| l.strip_prefix("inc ")).map(|v| v.parse().expect("a post-value")).collect();
    let tally = lines.iter().find_map(|l| l.strip_prefix("race ")).expect("Curator's race line");
    let (done, failed) = tally.split_once(' ').expect("increments and failed sets");
    let (done, failed): (usize, usize) = (done.parse().expect("a count"), failed.parse().expect("a count"));
    assert_eq!((done, posts.len()), (N, N), "Curator's tally: {tally}");
    (posts, failed)
}

/// Rust's post-values as the checker takes them.
fn posts_as_i64(posts: &[i32]) -> Vec<i64> {
    posts.iter().map(|&p| i64::from(p)).collect()
}

/// Starts Curator's N increments on `path` (after it started the count, creating it at 0) and
/// returns once it is ready and told to go, or once it failed (its output says why).
async fn start_race(program: &CuratorProgram, env: &Env, client: &Client, path: &str) -> Result<JavaRun> {
    let java = start(program, env, path, &["start:0".into(), format!("race:{N}")]);
    let tag = format!("{path}-race");
    let java = ready(client, java, &tag).await?;
    go(client, &tag).await?;
    Ok(java)
}

/// Curator increments N times while RUST_TASKS Rust tasks, each on its own session, increment
/// N times each (pausing PAUSE after each), starting as soon as Curator's first increment
/// landed: the checker finds the run clean, the node's version is the number of increments,
/// and the two sides' increments overlapped (so it was a race).
async fn concurrent_increments_add_up(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let path = "/shared/race";
    let client = env.client().await;
    let mut sessions = Vec::new();
    for _ in 0..RUST_TASKS {
        sessions.push(env.client().await);
    }
    let java = start_race(&program, &env, &client, path).await?;
    let count = SharedCount::new(client.clone(), path);
    until_curator_wrote(&java, || async { Ok(read(&count).await?.0) }).await?;
    let tasks: Vec<RustRun> = sessions
        .into_iter()
        .map(|session| {
            tokio::spawn(async move {
                let count = SharedCount::new(session.clone(), path);
                let (mut posts, mut failed) = (Vec::with_capacity(N), 0);
                for _ in 0..N {
                    let (post, lost) = increment(&count).await?;
                    posts.push(post);
                    failed += lost;
                    tokio::time::sleep(PAUSE).await;
                }
                session.close().await;
                Ok((posts, failed))
            })
        })
        .collect();
    let (mut rust, mut rust_failed) = (Vec::new(), 0);
    for task in tasks {
        let (posts, failed) = within(60, task).await.expect("a Rust writer")?;
        rust.push(posts_as_i64(&posts));
        rust_failed += failed;
    }
    let (java, java_failed) = curator_posts(&finish(java).await);
    let (final_value, final_version) = read(&count).await?;
    let names: Vec<String> = (0..RUST_TASKS).map(|i| format!("rust-{i}")).collect();
    let mut writers = vec![("curator", java.as_slice())];
    writers.extend(names.iter().map(String::as_str).zip(rust.iter().map(Vec::as_slice)));
    assert_clean("Curator and Rust incrementing together", problems(i64::from(final_value), &writers));
    assert_eq!(final_version, final_value, "one write per increment, from version 0 at 0");
    let (java_span, rust_span) = (span(&java), span(&rust.concat()));
    assert!(
        java_span.0 < rust_span.1 && rust_span.0 < java_span.1,
        "the two sides' increments overlapped: Curator's post-values {java_span:?}, Rust's {rust_span:?}"
    );
    client.close().await;
    eprintln!(
        "shared count interop on the {}: {final_value} increments, {} by Curator ({java_failed} failed \
         trySetCount calls), {} by Rust ({rust_failed} failed try_sets)",
        env.backend_name(),
        java.len(),
        rust.iter().map(Vec::len).sum::<usize>(),
    );
    Ok(())
}

/// The live negative control: Curator increments N times while a Rust writer, STALE_ROUNDS
/// times, reads the count, waits until Curator has incremented it, and then sets what it read
/// first plus one at the version of a fresh read (a stale value that the version no longer
/// protects), reporting that as its post-value. Each such round loses Curator's increments in
/// between, so the checker must report the final value short of the total and a post-value
/// reported twice.
async fn stale_values_lose_increments(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let path = "/shared/stale";
    let client = env.client().await;
    let count = SharedCount::new(client.clone(), path);
    let java = start_race(&program, &env, &client, path).await?;
    let (mut stale, mut overtaken) = (Vec::new(), 0);
    while stale.len() < STALE_ROUNDS && !java.is_finished() {
        let (first, _) = read(&count).await?;
        // Until Curator has incremented since the read (or it has finished).
        let moved = within(30, async {
            loop {
                if read(&count).await?.0 != first {
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
        // At the version of a fresh read, until that version is still the node's.
        while !count.try_set(first + 1, read(&count).await?.1).await? {}
        stale.push(i64::from(first + 1));
    }
    let (java, _) = curator_posts(&finish(java).await);
    let (final_value, _) = read(&count).await?;
    assert!(overtaken > 0, "setup: Curator incremented during none of the {} stale rounds", stale.len());
    let found = problems(i64::from(final_value), &[("curator", &java), ("rust-stale", &stale)]);
    eprintln!(
        "shared count interop, negative control on the {}: {} stale sets ({overtaken} overtaken) beside {} \
         Curator increments, final value {final_value}; {} problems caught, the first:\n{}",
        env.backend_name(),
        stale.len(),
        java.len(),
        found.len(),
        found.iter().take(4).cloned().collect::<Vec<_>>().join("\n")
    );
    let caught = |what: &str| found.iter().any(|p| p.contains(what));
    assert!(caught("increments succeeded"), "the lost updates in the final value: {found:#?}");
    assert!(caught("times (by curator, rust-stale)"), "a post-value reported twice: {found:#?}");
    client.close().await;
    Ok(())
}

/// What is wrong with what a Rust `changes()` stream yielded (`seen`, in order) while a writer
/// wrote the (value, version) pairs `written`, in order (the first being the value the stream
/// started at), one line per problem (none: it passed). Each value seen must be one written, at
/// the version it was written at; versions and zxids must strictly increase; the last value
/// written must be the last seen.
fn stream_problems(written: &[(i32, i32)], seen: &[Versioned<i32>]) -> Vec<String> {
    let versions: HashMap<i32, i32> = written.iter().copied().collect();
    let mut problems = Vec::new();
    for (i, v) in seen.iter().enumerate() {
        match versions.get(&v.value) {
            None => problems.push(format!("{} at version {} was never written", v.value, v.version)),
            Some(&at) if at != v.version => {
                problems.push(format!("{} seen at version {}, written at version {at}", v.value, v.version))
            }
            Some(_) => {}
        }
        if let Some(before) = i.checked_sub(1).map(|b| &seen[b]) {
            if v.version <= before.version || v.mzxid <= before.mzxid {
                problems.push(format!(
                    "version {} (zxid {}) after version {} (zxid {}): not increasing",
                    v.version, v.mzxid, before.version, before.mzxid
                ));
            }
        }
    }
    let (last, last_seen) = (written.last(), seen.last().map(|v| (v.value, v.version)));
    if last.is_some() && last.copied() != last_seen {
        problems.push(format!("the last written {last:?} is not the last seen {last_seen:?}"));
    }
    problems
}

/// What is wrong with the values a Curator listener was told (`seen`, in order) while Rust
/// wrote 1..=`last` in order, one line per problem (none: it passed). Each must be one Rust
/// wrote; they must never go back (Curator tells its listeners the count's cached value after
/// each read, so one may repeat); the last must be `last`.
fn listener_problems(last: i32, seen: &[i32]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, &v) in seen.iter().enumerate() {
        if !(1..=last).contains(&v) {
            problems.push(format!("{v} was never written"));
        }
        if i > 0 && v < seen[i - 1] {
            problems.push(format!("{v} after {}: went back", seen[i - 1]));
        }
    }
    if seen.last() != Some(&last) {
        problems.push(format!("the last written {last} is not the last seen {:?}", seen.last()));
    }
    problems
}

/// Rust creates the count at 0 and follows it with `changes()` while Curator sets -1, -2, ...,
/// -FOLLOWED (so value i is written at version i, and a value mixed up with its version shows):
/// the stream starts at 0 and [`stream_problems`] finds what it yielded clean.
async fn rust_stream_follows_curator(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let path = "/shared/followed";
    let (writer, reader) = (env.client().await, env.client().await);
    assert!(SharedCount::new(writer.clone(), path).try_set(0, -1).await?);
    let mut changes = Box::pin(SharedCount::new(reader.clone(), path).changes());
    let first = within(10, changes.next()).await.expect("a value")?;
    assert_eq!((first.value, first.version), (0, 0), "the stream starts at the current value");
    let java = start(&program, &env, path, &strings(&["start:7", &format!("sets:-1:-{FOLLOWED}")]));
    let mut seen = vec![first];
    while seen.last().map(|v| v.value) != Some(-FOLLOWED) {
        let next = within(60, changes.next()).await.expect("a value")?;
        seen.push(next);
    }
    let expected = ["start 0 0".to_string(), format!("sets {FOLLOWED} {FOLLOWED}")];
    assert_eq!(finish(java).await, expected, "Curator's sets");
    let written: Vec<(i32, i32)> = (0..=FOLLOWED).map(|i| (-i, i)).collect();
    assert_clean("the Rust stream following Curator", stream_problems(&written, &seen));
    eprintln!(
        "shared count interop on the {}: the Rust stream yielded {} of Curator's {} values",
        env.backend_name(),
        seen.len(),
        FOLLOWED + 1
    );
    writer.close().await;
    reader.close().await;
    Ok(())
}

/// Curator starts the count Rust created at 0 and listens; once its listener is added Rust sets
/// 1..=FOLLOWED, each at the version it read: [`listener_problems`] finds what the listener was
/// told clean.
async fn curator_listener_follows_rust(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile(PROGRAM).await else { return Ok(()) };
    let path = "/shared/listened";
    let client = env.client().await;
    let count = SharedCount::new(client.clone(), path);
    assert!(count.try_set(0, -1).await?);
    let java = start(&program, &env, path, &strings(&["start:0", &format!("watch:{FOLLOWED}")]));
    let java = ready(&client, java, &format!("{path}-watch")).await?;
    for i in 1..=FOLLOWED {
        let (value, version) = read(&count).await?;
        assert_eq!((value, version), (i - 1, i - 1), "the only writer");
        assert!(count.try_set(i, version).await?, "the only writer");
    }
    let lines = finish(java).await;
    let (first, rest) = lines.split_first().expect("Curator's start line");
    assert_eq!(first, "start 0 0");
    let seen: Vec<i32> =
        rest.iter().filter_map(|l| l.strip_prefix("saw ")).map(|v| v.parse().expect("a count")).collect();
    assert_eq!(rest.last(), Some(&format!("watch {}", seen.len())), "Curator's tally");
    assert_clean("the Curator listener following Rust", listener_problems(FOLLOWED, &seen));
    eprintln!(
        "shared count interop on the {}: the Curator listener was told {} times of Rust's {FOLLOWED} values",
        env.backend_name(),
        seen.len()
    );
    client.close().await;
    Ok(())
}

/// A value seen by a stream, for the checker controls.
fn at(value: i32, version: i32, mzxid: i64) -> Versioned<i32> {
    Versioned { value, version, mzxid }
}

/// The negative control of the following checkers alone: they pass correct runs (a stream that
/// skipped values, a listener told one value twice), and report a value never written, a value
/// at the wrong version, a version or zxid going back, a listener's value going back, and a last
/// value not seen.
#[test]
fn negative_control() {
    let written = [(0, 0), (-1, 1), (-2, 2), (-3, 3)];
    assert_clean("a stream that skipped -1", stream_problems(&written, &[at(0, 0, 10), at(-2, 2, 12), at(-3, 3, 13)]));
    assert_clean("a listener told 2 twice", listener_problems(3, &[1, 2, 2, 3]));

    let seen = [at(0, 0, 10), at(-2, 1, 12), at(7, 2, 13), at(-1, 1, 11), at(-2, 2, 12)];
    let found = stream_problems(&written, &seen);
    eprintln!("shared count interop, stream checker control: {} problems caught:\n{}", found.len(), found.join("\n"));
    let caught = |what: &str| found.iter().any(|p| p == what);
    assert!(caught("-2 seen at version 1, written at version 2"), "the wrong version: {found:#?}");
    assert!(caught("7 at version 2 was never written"), "the unwritten value: {found:#?}");
    assert!(caught("version 1 (zxid 11) after version 2 (zxid 13): not increasing"), "the order: {found:#?}");
    assert!(caught("the last written Some((-3, 3)) is not the last seen Some((-2, 2))"), "the last: {found:#?}");
    assert_eq!(found.len(), 4, "nothing else: {found:#?}");

    let found = listener_problems(3, &[1, 0, 2, 1]);
    eprintln!("shared count interop, listener checker control: {} problems caught:\n{}", found.len(), found.join("\n"));
    let caught = |what: &str| found.iter().any(|p| p == what);
    assert!(caught("0 was never written"), "the unwritten value: {found:#?}");
    assert!(caught("0 after 1: went back"), "the order: {found:#?}");
    assert!(caught("1 after 2: went back"), "the order: {found:#?}");
    assert!(caught("the last written 3 is not the last seen Some(1)"), "the last: {found:#?}");
    assert_eq!(found.len(), 4, "nothing else: {found:#?}");
}
