//! Response bodies. A reply carries no op code, so [`Response::decode`] is told which request it
//! answers; servers send a body only when `ReplyHeader.err == 0`.

use bytes::{BufMut, Bytes, BytesMut};

use super::codes::{ErrorCode, OpCode};
use super::jute::{write_buffer, write_string, write_string_vec, Decode, DecodeError, Encode, Reader};
use super::records::{read_acl_vec, write_acl_vec, Acl, ClientInfo, MultiHeader, Stat};

/// A successful response body, shaped by the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// No body: delete, ping, auth, setWatches(2), check/removeWatches, closeSession.
    Empty,
    /// `CreateResponse` (create) or `SyncResponse` (sync): a path.
    Path(String),
    /// `Create2Response` (create2, createContainer, createTTL).
    Created {
        /// The created path, with any sequence suffix.
        path: String,
        /// The new node's stat.
        stat: Stat,
    },
    /// `ExistsResponse`, `SetDataResponse`, `SetACLResponse`.
    Stat(Stat),
    /// `GetDataResponse` (getData, reconfig).
    Data {
        /// The data; `None` for a node created with null data.
        data: Option<Bytes>,
        /// The node's stat.
        stat: Stat,
    },
    /// `GetACLResponse`.
    Acl {
        /// The ACL.
        acl: Vec<Acl>,
        /// The node's stat.
        stat: Stat,
    },
    /// `GetChildrenResponse` (getChildren) or `GetEphemeralsResponse` (getEphemerals).
    Names(Vec<String>),
    /// `GetChildren2Response`.
    Children {
        /// Child names.
        children: Vec<String>,
        /// The parent's stat.
        stat: Stat,
    },
    /// `MultiResponse` (multi, multiRead): one result per op.
    Multi(Vec<MultiResult>),
    /// `GetAllChildrenNumberResponse`.
    Count(i32),
    /// `ErrorResponse` (addWatch answers one carrying 0).
    Code(i32),
    /// `SetSASLResponse`.
    Token(Bytes),
    /// `WhoAmIResponse`.
    WhoAmI(Vec<ClientInfo>),
}

impl Response {
    /// Writes the body.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Response::Empty => {}
            Response::Path(p) => write_string(buf, p),
            Response::Created { path, stat } => {
                write_string(buf, path);
                stat.encode(buf);
            }
            Response::Stat(stat) => stat.encode(buf),
            Response::Data { data, stat } => {
                write_buffer(buf, data.as_deref());
                stat.encode(buf);
            }
            Response::Acl { acl, stat } => {
                write_acl_vec(buf, acl);
                stat.encode(buf);
            }
            Response::Names(names) => write_string_vec(buf, names),
            Response::Children { children, stat } => {
                write_string_vec(buf, children);
                stat.encode(buf);
            }
            Response::Multi(results) => {
                for r in results {
                    r.encode(buf);
                }
                MultiHeader::END.encode(buf);
            }
            Response::Count(n) | Response::Code(n) => buf.put_i32(*n),
            Response::Token(t) => write_buffer(buf, Some(t)),
            Response::WhoAmI(infos) => {
                buf.put_i32(super::jute::len_i32(infos.len()));
                for i in infos {
                    i.encode(buf);
                }
            }
        }
    }

    /// Reads the body of a successful reply to a request with op code `op`.
    pub fn decode(op: OpCode, r: &mut Reader) -> Result<Response, DecodeError> {
        Ok(match op {
            OpCode::Create | OpCode::Sync => Response::Path(r.read_string()?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Created { path: r.read_string()?, stat: Stat::decode(r)? }
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Stat::decode(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::Data { data: r.read_buffer()?, stat: Stat::decode(r)? },
            OpCode::GetAcl => Response::Acl { acl: read_acl_vec(r)?.unwrap_or_default(), stat: Stat::decode(r)? },
            OpCode::GetChildren | OpCode::GetEphemerals => Response::Names(r.read_string_vec()?),
            OpCode::GetChildren2 => Response::Children { children: r.read_string_vec()?, stat: Stat::decode(r)? },
            OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResult::decode_all(r)?),
            OpCode::GetAllChildrenNumber => Response::Count(r.read_i32()?),
            OpCode::AddWatch => Response::Code(r.read_i32()?),
            OpCode::Sasl => Response::Token(r.read_bytes()?),
            OpCode::WhoAmI => Response::WhoAmI(r.read_vec(8, ClientInfo::decode)?),
            OpCode::Delete
            | OpCode::Ping
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::CloseSession
            | OpCode::Check => Response::Empty,
            OpCode::Notification | OpCode::DeleteContainer | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::InvalidValue { what: "reply op code", value: op.as_i32().into() })
            }
        })
    }
}

