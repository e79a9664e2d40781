//! The data tree: znodes keyed by full path, their persisted stat, the per-parent child sets,
//! ephemerals by owning session, and the container and TTL sets the reaper scans.
//!
//! It mirrors ZooKeeper 3.8's `DataTree` closely enough that derived values come out the same:
//! the root is also reachable as `""` (so `exists("")` finds it and the node count `srvr` prints
//! is one more than the real node count), the child counter is the *persisted* one (incremented
//! on creates only; clients see `2 * persisted - numChildren`), and a create only moves the
//! parent's counter and `pzxid` forward when the new counter is larger, which is why, in 3.8.0,
//! the sequence suffix sticks at `2147483647` instead of wrapping. The tree applies changes that
//! [`super::txn`] has already checked; it does no permission or version checks itself.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::jhash::StrSet;
use crate::proto::{Acl, Id, Perms, Stat};

/// Internal `ephemeralOwner` of a container node (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking a TTL owner (`EphemeralType.TTL`): the TTL sits in the low 40 bits.
const TTL_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
/// Largest TTL a node can have (`EphemeralType.MAX_TTL`, about 34.8 years in ms).
pub(crate) const MAX_TTL: i64 = 0x00ff_ffff_ffff;

/// What a node's internal owner field says it is (`EphemeralType.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// An ordinary persistent node.
    None,
    /// An ephemeral node of this session.
    Session(i64),
    /// A container.
    Container,
    /// A TTL node with this TTL in ms.
    Ttl(i64),
}

impl Owner {
    /// Decodes the internal owner field.
    pub(crate) fn of(raw: i64) -> Owner {
        if raw == 0 {
            Owner::None
        } else if raw == CONTAINER_OWNER {
            Owner::Container
        } else if raw & TTL_MASK == TTL_MASK {
            Owner::Ttl(raw & MAX_TTL)
        } else {
            Owner::Session(raw)
        }
    }

    /// Encodes it back.
    pub(crate) fn raw(self) -> i64 {
        match self {
            Owner::None => 0,
            Owner::Session(s) => s,
            Owner::Container => CONTAINER_OWNER,
            Owner::Ttl(ttl) => TTL_MASK | (ttl & MAX_TTL),
        }
    }
}

/// The ACL of the fresh tree's nodes, shared.
pub(crate) fn open_acl() -> Arc<[Acl]> {
    Arc::from(Acl::open_unsafe())
}

/// A node to create, as the write path prepared it once every check passed.
#[derive(Debug, Clone)]
pub(crate) struct NewNode {
    /// The full path, sequence suffix included.
    pub path: String,
    /// The data; `None` is the null a Java client can store.
    pub data: Option<Bytes>,
    /// The ACL, already fixed up (`auth` ids expanded).
    pub acl: Arc<[Acl]>,
    /// What kind of node: persistent, a session's ephemeral, a container or a TTL node.
    pub owner: Owner,
    /// The parent's child counter after this create (the source of a sequence suffix).
    pub parent_cversion: i32,
}

/// One znode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The data; `None` is the null a Java client can store.
    pub data: Option<Bytes>,
    /// The ACL.
    pub acl: Arc<[Acl]>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// The persisted child counter: creates only.
    pub cversion: i32,
    pub aversion: i32,
    /// Internal owner field (see [`Owner`]).
    pub owner: i64,
    pub pzxid: i64,
    /// Child names in Java `HashSet` order; created on the first child, kept afterwards.
    children: Option<Box<StrSet>>,
    /// Sum of the child names' lengths (for the size of a listing, before it is built).
    child_name_bytes: usize,
}

impl Node {
    fn new(data: Option<Bytes>, acl: Arc<[Acl]>, owner: i64, zxid: i64, time: i64) -> Node {
        Node {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            owner,
            pzxid: zxid,
            children: None,
            child_name_bytes: 0,
        }
    }

    /// Number of direct children.
    pub(crate) fn num_children(&self) -> i32 {
        self.children.as_ref().map_or(0, |c| c.len() as i32)
    }

    /// What kind of node it is.
    pub(crate) fn kind(&self) -> Owner {
        Owner::of(self.owner)
    }

