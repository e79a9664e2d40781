//! Test helpers: a [`Harness`] that drives the server's state directly (frames in, decoded
//! replies and notifications out, with a hand-moved clock), and a [`Raw`] wire client over an
//! in-process connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;

use super::super::outbox::Outbox;
use super::super::peer::Peer;
use super::super::sessions::ConnId;
use super::super::state::{Flow, State};
use super::super::{Config, Now, ServerHandle};
use crate::proto::frame::{split_frame, write_record_frame, write_request_frame};
use crate::proto::{
    Acl, ConnectRequest, ConnectResponse, CreateRequest, Decode, ErrorCode, EventType, Id, OpCode, Perms, Reader,
    ReplyHeader, Request, Response, Stat, WatcherEvent,
};

/// Wall-clock ms the harness starts at (any fixed value).
pub(crate) const WALL0: i64 = 1_700_000_000_000;

/// A decoded reply.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub header: ReplyHeader,
    pub body: Option<Response>,
}

impl Reply {
    /// The error code.
    pub(crate) fn err(&self) -> ErrorCode {
        ErrorCode::from_i32(self.header.err).unwrap_or(ErrorCode::SystemError)
    }

    /// The stat carried by the body, if any.
    pub(crate) fn stat(&self) -> Stat {
        match &self.body {
            Some(Response::Stat(s))
            | Some(Response::Created { stat: s, .. })
            | Some(Response::Data { stat: s, .. })
            | Some(Response::Children { stat: s, .. })
            | Some(Response::Acl { stat: s, .. }) => *s,
            other => panic!("no stat in {other:?}"),
        }
    }

    /// The path of a create reply.
    pub(crate) fn path(&self) -> String {
        match &self.body {
            Some(Response::Path(p)) | Some(Response::Created { path: p, .. }) => p.clone(),
            other => panic!("no path in {other:?}"),
        }
    }
}

/// One connection of the harness.
#[derive(Debug)]
pub(crate) struct Client {
    pub conn: ConnId,
    pub outbox: Arc<Outbox>,
    pub session: i64,
    pub passwd: Bytes,
    xid: i32,
    /// Notifications received so far, in order.
    pub events: Vec<(EventType, String)>,
}

/// Drives a [`State`] directly.
#[derive(Debug)]
pub(crate) struct Harness {
    pub st: State,
    pub now: Now,
}

pub(crate) fn create_req(path: &str, data: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
    }
}

pub(crate) fn acl(perms: Perms, scheme: &str, id: &str) -> Acl {
    Acl::new(perms, Id::new(scheme, id))
}

pub(crate) fn digest_acl(perms: Perms, user: &str, password: &str) -> Acl {
    acl(perms, "digest", &super::super::acl::digest(&format!("{user}:{password}")))
}

/// The harness's default configuration: tick 1000 ms, sessions 2 s to 20 s.
pub(crate) fn config() -> Config {
    Config { tick: Duration::from_millis(1000), ..Config::default() }
}

impl Harness {
    pub(crate) fn new() -> Harness {
        Harness::with(config())
    }

    pub(crate) fn with(cfg: Config) -> Harness {
        Harness { st: State::new(Arc::new(cfg), WALL0), now: Now { ms: 0, wall: WALL0 } }
    }

    /// Moves the clock forward.
    pub(crate) fn advance(&mut self, ms: i64) {
        self.now.ms += ms;
        self.now.wall += ms;
    }

    /// A new connection with a new session (timeout 10 s unless clamped).
    pub(crate) fn client(&mut self) -> Client {
        self.client_with(10_000, 0, Bytes::from_static(&[0; 16])).expect("new session")
    }

