//! Sessions (protocol reference sections 2 and 9). Expiry, close and timeout negotiation are
//! ZooKeeper semantics and run on both backends; connection loss, silent servers, partitions
//! and lost replies use the embedded server's fault hooks, timing-dependent cases in virtual
//! time.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave::proto::OpCode;
use conclave::{AddWatchMode, Client, CreateMode, EventType, SessionState};
use conclave_core::{Error, Result};
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

use crate::conformance;
use crate::support::{within, Env};

conformance!(
    expiry_ends_everything,
    close_removes_ephemerals_at_once,
    dropping_the_last_handle_closes_the_session,
    timeout_negotiation
);

/// Waits until `c` reaches `state`.
async fn reach(c: &Client, state: SessionState) {
    let mut states = c.state_stream();
    within(30, async {
        while let Some(s) = states.next().await {
            if s == state {
                return;
            }
        }
        panic!("state stream ended before {state:?}");
    })
    .await;
}

/// Expiry deletes the session's ephemerals (others see NodeDeleted), moves the client to
/// `Expired`, and ends its requests, watchers and streams with SESSIONEXPIRED.
async fn expiry_ends_everything(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    c.create("/e", b"", CreateMode::Ephemeral).await?;
    c.create("/x", b"", CreateMode::Persistent).await?;
    let (_, _, w) = c.get_data_and_watch("/x").await?;
    let mut pw = c.add_watch("/x", AddWatchMode::Persistent).await?;
    let (_, gone) = other.exists_and_watch("/e").await?;
    let mut states = c.state_stream();

    env.expire(&c).await?;
    assert_eq!(within(5, gone).await?.event_type, EventType::NodeDeleted);
    assert_eq!(other.exists("/e").await?, None);
    assert_eq!(c.state(), SessionState::Expired);
    assert_eq!(within(5, w).await, Err(Error::SessionExpired));
    assert_eq!(within(5, pw.next()).await, Some(Err(Error::SessionExpired)));
    assert!(pw.next().await.is_none());
    assert_eq!(c.get_data("/x").await, Err(Error::SessionExpired));
    assert_eq!(c.exists_and_watch("/x").await.err(), Some(Error::SessionExpired));
    let seen: Vec<_> = states.by_ref().collect().await;
    assert_eq!(seen.first(), Some(&SessionState::Connected));
    assert_eq!(seen.last(), Some(&SessionState::Expired));
    Ok(())
}

/// `close()` ends the session at once: its ephemerals vanish and everything pending ends with
/// `Closed`.
async fn close_removes_ephemerals_at_once(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    c.create("/e", b"", CreateMode::Ephemeral).await?;
    let (_, w) = c.exists_and_watch("/none").await?;
    let (_, gone) = other.exists_and_watch("/e").await?;
    c.close().await;
    assert_eq!(c.state(), SessionState::Closed);
    assert_eq!(within(5, gone).await?.event_type, EventType::NodeDeleted);
    assert_eq!(within(5, w).await, Err(Error::Closed));
    assert_eq!(c.get_data("/").await, Err(Error::Closed));
    c.close().await; // twice is fine
    Ok(())
}

/// Dropping the last handle closes the session in the background.
async fn dropping_the_last_handle_closes_the_session(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    c.create("/e", b"", CreateMode::Ephemeral).await?;
    let (_, gone) = other.exists_and_watch("/e").await?;
    let clone = c.clone();
    drop(c);
    assert!(gone.now_or_never().is_none(), "a clone still holds the session");
    let (_, gone) = other.exists_and_watch("/e").await?;
    drop(clone);
    assert_eq!(within(5, gone).await?.event_type, EventType::NodeDeleted);
    Ok(())
}

