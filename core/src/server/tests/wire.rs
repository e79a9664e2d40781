//! Raw frames against a running server, over in-process connections (and TCP where the test
//! is about TCP): handshakes, four-letter words, malformed input, ordering, limits, timers in
//! virtual time, shutdown. Reference: zookeeper-protocol.md sections 1, 2, 3, 9.1, 11.3 and 12;
//! reliability.md 1.3 and 6.5 (rows D1-D14).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::Raw;
use crate::proto::{
    Acl, CreateRequest, Decode, ErrorCode, EventType, OpCode, Reader, ReplyHeader, Request, Response, Stat,
};
use crate::{Error, Server, ServerHandle};

async fn server() -> ServerHandle {
    Server::builder().no_tcp().tick_time(Duration::from_millis(200)).start().await.unwrap()
}

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
    })
}

async fn four(h: &ServerHandle, word: &str) -> String {
    let mut raw = Raw::open(h);
    raw.send(word.as_bytes()).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), raw.io.read_to_end(&mut out)).await.unwrap().unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test(start_paused = true)]
async fn handshake_new_resume_wrong_password_unknown_and_zxid_ahead() {
    let h = server().await;
    let (mut a, resp) = Raw::connect(&h).await;
    assert_eq!(
        (resp.protocol_version, resp.timeout, resp.read_only),
        (0, 4000, Some(false)),
        "10 s clamped to 20 ticks"
    );
    assert_eq!(resp.passwd.len(), 16);
    assert_eq!(h.session_ids(), vec![resp.session_id]);
    assert_eq!(h.last_zxid(), 1);
    // Without the trailing readOnly byte the answer has none either.
    let mut old = Raw::open(&h);
    let mut b = BytesMut::new();
    b.put_i32(44);
    b.put_slice(&[0; 4 + 8]);
    b.put_i32(3000);
    b.put_slice(&[0; 8]);
    b.put_i32(16);
    b.put_slice(&[0; 16]);
    old.send(&b).await;
    assert_eq!(old.frame().await.unwrap().len(), 36);
    // Resume on a second connection: same id, the first connection is closed.
    let mut b2 = Raw::open(&h);
    let r2 = b2.handshake(resp.session_id, resp.passwd.clone(), 1, 6000).await.unwrap();
    assert_eq!((r2.session_id, r2.timeout, &r2.passwd), (resp.session_id, 4000, &resp.passwd));
    assert!(a.closed().await);
    // Wrong password: the "expired" answer, and the owner is not disturbed.
    let mut bad = Raw::open(&h);
    let r = bad.handshake(resp.session_id, Bytes::from_static(&[1; 16]), 0, 6000).await.unwrap();
    assert_eq!((r.timeout, r.session_id, &r.passwd[..]), (0, 0, &[0u8; 16][..]));
    assert!(bad.closed().await);
    let (ph, _) = b2.call(&Request::Ping).await;
    assert_eq!(ph.xid, -2);
    // Unknown session.
    let mut unk = Raw::open(&h);
    let r = unk.handshake(0x1234, Bytes::from_static(&[0; 16]), 0, 6000).await.unwrap();
    assert_eq!(r.timeout, 0);
    assert!(unk.closed().await);
    // A client that has seen a newer zxid is dropped without an answer.
    let mut ahead = Raw::open(&h);
    assert!(ahead.handshake(0, Bytes::from_static(&[0; 16]), 1 << 40, 6000).await.is_none());
    assert_eq!(h.session_ids().len(), 2, "only the two real sessions exist");
}

#[tokio::test(start_paused = true)]
async fn four_letter_words_answer_only_srvr_by_default() {
    let h = server().await;
    let (mut c, _) = Raw::connect(&h).await;
    c.call(&Request::Exists { path: "/a".into(), watch: true }).await;
    assert!(four(&h, "srvr").await.starts_with("Zookeeper version: 3.8.0-conclave-"));
    for word in ["ruok", "mntr", "dump", "cons", "wchc", "wchp", "stat", "envi", "conf", "crst", "srst"] {
        assert_eq!(four(&h, word).await, format!("{word} is not executed because it is not in the whitelist.\n"));
    }
    let some = Server::builder().no_tcp().four_letter_words("ruok, mntr").unwrap().start().await.unwrap();
    assert_eq!(four(&some, "ruok").await, "imok");
    assert!(four(&some, "mntr").await.starts_with("zk_version\t"));
    assert!(four(&some, "srvr").await.starts_with("Zookeeper version: "), "srvr is always answered");
    assert_eq!(four(&some, "dump").await, "dump is not executed because it is not in the whitelist.\n");
    assert!(Server::builder().four_letter_words("ruok,gtmk").is_ok(), "ZooKeeper's other words are ignored");
    assert!(Server::builder().four_letter_words("ruok,rouk").is_err(), "unknown words are refused");
}