    /// A connection whose handshake asks for `session`/`passwd`; `Err` with the close mode when
    /// refused.
    pub(crate) fn client_with(&mut self, timeout: i32, session: i64, passwd: Bytes) -> Result<Client, Flow> {
        let budget = Arc::new(super::super::outbox::Budget::new(usize::MAX));
        let outbox = Arc::new(Outbox::new(CancellationToken::new(), 64 << 20, budget));
        let peer = Peer { ip: "127.0.0.1".into(), display: "/127.0.0.1:1".into(), tcp: None };
        let conn = self.st.register_conn(outbox.clone(), CancellationToken::new(), &peer, self.now);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        let res = self.st.connect(self.now, conn, &req);
        let mut buf = outbox.take_all();
        let frame = split_frame(&mut buf, usize::MAX).ok().flatten();
        res?;
        let resp = ConnectResponse::decode_bytes(frame.expect("a ConnectResponse")).expect("decodes");
        Ok(Client { conn, outbox, session: resp.session_id, passwd: resp.passwd, xid: 0, events: Vec::new() })
    }

    /// Sends a raw frame (header included) and returns the flow and every frame produced on
    /// `c`'s connection.
    pub(crate) fn raw(&mut self, c: &mut Client, frame: Bytes) -> (Flow, Vec<(ReplyHeader, Bytes)>) {
        let flow = self.st.handle_frame(self.now, c.conn, frame);
        (flow, drain(&c.outbox))
    }

    /// Sends `req` and returns its reply; notifications that came before it are appended to
    /// `c.events`.
    pub(crate) fn req(&mut self, c: &mut Client, req: &Request) -> Reply {
        c.xid += 1;
        let xid = match req.op_code() {
            OpCode::Ping => crate::proto::xid::PING,
            OpCode::Auth => crate::proto::xid::AUTH,
            _ => c.xid,
        };
        let mut buf = BytesMut::new();
        write_request_frame(&mut buf, xid, req);
        let frame = split_frame(&mut buf, usize::MAX).unwrap().unwrap();
        let (_, frames) = self.raw(c, frame);
        let mut reply = None;
        for (h, body) in frames {
            if h.xid == -1 {
                assert!(reply.is_none(), "notification after the reply");
                let ev = WatcherEvent::decode_bytes(body).unwrap();
                c.events.push((EventType::from_i32(ev.event_type).unwrap(), ev.path));
            } else {
                assert!(reply.is_none(), "two replies");
                let resp = if h.err == 0 {
                    Some(Response::decode(req.op_code(), &mut Reader::new(body)).expect("reply body decodes"))
                } else {
                    assert!(body.is_empty(), "error replies have no body");
                    None
                };
                reply = Some(Reply { header: h, body: resp });
            }
        }
        reply.expect("a reply")
    }

    /// Takes the notifications queued for `c` (by other clients' requests).
    pub(crate) fn events(&mut self, c: &mut Client) -> Vec<(EventType, String)> {
        for (h, body) in drain(&c.outbox) {
            assert_eq!(h.xid, -1, "only notifications expected");
            assert_eq!(h.zxid, -1, "3.8.0 sends notifications with zxid -1");
            let ev = WatcherEvent::decode_bytes(body).unwrap();
            c.events.push((EventType::from_i32(ev.event_type).unwrap(), ev.path));
        }
        std::mem::take(&mut c.events)
    }

    /// Shorthand: the error of a create of `path` with `flags`.
    pub(crate) fn create(&mut self, c: &mut Client, path: &str, flags: i32) -> Reply {
        self.req(c, &Request::Create(create_req(path, b"", flags)))
    }

    /// Stat of `path` (via exists) or its error.
    pub(crate) fn stat(&mut self, c: &mut Client, path: &str) -> Result<Stat, ErrorCode> {
        let r = self.req(c, &Request::Exists { path: path.into(), watch: false });
        if r.header.err == 0 {
            Ok(r.stat())
        } else {
            Err(r.err())
        }
    }

    /// Authenticates `c` with a digest credential.
    pub(crate) fn auth(&mut self, c: &mut Client, user: &str, password: &str) {
        let r = self.req(
            c,
            &Request::Auth(crate::proto::AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: Bytes::from(format!("{user}:{password}")),
            }),
        );
        assert_eq!(r.header.err, 0);
    }
}

/// Splits an outbox's bytes into (header, rest) frames.
pub(crate) fn drain(outbox: &Outbox) -> Vec<(ReplyHeader, Bytes)> {
    let mut buf = outbox.take_all();
    let mut out = Vec::new();
    while let Some(frame) = split_frame(&mut buf, usize::MAX).unwrap() {
        let mut r = Reader::new(frame);
        let h = ReplyHeader::decode(&mut r).unwrap();
        out.push((h, r.into_rest()));
    }
    out
}

