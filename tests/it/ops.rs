//! Every single-request operation: its result and each of its error codes, as ZooKeeper 3.8
//! defines them (protocol reference sections 3.4, 5 and 6.3). Written once, run on both backends.

use std::time::Duration;

use conclave::{Acl, CreateMode, CreateOptions, Perms};
use conclave_core::{Error, Result};

use crate::conformance;
use crate::support::Env;

conformance!(
    create_modes,
    create_errors,
    delete_rules,
    exists_and_get_data,
    set_data_versions,
    acl_get_and_set,
    children,
    sync_and_config,
    ephemerals_and_counts,
    who_am_i_lists_identities,
);

/// Each create mode makes the node it names; ephemeral nodes carry their session id.
async fn create_modes(env: Env) -> Result<()> {
    let c = env.client().await;
    let (p, st) = c.create("/p", b"data", CreateMode::Persistent).await?;
    assert_eq!(p, "/p");
    assert_eq!((st.ephemeral_owner, st.data_length, st.version), (0, 4, 0));

    let (p, st) = c.create("/e", b"", CreateMode::Ephemeral).await?;
    assert_eq!(p, "/e");
    assert_eq!(st.ephemeral_owner, c.session_id());

    let (p, _) = c.create("/p/s-", b"", CreateMode::PersistentSequential).await?;
    assert_eq!(p, "/p/s-0000000000");
    let (p, st) = c.create("/p/s-", b"", CreateMode::EphemeralSequential).await?;
    assert_eq!(p, "/p/s-0000000001");
    assert_eq!(st.ephemeral_owner, c.session_id());
    // A sequential create may end in '/': the name is then only digits.
    let (p, _) = c.create("/p/", b"", CreateMode::PersistentSequential).await?;
    assert_eq!(p, "/p/0000000002");

    // Containers and TTL nodes show ephemeralOwner 0.
    let (_, st) = c.create("/c", b"", CreateMode::Container).await?;
    assert_eq!(st.ephemeral_owner, 0);
    let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(3600));
    let (_, st) = c.create("/ttl", b"", ttl).await?;
    assert_eq!(st.ephemeral_owner, 0);
    let ttl_seq = CreateOptions::new(CreateMode::PersistentSequentialWithTtl).ttl(Duration::from_secs(3600));
    let (p, _) = c.create("/ttl-", b"", ttl_seq).await?;
    assert!(p.starts_with("/ttl-00000"), "{p}");
    Ok(())
}

/// Create fails with NODEEXISTS, NONODE (missing parent), NOCHILDRENFOREPHEMERALS and
/// INVALIDACL; bad paths and TTLs are refused before anything is sent.
async fn create_errors(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/a", b"", CreateMode::Persistent).await?;
    assert_eq!(c.create("/a", b"", CreateMode::Persistent).await, Err(Error::NodeExists));
    assert_eq!(c.create("/missing/child", b"", CreateMode::Persistent).await, Err(Error::NoNode));
    c.create("/eph", b"", CreateMode::Ephemeral).await?;
    assert_eq!(c.create("/eph/child", b"", CreateMode::Persistent).await, Err(Error::NoChildrenForEphemerals));
    let no_acl = CreateOptions::new(CreateMode::Persistent).acl(vec![]);
    assert_eq!(c.create("/b", b"", no_acl).await, Err(Error::InvalidAcl));
    let bad_world =
        CreateOptions::new(CreateMode::Persistent).acl(vec![Acl::new(Perms::ALL, conclave::Id::new("world", "x"))]);
    assert_eq!(c.create("/b", b"", bad_world).await, Err(Error::InvalidAcl));
    // Client-side refusals.
    assert!(matches!(c.create("/a/", b"", CreateMode::Persistent).await, Err(Error::InvalidPath { .. })));
    assert!(matches!(c.create("a", b"", CreateMode::Persistent).await, Err(Error::InvalidPath { .. })));
    assert!(matches!(c.create("/t", b"", CreateMode::PersistentWithTtl).await, Err(Error::InvalidArgument(_))));
    assert!(matches!(
        c.create("/t", b"", CreateOptions::new(CreateMode::Persistent).ttl(Duration::from_secs(1))).await,
        Err(Error::InvalidArgument(_))
    ));
    Ok(())
}