    /// The stat clients see (`DataNode.copyStat`).
    pub(crate) fn stat(&self) -> Stat {
        let num_children = self.num_children();
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: match self.kind() {
                Owner::Session(s) => s,
                _ => 0,
            },
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: self.pzxid,
        }
    }

    /// Encoded size of the child listing: a jute vector of the names.
    pub(crate) fn listing_size(&self) -> usize {
        4 + 4 * self.num_children() as usize + self.child_name_bytes
    }

    /// The child names in the order a real server lists them.
    pub(crate) fn child_names(&self) -> Vec<String> {
        self.children.as_ref().map_or_else(Vec::new, |c| c.iter().map(|s| s.to_string()).collect())
    }

    /// The child names in listing order, borrowed.
    pub(crate) fn child_iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.children.iter().flat_map(|c| c.iter().map(|s| &**s))
    }
}

/// Java's `path.substring(0, path.lastIndexOf('/'))` and the name after it; `None` without a `/`.
pub(crate) fn split_parent(path: &str) -> Option<(&str, &str)> {
    path.rfind('/').map(|i| (&path[..i], &path[i + 1..]))
}

/// The znodes.
#[derive(Debug)]
pub(crate) struct DataTree {
    nodes: HashMap<Box<str>, Node>,
    ephemerals: HashMap<i64, StrSet>,
    containers: StrSet,
    ttls: StrSet,
    /// Sum of path lengths and data lengths (`zk_approximate_data_size`).
    data_size: i64,
    /// Bumped by every create and delete: a count of descendants taken at one generation holds
    /// until the next.
    generation: u64,
    /// The last `getAllChildrenNumber` walked: path, generation, count.
    last_count: Option<(Box<str>, u64, i32)>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// The tree of a fresh standalone server: `/`, `/zookeeper`, `/zookeeper/quota` and
    /// `/zookeeper/config` (READ-only for everyone, `aversion` -1), all with zero stats.
    pub(crate) fn new() -> DataTree {
        let mut t = DataTree {
            nodes: HashMap::new(),
            ephemerals: HashMap::new(),
            containers: StrSet::concurrent(),
            ttls: StrSet::concurrent(),
            data_size: 0,
            generation: 0,
            last_count: None,
        };
        let empty = || Some(Bytes::new());
        t.nodes.insert("/".into(), Node::new(empty(), open_acl(), 0, 0, 0));
        for (parent, name) in [("/", "zookeeper"), ("/zookeeper", "quota"), ("/zookeeper", "config")] {
            let path = super::super::path::join(parent, name);
            let mut node = Node::new(empty(), open_acl(), 0, 0, 0);
            if name == "config" {
                node.acl = Arc::from(vec![Acl::new(Perms::READ, Id::anyone())]);
                node.aversion = -1;
            }
            t.data_size += path.len() as i64;
            t.nodes.insert(path.into(), node);
            t.add_child(parent, name);
        }
        t
    }

    /// Number of real nodes (a fresh tree has 4).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The count ZooKeeper's `srvr`/`mntr` print: the root is also stored under `""`.
    pub(crate) fn java_node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    /// `zk_approximate_data_size`.
    pub(crate) fn approximate_data_size(&self) -> i64 {
        self.data_size
    }

