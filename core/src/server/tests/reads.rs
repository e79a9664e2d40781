//! Reads, the permission each operation needs, auth, whoAmI and getEphemerals, through the
//! apply layer. Reference: zookeeper-protocol.md sections 3.4, 6.3 and 10, as measured on
//! ZooKeeper 3.8.0 (where `exists` checks no ACL).

use bytes::Bytes;

use super::harness::*;
use crate::proto::{AuthPacket, ClientInfo, CreateMode, ErrorCode, Perms, Request, Response};
use ErrorCode::*;

/// A node `/n` whose ACL grants `perms` to everyone and ALL to bob, with a child `/n/kid`.
fn node_with(h: &mut Harness, perms: Perms) -> (Client, Client) {
    let anon = h.client();
    let mut bob = h.client();
    h.auth(&mut bob, "bob", "pw");
    let mut req = create_req("/n", b"data", 0);
    req.acl = vec![acl(perms, "world", "anyone"), digest_acl(Perms::ALL, "bob", "pw")];
    assert_eq!(h.req(&mut bob, &Request::Create(req)).header.err, 0);
    assert_eq!(h.create(&mut bob, "/n/kid", 0).header.err, 0);
    (anon, bob)
}

#[test]
fn each_operation_needs_its_permission() {
    // zookeeper-protocol.md 10.5. For each permission bit: the ops that need it succeed with only
    // that bit and fail NOAUTH without it.
    let ops = |p: &str| -> Vec<(Perms, Request)> {
        vec![
            (Perms::READ, Request::GetData { path: p.into(), watch: false }),
            (Perms::READ, Request::GetChildren { path: p.into(), watch: false }),
            (Perms::READ, Request::GetChildren2 { path: p.into(), watch: false }),
            (Perms::READ, Request::GetAllChildrenNumber { path: p.into() }),
            (Perms::READ, Request::Multi(vec![Request::Check { path: p.into(), version: -1 }])),
            (Perms::WRITE, Request::SetData { path: p.into(), data: None, version: -1 }),
            (Perms::CREATE, Request::Create(create_req(&format!("{p}/new"), b"", 0))),
            (Perms::DELETE, Request::Delete { path: format!("{p}/kid"), version: -1 }),
            (Perms::ADMIN, Request::SetAcl { path: p.into(), acl: crate::proto::Acl::open_unsafe(), version: -1 }),
        ]
    };
    for (i, (need, _)) in ops("/n").into_iter().enumerate() {
        for granted in [need, Perms(Perms::ALL.0 & !need.0)] {
            let mut h = Harness::new();
            let (mut anon, _) = node_with(&mut h, granted);
            let (_, req) = ops("/n").swap_remove(i);
            let r = h.req(&mut anon, &req);
            let code = match &r.body {
                Some(Response::Multi(res)) => match &res[0] {
                    crate::proto::MultiResult::Error { err } => ErrorCode::from_i32(*err).unwrap(),
                    _ => Ok,
                },
                _ => r.err(),
            };
            let expect = if granted == need { Ok } else { NoAuth };
            assert_eq!(code, expect, "op #{i} needing {need:?} with {granted:?}");
        }
    }
}

#[test]
fn ops_that_need_no_permission() {
    let mut h = Harness::new();
    let (mut anon, _) = node_with(&mut h, Perms::NONE);
    // exists checks no ACL on 3.8.0 (ZOOKEEPER-2590 came later).
    assert!(h.stat(&mut anon, "/n").is_ok());
    for req in [
        Request::Sync { path: "/n".into() },
        Request::GetEphemerals { prefix: "/".into() },
        Request::WhoAmI,
        Request::AddWatch { path: "/n".into(), mode: 0 },
        Request::SetWatches(Default::default()),
    ] {
        assert_eq!(h.req(&mut anon, &req).header.err, 0, "{req:?}");
    }
}

