//! Tests of the cache's task against a scripted server (core's `MockServer`): what only a mock
//! can make a server do, such as answer `addWatch` with `UNIMPLEMENTED`.

use conclave_core::proto::{ErrorCode, OpCode, Request, Response};
use conclave_core::testing::MockServer;
use conclave_core::{Client, Stat};
use futures::StreamExt;

use super::{CacheEvent, TreeCache};

fn stat(czxid: i64, mzxid: i64, version: i32, num_children: i32) -> Stat {
    Stat { czxid, mzxid, version, num_children, ..Stat::default() }
}

fn watched(request: &Request) -> bool {
    match request {
        Request::GetData { watch, .. } | Request::GetChildren { watch, .. } | Request::Exists { watch, .. } => *watch,
        _ => false,
    }
}

/// A server that answers `addWatch` with UNIMPLEMENTED (ZooKeeper before 3.6): the cache
/// reads with one-shot watches instead, and a fired watch makes it read (and watch) again.
#[tokio::test]
async fn unimplemented_add_watch_falls_back_to_one_shot_watches() {
    let mut server = MockServer::new();
    let (client, mut conn) = server.connect(Client::builder(), 0x42).await.expect("connect");
    let cache = TreeCache::new(&client, "/c").expect("start");
    let mut events = cache.events();

    let add = conn.expect_request().await;
    assert_eq!(add.op, OpCode::AddWatch);
    conn.reply(add.xid, 1, ErrorCode::Unimplemented, None).await;

    let root = conn.expect_request().await;
    assert_eq!((root.op, watched(&root.request)), (OpCode::GetData, true));
    let data = |d: &str, s| Response::Data { data: Some(d.as_bytes().to_vec().into()), stat: s };
    conn.reply(root.xid, 2, ErrorCode::Ok, Some(&data("r", stat(1, 1, 0, 1)))).await;
    let list = conn.expect_request().await;
    assert_eq!((list.op, watched(&list.request)), (OpCode::GetChildren, true));
    conn.reply(list.xid, 2, ErrorCode::Ok, Some(&Response::Names(vec!["a".into()]))).await;
    let child = conn.expect_request().await;
    assert_eq!((child.op, watched(&child.request)), (OpCode::GetData, true));
    conn.reply(child.xid, 2, ErrorCode::Ok, Some(&data("a0", stat(2, 2, 0, 0)))).await;
    // A leaf's children are listed too: the child watch sees the ones to come.
    let leaf = conn.expect_request().await;
    assert_eq!((leaf.op, watched(&leaf.request)), (OpCode::GetChildren, true));
    conn.reply(leaf.xid, 2, ErrorCode::Ok, Some(&Response::Names(vec![]))).await;

    let mut got = Vec::new();
    while got.last() != Some(&CacheEvent::Initialized) {
        got.push(events.next().await.expect("open").expect("ok"));
    }
    assert_eq!(got.len(), 3, "{got:?}");

    // The data watch on /c/a fires: read (and watch) again.
    conn.notify(conclave_core::EventType::NodeDataChanged, "/c/a").await;
    let again = conn.expect_request().await;
    assert_eq!((again.op, watched(&again.request)), (OpCode::GetData, true));
    assert!(matches!(&again.request, Request::GetData { path, .. } if path == "/c/a"));
    conn.reply(again.xid, 3, ErrorCode::Ok, Some(&data("a1", stat(2, 3, 1, 0)))).await;
    match events.next().await.expect("open").expect("ok") {
        CacheEvent::Updated { path, node } => assert_eq!((path.as_str(), &node.data[..]), ("/c/a", &b"a1"[..])),
        other => panic!("expected the update, got {other:?}"),
    }

    // The child watch on /c fires: list, and read the new child only.
    conn.notify(conclave_core::EventType::NodeChildrenChanged, "/c").await;
    let relist = conn.expect_request().await;
    assert_eq!((relist.op, watched(&relist.request)), (OpCode::GetChildren, true));
    conn.reply(relist.xid, 4, ErrorCode::Ok, Some(&Response::Names(vec!["a".into(), "b".into()]))).await;
    let new = conn.expect_request().await;
    assert!(matches!(&new.request, Request::GetData { path, watch: true } if path == "/c/b"), "{new:?}");
    conn.reply(new.xid, 4, ErrorCode::Ok, Some(&data("b0", stat(4, 4, 0, 0)))).await;
    match events.next().await.expect("open").expect("ok") {
        CacheEvent::Added { path, .. } => assert_eq!(path, "/c/b"),
        other => panic!("expected the new child, got {other:?}"),
    }
}
