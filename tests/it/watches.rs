//! Watch semantics (protocol reference section 8): what each read registers, which change fires
//! which watch, one-shot versus persistent watches, ordering against replies, and removal.

use conclave::{AddWatchMode, CreateMode, EventType, WatchedEvent, WatcherType};
use conclave_core::{Error, Result};
use futures::{FutureExt, StreamExt};

use crate::conformance;
use crate::support::{pending_for, within, Env};

conformance!(
    data_watch_is_one_shot,
    exists_watch_on_missing_node,
    child_watch_rules,
    failed_reads_leave_no_watch,
    persistent_watch_sees_its_node,
    recursive_watch_sees_the_subtree,
    event_precedes_later_replies,
    remove_and_check_watches,
    dropping_a_watcher_removes_the_server_watch,
    multi_fires_events_in_op_order,
    one_shot_and_persistent_watches_share_a_path,
);

fn kind(ev: &WatchedEvent) -> (EventType, &str) {
    (ev.event_type, ev.path.as_str())
}

/// A data watch fires once, on the next data change, then must be set again.
async fn data_watch_is_one_shot(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/d", b"0", CreateMode::Persistent).await?;
    let (_, _, w) = c.get_data_and_watch("/d").await?;
    c.set_data("/d", b"1", None).await?;
    c.set_data("/d", b"2", None).await?;
    assert_eq!(kind(&within(5, w).await?), (EventType::NodeDataChanged, "/d"));
    let (_, _, mut w) = c.get_data_and_watch("/d").await?;
    pending_for(100, &mut w).await;
    c.delete("/d", None).await?;
    assert_eq!(kind(&within(5, w).await?), (EventType::NodeDeleted, "/d"));
    Ok(())
}

/// exists on a missing node registers a watch that fires on creation; on an existing node, it
/// fires on data change or deletion.
async fn exists_watch_on_missing_node(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    let (stat, w) = c.exists_and_watch("/e").await?;
    assert_eq!(stat, None);
    other.create("/e", b"", CreateMode::Persistent).await?;
    assert_eq!(kind(&within(5, w).await?), (EventType::NodeCreated, "/e"));
    let (stat, w) = c.exists_and_watch("/e").await?;
    assert!(stat.is_some());
    other.set_data("/e", b"x", None).await?;
    assert_eq!(kind(&within(5, w).await?), (EventType::NodeDataChanged, "/e"));
    Ok(())
}

/// A child watch fires on a child's creation or deletion and on the node's own deletion, never
/// on a child's data change.
async fn child_watch_rules(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/p", b"", CreateMode::Persistent).await?;
    let (_, w) = c.get_children_and_watch("/p").await?;
    c.create("/p/a", b"", CreateMode::Persistent).await?;
    assert_eq!(kind(&within(5, w).await?), (EventType::NodeChildrenChanged, "/p"));

    let (_, _, mut w) = c.get_children_with_stat_and_watch("/p").await?;
    c.set_data("/p/a", b"x", None).await?;
    c.set_data("/p", b"x", None).await?;
    pending_for(100, &mut w).await;
    c.delete("/p/a", None).await?;
    assert_eq!(kind(&within(5, w).await?), (EventType::NodeChildrenChanged, "/p"));

    let (_, w) = c.get_children_and_watch("/p").await?;
    c.delete("/p", None).await?;
    assert_eq!(kind(&within(5, w).await?), (EventType::NodeDeleted, "/p"));
    Ok(())
}

/// getData and getChildren on a missing node fail and set no watch.
async fn failed_reads_leave_no_watch(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.get_data_and_watch("/m").await.err(), Some(Error::NoNode));
    assert_eq!(c.get_children_and_watch("/m").await.err(), Some(Error::NoNode));
    c.create("/m", b"", CreateMode::Persistent).await?;
    assert_eq!(c.check_watches("/m", WatcherType::Any).await, Err(Error::NoWatcher));
    Ok(())
}