#[test]
fn read_errors_nonode_before_noauth_and_no_watch_on_failure() {
    let mut h = Harness::new();
    let (mut anon, mut bob) = node_with(&mut h, Perms::NONE);
    assert_eq!(h.req(&mut anon, &Request::GetData { path: "/none".into(), watch: true }).err(), NoNode);
    assert_eq!(h.req(&mut anon, &Request::GetData { path: "/n".into(), watch: true }).err(), NoAuth);
    assert_eq!(h.req(&mut anon, &Request::GetChildren { path: "/n".into(), watch: true }).err(), NoAuth);
    assert_eq!(h.req(&mut anon, &Request::GetAcl { path: "/n".into() }).err(), NoAuth);
    assert_eq!(h.req(&mut anon, &Request::GetAcl { path: "/none".into() }).err(), NoNode);
    // No watch was left by the failed reads.
    assert_eq!(h.req(&mut anon, &Request::CheckWatches { path: "/n".into(), watcher_type: 3 }).err(), NoWatcher);
    assert_eq!(h.req(&mut anon, &Request::CheckWatches { path: "/none".into(), watcher_type: 3 }).err(), NoWatcher);
    // exists: NUL is BADARGUMENTS; a missing node leaves a watch and answers NONODE.
    assert_eq!(h.req(&mut anon, &Request::Exists { path: "/a\0".into(), watch: true }).err(), BadArguments);
    assert_eq!(h.req(&mut anon, &Request::Exists { path: "/none".into(), watch: true }).err(), NoNode);
    assert_eq!(h.req(&mut anon, &Request::CheckWatches { path: "/none".into(), watcher_type: 2 }).header.err, 0);
    // Reads do not validate paths; "" is the root.
    assert_eq!(h.req(&mut anon, &Request::GetData { path: "n".into(), watch: false }).err(), NoNode);
    assert_eq!(h.req(&mut anon, &Request::GetData { path: "".into(), watch: false }).header.err, 0);
    assert_eq!(h.stat(&mut bob, "").unwrap(), h.stat(&mut bob, "/").unwrap());
}

#[test]
fn get_acl_redacts_digests_without_admin() {
    let mut h = Harness::new();
    let (mut anon, mut bob) = node_with(&mut h, Perms::READ);
    let r = h.req(&mut anon, &Request::GetAcl { path: "/n".into() });
    let Some(Response::Acl { acl: shown, stat }) = r.body else { panic!() };
    assert_eq!(shown[1].id.id, "bob:x");
    assert_eq!(stat.num_children, 1);
    let r = h.req(&mut bob, &Request::GetAcl { path: "/n".into() });
    let Some(Response::Acl { acl: shown, .. }) = r.body else { panic!() };
    assert_eq!(shown[1], digest_acl(Perms::ALL, "bob", "pw"));
    // ADMIN alone is enough to read the ACL.
    let mut h = Harness::new();
    let (mut anon, _) = node_with(&mut h, Perms::ADMIN);
    assert_eq!(h.req(&mut anon, &Request::GetAcl { path: "/n".into() }).header.err, 0);
}

#[test]
fn children_come_back_in_java_hash_order() {
    let mut h = Harness::new();
    let mut c = h.client();
    for n in ["a", "m1", "m2", "m3", "m4", "ctr", "pers", "ctr2", "n1", "n2", "n3", "n4"] {
        h.create(&mut c, &format!("/{n}"), 0);
    }
    let r = h.req(&mut c, &Request::GetChildren2 { path: "/".into(), watch: false });
    let Some(Response::Children { children, stat }) = r.body else { panic!() };
    // As listed by a real 3.8.0 after the same creates.
    assert_eq!(children, ["ctr", "a", "pers", "n1", "zookeeper", "m1", "n2", "m2", "n3", "m3", "n4", "m4", "ctr2"]);
    assert_eq!(stat.num_children, 13);
    let r = h.req(&mut c, &Request::GetAllChildrenNumber { path: "/".into() });
    assert_eq!(r.body, Some(Response::Count(15)), "all nodes but the root, /zookeeper's included");
    h.create(&mut c, "/a/b", 0);
    h.create(&mut c, "/a/b/c", 0);
    assert_eq!(h.req(&mut c, &Request::GetAllChildrenNumber { path: "/a".into() }).body, Some(Response::Count(2)));
    assert_eq!(h.req(&mut c, &Request::GetAllChildrenNumber { path: "".into() }).body, Some(Response::Count(18)));
}

