//! `create_all` (a node and its missing ancestors: Curator's `creatingParentsIfNeeded`, kazoo's
//! `makepath`) and `delete_all` (a node and its subtree: Curator's `deletingChildrenIfNeeded`,
//! kazoo's `delete(recursive=True)`): what they create and delete, what they cost in round trips,
//! how they meet other clients changing the tree meanwhile, chroots and ACLs. Both are made of
//! plain creates, listings and deletes, so their errors are ZooKeeper's (protocol reference
//! section 6.3). Written once, run on both backends.

use conclave::{Acl, CreateMode, CreateOptions, Id, Perms};
use conclave_core::{Error, Result};

use crate::conformance;
use crate::support::round_trips::RoundTrips;
use crate::support::{ConnectTo, Env};

conformance!(
    create_all_makes_the_missing_ancestors,
    create_all_leaves_existing_ancestors_alone,
    create_all_in_a_chroot,
    create_all_stops_at_an_ancestor_it_may_not_create,
    create_all_races_other_clients,
    delete_all_removes_the_subtree,
    delete_all_errors,
    delete_all_meets_changes_made_meanwhile,
    delete_all_stops_at_a_node_it_may_not_delete,
);

/// A chain of missing ancestors is created top down, as persistent nodes with empty data and
/// the node's ACL, whatever the node's mode; the node gets its data and mode. A missing chain
/// costs two round trips however deep it is; an existing parent, one.
async fn create_all_makes_the_missing_ancestors(env: Env) -> Result<()> {
    let c = env.client().await;
    // World may do everything but ADMIN: unlike the default ACL, so it shows where it came from.
    let acl = vec![Acl::new(Perms::READ | Perms::WRITE | Perms::CREATE | Perms::DELETE, Id::anyone())];
    let options = CreateOptions::new(CreateMode::Persistent).acl(acl.clone());

    let trips = RoundTrips::start();
    let (path, stat) = c.create_all("/a/b/c/d/e/f/g/h", "leaf", options.clone()).await?;
    assert_eq!((trips.count(), trips.requests()), (2, 1 + 7 + 1), "create, then 7 ancestors and the create again");
    assert_eq!(path, "/a/b/c/d/e/f/g/h");
    assert_eq!(c.get_data(&path).await?, ("leaf".into(), stat));
    for ancestor in ["/a", "/a/b", "/a/b/c", "/a/b/c/d", "/a/b/c/d/e", "/a/b/c/d/e/f", "/a/b/c/d/e/f/g"] {
        let (data, stat) = c.get_data(ancestor).await?;
        assert!(data.is_empty(), "{ancestor}");
        assert_eq!((stat.ephemeral_owner, stat.num_children), (0, 1), "{ancestor}");
        assert_eq!(c.get_acl(ancestor).await?.0, acl, "{ancestor}");
    }

    trips.reset();
    c.create_all("/a/b/sibling", "", CreateMode::Persistent).await?;
    assert_eq!((trips.count(), trips.requests()), (1, 1), "an existing parent: a plain create");
    drop(trips);

    // Sequential and ephemeral nodes get persistent ancestors.
    let (seq, _) = c.create_all("/s/q/item-", "", CreateMode::PersistentSequential).await?;
    assert_eq!(seq, "/s/q/item-0000000000");
    let (eph, stat) = c.create_all("/e/x/node", "", CreateMode::Ephemeral).await?;
    assert_eq!(stat.ephemeral_owner, c.session_id());
    assert_eq!(c.exists("/e/x").await?.map(|s| s.ephemeral_owner), Some(0));
    c.close().await;
    let c = env.client().await;
    assert_eq!(c.exists(&eph).await?, None, "the ephemeral node went with its session");
    assert!(c.exists("/e/x").await?.is_some(), "its ancestors did not");
    Ok(())
}

/// Existing ancestors keep their data, version and ACL; an existing node is `NodeExists`; a
/// node whose ancestor is ephemeral cannot be created; a bad path is refused before sending.
async fn create_all_leaves_existing_ancestors_alone(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/p", "parent data", CreateMode::Persistent).await?;
    c.set_data("/p", "parent data v1", None).await?;
    let (data, before) = c.get_data("/p").await?;
    c.create_all("/p/q/r", "", CreateMode::Persistent).await?;
    let (data_after, after) = c.get_data("/p").await?;
    assert_eq!((data_after, after.version, after.mzxid), (data, before.version, before.mzxid), "not written");
    assert_eq!(c.get_acl("/p").await?.1.aversion, 0, "ACL not set");
    assert_eq!(c.create_all("/p/q/r", "", CreateMode::Persistent).await, Err(Error::NodeExists));
    assert_eq!(c.create_all("/p", "", CreateMode::Persistent).await, Err(Error::NodeExists));

    c.create("/eph", "", CreateMode::Ephemeral).await?;
    assert_eq!(c.create_all("/eph/x/y", "", CreateMode::Persistent).await, Err(Error::NoChildrenForEphemerals));
    assert!(matches!(c.create_all("/a//b", "", CreateMode::Persistent).await, Err(Error::InvalidPath { .. })));
    assert!(matches!(c.create_all("rel/x", "", CreateMode::Persistent).await, Err(Error::InvalidPath { .. })));
    assert_eq!(c.exists("/a").await?, None, "nothing sent for a bad path");
    Ok(())
}

