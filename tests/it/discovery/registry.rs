//! Service discovery on both backends: registering (Curator's layout and JSON, containers for
//! the base and the service), reading names and instances, a registration kept across a
//! deletion, connection cuts (no flapping) and an expiry, updates, the cache as a stream of
//! lists, and a provider that skips disabled and failing instances.

use std::collections::BTreeSet;
use std::time::Duration;

use conclave::discovery::{
    DownInstances, InstancePicker, ServiceDiscovery, ServiceInstance, ServiceType, Strategy, UriSpec,
};
use conclave::{CreateMode, Error, Result, ZkError};
use futures::StreamExt;
use serde_json::json;

use crate::conformance;
use crate::support::{within, Env};

conformance!(
    registered_in_curators_layout,
    names_and_instances_are_read_back,
    a_registration_stays_across_deletion_and_expiry,
    updates_and_unregistration,
    the_cache_streams_the_instance_lists,
    the_provider_skips_disabled_and_down_instances,
    bad_registrations_are_refused,
);

fn instance(name: &str, id: &str, port: i32) -> ServiceInstance {
    ServiceInstance::builder(name).id(id).address("10.0.0.1").port(port).registration_time_utc(1).build()
}

fn ids(list: &[ServiceInstance]) -> Vec<&str> {
    list.iter().map(|i| i.id.as_str()).collect()
}

/// The node is `/<base>/<name>/<id>`, ephemeral for a DYNAMIC instance, persistent for a STATIC
/// one, its data the instance's JSON as Curator writes it; base and service are containers.
async fn registered_in_curators_layout(env: Env) -> Result<()> {
    let c = env.client().await;
    let discovery = ServiceDiscovery::new(&c, "/svc")?;
    let api = ServiceInstance::builder("api")
        .id("id-1")
        .address("10.0.0.5")
        .port(8080)
        .ssl_port(8443)
        .payload(json!({"zone": "eu"}))
        .uri_spec(UriSpec::parse("{scheme}://{address}:{port}/x")?)
        .registration_time_utc(1_700_000_000_000)
        .build();
    let registration = discovery.register(api.clone()).await?;
    assert_eq!(registration.path(), "/svc/api/id-1");
    let (data, stat) = c.get_data("/svc/api/id-1").await?;
    assert_eq!(std::str::from_utf8(&data).expect("UTF-8"), api.to_json());
    assert_eq!(stat.ephemeral_owner, c.session_id(), "a dynamic instance is this session's ephemeral node");
    let persistent = ServiceInstance::builder("db").id("primary").service_type(ServiceType::Static).build();
    let kept = discovery.register(persistent).await?;
    assert_eq!(c.exists("/svc/db/primary").await?.map(|s| s.ephemeral_owner), Some(0));
    kept.close().await?;
    registration.close().await?;
    // Containers: reaped once empty.
    within(30, async {
        while c.exists("/svc").await?.is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<_, ZkError>(())
    })
    .await?;
    Ok(())
}

