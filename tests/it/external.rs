//! Clients we did not write, on the embedded server and on a real ZooKeeper: the official Java
//! CLI (`zkCli` / `ZooKeeperMain`), kazoo (Python) and Apache Curator (Java). A failure on the
//! embedded backend only is a bug of the embedded server; on both, of the test or the client.
//!
//! Each needs its package (`zookeeper`, `python3-kazoo`, `libcurator-recipes-java`); without it
//! the test says so in one line and passes, unless `CONCLAVE_REQUIRE_ZOOKEEPER=1`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use conclave::{Client, Server};

use crate::support::clients::{available, run, CuratorProgram};
use crate::support::{real_zookeeper, TICK};

/// Where a standard client connects: a fresh embedded server (over TCP) or the shared real one.
enum Target {
    Embedded(conclave::ServerHandle),
    Real(String),
}

impl Target {
    async fn embedded() -> Target {
        Target::Embedded(Server::builder().tick_time(TICK).start().await.expect("start the embedded server"))
    }

    fn hosts(&self) -> String {
        match self {
            Target::Embedded(s) => s.connect_string(),
            Target::Real(h) => h.clone(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Target::Embedded(_) => "embedded server",
            Target::Real(_) => "real ZooKeeper",
        }
    }
}

/// The targets to run a standard-client test against (the real one only if available).
async fn targets() -> Vec<Target> {
    let mut t = vec![Target::embedded().await];
    if let Some(hosts) = tokio::task::spawn_blocking(real_zookeeper).await.expect("launch the real ZooKeeper") {
        t.push(Target::Real(hosts));
    }
    t
}

fn unique(name: &str) -> String {
    format!("/ext-{name}-{}-{}", std::process::id(), uuid_like())
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// The official CLI creates, reads, updates, lists, stats and deletes nodes, makes an ephemeral
/// node that vanishes with its session, and receives a watch event.
#[tokio::test]
async fn zkcli() {
    let Some(install) = conclave_core::testing::ZooKeeperInstall::find() else {
        available(false, "ZooKeeper's CLI", "apt-get install -y zookeeper");
        return;
    };
    for target in targets().await {
        let root = unique("zkcli");
        let script = format!(
            "create {root} hello\nget {root}\nset {root} world\nget {root}\nstat {root}\n\
             create -e {root}/eph x\ncreate -s {root}/seq- s\nls {root}\nget -w {root}\nset {root} again\n\
             delete {root}/nope\nquit\n"
        );
        let mut cmd = Command::new(install.java());
        cmd.args(["-Xmx128m", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp"])
            .arg(install.classpath())
            .args(["org.apache.zookeeper.ZooKeeperMain", "-server", &target.hosts()]);
        let (_, out, err) = run(cmd, Some(script), Duration::from_secs(60)).await;
        let context = format!("zkCli on the {}:\nstdout:\n{out}\nstderr:\n{err}", target.name());
        for expected in [
            format!("Created {root}"),
            "hello".to_string(),
            "world".to_string(),
            "dataVersion = 1".to_string(),
            "dataLength = 5".to_string(),
            format!("Created {root}/eph"),
            format!("Created {root}/seq-0000000001"),
            "[eph, seq-0000000001]".to_string(),
            format!("WatchedEvent state:SyncConnected type:NodeDataChanged path:{root}"),
            format!("Node does not exist: {root}/nope"),
        ] {
            assert!(out.contains(&expected) || err.contains(&expected), "missing {expected:?} in {context}");
        }
        // The CLI's session is closed: its ephemeral node is gone, the rest is there.
        let c = Client::connect(&target.hosts()).await.expect("connect");
        assert_eq!(c.exists(&format!("{root}/eph")).await.expect("exists"), None, "{context}");
        assert_eq!(c.get_data(&root).await.expect("get").0.as_ref(), b"again", "{context}");
        c.delete(&format!("{root}/seq-0000000001"), None).await.expect("delete");
        c.delete(&root, None).await.expect("delete");
    }
}

/// kazoo connects, does CRUD, gets a watch event, commits a transaction, and two kazoo clients
/// exclude each other with kazoo's Lock recipe.
#[tokio::test]
async fn kazoo() {
    let python = Path::new("/usr/bin/python3");
    let has_kazoo =
        Command::new(python).args(["-c", "import kazoo"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !available(has_kazoo, "kazoo (Python)", "apt-get install -y python3-kazoo") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/kazoo_check.py");
    for target in targets().await {
        let mut cmd = Command::new(python);
        cmd.arg(&script).arg(target.hosts()).arg(unique("kazoo"));
        let (ok, out, err) = run(cmd, None, Duration::from_secs(90)).await;
        assert!(ok && out.contains("ok done"), "kazoo on the {}:\nstdout:\n{out}\nstderr:\n{err}", target.name());
    }
}

/// Curator's InterProcessMutex excludes a second client until released, and a LeaderLatch among
/// two participants elects exactly one leader and hands over when it closes.
#[tokio::test]
async fn curator() {
    let Some(program) = CuratorProgram::compile("CuratorCheck").await else {
        return;
    };
    for target in targets().await {
        let mut cmd = program.command();
        cmd.arg(target.hosts()).arg(unique("curator"));
        let (ok, out, err) = run(cmd, None, Duration::from_secs(120)).await;
        assert!(ok && out.contains("ok done"), "Curator on the {}:\nstdout:\n{out}\nstderr:\n{err}", target.name());
    }
}
