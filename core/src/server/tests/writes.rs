//! The write path through the apply layer: happy paths, stat effects, every error in
//! ZooKeeper's check order, sequence numbering, zxid accounting and multi.
//! Reference: zookeeper-protocol.md sections 4-7, as corrected by measurements on 3.8.0.

use bytes::Bytes;

use super::harness::*;
use crate::proto::{Acl, CreateMode, ErrorCode, MultiResult, Perms, Request, Response};
use ErrorCode::*;

fn err(h: &mut Harness, c: &mut Client, req: Request) -> ErrorCode {
    h.req(c, &req).err()
}

#[test]
fn create_sets_every_stat_field_and_the_parents() {
    // zookeeper-protocol.md 4.2: create sets czxid=mzxid=pzxid=zxid, ctime=mtime; the parent
    // gets cversion+1, pzxid, numChildren+1 and nothing else.
    let mut h = Harness::new();
    let mut c = h.client();
    assert_eq!(h.st.zxid, 1, "createSession consumed zxid 1");
    h.advance(5);
    let r = h.req(&mut c, &Request::Create2(create_req("/a", b"hello", 0)));
    assert_eq!(r.header.err, 0);
    assert_eq!(r.header.zxid, 2);
    let s = r.stat();
    assert_eq!((s.czxid, s.mzxid, s.pzxid), (2, 2, 2));
    assert_eq!((s.ctime, s.mtime), (WALL0 + 5, WALL0 + 5));
    assert_eq!((s.version, s.cversion, s.aversion, s.ephemeral_owner), (0, 0, 0, 0));
    assert_eq!((s.data_length, s.num_children), (5, 0));
    let root = h.stat(&mut c, "/").unwrap();
    assert_eq!((root.cversion, root.pzxid, root.num_children, root.mzxid, root.version), (0, 2, 2, 0, 0));
    // Plain create answers the path only; ephemeral nodes show their owner.
    let r = h.req(&mut c, &Request::Create(create_req("/e", b"", CreateMode::Ephemeral as i32)));
    assert_eq!(r.body, Some(Response::Path("/e".into())));
    assert_eq!(h.stat(&mut c, "/e").unwrap().ephemeral_owner, c.session);
    // A read does not consume a zxid and carries the last one.
    let r = h.req(&mut c, &Request::GetData { path: "/a".into(), watch: false });
    assert_eq!(r.header.zxid, 3);
    assert_eq!(r.body, Some(Response::Data { data: Some(Bytes::from_static(b"hello")), stat: s }));
}

#[test]
fn null_and_empty_data_stay_apart() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut req = create_req("/n", b"", 0);
    req.data = None;
    h.req(&mut c, &Request::Create(req));
    let r = h.req(&mut c, &Request::GetData { path: "/n".into(), watch: false });
    assert!(matches!(r.body, Some(Response::Data { data: None, stat }) if stat.data_length == 0));
    h.req(&mut c, &Request::SetData { path: "/n".into(), data: Some(Bytes::new()), version: -1 });
    let r = h.req(&mut c, &Request::GetData { path: "/n".into(), watch: false });
    assert!(matches!(r.body, Some(Response::Data { data: Some(d), .. }) if d.is_empty()));
}

