//! The in-memory copy a cache keeps, and the one rule by which a read changes it.
//!
//! The mirror is a tree of entries shaped like the cached subtree: each entry holds its own
//! name (not its path), its data (copied out of the reply, so a cached node never pins a read
//! buffer) and `Stat`, and its children sorted by name. That keeps a cached node at about 140
//! bytes plus its name and data, and gives ordered snapshots and per-node children for free.
//!
//! Every change comes from a read, applied in the order the server answered
//! ([`Mirror::apply_data`], [`Mirror::apply_missing`], [`Mirror::apply_listing`]); watch events
//! are only reasons to read. A node is identified by its path *and* its `czxid`, so a node
//! deleted and re-created between two reads shows as removed and added again, even when its
//! version and data are the same as before (CURATOR-391); a read older than what is cached
//! (lower `mzxid`, or an earlier incarnation) changes nothing, so a node's versions only grow.

use std::collections::BTreeMap;

use bytes::Bytes;
use conclave_core::Stat;

use super::{CacheEvent, CachedNode};

/// One cached node.
#[derive(Debug)]
pub(super) struct Entry {
    name: Box<str>,
    stat: Stat,
    data: Box<[u8]>,
    /// Sorted by name.
    children: Vec<Entry>,
    /// Children this cache saw added or removed since the node's own last read: what the
    /// growth of its `cversion` is explained by.
    child_changes: u32,
}

impl Entry {
    fn new(name: &str, data: &[u8], stat: Stat) -> Entry {
        Entry { name: name.into(), stat, data: data.into(), children: Vec::new(), child_changes: 0 }
    }

    /// The node as the cache's users see it (the data copied).
    pub(super) fn node(&self) -> CachedNode {
        CachedNode { data: Bytes::copy_from_slice(&self.data), stat: self.stat }
    }

    fn child(&self, name: &str) -> Result<usize, usize> {
        self.children.binary_search_by(|c| (*c.name).cmp(name))
    }

    /// The names of the children, in order.
    pub(super) fn child_names(&self) -> impl Iterator<Item = &str> {
        self.children.iter().map(|c| &*c.name)
    }

    /// The children by name, in order.
    pub(super) fn children(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.children.iter().map(|c| (&*c.name, c))
    }
}

/// What a read of a node's data did to the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    /// The node is cached as the read found it (added, updated, or the same as before).
    Current {
        /// Whether the node is new to the cache (added or created again).
        added: bool,
        /// Its number of children, from the read's stat.
        num_children: i32,
        /// How much its `cversion` grew beyond the child changes this cache saw since its
        /// previous read: children created or deleted unseen (0 for a node new to the cache).
        unseen_child_changes: i32,
    },
    /// The read was older than what is cached: nothing changed.
    Stale,
    /// The node's parent is not cached (a later read will bring both): nothing changed.
    Orphan,
}

/// What a listing found, against the cached children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    /// For each name listed, whether it is new to the cache.
    pub(super) new: Vec<bool>,
    /// How many cached children it removed (not listed any more).
    pub(super) removed: usize,
}

impl Listed {
    /// Children added plus children removed: the child changes the listing shows.
    pub(super) fn changes(&self) -> usize {
        self.new.iter().filter(|n| **n).count() + self.removed
    }
}

/// Where the events of an apply go, and what it noticed.
#[derive(Debug, Default)]
pub(super) struct Out {
    /// Whether events are wanted at all (someone subscribed); they are built only then.
    pub(super) record: bool,
    pub(super) events: Vec<CacheEvent>,
    /// The changes applied show that states were skipped: a version that grew by more than
    /// one, a removal (the node's last states are unknown), a re-creation, a node first seen
    /// with a version above 0 or with children that came and went.
    pub(super) skipped: bool,
    /// Nodes added or removed by this apply.
    pub(super) changed: usize,
}

impl Out {
    fn emit(&mut self, event: impl FnOnce() -> CacheEvent) {
        if self.record {
            self.events.push(event());
        }
    }
}

