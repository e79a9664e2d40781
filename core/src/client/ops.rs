//! The single-request operations of [`Client`], one method per ZooKeeper op (and a `_and_watch`
//! variant for each read that can leave a one-shot watch).
//!
//! Every method validates its path, queues the request before returning, and resolves with the
//! typed result. Paths are client paths: the chroot, if any, is added on the way out and removed
//! from returned paths.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt};
use tokio::sync::oneshot;

use super::{after, decode, unexpected, Client, CreateOptions, Data, OneshotWatcher, PersistentWatcher};
use crate::error::{Error, Result};
use crate::path::{validate_path, validate_sequential_path};
use crate::proto::{
    frame, xid, Acl, AddWatchMode, AuthPacket, ClientInfo, CreateRequest, OpCode, Request, Response, Stat, WatcherType,
};
use crate::session::{Command, Effect, WatchKind};

impl Client {
    /// Creates a node and returns its path (with the sequence suffix for sequential modes) and
    /// its stat.
    ///
    /// Uses `create2` (op 15), `createContainer` (19) for containers and `createTTL` (21) for
    /// TTL modes.
    ///
    /// # Errors
    /// `NodeExists`; `NoNode` (missing parent); `NoChildrenForEphemerals`; `NoAuth` (no CREATE
    /// on the parent); `InvalidAcl`; `Unimplemented` (TTL on a server without TTL support);
    /// client-side `InvalidPath`, `InvalidArgument` (bad TTL) and `DataTooLarge`.
    pub fn create(
        &self,
        path: &str,
        data: impl Into<Data>,
        options: impl Into<CreateOptions>,
    ) -> BoxFuture<'static, Result<(String, Stat)>> {
        self.create_data(path, data.into(), &options.into()).boxed()
    }

    /// [`Client::create`] with its arguments converted: the future borrows none of them.
    pub(crate) fn create_data(
        &self,
        path: &str,
        data: Data,
        options: &CreateOptions,
    ) -> impl Future<Output = Result<(String, Stat)>> + Send + 'static {
        let reply = self.create_request(path, data.into_bytes(), options).map(|req| self.call(req));
        let client = self.path_mapper();
        async move {
            match reply?.await? {
                Response::Created { path, stat } => Ok((client.client_path(path)?, stat)),
                other => Err(unexpected(OpCode::Create2, &other)),
            }
        }
    }

    /// Builds the create request for `path` (shared with multi).
    pub(crate) fn create_request(&self, path: &str, data: Bytes, options: &CreateOptions) -> Result<Request> {
        if options.mode.is_sequential() {
            validate_sequential_path(path)?;
        } else {
            validate_path(path)?;
        }
        let ttl = options.validated_ttl()?;
        let req = CreateRequest {
            path: self.shared.chroot.to_server(path),
            data: Some(data),
            acl: options.acl.clone(),
            flags: options.mode.as_i32(),
            ttl: ttl.unwrap_or(-1),
        };
        Ok(if ttl.is_some() {
            Request::CreateTtl(req)
        } else if options.mode.is_container() {
            Request::CreateContainer(req)
        } else {
            Request::Create2(req)
        })
    }

    /// Deletes a node, if its data version is `version` (any version when `None`).
    ///
    /// # Errors
    /// `NoNode`, `BadVersion`, `NotEmpty` (it has children), `NoAuth` (no DELETE on the parent),
    /// `BadArguments` (the root, the chroot node itself, or `/zookeeper` nodes).
    pub fn delete(&self, path: &str, version: Option<i32>) -> impl Future<Output = Result<()>> + Send + 'static {
        // As in the Java client, "/" is sent as is, so the chroot node itself cannot be deleted
        // through a chrooted handle (the server refuses "/").
        let server_path =
            if path == "/" { validate_path(path).map(|_| "/".to_string()) } else { self.server_path(path) };
        let reply = server_path.map(|path| self.call(Request::Delete { path, version: version.unwrap_or(-1) }));
        empty(OpCode::Delete, reply)
    }

    /// Deletes a node like [`Client::delete`], but the session keeps trying: if the connection
    /// breaks before the reply, the delete is sent again after the reconnect (ahead of anything
    /// queued meanwhile), until the server answers or the session ends. Curator calls this a
    /// *guaranteed* delete; it is how a lock is released from `Drop`: the request is queued
    /// before this method returns, so the returned future may be dropped unawaited.
    ///
    /// Repeating a delete is only safe for a node that cannot be re-created under the same name
    /// meanwhile (a protected `_c_<uuid>-` name, or an explicit `version`). A repeat that finds
    /// the node gone reports success: the earlier attempt may have deleted it before its reply
    /// was lost, and the node is gone either way.
    ///
    /// # Errors
    /// As [`Client::delete`] (`NoNode` only if the first attempt was answered so), except that
    /// `ConnectionLoss` and a request timeout never happen; the terminal error if the session
    /// ends first (its ephemeral nodes are then gone anyway).
    pub fn delete_guaranteed(
        &self,
        path: &str,
        version: Option<i32>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let reply = self.server_path(path).and_then(|path| {
            let sent = self.send_as(Request::Delete { path, version: version.unwrap_or(-1) }, Effect::None, true)?;
            Ok(async move { decode(OpCode::Delete, sent.await?) })
        });
        empty(OpCode::Delete, reply)
    }

    /// The node's stat, or `None` if it does not exist.
    pub fn exists(&self, path: &str) -> impl Future<Output = Result<Option<Stat>>> + Send + 'static {
        let reply = self.server_path(path).map(|path| self.call(Request::Exists { path, watch: false }));
        after(reply, |reply| match reply {
            Ok(Response::Stat(stat)) => Ok(Some(stat)),
            Ok(other) => Err(unexpected(OpCode::Exists, &other)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        })
    }

    /// As [`Client::exists`], leaving a watch that fires on the node's creation (if it does not
    /// exist), or on its deletion or data change (if it does).
    pub fn exists_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Option<Stat>, OneshotWatcher)>> + Send + 'static {
        let sent = self.server_path(path).and_then(|path| {
            let (reg, watcher) = self.oneshot_watch(WatchKind::Data, &path);
            Ok((self.send(Request::Exists { path, watch: true }, Effect::Watch(reg))?, watcher))
        });
        async move {
            let (reply, watcher) = sent?;
            match reply.await {
                Ok(raw) => match decode(OpCode::Exists, raw)? {
                    Response::Stat(stat) => Ok((Some(stat), watcher)),
                    other => Err(unexpected(OpCode::Exists, &other)),
                },
                Err(Error::NoNode) => Ok((None, watcher)),
                Err(e) => Err(e),
            }
        }
    }

    /// The node's data and stat.
    ///
    /// # Errors
    /// `NoNode`; `NoAuth` (no READ).
    pub fn get_data(&self, path: &str) -> impl Future<Output = Result<(Bytes, Stat)>> + Send + 'static {
        let reply = self.server_path(path).map(|path| self.call(Request::GetData { path, watch: false }));
        after(reply, |reply| data_reply(reply?))
    }

    /// As [`Client::get_data`], leaving a watch that fires on the node's next data change or
    /// deletion.
    pub fn get_data_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Bytes, Stat, OneshotWatcher)>> + Send + 'static {
        let sent = self.server_path(path).and_then(|path| {
            let (reg, watcher) = self.oneshot_watch(WatchKind::Data, &path);
            Ok((self.send(Request::GetData { path, watch: true }, Effect::Watch(reg))?, watcher))
        });
        async move {
            let (reply, watcher) = sent?;
            let (data, stat) = data_reply(decode(OpCode::GetData, reply.await?)?)?;
            Ok((data, stat, watcher))
        }
    }

    /// The data of `/zookeeper/config` (the ensemble configuration; empty on a standalone
    /// server). Never affected by the chroot.
    pub fn get_config(&self) -> impl Future<Output = Result<(Bytes, Stat)>> + Send + 'static {
        let reply = self.call(Request::GetData { path: "/zookeeper/config".into(), watch: false });
        async move { data_reply(reply.await?) }
    }

    /// Sets the node's data, if its version is `version` (any when `None`); returns the new stat.
    ///
    /// # Errors
    /// `NoNode`, `BadVersion`, `NoAuth` (no WRITE); `DataTooLarge` without sending.
    pub fn set_data(
        &self,
        path: &str,
        data: impl Into<Data>,
        version: Option<i32>,
    ) -> BoxFuture<'static, Result<Stat>> {
        let data = data.into().into_bytes();
        let reply = self
            .server_path(path)
            .map(|path| self.call(Request::SetData { path, data: Some(data), version: version.unwrap_or(-1) }));
        stat(OpCode::SetData, reply).boxed()
    }

    /// The node's ACL and stat. Without ADMIN permission, `digest` passwords hashes are redacted.
    pub fn get_acl(&self, path: &str) -> impl Future<Output = Result<(Vec<Acl>, Stat)>> + Send + 'static {
        let reply = self.server_path(path).map(|path| self.call(Request::GetAcl { path }));
        async move {
            match reply?.await? {
                Response::Acl { acl, stat } => Ok((acl, stat)),
                other => Err(unexpected(OpCode::GetAcl, &other)),
            }
        }
    }

    /// Sets the node's ACL, if its ACL version (`aversion`) is `version` (any when `None`).
    ///
    /// # Errors
    /// `InvalidAcl`, `NoNode`, `NoAuth` (no ADMIN), `BadVersion`.
    pub fn set_acl(
        &self,
        path: &str,
        acl: Vec<Acl>,
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat>> + Send + 'static {
        let reply =
            self.server_path(path).map(|path| self.call(Request::SetAcl { path, acl, version: version.unwrap_or(-1) }));
        stat(OpCode::SetAcl, reply)
    }

    /// The names of the node's children, in no particular order.
    pub fn get_children(&self, path: &str) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let reply = self.server_path(path).map(|path| self.call(Request::GetChildren { path, watch: false }));
        after(reply, |reply| match reply? {
            Response::Names(children) => Ok(children),
            other => Err(unexpected(OpCode::GetChildren, &other)),
        })
    }

    /// As [`Client::get_children`], leaving a watch that fires when a child is created or
    /// deleted, or the node itself is deleted.
    pub fn get_children_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, OneshotWatcher)>> + Send + 'static {
        let sent = self.children_and_watch(path, false);
        async move {
            let (reply, watcher) = sent?;
            match reply.await? {
                Response::Names(children) => Ok((children, watcher)),
                other => Err(unexpected(OpCode::GetChildren, &other)),
            }
        }
    }

    /// The node's children and its stat (`getChildren2`).
    pub fn get_children_with_stat(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat)>> + Send + 'static {
        let reply = self.server_path(path).map(|path| self.call(Request::GetChildren2 { path, watch: false }));
        after(reply, |reply| children2_reply(reply?))
    }

    /// As [`Client::get_children_with_stat`], leaving a child watch.
    pub fn get_children_with_stat_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat, OneshotWatcher)>> + Send + 'static {
        let sent = self.children_and_watch(path, true);
        async move {
            let (reply, watcher) = sent?;
            let (children, stat) = children2_reply(reply.await?)?;
            Ok((children, stat, watcher))
        }
    }

    #[allow(clippy::type_complexity)]
    fn children_and_watch(
        &self,
        path: &str,
        with_stat: bool,
    ) -> Result<(impl Future<Output = Result<Response>> + Send + 'static, OneshotWatcher)> {
        let path = self.server_path(path)?;
        let (reg, watcher) = self.oneshot_watch(WatchKind::Child, &path);
        let req = if with_stat {
            Request::GetChildren2 { path, watch: true }
        } else {
            Request::GetChildren { path, watch: true }
        };
        let op = req.op_code();
        let reply = self.send(req, Effect::Watch(reg))?;
        Ok((async move { decode(op, reply.await?) }, watcher))
    }

    /// Waits until the server has applied every write that preceded this call on any session
    /// (a "sync" of the server this client is connected to with the leader). A read issued after
    /// `sync` returns sees those writes.
    pub fn sync(&self, path: &str) -> impl Future<Output = Result<()>> + Send + 'static {
        let reply = self.server_path(path).map(|path| self.call(Request::Sync { path }));
        async move {
            match reply?.await? {
                Response::Path(_) => Ok(()),
                other => Err(unexpected(OpCode::Sync, &other)),
            }
        }
    }

    /// Adds credentials to this connection (`addAuth`), e.g. `("digest", b"user:password")`.
    /// They are replayed after every reconnect.
    ///
    /// # Errors
    /// `AuthFailed` if the server does not accept the scheme; the session then ends.
    pub fn add_auth(&self, scheme: &str, credential: &[u8]) -> impl Future<Output = Result<()>> + Send + 'static {
        let packet = AuthPacket { auth_type: 0, scheme: scheme.to_string(), auth: Bytes::copy_from_slice(credential) };
        let mut buf = BytesMut::with_capacity(32 + credential.len() + scheme.len());
        frame::write_request_frame(&mut buf, xid::AUTH, &Request::Auth(packet.clone()));
        let (tx, rx) = oneshot::channel();
        let sent = match self.tx.send(Command::Auth { packet, frame: buf.freeze(), responder: tx }) {
            Ok(()) => Ok(rx),
            Err(_) => Err(self.ended()),
        };
        let ended = self.clone_ended();
        async move {
            sent?.await.unwrap_or_else(|_| Err(ended()))?;
            Ok(())
        }
    }

    /// Adds a persistent watch on `path` (which need not exist): with
    /// [`AddWatchMode::Persistent`], every data, existence and child change of the node; with
    /// [`AddWatchMode::PersistentRecursive`], every data and existence change of the node and of
    /// all its descendants. Dropping the returned stream removes the watch.
    pub fn add_watch(
        &self,
        path: &str,
        mode: AddWatchMode,
    ) -> impl Future<Output = Result<PersistentWatcher>> + Send + 'static {
        let kind = match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
        };
        let sent = self.server_path(path).and_then(|path| {
            let (reg, watcher) = self.persistent_watch(kind, &path);
            Ok((self.send(Request::AddWatch { path, mode: mode.as_i32() }, Effect::Watch(reg))?, watcher))
        });
        async move {
            let (reply, watcher) = sent?;
            reply.await?;
            Ok(watcher)
        }
    }

    /// Removes this session's watches of `watcher_type` on `path` from the server
    /// (`removeWatches`), and ends the local watchers concerned: one-shot watchers resolve with
    /// a `DataWatchRemoved` / `ChildWatchRemoved` event, persistent ones end after a
    /// `PersistentWatchRemoved` event.
    ///
    /// # Errors
    /// `NoWatcher` if the server had no such watch.
    pub fn remove_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let reply = self.server_path(path).and_then(|server_path| {
            let effect = Effect::RemoveLocal { path: server_path.clone(), watcher_type, client_path: path.to_string() };
            self.send(Request::RemoveWatches { path: server_path, watcher_type: watcher_type.as_i32() }, effect)
        });
        async move {
            reply?.await?;
            Ok(())
        }
    }

    /// Asks whether this session has a watch of `watcher_type` on `path` on the server
    /// (`checkWatches`); removes nothing.
    ///
    /// # Errors
    /// `NoWatcher` if it has none.
    pub fn check_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let reply = self
            .server_path(path)
            .map(|path| self.call(Request::CheckWatches { path, watcher_type: watcher_type.as_i32() }));
        empty(OpCode::CheckWatches, reply)
    }

    /// The paths of this session's ephemeral nodes whose path starts with `prefix` (a plain
    /// string prefix: `/a` also matches `/ab/x`; `/` lists them all). Unlike the Java client,
    /// paths are returned relative to the chroot, and nodes outside it are left out.
    pub fn get_ephemerals(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let reply = if prefix.starts_with('/') {
            Ok(self.call(Request::GetEphemerals { prefix: self.shared.chroot.to_server(prefix) }))
        } else {
            Err(Error::InvalidPath { path: prefix.to_string(), reason: "path must start with /" })
        };
        let client = self.path_mapper();
        async move {
            match reply?.await? {
                Response::Names(paths) => Ok(paths.into_iter().filter_map(|p| client.client_path(p).ok()).collect()),
                other => Err(unexpected(OpCode::GetEphemerals, &other)),
            }
        }
    }

    /// The number of descendants of `path` (children, grandchildren, ...).
    pub fn get_all_children_number(&self, path: &str) -> impl Future<Output = Result<i32>> + Send + 'static {
        let reply = self.server_path(path).map(|path| self.call(Request::GetAllChildrenNumber { path }));
        async move {
            match reply?.await? {
                Response::Count(n) => Ok(n),
                other => Err(unexpected(OpCode::GetAllChildrenNumber, &other)),
            }
        }
    }

    /// The identities this connection is authenticated as (`whoAmI`), e.g. `ip:127.0.0.1` and
    /// the users of `digest` credentials.
    pub fn who_am_i(&self) -> impl Future<Output = Result<Vec<ClientInfo>>> + Send + 'static {
        let reply = self.call(Request::WhoAmI);
        async move {
            match reply.await? {
                Response::WhoAmI(infos) => Ok(infos),
                other => Err(unexpected(OpCode::WhoAmI, &other)),
            }
        }
    }
}

