//! `NodeCache`, `ChildrenCache` and the one-shot watch mode, on both backends: a node cache
//! follows one node (created, changed, deleted, created again unseen); a children cache keeps
//! the children by name and leaves the parent's own events out; a tree cache kept by one-shot
//! watches loads, follows nested changes and resyncs like one kept by a persistent watch.

use conclave::cache::{CacheEvent, ChildrenCache, NodeCache, TreeCache, WatchMode};
use conclave::{CreateMode, Result};

use super::{assert_mirrors, is_init, next, shorts, until, while_away};
use crate::conformance;
use crate::support::{within, Env};

conformance!(
    a_node_cache_follows_one_node,
    a_children_cache_keeps_children_by_name,
    one_shot_watches_keep_a_tree_like_a_persistent_watch,
);

/// A node cache: the missing node, then its creation, changes and deletion; its children are
/// not its business; a re-creation while away shows as removed and added.
async fn a_node_cache_follows_one_node(env: Env) -> Result<()> {
    let writer = env.client().await;
    let (proxy, client) = env.proxied(env.builder()).await;
    let cache = NodeCache::new(&client, "/n")?;
    let mut events = cache.events();
    assert_eq!(shorts(&[next(&mut events).await]), ["init"]);
    assert_eq!(cache.get(), None);
    writer.create("/n", "1", CreateMode::Persistent).await?;
    // (A change right after the create could be seen with it, as one state.)
    within(10, cache.sync()).await?;
    writer.create("/n/child", "", CreateMode::Persistent).await?;
    writer.set_data("/n", "2", None).await?;
    assert_eq!(shorts(&[next(&mut events).await, next(&mut events).await]), ["+/n@0", "~/n@1"]);
    assert_eq!(cache.get().map(|n| n.data), Some("2".into()));
    while_away(&proxy, &client, async {
        writer.delete_all("/n").await?;
        writer.create("/n", "2", CreateMode::Persistent).await?;
        Ok(())
    })
    .await?;
    let got = until(&mut events, |e| matches!(e, CacheEvent::Added { .. })).await;
    assert_eq!(shorts(&got), ["resynced(missed)", "-/n@1", "+/n@0"]);
    writer.delete("/n", None).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["-/n@0"]);
    within(10, cache.sync()).await?;
    assert_eq!(cache.get(), None);
    Ok(())
}

/// A children cache: the children by name with their data, nothing deeper, no event of the
/// parent itself (not even its deletion, which removes every child first).
async fn a_children_cache_keeps_children_by_name(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/p", "parent", CreateMode::Persistent).await?;
    c.create("/p/a", "1", CreateMode::Persistent).await?;
    c.create("/p/a/deep", "", CreateMode::Persistent).await?;
    let cache = ChildrenCache::new(&c, "/p")?;
    let mut events = cache.events();
    assert_eq!(shorts(&until(&mut events, is_init).await), ["+/p/a@0", "init"]);
    c.set_data("/p", "changed", None).await?;
    c.create("/p/b", "2", CreateMode::Persistent).await?;
    c.set_data("/p/a/deep", "x", None).await?;
    c.set_data("/p/a", "1b", None).await?;
    assert_eq!(shorts(&[next(&mut events).await, next(&mut events).await]), ["+/p/b@0", "~/p/a@1"]);
    let children = cache.children();
    assert_eq!(children.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(children["a"].data, "1b");
    assert_eq!(cache.get("b").map(|n| n.data), Some("2".into()));
    c.delete_all("/p").await?;
    let mut gone = shorts(&[next(&mut events).await, next(&mut events).await]);
    gone.sort();
    assert_eq!(gone, ["-/p/a@1", "-/p/b@0"]);
    within(10, cache.sync()).await?;
    assert!(cache.children().is_empty());
    // Created again: the children come back with it.
    c.create("/p", "", CreateMode::Persistent).await?;
    c.create("/p/c", "3", CreateMode::Persistent).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["+/p/c@0"]);
    Ok(())
}

/// One-shot mode: the load, nested creates, changes and deletes, a resync with a re-creation,
/// and the end state equal to the server's.
async fn one_shot_watches_keep_a_tree_like_a_persistent_watch(env: Env) -> Result<()> {
    let writer = env.client().await;
    writer.create("/t", "", CreateMode::Persistent).await?;
    writer.create("/t/a", "a0", CreateMode::Persistent).await?;
    let (proxy, client) = env.proxied(env.builder()).await;
    let cache = TreeCache::builder(&client, "/t").watch_mode(WatchMode::OneShot).start()?;
    let mut events = cache.events();
    assert_eq!(shorts(&until(&mut events, is_init).await), ["+/t@0", "+/t/a@0", "init"]);
    writer.create("/t/a/x", "x0", CreateMode::Persistent).await?;
    writer.create("/t/a/x/y", "y0", CreateMode::Persistent).await?;
    within(10, cache.sync()).await?;
    assert_eq!(shorts(&[next(&mut events).await, next(&mut events).await]), ["+/t/a/x@0", "+/t/a/x/y@0"]);
    writer.set_data("/t/a/x/y", "y1", None).await?;
    within(10, cache.sync()).await?;
    writer.delete("/t/a/x/y", None).await?;
    assert_eq!(shorts(&[next(&mut events).await, next(&mut events).await]), ["~/t/a/x/y@1", "-/t/a/x/y@1"]);
    while_away(&proxy, &client, async {
        writer.delete("/t/a/x", None).await?;
        writer.create("/t/a/x", "x0", CreateMode::Persistent).await?;
        writer.set_data("/t/a", "a1", None).await?;
        Ok(())
    })
    .await?;
    let mut got = shorts(&until(&mut events, |e| matches!(e, CacheEvent::Added { .. })).await);
    got.sort();
    assert_eq!(got, ["+/t/a/x@0", "-/t/a/x@0", "resynced(missed)", "~/t/a@1"]);
    writer.create("/t/a/x/z", "", CreateMode::Persistent).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["+/t/a/x/z@0"]);
    assert_mirrors(&cache, &writer).await?;
    Ok(())
}
