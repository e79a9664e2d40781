//! The public client handle. A [`Client`] is a cheap `Clone` of a handle to one session; every
//! operation validates its arguments, encodes the request and queues it on the session **when the
//! method is called**, so the server sees requests in call order and many can be in flight at once
//! (pipelining). The returned futures only wait for the reply; dropping one does not cancel the
//! request, it only discards the answer.

mod builder;
mod data;
mod multi;
mod ops;
mod options;
mod protected;
mod tree;
mod watcher;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::proto::{frame, OpCode, Request, Response};
use crate::session::{
    Command, Effect, Outgoing, RawReply, SessionState, Shared, StateStream, WatchKind, WatchRegistration, WatchSink,
};

pub use crate::session::WatchedEvent;
pub use builder::ClientBuilder;
pub use data::Data;
pub use multi::Transaction;
pub use options::{CreateOptions, Op, OpResult, ReadOp, ReadResult, MAX_TTL};
pub use watcher::{OneshotWatcher, PersistentWatcher};

/// A handle to a ZooKeeper session.
///
/// Cloning is cheap and every clone talks through the same session. The session ends when
/// [`Client::close`] is called or when the last clone is dropped (then `closeSession` is sent in
/// the background), or when the server expires it.
///
/// # Ordering
/// Requests are queued when a method is called, not when its future is first polled, so the
/// order of calls is the order in which the server applies them, and the order in which their
/// futures complete. Watch events are delivered before the reply to any request that follows
/// the change that fired them.
///
/// # Node data
/// Every argument that is node data ([`Client::create`], [`Client::set_data`],
/// [`Client::create_all`], [`Client::create_protected`], [`Transaction`], [`Op`]) takes
/// `impl Into<`[`Data`]`>`: `"text"`, `String`, `b"bytes"`, `&[u8]`, `Vec<u8>` or [`Bytes`],
/// borrowed or owned. Borrowed data is copied when the method is called, so the returned future
/// does not borrow it (`create`, `set_data` and `create_all` return a boxed future for that
/// reason: an `impl Future` would keep the borrow alive).
///
/// # Connection loss
/// If the connection breaks, requests in flight fail with [`Error::ConnectionLoss`]: they may or
/// may not have been applied (see [`crate::retry`] for what is safe to repeat, and
/// [`Client::create_protected`] for sequential nodes). The client reconnects to the same
/// session on its own, trying the other servers of the connect string with back-off (state
/// `Disconnected`, then `Connected` again; [`Client::connection_states`] reports `Suspended`
/// and `Reconnected`). Requests made meanwhile wait and are sent after the reconnect, unless the
/// client was built with [`ClientBuilder::fail_fast_when_disconnected`] or a
/// [`ClientBuilder::request_timeout`]. Credentials are replayed and watches re-registered, so
/// that changes made meanwhile still fire, once.
///
/// # Session end
/// When the server says the session expired (or no server was heard from for 4/3 of the session
/// timeout), when it is closed, moved to another client or refused authentication, every
/// pending request, watcher and stream ends with the matching error and the handle is done:
/// [`Client::reconnect_new_session`] builds a fresh session with the same settings.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Command>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("{:#x}", self.session_id()))
            .field("state", &self.state())
            .field("chroot", &self.shared.chroot.as_str())
            .finish()
    }
}

impl Client {
    /// A builder for a client with non-default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects with default settings to `connect_string` (`host:port,host:port[/chroot]`).
    pub async fn connect(connect_string: &str) -> Result<Client> {
        Client::builder().connect(connect_string).await
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, tx: mpsc::UnboundedSender<Command>) -> Client {
        Client { shared, tx }
    }

    /// The session id (0 before the first connection).
    pub fn session_id(&self) -> i64 {
        self.shared.session_id()
    }

    /// The session password, with [`Client::session_id`] enough to re-attach to the session.
    pub fn session_password(&self) -> Bytes {
        self.shared.password()
    }

    /// The session timeout the server granted.
    pub fn negotiated_timeout(&self) -> Duration {
        self.shared.negotiated_timeout()
    }