/// The cached subtree under one root path.
#[derive(Debug)]
pub(super) struct Mirror {
    root_path: String,
    root: Option<Entry>,
    len: usize,
}

/// The names of `path` below `root` (none for the root itself); `None` outside the subtree.
pub(super) fn relative<'p>(root: &str, path: &'p str) -> Option<impl Iterator<Item = &'p str> + Clone> {
    let rest = if root == "/" {
        path.strip_prefix('/')?
    } else {
        match path.strip_prefix(root)? {
            "" => "",
            rest => rest.strip_prefix('/').filter(|r| !r.is_empty())?,
        }
    };
    if rest.ends_with('/') || rest.contains("//") {
        return None;
    }
    Some(rest.split('/').filter(|s| !s.is_empty()))
}

/// The path of `name` under `parent`.
pub(super) fn child_path(parent: &str, name: &str) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    if !parent.ends_with('/') {
        path.push('/');
    }
    path.push_str(name);
    path
}

impl Mirror {
    /// An empty mirror of the subtree at `root_path` (a valid path).
    pub(super) fn new(root_path: &str) -> Mirror {
        Mirror { root_path: root_path.to_string(), root: None, len: 0 }
    }

    /// The root's path.
    pub(super) fn root(&self) -> &str {
        &self.root_path
    }