/// Under a chroot, paths are relative to it and only ancestors inside it are created: a missing
/// chroot node is `NoNode`, not created (ZooKeeper Programmer's Guide, "ZooKeeper Sessions":
/// chroot).
async fn create_all_in_a_chroot(env: Env) -> Result<()> {
    let top = env.unchrooted().await;
    let c = env.client().await;
    let (path, _) = c.create_all("/x/y/z", "z", CreateMode::Persistent).await?;
    assert_eq!(path, "/x/y/z");
    assert_eq!(top.get_data(&format!("{}/x/y/z", env.root)).await?.0, "z");
    assert_eq!(top.exists("/x").await?, None, "nothing outside the chroot");

    let missing_root = format!("{}/missing", env.root);
    let lost = env.builder().chroot(missing_root.clone()).connect_raw(&env.backend).await?;
    assert_eq!(lost.create_all("/a/b", "", CreateMode::Persistent).await, Err(Error::NoNode));
    assert_eq!(lost.create_all("/a", "", CreateMode::Persistent).await, Err(Error::NoNode));
    assert_eq!(top.exists(&missing_root).await?, None, "the chroot node is not created");
    Ok(())
}

/// An ancestor whose parent denies CREATE stops the chain with that ancestor's `NoAuth`, and
/// the ancestors created above it stay; an existing ancestor under such a parent does not stop
/// it (ZooKeeper answers NOAUTH before NODEEXISTS there, yet the node exists and the chain goes
/// on). Ancestors get the node's ACL, so a node's ACL without CREATE fails below its first
/// missing ancestor.
async fn create_all_stops_at_an_ancestor_it_may_not_create(env: Env) -> Result<()> {
    let c = env.client().await;
    let read_only = vec![Acl::new(Perms::READ, Id::anyone())];
    let read_only_node = CreateOptions::new(CreateMode::Persistent).acl(read_only.clone());
    c.create("/locked", "", read_only_node.clone()).await?;
    assert_eq!(c.create_all("/locked/x/y", "", CreateMode::Persistent).await, Err(Error::NoAuth));
    assert_eq!(c.exists("/locked/x").await?, None);
    // Part way down: the refusal comes from an ancestor this call created.
    assert_eq!(c.create_all("/open/shut/x", "", read_only_node).await, Err(Error::NoAuth));
    assert_eq!(c.get_acl("/open").await?.0, read_only, "created with the node's ACL, and left");
    assert_eq!(c.exists("/open/shut").await?, None);

    c.create("/g", "", CreateMode::Persistent).await?;
    c.create("/g/ok", "", CreateMode::Persistent).await?;
    c.set_acl("/g", read_only, None).await?;
    assert_eq!(c.create("/g/ok", "", CreateMode::Persistent).await, Err(Error::NoAuth), "NOAUTH before NODEEXISTS");
    let (path, _) = c.create_all("/g/ok/x/y", "y", CreateMode::Persistent).await?;
    assert_eq!(c.get_data(&path).await?.0, "y");
    Ok(())
}

/// Several clients creating under the same missing chain all succeed (an ancestor another one
/// created first is fine), and so do clients whose ancestors another client keeps deleting
/// (the chain is created again).
async fn create_all_races_other_clients(env: Env) -> Result<()> {
    let clients = futures::future::join_all((0..4).map(|_| env.client())).await;
    let creates = clients.iter().enumerate().flat_map(|(i, c)| {
        (0..5).map(move |j| c.create_all(&format!("/race/a/b/c/n{i}-{j}"), "", CreateMode::Persistent))
    });
    for created in futures::future::join_all(creates).await {
        created?;
    }
    assert_eq!(clients[0].get_children("/race/a/b/c").await?.len(), 20);

    // A deleter removes the chain whenever it is empty, while a creator puts a node at its
    // bottom and takes it away again: every create_all still succeeds.
    let (deleter, creator) = (&clients[1], &clients[2]);
    creator.create_all("/churn/a/b", "", CreateMode::Persistent).await?;
    let stop = conclave::CancellationToken::new();
    let deleting = async {
        let mut deleted = 0;
        while !stop.is_cancelled() {
            for path in ["/churn/a/b", "/churn/a", "/churn"] {
                if deleter.delete(path, None).await.is_ok() {
                    deleted += 1;
                }
            }
            tokio::task::yield_now().await;
        }
        deleted
    };
    let creating = async {
        for i in 0..50 {
            let (path, _) = creator.create_all(&format!("/churn/a/b/n{i}"), "", CreateMode::Persistent).await?;
            creator.delete(&path, None).await?;
        }
        stop.cancel();
        Ok::<_, Error>(())
    };
    let (deleted, created) = tokio::join!(deleting, creating);
    created?;
    assert!(deleted > 0, "the deleter had something to delete");
    Ok(())
}