#[tokio::test(start_paused = true)]
async fn four_letter_words() {
    let h = Server::builder()
        .no_tcp()
        .tick_time(Duration::from_millis(200))
        .four_letter_words("*")
        .unwrap()
        .start()
        .await
        .unwrap();
    let (mut c, resp) = Raw::connect(&h).await;
    c.call(&Request::Exists { path: "/a".into(), watch: true }).await;
    assert_eq!(four(&h, "ruok").await, "imok");
    assert_eq!(four(&h, "isro").await, "rw");
    let srvr = four(&h, "srvr").await;
    assert!(srvr.starts_with("Zookeeper version: 3.8.0-conclave-"), "{srvr}");
    for line in ["Mode: standalone\n", "Node count: 5\n", "Zxid: 0x1\n", "Connections: 2\n", "Outstanding: 0\n"] {
        assert!(srvr.contains(line), "{line:?} in {srvr}");
    }
    let stat = four(&h, "stat").await;
    assert!(stat.contains("Clients:\n /in-process:"), "{stat}");
    let mntr = four(&h, "mntr").await;
    for kv in ["zk_server_state\tstandalone\n", "zk_znode_count\t5\n", "zk_watch_count\t1\n", "zk_global_sessions\t1\n"]
    {
        assert!(mntr.contains(kv), "{kv:?} in {mntr}");
    }
    // ZooKeeper 3.8.0's full key set (a real one answers about 16 KB), for tools that scrape it.
    assert!(mntr.lines().count() >= 480, "{} lines", mntr.lines().count());
    for key in ["zk_max_file_descriptor_count\t", "zk_p99_readlatency\t", "zk_connection_rejected\t0\n"] {
        assert!(mntr.contains(key), "{key:?} in {mntr}");
    }
    let envi = four(&h, "envi").await;
    let version = envi.lines().find_map(|l| l.strip_prefix("zookeeper.version=")).unwrap();
    // kazoo's server_version(): the digits before the first '-'.
    assert_eq!(version.split('-').next(), Some("3.8.0"));
    assert!(four(&h, "conf")
        .await
        .contains("tickTime=200\nmaxClientCnxns=60\nminSessionTimeout=400\nmaxSessionTimeout=4000\n"));
    let cons = four(&h, "cons").await;
    assert!(cons.contains(&format!("sid=0x{:x},lop=EXIS", resp.session_id)), "{cons}");
    assert_eq!(four(&h, "wchs").await, "1 connections watching 1 paths\nTotal watches:1\n");
    assert_eq!(four(&h, "wchc").await, format!("0x{:x}\n\t/a\n\n", resp.session_id));
    assert_eq!(four(&h, "wchp").await, format!("/a\n\t0x{:x}\n\n", resp.session_id));
    let dump = four(&h, "dump").await;
    assert!(dump.starts_with("SessionTracker dump:\nSession Sets (1)/(1):\n"), "{dump}");
    assert_eq!(four(&h, "srst").await, "Server stats reset.\n");
    assert_eq!(four(&h, "crst").await, "Connection stats reset.\n");
    // Not a word: read as a frame length far above the limit, so the connection is closed.
    assert_eq!(four(&h, "RUOK").await, "");
    // A word split over two writes still counts.
    let mut raw = Raw::open(&h);
    raw.send(b"ru").await;
    tokio::task::yield_now().await;
    raw.send(b"ok").await;
    let mut out = Vec::new();
    raw.io.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"imok");
}

