//! Server-side watch tables and their trigger rules, exactly as ZooKeeper 3.8.0's two
//! `WatchManager`s (data and child) behave.
//!
//! Each table maps a path to the connections watching it, and each (table, connection, path)
//! has **one** mode: STANDARD (one-shot), PERSISTENT or PERSISTENT_RECURSIVE. The last
//! registration wins, which is 3.8.0's behaviour before ZOOKEEPER-4466: a `getData(watch)` on a
//! path that already has a persistent watch turns it into a one-shot watch. `addWatch` registers
//! its mode in **both** tables (recursive too), so a recursive watch never receives
//! `NodeChildrenChanged`, even for the exact path.
//!
//! Triggering walks the path and, while the table holds any recursive entry, every ancestor up to
//! `/`. Recursive entries fire for everything except `NodeChildrenChanged`; other entries fire
//! only on the exact path, and STANDARD ones are then removed. Each connection is notified at
//! most once per trigger, and the caller can suppress connections already notified by the data
//! table (a delete's child-table `NodeDeleted`). Watches belong to connections and are dropped
//! with them.

use std::collections::{HashMap, HashSet};

use super::sessions::ConnId;
use crate::proto::EventType;

/// A watch's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Fires once.
    Standard,
    /// Fires on the exact path and stays.
    Persistent,
    /// Fires on the path and every descendant (except child-list changes) and stays.
    Recursive,
}

/// Which of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// `dataWatches`: getData, exists, addWatch.
    Data,
    /// `childWatches`: getChildren, addWatch.
    Child,
}

#[derive(Debug, Default)]
struct WatchTable {
    by_path: HashMap<Box<str>, Vec<(ConnId, Mode)>>,
    recursive: usize,
}

#[derive(Debug, Default)]
struct ConnPaths {
    data: HashSet<Box<str>>,
    child: HashSet<Box<str>>,
}

impl ConnPaths {
    fn of(&mut self, table: Table) -> &mut HashSet<Box<str>> {
        match table {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        }
    }
}

/// Both watch tables.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    data: WatchTable,
    child: WatchTable,
    by_conn: HashMap<ConnId, ConnPaths>,
}

/// Summary counts for `wchs` and `mntr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WatchCounts {
    /// Connections with at least one data watch.
    pub connections: usize,
    /// Paths in the data table.
    pub paths: usize,
    /// Entries in the data table.
    pub data_watches: usize,
    /// Entries in the child table.
    pub child_watches: usize,
}

impl Watches {
    fn table(&mut self, table: Table) -> &mut WatchTable {
        match table {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        }
    }

    fn table_ref(&self, table: Table) -> &WatchTable {
        match table {
            Table::Data => &self.data,
            Table::Child => &self.child,
        }
    }

    /// Registers (or re-registers with a new mode) `conn`'s watch on `path`.
    pub(crate) fn add(&mut self, table: Table, path: &str, conn: ConnId, mode: Mode) {
        let t = self.table(table);
        let entries = t.by_path.entry(path.into()).or_default();
        match entries.iter_mut().find(|(c, _)| *c == conn) {
            Some(entry) => {
                if entry.1 == Mode::Recursive {
                    t.recursive -= 1;
                }
                entry.1 = mode;
            }
            None => entries.push((conn, mode)),
        }
        if mode == Mode::Recursive {
            t.recursive += 1;
        }
        self.by_conn.entry(conn).or_default().of(table).insert(path.into());
    }

    /// Whether `conn` has a watch of any mode on `path` (`WatchManager.containsWatcher`).
    pub(crate) fn contains(&self, table: Table, path: &str, conn: ConnId) -> bool {
        self.table_ref(table).by_path.get(path).is_some_and(|e| e.iter().any(|(c, _)| *c == conn))
    }

    /// Removes `conn`'s watch on `path`, whatever its mode; returns whether there was one.
    pub(crate) fn remove(&mut self, table: Table, path: &str, conn: ConnId) -> bool {
        let t = self.table(table);
        let Some(entries) = t.by_path.get_mut(path) else { return false };
        let Some(i) = entries.iter().position(|(c, _)| *c == conn) else { return false };
        let (_, mode) = entries.swap_remove(i);
        if mode == Mode::Recursive {
            t.recursive -= 1;
        }
        if entries.is_empty() {
            t.by_path.remove(path);
        }
        if let Some(p) = self.by_conn.get_mut(&conn) {
            p.of(table).remove(path);
        }
        true
    }

