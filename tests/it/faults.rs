//! Sessions under network faults, made with the `testing::Proxy` in front of either backend:
//! requests in flight when a connection breaks, changes made during a partition, connection
//! states, credentials and watches across reconnects, session moves, expiry while watching,
//! protected creates whose reply is lost, servers behind the client, request deadlines.

use std::time::Duration;

use conclave::{
    Acl, AddWatchMode, Client, ConnectionState, CreateMode, CreateOptions, EventType, Id, Perms, RetryPolicy,
    SessionState,
};
use conclave_core::{Error, Result};
use futures::StreamExt;

use crate::conformance;
use crate::support::{cut_and_reconnect, within, Env};

conformance!(
    in_flight_requests_end_when_the_connection_breaks,
    change_during_a_partition_fires_once,
    connection_states_for_recipes,
    credentials_survive_reconnects,
    session_moves_to_another_client,
    expiry_ends_a_children_watch_loop,
    protected_create_survives_a_lost_reply,
    request_deadlines_and_fail_fast,
    guaranteed_delete_is_sent_again_after_a_reconnect,
);

/// Collects `n` items of a stream (or fails after 30 s).
async fn take<S: futures::Stream + Unpin>(s: &mut S, n: usize) -> Vec<S::Item> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(within(30, s.next()).await.expect("stream ended"));
    }
    out
}

/// Every request in flight when the connection breaks ends (ConnectionLoss here: the server never
/// saw them); none hangs, and the session carries on.
async fn in_flight_requests_end_when_the_connection_breaks(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder()).await;
    let session = c.session_id();
    c.create("/p", b"", CreateMode::Persistent).await?;
    proxy.stall(Duration::from_secs(60));
    let inflight: Vec<_> = (0..100).map(|i| c.create(&format!("/p/n{i}"), b"", CreateMode::Persistent)).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    proxy.heal();
    let results = within(30, futures::future::join_all(inflight)).await;
    assert!(results.iter().all(|r| *r == Err(Error::ConnectionLoss)), "{results:?}");
    c.wait_connected().await?;
    assert_eq!(c.session_id(), session);
    assert_eq!(c.get_children("/p").await?, Vec::<String>::new(), "the held requests never reached the server");
    Ok(())
}

/// A change made while the client is partitioned away fires the client's watch exactly once
/// after the reconnect (watches are re-registered with the last zxid seen); a persistent watch
/// keeps working afterwards.
async fn change_during_a_partition_fires_once(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder()).await;
    let other = env.client().await;
    c.create("/w", b"", CreateMode::Persistent).await?;
    let (_, _, once) = c.get_data_and_watch("/w").await?;
    let mut persistent = c.add_watch("/w", AddWatchMode::Persistent).await?;
    proxy.blackhole();
    other.set_data("/w", b"during", None).await?;
    proxy.cut();
    proxy.heal();
    let ev = within(30, once).await?;
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    c.wait_connected().await?;
    other.set_data("/w", b"after", None).await?;
    let events = take(&mut persistent, 1).await;
    assert_eq!(events[0].as_ref().map(|e| e.event_type), Ok(EventType::NodeDataChanged));
    assert_eq!(c.get_data("/w").await?.0.as_ref(), b"after");
    Ok(())
}

/// Connected, then Suspended on a cut, Reconnected to the same session, and Lost when it expires.
async fn connection_states_for_recipes(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder()).await;
    let mut states = c.connection_states();
    assert_eq!(take(&mut states, 1).await, [ConnectionState::Connected]);
    proxy.cut();
    assert_eq!(take(&mut states, 2).await, [ConnectionState::Suspended, ConnectionState::Reconnected]);
    env.expire(&c).await?;
    let rest: Vec<_> = within(30, states.collect::<Vec<_>>()).await;
    // Killing the session bounces the client first (it may win the session back before the
    // close lands, and lose it again): suspensions and reconnections, then Lost, last.
    assert_eq!(rest.last(), Some(&ConnectionState::Lost), "{rest:?}");
    for pair in rest.windows(2) {
        if pair[1] == ConnectionState::Reconnected {
            assert_eq!(pair[0], ConnectionState::Suspended, "{rest:?}");
        }
    }
    // The handle can build a new session with the same settings.
    let fresh = c.reconnect_new_session().await?;
    assert_ne!(fresh.session_id(), c.session_id());
    assert_eq!(fresh.chroot(), c.chroot());
    fresh.create("/after-expiry", b"", CreateMode::Ephemeral).await?;
    Ok(())
}

/// addAuth credentials are replayed after a reconnect, and the chroot is kept.
async fn credentials_survive_reconnects(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder().digest_auth("carol", "pw")).await;
    c.add_auth("digest", b"dave:pw").await?;
    let acl = vec![Acl::new(Perms::ALL, Id::digest("dave", "pw"))];
    c.create("/mine", b"secret", CreateOptions::new(CreateMode::Persistent).acl(acl)).await?;
    cut_and_reconnect(&proxy, &c).await;
    assert_eq!(c.get_data("/mine").await?.0.as_ref(), b"secret");
    let users: Vec<String> = c.who_am_i().await?.into_iter().map(|i| i.user).collect();
    assert!(users.contains(&"carol".to_string()) && users.contains(&"dave".to_string()), "{users:?}");
    assert_eq!(env.client().await.get_data("/mine").await, Err(Error::NoAuth));
    Ok(())
}