#[tokio::test(start_paused = true)]
async fn bad_frame_lengths_close_the_connection() {
    let h = Server::builder().no_tcp().max_frame(1024).start().await.unwrap();
    for len in [-5i32, 1025, 0x7fff_ffff] {
        let mut fresh = Raw::open(&h);
        fresh.send(&len.to_be_bytes()).await;
        assert!(fresh.closed().await, "first frame length {len}");
        let (mut c, _) = Raw::connect(&h).await;
        c.send(&len.to_be_bytes()).await;
        assert!(c.closed().await, "established, frame length {len}");
    }
    // Length 0 after the handshake: a header-less request, so the connection is closed too.
    let (mut c, _) = Raw::connect(&h).await;
    c.send(&0i32.to_be_bytes()).await;
    assert!(c.closed().await);
    // A ConnectRequest of length 0 does not decode.
    let mut fresh = Raw::open(&h);
    fresh.send(&0i32.to_be_bytes()).await;
    assert!(fresh.closed().await);
    // Exactly the limit is accepted: a setData frame of 1024 bytes.
    let (mut c, _) = Raw::connect(&h).await;
    c.call(&create("/big", b"", 0)).await;
    let data = vec![7u8; 1024 - 8 - (4 + 4) - 4 - 4];
    let req = Request::SetData { path: "/big".into(), data: Some(Bytes::from(data.clone())), version: -1 };
    let (rh, _) = c.call(&req).await;
    assert_eq!(rh.err, 0);
    let mut one_more = data;
    one_more.push(0);
    c.send_req(&Request::SetData { path: "/big".into(), data: Some(Bytes::from(one_more)), version: -1 }).await;
    assert!(c.closed().await);
}

