//! The ZooKeeper wire protocol, sans I/O: bytes in, records out, and back.
//!
//! This layer knows nothing of sockets, tasks or clients; the client session and the embedded
//! server both speak through it, so they cannot disagree about a byte. It covers framing
//! ([`frame`]), the jute primitives ([`jute`]), every record of ZooKeeper 3.8 that a client,
//! Curator or kazoo uses ([`records`], [`Request`], [`Response`]) and the numeric vocabularies
//! ([`OpCode`], [`ErrorCode`], [`EventType`], ...). Decoding never panics on any input and never
//! allocates more than the input could describe; a property test feeds arbitrary bytes to every
//! decoder and round-trips every record.

pub mod codes;
pub mod frame;
pub mod jute;
pub mod records;
pub mod request;
pub mod response;

#[cfg(test)]
mod proptests;

pub use codes::{AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, Perms, WatcherType};
pub use frame::{split_frame, FrameError, DEFAULT_MAX_FRAME};
pub use jute::{Decode, DecodeError, Encode, Reader};
pub use records::{
    Acl, AuthPacket, ClientInfo, ConnectRequest, ConnectResponse, Id, MultiHeader, ReplyHeader, RequestHeader,
    SetWatches, Stat, WatcherEvent,
};
pub use request::{CreateRequest, Request};
pub use response::{MultiResult, Response};

/// Reserved xids: request ids with a fixed meaning.
pub mod xid {
    /// A watch notification (server to client).
    pub const NOTIFICATION: i32 = -1;
    /// A ping and its reply.
    pub const PING: i32 = -2;
    /// An `addAuth` request and its reply.
    pub const AUTH: i32 = -4;
    /// `SetWatches` as the C client sends it; servers echo whatever xid arrives.
    pub const SET_WATCHES: i32 = -8;
}

/// The length of a session password.
pub const PASSWORD_LEN: usize = 16;
