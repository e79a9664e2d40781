//! [`MockServer`]: a scripted ZooKeeper peer at frame level, for tests of the client's session
//! loop in cases no real server produces on demand: a reply with the wrong xid, a connection that
//! ends in the middle of a frame, a notification between two replies, what a client sends again
//! after a cut. (The h2 crate tests its connection the same way, with a mock peer.)
//!
//! The client connects through [`ClientBuilder::connect_with`]: each connection it opens (the
//! first one and every reconnect) is an in-process pipe whose other end the test takes with
//! [`MockServer::accept`] and plays step by step through a [`MockConn`]: read the handshake and
//! answer it, expect a request, reply with any xid, zxid, error and body, send a notification or
//! raw bytes, and close. Nothing happens unless the test says so, except that
//! [`MockConn::expect_request`] answers pings on its way.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> conclave_core::Result<()> {
//! use conclave_core::proto::{ErrorCode, OpCode, Response, Stat};
//! use conclave_core::testing::MockServer;
//! use conclave_core::Client;
//!
//! let mut server = MockServer::new();
//! let (client, mut conn) = server.connect(Client::builder(), 0x42).await?;
//! let exists = client.exists("/a");
//! let req = conn.expect_request().await;
//! assert_eq!(req.op, OpCode::Exists);
//! conn.reply(req.xid, 7, ErrorCode::Ok, Some(&Response::Stat(Stat::default()))).await;
//! assert!(exists.await?.is_some());
//! # Ok(())
//! # }
//! ```

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::client::{Client, ClientBuilder};
use crate::error::Result;
use crate::proto::frame::{split_frame, write_event_frame, write_record_frame, write_reply_frame};
use crate::proto::{
    xid, ConnectRequest, ConnectResponse, Decode, ErrorCode, EventType, KeeperState, OpCode, Reader, ReplyHeader,
    Request, RequestHeader, Response, WatcherEvent, DEFAULT_MAX_FRAME, PASSWORD_LEN,
};

/// Buffer size of each pipe between the client and the mock.
const PIPE_BUFFER: usize = 256 << 10;
/// How long the mock waits for the client before a step fails (virtual time under
/// `tokio::time::pause`).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The session timeout the mock grants in [`MockServer::connect`] (30 s: the client pings every
/// 10 s and gives up on a silent connection after 20 s).
pub const MOCK_SESSION_TIMEOUT_MS: i32 = 30_000;

/// The server side of every connection a client opens through [`MockServer::opener`]. Connections
/// wait, in the order they were opened, until the test takes them with [`MockServer::accept`].
#[derive(Debug)]
pub struct MockServer {
    tx: mpsc::UnboundedSender<DuplexStream>,
    rx: mpsc::UnboundedReceiver<DuplexStream>,
}

impl Default for MockServer {
    fn default() -> Self {
        MockServer::new()
    }
}

impl MockServer {
    /// A mock with no connection yet.
    pub fn new() -> MockServer {
        let (tx, rx) = mpsc::unbounded_channel();
        MockServer { tx, rx }
    }

    /// What to give [`ClientBuilder::connect_with`]: every call opens a new pipe to this mock
    /// (failing once the mock is dropped, like a server that is gone).
    pub fn opener(&self) -> impl Fn() -> std::future::Ready<io::Result<DuplexStream>> + Send + Sync + 'static {
        let tx = self.tx.clone();
        move || {
            let (client, server) = tokio::io::duplex(PIPE_BUFFER);
            let sent = tx.send(server).map_err(|_| io::Error::new(io::ErrorKind::ConnectionRefused, "mock is gone"));
            std::future::ready(sent.map(|()| client))
        }
    }

    /// The next connection the client opened (waiting for one).
    ///
    /// # Panics
    /// If none comes within 30 s (of virtual time under `tokio::time::pause`).
    pub async fn accept(&mut self) -> MockConn {
        let io = tokio::time::timeout(STEP_TIMEOUT, self.rx.recv())
            .await
            .expect("the client opened no connection")
            .expect("the mock holds a sender");
        MockConn { io, buf: BytesMut::new() }
    }

    /// Connects a client built by `builder` and accepts its handshake with a new session
    /// `session_id` and a timeout of [`MOCK_SESSION_TIMEOUT_MS`]; returns the client and the
    /// connection.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect_with`].
    pub async fn connect(&mut self, builder: ClientBuilder, session_id: i64) -> Result<(Client, MockConn)> {
        let (client, conn) = tokio::join!(builder.connect_with(self.opener()), async {
            let mut conn = self.accept().await;
            conn.accept_session(session_id, MOCK_SESSION_TIMEOUT_MS).await;
            conn
        });
        Ok((client?, conn))
    }
}

