//! A real 3-server ensemble: a client given every address keeps its session when the server it
//! is attached to dies (it reconnects to another within the session timeout, its watches still
//! fire, its ephemeral nodes survive), and writes resume once the ensemble has a leader again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave::{Client, CreateMode, EventType};
use conclave_core::testing::{zookeeper_required, ZooKeeperEnsemble, ZooKeeperInstall, INSTALL_HINT};
use conclave_core::Result;

use crate::support::{reconnects, within};

pub(crate) type Shared = Arc<Mutex<ZooKeeperEnsemble>>;

/// Runs `f` on the ensemble off the async threads (process management blocks).
pub(crate) async fn with<T: Send + 'static>(
    ens: &Shared,
    f: impl FnOnce(&mut ZooKeeperEnsemble) -> T + Send + 'static,
) -> T {
    let ens = ens.clone();
    tokio::task::spawn_blocking(move || f(&mut ens.lock().expect("ensemble lock"))).await.expect("ensemble task")
}

/// A fresh 3-server ensemble, or `None` (after saying so) without ZooKeeper installed.
pub(crate) async fn launch() -> Option<Shared> {
    if ZooKeeperInstall::find().is_none() {
        assert!(!zookeeper_required(), "CONCLAVE_REQUIRE_ZOOKEEPER=1 but {INSTALL_HINT}");
        eprintln!("skipped: {INSTALL_HINT}");
        return None;
    }
    let ens = tokio::task::spawn_blocking(ZooKeeperEnsemble::launch)
        .await
        .expect("launch task")
        .expect("launch the ensemble");
    Some(Arc::new(Mutex::new(ens)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_server_and_leader_loss() -> Result<()> {
    let Some(ens) = launch().await else { return Ok(()) };
    let hosts = with(&ens, |e| e.connect_string()).await;
    let c = Client::builder().session_timeout(Duration::from_secs(8)).connect(&hosts).await?;
    let other = Client::builder().session_timeout(Duration::from_secs(8)).connect(&hosts).await?;
    let session = c.session_id();
    c.create("/ens", b"v0", CreateMode::Persistent).await?;
    c.create("/ens/eph", b"", CreateMode::Ephemeral).await?;
    c.create("/ens/w", b"", CreateMode::Persistent).await?;
    let (_, _, watch) = c.get_data_and_watch("/ens/w").await?;

    // Kill the server the client is attached to.
    let attached = c.connected_server().expect("connected");
    let victim = with(&ens, move |e| e.index_of(&attached)).await.expect("a member");
    let states = c.state_stream();
    // 100 requests in flight when the server dies: each ends, applied or ConnectionLoss.
    let inflight: Vec<_> = (0..100).map(|i| c.set_data("/ens", format!("w{i}").as_bytes(), None)).collect();
    with(&ens, move |e| e.kill(victim)).await;
    let results = within(30, futures::future::join_all(inflight)).await;
    assert!(
        results.iter().all(|r| r.is_ok() || r.as_ref().err() == Some(&conclave::ZkError::ConnectionLoss)),
        "{results:?}"
    );
    eprintln!(
        "killed the client's server with 100 requests in flight: {} applied, {} ConnectionLoss",
        results.iter().filter(|r| r.is_ok()).count(),
        results.iter().filter(|r| r.is_err()).count()
    );
    reconnects(states).await;
    assert_eq!(c.session_id(), session, "same session after failover");
    let now = c.connected_server().expect("connected");
    assert_ne!(with(&ens, move |e| e.index_of(&now)).await, Some(victim));

    // Writes resume once there is a leader; the watch set before the failover fires.
    with(&ens, |e| e.wait_for_leader(Duration::from_secs(30))).await?;
    within(30, async {
        while other.set_data("/ens/w", b"v1", None).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(within(30, watch).await?.event_type, EventType::NodeDataChanged);
    assert!(other.exists("/ens/eph").await?.is_some(), "the ephemeral node survived the failover");
    c.set_data("/ens", b"v2", None).await?;

    // Bring the victim back, then kill the leader: a new one is elected and writes resume.
    with(&ens, move |e| e.restart(victim)).await?;
    let leader = with(&ens, |e| e.wait_for_leader(Duration::from_secs(30))).await?;
    with(&ens, move |e| e.kill(leader)).await;
    let new_leader = with(&ens, |e| e.wait_for_leader(Duration::from_secs(30))).await?;
    assert_ne!(new_leader, leader);
    within(30, async {
        while c.set_data("/ens", b"v3", None).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(c.session_id(), session);
    assert_eq!(other.get_data("/ens").await?.0.as_ref(), b"v3");
    assert!(other.exists("/ens/eph").await?.is_some());
    c.close().await;
    other.close().await;
    Ok(())
}
