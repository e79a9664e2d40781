//! conclave's `discovery` and Apache Curator's service discovery (curator-x-discovery) under one
//! base path are one registry (instance `<id>` of service `<name>` is the node
//! `<base>/<name>/<id>`, its data the instance as Curator's JSON), with
//! `tests/clients/CuratorDiscoveryCheck.java` as the Curator side (a `ServiceDiscovery<Map>` with
//! the default serializer), on both backends (Java reaches the embedded server over TCP):
//!
//! - Rust reads Curator's instances: an instance Java registers (a `Map` payload, a URI
//!   template, an SSL port) is read by `ServiceDiscovery::instances`/`instance` and a
//!   `ServiceCache` with every field as Curator decoded it (the payload with its `"@class"`),
//!   and `to_json` gives back the node's bytes exactly (which are the serializer's bytes). When
//!   Java's connection is cut, Curator deletes and re-creates its instance on the reconnect;
//!   a Rust cache of the service sees that as `Removed` then `Added` (a new `czxid`).
//! - Curator reads Rust's instances: Java's `queryForInstances` decodes every field of three
//!   Rust registrations (a payload object without `"@class"`, one with it, none; ports, an SSL
//!   port alone, URI templates; one disabled), and a round-robin `ServiceProvider` picks the two
//!   enabled ones in turn and never the disabled one.
//! - The user's promise: a Java `ServiceCache` sees a Rust registration go when its session
//!   expires and come back by itself (on the successor session), then go for good when it is
//!   closed; a Rust cache sees the same as `Removed`/`Added`.
//!
//! Curator's output goes through checkers ([`listing_problems`], [`picks_problems`],
//! [`history_problems`]); the negative controls show them failing: Java waiting for an instance
//! that was never registered times out and the checker reports it, and the checkers fed wrong
//! expectations (a port, a payload, the enabled flag, an id, a pick order, a history) report
//! each.

use std::collections::{BTreeMap, HashMap};

use conclave::cache::{CacheEvent, CacheEvents, ChildrenCache};
use conclave::discovery::{Registration, ServiceCache, ServiceDiscovery, ServiceInstance, ServiceType, UriSpec};
use conclave::{Result, Stat};
use conclave_core::testing::Proxy;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::conformance;
use crate::support::clients::{assert_clean, CuratorProgram, JavaRun};
use crate::support::{within, Env};

conformance!(
    rust_reads_curator_instances,
    curator_reads_rust_instances,
    curator_cache_follows_a_rust_registration_across_expiry,
    an_instance_never_registered_is_not_seen,
);

/// The Java program.
const PROGRAM: &str = "CuratorDiscoveryCheck";
/// The base path, under the test's chroot.
const BASE: &str = "/svc";
/// The service every case uses (the Java program's).
const SERVICE: &str = "api";
/// The service's directory.
const DIR: &str = "/svc/api";
/// How long Java waits for what it expects, in ms.
const SEE_MS: u64 = 20_000;

/// Starts the Curator program reaching the server at `hosts`, on the base of this test's chroot,
/// with `ops`.
fn start(program: &CuratorProgram, hosts: &str, env: &Env, ops: &[String]) -> JavaRun {
    let mut cmd = program.command();
    cmd.arg(hosts).arg(format!("{}{BASE}", env.root)).args(ops);
    JavaRun::start(PROGRAM, BASE, cmd)
}

