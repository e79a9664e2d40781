//! The client's watch registry: which local watchers wait on which server path, how a server
//! notification is dispatched to them (ZooKeeper's client-side rules, section 8.4 of the protocol
//! reference), which watches to re-register with `SetWatches` after a reconnect, and when the
//! last local watcher of a server watch is gone so the server watch can be removed.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use super::event::WatchedEvent;
use crate::error::Error;
use crate::path::Chroot;
use crate::proto::{EventType, SetWatches, WatcherType};

/// Identifies one local watcher (so dropping it can unregister exactly it).
pub(crate) type WatcherId = u64;

/// What a local watcher waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WatchKind {
    /// One-shot data watch (getData, or exists on an existing node).
    Data,
    /// One-shot exists watch on a node that did not exist.
    Exist,
    /// One-shot child watch (getChildren).
    Child,
    /// Persistent watch on one node (addWatch mode 0).
    Persistent,
    /// Persistent watch on a subtree (addWatch mode 1).
    PersistentRecursive,
}

impl WatchKind {
    /// Which server watch the local watcher relies on: data and exists watchers share the
    /// server's one-shot data watch, child watchers its one-shot child watch; persistent watches
    /// of either mode sit in both server tables (ZooKeeper 3.8 registers even recursive ones in
    /// both).
    fn group(self) -> usize {
        match self {
            WatchKind::Data | WatchKind::Exist => DATA,
            WatchKind::Child => CHILD,
            WatchKind::Persistent => PERSISTENT,
            WatchKind::PersistentRecursive => RECURSIVE,
        }
    }
}

const DATA: usize = 0;
const CHILD: usize = 1;
const PERSISTENT: usize = 2;
const RECURSIVE: usize = 3;

/// Where a watcher's events go.
#[derive(Debug)]
pub(crate) enum WatchSink {
    /// A one-shot watcher: one event or one error.
    Oneshot(oneshot::Sender<Result<WatchedEvent, Error>>),
    /// A persistent watcher: events until removed, then possibly one error.
    Stream(mpsc::UnboundedSender<Result<WatchedEvent, Error>>),
}

impl WatchSink {
    /// Delivers `item`; returns false if the watcher is gone.
    fn send(self, item: Result<WatchedEvent, Error>) -> Option<WatchSink> {
        match self {
            WatchSink::Oneshot(tx) => {
                let _ = tx.send(item);
                None
            }
            WatchSink::Stream(tx) => tx.send(item).ok().map(|_| WatchSink::Stream(tx)),
        }
    }

    fn send_ref(&self, item: Result<WatchedEvent, Error>) -> bool {
        match self {
            WatchSink::Oneshot(_) => false,
            WatchSink::Stream(tx) => tx.send(item).is_ok(),
        }
    }
}

/// A registration to perform when a request succeeds.
#[derive(Debug)]
pub(crate) struct WatchRegistration {
    pub(crate) id: WatcherId,
    pub(crate) kind: WatchKind,
    /// Server path.
    pub(crate) path: String,
    pub(crate) sink: WatchSink,
}

#[derive(Debug, Default)]
struct PathWatches {
    data: Vec<(WatcherId, WatchSink)>,
    exist: Vec<(WatcherId, WatchSink)>,
    child: Vec<(WatcherId, WatchSink)>,
    persistent: Vec<(WatcherId, WatchSink)>,
    recursive: Vec<(WatcherId, WatchSink)>,
    /// Registrations sent (or queued) whose replies have not arrived, per [`WatchKind::group`].
    outstanding: [u32; 4],
}

impl PathWatches {
    fn list(&mut self, kind: WatchKind) -> &mut Vec<(WatcherId, WatchSink)> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }

    /// Whether a local watcher or a pending registration relies on server watch group `g`.
    fn needs(&self, g: usize) -> bool {
        let local = match g {
            DATA => !self.data.is_empty() || !self.exist.is_empty(),
            CHILD => !self.child.is_empty(),
            PERSISTENT => !self.persistent.is_empty(),
            _ => !self.recursive.is_empty(),
        };
        local || self.outstanding[g] > 0
    }

    fn needs_persistent(&self) -> bool {
        self.needs(PERSISTENT) || self.needs(RECURSIVE)
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
            && self.outstanding == [0; 4]
    }
}