    /// The number of cached nodes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn relative<'p>(&self, path: &'p str) -> Option<impl Iterator<Item = &'p str> + Clone> {
        relative(&self.root_path, path)
    }

    /// The cached node at `path`.
    pub(super) fn get(&self, path: &str) -> Option<&Entry> {
        let mut entry = self.root.as_ref()?;
        for name in self.relative(path)? {
            entry = &entry.children[entry.child(name).ok()?];
        }
        Some(entry)
    }

    fn get_mut(&mut self, path: &str) -> Option<&mut Entry> {
        let names = self.relative(path)?;
        let mut entry = self.root.as_mut()?;
        for name in names {
            let i = entry.child(name).ok()?;
            entry = &mut entry.children[i];
        }
        Some(entry)
    }

    /// Applies a read that found `path` with `data` and `stat`.
    pub(super) fn apply_data(&mut self, path: &str, data: &[u8], stat: Stat, out: &mut Out) -> Applied {
        let Some(names) = self.relative(path) else { return Applied::Stale };
        let last = names.clone().last();
        let Some(name) = last else {
            // The root.
            let (applied, len) = match self.root.as_mut() {
                None => {
                    let entry = self.root.insert(Entry::new("", data, stat));
                    (added(entry, path, out), 1)
                }
                Some(entry) => merge(entry, path, data, stat, out),
            };
            self.len = self.len.wrapping_add_signed(len);
            return applied;
        };
        let parent_path = &path[..path.len() - name.len() - 1];
        let parent_path = if parent_path.is_empty() { "/" } else { parent_path };
        let Some(parent) = self.get_mut(parent_path) else { return Applied::Orphan };
        if parent.stat.czxid > stat.czxid {
            // A node of an earlier incarnation of the parent.
            return Applied::Stale;
        }
        let (applied, len) = match parent.child(name) {
            Err(at) => {
                parent.children.insert(at, Entry::new(name, data, stat));
                parent.child_changes += 1;
                (added(&parent.children[at], path, out), 1)
            }
            Ok(at) => merge(&mut parent.children[at], path, data, stat, out),
        };
        self.len = self.len.wrapping_add_signed(len);
        applied
    }

    /// Applies a read that found no node at `path`: it and its subtree are removed.
    pub(super) fn apply_missing(&mut self, path: &str, out: &mut Out) {
        let Some(names) = self.relative(path) else { return };
        let removed = match names.clone().last() {
            None => self.root.take().map(|root| remove(root, path, out)),
            Some(name) => {
                let parent_path = &path[..path.len() - name.len() - 1];
                let parent_path = if parent_path.is_empty() { "/" } else { parent_path };
                self.get_mut(parent_path).and_then(|parent| {
                    let at = parent.child(name).ok()?;
                    parent.child_changes += 1;
                    Some(remove(parent.children.remove(at), path, out))
                })
            }
        };
        self.len -= removed.unwrap_or(0);
    }

    /// Applies a listing of `path`'s children (`names`, sorted by the caller): cached children
    /// not listed are removed. `None` if `path` is not cached.
    pub(super) fn apply_listing(&mut self, path: &str, names: &[String], out: &mut Out) -> Option<Listed> {
        let parent = self.get_mut(path)?;
        // Room for exactly the children listed: the new ones are read next.
        let mut kept = Vec::with_capacity(names.len());
        let mut gone = Vec::new();
        for child in std::mem::take(&mut parent.children) {
            if names.binary_search_by(|n| n.as_str().cmp(&child.name)).is_ok() {
                kept.push(child);
            } else {
                gone.push(child);
            }
        }
        let new = names.iter().map(|n| kept.binary_search_by(|c| (*c.name).cmp(n)).is_err()).collect();
        parent.children = kept;
        parent.child_changes += gone.len() as u32;
        let removed = gone.len();
        let mut count = 0;
        for child in gone {
            let child_path = child_path(path, &child.name);
            count += remove(child, &child_path, out);
        }
        self.len -= count;
        Some(Listed { new, removed })
    }

    /// Removes every cached child of `path` (a read found it has none); returns how many.
    pub(super) fn remove_children(&mut self, path: &str, out: &mut Out) -> usize {
        let Some(parent) = self.get_mut(path) else { return 0 };
        let gone = std::mem::take(&mut parent.children);
        parent.child_changes += gone.len() as u32;
        let count = gone.len();
        let mut removed = 0;
        for child in gone {
            let child_path = child_path(path, &child.name);
            removed += remove(child, &child_path, out);
        }
        self.len -= removed;
        count
    }

    /// Calls `f` with every cached node, parents before children, siblings in name order.
    pub(super) fn for_each(&self, mut f: impl FnMut(&str, &Entry)) {
        fn walk(path: &str, entry: &Entry, f: &mut impl FnMut(&str, &Entry)) {
            f(path, entry);
            for child in &entry.children {
                walk(&child_path(path, &child.name), child, f);
            }
        }
        if let Some(root) = &self.root {
            walk(&self.root_path, root, &mut f);
        }
    }

    /// Every cached node by path.
    pub(super) fn snapshot(&self) -> BTreeMap<String, CachedNode> {
        let mut nodes = BTreeMap::new();
        self.for_each(|path, entry| {
            nodes.insert(path.to_string(), entry.node());
        });
        nodes
    }
}

/// A node new to the cache.
fn added(entry: &Entry, path: &str, out: &mut Out) -> Applied {
    out.changed += 1;
    out.skipped |= entry.stat.version > 0 || entry.stat.cversion > entry.stat.num_children;
    out.emit(|| CacheEvent::Added { path: path.to_string(), node: entry.node() });
    Applied::Current { added: true, num_children: entry.stat.num_children, unseen_child_changes: 0 }
}