/// Delete checks the version before emptiness; the root and `/zookeeper` cannot be deleted.
async fn delete_rules(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.delete("/none", None).await, Err(Error::NoNode));
    c.create("/d", b"", CreateMode::Persistent).await?;
    c.create("/d/x", b"", CreateMode::Persistent).await?;
    assert_eq!(c.delete("/d", Some(7)).await, Err(Error::BadVersion), "BADVERSION wins over NOTEMPTY");
    assert_eq!(c.delete("/d", None).await, Err(Error::NotEmpty));
    assert_eq!(c.delete("/d/x", Some(1)).await, Err(Error::BadVersion));
    c.delete("/d/x", Some(0)).await?;
    c.delete("/d", None).await?;
    assert_eq!(c.exists("/d").await?, None);
    // Through a chrooted handle "/" is sent as is, so the chroot node itself is safe.
    assert_eq!(c.delete("/", None).await, Err(Error::BadArguments));
    let root = env.unchrooted().await;
    assert_eq!(root.delete("/zookeeper", None).await, Err(Error::BadArguments));
    assert_eq!(root.delete("/zookeeper/config", None).await, Err(Error::BadArguments));
    Ok(())
}

/// `exists` returns a stat or nothing; `getData` returns the exact bytes (empty stays empty).
async fn exists_and_get_data(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.exists("/x").await?, None);
    assert_eq!(c.get_data("/x").await, Err(Error::NoNode));
    let payload: Vec<u8> = (0..=255).collect();
    let (_, created) = c.create("/x", &payload, CreateMode::Persistent).await?;
    let (data, st) = c.get_data("/x").await?;
    assert_eq!(data.as_ref(), payload.as_slice());
    assert_eq!(st, created);
    assert_eq!(c.exists("/x").await?, Some(created));
    c.create("/empty", b"", CreateMode::Persistent).await?;
    let (data, st) = c.get_data("/empty").await?;
    assert!(data.is_empty());
    assert_eq!(st.data_length, 0);
    Ok(())
}

/// setData bumps the version on every write (even of identical data); a stale version fails.
async fn set_data_versions(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.set_data("/v", b"x", None).await, Err(Error::NoNode));
    c.create("/v", b"a", CreateMode::Persistent).await?;
    assert_eq!(c.set_data("/v", b"b", Some(0)).await?.version, 1);
    assert_eq!(c.set_data("/v", b"b", Some(1)).await?.version, 2, "identical data still counts");
    assert_eq!(c.set_data("/v", b"c", Some(1)).await, Err(Error::BadVersion));
    let st = c.set_data("/v", b"dd", None).await?;
    assert_eq!((st.version, st.data_length), (3, 2));
    assert_eq!(c.get_data("/v").await?.0.as_ref(), b"dd");
    Ok(())
}

/// getACL/setACL: the ACL version is separate from the data version; INVALIDACL comes before
/// NONODE.
async fn acl_get_and_set(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/n", b"", CreateMode::Persistent).await?;
    let (acl, st) = c.get_acl("/n").await?;
    assert_eq!(acl, Acl::open_unsafe());
    assert_eq!(st.aversion, 0);
    let read_admin = vec![Acl::new(Perms::READ | Perms::ADMIN, conclave::Id::anyone())];
    let st = c.set_acl("/n", read_admin.clone(), Some(0)).await?;
    assert_eq!((st.aversion, st.version), (1, 0));
    assert_eq!(c.get_acl("/n").await?.0, read_admin);
    assert_eq!(c.set_acl("/n", Acl::open_unsafe(), Some(0)).await, Err(Error::BadVersion));
    c.set_acl("/n", Acl::read_unsafe(), Some(1)).await?;
    assert_eq!(
        c.set_acl("/n", Acl::open_unsafe(), Some(0)).await,
        Err(Error::NoAuth),
        "ADMIN is checked before the version"
    );
    assert_eq!(c.set_acl("/missing", vec![], None).await, Err(Error::InvalidAcl), "INVALIDACL before NONODE");
    assert_eq!(c.set_acl("/missing", Acl::open_unsafe(), None).await, Err(Error::NoNode));
    assert_eq!(c.get_acl("/missing").await, Err(Error::NoNode));
    Ok(())
}