    /// The highest zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.shared.last_zxid()
    }

    /// The server the session is connected to right now (`host:port` as given in the connect
    /// string, or `in-process` for a custom transport); `None` while disconnected.
    pub fn connected_server(&self) -> Option<String> {
        self.shared.connected_server()
    }

    /// The largest reply frame this client accepts
    /// ([`ClientBuilder::max_reply_frame`], 4 MiB by default). A server reply larger than this
    /// (a listing of a very large directory) breaks the connection instead of being answered,
    /// so recipes that list large directories check the expected size against it first.
    pub fn max_reply_frame(&self) -> usize {
        self.shared.config.max_reply_frame
    }

    /// The value of type `T` kept with this session handle: created with `T::default()` by the
    /// first call, then the same one for every call on this client and its clones, dropped with
    /// the handle's state once the last clone is gone. For libraries built on the client that
    /// keep state per session (the recipes' exactly-once markers, for example); a new session
    /// ([`Client::reconnect_new_session`]) starts with none. Use a type of your own as `T`, so
    /// that no other library shares it. The value must not hold a clone of the client (that
    /// would keep the handle's state alive for ever), and `T::default` must not call `local`.
    pub fn local<T: std::any::Any + Send + Sync + Default>(&self) -> Arc<T> {
        let mut locals = self.shared.locals.lock().unwrap_or_else(|e| e.into_inner());
        let value = locals.entry(std::any::TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()));
        value.clone().downcast::<T>().expect("a local is stored under its own type's id")
    }

    /// The chroot every path is relative to, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.shared.chroot.as_str()
    }

    /// The current session state.
    pub fn state(&self) -> SessionState {
        self.shared.state.get()
    }

    /// Every session state transition from now on, starting with the current state; the stream
    /// ends after a terminal state (`Expired`, `AuthFailed`, `Closed`).
    pub fn state_stream(&self) -> StateStream {
        self.shared.state.subscribe()
    }

    /// The recipe-level connection events: `Connected`, `Suspended`, `Reconnected`, `Lost`,
    /// `ReadOnly` (see [`ConnectionState`](crate::ConnectionState) for exactly when each fires and
    /// what a lock holder must do). The stream starts with the current condition and ends after
    /// `Lost`.
    pub fn connection_states(&self) -> crate::session::ConnectionStateStream {
        self.shared.state.subscribe_connection()
    }

    /// Waits until the session is connected (returns at once if it is), or fails with the
    /// terminal error if it ends first.
    pub async fn wait_connected(&self) -> Result<()> {
        let mut rx = self.shared.state.watch();
        let state = *rx.wait_for(|s| s.is_connected() || s.is_terminal()).await.map_err(|_| Error::Closed)?;
        state.terminal_error().map_or(Ok(()), Err)
    }

    /// This session's highest-zxid-seen (shared with other clients if one was given to the
    /// builder).
    pub fn zxid_floor(&self) -> crate::ZxidFloor {
        self.shared.zxid_floor()
    }

    /// What another [`Client`] (or process) needs to take this session over with
    /// [`ClientBuilder::session`].
    pub fn credentials(&self) -> crate::SessionCredentials {
        self.shared.credentials()
    }

    /// Stops using the session **without closing it** and returns its credentials, so that
    /// another process can take it over with [`ClientBuilder::session`] (its ephemeral nodes
    /// stay). This handle ends in state `Moved`; pending requests fail with
    /// [`Error::SessionMoved`]. Within one process this is not needed: attaching from a second
    /// client stops the first one by itself.
    pub async fn detach(&self) -> crate::SessionCredentials {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Detach(tx)).is_ok() {
            if let Ok(creds) = rx.await {
                return creds;
            }
        }
        self.credentials()
    }

    /// A new session built like this one (same servers, chroot, credentials and options): what
    /// to do once this one has expired. This handle stays as it is (terminal once expired).
    pub async fn reconnect_new_session(&self) -> Result<Client> {
        let mut config = self.shared.config.clone();
        // The new session must not read older state than this one saw either.
        config.floor = Some(self.shared.zxid_floor());
        builder::connect_config(config).await
    }

    /// Runs `op` again while it fails with an unknown outcome (`ConnectionLoss`,
    /// `OperationTimeout`) and `policy` allows; see [`crate::retry`] for which operations are
    /// safe to repeat.
    pub async fn retry<T, F, Fut>(&self, policy: &crate::RetryPolicy, op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        crate::retry::retry(policy, op).await
    }

    /// Closes the session: sends `closeSession` (so its ephemeral nodes go at once), waits for
    /// the server's confirmation (up to a few seconds), and ends every request, watcher and
    /// stream of the session with [`Error::Closed`]. Closing a session that already ended is a
    /// no-op.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The server path for a client path, after validating it.
    fn server_path(&self, path: &str) -> Result<String> {
        crate::path::validate_path(path)?;
        Ok(self.shared.chroot.to_server(path))
    }

    /// The error for a session that no longer takes requests.
    fn ended(&self) -> Error {
        self.state().terminal_error().unwrap_or(Error::Closed)
    }

    /// Encodes `req` and queues it. The returned future resolves with the raw reply.
    fn send(&self, req: Request, effect: Effect) -> Result<impl Future<Output = Result<RawReply>> + Send + 'static> {
        self.send_as(req, effect, false)
    }

    /// As [`Client::send`]; a `guaranteed` request has no deadline and is sent again after a
    /// reconnect until it is answered or the session ends.
    fn send_as(
        &self,
        req: Request,
        effect: Effect,
        guaranteed: bool,
    ) -> Result<impl Future<Output = Result<RawReply>> + Send + 'static> {
        let op = req.op_code();
        let xid = self.shared.next_xid();
        let mut buf = BytesMut::with_capacity(64 + req.path().map_or(0, str::len));
        let len = frame::write_request_frame(&mut buf, xid, &req);
        if len > self.shared.max_frame {
            return Err(Error::DataTooLarge { size: len, limit: self.shared.max_frame });
        }
        let (tx, rx) = oneshot::channel();
        let timeout = self.shared.config.request_timeout;
        let started = tokio::time::Instant::now();
        let deadline = if guaranteed { None } else { timeout.map(|t| started + t) };
        let out =
            Outgoing { xid, op, frame: buf.freeze(), responder: Some(tx), effect, deadline, guaranteed, resent: false };
        if self.tx.send(Command::Request(out)).is_err() {
            return Err(self.ended());
        }
        let span = tracing::debug_span!("zk_request", op = op.name(), path = req.path().unwrap_or(""), xid);
        let ended = self.clone_ended();
        Ok(async move {
            let reply = async { rx.await.unwrap_or_else(|_| Err(ended())) };
            let result = match deadline {
                Some(d) => tokio::time::timeout_at(d, reply).await.unwrap_or(Err(Error::OperationTimeout)),
                None => reply.await,
            };
            tracing::debug!(
                latency_us = started.elapsed().as_micros() as u64,
                error = result.as_ref().err().map(tracing::field::display),
                "reply"
            );
            result
        }
        .instrument(span))
    }

    /// A closure giving the terminal error later, without keeping the session alive.
    fn clone_ended(&self) -> impl FnOnce() -> Error + Send + 'static {
        let shared = Arc::downgrade(&self.shared);
        move || shared.upgrade().and_then(|s| s.state.get().terminal_error()).unwrap_or(Error::Closed)
    }

    /// Queues `req` and decodes the reply as a [`Response`] to `op`.
    fn call(&self, req: Request) -> impl Future<Output = Result<Response>> + Send + 'static {
        let op = req.op_code();
        after(self.send(req, Effect::None), move |raw| decode(op, raw?))
    }

    /// A one-shot watcher about to be registered by a read of `path` (a server path).
    fn oneshot_watch(&self, kind: WatchKind, path: &str) -> (WatchRegistration, OneshotWatcher) {
        let id = self.shared.next_watcher_id();
        let (tx, rx) = oneshot::channel();
        let reg = WatchRegistration { id, kind, path: path.to_string(), sink: WatchSink::Oneshot(tx) };
        (reg, OneshotWatcher::new(rx, id, self.tx.downgrade()))
    }

    /// A persistent watcher about to be registered by `addWatch` on `path` (a server path).
    fn persistent_watch(&self, kind: WatchKind, path: &str) -> (WatchRegistration, PersistentWatcher) {
        let id = self.shared.next_watcher_id();
        let (tx, rx) = mpsc::unbounded_channel();
        let reg = WatchRegistration { id, kind, path: path.to_string(), sink: WatchSink::Stream(tx) };
        (reg, PersistentWatcher::new(rx, id, self.tx.downgrade()))
    }
}

