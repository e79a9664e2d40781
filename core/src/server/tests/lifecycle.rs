//! Sessions and the reaper through the apply layer, on a hand-moved clock: handshake outcomes,
//! tick-bucketed expiry deleting ephemerals with their events, closeSession, and container /
//! TTL reaping. Reference: zookeeper-protocol.md sections 2.2, 5.3 and 9.1.

use bytes::Bytes;

use super::super::state::Flow;
use super::harness::*;
use crate::proto::{CreateMode, EventType, Request};
use EventType::{NodeChildrenChanged, NodeDeleted};

#[test]
fn a_session_still_talking_is_not_expired_while_its_requests_wait_for_the_lock() {
    let mut h = Harness::new();
    let owner = h.client_with(2000, 0, Bytes::from_static(&[0; 16])).unwrap();
    // Bytes arrived at 1500 but were not applied yet (the lock was busy): due at 3000 by the
    // last applied request, alive until 3500 by what was heard.
    h.advance(1500);
    owner.outbox.heard(h.now.ms);
    h.advance(1500);
    h.st.expire_due(h.now);
    assert!(h.st.sessions.get(owner.session).is_some(), "heard from 1500 ms ago");
    // Requests read and waiting for the lock keep it alive however long the wait.
    owner.outbox.set_waiting(true);
    h.advance(10_000);
    h.st.expire_due(h.now);
    assert!(h.st.sessions.get(owner.session).is_some(), "its requests are waiting");
    owner.outbox.set_waiting(false);
    h.advance(2000);
    h.st.expire_due(h.now);
    assert!(h.st.sessions.get(owner.session).is_some(), "counted from the last wait: due at the next tick");
    h.advance(1000);
    h.st.expire_due(h.now);
    assert!(h.st.sessions.get(owner.session).is_none(), "silent for its whole timeout: expired");
}

#[test]
fn expiry_deletes_ephemerals_in_one_transaction() {
    let mut h = Harness::new();
    let mut owner = h.client_with(2000, 0, Bytes::from_static(&[0; 16])).unwrap();
    let mut w = h.client();
    h.create(&mut owner, "/p", 0);
    h.create(&mut owner, "/p/e", CreateMode::Ephemeral as i32);
    h.create(&mut owner, "/p/s-", CreateMode::EphemeralSequential as i32);
    h.req(&mut w, &Request::Exists { path: "/p/e".into(), watch: true });
    h.req(&mut w, &Request::GetChildren { path: "/p".into(), watch: true });
    // Created at t=0 with a 2000 ms timeout and 1000 ms ticks: due at the first tick after 2000.
    h.advance(1500);
    h.req(&mut owner, &Request::Ping);
    h.advance(2499);
    h.st.expire_due(h.now);
    assert!(h.st.sessions.get(owner.session).is_some(), "touched at 1500: due at 4000");
    h.advance(1);
    let before = h.st.zxid;
    h.st.expire_due(h.now);
    assert!(h.st.sessions.get(owner.session).is_none());
    assert_eq!(h.st.zxid, before + 1, "one closeSession transaction");
    assert!(h.st.tree.get("/p/e").is_none() && h.st.tree.get("/p/s-0000000001").is_none());
    assert_eq!(h.events(&mut w), vec![(NodeDeleted, "/p/e".into()), (NodeChildrenChanged, "/p".into())]);
    assert_eq!(h.st.tree.get("/p").unwrap().pzxid, before + 1);
    assert!(owner.outbox.is_closing(), "its connection is closed");
    assert!(!h.st.conns.contains_key(&owner.conn));
}

#[test]
fn close_session_replies_then_closes() {
    let mut h = Harness::new();
    let mut c = h.client();
    h.create(&mut c, "/e", CreateMode::Ephemeral as i32);
    let mut b = bytes::BytesMut::new();
    crate::proto::frame::write_request_frame(&mut b, 9, &Request::CloseSession);
    let frame = crate::proto::frame::split_frame(&mut b, usize::MAX).unwrap().unwrap();
    let (flow, frames) = h.raw(&mut c, frame);
    assert_eq!(flow, Flow::CloseAfterFlush);
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].0.xid, frames[0].0.zxid, frames[0].0.err), (9, h.st.zxid, 0));
    assert!(h.st.tree.get("/e").is_none());
    assert!(h.st.sessions.get(c.session).is_none());
    // Resuming the closed session gets the "expired" answer.
    assert_eq!(h.client_with(10_000, c.session, c.passwd.clone()).unwrap_err(), Flow::CloseAfterFlush);
}