/// getChildren lists names only; getChildren2 adds the parent's stat.
async fn children(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.get_children("/p").await, Err(Error::NoNode));
    c.create("/p", b"", CreateMode::Persistent).await?;
    assert!(c.get_children("/p").await?.is_empty());
    for n in ["b", "a", "c"] {
        c.create(&format!("/p/{n}"), b"", CreateMode::Persistent).await?;
    }
    c.create("/p/a/deeper", b"", CreateMode::Persistent).await?;
    let mut names = c.get_children("/p").await?;
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    let (mut names, st) = c.get_children_with_stat("/p").await?;
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(st.num_children, 3);
    assert_eq!(c.get_children("/").await?, ["p"], "the chroot's root lists the test's nodes");
    Ok(())
}

/// `sync` succeeds (it names no node that must exist); the config node is readable from any
/// chroot and empty on a standalone server.
async fn sync_and_config(env: Env) -> Result<()> {
    let c = env.client().await;
    c.sync("/").await?;
    c.sync("/not-there").await?;
    let (data, st) = c.get_config().await?;
    assert!(data.is_empty());
    assert_eq!(st.aversion, -1, "set at boot through setACL with version -1");
    Ok(())
}

/// getEphemerals lists the caller's ephemerals by string prefix; getAllChildrenNumber counts all
/// descendants.
async fn ephemerals_and_counts(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    c.create("/a", b"", CreateMode::Persistent).await?;
    c.create("/ab", b"", CreateMode::Persistent).await?;
    c.create("/a/e1", b"", CreateMode::Ephemeral).await?;
    c.create("/ab/e2", b"", CreateMode::Ephemeral).await?;
    c.create("/a/p", b"", CreateMode::Persistent).await?;
    other.create("/a/theirs", b"", CreateMode::Ephemeral).await?;
    let mut all = c.get_ephemerals("/").await?;
    all.sort();
    assert_eq!(all, ["/a/e1", "/ab/e2"]);
    let mut pre = c.get_ephemerals("/a").await?;
    pre.sort();
    assert_eq!(pre, ["/a/e1", "/ab/e2"], "a plain string prefix: /a matches /ab/e2");
    assert_eq!(c.get_ephemerals("/a/").await?, ["/a/e1"]);
    assert_eq!(other.get_ephemerals("/").await?, ["/a/theirs"]);
    assert_eq!(c.get_all_children_number("/a").await?, 3);
    assert_eq!(c.get_all_children_number("/").await?, 6);
    assert_eq!(c.get_all_children_number("/a/e1").await?, 0);
    assert_eq!(c.get_all_children_number("/missing").await, Err(Error::NoNode));
    Ok(())
}

/// whoAmI lists the connection's identities: its address, then every digest user added.
async fn who_am_i_lists_identities(env: Env) -> Result<()> {
    let c = env.client().await;
    let ids = c.who_am_i().await?;
    assert!(ids.iter().any(|i| i.auth_scheme == "ip"), "{ids:?}");
    c.add_auth("digest", b"bob:secret").await?;
    let ids = c.who_am_i().await?;
    assert!(ids.iter().any(|i| i.auth_scheme == "digest" && i.user == "bob"), "{ids:?}");
    assert_eq!(ids.len(), 2);
    Ok(())
}