/// The future of a request that may have failed before it was sent (`sent`), its outcome
/// passed through `then`. A combinator rather than `async move { then(sent?.await) }`: an async
/// block keeps both the `Result` it captured and the future moved out of it, so each layer of
/// an op would hold its inner future twice (a `get_data` future weighed 2 KiB that way, which a
/// pipeline of thousands of reads pays per read).
pub(crate) fn after<F, T, U>(
    sent: Result<F>,
    then: impl FnOnce(Result<T>) -> Result<U> + Send + 'static,
) -> impl Future<Output = Result<U>> + Send + 'static
where
    F: Future<Output = Result<T>> + Send + 'static,
    U: Send + 'static,
{
    use futures::future::{Either, FutureExt};
    match sent {
        Ok(sent) => Either::Left(sent.map(then)),
        Err(e) => Either::Right(std::future::ready(Err(e))),
    }
}

/// Decodes a reply body.
fn decode(op: OpCode, raw: RawReply) -> Result<Response> {
    Ok(Response::decode(op, &mut raw.reader())?)
}

/// The error for a reply of the wrong shape (a server bug or a protocol mismatch).
fn unexpected(op: OpCode, resp: &Response) -> Error {
    Error::Protocol(format!("unexpected {op} reply: {resp:?}"))
}

#[cfg(test)]
mod tests {
    use super::Client;

    /// A read's future stays small: a pipeline of thousands of them (a cache's walk, a queue's
    /// batch) holds one per read. Each layer of an op once kept its inner future twice (an async
    /// block capturing a `Result` of it), which made a `get_data` future weigh 2232 bytes.
    #[tokio::test]
    async fn request_futures_stay_small() {
        let server = crate::Server::builder().start().await.expect("server");
        let client = Client::builder().connect_in_process(&server).await.expect("connect");
        let sizes = [
            ("get_data", std::mem::size_of_val(&client.get_data("/"))),
            ("exists", std::mem::size_of_val(&client.exists("/"))),
            ("get_children", std::mem::size_of_val(&client.get_children("/"))),
            ("delete", std::mem::size_of_val(&client.delete("/nothing", None))),
        ];
        for (op, size) in sizes {
            assert!(size <= 512, "a {op} future weighs {size} bytes");
        }
        client.close().await;
    }
}
