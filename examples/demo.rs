//! A short tour of Conclave's ZooKeeper client on the embedded ZooKeeper-compatible server: no
//! install needed. It creates nodes, reads them back, watches data and children, makes
//! sequential nodes, commits an atomic transaction, hands a distributed lock from one session to
//! another, and shows an ephemeral node vanishing when its session closes.
//!
//! ```text
//! cargo run --example demo                              # embedded server on a free port
//! cargo run --example demo -- --connect 127.0.0.1:2181  # the same tour on a real ZooKeeper
//! ```

#[path = "support/target.rs"]
mod target;

use std::time::Duration;

use conclave::lock::Mutex;
use conclave::{AddWatchMode, Client, CreateMode, EventType, Result};
use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<()> {
    let (server, hosts) = target::server_or_hosts().await?;

    let alice = Client::builder().session_timeout(Duration::from_secs(10)).connect(&hosts).await?;
    let bob = Client::connect(&hosts).await?;
    println!("alice has session {:#x}, bob has session {:#x}", alice.session_id(), bob.session_id());

    // Start from a clean slate when re-run against a real server: `delete_all` deletes a node
    // and its subtree.
    match alice.delete_all("/demo").await {
        Ok(()) | Err(conclave::ZkError::NoNode) => {}
        Err(e) => return Err(e.into()),
    }

    // 1. Nodes hold data and a Stat.
    let (path, stat) = alice.create("/demo", b"hello", CreateMode::Persistent).await?;
    println!("\n1. alice created {path} (czxid {:#x}, version {})", stat.czxid, stat.version);
    let (data, stat) = bob.get_data("/demo").await?;
    println!("   bob reads {:?} at version {}", String::from_utf8_lossy(&data), stat.version);

    // 2. A one-shot watch: bob is told about alice's next change.
    let (_, _, changed) = bob.get_data_and_watch("/demo").await?;
    let stat = alice.set_data("/demo", b"hello, world", Some(stat.version)).await?;
    let event = changed.await?;
    println!(
        "\n2. alice set new data (version {}); bob's watch fired: {:?} on {}",
        stat.version, event.event_type, event.path
    );
    let stale = alice.set_data("/demo", b"lost update", Some(0)).await;
    println!("   a write at the stale version 0 is refused: {:?}", stale.unwrap_err());

    // 3. Ephemeral nodes and a persistent watch on the membership directory.
    alice.create("/demo/members", b"", CreateMode::Persistent).await?;
    let mut members = bob.add_watch("/demo/members", AddWatchMode::Persistent).await?;
    alice.create("/demo/members/alice", b"", CreateMode::Ephemeral).await?;
    let event = members.next().await.expect("watch stream")?;
    println!("\n3. alice joined as an ephemeral member; bob saw {:?} on {}", event.event_type, event.path);
    println!("   members now: {:?}", bob.get_children("/demo/members").await?);

    // 4. Sequential nodes get a 10-digit, ever-increasing suffix.
    alice.create("/demo/queue", b"", CreateMode::Persistent).await?;
    print!("\n4. sequential nodes:");
    for task in ["build", "test", "ship"] {
        let (p, _) = alice.create("/demo/queue/task-", task.as_bytes(), CreateMode::PersistentSequential).await?;
        print!(" {}", conclave::path::name(&p));
    }
    println!();

    // 5. A transaction applies all its operations or none.
    let results = alice
        .transaction()
        .check("/demo", Some(1))
        .create("/demo/config", b"v1".to_vec(), CreateMode::Persistent)
        .set_data("/demo", b"configured".to_vec(), Some(1))
        .commit()
        .await?;
    println!("\n5. a transaction of {} ops committed atomically", results.len());
    let failed = alice
        .transaction()
        .create("/demo/never", b"".to_vec(), CreateMode::Persistent)
        .delete("/demo/missing", None)
        .commit()
        .await;
    let created = bob.exists("/demo/never").await?.is_some();
    println!("   a failing one applied nothing: {} (/demo/never created: {created})", failed.unwrap_err());

    // 6. A distributed lock: bob waits while alice holds it; writes fenced by the lock are applied
    //    only while the holder's lock node exists; each holder gets a larger fencing token.
    let alices = Mutex::new(alice.clone(), "/demo/lock").with_data("alice").lock().await?;
    let bobs = Mutex::new(bob.clone(), "/demo/lock").with_data("bob");
    let waiting = {
        let bobs = bobs.clone();
        tokio::spawn(async move { bobs.lock().await })
    };
    while bobs.participants().await?.len() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let line: Vec<String> = bobs
        .participants()
        .await?
        .iter()
        .map(|p| format!("{} ({})", String::from_utf8_lossy(&p.data), if p.holder { "holds" } else { "waits" }))
        .collect();
    println!(
        "\n6. alice holds /demo/lock with fencing token {:#x}; in line: {}",
        alices.fencing_token(),
        line.join(", ")
    );
    alices.fenced().set_data("/demo/config", "written under the lock", None).commit().await?;
    let alices_token = alices.fencing_token();
    alices.release().await?;
    let bobs_guard = waiting.await.expect("lock task")?;
    println!("   alice released; bob holds it now with token {:#x} > {alices_token:#x}", bobs_guard.fencing_token());
    bobs_guard.release().await?;

    // 7. Closing a session removes its ephemeral nodes at once; watchers are told.
    alice.close().await;
    let event = members.next().await.expect("watch stream")?;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    println!(
        "\n7. alice closed her session; bob saw {:?} and the members are now {:?}",
        event.event_type,
        bob.get_children("/demo/members").await?
    );

    drop(members);
    bob.delete_all("/demo").await?;
    bob.close().await;
    if let Some(server) = server {
        server.shutdown().await;
    }
    println!("\nDone.");
    Ok(())
}