#[tokio::test(start_paused = true)]
async fn garbage_and_short_input() {
    let h = server().await;
    let mut g = Raw::open(&h);
    g.send(b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(g.closed().await);
    // A ConnectRequest cut short.
    let mut t = Raw::open(&h);
    let mut b = BytesMut::new();
    b.put_i32(20);
    b.put_slice(&[0; 20]);
    t.send(&b).await;
    assert!(t.closed().await);
    assert!(h.session_ids().is_empty(), "no session was created");
    // A request shorter than its header.
    let (mut c, _) = Raw::connect(&h).await;
    c.send(&[0, 0, 0, 4, 0, 0, 0, 1]).await;
    assert!(c.closed().await);
}

#[tokio::test(start_paused = true)]
async fn undecodable_bodies_get_marshalling_error_and_the_connection_stays() {
    let h = server().await;
    let (mut c, _) = Raw::connect(&h).await;
    let z = h.last_zxid();
    // getData with a string length of 5000 in a tiny frame; an empty body.
    let mut body = BytesMut::new();
    body.put_i32(5000);
    body.put_slice(b"/abc");
    c.send_raw_req(1, OpCode::GetData.as_i32(), &body).await;
    let (rh, rest) = c.reply().await.unwrap();
    assert_eq!((rh.xid, rh.zxid, rh.err, rest.len()), (1, z, ErrorCode::MarshallingError.as_i32(), 0));
    c.send_raw_req(2, OpCode::GetData.as_i32(), &[]).await;
    assert_eq!(c.reply().await.unwrap().0.err, ErrorCode::MarshallingError.as_i32());
    // A malformed write still consumes a zxid (3.8.0).
    c.send_raw_req(3, OpCode::Create.as_i32(), &[0, 0, 0, 2, b'/', b'x', 0, 0, 0, 5]).await;
    let (rh, _) = c.reply().await.unwrap();
    assert_eq!((rh.zxid, rh.err), (z + 1, ErrorCode::MarshallingError.as_i32()));
    // A multi holding a read op is a marshalling error of the whole request.
    let mut m = BytesMut::new();
    Request::Multi(vec![]).encode_body(&mut m);
    let mut bad = BytesMut::new();
    bad.put_i32(OpCode::GetData.as_i32());
    bad.put_u8(0);
    bad.put_i32(-1);
    bad.put_slice(&m);
    c.send_raw_req(4, OpCode::Multi.as_i32(), &bad).await;
    assert_eq!(c.reply().await.unwrap().0.err, ErrorCode::MarshallingError.as_i32());
    let (ph, _) = c.call(&Request::Ping).await;
    assert_eq!((ph.xid, ph.err), (-2, 0), "still open");
}

#[tokio::test(start_paused = true)]
async fn unknown_opcodes_and_standalone_check_are_unimplemented_then_closed() {
    let h = server().await;
    for op in [999, 0, 13, 10, -1] {
        let (mut c, _) = Raw::connect(&h).await;
        c.send_raw_req(5, op, &[0, 0, 0, 1, b'/', 0, 0, 0, 0]).await;
        let (rh, _) = c.reply().await.unwrap();
        assert_eq!((rh.xid, rh.zxid, rh.err), (5, -1, ErrorCode::Unimplemented.as_i32()), "op {op}");
        assert!(c.closed().await, "op {op}");
    }
    // Client-sent deleteContainer and createSession: 3.8.0's error answers, consuming a zxid.
    let (mut c, _) = Raw::connect(&h).await;
    let z = h.last_zxid();
    c.send_raw_req(1, 20, b"/x").await;
    assert_eq!(c.reply().await.unwrap().0, ReplyHeader { xid: 1, zxid: z + 1, err: ErrorCode::BadArguments.as_i32() });
    c.send_raw_req(2, -10, b"").await;
    assert_eq!(
        c.reply().await.unwrap().0,
        ReplyHeader { xid: 2, zxid: z + 2, err: ErrorCode::MarshallingError.as_i32() }
    );
    // sasl: OK with a null token, zxid 0.
    c.send_raw_req(3, 102, &[0, 0, 0, 1, 9]).await;
    let (rh, rest) = c.reply().await.unwrap();
    assert_eq!((rh.zxid, rh.err, &rest[..]), (0, 0, &[0xff, 0xff, 0xff, 0xff][..]));
}

#[tokio::test(start_paused = true)]
async fn notifications_come_before_the_replies_that_follow_the_change() {
    let h = server().await;
    let (mut w, _) = Raw::connect(&h).await;
    let (mut c, _) = Raw::connect(&h).await;
    c.call(&create("/a", b"1", 0)).await;
    w.call(&Request::GetData { path: "/a".into(), watch: true }).await;
    // The watcher pipelines a read right behind the writer's change.
    c.call(&Request::SetData { path: "/a".into(), data: Some(Bytes::from_static(b"2")), version: -1 }).await;
    w.send_req(&Request::GetData { path: "/a".into(), watch: false }).await;
    let first = w.frame().await.unwrap();
    let mut r = Reader::new(first);
    let head = ReplyHeader::decode(&mut r).unwrap();
    assert_eq!((head.xid, head.zxid), (-1, -1), "the event first, with 3.8.0's zxid -1");
    let ev = crate::proto::WatcherEvent::decode(&mut r).unwrap();
    assert_eq!((ev.event_type, ev.state, ev.path.as_str()), (EventType::NodeDataChanged.as_i32(), 3, "/a"));
    let (rh, body) = w.reply().await.unwrap();
    let data = Response::decode(OpCode::GetData, &mut Reader::new(body)).unwrap();
    assert_eq!(rh.xid, 2);
    assert!(matches!(data, Response::Data { data: Some(d), .. } if &d[..] == b"2"));
    // A writer watching its own node: event, then its own reply.
    c.call(&Request::GetData { path: "/a".into(), watch: true }).await;
    let xid = c.send_req(&Request::Delete { path: "/a".into(), version: -1 }).await;
    let (rh, _) = c.reply().await.unwrap();
    assert_eq!(rh.xid, xid);
    assert_eq!(c.events, vec![(EventType::NodeDeleted, "/a".to_string())]);
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_answered_in_order() {
    let h = server().await;
    let (mut c, _) = Raw::connect(&h).await;
    let mut b = BytesMut::new();
    for i in 0..500 {
        let req = if i % 2 == 0 {
            create(&format!("/n{i}"), b"x", 0)
        } else {
            Request::GetData { path: "/".into(), watch: false }
        };
        crate::proto::frame::write_request_frame(&mut b, i + 1, &req);
    }
    c.send(&b).await;
    for i in 0..500 {
        let (rh, _) = c.reply().await.unwrap();
        assert_eq!((rh.xid, rh.err), (i + 1, 0));
    }
    assert_eq!(h.node_count(), 4 + 250);
}

#[tokio::test(start_paused = true)]
async fn handshake_deadline_is_absolute() {
    let h = server().await;
    let mut slow = Raw::open(&h);
    let t0 = tokio::time::Instant::now();
    // Trickle a valid ConnectRequest one byte per second: it cannot complete in time.
    let mut frame = BytesMut::new();
    let req = crate::proto::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 4000,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    crate::proto::frame::write_record_frame(&mut frame, &req);
    let closed = async {
        for byte in frame.iter() {
            slow.io.write_all(&[*byte]).await.ok();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut probe = [0u8; 1];
            if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), slow.io.read(&mut probe)).await {
                return true;
            }
        }
        false
    };
    assert!(closed.await);
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(10) && took <= Duration::from_secs(11), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn idle_connections_close_after_the_session_timeout_and_the_session_lives_on() {
    let h = Server::builder().no_tcp().tick_time(Duration::from_millis(1000)).start().await.unwrap();
    let mut c = Raw::open(&h);
    let resp = c.handshake(0, Bytes::from_static(&[0; 16]), 0, 4000).await.unwrap();
    let t0 = tokio::time::Instant::now();
    assert!(c.closed().await);
    assert!(t0.elapsed() >= Duration::from_millis(4000) && t0.elapsed() < Duration::from_millis(4100));
    assert_eq!(h.session_ids(), vec![resp.session_id], "the session outlives its connection");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(h.session_ids().is_empty(), "and then expires");
}

#[tokio::test(start_paused = true)]
async fn expiry_and_reaper_run_on_virtual_time() {
    let h = Server::builder()
        .no_tcp()
        .tick_time(Duration::from_millis(100))
        .container_check_interval(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let (mut keeper, _) = Raw::connect(&h).await;
    let mut owner = Raw::open(&h);
    owner.handshake(0, Bytes::from_static(&[0; 16]), 0, 200).await.unwrap();
    owner.call(&create("/e", b"", 1)).await;
    keeper
        .call(&Request::CreateContainer(match create("/c", b"", 4) {
            Request::Create(c) => c,
            _ => unreachable!(),
        }))
        .await;
    keeper.call(&create("/c/x", b"", 0)).await;
    keeper.call(&Request::Delete { path: "/c/x".into(), version: -1 }).await;
    let mut ttl = match create("/t", b"", 5) {
        Request::Create(c) => c,
        _ => unreachable!(),
    };
    ttl.ttl = 1500;
    let (rh, body) = keeper.call(&Request::CreateTtl(ttl)).await;
    assert_eq!(rh.err, 0);
    let created = match Response::decode(OpCode::CreateTtl, &mut Reader::new(body)).unwrap() {
        Response::Created { stat, .. } => stat,
        other => panic!("{other:?}"),
    };
    keeper.call(&Request::Exists { path: "/e".into(), watch: true }).await;
    // Keep the keeper's session alive with pings while virtual time runs.
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        keeper.call(&Request::Ping).await;
    }
    assert!(keeper.events.contains(&(EventType::NodeDeleted, "/e".to_string())), "{:?}", keeper.events);
    assert!(owner.closed().await);
    let exists = |p: &str| Request::Exists { path: p.into(), watch: false };
    assert_eq!(keeper.call(&exists("/c")).await.0.err, ErrorCode::NoNode.as_i32(), "reaped container");
    assert_eq!(keeper.call(&exists("/t")).await.0.err, ErrorCode::NoNode.as_i32(), "reaped TTL node");
    // Node times come from the server clock: start wall time plus virtual elapsed time.
    let (_, body) = keeper.call(&create("/late", b"", 0)).await;
    let _ = body;
    let (_, body) = keeper.call(&exists("/late")).await;
    let late = Stat::decode(&mut Reader::new(body)).unwrap();
    assert!(late.ctime - created.ctime >= 2400, "{} vs {}", late.ctime, created.ctime);
}

#[tokio::test(start_paused = true)]
async fn replies_over_the_reply_limit_are_refused_before_they_are_built() {
    let h = Server::builder().no_tcp().max_reply_bytes(64 << 10).start().await.unwrap();
    let (mut c, _) = Raw::connect(&h).await;
    c.call(&create("/big", &[5u8; 40 << 10], 0)).await;
    c.call(&create("/dir", b"", 0)).await;
    for i in 0..2000 {
        c.call(&create(&format!("/dir/child-{i:05}"), b"", 0)).await;
    }
    let get = |p: &str| Request::GetData { path: p.into(), watch: false };
    let marshalling = ErrorCode::MarshallingError.as_i32();
    // One 40 KiB node fits; twice does not.
    assert_eq!(c.call(&Request::MultiRead(vec![get("/big")])).await.0.err, 0);
    assert_eq!(c.call(&Request::MultiRead(vec![get("/big"), get("/big")])).await.0.err, marshalling);
    // 2000 names of 11 bytes: about 30 KB listed once, 60 KB twice.
    let list = || Request::GetChildren { path: "/dir".into(), watch: false };
    assert_eq!(c.call(&list()).await.0.err, 0);
    assert_eq!(c.call(&Request::MultiRead(vec![list(), list(), list()])).await.0.err, marshalling);
    // getEphemerals: 3000 paths of 31 bytes are over the limit; a prefix that picks 10 is not.
    for i in 0..3000 {
        c.call(&create(&format!("/ephemeral-with-long-name-{i:05}"), b"", 1)).await;
    }
    let ephemerals = |prefix: &str| Request::GetEphemerals { prefix: prefix.into() };
    assert_eq!(c.call(&ephemerals("/")).await.0.err, marshalling);
    let (rh, body) = c.call(&ephemerals("/ephemeral-with-long-name-0000")).await;
    assert_eq!((rh.err, i32::from_be_bytes(body[..4].try_into().unwrap())), (0, 10));
    // The connection is kept, and nothing large was queued for it.
    assert_eq!(c.call(&Request::Exists { path: "/big".into(), watch: false }).await.0.err, 0);
    assert!(h.peak_queued_bytes() < 128 << 10, "peak {}", h.peak_queued_bytes());
    // A node stored within the request limit but over the reply limit: getData is refused too.
    c.call(&create("/huge", &[1u8; 100 << 10], 0)).await;
    assert_eq!(c.call(&get("/huge")).await.0.err, marshalling);
    let small = Server::builder().no_tcp().max_reply_bytes(1000).start().await;
    assert!(matches!(small, Err(Error::InvalidArgument(_))), "a limit under 1 KiB is refused");
}

#[tokio::test(start_paused = true)]
async fn past_the_total_queue_cap_the_longest_queue_is_closed() {
    let h = Server::builder().no_tcp().max_total_queued_bytes(2 << 20).start().await.unwrap();
    let (mut reader, _) = Raw::connect(&h).await;
    let (mut deaf, _) = Raw::connect(&h).await;
    reader
        .call(&Request::SetData { path: "/".into(), data: Some(Bytes::from(vec![1u8; 300 << 10])), version: -1 })
        .await;
    let mut b = BytesMut::new();
    for i in 0..30 {
        crate::proto::frame::write_request_frame(&mut b, 100 + i, &Request::GetData { path: "/".into(), watch: false });
    }
    deaf.send(&b).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(deaf.closed().await, "the connection that does not read had the longest queue");
    for _ in 0..5 {
        let (rh, body) = reader.call(&Request::GetData { path: "/".into(), watch: false }).await;
        assert_eq!((rh.err, body.len() > 300 << 10), (0, true), "the reading client is served");
    }
    assert!(h.peak_queued_bytes() < 4 << 20, "peak {}", h.peak_queued_bytes());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.queued_bytes(), 0, "every queued byte is counted out once written or dropped");
}

