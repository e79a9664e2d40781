//! Watches end to end through the apply layer: what each request registers, what each change
//! fires, one event per connection, READ filtering, checkWatches/removeWatches/addWatch and the
//! setWatches replay. Reference: zookeeper-protocol.md section 8, as measured on 3.8.0.

use bytes::Bytes;

use super::harness::*;
use crate::proto::{CreateMode, ErrorCode, EventType, Perms, Request, SetWatches};
use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};

fn set(path: &str) -> Request {
    Request::SetData { path: path.into(), data: Some(Bytes::from_static(b"x")), version: -1 }
}

fn del(path: &str) -> Request {
    Request::Delete { path: path.into(), version: -1 }
}

fn ev(t: EventType, p: &str) -> (EventType, String) {
    (t, p.to_string())
}

#[test]
fn standard_watches_fire_once_with_the_right_types() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut w = h.client();
    h.create(&mut c, "/a", 0);
    h.req(&mut w, &Request::Exists { path: "/b".into(), watch: true });
    h.req(&mut w, &Request::GetData { path: "/a".into(), watch: true });
    h.req(&mut w, &Request::GetChildren { path: "/".into(), watch: true });
    h.req(&mut w, &Request::GetChildren2 { path: "/a".into(), watch: true });
    h.create(&mut c, "/b", 0);
    h.req(&mut c, &set("/a"));
    h.create(&mut c, "/a/k", 0);
    h.create(&mut c, "/c", 0);
    h.req(&mut c, &set("/a"));
    assert_eq!(
        h.events(&mut w),
        vec![
            ev(NodeCreated, "/b"),
            ev(NodeChildrenChanged, "/"),
            ev(NodeDataChanged, "/a"),
            ev(NodeChildrenChanged, "/a")
        ]
    );
    // setACL and check fire nothing.
    h.req(&mut w, &Request::GetData { path: "/a".into(), watch: true });
    h.req(&mut c, &Request::SetAcl { path: "/a".into(), acl: crate::proto::Acl::open_unsafe(), version: -1 });
    h.req(&mut c, &Request::Multi(vec![Request::Check { path: "/a".into(), version: -1 }]));
    assert!(h.events(&mut w).is_empty());
}

#[test]
fn a_writer_sees_its_own_event_before_its_reply() {
    let mut h = Harness::new();
    let mut c = h.client();
    h.create(&mut c, "/a", 0);
    h.req(&mut c, &Request::GetData { path: "/a".into(), watch: true });
    // Harness::req asserts that notifications precede the reply in the outbox.
    h.req(&mut c, &set("/a"));
    assert_eq!(c.events, vec![ev(NodeDataChanged, "/a")]);
}

#[test]
fn delete_tells_each_connection_once() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut w = h.client();
    let mut w2 = h.client();
    h.create(&mut c, "/d", 0);
    h.req(&mut w, &Request::GetData { path: "/d".into(), watch: true });
    h.req(&mut w, &Request::GetChildren { path: "/d".into(), watch: true });
    h.req(&mut w2, &Request::GetChildren { path: "/d".into(), watch: true });
    h.req(&mut w2, &Request::GetChildren { path: "/".into(), watch: true });
    h.req(&mut c, &del("/d"));
    assert_eq!(h.events(&mut w), vec![ev(NodeDeleted, "/d")]);
    assert_eq!(h.events(&mut w2), vec![ev(NodeDeleted, "/d"), ev(NodeChildrenChanged, "/")]);
    assert_eq!(
        h.req(&mut w, &Request::CheckWatches { path: "/d".into(), watcher_type: 1 }).err(),
        ErrorCode::NoWatcher
    );
}

