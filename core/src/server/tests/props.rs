//! Property tests: nothing a client sends makes the server panic, and random operation
//! sequences (multi included, sessions expiring, the reaper running) keep the tree consistent.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use super::harness::*;
use crate::proto::frame::write_request_frame;
use crate::proto::{Acl, CreateRequest, Request};

/// Paths from a small alphabet so that operations collide.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_string()), Just("".to_string()), "(/[ab]){1,3}", "(/[ab]){0,2}/", "/[ab]\\x00?[.]{0,2}",]
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (path(), 0i32..8, any::<bool>(), prop_oneof![Just(-1i64), Just(0), Just(5), Just(1000)]).prop_map(
        |(path, flags, null, ttl)| CreateRequest {
            path,
            data: if null { None } else { Some(Bytes::from_static(b"d")) },
            acl: Acl::open_unsafe(),
            flags,
            ttl,
        },
    )
}

fn request() -> impl Strategy<Value = Request> {
    let single = prop_oneof![
        create().prop_map(Request::Create),
        create().prop_map(Request::Create2),
        create().prop_map(Request::CreateContainer),
        create().prop_map(Request::CreateTtl),
        (path(), -1i32..2).prop_map(|(path, version)| Request::Delete { path, version }),
        (path(), -1i32..2).prop_map(|(path, version)| Request::SetData { path, data: None, version }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetData { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::Exists { path, watch }),
        (path(), 0i32..3).prop_map(|(path, mode)| Request::AddWatch { path, mode }),
        (path(), 0i32..6).prop_map(|(path, watcher_type)| Request::RemoveWatches { path, watcher_type }),
        path().prop_map(|path| Request::GetAllChildrenNumber { path }),
    ];
    let in_multi = prop_oneof![
        create().prop_map(Request::Create),
        (path(), -1i32..2).prop_map(|(path, version)| Request::Delete { path, version }),
        (path(), -1i32..2).prop_map(|(path, version)| Request::Check { path, version }),
    ];
    prop_oneof![4 => single, 1 => vec(in_multi, 0..4).prop_map(Request::Multi)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_frames_never_panic(frames in vec((any::<i32>(), -12i32..110, vec(any::<u8>(), 0..64)), 1..20)) {
        let mut h = Harness::new();
        let mut c = h.client();
        for (xid, op, body) in frames {
            let mut b = BytesMut::new();
            b.put_i32(xid);
            b.put_i32(op);
            b.put_slice(&body);
            let _ = h.raw(&mut c, b.freeze());
        }
        h.st.tree.check_invariants();
    }

    #[test]
    fn random_operations_keep_the_tree_consistent(
        steps in vec((0usize..3, request(), 0i64..1500), 1..60),
    ) {
        let mut h = Harness::new();
        let mut clients = [h.client(), h.client(), h.client()];
        let mut last = h.st.zxid;
        for (who, req, dt) in steps {
            h.advance(dt);
            if h.st.sessions.get(clients[who].session).is_none() {
                clients[who] = h.client();
            }
            let mut b = BytesMut::new();
            write_request_frame(&mut b, 1, &req);
            let frame = b.freeze().slice(4..);
            let c = &mut clients[who];
            let _ = h.raw(c, frame);
            h.st.expire_due(h.now);
            h.st.reap(h.now);
            h.st.tree.check_invariants();
            prop_assert!(h.st.zxid >= last, "zxids never go back");
            last = h.st.zxid;
        }
    }
}