#[tokio::test(start_paused = true)]
async fn slow_readers_pause_then_get_everything_in_order() {
    let h = server().await;
    let (mut c, _) = Raw::connect(&h).await;
    let big = vec![1u8; 512 << 10];
    c.call(&Request::SetData { path: "/".into(), data: Some(Bytes::from(big)), version: -1 }).await;
    // 20 reads of 512 KiB without reading replies: the server stops reading at 4 MiB queued
    // instead of closing or buffering everything.
    let mut b = BytesMut::new();
    for i in 0..20 {
        crate::proto::frame::write_request_frame(&mut b, 100 + i, &Request::GetData { path: "/".into(), watch: false });
    }
    c.send(&b).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    for i in 0..20 {
        let (rh, body) = c.reply().await.unwrap();
        assert_eq!((rh.xid, rh.err), (100 + i, 0));
        assert!(body.len() > 512 << 10);
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_past_its_output_cap_is_closed_and_others_are_not_hurt() {
    let h = Server::builder().no_tcp().max_queued_bytes(64 << 10).start().await.unwrap();
    let (mut deaf, _) = Raw::connect(&h).await;
    deaf.call(&Request::AddWatch { path: "/".into(), mode: 1 }).await;
    let (mut writer, _) = Raw::connect(&h).await;
    let name = "n".repeat(200);
    for i in 0..3000 {
        let (rh, _) = writer.call(&create(&format!("/{name}{i}"), b"", 0)).await;
        assert_eq!(rh.err, 0);
    }
    // The deaf client's events overflowed its cap: it is cut (after its pipe drains).
    assert!(deaf.closed().await);
    let (ph, _) = writer.call(&Request::Ping).await;
    assert_eq!(ph.err, 0);
}

#[tokio::test]
async fn tcp_connections_and_the_per_ip_limit() {
    let h =
        Server::builder().max_connections_per_ip(2).four_letter_words("ruok,isro,srvr").unwrap().start().await.unwrap();
    let addr = h.local_addr().unwrap();
    assert_eq!(h.connect_string(), addr.to_string());
    let mut a = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut b = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "the third connection from one address is closed at once");
    a.write_all(b"srvr").await.unwrap();
    let mut out = Vec::new();
    a.read_to_end(&mut out).await.unwrap();
    assert!(out.starts_with(b"Zookeeper version: "));
    // Once a slot is free, a new connection is served; in-process ones never count.
    let _extra: Vec<_> = (0..5).map(|_| h.connect_in_process().unwrap()).collect();
    let mut d = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut d = tokio::net::TcpStream::connect(addr).await.unwrap();
            d.write_all(b"ruok").await.unwrap();
            let mut out = Vec::new();
            let _ = d.read_to_end(&mut out).await;
            if out == b"imok" {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let _ = d.shutdown().await;
    b.write_all(b"isro").await.unwrap();
    let mut out = Vec::new();
    b.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"rw");
    h.shutdown().await;
}

#[tokio::test]
async fn the_total_connection_limit_counts_every_address() {
    let h = Server::builder()
        .max_connections_per_ip(0)
        .max_connections(2)
        .four_letter_words("mntr")
        .unwrap()
        .start()
        .await
        .unwrap();
    let addr = h.local_addr().unwrap();
    let _a = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut b = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "the third connection is closed at once");
    b.write_all(b"mntr").await.unwrap();
    let mut out = String::new();
    b.read_to_string(&mut out).await.unwrap();
    assert!(out.contains("zk_connection_rejected\t1\n"), "{out}");
    h.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_everything_and_is_idempotent() {
    let h = server().await;
    let (mut c, _) = Raw::connect(&h).await;
    let mut idle = Raw::open(&h);
    h.shutdown().await;
    assert!(c.closed().await);
    assert!(idle.closed().await);
    assert!(matches!(h.connect_in_process(), Err(Error::Closed)));
    h.shutdown().await;
    // Dropping the last handle stops a server too.
    let h = server().await;
    let h2 = h.clone();
    let (mut c, _) = Raw::connect(&h).await;
    drop(h);
    c.call(&Request::Ping).await;
    drop(h2);
    assert!(c.closed().await);
}

#[tokio::test(start_paused = true)]
async fn builder_rejects_inconsistent_settings() {
    let bad = [
        Server::builder().no_tcp().tick_time(Duration::ZERO),
        Server::builder()
            .no_tcp()
            .min_session_timeout(Duration::from_secs(9))
            .max_session_timeout(Duration::from_secs(1)),
        Server::builder().no_tcp().max_frame(0),
    ];
    for b in bad {
        assert!(matches!(b.start().await, Err(Error::InvalidArgument(_))));
    }
    let h = Server::builder().no_tcp().start().await.unwrap();
    assert_eq!((h.local_addr(), h.connect_string()), (None, String::new()));
    assert_eq!(h.node_count(), 4);
}