/// Selects one path list of a `SetWatches` record.
type SetWatchesField = fn(&mut SetWatches) -> &mut Vec<String>;

/// The registry. Paths are server paths (chroot included); events are delivered with the chroot
/// removed.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    paths: HashMap<String, PathWatches>,
    by_id: HashMap<WatcherId, (WatchKind, String)>,
    recursive_count: usize,
}

impl Registry {
    /// Notes that a request that will register a `kind` watch on `path` is on its way, so that the
    /// server watch is not removed under it.
    pub(crate) fn expect(&mut self, kind: WatchKind, path: &str) {
        self.paths.entry(path.to_string()).or_default().outstanding[kind.group()] += 1;
    }

    /// Whether a persistent watch on `path` (registered or on its way) already delivers every
    /// event a one-shot watch of `kind` waits for. The one-shot watch is then kept locally only:
    /// ZooKeeper 3.8 holds one watch mode per connection and path, so asking the server for a
    /// one-shot watch would turn the persistent watch into a one-shot one. A persistent watch
    /// delivers data and existence events in both modes, child events only in mode `Persistent`.
    pub(crate) fn covered(&self, kind: WatchKind, path: &str) -> bool {
        let Some(pw) = self.paths.get(path) else { return false };
        match kind {
            WatchKind::Data | WatchKind::Exist => pw.needs_persistent(),
            WatchKind::Child => pw.needs(PERSISTENT),
            WatchKind::Persistent | WatchKind::PersistentRecursive => false,
        }
    }

    /// The request announced with [`Registry::expect`] completed; `reg` is registered if the
    /// request succeeded (with `kind` possibly switched from data to exists by the caller).
    pub(crate) fn settle(&mut self, announced: WatchKind, path: &str, reg: Option<WatchRegistration>) {
        if let Some(pw) = self.paths.get_mut(path) {
            let n = &mut pw.outstanding[announced.group()];
            *n = n.saturating_sub(1);
        }
        if let Some(reg) = reg {
            if reg.kind == WatchKind::PersistentRecursive {
                self.recursive_count += 1;
            }
            self.by_id.insert(reg.id, (reg.kind, reg.path.clone()));
            self.paths.entry(reg.path).or_default().list(reg.kind).push((reg.id, reg.sink));
        } else {
            self.prune(path);
        }
    }

    fn prune(&mut self, path: &str) {
        if self.paths.get(path).is_some_and(PathWatches::is_empty) {
            self.paths.remove(path);
        }
    }

    /// Drops watcher `id`. Returns the server watches to remove when nothing relies on them any
    /// more: all of them (`Any`) once the path has no watcher left, or just the one-shot data or
    /// child watch when no persistent watch shares the path. ZooKeeper 3.8 removes watches by
    /// table, not by mode (and refuses the `Persistent*` types), so a persistent watch dropped
    /// while a one-shot watch on the same path lives stays on the server until that one goes;
    /// its events are ignored meanwhile.
    pub(crate) fn unwatch(&mut self, id: WatcherId) -> Option<(String, WatcherType)> {
        let (kind, path) = self.by_id.remove(&id)?;
        let pw = self.paths.get_mut(&path)?;
        pw.list(kind).retain(|(i, _)| *i != id);
        if kind == WatchKind::PersistentRecursive {
            self.recursive_count -= 1;
        }
        let group = kind.group();
        let remove = if pw.is_empty() {
            Some(WatcherType::Any)
        } else if group >= PERSISTENT || pw.needs(group) || pw.needs_persistent() {
            None
        } else if group == DATA {
            Some(WatcherType::Data)
        } else {
            Some(WatcherType::Children)
        };
        self.prune(&path);
        remove.map(|t| (path, t))
    }

