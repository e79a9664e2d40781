//! Service discovery with Conclave: three instances of a service register (each on its own
//! session, as three processes would), and a client picks them round-robin through a
//! `ServiceProvider`. Then one instance's session is expired: the instance is cut off from the
//! network (its traffic held by a fault-injecting proxy, as in a partition or a long pause) and
//! its session is closed on the server meanwhile, which deletes its ephemeral node. The client
//! stops picking it at once. When its network comes back, the instance's `Registration` learns
//! that its session expired, opens a new one and registers again, by itself; the client picks it
//! again.
//!
//! The layout is Curator's `curator-x-discovery` (`/<base>/<service>/<id>`, the instance as
//! JSON), so Java services and clients could take part. The example checks what it prints and
//! exits with an error if a pick is wrong: every round-robin round takes each available instance
//! once, the expired instance is never picked while it is gone, and all three are picked again
//! once it is back.
//!
//! ```text
//! cargo run --example discovery                              # embedded server on a free port
//! cargo run --example discovery -- --connect 127.0.0.1:2181  # the same on a real ZooKeeper
//! ```

/// Where the example runs: the embedded server, or the ZooKeeper named by `--connect`.
#[path = "support/target.rs"]
mod target;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use conclave::discovery::{
    DownInstances, InstancePicker, Registration, ServiceDiscovery, ServiceInstance, ServiceProvider, Strategy, UriSpec,
};
use conclave::Client;
use conclave_core::testing::{expire_session_over, Proxy};
use futures::StreamExt;
use serde_json::json;

use target::BoxError;

/// The service.
const SERVICE: &str = "greeter";
/// The instances' ids; the second one's session is expired.
const INSTANCES: [&str; 3] = ["greeter-1", "greeter-2", "greeter-3"];
/// The instance whose session is expired.
const EXPIRED: &str = "greeter-2";
/// Picks per round: two full rounds over three instances.
const PICKS: usize = 6;
/// The session timeout of every session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a step may take before the example gives up.
const STEP: Duration = Duration::from_secs(15);
/// The whole run gives up after this long rather than hang.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// Runs the example on the embedded server or `--connect`'s, and shuts the embedded one down.
#[tokio::main]
async fn main() -> Result<(), BoxError> {
    target::run_checked(GIVE_UP_AFTER, |hosts| async move { run(&hosts).await }).await
}

