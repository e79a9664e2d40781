//! Containers and TTL nodes (protocol reference section 5.3): what the server's reaper deletes,
//! and when. Both backends reap every 500 ms in these tests.

use std::time::Duration;

use conclave::{CreateMode, CreateOptions, EventType};
use conclave_core::Result;

use crate::conformance;
use crate::support::{within, Env, CONTAINER_CHECK};

conformance!(container_goes_once_emptied, unused_container_stays, ttl_node_expires_when_idle_and_childless);

/// A container is deleted (with the usual watch events) once it has had a child and has none
/// left; until then it stays.
async fn container_goes_once_emptied(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/c", b"", CreateMode::Container).await?;
    c.create("/c/child", b"", CreateMode::Persistent).await?;
    tokio::time::sleep(CONTAINER_CHECK * 3).await;
    assert!(c.exists("/c").await?.is_some(), "a container with a child stays");
    let (_, gone) = c.exists_and_watch("/c").await?;
    c.delete("/c/child", None).await?;
    let ev = within(10, gone).await?;
    assert_eq!((ev.event_type, ev.path.as_str()), (EventType::NodeDeleted, "/c"));
    assert_eq!(c.exists("/c").await?, None);
    Ok(())
}

/// A container that never had a child is never reaped (ZooKeeper 3.8's
/// `znode.container.maxNeverUsedIntervalMs` defaults to 0: off).
async fn unused_container_stays(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/empty", b"", CreateMode::Container).await?;
    tokio::time::sleep(CONTAINER_CHECK * 4).await;
    assert!(c.exists("/empty").await?.is_some());
    Ok(())
}

/// A TTL node is deleted once it has had no children and no data change for its TTL; a child
/// keeps it, and setData restarts its clock.
async fn ttl_node_expires_when_idle_and_childless(env: Env) -> Result<()> {
    let c = env.client().await;
    let ttl = Duration::from_millis(1500);
    let opts = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(ttl);
    c.create("/t", b"", opts.clone()).await?;
    c.create("/t/kid", b"", CreateMode::Persistent).await?;
    c.create("/lone", b"", opts).await?;
    // Keep /lone alive past its TTL by writing to it.
    for _ in 0..3 {
        tokio::time::sleep(ttl / 2).await;
        c.set_data("/lone", b"tick", None).await?;
    }
    let (alive, lone_gone) = c.exists_and_watch("/lone").await?;
    assert!(alive.is_some(), "setData restarts the TTL clock");
    assert_eq!(within(10, lone_gone).await?.event_type, EventType::NodeDeleted);
    assert!(c.exists("/t").await?.is_some(), "a TTL node with a child stays");
    let (_, t_gone) = c.exists_and_watch("/t").await?;
    c.delete("/t/kid", None).await?;
    assert_eq!(within(10, t_gone).await?.event_type, EventType::NodeDeleted);
    Ok(())
}