/// A persistent watch reports creation, data and child changes and deletion of its node, and
/// survives the deletion.
async fn persistent_watch_sees_its_node(env: Env) -> Result<()> {
    let c = env.client().await;
    let mut w = c.add_watch("/w", AddWatchMode::Persistent).await?;
    c.create("/w", b"", CreateMode::Persistent).await?;
    c.set_data("/w", b"1", None).await?;
    c.create("/w/child", b"", CreateMode::Persistent).await?;
    c.set_data("/w/child", b"1", None).await?; // not reported: not the watched node
    c.delete("/w/child", None).await?;
    c.delete("/w", None).await?;
    c.create("/w", b"", CreateMode::Persistent).await?;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let ev = within(5, w.next()).await.expect("stream open")?;
        seen.push((ev.event_type, ev.path));
    }
    let expected = [
        (EventType::NodeCreated, "/w"),
        (EventType::NodeDataChanged, "/w"),
        (EventType::NodeChildrenChanged, "/w"),
        (EventType::NodeChildrenChanged, "/w"),
        (EventType::NodeDeleted, "/w"),
        (EventType::NodeCreated, "/w"),
    ];
    assert_eq!(seen, expected.map(|(t, p)| (t, p.to_string())));
    Ok(())
}

/// A recursive watch reports creation, data change and deletion anywhere in the subtree, never
/// NodeChildrenChanged.
async fn recursive_watch_sees_the_subtree(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/r", b"", CreateMode::Persistent).await?;
    let mut w = c.add_watch("/r", AddWatchMode::PersistentRecursive).await?;
    c.create("/r/a", b"", CreateMode::Persistent).await?;
    c.create("/r/a/b", b"", CreateMode::Persistent).await?;
    c.set_data("/r/a/b", b"x", None).await?;
    c.create("/elsewhere", b"", CreateMode::Persistent).await?;
    c.delete("/r/a/b", None).await?;
    c.set_data("/r", b"x", None).await?;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let ev = within(5, w.next()).await.expect("stream open")?;
        seen.push((ev.event_type, ev.path));
    }
    let expected = [
        (EventType::NodeCreated, "/r/a"),
        (EventType::NodeCreated, "/r/a/b"),
        (EventType::NodeDataChanged, "/r/a/b"),
        (EventType::NodeDeleted, "/r/a/b"),
        (EventType::NodeDataChanged, "/r"),
    ];
    assert_eq!(seen, expected.map(|(t, p)| (t, p.to_string())));
    Ok(())
}

/// A client sees a watch event before the reply to any request that follows the change: its
/// own write's reply, and another client's later read.
async fn event_precedes_later_replies(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    c.create("/o", b"", CreateMode::Persistent).await?;
    // Own write: the event is delivered before the setData reply.
    let (_, _, w) = c.get_data_and_watch("/o").await?;
    c.set_data("/o", b"1", None).await?;
    let ev = w.now_or_never().expect("event delivered before the write's reply")?;
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    // Someone else's write, then our read: the event comes first.
    let (_, _, w) = c.get_data_and_watch("/o").await?;
    other.set_data("/o", b"2", None).await?;
    let (data, _) = c.get_data("/o").await?;
    assert_eq!(data.as_ref(), b"2");
    assert!(w.now_or_never().is_some(), "event delivered before the later read's reply");
    Ok(())
}

/// removeWatches removes the server watch and ends the local watchers with a removal event;
/// checkWatches only asks; both say NOWATCHER when there is nothing.
async fn remove_and_check_watches(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/x", b"", CreateMode::Persistent).await?;
    assert_eq!(c.remove_watches("/x", WatcherType::Data).await, Err(Error::NoWatcher));
    let (_, _, w) = c.get_data_and_watch("/x").await?;
    let (_, cw) = c.get_children_and_watch("/x").await?;
    c.check_watches("/x", WatcherType::Data).await?;
    c.check_watches("/x", WatcherType::Children).await?;
    c.remove_watches("/x", WatcherType::Data).await?;
    assert_eq!(within(5, w).await?.event_type, EventType::DataWatchRemoved);
    assert_eq!(c.check_watches("/x", WatcherType::Data).await, Err(Error::NoWatcher));
    c.check_watches("/x", WatcherType::Any).await?;
    let mut pw = c.add_watch("/x", AddWatchMode::Persistent).await?;
    c.remove_watches("/x", WatcherType::Any).await?;
    assert_eq!(within(5, cw).await?.event_type, EventType::ChildWatchRemoved);
    assert_eq!(within(5, pw.next()).await.expect("event")?.event_type, EventType::PersistentWatchRemoved);
    assert!(pw.next().await.is_none(), "the stream ends after its removal");
    assert_eq!(c.check_watches("/x", WatcherType::Any).await, Err(Error::NoWatcher));
    Ok(())
}

