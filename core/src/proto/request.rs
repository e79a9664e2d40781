//! Request bodies: one [`Request`] variant per op code, each encoded and decoded in ZooKeeper's
//! field order (section 3.4 of the protocol reference).

use bytes::{BufMut, Bytes, BytesMut};

use super::codes::OpCode;
use super::jute::{write_bool, write_buffer, write_string, Decode, DecodeError, Encode, Reader};
use super::records::{read_acl_vec, write_acl_vec, Acl, AuthPacket, MultiHeader, SetWatches};

/// The body shared by the four create op codes (`CreateRequest` / `CreateTTLRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// The path to create (before any sequence suffix).
    pub path: String,
    /// The initial data; `None` is the null buffer Java clients send for `null`.
    pub data: Option<Bytes>,
    /// The ACL; an empty list is refused by servers with `INVALIDACL`.
    pub acl: Vec<Acl>,
    /// A [`super::CreateMode`] value.
    pub flags: i32,
    /// Time to live in ms; on the wire only with [`OpCode::CreateTtl`].
    pub ttl: i64,
}

impl CreateRequest {
    fn encode(&self, buf: &mut BytesMut, with_ttl: bool) {
        write_string(buf, &self.path);
        write_buffer(buf, self.data.as_deref());
        write_acl_vec(buf, &self.acl);
        buf.put_i32(self.flags);
        if with_ttl {
            buf.put_i64(self.ttl);
        }
    }

    fn decode(r: &mut Reader, with_ttl: bool) -> Result<Self, DecodeError> {
        Ok(CreateRequest {
            path: r.read_string()?,
            data: r.read_buffer()?,
            acl: read_acl_vec(r)?.unwrap_or_default(),
            flags: r.read_i32()?,
            ttl: if with_ttl { r.read_i64()? } else { -1 },
        })
    }
}

/// A request body, tagged by its op code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// `create` (1): replies with the path only.
    Create(CreateRequest),
    /// `create2` (15): replies with path and stat.
    Create2(CreateRequest),
    /// `createContainer` (19).
    CreateContainer(CreateRequest),
    /// `createTTL` (21).
    CreateTtl(CreateRequest),
    /// `delete` (2); version -1 matches any.
    Delete {
        /// Node path.
        path: String,
        /// Expected data version, or -1.
        version: i32,
    },
    /// `exists` (3).
    Exists {
        /// Node path.
        path: String,
        /// Leave a watch (also when the node does not exist).
        watch: bool,
    },
    /// `getData` (4).
    GetData {
        /// Node path.
        path: String,
        /// Leave a data watch.
        watch: bool,
    },
    /// `setData` (5).
    SetData {
        /// Node path.
        path: String,
        /// New data (`None` = null).
        data: Option<Bytes>,
        /// Expected data version, or -1.
        version: i32,
    },
    /// `getACL` (6).
    GetAcl {
        /// Node path.
        path: String,
    },
    /// `setACL` (7); the version is compared with `aversion`.
    SetAcl {
        /// Node path.
        path: String,
        /// The new ACL.
        acl: Vec<Acl>,
        /// Expected ACL version, or -1.
        version: i32,
    },
    /// `getChildren` (8).
    GetChildren {
        /// Node path.
        path: String,
        /// Leave a child watch.
        watch: bool,
    },
    /// `getChildren2` (12).
    GetChildren2 {
        /// Node path.
        path: String,
        /// Leave a child watch.
        watch: bool,
    },
    /// `sync` (9).
    Sync {
        /// Path (echoed back).
        path: String,
    },
    /// `ping` (11): no body.
    Ping,
    /// `check` (13): valid only inside `multi`.
    Check {
        /// Node path.
        path: String,
        /// Expected data version, or -1.
        version: i32,
    },
    /// `multi` (14): creates, deletes, setData and checks, applied atomically.
    Multi(Vec<Request>),
    /// `multiRead` (22): getData and getChildren, each independent.
    MultiRead(Vec<Request>),
    /// `reconfig` (16).
    Reconfig {
        /// Servers to add (comma separated).
        joining_servers: Option<String>,
        /// Server ids to remove.
        leaving_servers: Option<String>,
        /// A complete new membership.
        new_members: Option<String>,
        /// Expected current config version, or -1.
        cur_config_id: i64,
    },
    /// `checkWatches` (17).
    CheckWatches {
        /// Watched path.
        path: String,
        /// A [`super::WatcherType`] value.
        watcher_type: i32,
    },
    /// `removeWatches` (18).
    RemoveWatches {
        /// Watched path.
        path: String,
        /// A [`super::WatcherType`] value.
        watcher_type: i32,
    },
    /// `auth` (100).
    Auth(AuthPacket),
    /// `setWatches` (101).
    SetWatches(SetWatches),
    /// `setWatches2` (105).
    SetWatches2(SetWatches),
    /// `sasl` (102).
    Sasl {
        /// The SASL token.
        token: Bytes,
    },
    /// `getEphemerals` (103).
    GetEphemerals {
        /// A string prefix of the paths to list (`/` for all).
        prefix: String,
    },
    /// `getAllChildrenNumber` (104).
    GetAllChildrenNumber {
        /// Node path.
        path: String,
    },
    /// `addWatch` (106).
    AddWatch {
        /// Path to watch (need not exist).
        path: String,
        /// A [`super::AddWatchMode`] value.
        mode: i32,
    },
    /// `whoAmI` (107): no body.
    WhoAmI,
    /// `closeSession` (-11): no body.
    CloseSession,
}

