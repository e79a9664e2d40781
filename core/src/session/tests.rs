//! The session loop driven through a real [`Client`] against a scripted peer
//! ([`crate::testing::MockServer`]), for what no real server does on demand: a reply with the
//! wrong xid, a connection that ends in the middle of a reply, a notification between two
//! replies, and what is sent again after a cut. All run in virtual time.

use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};

use crate::error::Error;
use crate::proto::{ErrorCode, EventType, OpCode, Request, Response, Stat};
use crate::testing::{MockConn, MockServer, MOCK_SESSION_TIMEOUT_MS};
use crate::{Client, SessionState};

/// How long a step may take before the test gives up (virtual time: no real wait).
const STEP: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test if it does not complete within [`STEP`].
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut).await.expect("no result in time")
}

fn data(bytes: &'static [u8], zxid: i64) -> Response {
    let stat = Stat { mzxid: zxid, data_length: bytes.len() as i32, ..Stat::default() };
    Response::Data { data: Some(Bytes::from_static(bytes)), stat }
}

/// A mock server and a client connected to it with session `session_id`.
async fn start(session_id: i64) -> (MockServer, Client, MockConn) {
    let mut server = MockServer::new();
    let (client, conn) = server.connect(Client::builder(), session_id).await.expect("connected");
    (server, client, conn)
}

/// Accepts the client's reconnect and checks that it resumes `session_id`.
async fn accept_resume(server: &mut MockServer, session_id: i64) -> MockConn {
    let mut conn = server.accept().await;
    let request = conn.accept_session(session_id, MOCK_SESSION_TIMEOUT_MS).await;
    assert_eq!(request.session_id, session_id, "the reconnect resumes the same session");
    conn
}

/// ZooKeeper answers a session's requests in order, so a reply must carry the xid of the oldest
/// request in flight. One that does not is a protocol failure: every request in flight fails
/// with ConnectionLoss (none is answered with another's reply) and the client reconnects to the
/// same session. (Style rule 4; the Java client's "Xid out of order".)
#[tokio::test(start_paused = true)]
async fn reply_xid_out_of_order_breaks_the_connection() {
    let (mut server, client, mut conn) = start(0x5e55_0001).await;
    let a = client.get_data("/a");
    let b = client.get_data("/b");
    let ra = conn.expect_request().await;
    let rb = conn.expect_request().await;
    assert_eq!((ra.op, rb.op), (OpCode::GetData, OpCode::GetData));
    assert_eq!(rb.xid, ra.xid + 1, "xids in call order");
    // The reply to b comes first.
    conn.reply(rb.xid, 5, ErrorCode::Ok, Some(&data(b"b", 5))).await;
    assert_eq!(within(a).await, Err(Error::ConnectionLoss), "a is not answered with b's reply");
    assert_eq!(within(b).await, Err(Error::ConnectionLoss));
    assert!(conn.next_frame().await.is_none(), "the client dropped the connection");
    let mut conn = accept_resume(&mut server, 0x5e55_0001).await;
    within(client.wait_connected()).await.expect("connected again");
    // The new connection works normally.
    let c = client.exists("/c");
    let rc = conn.expect_request().await;
    assert_eq!((rc.op, rc.xid), (OpCode::Exists, rb.xid + 1), "xids are not reset on reconnect");
    conn.reply(rc.xid, 6, ErrorCode::NoNode, None).await;
    assert_eq!(within(c).await, Ok(None));
}

/// A connection that ends in the middle of a reply frame is a connection loss: the request in
/// flight fails with ConnectionLoss (its outcome is unknown), the half frame is thrown away, and
/// the client reconnects to the same session, where requests are answered again.
#[tokio::test(start_paused = true)]
async fn eof_in_the_middle_of_a_reply() {
    let (mut server, client, mut conn) = start(0x5e55_0002).await;
    let mut states = client.state_stream();
    assert_eq!(states.next().now_or_never().flatten(), Some(SessionState::Connected));
    let a = client.get_data("/a");
    let ra = conn.expect_request().await;
    let reply = MockConn::reply_frame(ra.xid, 5, ErrorCode::Ok, Some(&data(b"hello", 5)));
    conn.send_bytes(&reply[..reply.len() - 3]).await;
    drop(conn);
    assert_eq!(within(a).await, Err(Error::ConnectionLoss));
    let mut conn = accept_resume(&mut server, 0x5e55_0002).await;
    within(client.wait_connected()).await.expect("connected again");
    assert_eq!(states.next().now_or_never().flatten(), Some(SessionState::Disconnected));
    assert_eq!(states.next().now_or_never().flatten(), Some(SessionState::Connected));
    let again = client.get_data("/a");
    let r = conn.expect_request().await;
    conn.reply(r.xid, 6, ErrorCode::Ok, Some(&data(b"hello", 6))).await;
    assert_eq!(within(again).await.expect("answered").0, Bytes::from_static(b"hello"));
}