/// A read of a cached node; returns what it did and the change in the number of cached nodes.
fn merge(entry: &mut Entry, path: &str, data: &[u8], stat: Stat, out: &mut Out) -> (Applied, isize) {
    let old = entry.stat;
    if stat.czxid < old.czxid || (stat.czxid == old.czxid && stat.mzxid < old.mzxid) {
        return (Applied::Stale, 0);
    }
    let unseen = stat.cversion.wrapping_sub(old.cversion).wrapping_sub(entry.child_changes as i32);
    entry.child_changes = 0;
    if stat.czxid > old.czxid {
        // Deleted and created again since the cached read: its old children are gone, unless
        // a read already brought children of the new node.
        let mut removed = 0;
        let (stale, fresh): (Vec<Entry>, Vec<Entry>) =
            std::mem::take(&mut entry.children).into_iter().partition(|c| c.stat.czxid < stat.czxid);
        for child in stale {
            let child_path = child_path(path, &child.name);
            removed += remove(child, &child_path, out);
        }
        entry.children = fresh;
        let old_node = CachedNode { data: Bytes::copy_from_slice(&entry.data), stat: old };
        out.emit(|| CacheEvent::Removed { path: path.to_string(), node: old_node });
        entry.stat = stat;
        entry.data = data.into();
        out.skipped = true;
        let applied = added(entry, path, out);
        out.changed += 1;
        return (applied, -(removed as isize));
    }
    entry.stat = stat;
    if stat.mzxid > old.mzxid {
        entry.data = data.into();
        out.changed += 1;
        out.skipped |= stat.version.wrapping_sub(old.version) > 1;
        out.emit(|| CacheEvent::Updated { path: path.to_string(), node: entry.node() });
    }
    (Applied::Current { added: false, num_children: stat.num_children, unseen_child_changes: unseen.max(0) }, 0)
}

