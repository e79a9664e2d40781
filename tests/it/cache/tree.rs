//! `TreeCache` on both backends: the load and `Initialized`, live changes in order, a late
//! subscriber, depth and filter, a missing root, the resync after a reconnection (only the
//! differences, behind `Resynced`; a node deleted and re-created unseen shows as removed and
//! added: CURATOR-391), a load racing writers (nothing reported twice), the rebuild after an
//! expiry, the end without it, and the watch going with the cache.

use std::time::Duration;

use conclave::cache::{CacheEvent, TreeCache};
use conclave::{Client, CreateMode, Error, Result, WatcherType, ZkError};
use futures::StreamExt;

use super::{assert_mirrors, is_init, next, shorts, state_of, until, while_away, Checker};
use crate::conformance;
use crate::support::{within, Env};

conformance!(
    loads_then_follows_changes_in_order,
    a_late_subscriber_gets_the_content_first,
    depth_and_filter_bound_the_cache,
    a_missing_root_is_waited_for,
    a_resync_reports_only_the_differences,
    a_node_recreated_unseen_is_removed_and_added,
    children_that_came_and_went_unseen_count_as_missed,
    a_load_racing_writers_reports_nothing_twice,
    an_expired_session_is_replaced_and_the_cache_rebuilt,
    without_rebuild_the_cache_ends_with_the_session,
    a_removed_watch_is_added_again,
    a_stream_that_falls_behind_is_ended,
    dropping_the_cache_removes_its_watch,
);

async fn create(c: &Client, nodes: &[(&str, &str)]) -> Result<()> {
    for (path, data) in nodes {
        c.create(path, *data, CreateMode::Persistent).await?;
    }
    Ok(())
}

/// The load reports every node then `Initialized`; changes follow in the order they were made.
async fn loads_then_follows_changes_in_order(env: Env) -> Result<()> {
    let c = env.client().await;
    create(&c, &[("/c", "r"), ("/c/a", "a0"), ("/c/a/x", "x0"), ("/c/b", "b0")]).await?;
    let cache = TreeCache::new(&c, "/c")?;
    let mut events = cache.events();
    let mut loaded = shorts(&until(&mut events, is_init).await);
    assert_eq!(loaded.pop().as_deref(), Some("init"));
    loaded.sort();
    assert_eq!(loaded, ["+/c/a/x@0", "+/c/a@0", "+/c/b@0", "+/c@0"]);
    within(10, cache.initialized()).await?;
    assert!(cache.is_initialized());
    assert_eq!(cache.get("/c/a").map(|n| n.data), Some("a0".into()));
    assert_eq!(cache.children("/c"), Some(vec!["a".to_string(), "b".to_string()]));

    c.set_data("/c/a", "a1", None).await?;
    c.create("/c/b/y", "y0", CreateMode::Persistent).await?;
    c.delete("/c/a/x", None).await?;
    c.set_data("/c", "r1", None).await?;
    let mut changes = Vec::new();
    for _ in 0..4 {
        changes.push(next(&mut events).await);
    }
    assert_eq!(shorts(&changes), ["~/c/a@1", "+/c/b/y@0", "-/c/a/x@0", "~/c@1"]);
    assert_eq!(changes[0].node().map(|n| n.data.clone()), Some("a1".into()));
    assert_eq!(assert_mirrors(&cache, &c).await?, 4);
    assert_eq!(cache.len(), 4);
    Ok(())
}

/// A subscriber that comes after the load gets the cached nodes as `Added`, then
/// `Initialized`, then what changes; two subscribers see the same changes.
async fn a_late_subscriber_gets_the_content_first(env: Env) -> Result<()> {
    let c = env.client().await;
    create(&c, &[("/c", ""), ("/c/a", "1"), ("/c/b", "2")]).await?;
    let cache = TreeCache::new(&c, "/c")?;
    within(10, cache.initialized()).await?;
    let mut first = cache.events();
    assert_eq!(shorts(&until(&mut first, is_init).await), ["+/c@0", "+/c/a@0", "+/c/b@0", "init"]);
    c.set_data("/c/b", "3", None).await?;
    assert_eq!(shorts(&[next(&mut first).await]), ["~/c/b@1"]);
    let mut late = cache.events();
    assert_eq!(shorts(&until(&mut late, is_init).await), ["+/c@0", "+/c/a@0", "+/c/b@1", "init"]);
    c.delete("/c/a", None).await?;
    assert_eq!(shorts(&[next(&mut first).await]), ["-/c/a@0"]);
    assert_eq!(shorts(&[next(&mut late).await]), ["-/c/a@0"]);
    Ok(())
}