#[test]
fn create_errors_in_zookeepers_order() {
    let mut h = Harness::with(super::super::Config { ttl_enabled: false, ..config() });
    let mut c = h.client();
    let mut bob = h.client();
    h.auth(&mut bob, "bob", "secret");
    let only_bob = vec![digest_acl(Perms::ALL, "bob", "secret")];
    let mut locked = create_req("/locked", b"", 0);
    locked.acl = only_bob;
    assert_eq!(h.req(&mut bob, &Request::Create(locked)).header.err, 0);
    h.create(&mut bob, "/locked/kid", 0);
    h.create(&mut c, "/eph", CreateMode::Ephemeral as i32);
    let with_acl = |path: &str, acl: Vec<Acl>| {
        let mut r = create_req(path, b"", 0);
        r.acl = acl;
        Request::Create(r)
    };
    // 1. flags; 2. TTL disabled is UNIMPLEMENTED before anything else (even a bad path).
    assert_eq!(h.create(&mut c, "/x", 7).err(), BadArguments);
    assert_eq!(h.create(&mut c, "noslash", 5).err(), Unimplemented);
    assert_eq!(err(&mut h, &mut c, Request::CreateTtl(create_req("/x", b"", 6))), Unimplemented);
    // 4. no slash or NUL.
    assert_eq!(h.create(&mut c, "noslash", 0).err(), BadArguments);
    assert_eq!(h.create(&mut c, "/a\0b", 0).err(), BadArguments);
    assert_eq!(h.create(&mut c, "", 0).err(), BadArguments);
    // 5. ACL before the parent lookup and before permissions.
    assert_eq!(err(&mut h, &mut c, with_acl("/nope/x", vec![acl(Perms::ALL, "world", "x")])), InvalidAcl);
    assert_eq!(err(&mut h, &mut c, with_acl("/locked/y", vec![acl(Perms::ALL, "world", "x")])), InvalidAcl);
    assert_eq!(err(&mut h, &mut c, with_acl("/x", vec![])), InvalidAcl);
    assert_eq!(err(&mut h, &mut c, with_acl("/x", vec![acl(Perms::ALL, "auth", "")])), InvalidAcl);
    // 6. parent; the parent of /a//b is "/a/", which does not exist.
    assert_eq!(h.create(&mut c, "/nope/child", 0).err(), NoNode);
    assert_eq!(h.create(&mut c, "/eph//b", 0).err(), NoNode);
    // 7. CREATE on the parent wins over NODEEXISTS and over a bad final path.
    assert_eq!(h.create(&mut c, "/locked/kid", 0).err(), NoAuth);
    assert_eq!(h.create(&mut c, "/locked/.", 0).err(), NoAuth);
    // 9. the final path.
    assert_eq!(h.create(&mut c, "/eph/", 0).err(), BadArguments);
    assert_eq!(h.create(&mut c, "/eph/.", 0).err(), BadArguments);
    assert_eq!(h.create(&mut c, "/\u{1f600}", 0).err(), BadArguments);
    // 10. exists, before 11. the ephemeral parent.
    assert_eq!(h.create(&mut c, "/eph", 0).err(), NodeExists);
    assert_eq!(h.create(&mut c, "/", 0).err(), NodeExists);
    assert_eq!(h.create(&mut c, "/eph/kid", 0).err(), NoChildrenForEphemerals);
    // The reserved subtree is writable, except /zookeeper/config (READ only).
    assert_eq!(h.create(&mut c, "/zookeeper/x", 0).header.err, 0);
    assert_eq!(h.create(&mut c, "/zookeeper/config/x", 0).err(), NoAuth);
}

#[test]
fn ttl_and_container_create_rules() {
    let mut h = Harness::new();
    let mut c = h.client();
    let ttl = |path: &str, flags: i32, ttl: i64| {
        let mut r = create_req(path, b"", flags);
        r.ttl = ttl;
        Request::CreateTtl(r)
    };
    assert_eq!(err(&mut h, &mut c, ttl("/t", 5, 0)), BadArguments);
    assert_eq!(err(&mut h, &mut c, ttl("/t", 5, -1)), BadArguments);
    assert_eq!(err(&mut h, &mut c, ttl("/t", 5, 0x0100_0000_0000)), BadArguments);
    // A non-TTL mode through createTTL (3.8.0 crashes on it when the TTL is negative).
    assert_eq!(err(&mut h, &mut c, ttl("/t", 0, -1)), BadArguments);
    assert_eq!(err(&mut h, &mut c, ttl("/t", 0, 100)), BadArguments);
    // TTL flags through create/create2/createContainer carry no TTL: BADARGUMENTS.
    assert_eq!(h.create(&mut c, "/t", 5).err(), BadArguments);
    assert_eq!(err(&mut h, &mut c, Request::CreateContainer(create_req("/t", b"", 5))), BadArguments);
    let r = h.req(&mut c, &ttl("/t", 5, 0x00ff_ffff_ffff));
    assert_eq!(r.header.err, 0);
    assert_eq!(r.stat().ephemeral_owner, 0, "TTL nodes show owner 0");
    let r = h.req(&mut c, &ttl("/t/", 6, 1000));
    assert_eq!(r.path(), "/t/0000000000", "TTL nodes may have children; sequential TTL works");
    // Opcode 19 makes a container whatever the flags; a sequential flag still adds the suffix.
    let r = h.req(&mut c, &Request::CreateContainer(create_req("/c", b"", 1)));
    assert!(matches!(&r.body, Some(Response::Created { stat, .. }) if stat.ephemeral_owner == 0));
    assert!(matches!(h.st.tree.get("/c").unwrap().kind(), super::super::tree::Owner::Container));
    let r = h.req(&mut c, &Request::CreateContainer(create_req("/c", b"", 2)));
    assert!(r.path().starts_with("/c00000000"));
    // Flag 4 through plain create makes a persistent node.
    h.create(&mut c, "/p4", 4);
    assert!(matches!(h.st.tree.get("/p4").unwrap().kind(), super::super::tree::Owner::None));
}