/// The fields of an instance line of the Java program (after its tag): TAB-separated
/// `KEY=VALUE`.
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split('\t').filter_map(|f| f.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// What the Java program prints for `i` once Curator decoded it: text fields, and the JSON ones
/// (`payload`: as plain JSON, without Jackson's `"@class"`; `uriParts`), as values.
fn expected_fields(i: &ServiceInstance) -> (BTreeMap<&'static str, String>, BTreeMap<&'static str, Value>) {
    let text = |n: Option<i32>| n.map_or("null".to_string(), |n| n.to_string());
    let (class, payload) = match &i.payload {
        Value::Null => ("null".to_string(), Value::Null),
        Value::Object(map) => {
            let class = map.get("@class").and_then(Value::as_str).unwrap_or("java.util.LinkedHashMap");
            let mut plain = map.clone();
            plain.remove("@class");
            (class.to_string(), Value::Object(plain))
        }
        Value::String(_) => ("java.lang.String".to_string(), i.payload.clone()),
        other => ("(not used here)".to_string(), other.clone()),
    };
    let texts = BTreeMap::from([
        ("name", i.name.clone()),
        ("id", i.id.clone()),
        ("address", i.address.clone().unwrap_or_else(|| "null".into())),
        ("port", text(i.port)),
        ("sslPort", text(i.ssl_port)),
        ("payloadClass", class),
        ("registrationTimeUTC", i.registration_time_utc.to_string()),
        ("serviceType", i.service_type.name().to_string()),
        // Curator's buildUriSpec() gives "" without a template.
        ("uri", i.uri(&HashMap::new()).unwrap_or_default()),
        ("enabled", i.enabled.to_string()),
    ]);
    let parts = i.uri_spec.as_ref().map_or(Value::Null, |spec| {
        Value::from(spec.parts.iter().map(|p| json!({"value": p.value, "variable": p.variable})).collect::<Vec<_>>())
    });
    (texts, BTreeMap::from([("payload", payload), ("uriParts", parts)]))
}

/// What is wrong with the fields Curator printed for an instance (`seen`) that should be
/// `expected` (none: every field matches).
fn instance_problems(who: &str, seen: &BTreeMap<String, String>, expected: &ServiceInstance) -> Vec<String> {
    let (texts, jsons) = expected_fields(expected);
    let mut problems = Vec::new();
    let id = &expected.id;
    for (key, want) in texts {
        match seen.get(key) {
            None => problems.push(format!("{who} {id}: no {key}")),
            Some(got) if *got != want => problems.push(format!("{who} {id}: {key} is {got:?}, not {want:?}")),
            Some(_) => {}
        }
    }
    for (key, want) in jsons {
        match seen.get(key).map(|v| serde_json::from_str::<Value>(v)) {
            None => problems.push(format!("{who} {id}: no {key}")),
            Some(Err(e)) => problems.push(format!("{who} {id}: {key} is not JSON: {e}")),
            Some(Ok(got)) if got != want => problems.push(format!("{who} {id}: {key} is {got}, not {want}")),
            Some(Ok(_)) => {}
        }
    }
    problems
}

/// What is wrong with the instances the Java program listed under `tag` (`query` or `cache`: its
/// `TAG<TAB>fields` lines and `TAG-done N`), which should be exactly `expected` (none: it is).
/// A `timeout TAG` line is a problem.
fn listing_problems(lines: &[String], tag: &str, expected: &[&ServiceInstance]) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(t) = lines.iter().find(|l| l.starts_with(&format!("timeout {tag}"))) {
        problems.push(format!("Curator's {tag} did not see the expected instances in time ({t})"));
    }
    let prefix = format!("{tag}\t");
    let seen: BTreeMap<String, BTreeMap<String, String>> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(fields)
        .map(|f| (f.get("id").cloned().unwrap_or_default(), f))
        .collect();
    for want in expected {
        match seen.get(&want.id) {
            None => problems.push(format!("Curator's {tag}: {} is missing", want.id)),
            Some(f) => problems.extend(instance_problems(&format!("Curator's {tag}:"), f, want)),
        }
    }
    for id in seen.keys().filter(|id| !expected.iter().any(|e| e.id == **id)) {
        problems.push(format!("Curator's {tag}: {id} should not be there"));
    }
    if !lines.iter().any(|l| *l == format!("{tag}-done {}", expected.len())) {
        problems.push(format!("Curator's {tag}: no `{tag}-done {}` line", expected.len()));
    }
    problems
}

/// What is wrong with the round-robin picks the Java program printed (`pick` lines): there must
/// be `n`, each one of `candidates` with every field right, taken in turn (the same order over
/// and over, each candidate once per round).
fn picks_problems(lines: &[String], candidates: &[&ServiceInstance], n: usize) -> Vec<String> {
    let picks: Vec<BTreeMap<String, String>> =
        lines.iter().filter_map(|l| l.strip_prefix("pick\t")).map(fields).collect();
    let mut problems = Vec::new();
    if picks.len() != n {
        problems.push(format!("{} picks, not {n}", picks.len()));
    }
    let ids: Vec<&str> = picks.iter().map(|p| p.get("id").map_or("?", String::as_str)).collect();
    for (k, pick) in picks.iter().enumerate() {
        match candidates.iter().find(|c| c.id == ids[k]) {
            None => problems.push(format!("pick {k}: {} is not a candidate", ids[k])),
            Some(c) => problems.extend(instance_problems(&format!("pick {k}:"), pick, c)),
        }
        if k >= candidates.len() && ids[k] != ids[k - candidates.len()] {
            problems.push(format!("pick {k}: {} breaks the round ({:?})", ids[k], ids));
        }
    }
    let round: std::collections::BTreeSet<&str> = ids.iter().take(candidates.len()).copied().collect();
    if ids.len() >= candidates.len() && round.len() != candidates.len() {
        problems.push(format!("the first round {:?} does not take every candidate once", &ids[..candidates.len()]));
    }
    problems
}

