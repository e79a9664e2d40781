//! Java collection iteration order, emulated, so that lists the server returns come out in the
//! same order as from a real ZooKeeper 3.8.
//!
//! ZooKeeper keeps a node's children in a `java.util.HashSet<String>(8)`, a session's ephemerals
//! in a `HashSet<String>()`, a connection's auth ids and the container / TTL path sets in
//! `ConcurrentHashMap`-backed sets. `getChildren`, `getEphemerals`, `whoAmI`, the order in which
//! an expired session's ephemerals are deleted (and so the order of their watch events) all
//! follow those sets' iteration order: table slot by slot, and within a slot in chain order.
//! [`JavaSet`] reproduces that order exactly: Java's `String.hashCode`, the hash spreading of both
//! map kinds, the load-factor-0.75 resize points, `HashMap`'s order-preserving split and
//! `ConcurrentHashMap`'s "last run" split on resize, and `HashMap`'s resize instead of treeifying
//! a chain of 9 in a table smaller than 64. Not reproduced: the order inside a chain that
//! `HashMap` has turned into a tree (9+ entries in one slot of a table of 64+, which a 0.75 load
//! factor makes vanishingly rare unless the names are chosen to collide) and
//! `ConcurrentHashMap`'s presize on long chains. Chosen collisions cost no more than other
//! names: see [`JavaSet`] for how lookups stay O(1).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

const NIL: u32 = u32::MAX;

/// Chain length past which a set stops walking chains to find an element and builds an index
/// instead (Java turns a chain of 8 in a table of 64+ into a tree for the same reason).
const LONG_CHAIN: usize = 8;

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over the UTF-16 code units.
pub(crate) fn string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// Which Java collection is emulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// `java.util.HashMap` (and so `HashSet`).
    HashMap,
    /// `java.util.concurrent.ConcurrentHashMap` (its key sets).
    Concurrent,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    hash: i32,
    next: u32,
    prev: u32,
    value: Option<T>,
}

/// A set whose iteration order is the one of the Java collection it stands for. Elements carry
/// their Java `hashCode`; equality is `T`'s.
///
/// Chains are doubly linked with a tail per slot, so appending and unlinking cost O(1). Lookups
/// walk the chain while chains are short; the first time one grows past [`LONG_CHAIN`] (which
/// takes colliding Java hashes: a client can choose names that all hash alike) the set builds an
/// index from element to entry with Rust's randomly keyed hasher and uses it from then on, so no
/// choice of names makes an operation cost more than O(1) on average.
#[derive(Debug, Clone)]
pub(crate) struct JavaSet<T> {
    flavor: Flavor,
    /// Table size at the first insertion.
    initial: usize,
    /// Slot heads (indices into `entries`); empty until the first insertion, as in Java.
    heads: Vec<u32>,
    /// Slot tails, beside `heads`.
    tails: Vec<u32>,
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
    /// Element to entry, once some chain has been long.
    index: Option<HashMap<T, u32>>,
}

/// `HashMap.tableSizeFor`: the smallest power of two at least `c` (and at least 1).
fn table_size_for(c: usize) -> usize {
    c.max(1).next_power_of_two()
}

impl<T: Eq + Hash + Clone> JavaSet<T> {
    /// `new HashSet<>(initial_capacity)`.
    pub(crate) fn hash_set(initial_capacity: usize) -> Self {
        Self::with(Flavor::HashMap, table_size_for(initial_capacity))
    }

    /// `ConcurrentHashMap.newKeySet()` / `Collections.newSetFromMap(new ConcurrentHashMap<>())`.
    pub(crate) fn concurrent() -> Self {
        Self::with(Flavor::Concurrent, 16)
    }

    fn with(flavor: Flavor, initial: usize) -> Self {
        JavaSet {
            flavor,
            initial,
            heads: Vec::new(),
            tails: Vec::new(),
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
            index: None,
        }
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn spread(&self, h: i32) -> u32 {
        let h = (h ^ ((h as u32) >> 16) as i32) as u32;
        match self.flavor {
            Flavor::HashMap => h,
            Flavor::Concurrent => h & 0x7fff_ffff,
        }
    }

    fn slot(&self, hash: i32) -> usize {
        (self.spread(hash) as usize) & (self.heads.len() - 1)
    }

    fn entry(&self, i: u32) -> &Entry<T> {
        &self.entries[i as usize]
    }

    /// `HashMap`'s resize threshold: `(int) (capacity * 0.75f)`.
    fn threshold(cap: usize) -> usize {
        (cap as f32 * 0.75) as usize
    }

    /// The entry holding `value` (Java hash `hash`), and how many entries of its slot's chain
    /// were walked to find out (0 when the index answered).
    fn find<Q>(&self, hash: i32, value: &Q) -> (Option<u32>, usize)
    where
        T: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if self.heads.is_empty() {
            return (None, 0);
        }
        if let Some(index) = &self.index {
            return (index.get(value).copied(), 0);
        }
        let mut walked = 0;
        let mut cur = self.heads[self.slot(hash)];
        while cur != NIL {
            let e = self.entry(cur);
            if e.hash == hash && e.value.as_ref().is_some_and(|v| v.borrow() == value) {
                return (Some(cur), walked);
            }
            walked += 1;
            cur = e.next;
        }
        (None, walked)
    }