/// A request the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its xid.
    pub xid: i32,
    /// Its op code.
    pub op: OpCode,
    /// Its body.
    pub request: Request,
}

/// One connection from the client, played by the test. Dropping it closes the connection.
#[derive(Debug)]
pub struct MockConn {
    io: DuplexStream,
    buf: BytesMut,
}

impl MockConn {
    /// The next frame the client sent, or `None` once it closed the connection.
    ///
    /// # Panics
    /// If nothing comes within 30 s, or the client sends a bad frame length.
    pub async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = split_frame(&mut self.buf, DEFAULT_MAX_FRAME).expect("a valid frame length") {
                return Some(frame);
            }
            self.buf.reserve(64 << 10);
            let read = tokio::time::timeout(STEP_TIMEOUT, self.io.read_buf(&mut self.buf))
                .await
                .expect("the client sent nothing");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads the client's ConnectRequest.
    ///
    /// # Panics
    /// If the connection ends first or the frame does not decode.
    pub async fn expect_connect(&mut self) -> ConnectRequest {
        let frame = self.next_frame().await.expect("a ConnectRequest");
        ConnectRequest::decode_bytes(frame).expect("a ConnectRequest that decodes")
    }

    /// Sends a ConnectResponse.
    pub async fn send_connect_response(&mut self, response: &ConnectResponse) {
        let mut out = BytesMut::new();
        write_record_frame(&mut out, response);
        self.send_bytes(&out).await;
    }

    /// Reads the ConnectRequest and accepts it with session `session_id` (a new one, or the one
    /// the client resumes) and `timeout_ms` (see [`MockConn::grant_session`]). Returns the
    /// request.
    pub async fn accept_session(&mut self, session_id: i64, timeout_ms: i32) -> ConnectRequest {
        let request = self.expect_connect().await;
        self.grant_session(&request, session_id, timeout_ms).await;
        request
    }

    /// Answers `request` with session `session_id` and `timeout_ms` (0 says the session is
    /// expired); the password is derived from the session id.
    pub async fn grant_session(&mut self, request: &ConnectRequest, session_id: i64, timeout_ms: i32) {
        let mut passwd = [0u8; PASSWORD_LEN];
        passwd[..8].copy_from_slice(&session_id.to_be_bytes());
        let response = ConnectResponse {
            protocol_version: 0,
            timeout: timeout_ms,
            session_id,
            passwd: Bytes::copy_from_slice(&passwd),
            read_only: request.read_only.map(|_| false),
        };
        self.send_connect_response(&response).await;
    }

    /// The next request the client sent (pings are answered and skipped).
    ///
    /// # Panics
    /// If the connection ends first or the request does not decode.
    pub async fn expect_request(&mut self) -> Received {
        loop {
            let frame = self.next_frame().await.expect("a request, not the end of the connection");
            let mut r = Reader::new(frame);
            let header = RequestHeader::decode(&mut r).expect("a request header");
            let op = OpCode::from_i32(header.op).expect("a known op code");
            let request = Request::decode(op, &mut r).expect("a request body that decodes");
            if op == OpCode::Ping {
                self.reply(xid::PING, 0, ErrorCode::Ok, None).await;
                continue;
            }
            return Received { xid: header.xid, op, request };
        }
    }

    /// A complete reply frame (length prefix included), for [`MockConn::send_bytes`].
    pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: Option<&Response>) -> Bytes {
        let mut out = BytesMut::new();
        write_reply_frame(&mut out, ReplyHeader { xid, zxid, err: err.as_i32() }, body);
        out.freeze()
    }

    /// A complete notification frame (xid -1) for `event` on `path`.
    pub fn notification_frame(zxid: i64, event: EventType, path: &str) -> Bytes {
        let mut out = BytesMut::new();
        let event = WatcherEvent {
            event_type: event.as_i32(),
            state: KeeperState::SyncConnected.as_i32(),
            path: path.to_string(),
        };
        write_event_frame(&mut out, zxid, &event);
        out.freeze()
    }

    /// Sends a reply with any `xid`, `zxid` and `err`, and a body when there is one.
    pub async fn reply(&mut self, xid: i32, zxid: i64, err: ErrorCode, body: Option<&Response>) {
        self.send_bytes(&MockConn::reply_frame(xid, zxid, err, body)).await;
    }

    /// Sends a watch notification (zxid -1, as ZooKeeper 3.8 does).
    pub async fn notify(&mut self, event: EventType, path: &str) {
        self.send_bytes(&MockConn::notification_frame(-1, event, path)).await;
    }

    /// Sends raw bytes: several frames at once, part of a frame, or garbage. A client that has
    /// gone is ignored (the test then sees the connection end).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.io.write_all(bytes).await;
    }
}