/// What is wrong with the history of a Java cache's listener (the `history a|b|...` line:
/// the ids it held after each change) against `expected` (none: the same).
fn history_problems(lines: &[String], expected: &[&str]) -> Vec<String> {
    let Some(history) = lines.iter().find_map(|l| l.strip_prefix("history ")) else {
        return vec!["no history line".to_string()];
    };
    let seen: Vec<&str> = history.split('|').collect();
    if seen == expected {
        Vec::new()
    } else {
        vec![format!("Curator's cache held {seen:?}, not {expected:?}")]
    }
}

/// Waits until `cache` lists exactly the ids `ids` (through its `changes()` stream).
async fn until_cached(cache: &ServiceCache, ids: &[&str]) -> Vec<ServiceInstance> {
    let mut changes = Box::pin(cache.changes());
    within(30, async {
        loop {
            let now = changes.next().await.expect("the cache's changes").expect("the cache");
            if now.iter().map(|i| i.id.as_str()).collect::<Vec<_>>() == ids {
                return now;
            }
        }
    })
    .await
}

/// The next `Added`/`Removed`/`Updated` event of `events` (skipping `Initialized` and
/// `Resynced`), as (kind, node name, stat).
async fn next_change(events: &mut CacheEvents) -> (&'static str, String, Stat) {
    within(30, async {
        loop {
            let event = events.next().await.expect("the cache's events").expect("the cache");
            let kind = match &event {
                CacheEvent::Added { .. } => "Added",
                CacheEvent::Removed { .. } => "Removed",
                CacheEvent::Updated { .. } => "Updated",
                _ => continue,
            };
            let (path, node) = (event.path().expect("a path"), event.node().expect("a node"));
            return (kind, path.rsplit('/').next().expect("a name").to_string(), node.stat);
        }
    })
    .await
}

/// The Rust instances of [`curator_reads_rust_instances`]: a payload object without `@class`
/// (what a Rust service writes), one with it, and none; ports, an SSL port alone; URI templates;
/// the last one disabled.
fn rust_instances() -> Result<[ServiceInstance; 3]> {
    let r1 = ServiceInstance::builder(SERVICE)
        .id("r-1")
        .address("10.0.0.7")
        .port(9000)
        .payload(json!({"nested": {"k": true}, "tags": ["a", "b"], "weight": 5, "zone": "us"}))
        .registration_time_utc(1_700_000_000_123)
        .uri_spec(UriSpec::parse("{scheme}://{address}:{port}/v1?id={id}")?)
        .build();
    let r2 = ServiceInstance::builder(SERVICE)
        .id("r-2")
        .address("host-2.example")
        .ssl_port(9443)
        .payload(json!({"@class": "java.util.LinkedHashMap", "zone": "eu"}))
        .registration_time_utc(1_700_000_000_456)
        .uri_spec(UriSpec::parse("{scheme}://{address}:{ssl-port}")?)
        .build();
    let r3 = ServiceInstance::builder(SERVICE)
        .id("r-3")
        .address("10.0.0.9")
        .port(9001)
        .registration_time_utc(1_700_000_000_789)
        .enabled(false)
        .build();
    Ok([r1, r2, r3])
}

