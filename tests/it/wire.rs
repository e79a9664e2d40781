//! Raw bytes on the wire (protocol reference sections 1, 2, 3.3 and 12): what a server does with
//! bad frame lengths, undecodable bodies, unknown op codes, handshakes it must refuse, and
//! four-letter words. Written once, run against both backends.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use conclave::proto::{frame, ConnectRequest, ConnectResponse, Decode, ErrorCode, OpCode, ReplyHeader, Request};
use conclave::session::{BoxTransport, Transport};
use conclave_core::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conformance;
use crate::support::{Backend, Env};

conformance!(
    bad_frame_lengths_close_the_connection,
    undecodable_bodies_and_unknown_ops,
    handshakes_that_are_refused,
    four_letter_words
);

/// A raw connection to the test's server.
async fn raw(env: &Env) -> BoxTransport {
    match &env.backend {
        Backend::Embedded(server) => Box::new(server.connect_in_process().expect("in-process connection")),
        Backend::Real(hosts) => {
            let first = hosts.split(',').next().expect("a host");
            Box::new(tokio::net::TcpStream::connect(first).await.expect("connect"))
        }
    }
}

fn connect_request(session_id: i64, passwd: Bytes, last_zxid: i64) -> BytesMut {
    let mut b = BytesMut::new();
    frame::write_record_frame(
        &mut b,
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout: 4000,
            session_id,
            passwd,
            read_only: Some(false),
        },
    );
    b
}

/// Reads one frame; `None` when the server closes the connection (or says nothing for 10 s,
/// which fails the calling assertion as "not closed").
async fn next_frame(t: &mut BoxTransport, buf: &mut BytesMut) -> Option<Bytes> {
    loop {
        if let Ok(Some(f)) = frame::split_frame(buf, 16 << 20) {
            return Some(f);
        }
        match tokio::time::timeout(Duration::from_secs(10), t.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server neither answered nor closed the connection"),
        }
    }
}

/// Whether the server closes the connection (without sending a frame first).
async fn closes(t: &mut BoxTransport) -> bool {
    let mut buf = BytesMut::new();
    next_frame(t, &mut buf).await.is_none()
}

/// A connection with a new session established.
async fn session(env: &Env) -> (BoxTransport, BytesMut) {
    let mut t = raw(env).await;
    t.write_all(&connect_request(0, Bytes::from_static(&[0; 16]), 0)).await.expect("write");
    let mut buf = BytesMut::new();
    let resp = next_frame(&mut t, &mut buf).await.expect("handshake answer");
    assert!(ConnectResponse::decode_bytes(resp).expect("decode").timeout > 0);
    (t, buf)
}

async fn write_raw(t: &mut (impl Transport + ?Sized), bytes: &[u8]) {
    t.write_all(bytes).await.expect("write");
}

/// A frame length below 0, of 0, or above `jute.maxbuffer` closes the connection, before or
/// after the handshake.
async fn bad_frame_lengths_close_the_connection(env: Env) -> Result<()> {
    for len in [-5i32, 0, 0xfffff + 1, i32::MAX] {
        let mut t = raw(&env).await;
        write_raw(&mut t, &len.to_be_bytes()).await;
        assert!(closes(&mut t).await, "length {len} before the handshake");
        let (mut t, _) = session(&env).await;
        write_raw(&mut t, &len.to_be_bytes()).await;
        assert!(closes(&mut t).await, "length {len} after the handshake");
    }
    Ok(())
}

/// A body that does not decode gets MARSHALLINGERROR and the connection stays open; an unknown
/// op code gets UNIMPLEMENTED and the connection is closed.
async fn undecodable_bodies_and_unknown_ops(env: Env) -> Result<()> {
    let (mut t, mut buf) = session(&env).await;
    // getData whose path claims 5000 bytes in a 15-byte frame.
    let mut f = BytesMut::new();
    f.put_i32(15);
    f.put_i32(1);
    f.put_i32(OpCode::GetData.as_i32());
    f.put_i32(5000);
    f.put_slice(b"/a\x00");
    write_raw(&mut t, &f).await;
    let reply = ReplyHeader::decode_bytes(next_frame(&mut t, &mut buf).await.expect("a reply"))?;
    assert_eq!((reply.xid, reply.err), (1, ErrorCode::MarshallingError.as_i32()));
    // Still open: a request gets its answer.
    let mut f = BytesMut::new();
    frame::write_request_frame(&mut f, 2, &Request::Exists { path: "/".into(), watch: false });
    write_raw(&mut t, &f).await;
    let reply = ReplyHeader::decode_bytes(next_frame(&mut t, &mut buf).await.expect("a reply"))?;
    assert_eq!((reply.xid, reply.err), (2, 0));
    // Op code 999.
    let mut f = BytesMut::new();
    f.put_i32(8);
    f.put_i32(3);
    f.put_i32(999);
    write_raw(&mut t, &f).await;
    let reply = ReplyHeader::decode_bytes(next_frame(&mut t, &mut buf).await.expect("a reply"))?;
    assert_eq!((reply.xid, reply.err), (3, ErrorCode::Unimplemented.as_i32()));
    assert!(next_frame(&mut t, &mut buf).await.is_none(), "closed after UNIMPLEMENTED");
    Ok(())
}

