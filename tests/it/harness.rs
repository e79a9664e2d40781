//! The real-ZooKeeper harness itself: a standalone server stops, starts again on the same data,
//! survives a SIGKILL with its data, answers four-letter words, and cleans up after itself.

use std::time::{Duration, Instant};

use conclave::{Client, CreateMode};
use conclave_core::testing::{zookeeper_required, ZooKeeperInstall, ZooKeeperServer, INSTALL_HINT};
use conclave_core::Result;

use crate::support::reconnects;

/// Something to do to the server off the async threads.
type ServerOp = Box<dyn FnOnce(&mut ZooKeeperServer) -> Result<()> + Send>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_server_lifecycle() -> Result<()> {
    if ZooKeeperInstall::find().is_none() {
        assert!(!zookeeper_required(), "CONCLAVE_REQUIRE_ZOOKEEPER=1 but {INSTALL_HINT}");
        eprintln!("skipped: {INSTALL_HINT}");
        return Ok(());
    }
    let started = Instant::now();
    // A long tick allows a 30 s session: a JVM restarting on two busy cores (the whole suite
    // runs beside it) can take longer than the default tick's 10 s maximum.
    let launch = || ZooKeeperServer::builder().tick_time(Duration::from_millis(1500)).launch();
    let server = tokio::task::spawn_blocking(launch).await.expect("launch task")?;
    eprintln!("standalone ZooKeeper serving after {:?}", started.elapsed());
    let server = std::sync::Arc::new(std::sync::Mutex::new(server));
    let blocking = |f: ServerOp| {
        let server = server.clone();
        tokio::task::spawn_blocking(move || f(&mut server.lock().expect("server lock")))
    };
    let (hosts, dir) = {
        let s = server.lock().expect("server lock");
        assert!(s.four_letter_word("ruok")?.contains("imok"));
        assert!(s.four_letter_word("srvr")?.contains("Mode: standalone"));
        (s.connect_string(), s.dir().to_path_buf())
    };
    let c = Client::builder().session_timeout(Duration::from_secs(30)).connect(&hosts).await?;
    let session = c.session_id();
    c.create("/kept", b"data", CreateMode::Persistent).await?;
    c.create("/eph", b"", CreateMode::Ephemeral).await?;

    // A graceful stop and a start on the same data: same session, same nodes.
    let states = c.state_stream();
    blocking(Box::new(|s| {
        s.stop();
        assert!(!s.is_running());
        s.start()
    }))
    .await
    .expect("restart task")?;
    reconnects(states).await;
    assert_eq!(c.session_id(), session);
    assert_eq!(c.get_data("/kept").await?.0.as_ref(), b"data");
    assert!(c.exists("/eph").await?.is_some(), "the session and its ephemeral node survived");

    // A SIGKILL loses nothing that was acknowledged either.
    let states = c.state_stream();
    blocking(Box::new(|s| {
        s.kill();
        s.start()
    }))
    .await
    .expect("kill task")?;
    reconnects(states).await;
    assert_eq!(c.session_id(), session);
    assert_eq!(c.get_data("/kept").await?.0.as_ref(), b"data");
    c.close().await;

    // Dropping the handle kills the server and removes its directory.
    let server = std::sync::Arc::try_unwrap(server).expect("sole owner").into_inner().expect("server lock");
    tokio::task::spawn_blocking(move || server.destroy()).await.expect("destroy task");
    assert!(!dir.exists(), "run directory removed");
    assert!(conclave_core::testing::four_letter_word(hosts_port(&hosts), "ruok").is_err(), "server gone");
    Ok(())
}

fn hosts_port(hosts: &str) -> u16 {
    hosts.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
}