/// Java registers an instance; Rust's reads and cache decode every field as Curator did, and the
/// node is the layout; Java's connection is cut, Curator re-registers on the reconnect, and a
/// Rust cache sees `Removed` then `Added` while the service cache keeps the same instance.
async fn rust_reads_curator_instances(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile_discovery(PROGRAM).await else { return Ok(()) };
    let (c, observer) = (env.client().await, env.client().await);
    let discovery = ServiceDiscovery::new(&c, BASE)?;
    let cache = discovery.cache(SERVICE)?;
    let children = ChildrenCache::new(&observer, DIR)?;
    let mut events = children.events();
    let proxy = Proxy::start(&env.tcp_address()).await.expect("start the proxy");
    let ops = ["session", "register:j-1:8080", "handover:registered", "handover:reconnected"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("query:{SEE_MS}:j-1")])
        .collect::<Vec<_>>();
    let java = start(&program, &proxy.connect_string(), &env, &ops);

    let java = java.ready(&observer, "registered").await;
    let cached = until_cached(&cache, &["j-1"]).await.remove(0);
    let (bytes, stat) = observer.get_data(&format!("{DIR}/j-1")).await?;
    let read = discovery.instances(SERVICE).await?;
    assert_eq!(read, std::slice::from_ref(&cached), "instances() and the cache agree");
    assert_eq!(discovery.instance(SERVICE, "j-1").await?.as_ref(), Some(&cached));
    assert_eq!(discovery.names().await?, [SERVICE]);
    assert_eq!(ServiceInstance::from_json(&bytes)?, cached);
    assert_eq!(cached.to_json().as_bytes(), &bytes[..], "written back byte for byte");
    assert_eq!(cached.payload, json!({"@class": "java.util.LinkedHashMap", "weight": 3, "zone": "eu"}));
    assert_eq!((cached.service_type, cached.enabled), (ServiceType::Dynamic, true));
    assert!(stat.ephemeral_owner != 0 && stat.ephemeral_owner != c.session_id(), "ephemeral, Java's: {stat:?}");
    let first = next_change(&mut events).await;
    assert_eq!((first.0, first.1.as_str(), first.2.czxid), ("Added", "j-1", stat.czxid));

    // Java's connection is cut: on the reconnect Curator deletes and re-creates its instance.
    proxy.cut();
    java.go(&observer, "registered").await?;
    let removed = next_change(&mut events).await;
    assert_eq!((removed.0, removed.1.as_str(), removed.2.czxid), ("Removed", "j-1", stat.czxid));
    let added = next_change(&mut events).await;
    assert_eq!((added.0, added.1.as_str()), ("Added", "j-1"));
    assert!(added.2.czxid > stat.czxid, "re-created: {:?} after {stat:?}", added.2);
    assert_eq!(added.2.ephemeral_owner, stat.ephemeral_owner, "on the same session");
    let java = java.ready(&observer, "reconnected").await;
    cache.sync().await?;
    assert_eq!(cache.instances(), std::slice::from_ref(&cached), "the same instance, registered again");
    java.go(&observer, "reconnected").await?;

    let lines = java.finish_ok().await;
    let registered = lines.iter().find_map(|l| l.strip_prefix("registered\t")).expect("the registered line");
    assert_clean("Rust's decoding of Curator's instance", instance_problems("Rust", &fields(registered), &cached));
    let json = lines.iter().find_map(|l| l.strip_prefix("json\t")).expect("the json line");
    assert_eq!(json.as_bytes(), &bytes[..], "the node's data is Curator's serializer's bytes");
    assert_clean("Curator's query after the reconnect", listing_problems(&lines, "query", &[&cached]));
    let session = lines.iter().find_map(|l| l.strip_prefix("session 0x")).expect("the session line");
    assert_eq!(i64::from_str_radix(session, 16).ok(), Some(stat.ephemeral_owner), "the node is Java's session's");
    eprintln!(
        "discovery interop on the {}: Rust read Curator's instance field for field, and saw its re-registration \
         as Removed + Added",
        env.backend_name()
    );
    c.close().await;
    observer.close().await;
    Ok(())
}