    /// Length of the chain in `slot` (walked: only asked while the table is small).
    fn chain_len(&self, slot: usize) -> usize {
        let mut n = 0;
        let mut cur = self.heads[slot];
        while cur != NIL {
            n += 1;
            cur = self.entry(cur).next;
        }
        n
    }

    fn build_index(&mut self) {
        let mut index = HashMap::with_capacity(self.len);
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(v) = &e.value {
                index.insert(v.clone(), i as u32);
            }
        }
        self.index = Some(index);
    }

    /// Adds `value` (whose Java hash is `hash`) unless an equal element is present; returns
    /// whether it was added. An element already present keeps its place; a new one goes to the
    /// end of its slot's chain, as in Java.
    pub(crate) fn insert(&mut self, hash: i32, value: T) -> bool {
        if self.heads.is_empty() {
            self.heads = vec![NIL; self.initial];
            self.tails = vec![NIL; self.initial];
        }
        let (found, walked) = self.find(hash, &value);
        if found.is_some() {
            return false;
        }
        let slot = self.slot(hash);
        let last = self.tails[slot];
        let entry = Entry { hash, next: NIL, prev: last, value: Some(value) };
        let idx = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = entry;
                i
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        if last == NIL {
            self.heads[slot] = idx;
        } else {
            self.entries[last as usize].next = idx;
        }
        self.tails[slot] = idx;
        self.len += 1;
        if let Some(index) = &mut self.index {
            if let Some(v) = &self.entries[idx as usize].value {
                index.insert(v.clone(), idx);
            }
        } else if walked >= LONG_CHAIN {
            self.build_index();
        }
        match self.flavor {
            Flavor::HashMap => {
                // putVal: a chain that had 8 nodes asks for a tree; below 64 slots that resizes.
                if self.heads.len() < 64 && self.chain_len(slot) > 8 {
                    self.resize();
                }
                if self.len > Self::threshold(self.heads.len()) {
                    self.resize();
                }
            }
            Flavor::Concurrent => {
                // addCount: resize once the count reaches sizeCtl = n - n/4.
                let n = self.heads.len();
                if self.len >= n - n / 4 {
                    self.resize();
                }
            }
        }
        true
    }

    /// Removes `value` (Java hash `hash`); returns it if it was present.
    pub(crate) fn remove<Q>(&mut self, hash: i32, value: &Q) -> Option<T>
    where
        T: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let idx = self.find(hash, value).0?;
        let slot = self.slot(hash);
        let (prev, next) = {
            let e = self.entry(idx);
            (e.prev, e.next)
        };
        if prev == NIL {
            self.heads[slot] = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.tails[slot] = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        self.len -= 1;
        self.free.push(idx);
        if let Some(index) = &mut self.index {
            index.remove(value);
        }
        self.entries[idx as usize].value.take()
    }

    /// Whether `value` (Java hash `hash`) is present.
    pub(crate) fn contains<Q>(&self, hash: i32, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.find(hash, value).0.is_some()
    }

    /// The elements in Java iteration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter_hashed().map(|(_, v)| v)
    }

    fn iter_hashed(&self) -> impl Iterator<Item = (i32, &T)> + '_ {
        self.heads.iter().flat_map(move |&head| {
            let mut cur = head;
            std::iter::from_fn(move || {
                while cur != NIL {
                    let e = self.entry(cur);
                    cur = e.next;
                    if let Some(v) = e.value.as_ref() {
                        return Some((e.hash, v));
                    }
                }
                None
            })
        })
    }

    fn chain(&self, head: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = head;
        while cur != NIL {
            out.push(cur);
            cur = self.entry(cur).next;
        }
        out
    }

    /// Makes `order` the chain of `slot` in the new table (`heads`, `tails`).
    fn link(&mut self, heads: &mut [u32], tails: &mut [u32], slot: usize, order: &[u32]) {
        let mut prev = NIL;
        for &i in order {
            if prev == NIL {
                heads[slot] = i;
            } else {
                self.entries[prev as usize].next = i;
            }
            self.entries[i as usize].prev = prev;
            prev = i;
        }
        if prev != NIL {
            self.entries[prev as usize].next = NIL;
        }
        tails[slot] = prev;
    }

    /// Doubles the table the way the emulated collection does.
    fn resize(&mut self) {
        let n = self.heads.len();
        let mut heads = vec![NIL; n * 2];
        let mut tails = vec![NIL; n * 2];
        for j in 0..n {
            let chain = self.chain(self.heads[j]);
            if chain.is_empty() {
                continue;
            }
            let bit = |s: &Self, i: u32| (s.spread(s.entry(i).hash) as usize) & n != 0;
            let (lo, hi): (Vec<u32>, Vec<u32>) = match self.flavor {
                // HashMap.resize keeps the relative order in both halves.
                Flavor::HashMap => chain.iter().partition(|&&i| !bit(self, i)),
                // ConcurrentHashMap.transfer: the longest tail whose nodes all go the same way is
                // reused as is; the nodes before it are prepended one by one (so reversed).
                Flavor::Concurrent => {
                    let mut run_start = chain.len() - 1;
                    let run_bit = bit(self, chain[run_start]);
                    while run_start > 0 && bit(self, chain[run_start - 1]) == run_bit {
                        run_start -= 1;
                    }
                    let (mut lo, mut hi): (Vec<u32>, Vec<u32>) =
                        chain[..run_start].iter().rev().partition(|&&i| !bit(self, i));
                    let tail = &chain[run_start..];
                    if run_bit {
                        hi.extend_from_slice(tail);
                    } else {
                        lo.extend_from_slice(tail);
                    }
                    (lo, hi)
                }
            };
            self.link(&mut heads, &mut tails, j, &lo);
            self.link(&mut heads, &mut tails, j + n, &hi);
        }
        self.heads = heads;
        self.tails = tails;
    }

    /// `HashSet.clone()` (as `DataTree.getEphemerals` does): a `HashMap` sized for the current
    /// count, filled in this set's iteration order.
    pub(crate) fn java_clone(&self) -> Self {
        let ft = self.len as f32 / 0.75 + 1.0;
        let mut out = Self::with(Flavor::HashMap, table_size_for(ft as usize));
        for (e, v) in self.iter_hashed() {
            out.insert(e, v.clone());
        }
        out
    }
}