#[test]
fn delete_errors_in_zookeepers_order_and_stat_effects() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut bob = h.client();
    h.auth(&mut bob, "bob", "secret");
    let mut locked = create_req("/locked", b"", 0);
    locked.acl = vec![digest_acl(Perms::ALL, "bob", "secret"), acl(Perms::READ, "world", "anyone")];
    h.req(&mut bob, &Request::Create(locked));
    h.create(&mut bob, "/locked/kid", 0);
    h.create(&mut c, "/a", 0);
    h.create(&mut c, "/a/b", 0);
    let del = |p: &str, v: i32| Request::Delete { path: p.into(), version: v };
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config", "x", "", "/a\0"] {
        assert_eq!(err(&mut h, &mut c, del(p, -1)), BadArguments, "{p:?}");
    }
    assert_eq!(err(&mut h, &mut c, del("/nope/x", -1)), NoNode);
    // DELETE on the parent wins over the node's own NONODE and BADVERSION.
    assert_eq!(err(&mut h, &mut c, del("/locked/none", -1)), NoAuth);
    assert_eq!(err(&mut h, &mut c, del("/locked/kid", 9)), NoAuth);
    // No path validation: these just miss.
    assert_eq!(err(&mut h, &mut c, del("/a/", -1)), NoNode);
    assert_eq!(err(&mut h, &mut c, del("/a/..", -1)), NoNode);
    // BADVERSION wins over NOTEMPTY.
    assert_eq!(err(&mut h, &mut c, del("/a", 5)), BadVersion);
    assert_eq!(err(&mut h, &mut c, del("/a", -1)), NotEmpty);
    let before = h.stat(&mut c, "/a").unwrap();
    let r = h.req(&mut c, &del("/a/b", 0));
    assert_eq!((r.header.err, r.body), (0, Some(Response::Empty)));
    let after = h.stat(&mut c, "/a").unwrap();
    assert_eq!(after.cversion, before.cversion + 1, "clients see deletes in cversion");
    assert_eq!((after.num_children, after.pzxid), (0, r.header.zxid));
    assert_eq!((after.mzxid, after.version), (before.mzxid, before.version));
}