/// Rust registers three instances (one disabled); Java's `queryForInstances` decodes every field
/// of each, and a round-robin provider picks the two enabled ones in turn.
async fn curator_reads_rust_instances(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile_discovery(PROGRAM).await else { return Ok(()) };
    let (c, observer) = (env.client().await, env.client().await);
    let discovery = ServiceDiscovery::new(&c, BASE)?;
    let [r1, r2, r3] = rust_instances()?;
    let mut registrations: Vec<Registration> = Vec::new();
    for instance in [&r1, &r2, &r3] {
        registrations.push(within(20, discovery.register(instance.clone())).await?);
    }
    for (registration, instance) in registrations.iter().zip([&r1, &r2, &r3]) {
        let path = format!("{DIR}/{}", instance.id);
        assert_eq!(registration.path(), path);
        let (bytes, stat) = observer.get_data(&path).await?;
        assert_eq!(&bytes[..], instance.to_json().as_bytes(), "{path} holds the instance's JSON");
        assert_eq!(stat.ephemeral_owner, c.session_id(), "{path} is ephemeral, on the registering session");
    }
    assert!(
        String::from_utf8_lossy(&observer.get_data(&format!("{DIR}/r-3")).await?.0).ends_with(",\"enabled\":false}")
    );

    let ops = [format!("query:{SEE_MS}:r-1,r-2,r-3"), format!("provider:{SEE_MS}:6:r-1,r-2")];
    let lines = start(&program, &env.tcp_address(), &env, &ops).finish_ok().await;
    assert_clean("Curator's query", listing_problems(&lines, "query", &[&r1, &r2, &r3]));
    assert_clean("Curator's round-robin picks", picks_problems(&lines, &[&r1, &r2], 6));

    for registration in registrations {
        registration.close().await?;
    }
    assert_eq!(observer.get_children(DIR).await.unwrap_or_default(), Vec::<String>::new(), "unregistered");
    eprintln!(
        "discovery interop on the {}: Curator decoded the 3 Rust instances field for field and picked the 2 enabled \
         ones in turn",
        env.backend_name()
    );
    c.close().await;
    observer.close().await;
    Ok(())
}

/// A Java `ServiceCache` follows a Rust registration: present; gone when its session is expired
/// and back by itself on the successor session (a Rust cache sees `Removed` then `Added`, with
/// the new session as the owner); gone for good once the registration is closed.
async fn curator_cache_follows_a_rust_registration_across_expiry(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile_discovery(PROGRAM).await else { return Ok(()) };
    let (c, observer) = (env.client().await, env.client().await);
    let discovery = ServiceDiscovery::new(&c, BASE)?;
    let [r1, ..] = rust_instances()?;
    let registration = within(20, discovery.register(r1.clone())).await?;
    let children = ChildrenCache::new(&observer, DIR)?;
    let mut events = children.events();
    let path = format!("{DIR}/r-1");
    let before = observer.exists(&path).await?.expect("registered");
    assert_eq!(next_change(&mut events).await.0, "Added");

    let ops = ["cache", &format!("cachesee:{SEE_MS}:r-1"), "handover:seen", &format!("cachesee:{SEE_MS}:r-1")]
        .iter()
        .map(|s| s.to_string())
        .chain(["handover:back".to_string(), format!("cachesee:{SEE_MS}:"), "history".into()])
        .collect::<Vec<_>>();
    let java = start(&program, &env.tcp_address(), &env, &ops);

    // Seen; then the registration's session is expired: the node goes with it, and comes back.
    let java = java.ready(&observer, "seen").await;
    let old = registration.client();
    assert_eq!(old.session_id(), before.ephemeral_owner);
    env.expire(&old).await?;
    let removed = next_change(&mut events).await;
    assert_eq!((removed.0, removed.1.as_str(), removed.2.czxid), ("Removed", "r-1", before.czxid));
    let added = next_change(&mut events).await;
    assert_eq!((added.0, added.1.as_str()), ("Added", "r-1"), "registered again");
    within(20, registration.node().created()).await?;
    let now = registration.client();
    assert_ne!(now.session_id(), old.session_id(), "on the successor session");
    assert_eq!(added.2.ephemeral_owner, now.session_id(), "the new node is the successor session's");
    let (bytes, _) = observer.get_data(&path).await?;
    assert_eq!(&bytes[..], r1.to_json().as_bytes(), "with the same instance");
    java.go(&observer, "seen").await?;

    // Closed: gone for good.
    let java = java.ready(&observer, "back").await;
    registration.close().await?;
    assert_eq!(observer.exists(&path).await?, None, "unregistered");
    java.go(&observer, "back").await?;

    let lines = java.finish_ok().await;
    assert_clean("Curator's cache after the expiry", listing_problems(&lines, "cache", &[&r1]));
    assert!(lines.iter().any(|l| l == "cache-done 0"), "Curator's cache saw it go: {lines:#?}");
    assert_clean("Curator's cache's history", history_problems(&lines, &["r-1", "", "r-1", ""]));
    eprintln!(
        "discovery interop on the {}: Curator's cache saw the Rust instance go with its expired session, come back on \
         the successor, and go when closed",
        env.backend_name()
    );
    now.close().await;
    observer.close().await;
    Ok(())
}