    /// Dispatches a server notification to every local watcher it concerns.
    pub(crate) fn dispatch(&mut self, event_type: EventType, server_path: &str, zxid: i64, chroot: &Chroot) {
        let Some(client_path) = chroot.to_client(server_path) else {
            tracing::debug!(path = server_path, "notification outside the chroot ignored");
            return;
        };
        let event = WatchedEvent { event_type, path: client_path.into_owned(), zxid };
        let mut fired = Vec::new();
        if let Some(pw) = self.paths.get_mut(server_path) {
            let oneshot_kinds: &[WatchKind] = match event_type {
                EventType::NodeCreated | EventType::NodeDataChanged => &[WatchKind::Data, WatchKind::Exist],
                EventType::NodeChildrenChanged => &[WatchKind::Child],
                EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
                _ => &[],
            };
            for kind in oneshot_kinds {
                for (id, sink) in pw.list(*kind).drain(..) {
                    fired.push(id);
                    sink.send(Ok(event.clone()));
                }
            }
            pw.persistent.retain(|(_, sink)| sink.send_ref(Ok(event.clone())));
            if event_type != EventType::NodeChildrenChanged {
                pw.recursive.retain(|(_, sink)| sink.send_ref(Ok(event.clone())));
            }
        }
        if self.recursive_count > 0 && event_type != EventType::NodeChildrenChanged {
            let mut p = server_path;
            while let Some(parent) = crate::path::parent(p) {
                if let Some(pw) = self.paths.get_mut(parent) {
                    pw.recursive.retain(|(_, sink)| sink.send_ref(Ok(event.clone())));
                }
                p = parent;
            }
        }
        for id in fired {
            self.by_id.remove(&id);
        }
        self.prune(server_path);
    }

    /// Ends the local watchers of `server_type` on `path` after a successful `removeWatches`,
    /// giving each a `*WatchRemoved` event.
    pub(crate) fn remove_local(&mut self, path: &str, server_type: WatcherType, client_path: String) {
        let Some(pw) = self.paths.get_mut(path) else { return };
        let kinds: &[WatchKind] = match server_type {
            WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            WatcherType::Any => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
        };
        let mut removed = Vec::new();
        for kind in kinds {
            let event_type = match kind {
                WatchKind::Data | WatchKind::Exist => EventType::DataWatchRemoved,
                WatchKind::Child => EventType::ChildWatchRemoved,
                WatchKind::Persistent | WatchKind::PersistentRecursive => EventType::PersistentWatchRemoved,
            };
            for (id, sink) in pw.list(*kind).drain(..) {
                removed.push((id, *kind));
                sink.send(Ok(WatchedEvent { event_type, path: client_path.clone(), zxid: -1 }));
            }
        }
        for (id, kind) in removed {
            self.by_id.remove(&id);
            if kind == WatchKind::PersistentRecursive {
                self.recursive_count -= 1;
            }
        }
        self.prune(path);
    }

