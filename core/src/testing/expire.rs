//! Forcing a session expiry on a real server, as Curator's `KillSession` does: attach a second
//! connection to the session (same id and password), send `closeSession` on it, and wait until
//! the victim client reports `Expired`.
//!
//! Attaching bounces the victim's connection, and the victim reconnects at once, which can take
//! the session back before `closeSession` is read. So, like kazoo's test harness, this retries
//! until the victim has seen its session expire.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::proto::{frame, ConnectRequest, Request};
use crate::session::{SessionState, Transport};

/// Attempts before giving up.
const ATTEMPTS: u32 = 20;
/// How long one attempt waits for the victim to report the expiry.
const WAIT_PER_ATTEMPT: Duration = Duration::from_secs(1);

/// Expires `client`'s session through the server it is connected to over TCP
/// ([`Client::connected_server`]), then waits until the client has seen it (its state is
/// `Expired`). Its ephemeral nodes are gone and its watchers fire as for a timeout.
///
/// # Errors
/// [`Error::InvalidArgument`] if the client is not connected over TCP (use
/// [`expire_session_over`] with an in-process transport); [`Error::Io`] if the server cannot be
/// reached; [`Error::OperationTimeout`] if the client did not see its session expire.
pub async fn expire_session(client: &Client) -> Result<()> {
    let server = client.connected_server().ok_or(Error::ConnectionLoss)?;
    if server == "in-process" {
        return Err(Error::InvalidArgument("the client is not connected over TCP: use expire_session_over".into()));
    }
    expire_session_over(client, move || {
        let server = server.clone();
        async move { tokio::net::TcpStream::connect(&server).await }
    })
    .await
}

/// As [`expire_session`], reaching the server through the transports `open` returns (for
/// instance in-process connections to the embedded server).
pub async fn expire_session_over<F, Fut, T>(client: &Client, open: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::io::Result<T>>,
    T: Transport,
{
    let mut states = client.state_stream();
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: client.last_zxid(),
        timeout: client.negotiated_timeout().as_millis().min(i32::MAX as u128) as i32,
        session_id: client.session_id(),
        passwd: client.session_password(),
        read_only: Some(false),
    };
    for _ in 0..ATTEMPTS {
        if client.state() == SessionState::Expired {
            return Ok(());
        }
        let transport = open().await.map_err(|e| Error::Io(format!("expire_session: {e}")))?;
        // Whatever this attempt's connection saw, the victim's state is what counts.
        let _ = close_over(transport, &request).await;
        let expired = tokio::time::timeout(WAIT_PER_ATTEMPT, async {
            while let Some(s) = states.next().await {
                if s == SessionState::Expired {
                    return true;
                }
                if s.is_terminal() {
                    return false;
                }
            }
            false
        })
        .await;
        match expired {
            Ok(true) => return Ok(()),
            Ok(false) => return Err(Error::Protocol(format!("session ended as {:?}, not expired", client.state()))),
            Err(_) => {}
        }
    }
    Err(Error::OperationTimeout)
}

/// Attaches to the session and sends closeSession right behind the handshake, then waits for
/// the server to close the connection (or for closeSession's reply).
async fn close_over(mut transport: impl Transport, request: &ConnectRequest) -> Result<()> {
    let io = |e: std::io::Error| Error::Io(format!("expire_session: {e}"));
    let mut out = BytesMut::new();
    frame::write_record_frame(&mut out, request);
    frame::write_request_frame(&mut out, 1, &Request::CloseSession);
    transport.write_all(&out).await.map_err(io)?;
    let mut rbuf = BytesMut::new();
    // The handshake answer, then closeSession's reply (or the end of the connection).
    for _ in 0..2 {
        if read_frame(&mut transport, &mut rbuf).await?.is_none() {
            break;
        }
    }
    Ok(())
}

/// The next frame, or `None` at end of stream.
async fn read_frame(transport: &mut impl Transport, rbuf: &mut BytesMut) -> Result<Option<Bytes>> {
    loop {
        if let Some(f) = frame::split_frame(rbuf, frame::DEFAULT_MAX_FRAME)? {
            return Ok(Some(f));
        }
        let read = tokio::time::timeout(Duration::from_secs(10), transport.read_buf(rbuf)).await;
        match read {
            Ok(Ok(0)) => return Ok(None),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(Error::Io(format!("expire_session: {e}"))),
            Err(_) => return Err(Error::OperationTimeout),
        }
    }
}