/// The whole example against the servers of `hosts`.
async fn run(hosts: &str) -> Result<(), BoxError> {
    let connect = |hosts: String| async move {
        Client::builder().session_timeout(SESSION_TIMEOUT).connect_timeout(STEP).connect(&hosts).await
    };
    // A base of this run's own: instances a killed earlier run left behind (until their sessions
    // time out) stay out of the picture. Its directories are containers: the server removes them
    // once the instances are gone.
    let base = format!("/discovery-example/run-{}", std::process::id());

    // The instance whose session will expire reaches the (first) server through the proxy.
    let (server, chroot) = first_server(hosts);
    let proxy = Proxy::start(&server).await?;

    // Three instances register, each on its own session.
    let mut registrations = Vec::new();
    for (n, id) in INSTANCES.into_iter().enumerate() {
        let hosts = if id == EXPIRED { format!("{}{chroot}", proxy.connect_string()) } else { hosts.to_string() };
        let session = connect(hosts).await?;
        let port = 9001 + n as i32;
        let instance = ServiceInstance::builder(SERVICE)
            .id(id)
            .address("127.0.0.1")
            .port(port)
            .payload(json!({ "zone": if n == 0 { "eu" } else { "us" } }))
            .uri_spec(UriSpec::parse("{scheme}://{address}:{port}/hello")?)
            .build();
        let registration = ServiceDiscovery::new(&session, &base)?.register(instance).await?;
        println!("{id} registered at {} (session {:#x})", registration.path(), session.session_id());
        registrations.push(registration);
    }

    // The client: a round-robin provider over a cache of the service.
    let client = connect(hosts.to_string()).await?;
    let discovery = ServiceDiscovery::new(&client, &base)?;
    let provider = discovery.provider(SERVICE, InstancePicker::new(Strategy::RoundRobin, DownInstances::default()))?;
    provider.initialized().await?;
    provider.cache().sync().await?;
    let mut lists = Box::pin(provider.cache().changes());
    let mut problems = Vec::new();

    println!("\nThe client picks round-robin among the three:");
    problems.extend(round(&provider, &INSTANCES));

    // The expiry: the instance is cut off, and its session is closed on the server meanwhile.
    let victim = &registrations[1];
    let old = victim.client();
    proxy.blackhole();
    println!("\n{EXPIRED} is cut off from the network; its session {:#x} is expired on the server", old.session_id());
    // The expiry is seen by the instance only once its network is back: run it beside.
    let expiry = tokio::spawn({
        let (old, server) = (old.clone(), server.clone());
        async move { expire_session_over(&old, || tokio::net::TcpStream::connect(server.clone())).await }
    });
    until_listed(&mut lists, |ids| !ids.contains(&EXPIRED), "the expired instance gone").await?;
    println!("The client's cache saw {EXPIRED}'s node go with its session; it picks among the two left:");
    problems.extend(round(&provider, &["greeter-1", "greeter-3"]));

    // The network comes back: the registration learns its session expired and registers again.
    proxy.heal();
    println!("\n{EXPIRED}'s network is back: its registration opens a new session and registers again");
    tokio::time::timeout(STEP, expiry).await??.map_err(|e| format!("expire the session: {e}"))?;
    until_listed(&mut lists, |ids| ids.contains(&EXPIRED), "the instance back").await?;
    let new = victim.client();
    println!(
        "{EXPIRED} is registered again, on session {:#x}; the client picks among the three again:",
        new.session_id()
    );
    if new.session_id() == old.session_id() {
        problems.push(format!("{EXPIRED} is back on its expired session {:#x}", old.session_id()));
    }
    problems.extend(round(&provider, &INSTANCES));

    for registration in registrations {
        close(registration).await?;
    }
    client.close().await;
    if problems.is_empty() {
        println!("\nEvery pick was right: round-robin over the instances there, none picked while gone.");
        Ok(())
    } else {
        Err(problems.join("; ").into())
    }
}

/// `PICKS` picks, printed; the problems if they are not round-robin over exactly `expected`
/// (each picked once per round of `expected.len()` picks).
fn round(provider: &ServiceProvider, expected: &[&str]) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut picked = Vec::new();
    for _ in 0..PICKS {
        match provider.instance() {
            Some(instance) => {
                let uri = instance.uri(&HashMap::new()).unwrap_or_default();
                println!("  picked {} ({uri})", instance.id);
                *counts.entry(instance.id.clone()).or_default() += 1;
                picked.push(instance.id);
            }
            None => picked.push("nothing".to_string()),
        }
    }
    let mut problems = Vec::new();
    let fair = PICKS / expected.len();
    let wanted: BTreeMap<String, usize> = expected.iter().map(|id| (id.to_string(), fair)).collect();
    if counts != wanted {
        problems.push(format!("picked {picked:?}, expected each of {expected:?} {fair} times"));
    }
    for (k, id) in picked.iter().enumerate().skip(expected.len()) {
        if *id != picked[k - expected.len()] {
            problems.push(format!("pick {k} ({id}) is not the round-robin's next ({picked:?})"));
        }
    }
    problems
}

/// Waits until the cache's list of instances (from its `changes()` stream) satisfies `ok`,
/// printing each list on the way.
async fn until_listed(
    lists: &mut (impl futures::Stream<Item = conclave::Result<Vec<ServiceInstance>>> + Unpin),
    ok: impl Fn(&[&str]) -> bool,
    what: &str,
) -> Result<(), BoxError> {
    tokio::time::timeout(STEP, async {
        while let Some(list) = lists.next().await {
            let list = list?;
            let ids: Vec<&str> = list.iter().map(|i| i.id.as_str()).collect();
            println!("  the cache lists {ids:?}");
            if ok(&ids) {
                return Ok(());
            }
        }
        Err::<(), BoxError>("the cache ended".into())
    })
    .await
    .map_err(|_| format!("{what}: not seen within {STEP:?}"))?
}

/// Unregisters an instance and closes its session.
async fn close(registration: Registration) -> Result<(), BoxError> {
    let session = registration.client();
    registration.close().await?;
    session.close().await;
    Ok(())
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