/// `names` lists the services, `instances` and `instance` read them; a node that is not an
/// instance is left out.
async fn names_and_instances_are_read_back(env: Env) -> Result<()> {
    let c = env.client().await;
    let discovery = ServiceDiscovery::new(&c, "/svc")?;
    assert!(discovery.names().await?.is_empty());
    let _a = discovery.register(instance("api", "b", 2)).await?;
    let _b = discovery.register(instance("api", "a", 1)).await?;
    let _c = discovery.register(instance("web", "w", 3)).await?;
    c.create("/svc/api/junk", "not json", CreateMode::Persistent).await?;
    assert_eq!(discovery.names().await?, ["api", "web"]);
    let api = discovery.instances("api").await?;
    assert_eq!(ids(&api), ["a", "b"]);
    assert_eq!(api[0], instance("api", "a", 1));
    assert_eq!(discovery.instance("web", "w").await?, Some(instance("web", "w", 3)));
    assert_eq!(discovery.instance("web", "nope").await?, None);
    assert!(matches!(discovery.instance("api", "junk").await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    assert!(discovery.instances("none").await?.is_empty());
    Ok(())
}

/// A registration is re-created after someone deletes it and after its session expired (on the
/// successor session), and a connection cut changes nothing (same node, no flapping).
async fn a_registration_stays_across_deletion_and_expiry(env: Env) -> Result<()> {
    let observer = env.client().await;
    let (proxy, c) = env.proxied(env.builder()).await;
    let discovery = ServiceDiscovery::new(&c, "/svc")?;
    let registration = discovery.register(instance("api", "r", 1)).await?;
    let cache = ServiceDiscovery::new(&observer, "/svc")?.cache("api")?;
    within(10, cache.initialized()).await?;
    let czxid = observer.exists("/svc/api/r").await?.expect("registered").czxid;
    crate::support::cut_and_reconnect(&proxy, &c).await;
    within(10, cache.sync()).await?;
    assert_eq!(observer.exists("/svc/api/r").await?.map(|s| s.czxid), Some(czxid), "no re-registration after a cut");
    observer.delete("/svc/api/r", None).await?;
    within(10, registration.node().created()).await?;
    let again = within(10, async {
        loop {
            if let Some(stat) = observer.exists("/svc/api/r").await? {
                return Ok::<_, ZkError>(stat);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?;
    assert!(again.czxid > czxid, "re-created");
    let old = registration.client().session_id();
    env.expire(&registration.client()).await?;
    within(20, async {
        loop {
            match observer.exists("/svc/api/r").await? {
                Some(stat) if stat.ephemeral_owner != old && stat.ephemeral_owner != 0 => return Ok::<_, ZkError>(()),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await?;
    assert_ne!(registration.client().session_id(), old, "on a new session");
    within(10, cache.sync()).await?;
    assert_eq!(ids(&cache.instances()), ["r"]);
    // The discovery's own reads follow the session too.
    assert_eq!(discovery.names().await?, ["api"]);
    assert_eq!(ids(&discovery.instances("api").await?), ["r"]);
    assert_eq!(discovery.client().session_id(), registration.client().session_id(), "one successor session");
    Ok(())
}

/// `update` sets the node's data (and keeps it); it refuses to change the identity; `close`
/// unregisters; dropping unregisters too.
async fn updates_and_unregistration(env: Env) -> Result<()> {
    let c = env.client().await;
    let discovery = ServiceDiscovery::new(&c, "/svc")?;
    let registration = discovery.register(instance("api", "u", 1)).await?;
    let mut changed = instance("api", "u", 2);
    changed.enabled = false;
    registration.update(changed.clone()).await?;
    assert_eq!(discovery.instance("api", "u").await?, Some(changed.clone()));
    assert_eq!(registration.instance(), changed);
    let renamed = instance("api", "other", 2);
    assert!(matches!(registration.update(renamed).await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    registration.close().await?;
    assert_eq!(discovery.instance("api", "u").await?, None);
    let dropped = discovery.register(instance("api", "d", 1)).await?;
    drop(dropped);
    within(10, async {
        while discovery.instance("api", "d").await?.is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok::<_, Error>(())
    })
    .await?;
    Ok(())
}

/// The cache's stream: the list once read, then after each change, never the same list twice in
/// a row.
async fn the_cache_streams_the_instance_lists(env: Env) -> Result<()> {
    let c = env.client().await;
    let discovery = ServiceDiscovery::new(&c, "/svc")?;
    let cache = discovery.cache("api")?;
    let mut lists = Box::pin(cache.changes());
    assert_eq!(within(10, lists.next()).await.expect("a list")?, []);
    let one = discovery.register(instance("api", "1", 1)).await?;
    assert_eq!(ids(&within(10, lists.next()).await.expect("a list")?), ["1"]);
    let two = discovery.register(instance("api", "2", 2)).await?;
    assert_eq!(ids(&within(10, lists.next()).await.expect("a list")?), ["1", "2"]);
    let mut moved = instance("api", "1", 9);
    moved.address = Some("10.9.9.9".into());
    one.update(moved.clone()).await?;
    let list = within(10, lists.next()).await.expect("a list")?;
    assert_eq!(list[0], moved);
    two.close().await?;
    assert_eq!(ids(&within(10, lists.next()).await.expect("a list")?), ["1"]);
    Ok(())
}

/// Round-robin over the instances; a disabled one is never picked; one reported failing twice
/// is skipped; an instance registered later is picked once the cache sees it.
async fn the_provider_skips_disabled_and_down_instances(env: Env) -> Result<()> {
    let c = env.client().await;
    let discovery = ServiceDiscovery::new(&c, "/svc")?;
    let mut regs = Vec::new();
    for id in ["a", "b", "c"] {
        regs.push(discovery.register(instance("api", id, 1)).await?);
    }
    let mut off = instance("api", "off", 1);
    off.enabled = false;
    regs.push(discovery.register(off).await?);
    let picker = InstancePicker::new(Strategy::RoundRobin, DownInstances::new(2, Duration::from_secs(60))?);
    let provider = discovery.provider("api", picker)?;
    within(10, provider.initialized()).await?;
    within(10, provider.cache().sync()).await?;
    let picks: Vec<String> = (0..6).map(|_| provider.instance().expect("an instance").id).collect();
    assert_eq!(picks.iter().map(String::as_str).collect::<BTreeSet<_>>(), BTreeSet::from(["a", "b", "c"]));
    assert_eq!(picks[0..3], picks[3..6], "round-robin repeats its order");
    let b = provider.all_instances().into_iter().find(|i| i.id == "b").expect("b");
    provider.note_error(&b);
    provider.note_error(&b);
    for _ in 0..6 {
        assert_ne!(provider.instance().expect("an instance").id, "b", "b is down");
    }
    regs.push(discovery.register(instance("api", "d", 1)).await?);
    within(10, provider.cache().sync()).await?;
    let picks: BTreeSet<String> = (0..6).map(|_| provider.instance().expect("an instance").id).collect();
    assert_eq!(picks.iter().map(String::as_str).collect::<BTreeSet<_>>(), BTreeSet::from(["a", "c", "d"]));
    Ok(())
}

/// Identities that are not one node name, and DYNAMIC_SEQUENTIAL instances, are refused before
/// anything is written.
async fn bad_registrations_are_refused(env: Env) -> Result<()> {
    let c = env.client().await;
    let discovery = ServiceDiscovery::new(&c, "/svc")?;
    for bad in [instance("a/b", "x", 1), instance("api", "", 1), instance("api", "..", 1)] {
        assert!(matches!(discovery.register(bad).await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    }
    let sequential = ServiceInstance::builder("api").service_type(ServiceType::DynamicSequential).build();
    assert!(matches!(discovery.register(sequential).await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    assert!(ServiceDiscovery::new(&c, "no-slash").is_err());
    assert_eq!(c.exists("/svc").await?, None, "nothing was written");
    Ok(())
}
