//! The cache family (`conclave::cache`): behaviour on both backends (`tree`: loading, live
//! changes, resyncs after reconnections and expiries, depth and filter; `kinds`: node and
//! children caches, one-shot watches), the stress run (`stress`), agreement with Curator's
//! `CuratorCache` (`interop`), and the checker every cache test runs its event streams through.

mod interop;
mod kinds;
mod stress;
mod tree;

use std::collections::BTreeMap;

use conclave::cache::{CacheEvent, CacheEvents, CachedNode, TreeCache};
use conclave::{Client, ConnectionState, Result, ZkError};
use futures::StreamExt;

use crate::support::within;

/// The next event of a stream (which must not end or fail within 20 s).
pub async fn next(events: &mut CacheEvents) -> CacheEvent {
    within(20, events.next()).await.expect("the stream goes on").expect("the cache goes on")
}

/// The events up to and including the first one `last` accepts.
pub async fn until(events: &mut CacheEvents, last: impl Fn(&CacheEvent) -> bool) -> Vec<CacheEvent> {
    let mut got = Vec::new();
    loop {
        let e = next(events).await;
        let done = last(&e);
        got.push(e);
        if done {
            return got;
        }
    }
}

/// Whether `e` is `Initialized`.
pub fn is_init(e: &CacheEvent) -> bool {
    matches!(e, CacheEvent::Initialized)
}

/// Cuts `client`'s connection at `proxy` and keeps it out until `f` has run (changes made while
/// the client is away), then lets it back and waits until it reconnected to its session.
pub async fn while_away<F: std::future::Future<Output = Result<()>>>(
    proxy: &conclave_core::testing::Proxy,
    client: &Client,
    f: F,
) -> Result<()> {
    let mut states = client.connection_states();
    assert_eq!(states.next().await, Some(ConnectionState::Connected));
    proxy.refuse(true);
    proxy.cut();
    assert_eq!(within(30, states.next()).await, Some(ConnectionState::Suspended));
    f.await?;
    proxy.refuse(false);
    assert_eq!(within(30, states.next()).await, Some(ConnectionState::Reconnected));
    Ok(())
}

/// An event in a few characters: `+/a@0` (added, version 0), `~/a@1`, `-/a@1`, `init`,
/// `resynced` / `resynced(missed)`.
pub fn short(e: &CacheEvent) -> String {
    match e {
        CacheEvent::Added { path, node } => format!("+{path}@{}", node.stat.version),
        CacheEvent::Updated { path, node } => format!("~{path}@{}", node.stat.version),
        CacheEvent::Removed { path, node } => format!("-{path}@{}", node.stat.version),
        CacheEvent::Initialized => "init".into(),
        CacheEvent::Resynced { possibly_missed: false } => "resynced".into(),
        CacheEvent::Resynced { possibly_missed: true } => "resynced(missed)".into(),
        other => format!("{other:?}"),
    }
}

pub fn shorts(events: &[CacheEvent]) -> Vec<String> {
    events.iter().map(short).collect()
}

/// The subtree at `root` as the server has it (data and stat per node), read node by node.
pub async fn server_tree(client: &Client, root: &str) -> Result<BTreeMap<String, CachedNode>> {
    let mut tree = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = match client.get_data(&path).await {
            Ok(read) => read,
            Err(ZkError::NoNode) => continue,
            Err(e) => return Err(e.into()),
        };
        let children = match client.get_children(&path).await {
            Ok(children) => children,
            Err(ZkError::NoNode) => continue,
            Err(e) => return Err(e.into()),
        };
        for child in children {
            todo.push(if path == "/" { format!("/{child}") } else { format!("{path}/{child}") });
        }
        tree.insert(path, CachedNode { data, stat });
    }
    Ok(tree)
}

/// Compares a cache with the server after `sync`: the same nodes, each with the same data,
/// version and creation. Returns the number of nodes.
pub async fn assert_mirrors(cache: &TreeCache, client: &Client) -> Result<usize> {
    within(30, cache.sync()).await?;
    let server = server_tree(client, cache.path()).await?;
    let cached = cache.snapshot();
    let key = |m: &BTreeMap<String, CachedNode>| {
        m.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.stat.version, n.stat.czxid)).collect::<Vec<_>>()
    };
    assert_eq!(key(&cached), key(&server), "the cache holds what the server holds");
    Ok(server.len())
}

/// Follows a cache's event stream and checks that it is consistent: a node is added only when
/// absent, updated or removed only when present and as the same node (same `czxid`), and an
/// update always carries a later state (a higher `mzxid`); `Initialized` comes once, first of
/// the markers. Its model of the cache is what the events say.
#[derive(Debug, Default)]
pub struct Checker {
    pub model: BTreeMap<String, CachedNode>,
    pub initialized: bool,
    pub resyncs: usize,
    pub missed: usize,
    pub events: usize,
}

impl Checker {
    /// Takes one event; `Err` says what is wrong with it.
    pub fn apply(&mut self, e: &CacheEvent) -> std::result::Result<(), String> {
        self.events += 1;
        match e {
            CacheEvent::Added { path, node } => {
                if let Some(old) = self.model.insert(path.clone(), node.clone()) {
                    return Err(format!("{path} added while present (as {:?})", old.stat));
                }
            }
            CacheEvent::Updated { path, node } => {
                let Some(old) = self.model.get_mut(path) else { return Err(format!("{path} updated while absent")) };
                if old.stat.czxid != node.stat.czxid {
                    return Err(format!(
                        "{path} updated across a re-creation ({} -> {})",
                        old.stat.czxid, node.stat.czxid
                    ));
                }
                if node.stat.mzxid <= old.stat.mzxid || node.stat.version <= old.stat.version {
                    return Err(format!(
                        "{path} went from version {} (mzxid {}) to version {} (mzxid {})",
                        old.stat.version, old.stat.mzxid, node.stat.version, node.stat.mzxid
                    ));
                }
                *old = node.clone();
            }
            CacheEvent::Removed { path, node } => match self.model.remove(path) {
                None => return Err(format!("{path} removed while absent")),
                Some(old) if old.stat.czxid != node.stat.czxid => {
                    return Err(format!("{path} removed as another node ({} vs {})", node.stat.czxid, old.stat.czxid))
                }
                Some(_) => {}
            },
            CacheEvent::Initialized => {
                if std::mem::replace(&mut self.initialized, true) {
                    return Err("initialized twice".into());
                }
            }
            CacheEvent::Resynced { possibly_missed } => {
                if !self.initialized {
                    return Err("resynced before initialized".into());
                }
                self.resyncs += 1;
                self.missed += usize::from(*possibly_missed);
            }
            _ => return Err(format!("unknown event {e:?}")),
        }
        Ok(())
    }

    /// The model as data, version and creation per path (to compare with a snapshot).
    pub fn state(&self) -> Vec<(String, bytes::Bytes, i32, i64)> {
        self.model.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.stat.version, n.stat.czxid)).collect()
    }
}

/// A snapshot as data, version and creation per path.
pub fn state_of(snapshot: &BTreeMap<String, CachedNode>) -> Vec<(String, bytes::Bytes, i32, i64)> {
    snapshot.iter().map(|(p, n)| (p.clone(), n.data.clone(), n.stat.version, n.stat.czxid)).collect()
}