/// A set of strings (znode names or paths), hashed with [`string_hash`].
pub(crate) type StrSet = JavaSet<Box<str>>;

impl StrSet {
    /// Adds `s`; returns whether it was absent.
    pub(crate) fn insert_str(&mut self, s: &str) -> bool {
        self.insert(string_hash(s), s.into())
    }

    /// Removes `s`; returns whether it was present.
    pub(crate) fn remove_str(&mut self, s: &str) -> bool {
        self.remove(string_hash(s), s).is_some()
    }

    /// Whether `s` is present.
    #[cfg(test)]
    pub(crate) fn contains_str(&self, s: &str) -> bool {
        self.contains(string_hash(s), s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &StrSet) -> Vec<&str> {
        set.iter().map(|s| &**s).collect()
    }

    #[test]
    fn string_hash_matches_java() {
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(string_hash("hello"), 99_162_322);
        // Non-BMP characters count as two UTF-16 units.
        assert_eq!(string_hash("\u{1f600}"), 0xd83d * 31 + 0xde00);
    }

    #[test]
    fn children_order_matches_zookeeper_3_8() {
        // Measured on ZooKeeper 3.8.0: `ls /zookeeper` is [config, quota] and, after creating
        // /a, /m1../m4, /n1../n4, /ctr, /pers, /ctr2 in that order, `ls /` came back as below.
        let mut zk = StrSet::hash_set(8);
        zk.insert_str("quota");
        zk.insert_str("config");
        assert_eq!(names(&zk), ["config", "quota"]);

        let mut root = StrSet::hash_set(8);
        for n in ["zookeeper", "a", "m1", "m2", "m3", "m4"] {
            root.insert_str(n);
        }
        assert_eq!(names(&root), ["a", "zookeeper", "m1", "m2", "m3", "m4"]);
        for n in ["ctr", "pers", "ctr2", "n1", "n2", "n3", "n4"] {
            root.insert_str(n);
        }
        assert_eq!(
            names(&root),
            ["ctr", "a", "pers", "n1", "zookeeper", "m1", "n2", "m2", "n3", "m3", "n4", "m4", "ctr2"]
        );
    }

    #[test]
    fn getephemerals_clone_order_matches_zookeeper_3_8() {
        // Measured: ephemerals /g/e1, /e2, /gx, /g/e30000000004 (created in that order) are
        // listed by getEphemerals as below.
        let mut e = StrSet::hash_set(16);
        for p in ["/g/e1", "/e2", "/gx", "/g/e30000000004"] {
            e.insert_str(p);
        }
        let clone = e.java_clone();
        assert_eq!(names(&clone), ["/gx", "/g/e30000000004", "/e2", "/g/e1"]);
    }

    #[test]
    fn remove_and_reinsert_goes_to_the_chain_tail() {
        let mut s = StrSet::hash_set(8);
        for n in ["a", "b", "c"] {
            s.insert_str(n);
        }
        assert!(s.remove_str("b"));
        assert!(!s.remove_str("b"));
        assert!(!s.insert_str("a"));
        s.insert_str("b");
        assert_eq!(s.len(), 3);
        assert!(s.contains_str("c"));
        assert_eq!(names(&s), ["a", "b", "c"]);
    }

    #[test]
    fn resizes_keep_every_element() {
        for flavor_set in [StrSet::hash_set(8), StrSet::concurrent()] {
            let mut s = flavor_set;
            for i in 0..1000 {
                assert!(s.insert_str(&format!("n{i}")));
            }
            assert_eq!(s.len(), 1000);
            assert_eq!(s.iter().count(), 1000);
            for i in (0..1000).step_by(2) {
                assert!(s.remove_str(&format!("n{i}")));
            }
            assert_eq!(s.iter().count(), 500);
            assert!(s.contains_str("n1") && !s.contains_str("n0"));
        }
    }

    /// `n` distinct strings with one Java hash: blocks of "Aa" and "BB" (equal hashes).
    fn colliding(n: usize) -> Vec<String> {
        let bits = usize::BITS - n.leading_zeros();
        (0..n).map(|i| (0..bits).map(|b| if i >> b & 1 == 1 { "BB" } else { "Aa" }).collect()).collect()
    }

    #[test]
    fn colliding_names_are_indexed_and_keep_java_chain_order() {
        let all = colliding(5000);
        assert!(all.iter().all(|n| string_hash(n) == string_hash(&all[0])));
        for mut s in [StrSet::hash_set(8), StrSet::concurrent()] {
            for n in &all {
                assert!(s.insert_str(n));
            }
            assert!(s.index.is_some(), "a long chain builds the index");
            assert!(!s.insert_str(&all[17]), "duplicates are found through the index");
            // One chain, appended in insertion order; resizes keep a single-slot chain's order.
            assert_eq!(names(&s), all.iter().map(String::as_str).collect::<Vec<_>>());
            for n in all.iter().step_by(2) {
                assert!(s.remove_str(n));
            }
            assert!(!s.remove_str(&all[0]));
            s.insert_str(&all[0]);
            let mut want: Vec<&str> = all.iter().skip(1).step_by(2).map(String::as_str).collect();
            want.push(&all[0]);
            assert_eq!(names(&s), want, "a re-inserted name goes to the chain's tail");
            assert_eq!(s.len(), want.len());
            assert!(s.contains_str(&all[0]) && !s.contains_str(&all[2]));
        }
    }

    #[test]
    fn ordinary_names_need_no_index() {
        let mut s = StrSet::hash_set(8);
        for i in 0..10_000 {
            s.insert_str(&format!("node-{i:07}"));
        }
        assert!(s.index.is_none());
    }

    #[test]
    fn concurrent_resize_reverses_the_prefix_before_the_last_run() {
        // Hashes 1, 33, 17 share slot 1 of a 16-slot table. On resize the last run is [17]
        // (it moves to slot 17); 33 and then 1 are prepended to the low list: [33, 1]. A
        // HashMap would keep [1, 33].
        let mut s: JavaSet<u32> = JavaSet::concurrent();
        for (h, v) in [(1, 1u32), (33, 33), (17, 17)] {
            s.insert(h, v);
        }
        for v in 100..109u32 {
            s.insert(v as i32 * 16 + 2, v);
        }
        let order: Vec<u32> = s.iter().copied().filter(|v| *v < 100).collect();
        assert_eq!(order, [33, 1, 17]);
    }
}