    /// Looks a node up; `""` is the root, as in ZooKeeper.
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        self.nodes.get_mut(if path.is_empty() { "/" } else { path })
    }

    fn add_child(&mut self, parent: &str, name: &str) {
        if let Some(node) = self.get_mut(parent) {
            if node.children.get_or_insert_with(|| Box::new(StrSet::hash_set(8))).insert_str(name) {
                node.child_name_bytes += name.len();
            }
        }
    }

    /// Creates `new` (its parent exists and its path is free: both checked by the caller) at
    /// `zxid` and wall-clock `time`. As in `DataTree.createNode`, the parent's counter (and its
    /// `pzxid`) only moves to `new.parent_cversion` when that is larger than the current one.
    /// The data is copied, so that the node does not pin the request frame it came in.
    pub(crate) fn create(&mut self, new: &NewNode, zxid: i64, time: i64) -> Stat {
        let path = new.path.as_str();
        let Some((parent, name)) = split_parent(path) else { return Stat::default() };
        let Some(p) = self.get_mut(parent) else { return Stat::default() };
        if new.parent_cversion > p.cversion {
            p.cversion = new.parent_cversion;
            p.pzxid = zxid;
        }
        self.add_child(parent, name);
        self.generation += 1;
        self.data_size += (path.len() + new.data.as_ref().map_or(0, Bytes::len)) as i64;
        let data = new.data.as_deref().map(Bytes::copy_from_slice);
        let node = Node::new(data, new.acl.clone(), new.owner.raw(), zxid, time);
        let stat = node.stat();
        match node.kind() {
            Owner::Container => {
                self.containers.insert_str(path);
            }
            Owner::Ttl(_) => {
                self.ttls.insert_str(path);
            }
            Owner::Session(s) => {
                self.ephemerals.entry(s).or_insert_with(|| StrSet::hash_set(16)).insert_str(path);
            }
            Owner::None => {}
        }
        self.nodes.insert(path.into(), node);
        stat
    }

    /// Deletes a node (the caller checked it exists and has no children); returns it.
    pub(crate) fn delete(&mut self, path: &str, zxid: i64) -> Option<Node> {
        let node = self.nodes.remove(path)?;
        self.generation += 1;
        self.data_size -= (path.len() + node.data.as_ref().map_or(0, Bytes::len)) as i64;
        if let Some((parent, name)) = split_parent(path) {
            if let Some(p) = self.get_mut(parent) {
                if p.children.as_mut().is_some_and(|c| c.remove_str(name)) {
                    p.child_name_bytes -= name.len();
                }
                if zxid > p.pzxid {
                    p.pzxid = zxid;
                }
            }
        }
        match node.kind() {
            Owner::Container => {
                self.containers.remove_str(path);
            }
            Owner::Ttl(_) => {
                self.ttls.remove_str(path);
            }
            Owner::Session(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove_str(path);
                }
            }
            Owner::None => {}
        }
        Some(node)
    }

    /// Replaces a node's data (`DataTree.setData`); returns the new stat.
    pub(crate) fn set_data(&mut self, path: &str, data: Option<Bytes>, version: i32, zxid: i64, time: i64) -> Stat {
        let Some(node) = self.get_mut(path) else { return Stat::default() };
        let delta = data.as_ref().map_or(0, Bytes::len) as i64 - node.data.as_ref().map_or(0, Bytes::len) as i64;
        node.data = data;
        node.version = version;
        node.mzxid = zxid;
        node.mtime = time;
        let stat = node.stat();
        self.data_size += delta;
        stat
    }

    /// Replaces a node's ACL (`DataTree.setACL`): only `aversion` changes in the stat.
    pub(crate) fn set_acl(&mut self, path: &str, acl: Arc<[Acl]>, aversion: i32) -> Stat {
        let Some(node) = self.get_mut(path) else { return Stat::default() };
        node.acl = acl;
        node.aversion = aversion;
        node.stat()
    }

    /// Sets a node's persisted child counter (the next sequence suffix under it). For tests and
    /// the `Faults::set_cversion` hook. Returns false if the node does not exist.
    pub(crate) fn set_cversion(&mut self, path: &str, cversion: i32) -> bool {
        match self.get_mut(path) {
            Some(node) => {
                node.cversion = cversion;
                true
            }
            None => false,
        }
    }

    /// `getAllChildrenNumber`: for `/` the node count minus the root; otherwise the number of
    /// stored paths starting with `path + "/"` (so `""`, whose prefix is `/`, counts every node).
    /// Returns the count and the nodes visited to find it: the last count is kept until the next
    /// create or delete, so asking again for the same path costs nothing.
    pub(crate) fn count_descendants(&mut self, path: &str) -> (i32, u64) {
        match path {
            "/" => return (self.nodes.len() as i32 - 1, 1),
            "" => return (self.nodes.len() as i32, 1),
            _ => {}
        }
        if let Some((p, generation, count)) = &self.last_count {
            if **p == *path && *generation == self.generation {
                return (*count, 1);
            }
        }
        let count = self.walk_descendants(path);
        self.last_count = Some((path.into(), self.generation, count));
        (count, u64::try_from(count).unwrap_or(0).max(1))
    }

    /// Counts the nodes under `path` depth first with one path buffer: no allocation per node,
    /// one lookup per node (ZooKeeper tests every stored path for the prefix instead).
    fn walk_descendants(&self, path: &str) -> i32 {
        let mut count = 0i32;
        let mut buf = path.to_string();
        let mut stack: Vec<(usize, Box<dyn Iterator<Item = &str> + '_>)> = Vec::new();
        if let Some(node) = self.get(path) {
            stack.push((buf.len(), Box::new(node.child_iter())));
        }
        while let Some((len, children)) = stack.last_mut() {
            let len = *len;
            let Some(name) = children.next() else {
                stack.pop();
                continue;
            };
            count = count.saturating_add(1);
            buf.truncate(len);
            buf.push('/');
            buf.push_str(name);
            if let Some(child) = self.get(&buf).filter(|c| c.num_children() > 0) {
                stack.push((buf.len(), Box::new(child.child_iter())));
            }
        }
        count
    }

    /// The ephemeral paths of `session` in the order `DataTree.getEphemerals` returns them (a
    /// clone of the session's `HashSet`), which is also the order a closing session deletes them.
    pub(crate) fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map_or_else(Vec::new, |set| set.java_clone().iter().map(|s| s.to_string()).collect())
    }

    /// The ephemeral paths of `session`, in no particular order, borrowed.
    pub(crate) fn ephemeral_paths(&self, session: i64) -> impl Iterator<Item = &str> + '_ {
        self.ephemerals.get(&session).into_iter().flat_map(|set| set.iter().map(|p| &**p))
    }

    /// How many ephemeral nodes `session` owns.
    pub(crate) fn ephemerals_len(&self, session: i64) -> usize {
        self.ephemerals.get(&session).map_or(0, StrSet::len)
    }

    /// Forgets a session's ephemeral set (after its nodes were deleted).
    pub(crate) fn drop_session(&mut self, session: i64) {
        self.ephemerals.remove(&session);
    }

    /// Number of ephemeral nodes (`zk_ephemerals_count`).
    pub(crate) fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(StrSet::len).sum()
    }

    /// Sessions that own ephemerals, with their paths (for `dump`).
    pub(crate) fn ephemerals_by_session(&self) -> Vec<(i64, Vec<String>)> {
        let mut out: Vec<(i64, Vec<String>)> = self
            .ephemerals
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(id, s)| (*id, s.iter().map(|p| p.to_string()).collect()))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// `ContainerManager.getCandidates`: empty containers that have had a child, then childless
    /// TTL nodes not modified for longer than their TTL, at wall time `now`.
    pub(crate) fn reap_candidates(&self, now: i64) -> Vec<String> {
        let mut out = Vec::new();
        for path in self.containers.iter() {
            if let Some(node) = self.get(path) {
                if node.num_children() == 0 && node.cversion > 0 {
                    out.push(path.to_string());
                }
            }
        }
        for path in self.ttls.iter() {
            if let Some(node) = self.get(path) {
                if let Owner::Ttl(ttl) = node.kind() {
                    if node.num_children() == 0 && ttl != 0 && now - node.mtime > ttl {
                        out.push(path.to_string());
                    }
                }
            }
        }
        out
    }
}