/// Removes a subtree, children before their parent; returns how many nodes it held.
fn remove(entry: Entry, path: &str, out: &mut Out) -> usize {
    let mut count = 1;
    let Entry { stat, data, children, .. } = entry;
    for child in children {
        let child_path = child_path(path, &child.name);
        count += remove(child, &child_path, out);
    }
    out.changed += 1;
    out.skipped = true;
    out.emit(|| CacheEvent::Removed { path: path.to_string(), node: CachedNode { data: Bytes::from(data), stat } });
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(czxid: i64, mzxid: i64, version: i32) -> Stat {
        Stat { czxid, mzxid, version, ..Stat::default() }
    }

    fn recording() -> Out {
        Out { record: true, ..Out::default() }
    }

    fn kinds(out: &Out) -> Vec<String> {
        out.events
            .iter()
            .map(|e| match e {
                CacheEvent::Added { path, node } => format!("+{path}@{}", node.stat.version),
                CacheEvent::Updated { path, node } => format!("~{path}@{}", node.stat.version),
                CacheEvent::Removed { path, node } => format!("-{path}@{}", node.stat.version),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn relative_paths_stay_inside_the_root() {
        let depth = |root: &str, path: &str| relative(root, path).map(|names| names.count());
        assert_eq!(depth("/a/b", "/a/b"), Some(0));
        assert_eq!(depth("/a/b", "/a/b/c/d"), Some(2));
        assert_eq!(depth("/a/b", "/a/bc"), None);
        assert_eq!(depth("/a/b", "/a"), None);
        assert_eq!(depth("/a/b", "/a/b/"), None);
        assert_eq!(depth("/", "/"), Some(0));
        assert_eq!(depth("/", "/x"), Some(1));
        assert_eq!(depth("/", "/x/y"), Some(2));
    }

    #[test]
    fn reads_add_update_and_ignore_older_states() {
        let mut m = Mirror::new("/r");
        let mut out = recording();
        m.apply_data("/r", b"root", stat(1, 1, 0), &mut out);
        m.apply_data("/r/a", b"a0", stat(2, 2, 0), &mut out);
        m.apply_data("/r/a", b"a1", stat(2, 3, 1), &mut out);
        // An older read, and one of the same state: nothing.
        assert_eq!(m.apply_data("/r/a", b"a0", stat(2, 2, 0), &mut out), Applied::Stale);
        m.apply_data("/r/a", b"a1", stat(2, 3, 1), &mut out);
        assert_eq!(kinds(&out), ["+/r@0", "+/r/a@0", "~/r/a@1"]);
        assert!(!out.skipped);
        assert_eq!(m.len(), 2);
        assert_eq!(&*m.get("/r/a").unwrap().data, b"a1");
    }

    #[test]
    fn a_recreated_node_is_removed_and_added_even_with_the_same_version_and_data() {
        let mut m = Mirror::new("/r");
        let mut out = recording();
        m.apply_data("/r", b"", stat(1, 1, 0), &mut out);
        m.apply_data("/r/a", b"x", stat(2, 2, 0), &mut out);
        m.apply_data("/r/a/b", b"y", stat(3, 3, 0), &mut out);
        out = recording();
        m.apply_data("/r/a", b"x", stat(7, 7, 0), &mut out);
        assert_eq!(kinds(&out), ["-/r/a/b@0", "-/r/a@0", "+/r/a@0"]);
        assert!(out.skipped);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_missing_node_takes_its_subtree_with_it() {
        let mut m = Mirror::new("/");
        let mut out = recording();
        m.apply_data("/", b"", stat(0, 0, 0), &mut out);
        m.apply_data("/a", b"", stat(2, 2, 0), &mut out);
        m.apply_data("/a/b", b"", stat(3, 3, 0), &mut out);
        m.apply_data("/a/c", b"", stat(4, 4, 0), &mut out);
        out = recording();
        m.apply_missing("/a", &mut out);
        assert_eq!(kinds(&out), ["-/a/b@0", "-/a/c@0", "-/a@0"]);
        assert_eq!(m.len(), 1);
        assert!(m.get("/a").is_none());
    }

    #[test]
    fn a_child_without_its_parent_waits() {
        let mut m = Mirror::new("/r");
        let mut out = recording();
        m.apply_data("/r", b"", stat(1, 1, 0), &mut out);
        assert_eq!(m.apply_data("/r/a/b", b"", stat(3, 3, 0), &mut out), Applied::Orphan);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn listings_remove_the_unlisted_and_count_the_changes() {
        let mut m = Mirror::new("/r");
        let mut out = recording();
        m.apply_data("/r", b"", stat(1, 1, 0), &mut out);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            m.apply_data(&format!("/r/{name}"), b"", stat(2 + i as i64, 2 + i as i64, 0), &mut out);
        }
        out = recording();
        let listed = vec!["a".to_string(), "c".to_string(), "d".to_string()];
        let found = m.apply_listing("/r", &listed, &mut out).expect("cached");
        assert_eq!(found, Listed { new: vec![false, false, true], removed: 1 });
        assert_eq!(found.changes(), 2);
        assert_eq!(kinds(&out), ["-/r/b@0"]);
        assert_eq!(m.get("/r").unwrap().child_names().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn unseen_child_changes_come_from_the_cversion() {
        let mut m = Mirror::new("/r");
        let mut out = recording();
        m.apply_data("/r", b"", Stat { cversion: 1, num_children: 1, ..stat(1, 1, 0) }, &mut out);
        m.apply_data("/r/a", b"", stat(2, 2, 0), &mut out);
        // One child add seen; the cversion grew by 3: two changes unseen.
        let applied = m.apply_data("/r", b"", Stat { cversion: 4, num_children: 2, ..stat(1, 1, 0) }, &mut out);
        assert_eq!(applied, Applied::Current { added: false, num_children: 2, unseen_child_changes: 2 });
    }

    #[test]
    fn snapshots_are_in_path_order() {
        let mut m = Mirror::new("/r");
        let mut out = Out::default();
        m.apply_data("/r", b"", stat(1, 1, 0), &mut out);
        m.apply_data("/r/b", b"2", stat(3, 3, 0), &mut out);
        m.apply_data("/r/a", b"1", stat(2, 2, 0), &mut out);
        m.apply_data("/r/a/x", b"3", stat(4, 4, 0), &mut out);
        assert!(out.events.is_empty(), "nothing is built unless recorded");
        let snap = m.snapshot();
        assert_eq!(snap.keys().collect::<Vec<_>>(), ["/r", "/r/a", "/r/a/x", "/r/b"]);
        assert_eq!(&snap["/r/a/x"].data[..], b"3");
    }
}