    /// Drops every watch of a closed connection.
    pub(crate) fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else { return };
        for (table, set) in [(Table::Data, paths.data), (Table::Child, paths.child)] {
            let t = self.table(table);
            for path in set {
                if let Some(entries) = t.by_path.get_mut(&path) {
                    entries.retain(|(c, m)| {
                        let drop = *c == conn;
                        if drop && *m == Mode::Recursive {
                            t.recursive -= 1;
                        }
                        !drop
                    });
                    if entries.is_empty() {
                        t.by_path.remove(&path);
                    }
                }
            }
        }
    }

    /// `WatchManager.triggerWatch`: the connections to notify of `event` on `path`, in
    /// discovery order, without the ones in `suppress`; one-shot watches that fire are removed.
    /// The returned list includes the connections later filtered out by ACL (the caller's job)
    /// but not the suppressed ones; `fired` receives every matched connection (suppressed or
    /// not), for use as the next trigger's `suppress`.
    pub(crate) fn trigger(
        &mut self,
        table: Table,
        path: &str,
        event: EventType,
        suppress: &[ConnId],
        fired: &mut Vec<ConnId>,
    ) -> Vec<ConnId> {
        fired.clear();
        let t = self.table(table);
        let walk_parents = t.recursive > 0;
        let mut removed: Vec<ConnId> = Vec::new();
        let mut local = Some(path);
        let mut at_parent = false;
        while let Some(p) = local {
            if let Some(entries) = t.by_path.get_mut(p) {
                entries.retain(|(c, mode)| {
                    if *mode == Mode::Recursive {
                        if event != EventType::NodeChildrenChanged && !fired.contains(c) {
                            fired.push(*c);
                        }
                        true
                    } else if !at_parent {
                        if !fired.contains(c) {
                            fired.push(*c);
                        }
                        if *mode == Mode::Standard {
                            removed.push(*c);
                            false
                        } else {
                            true
                        }
                    } else {
                        true
                    }
                });
                if entries.is_empty() {
                    t.by_path.remove(p);
                }
            }
            if !walk_parents {
                break;
            }
            local = crate::path::parent(p);
            at_parent = true;
        }
        for c in removed {
            if let Some(paths) = self.by_conn.get_mut(&c) {
                paths.of(table).remove(path);
            }
        }
        fired.iter().copied().filter(|c| !suppress.contains(c)).collect()
    }

    /// Counts for `wchs`/`mntr` (`wchs` counts the data table only, as ZooKeeper does).
    pub(crate) fn counts(&self) -> WatchCounts {
        WatchCounts {
            connections: self.by_conn.values().filter(|p| !p.data.is_empty()).count(),
            paths: self.data.by_path.len(),
            data_watches: self.data.by_path.values().map(Vec::len).sum(),
            child_watches: self.child.by_path.values().map(Vec::len).sum(),
        }
    }

    /// Data-table paths per connection (for `wchc`), sorted.
    pub(crate) fn data_paths_by_conn(&self) -> Vec<(ConnId, Vec<String>)> {
        let mut out: Vec<(ConnId, Vec<String>)> = self
            .by_conn
            .iter()
            .filter(|(_, p)| !p.data.is_empty())
            .map(|(c, p)| {
                let mut v: Vec<String> = p.data.iter().map(|s| s.to_string()).collect();
                v.sort();
                (*c, v)
            })
            .collect();
        out.sort_by_key(|(c, _)| *c);
        out
    }

    /// Data-table connections per path (for `wchp`), sorted.
    pub(crate) fn data_conns_by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let mut out: Vec<(String, Vec<ConnId>)> = self
            .data
            .by_path
            .iter()
            .map(|(p, e)| {
                let mut v: Vec<ConnId> = e.iter().map(|(c, _)| *c).collect();
                v.sort_unstable();
                (p.to_string(), v)
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    fn fire(w: &mut Watches, table: Table, path: &str, ev: EventType) -> Vec<ConnId> {
        w.trigger(table, path, ev, &[], &mut Vec::new())
    }

    #[test]
    fn standard_watches_fire_once() {
        let mut w = Watches::default();
        w.add(Table::Data, "/a", 1, Mode::Standard);
        w.add(Table::Data, "/a", 2, Mode::Standard);
        assert_eq!(fire(&mut w, Table::Data, "/a", NodeDataChanged), vec![1, 2]);
        assert!(fire(&mut w, Table::Data, "/a", NodeDataChanged).is_empty());
        assert!(!w.contains(Table::Data, "/a", 1));
    }

    #[test]
    fn persistent_watches_stay_and_only_match_the_exact_path() {
        let mut w = Watches::default();
        w.add(Table::Data, "/a", 1, Mode::Persistent);
        w.add(Table::Child, "/a", 1, Mode::Persistent);
        assert_eq!(fire(&mut w, Table::Data, "/a", NodeDataChanged), vec![1]);
        assert_eq!(fire(&mut w, Table::Data, "/a", NodeDeleted), vec![1]);
        assert_eq!(fire(&mut w, Table::Child, "/a", NodeChildrenChanged), vec![1]);
        assert!(fire(&mut w, Table::Data, "/a/b", NodeCreated).is_empty());
        assert!(w.contains(Table::Data, "/a", 1));
    }

    #[test]
    fn recursive_watches_cover_descendants_but_not_child_events() {
        let mut w = Watches::default();
        // addWatch(mode 1) registers in both tables, as 3.8.0 does.
        w.add(Table::Data, "/a", 1, Mode::Recursive);
        w.add(Table::Child, "/a", 1, Mode::Recursive);
        assert_eq!(fire(&mut w, Table::Data, "/a/b/c", NodeCreated), vec![1]);
        assert_eq!(fire(&mut w, Table::Data, "/a", NodeDataChanged), vec![1]);
        assert!(fire(&mut w, Table::Child, "/a", NodeChildrenChanged).is_empty());
        assert!(fire(&mut w, Table::Child, "/a/b", NodeChildrenChanged).is_empty());
        assert!(fire(&mut w, Table::Data, "/ab", NodeCreated).is_empty());
        w.add(Table::Data, "/", 2, Mode::Recursive);
        assert_eq!(fire(&mut w, Table::Data, "/x", NodeCreated), vec![2]);
    }

    #[test]
    fn one_event_per_connection_and_last_mode_wins() {
        let mut w = Watches::default();
        w.add(Table::Data, "/a", 1, Mode::Recursive);
        w.add(Table::Data, "/a/b", 1, Mode::Standard);
        assert_eq!(fire(&mut w, Table::Data, "/a/b", NodeDataChanged), vec![1]);
        // A standard registration after a persistent one downgrades it (ZOOKEEPER-4466).
        w.add(Table::Data, "/p", 3, Mode::Persistent);
        w.add(Table::Data, "/p", 3, Mode::Standard);
        assert_eq!(fire(&mut w, Table::Data, "/p", NodeDataChanged), vec![3]);
        assert!(fire(&mut w, Table::Data, "/p", NodeDataChanged).is_empty());
    }

    #[test]
    fn suppression_and_connection_cleanup() {
        let mut w = Watches::default();
        w.add(Table::Data, "/d", 1, Mode::Standard);
        w.add(Table::Child, "/d", 1, Mode::Standard);
        w.add(Table::Child, "/d", 2, Mode::Standard);
        let mut fired = Vec::new();
        assert_eq!(w.trigger(Table::Data, "/d", NodeDeleted, &[], &mut fired), vec![1]);
        let data_fired = fired.clone();
        assert_eq!(w.trigger(Table::Child, "/d", NodeDeleted, &data_fired, &mut fired), vec![2]);
        assert!(!w.contains(Table::Child, "/d", 1), "a suppressed one-shot watch is still consumed");
        w.add(Table::Data, "/x", 5, Mode::Recursive);
        w.add(Table::Child, "/y", 5, Mode::Standard);
        w.remove_conn(5);
        assert!(fire(&mut w, Table::Data, "/x/z", NodeCreated).is_empty());
        assert_eq!(w.counts(), WatchCounts { connections: 0, paths: 0, data_watches: 0, child_watches: 0 });
        assert_eq!(w.data.recursive, 0);
    }
}
