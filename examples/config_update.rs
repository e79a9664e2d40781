//! Optimistic updates with Conclave: four services, each on its own session, edit one shared
//! JSON config document with `conclave::atomic::retry_change` (here through one `RetryChange`
//! handle per service): read the node, change the JSON, write it at the version read, and start
//! again if someone else wrote in between. No lock is taken.
//!
//! One service, `gateway`, reaches the server through a fault-injecting TCP proxy
//! (`conclave_core::testing::Proxy`): its network is cut off several times for a while and then
//! healed, and every tenth of its changes loses the reply to its write (the write is applied, but
//! the connection breaks before the service hears so). `retry_change` rides all of that out, and
//! its exactly-once markers (on by default) tell, after the reconnect, whether a write whose
//! reply was lost had committed: such a change is counted once, never applied twice and never
//! reported as failed.
//!
//! Every change bumps the document's `version` (the total of all changes), sets `updated_by`,
//! and adds one to the service's own entry under `changes`. At the end the example prints the
//! document and checks it against the calls that returned `Ok`: `version` must equal their
//! number, and each service's entry the number of its own. It exits with an error if not.
//!
//! ```text
//! cargo run --example config_update                              # embedded server on a free port
//! cargo run --example config_update -- --connect 127.0.0.1:2181  # the same on a real ZooKeeper
//! ```

/// Where the example runs: the embedded server, or the ZooKeeper named by `--connect`.
#[path = "support/target.rs"]
mod target;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conclave::atomic::{retry_change, Change, RetryChange};
use conclave::Client;
use conclave_core::testing::Proxy;
use serde_json::{json, Map, Value};

use target::BoxError;

/// The config document's node.
const PATH: &str = "/config-update-example/app.json";
/// The services that edit the document, each on its own session.
const SERVICES: [&str; 4] = ["billing", "checkout", "search", "gateway"];
/// The service whose network fails: it connects through the proxy.
const FLAKY: &str = "gateway";
/// How many changes each service makes.
const CHANGES_PER_SERVICE: usize = 50;
/// The pause between two changes of one service.
const PAUSE: Duration = Duration::from_millis(40);
/// Every this-many-th change of the flaky service loses the reply to its write.
const LOSE_REPLY_EVERY: usize = 10;
/// How many times the flaky service's network is cut off.
const OUTAGES: usize = 3;
/// How long the network is up before each outage.
const UP: Duration = Duration::from_millis(400);
/// How long each outage lasts (well within the session timeout, so the session survives it).
const DOWN: Duration = Duration::from_millis(400);
/// The session timeout of every service.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// The whole run gives up after this long rather than hang.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// What one service did.
#[derive(Debug)]
struct Report {
    /// The service's name.
    name: &'static str,
    /// Its `retry_change` calls that returned `Ok`.
    applied: usize,
    /// Closure calls beyond one per change: lost races, and lost replies of writes that had not
    /// committed.
    retries: u32,
    /// Write replies the proxy threw away.
    lost_replies: usize,
    /// Of those, writes that had committed all the same (recognised by their marker).
    committed_unheard: usize,
    /// The error that stopped the service early, if one did.
    error: Option<BoxError>,
}

/// Runs the example on the embedded server or `--connect`'s, and shuts the embedded one down.
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    target::run_checked(GIVE_UP_AFTER, |hosts| async move { run(&hosts).await }).await
}

