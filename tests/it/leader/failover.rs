//! Leader election on a real 3-server ensemble: the server the leader is connected to is
//! killed. The leader either keeps its leadership (its session moves to another server within
//! the session timeout) or loses it cleanly (`Lost`, then it stops acting as leader); either
//! way there is never a moment with two participants acting as leader, and the election has a
//! leader again afterwards.
//!
//! The participants stay in the election through [`Election::events`]; each acts as leader
//! between its `Elected` and its `Lost` events by holding an ephemeral marker node: creating it
//! finds any other participant still acting (NODEEXISTS), and the marker is deleted on `Lost`
//! before the stream is polled again (the leadership is only resigned then).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use conclave::leader::{Election, ElectionEvent};
use conclave::{Client, CreateMode, ZkError};
use futures::StreamExt;

use crate::ensemble::{launch, with};
use crate::support::within;

const PATH: &str = "/failover/election";
const MARKER: &str = "/failover/acting";

/// What the participants saw.
#[derive(Default)]
struct Seen {
    /// Markers found in place when elected: two participants acting at once.
    violations: AtomicUsize,
    elections: AtomicUsize,
    losses: AtomicUsize,
    /// The participant acting now (its index and client), if any.
    acting: StdMutex<Option<(usize, Client)>>,
}

async fn participant(i: usize, client: Client, seen: Arc<Seen>) {
    let mut events = Box::pin(Election::new(client.clone(), PATH).with_id(format!("p{i}")).events());
    while let Some(event) = events.next().await {
        match event {
            Ok(ElectionEvent::Elected { .. }) => {
                seen.elections.fetch_add(1, Ordering::SeqCst);
                match client.create(MARKER, format!("p{i}").as_bytes(), CreateMode::Ephemeral).await {
                    Ok(_) => *seen.acting.lock().expect("seen") = Some((i, client.clone())),
                    Err(ZkError::NodeExists) => {
                        seen.violations.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("p{i}: create the marker: {e}"),
                }
            }
            Ok(ElectionEvent::Lost { .. }) => {
                seen.losses.fetch_add(1, Ordering::SeqCst);
                // Stop acting before the stream resigns (at the next poll).
                match client.delete(MARKER, None).await {
                    Ok(()) | Err(ZkError::NoNode) => {}
                    Err(e) => panic!("p{i}: delete the marker: {e}"),
                }
                let mut acting = seen.acting.lock().expect("seen");
                if acting.as_ref().is_some_and(|(who, _)| *who == i) {
                    *acting = None;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("p{i}: out of the election: {e}"),
        }
    }
}

/// Waits until a participant acts as leader; returns its index and client.
async fn acting(seen: &Seen) -> (usize, Client) {
    within(60, async {
        loop {
            if let Some(now) = seen.acting.lock().expect("seen").clone() {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_server_dies() {
    let Some(ens) = launch().await else { return };
    let hosts = with(&ens, |e| e.connect_string()).await;
    let connect = || Client::builder().session_timeout(Duration::from_secs(8)).connect(&hosts);
    let admin = connect().await.expect("connect");
    admin.create("/failover", b"", CreateMode::Persistent).await.expect("create /failover");
    let seen = Arc::new(Seen::default());
    let mut tasks = Vec::new();
    for i in 0..3 {
        let client = connect().await.expect("connect");
        tasks.push(tokio::spawn(participant(i, client, seen.clone())));
    }
    let (leader, client) = acting(&seen).await;
    let session = client.session_id();
    let attached = client.connected_server().expect("connected");
    let victim = with(&ens, move |e| e.index_of(&attached)).await.expect("a member");
    with(&ens, move |e| e.kill(victim)).await;
    with(&ens, |e| e.wait_for_leader(Duration::from_secs(30))).await.expect("the ensemble elects a leader");
    // Wait for the election to settle: a participant acting, its session alive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (now, now_client) = acting(&seen).await;
    let (elections, losses) = (seen.elections.load(Ordering::SeqCst), seen.losses.load(Ordering::SeqCst));
    eprintln!(
        "killed server {victim} under p{leader}: now p{now} leads (session {}), {elections} elections, {losses} losses",
        if now == leader && now_client.session_id() == session { "unchanged" } else { "another" }
    );
    assert_eq!(seen.violations.load(Ordering::SeqCst), 0, "two participants acted as leader at once");
    let marker = admin.get_data(MARKER).await.expect("the acting leader's marker").0;
    assert_eq!(&marker[..], format!("p{now}").as_bytes());
    for t in tasks {
        t.abort();
    }
    admin.close().await;
}