#[test]
fn set_data_and_set_acl() {
    let mut h = Harness::new();
    let mut c = h.client();
    h.create(&mut c, "/a", 0);
    let set = |v: i32| Request::SetData { path: "/a".into(), data: Some(Bytes::from_static(b"xy")), version: v };
    assert_eq!(err(&mut h, &mut c, Request::SetData { path: "a".into(), data: None, version: -1 }), BadArguments);
    assert_eq!(err(&mut h, &mut c, Request::SetData { path: "/a/".into(), data: None, version: -1 }), BadArguments);
    assert_eq!(err(&mut h, &mut c, Request::SetData { path: "/b".into(), data: None, version: -1 }), NoNode);
    assert_eq!(err(&mut h, &mut c, set(3)), BadVersion);
    h.advance(7);
    let r = h.req(&mut c, &set(0));
    let s = r.stat();
    assert_eq!((s.version, s.mzxid, s.mtime, s.data_length), (1, r.header.zxid, WALL0 + 7, 2));
    assert_ne!(s.mzxid, s.czxid);
    // Identical data still makes a new version.
    assert_eq!(h.req(&mut c, &set(-1)).stat().version, 2);
    // setACL: path, then ACL validity (before NONODE), then NONODE, ADMIN, version on aversion.
    let sa = |p: &str, acl: Vec<Acl>, v: i32| Request::SetAcl { path: p.into(), acl, version: v };
    let bad = vec![acl(Perms::ALL, "world", "foo")];
    assert_eq!(err(&mut h, &mut c, sa("bad", bad.clone(), -1)), BadArguments);
    assert_eq!(err(&mut h, &mut c, sa("/none", bad, -1)), InvalidAcl);
    assert_eq!(err(&mut h, &mut c, sa("/none", Acl::open_unsafe(), -1)), NoNode);
    assert_eq!(err(&mut h, &mut c, sa("/a", Acl::open_unsafe(), 1)), BadVersion);
    let before = h.stat(&mut c, "/a").unwrap();
    let r = h.req(&mut c, &sa("/a", Acl::read_unsafe(), 0));
    let s = r.stat();
    assert_eq!(s.aversion, 1);
    assert_eq!(
        (s.mzxid, s.version, s.mtime),
        (before.mzxid, before.version, before.mtime),
        "setACL changes aversion only"
    );
    assert_eq!(err(&mut h, &mut c, set(-1)), NoAuth, "now READ only");
    assert_eq!(err(&mut h, &mut c, sa("/a", Acl::open_unsafe(), -1)), NoAuth, "and no ADMIN");
    // /zookeeper/config is READ-only; / is writable.
    assert_eq!(
        err(&mut h, &mut c, Request::SetData { path: "/zookeeper/config".into(), data: None, version: -1 }),
        NoAuth
    );
    assert_eq!(err(&mut h, &mut c, Request::SetData { path: "/".into(), data: None, version: -1 }), Ok);
}

#[test]
fn version_arithmetic_wraps_like_3_8_0() {
    let mut h = Harness::new();
    let mut c = h.client();
    h.create(&mut c, "/v", 0);
    // 3.8.0's checkAndIncVersion has no special case: MAX + 1 wraps to MIN.
    h.st.tree.set_data("/v", None, i32::MAX, 1, 1);
    let r = h.req(&mut c, &Request::SetData { path: "/v".into(), data: None, version: i32::MAX });
    assert_eq!(r.stat().version, i32::MIN);
}

#[test]
fn sequence_numbers_come_from_the_persisted_counter() {
    // zookeeper-protocol.md 4.3.
    let mut h = Harness::new();
    let mut c = h.client();
    h.create(&mut c, "/q", 0);
    assert_eq!(h.create(&mut c, "/q/x", 2).path(), "/q/x0000000000");
    h.req(&mut c, &Request::Delete { path: "/q/x0000000000".into(), version: -1 });
    assert_eq!(h.stat(&mut c, "/q").unwrap().cversion, 2, "visible cversion counts the delete");
    assert_eq!(h.create(&mut c, "/q/", 2).path(), "/q/0000000001", "the suffix does not");
    assert_eq!(h.create(&mut c, "/q/e-", 3).path(), "/q/e-0000000002");
    // Root: fresh cversion -1 visible, first sequential child of / is 0000000000.
    assert_eq!(h.stat(&mut c, "/").unwrap().cversion, 0);
    assert_eq!(h.create(&mut c, "/", 2).path(), "/0000000001");
    // A suffix that names an existing node is NODEEXISTS; the server does not skip ahead.
    h.create(&mut c, "/q/d0000000004", 0);
    assert_eq!(h.create(&mut c, "/q/d", 2).err(), NodeExists);
    assert_eq!(h.create(&mut c, "/q/d", 2).err(), NodeExists, "a failed create does not move the counter");
}