/// Maps server paths in replies back to client paths.
pub(crate) struct PathMapper {
    chroot: crate::path::Chroot,
}

impl PathMapper {
    pub(crate) fn client_path(&self, server_path: String) -> Result<String> {
        match self.chroot.to_client(&server_path) {
            Some(p) => Ok(p.into_owned()),
            None => Err(Error::Protocol(format!("server returned {server_path:?}, outside the chroot"))),
        }
    }
}

impl Client {
    /// What returned paths need: the chroot, without keeping the session alive.
    pub(crate) fn path_mapper(&self) -> PathMapper {
        PathMapper { chroot: self.shared.chroot.clone() }
    }
}

fn data_reply(resp: Response) -> Result<(Bytes, Stat)> {
    match resp {
        Response::Data { data, stat } => Ok((data.unwrap_or_default(), stat)),
        other => Err(unexpected(OpCode::GetData, &other)),
    }
}

fn children2_reply(resp: Response) -> Result<(Vec<String>, Stat)> {
    match resp {
        Response::Children { children, stat } => Ok((children, stat)),
        other => Err(unexpected(OpCode::GetChildren2, &other)),
    }
}

/// Awaits a reply that has a `Stat` body.
fn stat(
    op: OpCode,
    reply: Result<impl Future<Output = Result<Response>> + Send + 'static>,
) -> impl Future<Output = Result<Stat>> + Send + 'static {
    after(reply, move |reply| match reply? {
        Response::Stat(stat) => Ok(stat),
        other => Err(unexpected(op, &other)),
    })
}

/// Awaits a reply that has no body.
fn empty(
    op: OpCode,
    reply: Result<impl Future<Output = Result<Response>> + Send + 'static>,
) -> impl Future<Output = Result<()>> + Send + 'static {
    after(reply, move |reply| match reply? {
        Response::Empty => Ok(()),
        other => Err(unexpected(op, &other)),
    })
}