#[test]
fn persistent_and_recursive_watches_as_in_3_8_0() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut w = h.client();
    h.create(&mut c, "/p", 0);
    assert_eq!(
        h.req(&mut w, &Request::AddWatch { path: "/p".into(), mode: 0 }).body,
        Some(crate::proto::Response::Code(0))
    );
    h.create(&mut c, "/p/a", 0);
    h.req(&mut c, &set("/p"));
    h.req(&mut c, &set("/p/a"));
    h.req(&mut c, &del("/p/a"));
    assert_eq!(
        h.events(&mut w),
        vec![ev(NodeChildrenChanged, "/p"), ev(NodeDataChanged, "/p"), ev(NodeChildrenChanged, "/p")],
        "persistent: the node's own events and its child-list changes, not the children's"
    );
    // A recursive watch on the same path replaces the mode in both tables: descendants' events
    // arrive, child-list changes no longer do (3.8.0, before ZOOKEEPER-4466).
    h.req(&mut w, &Request::AddWatch { path: "/p".into(), mode: 1 });
    h.create(&mut c, "/p/a", 0);
    h.req(&mut c, &set("/p"));
    h.create(&mut c, "/p/a/b", 0);
    h.req(&mut c, &set("/p/a/b"));
    h.req(&mut c, &del("/p/a/b"));
    assert_eq!(
        h.events(&mut w),
        vec![
            ev(NodeCreated, "/p/a"),
            ev(NodeDataChanged, "/p"),
            ev(NodeCreated, "/p/a/b"),
            ev(NodeDataChanged, "/p/a/b"),
            ev(NodeDeleted, "/p/a/b")
        ]
    );
    // 3.8.0 knows only watcher types 1-3: the persistent types are a marshalling error.
    for t in [4, 5, 9] {
        assert_eq!(
            h.req(&mut w, &Request::CheckWatches { path: "/p".into(), watcher_type: t }).err(),
            ErrorCode::MarshallingError
        );
        assert_eq!(
            h.req(&mut w, &Request::RemoveWatches { path: "/p".into(), watcher_type: t }).err(),
            ErrorCode::MarshallingError
        );
    }
    assert_eq!(h.req(&mut w, &Request::AddWatch { path: "/p".into(), mode: 5 }).err(), ErrorCode::MarshallingError);
    // Data and Children see the recursive entries of each table; Any removes both.
    assert_eq!(h.req(&mut w, &Request::CheckWatches { path: "/p".into(), watcher_type: 2 }).header.err, 0);
    assert_eq!(h.req(&mut w, &Request::RemoveWatches { path: "/p".into(), watcher_type: 3 }).header.err, 0);
    assert_eq!(
        h.req(&mut w, &Request::RemoveWatches { path: "/p".into(), watcher_type: 3 }).err(),
        ErrorCode::NoWatcher
    );
    h.req(&mut c, &set("/p"));
    assert!(h.events(&mut w).is_empty());
    // A persistent watch survives the node's deletion and sees it come back.
    h.req(&mut w, &Request::AddWatch { path: "/p/a".into(), mode: 0 });
    h.req(&mut c, &del("/p/a"));
    h.create(&mut c, "/p/a", 0);
    assert_eq!(h.events(&mut w), vec![ev(NodeDeleted, "/p/a"), ev(NodeCreated, "/p/a")]);
    // A later one-shot registration downgrades the persistent watch.
    h.req(&mut w, &Request::GetData { path: "/p/a".into(), watch: true });
    h.req(&mut c, &set("/p/a"));
    h.req(&mut c, &set("/p/a"));
    assert_eq!(h.events(&mut w), vec![ev(NodeDataChanged, "/p/a")]);
}

#[test]
fn one_event_per_connection_per_trigger() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut w = h.client();
    h.create(&mut c, "/a", 0);
    h.req(&mut w, &Request::AddWatch { path: "/".into(), mode: 1 });
    h.req(&mut w, &Request::GetData { path: "/a".into(), watch: true });
    h.req(&mut w, &Request::Exists { path: "/a".into(), watch: true });
    h.req(&mut c, &set("/a"));
    assert_eq!(h.events(&mut w), vec![ev(NodeDataChanged, "/a")]);
}