#[test]
fn negative_counters_format_like_java_and_max_sticks() {
    let mut h = Harness::new();
    let mut c = h.client();
    h.create(&mut c, "/q", 0);
    assert!(h.st.tree.set_cversion("/q", -5));
    assert_eq!(h.create(&mut c, "/q/n", 2).path(), "/q/n-000000005");
    assert_eq!(h.create(&mut c, "/q/n", 2).path(), "/q/n-000000004");
    h.st.tree.set_cversion("/q", i32::MIN);
    assert_eq!(h.create(&mut c, "/q/m", 2).path(), "/q/m-2147483648");
    // At MAX, 3.8.0's "only store a larger counter" guard keeps it at MAX (and leaves pzxid):
    // the next sequential create collides with the node it just made.
    h.st.tree.set_cversion("/q", i32::MAX);
    let pzxid = h.stat(&mut c, "/q").unwrap().pzxid;
    assert_eq!(h.create(&mut c, "/q/s", 2).path(), "/q/s2147483647");
    assert_eq!(h.stat(&mut c, "/q").unwrap().pzxid, pzxid);
    assert_eq!(h.create(&mut c, "/q/s", 2).err(), NodeExists);
    // Inside one multi the pending counter does wrap: the second create gets the negative one.
    h.req(&mut c, &Request::Delete { path: "/q/s2147483647".into(), version: -1 });
    let r = h.req(
        &mut c,
        &Request::Multi(vec![Request::Create(create_req("/q/t", b"", 2)), Request::Create(create_req("/q/t", b"", 2))]),
    );
    assert_eq!(
        r.body,
        Some(Response::Multi(vec![
            MultiResult::Create { path: "/q/t2147483647".into() },
            MultiResult::Create { path: "/q/t-2147483648".into() }
        ]))
    );
}

#[test]
fn every_write_consumes_a_zxid_even_when_it_fails() {
    let mut h = Harness::new();
    let mut c = h.client();
    let z0 = h.st.zxid;
    let r = h.create(&mut c, "/nope/x", 0);
    assert_eq!((r.err(), r.header.zxid), (NoNode, z0 + 1));
    let r = h.req(&mut c, &Request::Multi(vec![]));
    assert_eq!((r.header.err, r.header.zxid), (0, z0 + 2));
    assert_eq!(r.body, Some(Response::Multi(vec![])));
    let r = h.req(&mut c, &Request::Ping);
    assert_eq!((r.header.xid, r.header.zxid), (-2, z0 + 2));
    let r = h.req(&mut c, &Request::Sync { path: "/anything".into() });
    assert_eq!((r.header.zxid, r.body), (z0 + 2, Some(Response::Path("/anything".into()))));
    let r = h.req(
        &mut c,
        &Request::Reconfig { joining_servers: None, leaving_servers: None, new_members: None, cur_config_id: -1 },
    );
    assert_eq!((r.err(), r.header.zxid), (ReconfigDisabled, z0 + 3));
}

