//! Each `Faults` hook against a running server, on virtual time.

use std::time::Duration;

use bytes::Bytes;

use super::harness::Raw;
use crate::proto::{Acl, CreateRequest, ErrorCode, EventType, OpCode, Request};
use crate::{Server, ServerHandle};

async fn server() -> ServerHandle {
    Server::builder().no_tcp().tick_time(Duration::from_millis(1000)).start().await.unwrap()
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest { path: path.into(), data: None, acl: Acl::open_unsafe(), flags, ttl: -1 })
}

fn exists(path: &str) -> Request {
    Request::Exists { path: path.into(), watch: false }
}

#[tokio::test(start_paused = true)]
async fn expire_session_is_a_real_expiry() {
    let h = server().await;
    let (mut owner, resp) = Raw::connect(&h).await;
    let (mut w, _) = Raw::connect(&h).await;
    owner.call(&create("/e", 1)).await;
    w.call(&Request::Exists { path: "/e".into(), watch: true }).await;
    let z = h.last_zxid();
    assert!(h.faults().expire_session(resp.session_id));
    assert_eq!(h.last_zxid(), z + 1, "a closeSession transaction");
    assert!(owner.closed().await);
    let (rh, _) = w.call(&exists("/e")).await;
    assert_eq!(rh.err, ErrorCode::NoNode.as_i32());
    assert_eq!(w.events, vec![(EventType::NodeDeleted, "/e".to_string())]);
    assert!(!h.faults().expire_session(resp.session_id), "already gone");
    let mut again = Raw::open(&h);
    assert_eq!(again.handshake(resp.session_id, resp.passwd, 0, 10_000).await.unwrap().timeout, 0);
}

#[tokio::test(start_paused = true)]
async fn cut_connection_keeps_the_session() {
    let h = server().await;
    let (mut c, resp) = Raw::connect(&h).await;
    c.call(&create("/e", 1)).await;
    assert!(h.faults().cut_connection(resp.session_id));
    assert!(c.closed().await);
    assert!(!h.faults().cut_connection(resp.session_id), "nothing left to cut");
    let mut back = Raw::open(&h);
    let r = back.handshake(resp.session_id, resp.passwd, h.last_zxid(), 10_000).await.unwrap();
    assert_eq!(r.session_id, resp.session_id);
    assert_eq!(back.call(&exists("/e")).await.0.err, 0, "ephemeral kept");
}

#[tokio::test(start_paused = true)]
async fn stall_holds_bytes_but_applies_requests() {
    let h = server().await;
    let (mut c, resp) = Raw::connect(&h).await;
    let (mut other, _) = Raw::connect(&h).await;
    h.faults().stall(Some(resp.session_id), Duration::from_secs(2));
    let t0 = tokio::time::Instant::now();
    c.send_req(&create("/made-while-stalled", 0)).await;
    c.send_req(&Request::Ping).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(other.call(&exists("/made-while-stalled")).await.0.err, 0, "applied during the stall");
    let (first, _) = c.reply().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(2), "held for the stall");
    assert_eq!(first.xid, 1, "then flushed in order");
    assert_eq!(c.reply().await.unwrap().0.xid, -2);
    // Every connection.
    h.faults().stall(None, Duration::from_secs(1));
    let t0 = tokio::time::Instant::now();
    other.call(&Request::Ping).await;
    assert!(t0.elapsed() >= Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn blackhole_is_silent_until_cut() {
    let h = server().await;
    let (mut c, resp) = Raw::connect(&h).await;
    assert!(h.faults().blackhole(resp.session_id));
    c.send_req(&create("/never", 0)).await;
    // No reply and no EOF, long past the session timeout (the session itself expires).
    let waited = tokio::time::timeout(Duration::from_secs(30), c.reply()).await;
    assert!(matches!(waited, Err(_) | Ok(None)));
    for _ in 0..3 {
        let mut probe = [0u8; 1];
        let r =
            tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut c.io, &mut probe)).await;
        assert!(r.is_err(), "still open and silent");
    }
    let (mut other, _) = Raw::connect(&h).await;
    assert_eq!(other.call(&exists("/never")).await.0.err, ErrorCode::NoNode.as_i32(), "not read, not applied");
    assert!(!h.session_ids().contains(&resp.session_id), "expired meanwhile");
    assert!(h.faults().cut_connection(resp.session_id));
    assert!(c.closed().await);
}

#[tokio::test(start_paused = true)]
async fn drop_reply_after_apply_loses_only_that_reply() {
    let h = server().await;
    let (mut c, resp) = Raw::connect(&h).await;
    h.faults().drop_reply_after_apply(resp.session_id, Some(OpCode::Create));
    // A ping and a read do not match; they and the replies queued before the create arrive.
    c.send_req(&Request::Ping).await;
    c.send_req(&exists("/")).await;
    c.send_req(&create("/applied", 3)).await;
    c.send_req(&exists("/")).await;
    assert_eq!(c.reply().await.unwrap().0.xid, -2);
    assert_eq!(c.reply().await.unwrap().0.xid, 2);
    assert!(c.reply().await.is_none(), "no reply for the create, then EOF");
    let mut back = Raw::open(&h);
    back.handshake(resp.session_id, resp.passwd, h.last_zxid(), 10_000).await.unwrap();
    let (rh, body) = back.call(&Request::GetEphemerals { prefix: "/".into() }).await;
    assert_eq!(rh.err, 0);
    let names = crate::proto::Response::decode(OpCode::GetEphemerals, &mut crate::proto::Reader::new(body)).unwrap();
    assert_eq!(names, crate::proto::Response::Names(vec!["/applied0000000000".into()]), "it was applied");
    // Armed for any op.
    h.faults().drop_reply_after_apply(resp.session_id, None);
    back.send_req(&Request::SetData { path: "/".into(), data: Some(Bytes::from_static(b"x")), version: -1 }).await;
    assert!(back.reply().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn set_cversion_moves_the_sequence_counter() {
    let h = server().await;
    let (mut c, _) = Raw::connect(&h).await;
    c.call(&create("/q", 0)).await;
    assert!(h.faults().set_cversion("/q", i32::MAX - 1));
    assert!(!h.faults().set_cversion("/nope", 1));
    let path = |body: Bytes| match crate::proto::Response::decode(OpCode::Create, &mut crate::proto::Reader::new(body))
    {
        Ok(crate::proto::Response::Path(p)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(path(c.call(&create("/q/s", 2)).await.1), "/q/s2147483646");
    assert_eq!(path(c.call(&create("/q/s", 2)).await.1), "/q/s2147483647");
    assert_eq!(c.call(&create("/q/s", 2)).await.0.err, ErrorCode::NodeExists.as_i32(), "3.8.0 sticks at MAX");
    h.shutdown().await;
    assert!(!h.faults().expire_session(1));
}