/// A session re-attached by another client keeps its ephemeral nodes; the client that had it
/// ends as Moved (SessionMoved to its callers) and does not take it back. `detach` hands a
/// session over without closing it.
async fn session_moves_to_another_client(env: Env) -> Result<()> {
    let a = env.client().await;
    let (_, eph) = a.create("/eph", b"", CreateMode::Ephemeral).await?;
    let mut a_states = a.connection_states();
    let b = env.connect(env.builder().session(a.credentials())).await;
    assert_eq!(b.session_id(), a.session_id());
    assert_eq!(a.state(), SessionState::Moved);
    assert_eq!(a.get_data("/eph").await, Err(Error::SessionMoved));
    let seen: Vec<_> = within(10, (&mut a_states).collect::<Vec<_>>()).await;
    assert_eq!(seen.last(), Some(&ConnectionState::Lost));
    assert_eq!(b.exists("/eph").await?.map(|s| s.ephemeral_owner), Some(eph.ephemeral_owner));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.state(), SessionState::Connected, "the old client did not take the session back");
    b.create("/eph2", b"", CreateMode::Ephemeral).await?;

    let creds = b.detach().await;
    assert_eq!(b.state(), SessionState::Moved);
    let c = env.connect(env.builder().session(creds)).await;
    assert!(c.exists("/eph2").await?.is_some(), "detach did not close the session");
    c.close().await;
    let other = env.client().await;
    assert_eq!(other.exists("/eph").await?, None, "closing the moved session removed its ephemerals");
    let gone = env.builder().session(c.credentials()).chroot(env.root.clone());
    assert!(matches!(crate::support::ConnectTo::connect_raw(gone, &env.backend).await, Err(Error::SessionExpired)));
    Ok(())
}

/// A task that keeps re-watching a directory's children ends with SESSIONEXPIRED when the
/// session expires under it, instead of hanging.
async fn expiry_ends_a_children_watch_loop(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    c.create("/dir", b"", CreateMode::Persistent).await?;
    let watcher = c.clone();
    let lister = tokio::spawn(async move {
        let mut rounds = 0u32;
        loop {
            let (_, changed) = match watcher.get_children_and_watch("/dir").await {
                Ok(r) => r,
                Err(e) => return (rounds, e),
            };
            if let Err(e) = changed.await {
                return (rounds, e);
            }
            rounds += 1;
        }
    });
    for i in 0..5 {
        other.create(&format!("/dir/k{i}"), b"", CreateMode::Persistent).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.expire(&c).await?;
    let (rounds, err) = within(30, lister).await.expect("lister task");
    assert_eq!(err, Error::SessionExpired);
    assert!(rounds >= 1, "the loop saw changes before the expiry");
    Ok(())
}

/// A protected sequential create whose reply is lost (the server applied it) is found instead of
/// repeated: exactly one node.
async fn protected_create_survives_a_lost_reply(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder()).await;
    c.create("/q", b"", CreateMode::Persistent).await?;
    proxy.drop_next_reply();
    let (path, stat) =
        c.create_protected("/q/job-", b"x", CreateMode::EphemeralSequential, &RetryPolicy::default()).await?;
    let children = c.get_children("/q").await?;
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(conclave::path::join("/q", &children[0]), path);
    assert!(path.starts_with("/q/_c_") && path.ends_with("-job-0000000000"), "{path}");
    assert_eq!(stat.ephemeral_owner, c.session_id());
    // A plain sequential create under the same loss would have made a second node.
    proxy.drop_next_reply();
    assert_eq!(c.create("/q/plain-", b"", CreateMode::PersistentSequential).await, Err(Error::ConnectionLoss));
    c.wait_connected().await?;
    assert_eq!(c.get_children("/q").await?.len(), 2, "applied although its reply was lost");
    Ok(())
}

/// A guaranteed delete caught by a connection loss is sent again after the reconnect (a plain
/// delete fails with ConnectionLoss); one whose reply was lost after it was applied finds
/// NoNode on the repeat and reports success. A dropped future does not stop it.
async fn guaranteed_delete_is_sent_again_after_a_reconnect(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder().fail_fast_when_disconnected(true)).await;
    for path in ["/gd", "/plain", "/dropped", "/applied"] {
        c.create(path, b"", CreateMode::Ephemeral).await?;
    }
    proxy.stall(Duration::from_secs(60));
    let guaranteed = c.delete_guaranteed("/gd", None);
    let plain = c.delete("/plain", None);
    drop(c.delete_guaranteed("/dropped", None));
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    proxy.heal();
    assert_eq!(within(30, plain).await, Err(Error::ConnectionLoss));
    within(30, guaranteed).await?;
    c.wait_connected().await?;
    assert_eq!(c.exists("/gd").await?, None);
    assert_eq!(c.exists("/dropped").await?, None);
    assert!(c.exists("/plain").await?.is_some(), "the plain delete never reached the server");
    proxy.drop_next_reply();
    within(30, c.delete_guaranteed("/applied", None)).await?;
    assert_eq!(c.exists("/applied").await?, None);
    assert_eq!(c.delete_guaranteed("/applied", None).await, Err(Error::NoNode), "not a repeat: reported");
    Ok(())
}