/// The whole example against the servers of `hosts`.
async fn run(hosts: &str) -> Result<(), BoxError> {
    let connect =
        |hosts: String| async move { Client::builder().session_timeout(SESSION_TIMEOUT).connect(&hosts).await };

    // The flaky service reaches the (first) server through the proxy.
    let (target, chroot) = first_server(hosts);
    let proxy = Proxy::start(&target).await?;

    // A fresh document: re-runs against a real ZooKeeper find the previous one, so it goes first.
    // retry_change then creates the node (and its parent) since it is missing.
    let admin = connect(hosts.to_string()).await?;
    match admin.delete(PATH, None).await {
        Ok(()) | Err(conclave::ZkError::NoNode) => {}
        Err(e) => return Err(e.into()),
    }
    let initial = json!({ "version": 0, "updated_by": "setup", "changes": {} });
    retry_change(&admin, PATH, |_| Ok::<_, BoxError>(Change::set(serde_json::to_vec(&initial)?))).await?;
    println!("Wrote a fresh config document at {PATH}");

    let mut clients = Vec::new();
    for name in SERVICES {
        let hosts = if name == FLAKY { format!("{}{chroot}", proxy.connect_string()) } else { hosts.to_string() };
        clients.push((name, connect(hosts).await?));
    }
    println!(
        "{} services update it, {CHANGES_PER_SERVICE} changes each; {FLAKY} connects through a fault-injecting proxy\n",
        SERVICES.len()
    );

    // How many changes each service has applied so far, for the narrative.
    let progress: Vec<AtomicUsize> = SERVICES.iter().map(|_| AtomicUsize::new(0)).collect();
    let services = clients.iter().zip(&progress).map(|((name, client), applied)| {
        let faults = (*name == FLAKY).then_some(&proxy);
        service(name, client, faults, applied)
    });
    let (reports, ()) = tokio::join!(futures::future::join_all(services), network(&proxy, &progress));

    // The document as it ends, and the check against what the services were told.
    let (data, stat) = admin.get_data(PATH).await?;
    let config: Value = serde_json::from_slice(&data)?;
    println!("\nThe config document (node version {}):\n{}", stat.version, serde_json::to_string_pretty(&config)?);

    let applied: usize = reports.iter().map(|r| r.applied).sum();
    let version = config["version"].as_u64();
    println!("\nChanges applied (retry_change calls that returned Ok): {applied}; document version: {}", show(version));
    let mut problems = Vec::new();
    if version != Some(applied as u64) {
        problems.push(format!("the document's version is {}, but {applied} changes were applied", show(version)));
    }
    for r in &reports {
        let counted = config["changes"][r.name].as_u64();
        println!(
            "  {:<9} {} applied, document says {}; {} retries; {} write replies lost, {} of them committed",
            r.name,
            r.applied,
            show(counted),
            r.retries,
            r.lost_replies,
            r.committed_unheard,
        );
        if counted.unwrap_or(0) != r.applied as u64 {
            problems.push(format!(
                "{} applied {} changes, but the document counts {}",
                r.name,
                r.applied,
                show(counted)
            ));
        }
        if let Some(e) = &r.error {
            problems.push(format!("{} stopped early: {e}", r.name));
        }
    }

    admin.close().await;
    for (_, client) in &clients {
        client.close().await;
    }
    if problems.is_empty() {
        println!("\nEvery change was applied exactly once.");
        Ok(())
    } else {
        Err(problems.join("; ").into())
    }
}