/// Nodes below the depth limit and under a refused node are neither cached nor reported.
async fn depth_and_filter_bound_the_cache(env: Env) -> Result<()> {
    let c = env.client().await;
    create(&c, &[("/c", ""), ("/c/a", ""), ("/c/a/x", ""), ("/c/a/x/deep", ""), ("/c/skip", ""), ("/c/skip/y", "")])
        .await?;
    let cache = TreeCache::builder(&c, "/c").max_depth(2).filter(|p| !p.ends_with("/skip")).start()?;
    let mut events = cache.events();
    let mut loaded = shorts(&until(&mut events, is_init).await);
    loaded.sort();
    assert_eq!(loaded, ["+/c/a/x@0", "+/c/a@0", "+/c@0", "init"]);
    c.set_data("/c/a/x/deep", "1", None).await?;
    c.create("/c/skip/z", "", CreateMode::Persistent).await?;
    c.create("/c/a/x/deep/er", "", CreateMode::Persistent).await?;
    c.set_data("/c/a/x", "1", None).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["~/c/a/x@1"]);
    within(10, cache.sync()).await?;
    assert_eq!(cache.snapshot().keys().collect::<Vec<_>>(), ["/c", "/c/a", "/c/a/x"]);
    Ok(())
}

/// A cache of a node that does not exist is initialized empty, then reports the node and its
/// children when they come, and their removal.
async fn a_missing_root_is_waited_for(env: Env) -> Result<()> {
    let c = env.client().await;
    let cache = TreeCache::new(&c, "/later")?;
    let mut events = cache.events();
    assert_eq!(shorts(&[next(&mut events).await]), ["init"]);
    assert!(cache.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cache.is_empty());
    create(&c, &[("/later", "1"), ("/later/k", "2")]).await?;
    assert_eq!(shorts(&[next(&mut events).await, next(&mut events).await]), ["+/later@0", "+/later/k@0"]);
    c.delete_all("/later").await?;
    assert_eq!(shorts(&[next(&mut events).await, next(&mut events).await]), ["-/later/k@0", "-/later@0"]);
    assert!(cache.is_empty());
    Ok(())
}

/// A change made while the cache's client was away is reported after `Resynced`, alone: one
/// data change (version + 1) is not a skipped state.
async fn a_resync_reports_only_the_differences(env: Env) -> Result<()> {
    let writer = env.client().await;
    create(&writer, &[("/c", ""), ("/c/a", "a0"), ("/c/b", "b0"), ("/c/b/x", "")]).await?;
    let (proxy, client) = env.proxied(env.builder()).await;
    let cache = TreeCache::new(&client, "/c")?;
    let mut events = cache.events();
    until(&mut events, is_init).await;
    while_away(&proxy, &client, async {
        writer.set_data("/c/a", "a1", None).await?;
        Ok(())
    })
    .await?;
    assert_eq!(shorts(&until(&mut events, |e| e.path().is_some()).await), ["resynced", "~/c/a@1"]);
    // Two changes of one node while away: the first state was skipped.
    while_away(&proxy, &client, async {
        writer.set_data("/c/b", "b1", None).await?;
        writer.set_data("/c/b", "b2", None).await?;
        Ok(())
    })
    .await?;
    assert_eq!(shorts(&until(&mut events, |e| e.path().is_some()).await), ["resynced(missed)", "~/c/b@2"]);
    // Nothing changed: a marker alone.
    while_away(&proxy, &client, async { Ok(()) }).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["resynced"]);
    assert_mirrors(&cache, &writer).await?;
    Ok(())
}