/// A request timeout bounds how long a caller waits during a partition; a fail-fast client
/// refuses requests at once while disconnected; neither is sent late.
async fn request_deadlines_and_fail_fast(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder().request_timeout(Duration::from_millis(300))).await;
    proxy.blackhole();
    assert_eq!(c.create("/late", b"", CreateMode::Persistent).await, Err(Error::OperationTimeout));
    proxy.cut();
    proxy.refuse(true);
    proxy.heal();
    within(10, async {
        while c.state() != SessionState::Disconnected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(c.create("/queued", b"", CreateMode::Persistent).await, Err(Error::OperationTimeout));
    proxy.refuse(false);
    c.wait_connected().await?;
    assert_eq!(c.exists("/queued").await?, None, "a request past its deadline is never sent");

    let (proxy, fast) = env.proxied(env.builder().fail_fast_when_disconnected(true)).await;
    proxy.refuse(true);
    proxy.cut();
    within(10, async {
        while fast.state() != SessionState::Disconnected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let started = tokio::time::Instant::now();
    assert_eq!(fast.get_data("/").await, Err(Error::ConnectionLoss));
    assert!(started.elapsed() < Duration::from_secs(1));
    proxy.refuse(false);
    fast.wait_connected().await?;
    fast.get_data("/").await?;
    Ok(())
}

/// A client that has seen zxid Z never connects to a server behind Z: ZooKeeper refuses the
/// handshake; the client keeps its session suspended and finally declares it expired.
#[tokio::test]
async fn server_behind_the_client_is_refused() -> Result<()> {
    for env in backends("behind").await {
        let behind = match &env.backend {
            crate::support::Backend::Embedded(_) => {
                let fresh = conclave::Server::builder().tick_time(crate::support::TICK).start().await?;
                Fresh::Embedded(fresh)
            }
            crate::support::Backend::Real(_) => {
                let fresh = tokio::task::spawn_blocking(|| {
                    conclave_core::testing::ZooKeeperServer::builder().tick_time(crate::support::TICK).launch()
                })
                .await
                .expect("launch task")?;
                Fresh::Real(fresh)
            }
        };
        let (proxy, c) = env.proxied(env.builder().session_timeout(Duration::from_secs(2))).await;
        for i in 0..20 {
            c.create(&format!("/n{i}"), b"", CreateMode::Persistent).await?;
        }
        let mut states = c.state_stream();
        proxy.set_target(behind.address().parse().expect("address"));
        proxy.cut();
        let seen: Vec<_> = within(30, (&mut states).collect::<Vec<_>>()).await;
        assert_eq!(seen, [SessionState::Connected, SessionState::Disconnected, SessionState::Expired], "{seen:?}");
    }
    Ok(())
}

/// A second server that has seen nothing.
enum Fresh {
    Embedded(conclave::ServerHandle),
    Real(conclave_core::testing::ZooKeeperServer),
}

impl Fresh {
    fn address(&self) -> String {
        match self {
            Fresh::Embedded(s) => s.connect_string(),
            Fresh::Real(s) => s.connect_string(),
        }
    }
}

/// The environments of a test written without `conformance!` (the real one if available).
async fn backends(name: &str) -> Vec<Env> {
    let mut envs = vec![Env::embedded(name).await];
    if let Some(real) = Env::real(name, false).await {
        envs.push(real);
    }
    envs
}

/// Clients sharing a zxid floor never read state older than any of them has seen: a read
/// answered by a server behind the floor fails with StaleRead. (Two independent embedded
/// servers stand in for a leader and a lagging follower.)
#[tokio::test]
async fn zxid_floor_rejects_stale_reads() -> Result<()> {
    let ahead = conclave::Server::builder().start().await?;
    let behind = conclave::Server::builder().start().await?;
    let floor = conclave::ZxidFloor::new();
    let lagging = Client::builder().zxid_floor(floor.clone()).connect_in_process(&behind).await?;
    let writer = Client::builder().zxid_floor(floor.clone()).connect_in_process(&ahead).await?;
    for i in 0..10 {
        writer.create(&format!("/n{i}"), b"", CreateMode::Persistent).await?;
    }
    assert!(floor.get() >= writer.last_zxid());
    let err = lagging.get_data("/n9").await.unwrap_err();
    assert!(matches!(err, Error::StaleRead { floor: f, .. } if f == floor.get()), "{err:?}");
    // The lagging client's own session is unharmed; a fresh client with the floor refuses that
    // server altogether.
    let refused = Client::builder()
        .zxid_floor(floor)
        .connect_timeout(Duration::from_millis(500))
        .connect_in_process(&behind)
        .await;
    assert!(matches!(refused, Err(Error::Connect(_))), "{refused:?}");
    Ok(())
}