/// The negative control, live: Java waiting (1.5 s) for an instance `ghost` beside a registered
/// one times out, and the checker reports both the timeout and the missing instance.
async fn an_instance_never_registered_is_not_seen(env: Env) -> Result<()> {
    let Some(program) = CuratorProgram::compile_discovery(PROGRAM).await else { return Ok(()) };
    let c = env.client().await;
    let discovery = ServiceDiscovery::new(&c, BASE)?;
    let [r1, ..] = rust_instances()?;
    let registration = within(20, discovery.register(r1.clone())).await?;
    let ghost = ServiceInstance::builder(SERVICE).id("ghost").build();
    let ops = ["query:1500:ghost,r-1".to_string(), "history".into()];
    let (ok, lines, err) = start(&program, &env.tcp_address(), &env, &ops).finish().await;
    assert!(!ok, "{PROGRAM} cannot have seen the ghost:\n{}\n{err}", lines.join("\n"));
    assert_eq!(lines, ["timeout query r-1"], "it stopped at the timeout ({err})");
    let found = listing_problems(&lines, "query", &[&r1, &ghost]);
    eprintln!("discovery interop, negative control on the {}: {found:#?}", env.backend_name());
    assert!(found.iter().any(|p| p.contains("did not see the expected instances in time")), "{found:#?}");
    assert!(found.contains(&"Curator's query: ghost is missing".to_string()), "{found:#?}");
    registration.close().await?;
    c.close().await;
    Ok(())
}

/// The checkers alone: good transcripts pass, and each wrong expectation fed to them is reported.
#[test]
fn the_checkers_catch_wrong_expectations() {
    let [r1, r2, r3] = rust_instances().expect("the instances");
    let line = |tag: &str, i: &ServiceInstance| {
        let (texts, jsons) = expected_fields(i);
        let mut all: Vec<String> = texts.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        all.extend(jsons.into_iter().map(|(k, v)| format!("{k}={v}")));
        format!("{tag}\t{}", all.join("\t"))
    };
    let query: Vec<String> = [line("query", &r1), line("query", &r3), "query-done 2".into()].to_vec();
    assert_clean("a good listing", listing_problems(&query, "query", &[&r1, &r3]));

    let mut wrong = r1.clone();
    wrong.port = Some(1);
    wrong.payload = json!({"zone": "elsewhere"});
    wrong.enabled = false;
    let found = listing_problems(&query, "query", &[&wrong, &r2]);
    eprintln!("discovery listing checker control: {found:#?}");
    for needle in [
        "Curator's query: r-1: port is \"9000\", not \"1\"",
        "Curator's query: r-1: enabled is \"true\", not \"false\"",
        "Curator's query: r-1: payload is",
        "Curator's query: r-2 is missing",
        "Curator's query: r-3 should not be there",
    ] {
        assert!(found.iter().any(|p| p.starts_with(needle)), "{needle}: {found:#?}");
    }
    // The URI Curator built for an instance is compared too.
    let mut other_uri = r1.clone();
    other_uri.uri_spec = Some(UriSpec::parse("{scheme}://{address}/v2").expect("a template"));
    let found = listing_problems(&query[..1], "query", &[&other_uri]);
    assert!(
        found.iter().any(|p| p.contains(": uri is ")) && found.iter().any(|p| p.contains("uriParts is")),
        "{found:#?}"
    );
    assert_eq!(found.len(), 3, "uri, uriParts and the done line: {found:#?}");

    let picks: Vec<String> = [&r1, &r2, &r1, &r2].iter().map(|i| line("pick", i)).collect();
    assert_clean("good picks", picks_problems(&picks, &[&r1, &r2], 4));
    let unfair: Vec<String> = [&r1, &r1, &r2, &r3].iter().map(|i| line("pick", i)).collect();
    let found = picks_problems(&unfair, &[&r1, &r2], 5);
    eprintln!("discovery picks checker control: {found:#?}");
    assert!(found.contains(&"4 picks, not 5".to_string()), "{found:#?}");
    assert!(found.contains(&"pick 3: r-3 is not a candidate".to_string()), "{found:#?}");
    assert!(found.iter().any(|p| p.starts_with("pick 2: r-2 breaks the round")), "{found:#?}");
    assert!(found.iter().any(|p| p.starts_with("the first round")), "{found:#?}");

    let history = ["history r-1||r-1|".to_string()];
    assert_clean("a good history", history_problems(&history, &["r-1", "", "r-1", ""]));
    let found = history_problems(&history, &["r-1", "", ""]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(history_problems(&[], &["r-1"]), ["no history line"]);
}