/// One service: `CHANGES_PER_SERVICE` changes to the document, one every `PAUSE`. With `faults`
/// (the proxy it connects through), every `LOSE_REPLY_EVERY`-th change loses its write's reply.
async fn service(name: &'static str, client: &Client, faults: Option<&Proxy>, progress: &AtomicUsize) -> Report {
    let mut report = Report { name, applied: 0, retries: 0, lost_replies: 0, committed_unheard: 0, error: None };
    // `retry_change(client, path, f)` is `RetryChange::new(client, path).run(f)`. A service that
    // changes the node again and again keeps one handle: its next change starts from the
    // document as its last one wrote it (one round trip instead of two while no one else wrote).
    let document = RetryChange::new(client.clone(), PATH);
    for n in 1..=CHANGES_PER_SERVICE {
        let mut lose_reply = faults.filter(|_| n % LOSE_REPLY_EVERY == 0);
        let mut lost = false;
        let result = document
            .run(|current| {
                let changed = apply(current.map(|(data, _stat)| data), name)?;
                // Fault injection, for this demo only (a real closure has no side effects: it
                // may be called again, and only the call whose change is written counts): the
                // reply to the write about to be sent is thrown away, and the connection cut.
                if let Some(proxy) = lose_reply.take() {
                    proxy.drop_next_reply();
                    lost = true;
                }
                Ok::<_, BoxError>(Change::set(changed))
            })
            .await;
        let changed = match result {
            Ok(changed) => changed,
            Err(e) => {
                println!("{name}: change {n} failed, the service stops: {e}");
                report.error = Some(e);
                break;
            }
        };
        report.applied += 1;
        progress.fetch_add(1, Ordering::SeqCst);
        report.retries += changed.attempts - 1;
        if lost {
            report.lost_replies += 1;
            if changed.settled {
                report.committed_unheard += 1;
                println!(
                    "{name}: change {n}: the reply to its write was lost; its marker showed the write had \
                     committed, so it counts once and is not applied again"
                );
            } else {
                println!(
                    "{name}: change {n}: the reply to its write was lost; its marker showed the write had not \
                     committed (another service wrote first), so it was made again from a fresh read"
                );
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
    report
}

/// One change by `service` to the document as read (`None`: the node does not exist yet):
/// `version` bumped, `updated_by` set, the service's entry under `changes` incremented.
///
/// # Errors
/// The document is not JSON, or not the object this example writes.
fn apply(current: Option<&[u8]>, service: &str) -> Result<Vec<u8>, BoxError> {
    let mut doc = match current {
        Some(data) if !data.is_empty() => serde_json::from_slice(data)?,
        _ => json!({}),
    };
    let config = doc.as_object_mut().ok_or("the config document is not a JSON object")?;
    let version = config.get("version").and_then(Value::as_u64).unwrap_or(0);
    config.insert("version".into(), (version + 1).into());
    config.insert("updated_by".into(), service.into());
    let changes = config.entry("changes").or_insert_with(|| Value::Object(Map::new()));
    let changes = changes.as_object_mut().ok_or("`changes` is not a JSON object")?;
    let mine = changes.get(service).and_then(Value::as_u64).unwrap_or(0);
    changes.insert(service.into(), (mine + 1).into());
    Ok(serde_json::to_vec(&doc)?)
}

/// The flaky service's network: `OUTAGES` times, up for `UP`, then cut off for `DOWN` (its
/// connection reset, and the network silent, so reconnecting waits too), then healed.
async fn network(proxy: &Proxy, progress: &[AtomicUsize]) {
    for outage in 1..=OUTAGES {
        tokio::time::sleep(UP).await;
        proxy.blackhole();
        proxy.cut();
        println!("network: {FLAKY} is cut off ({outage} of {OUTAGES}): connection reset, nothing gets through");
        tokio::time::sleep(DOWN).await;
        proxy.heal();
        let so_far: Vec<String> = SERVICES
            .iter()
            .zip(progress)
            .map(|(name, applied)| format!("{name} {}", applied.load(Ordering::SeqCst)))
            .collect();
        println!("network: healed after {DOWN:?}; changes applied so far: {}", so_far.join(", "));
    }
}

/// The proxy's target, `host:port` of the first server in `hosts` (port 2181 if none is given),
/// and the chroot suffix of `hosts` (`/app`, or empty) for the connect string through the proxy.
fn first_server(hosts: &str) -> (String, &str) {
    let (servers, chroot) = match hosts.find('/') {
        Some(i) => hosts.split_at(i),
        None => (hosts, ""),
    };
    let first = servers.split(',').next().unwrap_or(servers).trim();
    let target = if first.contains(':') { first.to_string() } else { format!("{first}:2181") };
    (target, chroot)
}

/// A count read from the document, or `missing`.
fn show(count: Option<u64>) -> String {
    count.map_or_else(|| "missing".to_string(), |n| n.to_string())
}