/// A subtree of any shape goes: a node with 1000 children, grandchildren, a lone leaf. The
/// cost is two round trips per level (a pipelined listing and a pipelined delete), not per node.
async fn delete_all_removes_the_subtree(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/big", "", CreateMode::Persistent).await?;
    let creates: Vec<_> = (0..1000).map(|i| c.create(&format!("/big/c{i:04}"), "x", CreateMode::Persistent)).collect();
    for created in futures::future::join_all(creates).await {
        created?;
    }
    let trips = RoundTrips::start();
    c.delete_all("/big").await?;
    assert_eq!(trips.count(), 4, "list /big, list its children, delete them, delete /big");
    assert_eq!(trips.requests(), 1 + 1000 + 1000 + 1);
    drop(trips);
    assert_eq!(c.exists("/big").await?, None);

    c.create_all("/deep/a/b/c/d", "", CreateMode::Persistent).await?;
    c.create_all("/deep/a/x/y", "", CreateMode::Persistent).await?;
    c.create_all("/deep/z", "", CreateMode::Persistent).await?;
    c.create("/deep/a/b/e", "", CreateMode::Ephemeral).await?;
    let trips = RoundTrips::start();
    c.delete_all("/deep/a").await?;
    assert_eq!(trips.count(), 2 * 4, "/deep/a and three levels below it");
    drop(trips);
    assert_eq!(c.get_children("/deep").await?, ["z"], "only the subtree went");

    c.create("/leaf", "", CreateMode::Persistent).await?;
    c.delete_all("/leaf").await?;
    assert_eq!(c.exists("/leaf").await?, None);
    Ok(())
}

/// A missing node is `NoNode` (as `delete`); `/` (here the chroot node) cannot be deleted and
/// nothing is touched; nodes ZooKeeper keeps are refused by the server (`BadArguments`).
async fn delete_all_errors(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.delete_all("/missing").await, Err(Error::NoNode));
    c.create("/keep", "", CreateMode::Persistent).await?;
    assert!(matches!(c.delete_all("/").await, Err(Error::InvalidArgument(_))));
    assert!(c.exists("/keep").await?.is_some());
    assert!(matches!(c.delete_all("/keep/").await, Err(Error::InvalidPath { .. })));
    let top = env.unchrooted().await;
    assert_eq!(top.delete_all("/zookeeper").await, Err(Error::BadArguments));
    assert!(top.exists("/zookeeper/config").await?.is_some());
    Ok(())
}

/// Changes made during the deletion (here by the same session, so they land at a known point:
/// right after the first listing): a child added meanwhile is found on a second pass, a child
/// deleted meanwhile is skipped, and the whole subtree goes.
async fn delete_all_meets_changes_made_meanwhile(env: Env) -> Result<()> {
    let c = env.client().await;
    for i in 0..3 {
        c.create_all(&format!("/t/c{i}/g"), "", CreateMode::Persistent).await?;
    }
    let trips = RoundTrips::start();
    let deleting = c.delete_all("/t");
    let late = c.create("/t/late", "", CreateMode::Persistent);
    let gone = (c.delete("/t/c0/g", None), c.delete("/t/c0", None));
    deleting.await?;
    // First pass: list /t, c0..c2 (c0 is gone: skipped), the two g; delete them, c0 (gone:
    // fine), c1, c2, and /t, which fails NOTEMPTY because of `late`: 6 round trips. Second pass:
    // list /t and late, delete late and /t: 4.
    assert_eq!(trips.count(), 10, "a second pass");
    drop(trips);
    assert_eq!(late.await?.0, "/t/late");
    gone.0.await?;
    gone.1.await?;
    assert_eq!(c.exists("/t").await?, None);

    // Deleted by someone else while being deleted: gone either way.
    c.create_all("/u/v", "", CreateMode::Persistent).await?;
    let deleting = c.delete_all("/u");
    let other = c.delete_all("/u");
    deleting.await?;
    other.await?;
    assert_eq!(c.exists("/u").await?, None);
    Ok(())
}

/// A node whose parent denies DELETE stops the deletion with `NoAuth`; what was below it is
/// gone, it and what is above it stay (ZooKeeper checks DELETE on the parent).
async fn delete_all_stops_at_a_node_it_may_not_delete(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create_all("/d/guarded/c/leaf", "", CreateMode::Persistent).await?;
    let no_delete = vec![Acl::new(Perms::READ | Perms::CREATE | Perms::WRITE | Perms::ADMIN, Id::anyone())];
    c.set_acl("/d/guarded", no_delete, None).await?;
    assert_eq!(c.delete_all("/d").await, Err(Error::NoAuth));
    assert_eq!(c.get_children("/d/guarded/c").await?, Vec::<String>::new(), "the leaf went");
    assert!(c.exists("/d/guarded/c").await?.is_some());
    assert!(c.exists("/d").await?.is_some());
    Ok(())
}
