//! A raw protocol connection, for attacks no well-behaved client would make: pipelined frames
//! written at once, replies read late or never.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use conclave_core::proto::frame::{split_frame, write_record_frame, write_request_frame};
use conclave_core::proto::{ConnectRequest, ConnectResponse, Decode, ReplyHeader, Request};
use conclave_core::ServerHandle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

/// One connection with a session, speaking frames.
pub struct Raw<T = DuplexStream> {
    t: T,
    buf: BytesMut,
    next_xid: i32,
    /// The session this connection holds.
    pub session_id: i64,
}

impl Raw<DuplexStream> {
    /// A new session on an in-process connection.
    pub async fn session(server: &ServerHandle) -> Raw {
        Raw::handshake(server.connect_in_process().expect("in-process connection")).await
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Raw<T> {
    /// Opens a session over `t`.
    pub async fn handshake(mut t: T) -> Raw<T> {
        let mut b = BytesMut::new();
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 5000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        };
        write_record_frame(&mut b, &req);
        t.write_all(&b).await.expect("write the handshake");
        let mut raw = Raw { t, buf: BytesMut::new(), next_xid: 1, session_id: 0 };
        let resp = raw.frame().await.expect("a handshake answer");
        let resp = ConnectResponse::decode_bytes(resp).expect("a ConnectResponse");
        assert!(resp.timeout > 0, "session granted");
        raw.session_id = resp.session_id;
        raw
    }

    /// Writes all `requests` in one write; returns the first xid.
    pub async fn send_all(&mut self, requests: &[Request]) -> i32 {
        let first = self.next_xid;
        let mut b = BytesMut::new();
        for r in requests {
            write_request_frame(&mut b, self.next_xid, r);
            self.next_xid += 1;
        }
        self.t.write_all(&b).await.expect("write requests");
        first
    }

    /// The next frame; `None` once the server closed the connection.
    pub async fn frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(f) = split_frame(&mut self.buf, 64 << 20).expect("well-formed reply") {
                return Some(f);
            }
            match tokio::time::timeout(Duration::from_secs(60), self.t.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the server neither answered nor closed the connection for 60 s"),
            }
        }
    }

    /// The next reply (notifications skipped): its header and body.
    pub async fn reply(&mut self) -> Option<(ReplyHeader, Bytes)> {
        loop {
            let mut f = self.frame().await?;
            let header = ReplyHeader::decode_bytes(f.split_to(16)).expect("a reply header");
            if header.xid != -1 {
                return Some((header, f));
            }
        }
    }

    /// The reply to a `getAllChildrenNumber`: its error code and count.
    pub async fn count_reply(&mut self) -> Option<(i32, i32)> {
        let (h, mut body) = self.reply().await?;
        Some((h.err, if h.err == 0 { body.get_i32() } else { 0 }))
    }
}