/// CURATOR-391: a node deleted and created again while the cache's client was away, with the
/// same data and version, is reported as removed and added (told apart by its creation).
async fn a_node_recreated_unseen_is_removed_and_added(env: Env) -> Result<()> {
    let writer = env.client().await;
    create(&writer, &[("/c", ""), ("/c/n", "same"), ("/c/n/kid", "k")]).await?;
    let (proxy, client) = env.proxied(env.builder()).await;
    let cache = TreeCache::new(&client, "/c")?;
    let mut events = cache.events();
    until(&mut events, is_init).await;
    let before = cache.get("/c/n").expect("cached").stat.czxid;
    while_away(&proxy, &client, async {
        writer.delete_all("/c/n").await?;
        writer.create("/c/n", "same", CreateMode::Persistent).await?;
        Ok(())
    })
    .await?;
    let got = until(&mut events, |e| matches!(e, CacheEvent::Added { .. })).await;
    assert_eq!(shorts(&got), ["resynced(missed)", "-/c/n/kid@0", "-/c/n@0", "+/c/n@0"]);
    let after = cache.get("/c/n").expect("cached").stat.czxid;
    assert!(after > before, "the new node is a new creation");
    assert_mirrors(&cache, &writer).await?;
    Ok(())
}

/// Children created and deleted while away leave no node to report, but the parent's
/// `cversion` shows them: the marker says states were missed.
async fn children_that_came_and_went_unseen_count_as_missed(env: Env) -> Result<()> {
    let writer = env.client().await;
    create(&writer, &[("/c", ""), ("/c/d", ""), ("/c/d/keep", "")]).await?;
    let (proxy, client) = env.proxied(env.builder()).await;
    let cache = TreeCache::new(&client, "/c")?;
    let mut events = cache.events();
    until(&mut events, is_init).await;
    while_away(&proxy, &client, async {
        writer.create("/c/d/brief", "", CreateMode::Persistent).await?;
        writer.delete("/c/d/brief", None).await?;
        Ok(())
    })
    .await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["resynced(missed)"]);
    Ok(())
}

/// Writers change the tree while the cache loads it: every event stream is consistent
/// (nothing added twice, versions only grow), `Initialized` comes once, and the cache ends
/// equal to the server.
async fn a_load_racing_writers_reports_nothing_twice(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/c", "", CreateMode::Persistent).await?;
    let creates: Vec<_> = (0..200).map(|i| c.create(&format!("/c/n{i:03}"), "0", CreateMode::Persistent)).collect();
    futures::future::try_join_all(creates).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (c, stop) = (env.client().await, stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.is_cancelled() {
                i += 1;
                let n = format!("/c/n{:03}", (i * 7919) % 200);
                let _ = c.set_data(&n, i.to_string(), None).await;
                let extra = format!("/c/x{}", i % 5);
                if i.is_multiple_of(2) {
                    let _ = c.create(&extra, "", CreateMode::Persistent).await;
                } else {
                    let _ = c.delete(&extra, None).await;
                }
            }
        })
    };
    let cache = TreeCache::new(&c, "/c")?;
    let mut events = cache.events();
    let mut checker = Checker::default();
    for e in until(&mut events, is_init).await {
        checker.apply(&e).map_err(ZkError::InvalidArgument)?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    writer.await.expect("the writer");
    within(30, cache.sync()).await?;
    // Everything up to the sync is queued (a timeout, not `now_or_never`: tokio's budget can
    // make a ready channel look empty).
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
        checker.apply(&e?).map_err(ZkError::InvalidArgument)?;
    }
    assert_eq!(checker.state(), state_of(&cache.snapshot()), "the events say what the cache holds");
    assert_mirrors(&cache, &c).await?;
    Ok(())
}

/// The cache's session expires: it moves to a new one, reads everything again and reports
/// what changed meanwhile behind `Resynced { possibly_missed: true }`.
async fn an_expired_session_is_replaced_and_the_cache_rebuilt(env: Env) -> Result<()> {
    let writer = env.client().await;
    create(&writer, &[("/c", ""), ("/c/a", "a0")]).await?;
    let c = env.client().await;
    let cache = TreeCache::new(&c, "/c")?;
    let mut events = cache.events();
    until(&mut events, is_init).await;
    let old = cache.client().session_id();
    env.expire(&c).await?;
    writer.set_data("/c/a", "a1", None).await?;
    let mut got = shorts(&until(&mut events, |e| e.path().is_some()).await);
    // (Taking the session over from a second connection can make the client reconnect first.)
    got.retain(|e| e != "resynced");
    assert_eq!(got, ["resynced(missed)", "~/c/a@1"]);
    assert_ne!(cache.client().session_id(), old, "a new session");
    // The new session follows changes.
    writer.create("/c/b", "", CreateMode::Persistent).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["+/c/b@0"]);
    assert_mirrors(&cache, &writer).await?;
    Ok(())
}