    /// The watches to re-register after reconnecting, split into `SetWatches` records of at most
    /// about `batch_bytes` of path text each (the Java client uses 128 KiB).
    pub(crate) fn set_watches(&self, relative_zxid: i64, batch_bytes: usize) -> Vec<SetWatches> {
        let mut out = Vec::new();
        let mut cur = SetWatches { relative_zxid, ..SetWatches::default() };
        let mut size = 0;
        let mut paths: Vec<_> = self.paths.iter().collect();
        paths.sort_by(|a, b| a.0.cmp(b.0));
        for (path, pw) in paths {
            let lists: [(&Vec<(WatcherId, WatchSink)>, SetWatchesField); 5] = [
                (&pw.data, |s| &mut s.data_watches),
                (&pw.exist, |s| &mut s.exist_watches),
                (&pw.child, |s| &mut s.child_watches),
                (&pw.persistent, |s| &mut s.persistent_watches),
                (&pw.recursive, |s| &mut s.persistent_recursive_watches),
            ];
            for (list, field) in lists {
                if list.is_empty() {
                    continue;
                }
                if size > 0 && size + path.len() > batch_bytes {
                    out.push(std::mem::replace(&mut cur, SetWatches { relative_zxid, ..SetWatches::default() }));
                    size = 0;
                }
                field(&mut cur).push(path.clone());
                size += path.len();
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// Ends every watcher with `err` (the session is over).
    pub(crate) fn terminate(&mut self, err: &Error) {
        for (_, pw) in self.paths.drain() {
            for list in [pw.data, pw.exist, pw.child, pw.persistent, pw.recursive] {
                for (_, sink) in list {
                    sink.send(Err(err.clone()));
                }
            }
        }
        self.by_id.clear();
        self.recursive_count = 0;
    }

    /// Whether any watcher is registered (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oneshot_reg(
        reg: &mut Registry,
        id: WatcherId,
        kind: WatchKind,
        path: &str,
    ) -> oneshot::Receiver<Result<WatchedEvent, Error>> {
        let (tx, rx) = oneshot::channel();
        reg.expect(kind, path);
        reg.settle(kind, path, Some(WatchRegistration { id, kind, path: path.into(), sink: WatchSink::Oneshot(tx) }));
        rx
    }

    fn stream_reg(
        reg: &mut Registry,
        id: WatcherId,
        kind: WatchKind,
        path: &str,
    ) -> mpsc::UnboundedReceiver<Result<WatchedEvent, Error>> {
        let (tx, rx) = mpsc::unbounded_channel();
        reg.expect(kind, path);
        reg.settle(kind, path, Some(WatchRegistration { id, kind, path: path.into(), sink: WatchSink::Stream(tx) }));
        rx
    }

    #[test]
    fn dispatch_follows_zookeeper_client_rules() {
        let mut reg = Registry::default();
        let none = Chroot::none();
        let mut data = oneshot_reg(&mut reg, 1, WatchKind::Data, "/a");
        let mut child = oneshot_reg(&mut reg, 2, WatchKind::Child, "/a");
        let mut rec = stream_reg(&mut reg, 3, WatchKind::PersistentRecursive, "/");
        let mut pers = stream_reg(&mut reg, 4, WatchKind::Persistent, "/a");

        reg.dispatch(EventType::NodeChildrenChanged, "/a", 5, &none);
        assert_eq!(child.try_recv().unwrap().unwrap().event_type, EventType::NodeChildrenChanged);
        assert!(data.try_recv().is_err(), "data watch does not see child events");
        assert!(rec.try_recv().is_err(), "recursive watches never see NodeChildrenChanged");
        assert_eq!(pers.try_recv().unwrap().unwrap().event_type, EventType::NodeChildrenChanged);

        reg.dispatch(EventType::NodeDataChanged, "/a", 6, &none);
        let ev = data.try_recv().unwrap().unwrap();
        assert_eq!((ev.event_type, ev.path.as_str(), ev.zxid), (EventType::NodeDataChanged, "/a", 6));
        assert_eq!(rec.try_recv().unwrap().unwrap().path, "/a");
        assert_eq!(pers.try_recv().unwrap().unwrap().event_type, EventType::NodeDataChanged);

        reg.dispatch(EventType::NodeCreated, "/a/b/c", 7, &none);
        assert_eq!(rec.try_recv().unwrap().unwrap().path, "/a/b/c", "recursive sees descendants");
        assert!(pers.try_recv().is_err(), "persistent sees only its own node");
    }

    #[test]
    fn unwatch_removes_server_watch_only_when_unused() {
        let mut reg = Registry::default();
        let _a = oneshot_reg(&mut reg, 1, WatchKind::Data, "/a");
        let _b = oneshot_reg(&mut reg, 2, WatchKind::Exist, "/a");
        assert_eq!(reg.unwatch(1), None, "the exists watcher still needs the server data watch");
        // A registration on its way also keeps it.
        reg.expect(WatchKind::Data, "/a");
        assert_eq!(reg.unwatch(2), None);
        reg.settle(WatchKind::Data, "/a", None);
        assert!(reg.is_empty());
        let _c = oneshot_reg(&mut reg, 3, WatchKind::Child, "/a");
        assert_eq!(reg.unwatch(3), Some(("/a".into(), WatcherType::Any)), "nothing left on the path");
        assert_eq!(reg.unwatch(3), None, "twice is harmless");
        assert!(reg.is_empty());
        // Only the one-shot child watch goes while a data watcher remains.
        let _d = oneshot_reg(&mut reg, 4, WatchKind::Data, "/b");
        let _e = oneshot_reg(&mut reg, 5, WatchKind::Child, "/b");
        assert_eq!(reg.unwatch(5), Some(("/b".into(), WatcherType::Children)));
        // A persistent watch on the path keeps one-shot removals from touching its tables.
        let _f = stream_reg(&mut reg, 6, WatchKind::Persistent, "/b");
        let _g = oneshot_reg(&mut reg, 7, WatchKind::Data, "/b");
        assert_eq!(reg.unwatch(4), None);
        assert_eq!(reg.unwatch(6), None, "a persistent watch cannot be removed alone on 3.8");
        assert!(!reg.covered(WatchKind::Data, "/b"));
        assert_eq!(reg.unwatch(7), Some(("/b".into(), WatcherType::Any)));
        assert!(reg.is_empty());
    }

    #[test]
    fn persistent_watches_cover_one_shot_ones() {
        let mut reg = Registry::default();
        assert!(!reg.covered(WatchKind::Data, "/a"));
        reg.expect(WatchKind::PersistentRecursive, "/a");
        assert!(reg.covered(WatchKind::Data, "/a"), "a registration on its way counts");
        assert!(reg.covered(WatchKind::Exist, "/a"));
        assert!(!reg.covered(WatchKind::Child, "/a"), "recursive watches get no child events");
        let _p = stream_reg(&mut reg, 1, WatchKind::Persistent, "/a");
        assert!(reg.covered(WatchKind::Child, "/a"));
        assert!(!reg.covered(WatchKind::Child, "/a/b"), "only the same path");
    }

    #[test]
    fn set_watches_lists_every_kind_and_batches() {
        let mut reg = Registry::default();
        let _a = oneshot_reg(&mut reg, 1, WatchKind::Data, "/a");
        let _b = oneshot_reg(&mut reg, 2, WatchKind::Exist, "/b");
        let _c = oneshot_reg(&mut reg, 3, WatchKind::Child, "/c");
        let _d = stream_reg(&mut reg, 4, WatchKind::Persistent, "/d");
        let _e = stream_reg(&mut reg, 5, WatchKind::PersistentRecursive, "/e");
        let all = reg.set_watches(42, 1 << 17);
        assert_eq!(all.len(), 1);
        let sw = &all[0];
        assert_eq!(sw.relative_zxid, 42);
        assert_eq!(
            (&sw.data_watches[..], &sw.exist_watches[..], &sw.child_watches[..]),
            (&["/a".to_string()][..], &["/b".to_string()][..], &["/c".to_string()][..])
        );
        assert_eq!(sw.persistent_watches, vec!["/d"]);
        assert_eq!(sw.persistent_recursive_watches, vec!["/e"]);
        assert_eq!(reg.set_watches(42, 2).len(), 5, "tiny batches: one path each");
    }

    #[test]
    fn terminate_ends_everyone_and_chroot_is_stripped() {
        let mut reg = Registry::default();
        let chroot = Chroot::new("/app").unwrap();
        let mut a = oneshot_reg(&mut reg, 1, WatchKind::Data, "/app/x");
        reg.dispatch(EventType::NodeDeleted, "/app/x", 3, &chroot);
        assert_eq!(a.try_recv().unwrap().unwrap().path, "/x");
        let mut b = stream_reg(&mut reg, 2, WatchKind::Persistent, "/app");
        reg.terminate(&Error::SessionExpired);
        assert_eq!(b.try_recv().unwrap(), Err(Error::SessionExpired));
        assert!(b.try_recv().is_err());
        assert!(reg.is_empty());
    }
}