#[test]
fn auth_whoami_and_super() {
    let mut cfg = config();
    cfg.super_digest = Some(super::super::acl::digest("super:admin"));
    let mut h = Harness::with(cfg);
    let (mut anon, _) = node_with(&mut h, Perms::NONE);
    let auth = |scheme: &str, cred: &[u8]| {
        Request::Auth(AuthPacket { auth_type: 0, scheme: scheme.into(), auth: Bytes::copy_from_slice(cred) })
    };
    // Auth replies carry zxid 0; a wrong password is just another identity.
    let r = h.req(&mut anon, &auth("digest", b"bob:wrong"));
    assert_eq!((r.header.xid, r.header.zxid, r.header.err), (-4, 0, 0));
    assert_eq!(h.req(&mut anon, &Request::GetData { path: "/n".into(), watch: false }).err(), NoAuth);
    h.req(&mut anon, &auth("digest", b"super:admin"));
    assert_eq!(h.req(&mut anon, &Request::GetData { path: "/n".into(), watch: false }).header.err, 0);
    let r = h.req(&mut anon, &Request::WhoAmI);
    let info = |s: &str, u: &str| ClientInfo { auth_scheme: s.into(), user: u.into() };
    assert_eq!(
        r.body,
        // As a real 3.8.0 answered after the same two `addauth`s.
        Some(Response::WhoAmI(vec![
            info("digest", "bob"),
            info("digest", "super"),
            info("super", ""),
            info("ip", "127.0.0.1")
        ]))
    );
    // An unknown scheme: AUTHFAILED, then the connection is closed.
    let (flow, frames) = {
        let mut b = bytes::BytesMut::new();
        crate::proto::frame::write_request_frame(&mut b, -4, &auth("world", b"anyone"));
        let frame = crate::proto::frame::split_frame(&mut b, usize::MAX).unwrap().unwrap();
        h.raw(&mut anon, frame)
    };
    assert_eq!(flow, super::super::state::Flow::CloseAfterFlush);
    assert_eq!((frames[0].0.zxid, frames[0].0.err), (0, AuthFailed.as_i32()));
}

#[test]
fn get_ephemerals_lists_the_callers_by_string_prefix() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut other = h.client();
    h.create(&mut c, "/g", 0);
    h.st.tree.set_cversion("/g", 3);
    for p in ["/g/e1", "/e2", "/gx"] {
        h.create(&mut c, p, CreateMode::Ephemeral as i32);
    }
    h.create(&mut c, "/g/e3", CreateMode::EphemeralSequential as i32);
    h.create(&mut other, "/mine", CreateMode::Ephemeral as i32);
    let list =
        |h: &mut Harness, c: &mut Client, p: &str| match h.req(c, &Request::GetEphemerals { prefix: p.into() }).body {
            Some(Response::Names(n)) => n,
            other => panic!("{other:?}"),
        };
    // Order as measured on 3.8.0 for the same four creates.
    assert_eq!(list(&mut h, &mut c, "/"), ["/gx", "/g/e30000000004", "/e2", "/g/e1"]);
    assert_eq!(list(&mut h, &mut c, " / "), list(&mut h, &mut c, ""));
    assert_eq!(list(&mut h, &mut c, "/g"), ["/gx", "/g/e30000000004", "/g/e1"], "a plain string prefix");
    assert_eq!(list(&mut h, &mut c, "/g/"), ["/g/e30000000004", "/g/e1"]);
    assert_eq!(list(&mut h, &mut other, "/"), ["/mine"]);
}

#[test]
fn identities_per_connection_are_capped_and_checked_by_lookup() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut owner = h.client();
    h.auth(&mut owner, "carol", "pw");
    let carol = crate::proto::Id::new("digest", super::super::acl::digest("carol:pw"));
    let acl = vec![crate::proto::Acl::new(Perms::READ, carol)];
    let create = crate::proto::CreateRequest { path: "/c".into(), data: None, acl, flags: 0, ttl: -1 };
    let r = h.req(&mut owner, &Request::Create(create));
    assert_eq!(r.header.err, 0);
    // The connection's ip id is one; 254 more digests, then carol's: 256 in all.
    for i in 0..254 {
        h.auth(&mut c, &format!("user{i}"), "pw");
    }
    assert_eq!(h.req(&mut c, &Request::GetData { path: "/c".into(), watch: false }).err(), NoAuth);
    h.auth(&mut c, "carol", "pw");
    assert_eq!(h.req(&mut c, &Request::GetData { path: "/c".into(), watch: false }).header.err, 0, "found among 256");
    let auth =
        Request::Auth(AuthPacket { auth_type: 0, scheme: "digest".into(), auth: Bytes::from_static(b"one:more") });
    let mut buf = bytes::BytesMut::new();
    crate::proto::frame::write_request_frame(&mut buf, crate::proto::xid::AUTH, &auth);
    let frame = crate::proto::frame::split_frame(&mut buf, usize::MAX).unwrap().unwrap();
    let (flow, frames) = h.raw(&mut c, frame);
    assert_eq!(flow, super::super::state::Flow::CloseAfterFlush, "the 257th is refused and the connection closed");
    assert_eq!(frames[0].0.err, AuthFailed.as_i32());
}