/// Resuming an unknown session, or a live one with the wrong password, is answered as expired
/// (timeout 0); a client that has seen a zxid the server has not is refused without an answer;
/// garbage instead of a ConnectRequest closes the connection.
async fn handshakes_that_are_refused(env: Env) -> Result<()> {
    let mut t = raw(&env).await;
    write_raw(&mut t, &connect_request(0x7357_0000_0001, Bytes::from_static(&[1; 16]), 0)).await;
    let mut buf = BytesMut::new();
    let resp = ConnectResponse::decode_bytes(next_frame(&mut t, &mut buf).await.expect("an answer"))?;
    assert_eq!((resp.timeout, resp.session_id), (0, 0), "unknown session");

    // The live session is held on a raw connection, not by a client: ZooKeeper closes a session's
    // connection when anyone asks to resume it (before checking the password), and a client would
    // reconnect at once, and that reconnect would in turn close the wrong-password connection,
    // racing its answer.
    let mut live = raw(&env).await;
    write_raw(&mut live, &connect_request(0, Bytes::from_static(&[0; 16]), 0)).await;
    let mut buf = BytesMut::new();
    let granted = ConnectResponse::decode_bytes(next_frame(&mut live, &mut buf).await.expect("handshake answer"))?;
    assert!(granted.timeout > 0);
    let mut t = raw(&env).await;
    write_raw(&mut t, &connect_request(granted.session_id, Bytes::from_static(&[9; 16]), 0)).await;
    let mut buf = BytesMut::new();
    let resp = ConnectResponse::decode_bytes(next_frame(&mut t, &mut buf).await.expect("an answer"))?;
    assert_eq!(resp.timeout, 0, "wrong password");

    let mut t = raw(&env).await;
    write_raw(&mut t, &connect_request(0, Bytes::from_static(&[0; 16]), i64::MAX / 2)).await;
    assert!(closes(&mut t).await, "a client ahead of the server is refused");

    let mut t = raw(&env).await;
    let mut f = BytesMut::new();
    f.put_i32(10);
    f.put_slice(b"GET / HTTP");
    write_raw(&mut t, &f).await;
    assert!(closes(&mut t).await, "garbage first frame");
    // The live session was not harmed by any of this: it resumes with its password.
    let mut t = raw(&env).await;
    write_raw(&mut t, &connect_request(granted.session_id, granted.passwd.clone(), 0)).await;
    let mut buf = BytesMut::new();
    let resumed = ConnectResponse::decode_bytes(next_frame(&mut t, &mut buf).await.expect("an answer"))?;
    assert_eq!(resumed.session_id, granted.session_id, "the session survived");
    assert!(resumed.timeout > 0, "the session survived");
    Ok(())
}

/// The four-letter words health checks use, on the client port.
async fn four_letter_words(env: Env) -> Result<()> {
    let ask = |word: &'static str| {
        let env = &env;
        async move {
            let mut t = raw(env).await;
            write_raw(&mut t, word.as_bytes()).await;
            let mut out = String::new();
            tokio::time::timeout(Duration::from_secs(10), t.read_to_string(&mut out))
                .await
                .expect("answer")
                .expect("read");
            out
        }
    };
    assert_eq!(ask("ruok").await, "imok");
    let srvr = ask("srvr").await;
    for line in ["Zookeeper version: 3.8", "Zxid: 0x", "Mode: standalone", "Node count: "] {
        assert!(srvr.contains(line), "{line:?} missing from srvr:\n{srvr}");
    }
    let mntr = ask("mntr").await;
    for key in ["zk_version\t", "zk_server_state\tstandalone", "zk_znode_count\t", "zk_num_alive_connections\t"] {
        assert!(mntr.contains(key), "{key:?} missing from mntr:\n{mntr}");
    }
    assert!(ask("stat").await.contains("Clients:"));
    Ok(())
}