/// Dropping the last local watcher of a server watch removes the server watch too.
async fn dropping_a_watcher_removes_the_server_watch(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/y", b"", CreateMode::Persistent).await?;
    let (_, _, w1) = c.get_data_and_watch("/y").await?;
    let (_, w2) = c.exists_and_watch("/y").await?;
    drop(w1);
    c.check_watches("/y", WatcherType::Data).await?; // w2 still needs it
    drop(w2);
    assert_eq!(c.check_watches("/y", WatcherType::Data).await, Err(Error::NoWatcher));
    let pw = c.add_watch("/y", AddWatchMode::PersistentRecursive).await?;
    c.check_watches("/y", WatcherType::Any).await?;
    drop(pw);
    assert_eq!(c.check_watches("/y", WatcherType::Any).await, Err(Error::NoWatcher));
    // ZooKeeper 3.8 knows only the Children, Data and Any watcher types.
    assert_eq!(c.check_watches("/y", WatcherType::PersistentRecursive).await, Err(Error::MarshallingError));
    Ok(())
}

/// The events of a multi's ops arrive in op order, before the multi's reply.
async fn multi_fires_events_in_op_order(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/m", b"", CreateMode::Persistent).await?;
    c.create("/m/old", b"", CreateMode::Persistent).await?;
    let mut w = c.add_watch("/m", AddWatchMode::PersistentRecursive).await?;
    c.transaction()
        .create("/m/new", b"".to_vec(), CreateMode::Persistent)
        .set_data("/m", b"x".to_vec(), None)
        .delete("/m/old", None)
        .commit()
        .await?;
    let mut seen = Vec::new();
    while let Some(Some(ev)) = w.next().now_or_never() {
        seen.push(kind(&ev?).0);
    }
    assert_eq!(seen, [EventType::NodeCreated, EventType::NodeDataChanged, EventType::NodeDeleted]);
    Ok(())
}

/// A one-shot watch set on a path that already has a persistent watch fires once, and the
/// persistent watch keeps reporting afterwards. (ZooKeeper 3.8 keeps one watch mode per
/// connection and path: the client must not let the one-shot request replace the persistent
/// watch on the server.)
async fn one_shot_and_persistent_watches_share_a_path(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/s", b"", CreateMode::Persistent).await?;
    let mut pw = c.add_watch("/s", AddWatchMode::Persistent).await?;
    let (_, _, once) = c.get_data_and_watch("/s").await?;
    let (_, kids) = c.get_children_and_watch("/s").await?;
    c.set_data("/s", b"1", None).await?;
    assert_eq!(within(5, once).await?.event_type, EventType::NodeDataChanged);
    c.create("/s/k", b"", CreateMode::Persistent).await?;
    assert_eq!(within(5, kids).await?.event_type, EventType::NodeChildrenChanged);
    c.set_data("/s", b"2", None).await?;
    let seen: Vec<EventType> = vec![
        within(5, pw.next()).await.expect("open")?.event_type,
        within(5, pw.next()).await.expect("open")?.event_type,
        within(5, pw.next()).await.expect("open")?.event_type,
    ];
    assert_eq!(seen, [EventType::NodeDataChanged, EventType::NodeChildrenChanged, EventType::NodeDataChanged]);
    Ok(())
}