/// A watch event is delivered before the reply to any request that follows the change that
/// fired it (ZooKeeper's ordering guarantee, protocol reference section 8.6): when the future of
/// the second request completes, the watcher set by the first has its event. The three frames
/// arrive in one piece.
#[tokio::test(start_paused = true)]
async fn notification_between_replies_reaches_the_watcher_first() {
    let (_server, client, mut conn) = start(0x5e55_0003).await;
    let first = client.get_data_and_watch("/a");
    let second = client.exists("/b");
    let r1 = conn.expect_request().await;
    let r2 = conn.expect_request().await;
    assert_eq!(r1.request, Request::GetData { path: "/a".into(), watch: true });
    assert_eq!(r2.op, OpCode::Exists);
    let mut frames = Vec::new();
    frames.extend_from_slice(&MockConn::reply_frame(r1.xid, 5, ErrorCode::Ok, Some(&data(b"a", 5))));
    frames.extend_from_slice(&MockConn::notification_frame(-1, EventType::NodeDataChanged, "/a"));
    frames.extend_from_slice(&MockConn::reply_frame(r2.xid, 6, ErrorCode::NoNode, None));
    conn.send_bytes(&frames).await;
    let (_, _, watcher) = within(first).await.expect("first reply");
    assert_eq!(within(second).await, Ok(None));
    let event = watcher.now_or_never().expect("the event came before the second reply").expect("an event");
    assert_eq!((event.event_type, event.path.as_str()), (EventType::NodeDataChanged, "/a"));
}

/// A guaranteed delete in flight when the connection is cut is sent again on the new connection,
/// with its xid, ahead of the requests made while disconnected; a plain delete fails with
/// ConnectionLoss instead. The repeat finding the node gone counts as success: the first attempt
/// may have deleted it before its reply was lost.
#[tokio::test(start_paused = true)]
async fn guaranteed_delete_is_sent_again_first_after_a_cut() {
    let (mut server, client, mut conn) = start(0x5e55_0004).await;
    let guaranteed = client.delete_guaranteed("/g", None);
    let plain = client.delete("/p", None);
    let rg = conn.expect_request().await;
    let rp = conn.expect_request().await;
    assert_eq!(rg.request, Request::Delete { path: "/g".into(), version: -1 });
    assert_eq!(rp.request, Request::Delete { path: "/p".into(), version: -1 });
    drop(conn);
    assert_eq!(within(plain).await, Err(Error::ConnectionLoss));
    // Made while disconnected: queued for the reconnect. The handshake is answered only once
    // the session task is idle (a paused clock advances only then), so the request is queued.
    let later = client.exists("/q");
    let mut conn = server.accept().await;
    let request = conn.expect_connect().await;
    assert_eq!(request.session_id, 0x5e55_0004);
    tokio::time::sleep(Duration::from_millis(1)).await;
    conn.grant_session(&request, 0x5e55_0004, MOCK_SESSION_TIMEOUT_MS).await;
    let first = conn.expect_request().await;
    assert_eq!((first.xid, &first.request), (rg.xid, &rg.request), "the guaranteed delete, resent as it was");
    let second = conn.expect_request().await;
    assert_eq!(second.request, Request::Exists { path: "/q".into(), watch: false });
    conn.reply(first.xid, 7, ErrorCode::NoNode, None).await;
    conn.reply(second.xid, 7, ErrorCode::NoNode, None).await;
    assert_eq!(within(guaranteed).await, Ok(()), "NoNode after a resend is success");
    assert_eq!(within(later).await, Ok(None));
    // A guaranteed delete answered NoNode the first time reports it.
    let fresh = client.delete_guaranteed("/h", None);
    let r = conn.expect_request().await;
    conn.reply(r.xid, 8, ErrorCode::NoNode, None).await;
    assert_eq!(within(fresh).await, Err(Error::NoNode));
}