/// A cut connection is re-established to the same session; requests in flight at the cut end
/// with CONNECTIONLOSS (none hangs) and ephemerals survive.
#[tokio::test]
async fn cut_connection_keeps_the_session() -> Result<()> {
    let env = Env::embedded("cut").await;
    let c = env.client().await;
    let other = env.client().await;
    let session = c.session_id();
    c.create("/e", b"", CreateMode::Ephemeral).await?;
    let mut states = c.state_stream();
    env.server().faults().stall(Some(session), Duration::from_secs(60));
    let inflight: Vec<_> = (0..100).map(|i| c.create(&format!("/n{i}"), b"", CreateMode::Persistent)).collect();
    // The server applies them but holds the replies.
    within(10, async {
        while other.exists("/n99").await.expect("exists").is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(env.server().faults().cut_connection(session));
    let results = within(10, futures::future::join_all(inflight)).await;
    assert!(results.iter().all(|r| *r == Err(Error::ConnectionLoss)), "{results:?}");
    c.wait_connected().await?;
    assert_eq!(c.session_id(), session);
    assert!(c.exists("/e").await?.is_some());
    assert_eq!(states.next().await, Some(SessionState::Connected));
    assert_eq!(states.next().await, Some(SessionState::Disconnected));
    assert_eq!(states.next().await, Some(SessionState::Connected));
    Ok(())
}

/// A change made while the client was cut off fires its watch exactly once after the reconnect
/// (the client re-registers its watches with SetWatches and the server catches it up).
#[tokio::test]
async fn change_while_disconnected_fires_once() -> Result<()> {
    let env = Env::embedded("replay").await;
    let c = env.client().await;
    let other = env.client().await;
    c.create("/x", b"", CreateMode::Persistent).await?;
    c.create("/p", b"", CreateMode::Persistent).await?;
    let (_, _, data_w) = c.get_data_and_watch("/x").await?;
    let (_, child_w) = c.get_children_and_watch("/p").await?;
    let (_, created_w) = c.exists_and_watch("/later").await?;
    let (_, _, mut quiet_w) = c.get_data_and_watch("/p").await?;
    assert!(env.server().faults().blackhole(c.session_id()));
    other.set_data("/x", b"changed", None).await?;
    other.create("/p/kid", b"", CreateMode::Persistent).await?;
    other.create("/later", b"", CreateMode::Persistent).await?;
    assert!(env.server().faults().cut_connection(c.session_id()));
    assert_eq!(within(10, data_w).await?.event_type, EventType::NodeDataChanged);
    assert_eq!(within(10, child_w).await?.event_type, EventType::NodeChildrenChanged);
    assert_eq!(within(10, created_w).await?.event_type, EventType::NodeCreated);
    c.wait_connected().await?;
    crate::support::pending_for(200, &mut quiet_w).await;
    // The re-registered watch is live again.
    other.set_data("/p", b"now", None).await?;
    assert_eq!(within(10, quiet_w).await?.event_type, EventType::NodeDataChanged);
    Ok(())
}

/// A server that goes silent is detected by the read timeout (2/3 of the session timeout) and
/// the client reconnects to the same session; pings keep an idle session alive indefinitely.
#[tokio::test(start_paused = true)]
async fn silence_is_detected_and_idle_sessions_live_on() -> Result<()> {
    let env = Env::embedded("silence").await;
    let c = env.client().await;
    let session = c.session_id();
    let timeout = c.negotiated_timeout();
    assert_eq!(timeout, Duration::from_secs(4));
    c.create("/e", b"", CreateMode::Ephemeral).await?;
    tokio::time::sleep(timeout * 10).await;
    assert_eq!(c.state(), SessionState::Connected);
    assert!(c.exists("/e").await?.is_some());

    let mut states = c.state_stream();
    assert_eq!(states.next().await, Some(SessionState::Connected));
    let start = Instant::now();
    assert!(env.server().faults().blackhole(session));
    assert_eq!(states.next().await, Some(SessionState::Disconnected));
    let detected = start.elapsed();
    assert!(detected <= timeout * 2 / 3 + Duration::from_millis(50), "detected after {detected:?}");
    assert!(detected >= timeout / 3, "detected too early: {detected:?}");
    assert_eq!(states.next().await, Some(SessionState::Connected));
    assert_eq!(c.session_id(), session);
    assert!(c.exists("/e").await?.is_some());
    Ok(())
}

/// A client that cannot reach the server for longer than the session timeout comes back to an
/// expired session, and says so.
#[tokio::test(start_paused = true)]
async fn long_partition_expires_the_session() -> Result<()> {
    let env = Env::embedded("partition").await;
    let server = env.server().clone();
    let reachable = Arc::new(AtomicBool::new(true));
    let gate = reachable.clone();
    let c = env
        .builder()
        .chroot(env.root.clone())
        .connect_with(move || {
            let server = server.clone();
            let open = gate.load(Ordering::SeqCst);
            async move {
                if open {
                    server.connect_in_process().map_err(io::Error::other)
                } else {
                    Err(io::Error::new(io::ErrorKind::ConnectionRefused, "partitioned"))
                }
            }
        })
        .await?;
    let other = env.client().await;
    c.create("/e", b"", CreateMode::Ephemeral).await?;
    let (_, gone) = other.exists_and_watch("/e").await?;
    reachable.store(false, Ordering::SeqCst);
    assert!(env.server().faults().blackhole(c.session_id()));
    reach(&c, SessionState::Disconnected).await;
    let pending = c.get_data("/e");
    assert_eq!(within(30, gone).await?.event_type, EventType::NodeDeleted, "the server expired the session");
    reachable.store(true, Ordering::SeqCst);
    reach(&c, SessionState::Expired).await;
    assert_eq!(pending.await, Err(Error::SessionExpired), "queued requests end with the session");
    Ok(())
}

/// The server clamps the requested timeout to [2, 20] ticks.
async fn timeout_negotiation(env: Env) -> Result<()> {
    let short = env.connect(env.builder().session_timeout(Duration::from_millis(100))).await;
    assert_eq!(short.negotiated_timeout(), crate::support::TICK * 2);
    let long = env.connect(env.builder().session_timeout(Duration::from_secs(3600))).await;
    assert_eq!(long.negotiated_timeout(), crate::support::TICK * 20);
    let fine = env.connect(env.builder().session_timeout(Duration::from_millis(1500))).await;
    assert_eq!(fine.negotiated_timeout(), Duration::from_millis(1500));
    Ok(())
}

/// A request whose reply is lost after the server applied it reports CONNECTIONLOSS, and the
/// change is there after the reconnect.
#[tokio::test]
async fn applied_but_unanswered_request() -> Result<()> {
    let env = Env::embedded("unanswered").await;
    let c = env.client().await;
    env.server().faults().drop_reply_after_apply(c.session_id(), Some(OpCode::Create2));
    assert_eq!(c.create("/x", b"", CreateMode::Persistent).await, Err(Error::ConnectionLoss));
    c.wait_connected().await?;
    assert!(c.exists("/x").await?.is_some(), "the create was applied");
    Ok(())
}

/// Connecting to a port where nothing listens fails with a clear error within the connect
/// timeout.
#[tokio::test]
async fn connect_failure_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = Client::builder()
        .connect_timeout(Duration::from_millis(300))
        .connect(&addr.to_string())
        .await
        .expect_err("nothing listens there");
    assert!(matches!(&err, Error::Connect(why) if why.contains(&addr.to_string())), "{err}");
    let err = Client::connect("").await.expect_err("empty connect string");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

/// `Client::local`: one value per type and session handle, shared by its clones, created by the
/// first call; another client (and a new session of the same one) has its own.
#[tokio::test]
async fn session_locals_are_per_handle_and_type() -> Result<()> {
    #[derive(Default)]
    struct Hits(std::sync::atomic::AtomicUsize);
    #[derive(Default)]
    struct Other(std::sync::atomic::AtomicUsize);
    let env = Env::embedded("locals").await;
    let c = env.client().await;
    c.local::<Hits>().0.fetch_add(1, Ordering::SeqCst);
    c.clone().local::<Hits>().0.fetch_add(1, Ordering::SeqCst);
    assert_eq!(c.local::<Hits>().0.load(Ordering::SeqCst), 2, "clones share the value");
    assert_eq!(c.local::<Other>().0.load(Ordering::SeqCst), 0, "one value per type");
    let other = env.client().await;
    assert_eq!(other.local::<Hits>().0.load(Ordering::SeqCst), 0, "another session, another value");
    let renewed = c.reconnect_new_session().await?;
    assert_eq!(renewed.local::<Hits>().0.load(Ordering::SeqCst), 0, "a new session starts with none");
    Ok(())
}