impl DataTree {
    /// Checks the tree's internal consistency (tests): every node but the root has its parent,
    /// which lists it; child counts match; the ephemeral, container and TTL sets match the
    /// nodes' owners.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut children: HashMap<&str, usize> = HashMap::new();
        let (mut eph, mut cont, mut ttl) = (0, 0, 0);
        for (path, node) in &self.nodes {
            if &**path != "/" {
                let (parent, name) = split_parent(path).expect("absolute path");
                let p = self.get(parent).unwrap_or_else(|| panic!("{path}: parent missing"));
                assert!(p.children.as_ref().is_some_and(|c| c.contains_str(name)), "{path} not listed");
                *children.entry(if parent.is_empty() { "/" } else { parent }).or_default() += 1;
            }
            match node.kind() {
                Owner::Session(s) => {
                    eph += 1;
                    assert!(self.ephemerals.get(&s).is_some_and(|e| e.contains_str(path)), "{path} ephemeral");
                }
                Owner::Container => {
                    cont += 1;
                    assert!(self.containers.contains_str(path));
                }
                Owner::Ttl(_) => {
                    ttl += 1;
                    assert!(self.ttls.contains_str(path));
                }
                Owner::None => {}
            }
        }
        for (path, node) in &self.nodes {
            assert_eq!(node.num_children() as usize, children.get(&**path).copied().unwrap_or(0), "{path} count");
            assert_eq!(node.child_name_bytes, node.child_iter().map(str::len).sum::<usize>(), "{path} name bytes");
        }
        assert_eq!((eph, cont, ttl), (self.ephemeral_count(), self.containers.len(), self.ttls.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tree_matches_zookeeper_3_8() {
        let t = DataTree::new();
        assert_eq!(t.len(), 4);
        assert_eq!(t.java_node_count(), 5);
        let root = t.get("/").unwrap().stat();
        assert_eq!((root.cversion, root.num_children, root.czxid, root.ctime), (-1, 1, 0, 0));
        assert_eq!(t.get("").unwrap().stat(), root, "\"\" aliases the root");
        assert_eq!(t.get("/zookeeper").unwrap().stat().cversion, -2);
        assert_eq!(t.get("/zookeeper").unwrap().child_names(), ["config", "quota"]);
        let config = t.get("/zookeeper/config").unwrap();
        assert_eq!((config.stat().aversion, config.acl[0].perms), (-1, Perms::READ));
        let mut t = t;
        assert_eq!(t.count_descendants("/").0, 3);
        assert_eq!(t.count_descendants("").0, 4);
        assert_eq!(t.count_descendants("/zookeeper").0, 2);
    }

    #[test]
    fn a_count_is_kept_until_the_next_create_or_delete() {
        let mut t = DataTree::new();
        let node = |path: &str| NewNode {
            path: path.into(),
            data: None,
            acl: open_acl(),
            owner: Owner::None,
            parent_cversion: 1,
        };
        for p in ["/a", "/a/b", "/a/b/c", "/a/d", "/ab"] {
            t.create(&node(p), 1, 1);
        }
        assert_eq!(t.count_descendants("/a"), (3, 3), "walked");
        assert_eq!(t.count_descendants("/a"), (3, 1), "kept");
        assert_eq!(t.count_descendants("/a/b"), (1, 1), "another path is walked");
        t.create(&node("/a/b/e"), 2, 2);
        assert_eq!(t.count_descendants("/a/b"), (2, 2), "a create forgets the count");
        t.delete("/a/d", 3);
        assert_eq!(t.count_descendants("/a").0, 3, "so does a delete");
        assert_eq!(t.count_descendants("/nope"), (0, 1));
    }

    #[test]
    fn owner_encoding() {
        for o in [Owner::None, Owner::Session(0x0100_0000_1234_0000), Owner::Container, Owner::Ttl(MAX_TTL)] {
            assert_eq!(Owner::of(o.raw()), o);
        }
    }

    #[test]
    fn create_guard_keeps_the_counter_at_max() {
        let mut t = DataTree::new();
        let node = |path: &str, parent_cversion| NewNode {
            path: path.into(),
            data: None,
            acl: open_acl(),
            owner: Owner::None,
            parent_cversion,
        };
        t.create(&node("/p", 1), 2, 10);
        assert!(t.set_cversion("/p", i32::MAX));
        t.create(&node("/p/a", i32::MIN), 3, 11);
        let p = t.get("/p").unwrap();
        assert_eq!((p.cversion, p.pzxid), (i32::MAX, 2), "MIN is not larger than MAX: nothing stored");
        assert_eq!(p.stat().cversion, i32::MAX.wrapping_mul(2) - 1);
    }
}