#[test]
fn multi_is_atomic_and_reports_per_op_results() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut w = h.client();
    h.create(&mut c, "/g", 0);
    h.req(&mut w, &Request::GetChildren { path: "/g".into(), watch: true });
    let z = h.st.zxid;
    let r = h.req(
        &mut c,
        &Request::Multi(vec![
            Request::Create(create_req("/g/s-", b"", 2)),
            Request::Create(create_req("/g/s-", b"", 2)),
            Request::Delete { path: "/missing".into(), version: -1 },
            Request::SetData { path: "/g".into(), data: None, version: -1 },
        ]),
    );
    assert_eq!((r.header.err, r.header.zxid), (0, z + 1), "header err 0, one zxid");
    assert_eq!(
        r.body,
        Some(Response::Multi(vec![
            MultiResult::error(Ok),
            MultiResult::error(Ok),
            MultiResult::error(NoNode),
            MultiResult::error(RuntimeInconsistency),
        ]))
    );
    assert!(h.st.tree.get("/g/s-0000000000").is_none(), "nothing applied");
    assert!(h.events(&mut w).is_empty(), "no watch fired");
    assert_eq!(h.create(&mut c, "/g/s-", 2).path(), "/g/s-0000000000", "counters rolled back");
    // A successful multi: later ops see earlier ones; 3.8.0 result types.
    h.req(&mut w, &Request::GetChildren { path: "/g".into(), watch: true });
    h.events(&mut w);
    let r = h.req(
        &mut c,
        &Request::Multi(vec![
            Request::Create(create_req("/g/a", b"", 0)),
            Request::Create2(create_req("/g/a/b", b"", 0)),
            Request::CreateContainer(create_req("/g/c", b"", 4)),
            Request::Check { path: "/g/a".into(), version: 0 },
            Request::SetData { path: "/g/a".into(), data: Some(Bytes::from_static(b"1")), version: 0 },
            Request::Delete { path: "/g/a/b".into(), version: -1 },
            Request::Create(create_req("/g/a/b", b"", 0)),
        ]),
    );
    let Some(Response::Multi(results)) = r.body else { panic!("{r:?}") };
    assert_eq!(results[0], MultiResult::Create { path: "/g/a".into() });
    assert_eq!(results[1], MultiResult::Create { path: "/g/a/b".into() }, "create2 downgraded (ZOOKEEPER-4026)");
    assert!(
        matches!(&results[2], MultiResult::Create2 { path, stat } if path == "/g/c" && stat.czxid == r.header.zxid)
    );
    assert_eq!(results[3], MultiResult::Check);
    assert!(matches!(results[4], MultiResult::SetData { stat } if stat.version == 1 && stat.num_children == 1));
    assert_eq!(results[5], MultiResult::Delete);
    assert_eq!(results[6], MultiResult::Create { path: "/g/a/b".into() });
    for p in ["/g/a", "/g/a/b", "/g/c"] {
        assert_eq!(h.stat(&mut c, p).unwrap().czxid, r.header.zxid, "{p}: one zxid for the whole multi");
    }
    assert_eq!(h.events(&mut w), vec![(crate::proto::EventType::NodeChildrenChanged, "/g".into())]);
    // Check failures.
    let r = h.req(
        &mut c,
        &Request::Multi(vec![
            Request::Check { path: "/g".into(), version: 7 },
            Request::Check { path: "/none".into(), version: -1 },
        ]),
    );
    assert_eq!(
        r.body,
        Some(Response::Multi(vec![MultiResult::error(BadVersion), MultiResult::error(RuntimeInconsistency)]))
    );
    let r = h.req(&mut c, &Request::Multi(vec![Request::Check { path: "bad".into(), version: -1 }]));
    assert_eq!(r.body, Some(Response::Multi(vec![MultiResult::error(BadArguments)])));
    let r = h.req(
        &mut c,
        &Request::Multi(vec![Request::Create(create_req("/x1", b"", 0)), Request::Create(create_req("/x1", b"", 0))]),
    );
    assert_eq!(r.body, Some(Response::Multi(vec![MultiResult::error(Ok), MultiResult::error(NodeExists)])));
}

#[test]
fn multi_read_has_no_atomicity_and_sets_no_watches() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut bob = h.client();
    h.auth(&mut bob, "bob", "pw");
    let mut locked = create_req("/locked", b"", 0);
    locked.acl = vec![digest_acl(Perms::ALL, "bob", "pw")];
    h.req(&mut bob, &Request::Create(locked));
    h.create(&mut c, "/a", 0);
    let r = h.req(
        &mut c,
        &Request::MultiRead(vec![
            Request::GetData { path: "/a".into(), watch: true },
            Request::GetData { path: "/zz".into(), watch: false },
            Request::GetChildren { path: "/locked".into(), watch: true },
            Request::GetChildren { path: "/a".into(), watch: true },
        ]),
    );
    assert_eq!(r.header.err, 0);
    let Some(Response::Multi(res)) = r.body else { panic!() };
    assert!(matches!(&res[0], MultiResult::GetData { stat, .. } if stat.czxid > 0));
    assert_eq!(res[1], MultiResult::error(NoNode));
    assert_eq!(res[2], MultiResult::error(NoAuth));
    assert_eq!(res[3], MultiResult::GetChildren { children: vec![] });
    h.req(&mut bob, &Request::SetData { path: "/a".into(), data: None, version: -1 });
    assert!(h.events(&mut c).is_empty(), "multiRead leaves no watch");
}