impl Request {
    /// The op code this body is sent with.
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete { .. } => OpCode::Delete,
            Request::Exists { .. } => OpCode::Exists,
            Request::GetData { .. } => OpCode::GetData,
            Request::SetData { .. } => OpCode::SetData,
            Request::GetAcl { .. } => OpCode::GetAcl,
            Request::SetAcl { .. } => OpCode::SetAcl,
            Request::GetChildren { .. } => OpCode::GetChildren,
            Request::GetChildren2 { .. } => OpCode::GetChildren2,
            Request::Sync { .. } => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check { .. } => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig { .. } => OpCode::Reconfig,
            Request::CheckWatches { .. } => OpCode::CheckWatches,
            Request::RemoveWatches { .. } => OpCode::RemoveWatches,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::Sasl { .. } => OpCode::Sasl,
            Request::GetEphemerals { .. } => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber { .. } => OpCode::GetAllChildrenNumber,
            Request::AddWatch { .. } => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// The path the request is about, if it names one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) | Request::CreateTtl(c) => {
                Some(&c.path)
            }
            Request::Delete { path, .. }
            | Request::Exists { path, .. }
            | Request::GetData { path, .. }
            | Request::SetData { path, .. }
            | Request::GetAcl { path }
            | Request::SetAcl { path, .. }
            | Request::GetChildren { path, .. }
            | Request::GetChildren2 { path, .. }
            | Request::Sync { path }
            | Request::Check { path, .. }
            | Request::CheckWatches { path, .. }
            | Request::RemoveWatches { path, .. }
            | Request::GetAllChildrenNumber { path }
            | Request::AddWatch { path, .. } => Some(path),
            Request::GetEphemerals { prefix } => Some(prefix),
            _ => None,
        }
    }

    /// The watch flag of a read that can leave a one-shot watch (`exists`, `getData`,
    /// `getChildren`, `getChildren2`); `None` for every other request.
    pub fn watch_mut(&mut self) -> Option<&mut bool> {
        match self {
            Request::Exists { watch, .. }
            | Request::GetData { watch, .. }
            | Request::GetChildren { watch, .. }
            | Request::GetChildren2 { watch, .. } => Some(watch),
            _ => None,
        }
    }

    /// Writes the body (without the request header).
    pub fn encode_body(&self, buf: &mut BytesMut) {
        match self {
            Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => c.encode(buf, false),
            Request::CreateTtl(c) => c.encode(buf, true),
            Request::Delete { path, version } | Request::Check { path, version } => {
                write_string(buf, path);
                buf.put_i32(*version);
            }
            Request::Exists { path, watch }
            | Request::GetData { path, watch }
            | Request::GetChildren { path, watch }
            | Request::GetChildren2 { path, watch } => {
                write_string(buf, path);
                write_bool(buf, *watch);
            }
            Request::SetData { path, data, version } => {
                write_string(buf, path);
                write_buffer(buf, data.as_deref());
                buf.put_i32(*version);
            }
            Request::GetAcl { path }
            | Request::Sync { path }
            | Request::GetAllChildrenNumber { path }
            | Request::GetEphemerals { prefix: path } => write_string(buf, path),
            Request::SetAcl { path, acl, version } => {
                write_string(buf, path);
                write_acl_vec(buf, acl);
                buf.put_i32(*version);
            }
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Multi(ops) | Request::MultiRead(ops) => {
                for op in ops {
                    MultiHeader { op: op.op_code().as_i32(), done: false, err: -1 }.encode(buf);
                    op.encode_body(buf);
                }
                MultiHeader::END.encode(buf);
            }
            Request::Reconfig { joining_servers, leaving_servers, new_members, cur_config_id } => {
                for s in [joining_servers, leaving_servers, new_members] {
                    write_buffer(buf, s.as_deref().map(str::as_bytes));
                }
                buf.put_i64(*cur_config_id);
            }
            Request::CheckWatches { path, watcher_type: t } | Request::RemoveWatches { path, watcher_type: t } => {
                write_string(buf, path);
                buf.put_i32(*t);
            }
            Request::AddWatch { path, mode } => {
                write_string(buf, path);
                buf.put_i32(*mode);
            }
            Request::Auth(a) => a.encode(buf),
            Request::SetWatches(sw) => sw.encode_as(buf, false),
            Request::SetWatches2(sw) => sw.encode_as(buf, true),
            Request::Sasl { token } => write_buffer(buf, Some(token)),
        }
    }

    /// Reads the body of a request whose header carried `op`.
    pub fn decode(op: OpCode, r: &mut Reader) -> Result<Request, DecodeError> {
        Ok(match op {
            OpCode::Create => Request::Create(CreateRequest::decode(r, false)?),
            OpCode::Create2 => Request::Create2(CreateRequest::decode(r, false)?),
            OpCode::CreateContainer => Request::CreateContainer(CreateRequest::decode(r, false)?),
            OpCode::CreateTtl => Request::CreateTtl(CreateRequest::decode(r, true)?),
            OpCode::Delete => Request::Delete { path: r.read_string()?, version: r.read_i32()? },
            OpCode::Check => Request::Check { path: r.read_string()?, version: r.read_i32()? },
            OpCode::Exists => Request::Exists { path: r.read_string()?, watch: r.read_bool()? },
            OpCode::GetData => Request::GetData { path: r.read_string()?, watch: r.read_bool()? },
            OpCode::GetChildren => Request::GetChildren { path: r.read_string()?, watch: r.read_bool()? },
            OpCode::GetChildren2 => Request::GetChildren2 { path: r.read_string()?, watch: r.read_bool()? },
            OpCode::SetData => {
                Request::SetData { path: r.read_string()?, data: r.read_buffer()?, version: r.read_i32()? }
            }
            OpCode::GetAcl => Request::GetAcl { path: r.read_string()? },
            OpCode::Sync => Request::Sync { path: r.read_string()? },
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber { path: r.read_string()? },
            OpCode::GetEphemerals => Request::GetEphemerals { prefix: r.read_string()? },
            OpCode::SetAcl => Request::SetAcl {
                path: r.read_string()?,
                acl: read_acl_vec(r)?.unwrap_or_default(),
                version: r.read_i32()?,
            },
            OpCode::Ping => Request::Ping,
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Multi => Request::Multi(decode_multi(r, OpCode::is_multi_write)?),
            OpCode::MultiRead => Request::MultiRead(decode_multi(r, OpCode::is_multi_read)?),
            OpCode::Reconfig => Request::Reconfig {
                joining_servers: r.read_opt_string()?,
                leaving_servers: r.read_opt_string()?,
                new_members: r.read_opt_string()?,
                cur_config_id: r.read_i64()?,
            },
            OpCode::CheckWatches => Request::CheckWatches { path: r.read_string()?, watcher_type: r.read_i32()? },
            OpCode::RemoveWatches => Request::RemoveWatches { path: r.read_string()?, watcher_type: r.read_i32()? },
            OpCode::AddWatch => Request::AddWatch { path: r.read_string()?, mode: r.read_i32()? },
            OpCode::Auth => Request::Auth(AuthPacket::decode(r)?),
            OpCode::SetWatches => Request::SetWatches(SetWatches::decode_as(r, false)?),
            OpCode::SetWatches2 => Request::SetWatches2(SetWatches::decode_as(r, true)?),
            OpCode::Sasl => Request::Sasl { token: r.read_bytes()? },
            OpCode::Notification | OpCode::DeleteContainer | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::InvalidValue { what: "client op code", value: op.as_i32().into() })
            }
        })
    }
}

/// Reads multi sub-requests until the `done` header, refusing op codes `allowed` rejects (as
/// ZooKeeper's `MultiOperationRecord` does, which the server reports as `MARSHALLINGERROR`).
fn decode_multi(r: &mut Reader, allowed: fn(OpCode) -> bool) -> Result<Vec<Request>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::decode(r)?;
        if h.done {
            return Ok(ops);
        }
        match OpCode::from_i32(h.op).filter(|op| allowed(*op)) {
            Some(op) => ops.push(Request::decode(op, r)?),
            None => return Err(DecodeError::InvalidValue { what: "multi op code", value: h.op.into() }),
        }
    }
}