/// A wire-level client over an in-process connection.
#[derive(Debug)]
pub(crate) struct Raw {
    pub io: DuplexStream,
    buf: BytesMut,
    pub xid: i32,
    pub events: Vec<(EventType, String)>,
}

/// How long raw-frame tests wait for something that should happen at once.
const WAIT: Duration = Duration::from_secs(5);

impl Raw {
    /// Opens an in-process connection without a handshake.
    pub(crate) fn open(h: &ServerHandle) -> Raw {
        Raw { io: h.connect_in_process().unwrap(), buf: BytesMut::new(), xid: 0, events: Vec::new() }
    }

    /// Opens a connection and completes a handshake for a new session.
    pub(crate) async fn connect(h: &ServerHandle) -> (Raw, ConnectResponse) {
        let mut raw = Raw::open(h);
        let resp = raw.handshake(0, Bytes::from_static(&[0; 16]), 0, 10_000).await.expect("connected");
        (raw, resp)
    }

    /// Sends a ConnectRequest and reads the answer (`None` if the server closed instead).
    pub(crate) async fn handshake(
        &mut self,
        session: i64,
        passwd: Bytes,
        last_zxid: i64,
        timeout: i32,
    ) -> Option<ConnectResponse> {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        let mut b = BytesMut::new();
        write_record_frame(&mut b, &req);
        self.send(&b).await;
        let f = self.frame().await?;
        Some(ConnectResponse::decode_bytes(f).unwrap())
    }

    /// Writes bytes (ignoring a closed pipe: the test then checks for EOF).
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        let _ = self.io.write_all(bytes).await;
    }

    /// Sends a request with the next xid (or the ping xid) and returns that xid.
    pub(crate) async fn send_req(&mut self, req: &Request) -> i32 {
        self.xid += 1;
        let xid = if req.op_code() == OpCode::Ping { crate::proto::xid::PING } else { self.xid };
        let mut b = BytesMut::new();
        write_request_frame(&mut b, xid, req);
        self.send(&b).await;
        xid
    }

    /// Sends a frame made of `xid`, `op` and a raw body.
    pub(crate) async fn send_raw_req(&mut self, xid: i32, op: i32, body: &[u8]) {
        let mut b = BytesMut::new();
        b.put_i32(8 + body.len() as i32);
        b.put_i32(xid);
        b.put_i32(op);
        b.put_slice(body);
        self.send(&b).await;
    }

    /// The next frame, `None` on EOF or if nothing comes within a few (possibly virtual) seconds.
    pub(crate) async fn frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(f) = split_frame(&mut self.buf, usize::MAX).ok().flatten() {
                return Some(f);
            }
            self.buf.reserve(64 << 10);
            match tokio::time::timeout(WAIT, self.io.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// The next non-notification reply (notifications are collected into `events`).
    pub(crate) async fn reply(&mut self) -> Option<(ReplyHeader, Bytes)> {
        loop {
            let mut r = Reader::new(self.frame().await?);
            let h = ReplyHeader::decode(&mut r).unwrap();
            if h.xid == -1 {
                let ev = WatcherEvent::decode(&mut r).unwrap();
                self.events.push((EventType::from_i32(ev.event_type).unwrap(), ev.path));
                continue;
            }
            return Some((h, r.into_rest()));
        }
    }

    /// Sends `req` and waits for its reply.
    pub(crate) async fn call(&mut self, req: &Request) -> (ReplyHeader, Bytes) {
        let xid = self.send_req(req).await;
        let (h, body) = self.reply().await.expect("a reply");
        assert_eq!(h.xid, xid);
        (h, body)
    }

    /// Whether the server closes the connection (EOF) within the wait, reading past any data.
    pub(crate) async fn closed(&mut self) -> bool {
        loop {
            self.buf.reserve(64 << 10);
            match tokio::time::timeout(WAIT, self.io.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}
