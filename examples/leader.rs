//! Leader election with Conclave: three services in one process campaign for the leadership of
//! one path. The leader "crashes" (its session is expired on the server, as when a process
//! freezes past its session timeout), learns it lost, and another service takes over with a
//! greater epoch; an observer that does not take part prints every change of leader.
//!
//! ```text
//! cargo run --example leader                              # embedded server on a free port
//! cargo run --example leader -- --connect 127.0.0.1:2181  # the same on a real ZooKeeper
//! ```

#[path = "support/target.rs"]
mod target;

use std::time::Duration;

use conclave::leader::{self, Election, ElectionEvent};
use conclave::{Client, Result};
use futures::StreamExt;

const PATH: &str = "/leader-example/election";

#[tokio::main]
async fn main() -> Result<()> {
    let (server, hosts) = target::server_or_hosts().await?;
    let connect = || Client::builder().session_timeout(Duration::from_secs(4)).connect(&hosts);

    // An observer: prints who leads, at every change.
    let observer = connect().await?;
    let watching = tokio::spawn({
        let observer = observer.clone();
        async move {
            let mut changes = Box::pin(leader::observe(&observer, PATH));
            while let Some(Ok(change)) = changes.next().await {
                match change {
                    Some(l) => println!("  [observer] leader: {} (epoch {})", String::from_utf8_lossy(&l.id), l.epoch),
                    None => println!("  [observer] nobody leads"),
                }
            }
        }
    });

    // Three services, each on its own session, each staying in the election.
    let mut services = Vec::new();
    for name in ["billing-1", "billing-2", "billing-3"] {
        let client = connect().await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn({
            let election = Election::new(client.clone(), PATH).with_id(name);
            async move {
                let mut events = Box::pin(election.events());
                while let Some(event) = events.next().await {
                    match event {
                        Ok(ElectionEvent::Elected { epoch, .. }) => {
                            println!("{name}: elected, epoch {epoch}");
                            let _ = tx.send(name);
                        }
                        Ok(ElectionEvent::Lost { reason }) => println!("{name}: lost the leadership: {reason}"),
                        Ok(_) => {}
                        Err(e) => {
                            println!("{name}: out of the election: {e}");
                            return;
                        }
                    }
                }
            }
        });
        services.push((name, client, rx, task));
        // Join in order, so that billing-1 leads first.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The first leader "crashes": its session is expired on the server.
    let first =
        services.iter_mut().find_map(|(name, client, rx, _)| rx.try_recv().ok().map(|_| (*name, client.clone())));
    let Some((crashed, client)) = first else {
        println!("nobody was elected");
        return Ok(());
    };
    println!("\n{crashed} crashes: its session is expired on the server");
    conclave_core::testing::expire_session(&client).await?;

    // Someone else takes over.
    let next = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            for (name, _, rx, _) in &mut services {
                if *name != crashed && rx.try_recv().is_ok() {
                    return *name;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    match next {
        Ok(name) => println!("{name} took over\n"),
        Err(_) => println!("nobody took over within 20 s\n"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Quietly: stop every service's task (and the observer) before closing their sessions.
    watching.abort();
    for (_, _, _, task) in &services {
        task.abort();
    }
    for (_, client, _, _) in services {
        client.close().await;
    }
    observer.close().await;
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