#[test]
fn handshake_outcomes() {
    let mut h = Harness::new();
    let c = h.client();
    assert_eq!(h.st.zxid, 1, "createSession consumes a zxid");
    // Resume with the right password: same session, the older connection is closed.
    let d = h.client_with(4000, c.session, c.passwd.clone()).unwrap();
    assert_eq!(d.session, c.session);
    assert!(c.outbox.is_closing());
    assert_eq!(h.st.sessions.get(c.session).unwrap().timeout, 4000, "renegotiated");
    assert_eq!(h.st.zxid, 1, "a resume is not a transaction");
    // Wrong password: the expired answer, and the owner keeps its connection (divergence).
    assert_eq!(h.client_with(4000, c.session, Bytes::from_static(&[7; 16])).unwrap_err(), Flow::CloseAfterFlush);
    assert!(!d.outbox.is_closing());
    assert_eq!(h.st.sessions.get(c.session).unwrap().conn, Some(d.conn));
    // Unknown session: the expired answer.
    assert_eq!(h.client_with(4000, 0x1234, Bytes::from_static(&[0; 16])).unwrap_err(), Flow::CloseAfterFlush);
    // Timeouts are clamped to [2 tick, 20 tick].
    for (asked, got) in [(1, 2000), (-5, 2000), (60_000, 20_000)] {
        let c = h.client_with(asked, 0, Bytes::from_static(&[0; 16])).unwrap();
        assert_eq!(h.st.sessions.get(c.session).unwrap().timeout, got);
    }
}

#[test]
fn reaper_deletes_used_empty_containers_and_expired_ttl_nodes() {
    let mut h = Harness::new();
    let mut c = h.client();
    let mut w = h.client();
    let cont = |p: &str| Request::CreateContainer(create_req(p, b"", 4));
    let ttl = |p: &str, ms: i64| {
        let mut r = create_req(p, b"", 5);
        r.ttl = ms;
        Request::CreateTtl(r)
    };
    h.req(&mut c, &cont("/used"));
    h.req(&mut c, &cont("/never"));
    h.req(&mut c, &cont("/busy"));
    h.create(&mut c, "/used/x", 0);
    h.req(&mut c, &Request::Delete { path: "/used/x".into(), version: -1 });
    h.create(&mut c, "/busy/x", CreateMode::Ephemeral as i32);
    h.req(&mut c, &ttl("/t1", 1000));
    h.req(&mut c, &ttl("/t2", 1000));
    h.req(&mut c, &ttl("/t3", 1000));
    h.create(&mut c, "/t3/kid", 0);
    h.req(&mut w, &Request::Exists { path: "/used".into(), watch: true });
    h.req(&mut w, &Request::GetChildren { path: "/".into(), watch: true });
    // Not yet: now - mtime must exceed the TTL.
    h.advance(1000);
    let z = h.st.zxid;
    assert_eq!(h.st.reap(h.now), 1, "only /used");
    assert_eq!(h.st.zxid, z + 1);
    assert_eq!(h.events(&mut w), vec![(NodeDeleted, "/used".into()), (NodeChildrenChanged, "/".into())]);
    h.req(&mut c, &Request::SetData { path: "/t2".into(), data: None, version: -1 });
    h.advance(1);
    assert_eq!(h.st.reap(h.now), 1, "/t1 expired; setData extended /t2; /t3 has a child");
    assert!(h.st.tree.get("/t1").is_none() && h.st.tree.get("/t2").is_some() && h.st.tree.get("/t3").is_some());
    assert!(h.st.tree.get("/never").is_some(), "a container that never had a child stays");
    h.advance(1000);
    assert_eq!(h.st.reap(h.now), 1);
    assert!(h.st.tree.get("/t2").is_none());
    // A container whose last child goes away (here: an ephemeral at session close).
    h.st.expire_session(c.session, h.now);
    assert_eq!(h.st.reap(h.now), 1);
    assert!(h.st.tree.get("/busy").is_none());
}