#[test]
fn events_are_filtered_by_read_permission() {
    // CVE-2024-23944, fixed in Debian's 3.8.0-11+deb12u2: a watcher without READ on the node
    // (or on the parent, for NodeChildrenChanged) gets no event; a one-shot watch is still used.
    let mut h = Harness::new();
    let mut bob = h.client();
    let mut w = h.client();
    h.auth(&mut bob, "bob", "pw");
    h.create(&mut bob, "/open", 0);
    let secret = |p: &str| {
        let mut r = create_req(p, b"", 0);
        r.acl = vec![digest_acl(Perms::ALL, "bob", "pw")];
        Request::Create(r)
    };
    h.req(&mut bob, &secret("/open/secret"));
    assert!(h.stat(&mut w, "/open/secret").is_ok(), "exists needs no READ and sets a watch");
    h.req(&mut w, &Request::Exists { path: "/open/secret".into(), watch: true });
    h.req(&mut w, &Request::Exists { path: "/open/secret2".into(), watch: true });
    h.req(&mut w, &Request::GetChildren { path: "/open".into(), watch: true });
    h.req(&mut w, &Request::AddWatch { path: "/".into(), mode: 1 });
    h.req(&mut bob, &set("/open/secret"));
    h.req(&mut bob, &secret("/open/secret2"));
    h.create(&mut bob, "/open/pub", 0);
    h.req(&mut bob, &del("/open/secret"));
    assert_eq!(h.events(&mut w), vec![ev(NodeChildrenChanged, "/open"), ev(NodeCreated, "/open/pub")]);
    assert_eq!(
        h.req(&mut w, &Request::CheckWatches { path: "/open/secret2".into(), watcher_type: 2 }).err(),
        ErrorCode::NoWatcher,
        "the filtered one-shot watch was consumed"
    );
}

#[test]
fn set_watches_replays_against_relative_zxid() {
    let mut h = Harness::new();
    let mut c = h.client();
    h.create(&mut c, "/sw1", 0);
    h.create(&mut c, "/sw2", 0);
    let rel = h.st.zxid;
    h.req(&mut c, &set("/sw1"));
    h.create(&mut c, "/sw2/k", 0);
    h.create(&mut c, "/sw3", 0);
    let mut v = h.client();
    let sw = SetWatches {
        relative_zxid: rel,
        data_watches: vec!["/sw1".into(), "/sw2".into(), "/gone".into()],
        exist_watches: vec!["/sw3".into(), "/nx".into(), "/sw2".into()],
        child_watches: vec!["/sw2".into(), "/sw1".into(), "/gone2".into()],
        ..Default::default()
    };
    let r = h.req(&mut v, &Request::SetWatches(sw));
    assert_eq!((r.header.err, r.header.zxid, r.body), (0, h.st.zxid, Some(crate::proto::Response::Empty)));
    // Events as a real 3.8.0 sent them, before the reply.
    assert_eq!(
        std::mem::take(&mut v.events),
        vec![
            ev(NodeDataChanged, "/sw1"),
            ev(NodeDeleted, "/gone"),
            ev(NodeCreated, "/sw3"),
            ev(NodeCreated, "/sw2"),
            ev(NodeChildrenChanged, "/sw2"),
            ev(NodeDeleted, "/gone2"),
        ]
    );
    let check = |h: &mut Harness, v: &mut Client, p: &str, t: i32| {
        h.req(v, &Request::CheckWatches { path: p.into(), watcher_type: t }).header.err == 0
    };
    assert!(!check(&mut h, &mut v, "/sw1", 2), "fired, not re-registered");
    assert!(check(&mut h, &mut v, "/sw2", 2), "unchanged: re-registered");
    assert!(check(&mut h, &mut v, "/sw1", 1));
    assert!(check(&mut h, &mut v, "/nx", 2), "exists watch on a missing node");
    // setWatches2: persistent lists are re-registered with no catch-up event.
    let sw2 = SetWatches {
        relative_zxid: 0,
        persistent_watches: vec!["/sw1".into()],
        persistent_recursive_watches: vec!["/r".into()],
        ..Default::default()
    };
    h.req(&mut v, &Request::SetWatches2(sw2));
    assert!(v.events.is_empty());
    h.req(&mut c, &set("/sw1"));
    h.create(&mut c, "/r", 0);
    h.create(&mut c, "/r/x", 0);
    assert_eq!(h.events(&mut v), vec![ev(NodeDataChanged, "/sw1"), ev(NodeCreated, "/r"), ev(NodeCreated, "/r/x")]);
}

#[test]
fn watches_die_with_their_connection() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut w = h.client();
    h.create(&mut c, "/a", 0);
    h.req(&mut w, &Request::GetData { path: "/a".into(), watch: true });
    h.req(&mut w, &Request::AddWatch { path: "/".into(), mode: 1 });
    h.st.remove_conn(w.conn);
    h.req(&mut c, &set("/a"));
    assert!(h.events(&mut w).is_empty());
    assert_eq!(h.st.watches.counts().data_watches, 0);
    // The session itself lives on.
    assert!(h.st.sessions.get(w.session).is_some());
    let _ = CreateMode::Persistent;
}