/// The result of one op inside a `multi` or `multiRead` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiResult {
    /// A `create` (1) succeeded.
    Create {
        /// The created path.
        path: String,
    },
    /// A `create2`, `createContainer` or `createTTL` succeeded (result type 15).
    Create2 {
        /// The created path.
        path: String,
        /// The new node's stat.
        stat: Stat,
    },
    /// A delete succeeded.
    Delete,
    /// A setData succeeded.
    SetData {
        /// The node's new stat.
        stat: Stat,
    },
    /// A check passed.
    Check,
    /// A multiRead getData succeeded.
    GetData {
        /// The data (`None` = null).
        data: Option<Bytes>,
        /// The node's stat.
        stat: Stat,
    },
    /// A multiRead getChildren succeeded.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// The op failed with this code, or (code 0) was rolled back because another op failed, or
    /// (code -2, `RUNTIMEINCONSISTENCY`) was not run because an earlier op failed.
    Error {
        /// The error code.
        err: i32,
    },
}

impl MultiResult {
    /// An error result for `code`.
    pub fn error(code: ErrorCode) -> Self {
        MultiResult::Error { err: code.as_i32() }
    }

    fn encode(&self, buf: &mut BytesMut) {
        let (op, err) = match self {
            MultiResult::Create { .. } => (OpCode::Create, 0),
            MultiResult::Create2 { .. } => (OpCode::Create2, 0),
            MultiResult::Delete => (OpCode::Delete, 0),
            MultiResult::SetData { .. } => (OpCode::SetData, 0),
            MultiResult::Check => (OpCode::Check, 0),
            MultiResult::GetData { .. } => (OpCode::GetData, 0),
            MultiResult::GetChildren { .. } => (OpCode::GetChildren, 0),
            MultiResult::Error { err } => (OpCode::Error, *err),
        };
        MultiHeader { op: op.as_i32(), done: false, err }.encode(buf);
        match self {
            MultiResult::Create { path } => write_string(buf, path),
            MultiResult::Create2 { path, stat } => {
                write_string(buf, path);
                stat.encode(buf);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData { stat } => stat.encode(buf),
            MultiResult::GetData { data, stat } => {
                write_buffer(buf, data.as_deref());
                stat.encode(buf);
            }
            MultiResult::GetChildren { children } => write_string_vec(buf, children),
            MultiResult::Error { err } => buf.put_i32(*err),
        }
    }

    fn decode_all(r: &mut Reader) -> Result<Vec<MultiResult>, DecodeError> {
        let mut out = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(out);
            }
            out.push(match OpCode::from_i32(h.op) {
                Some(OpCode::Create) => MultiResult::Create { path: r.read_string()? },
                Some(OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
                    MultiResult::Create2 { path: r.read_string()?, stat: Stat::decode(r)? }
                }
                Some(OpCode::Delete) => MultiResult::Delete,
                Some(OpCode::SetData) => MultiResult::SetData { stat: Stat::decode(r)? },
                Some(OpCode::Check) => MultiResult::Check,
                Some(OpCode::GetData) => MultiResult::GetData { data: r.read_buffer()?, stat: Stat::decode(r)? },
                Some(OpCode::GetChildren) => MultiResult::GetChildren { children: r.read_string_vec()? },
                Some(OpCode::Error) => MultiResult::Error { err: r.read_i32()? },
                _ => return Err(DecodeError::InvalidValue { what: "multi result type", value: h.op.into() }),
            });
        }
    }
}