/// Without rebuilding, the cache ends with the expiry: its streams yield `SessionExpired`,
/// `sync` fails with it, and what was cached stays readable.
async fn without_rebuild_the_cache_ends_with_the_session(env: Env) -> Result<()> {
    let c = env.client().await;
    create(&c, &[("/c", "x")]).await?;
    let cache = TreeCache::builder(&c, "/c").rebuild_after_expiry(false).start()?;
    let mut events = cache.events();
    until(&mut events, is_init).await;
    env.expire(&c).await?;
    // (Taking the session over from a second connection can make the client reconnect first.)
    let end = loop {
        match within(20, events.next()).await.expect("an item") {
            Ok(CacheEvent::Resynced { possibly_missed: false }) => continue,
            end => break end,
        }
    };
    assert_eq!(end, Err(ZkError::SessionExpired.into()));
    assert!(within(5, events.next()).await.is_none());
    assert_eq!(within(5, cache.sync()).await, Err(ZkError::SessionExpired.into()));
    within(5, cache.initialized()).await?;
    assert_eq!(cache.get("/c").map(|n| n.data), Some("x".into()));
    let mut late = cache.events();
    assert_eq!(shorts(&[next(&mut late).await, next(&mut late).await]), ["+/c@0", "init"]);
    assert_eq!(within(5, late.next()).await, Some(Err(ZkError::SessionExpired.into())));
    Ok(())
}

/// Someone removes the client's watches (`removeWatches`): the cache adds its watch again and
/// reads everything, behind `Resynced { possibly_missed: true }` (what changed meanwhile was not
/// heard of), then follows changes again.
async fn a_removed_watch_is_added_again(env: Env) -> Result<()> {
    let c = env.client().await;
    create(&c, &[("/c", ""), ("/c/a", "0")]).await?;
    let cache = TreeCache::new(&c, "/c")?;
    let mut events = cache.events();
    until(&mut events, is_init).await;
    c.remove_watches("/c", WatcherType::Any).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["resynced(missed)"]);
    c.set_data("/c/a", "1", None).await?;
    assert_eq!(shorts(&[next(&mut events).await]), ["~/c/a@1"]);
    c.check_watches("/c", WatcherType::Any).await?;
    Ok(())
}

/// A stream that does not take its events is ended with `Lagged` once more than `max_lag` are
/// queued for it (after those it holds); the others go on, and a new stream starts with the
/// content.
async fn a_stream_that_falls_behind_is_ended(env: Env) -> Result<()> {
    let c = env.client().await;
    create(&c, &[("/c", ""), ("/c/a", "0")]).await?;
    let cache = TreeCache::builder(&c, "/c").max_lag(50).start()?;
    let mut slow = cache.events();
    let mut fast = cache.events();
    until(&mut fast, is_init).await;
    for i in 1..=100 {
        c.set_data("/c/a", i.to_string(), None).await?;
        within(10, cache.sync()).await?;
        assert_eq!(shorts(&[next(&mut fast).await]), [format!("~/c/a@{i}")]);
    }
    let mut taken = 0;
    let end = loop {
        match within(10, slow.next()).await.expect("an item") {
            Ok(_) => taken += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(end, Error::Lagged { path: "/c".into(), limit: 50 });
    assert!((51..=53).contains(&taken), "{taken} events before the end");
    assert!(within(5, slow.next()).await.is_none(), "the stream is over");
    let mut again = cache.events();
    assert_eq!(shorts(&until(&mut again, is_init).await), ["+/c@0", "+/c/a@100", "init"]);
    Ok(())
}

/// Dropping the cache and its streams stops its task, which removes the watch from the server.
async fn dropping_the_cache_removes_its_watch(env: Env) -> Result<()> {
    let c = env.client().await;
    create(&c, &[("/c", "")]).await?;
    let cache = TreeCache::new(&c, "/c")?;
    let events = cache.events();
    within(10, cache.initialized()).await?;
    c.check_watches("/c", WatcherType::Any).await?;
    drop(cache);
    // The stream keeps it alive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.check_watches("/c", WatcherType::Any).await?;
    drop(events);
    within(10, async {
        loop {
            match c.check_watches("/c", WatcherType::Any).await {
                Err(ZkError::NoWatcher) => return Ok::<_, ZkError>(()),
                Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return Err(e),
            }
        }
    })
    .await?;
    Ok(())
}
