//! conclave's `DoubleBarrier` and Apache Curator's `DistributedDoubleBarrier` on one path are one
//! barrier: 3 Curator members (`tests/clients/CuratorBarrierCheck.java`) and 3 Rust members enter
//! and leave together, round after round. Every member marks its arrival before `enter` and its
//! end before `leave`; once `enter` returns all 6 must have arrived, once `leave` returns all 6
//! must be done, on both sides.

use std::time::Duration;

use conclave::barrier::DoubleBarrier;
use conclave::{Client, CreateMode, ZkError};

use crate::lock::children;
use crate::support::clients::{run, CuratorProgram};
use crate::support::{within, Env};

const ROUNDS: usize = 5;
const JAVA: usize = 3;
const RUST: usize = 3;

/// Creates `path` (and its parent) for a marker.
async fn mark(client: &Client, dir: &str, who: &str) {
    match client.create_all(&format!("{dir}/{who}"), b"", CreateMode::Persistent).await {
        Ok(_) | Err(ZkError::NodeExists) => {}
        Err(e) => panic!("mark {dir}/{who}: {e}"),
    }
}

/// One Rust member's rounds, with a barrier of `count` (`JAVA + RUST` but in the negative
/// control); returns the violations it saw.
async fn member(env: &Env, i: usize, count: usize) -> Vec<String> {
    let client = env.unchrooted().await;
    let root = env.root.as_str();
    let who = format!("rust-{i}");
    let mut violations = Vec::new();
    for r in 0..ROUNDS {
        let barrier = DoubleBarrier::new(client.clone(), &format!("{root}/r{r}"), who.clone(), count);
        let (arrived, done) = (format!("{root}/arrived-{r}"), format!("{root}/done-{r}"));
        mark(&client, &arrived, &who).await;
        // The first round waits for the Java members' JVM to start, too.
        let limit = if r == 0 { 120 } else { 30 };
        within(limit, barrier.enter()).await.expect("enter");
        let n = children(&client, &arrived).await.len();
        if n < JAVA + RUST {
            violations.push(format!("{who} entered round {r} with {n} arrived"));
        }
        mark(&client, &done, &who).await;
        within(30, barrier.leave()).await.expect("leave");
        let n = children(&client, &done).await.len();
        if n < JAVA + RUST {
            violations.push(format!("{who} left round {r} with {n} done"));
        }
    }
    client.close().await;
    violations
}

/// Both sides' rounds; the violations each side saw (Curator's, Rust's), or `None` without
/// Curator.
async fn together(env: &Env) -> Option<(String, Vec<String>)> {
    let program = CuratorProgram::compile("CuratorBarrierCheck").await?;
    let mut cmd = program.command();
    cmd.arg(env.tcp_address())
        .arg(&env.root)
        .arg(ROUNDS.to_string())
        .arg(JAVA.to_string())
        .arg((JAVA + RUST).to_string());
    let java = tokio::spawn(run(cmd, None, Duration::from_secs(120)));
    let rust = futures::future::join_all((0..RUST).map(|i| member(env, i, JAVA + RUST))).await;
    let (ok, out, err) = within(150, java).await.expect("the Java runner");
    assert!(ok && out.contains("ok done"), "CuratorBarrierCheck failed:\nstdout:\n{out}\nstderr:\n{err}");
    let java: Vec<&str> = out.lines().filter(|l| l.starts_with("violation ")).collect();
    Some((java.join("\n"), rust.into_iter().flatten().collect()))
}

async fn exclusion(env: Env) {
    let Some((java, rust)) = together(&env).await else { return };
    assert!(java.is_empty(), "Curator members passed early:\n{java}");
    assert!(rust.is_empty(), "Rust members passed early: {rust:#?}");
    let backend = if env.is_embedded() { "embedded server" } else { "real ZooKeeper" };
    eprintln!("double barrier interop on the {backend}: {ROUNDS} rounds of {JAVA} Curator + {RUST} Rust members");
}

/// The negative control: Rust members alone, with a barrier of 1, pass before the other
/// members they expect have arrived, and the check says so (the Curator side runs the same
/// check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_control() {
    let env = Env::embedded("double-barrier-interop-early").await;
    let rust: Vec<String> =
        futures::future::join_all((0..RUST).map(|i| member(&env, i, 1))).await.into_iter().flatten().collect();
    eprintln!("double barrier interop, negative control: {} early passes caught", rust.len());
    assert!(!rust.is_empty(), "an early pass must be caught");
}

/// On a real ZooKeeper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_zookeeper() {
    if let Some(env) = Env::real("double-barrier-interop", false).await {
        exclusion(env).await;
    }
}

/// On the embedded server (over TCP, as Curator connects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    exclusion(Env::embedded("double-barrier-interop").await).await;
}
