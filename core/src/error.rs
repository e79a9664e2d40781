//! The crate's one error type. Every ZooKeeper result code has a variant of its own (so callers
//! can `match` on `Error::NoNode`), client-side conditions have descriptive variants, and
//! [`Error::code`] recovers the ZooKeeper code wherever there is one.

use crate::proto::ErrorCode;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to ZooKeeper or running the embedded server.
///
/// It is `Clone + Eq`: one connection loss is reported to every request in flight, and tests can
/// compare errors with `assert_eq!`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `SYSTEMERROR` (-1).
    #[error("system error")]
    SystemError,
    /// `RUNTIMEINCONSISTENCY` (-2): a multi op not run because an earlier op failed.
    #[error("runtime inconsistency")]
    RuntimeInconsistency,
    /// `DATAINCONSISTENCY` (-3).
    #[error("data inconsistency")]
    DataInconsistency,
    /// `CONNECTIONLOSS` (-4): the connection broke before the reply arrived. The request may or
    /// may not have been applied.
    #[error("connection lost (the request may or may not have been applied)")]
    ConnectionLoss,
    /// `MARSHALLINGERROR` (-5): the server could not decode the request.
    #[error("marshalling error")]
    MarshallingError,
    /// `UNIMPLEMENTED` (-6): the server does not support the operation (or TTL nodes are off).
    #[error("operation not implemented by the server")]
    Unimplemented,
    /// `OPERATIONTIMEOUT` (-7): a client-side deadline passed.
    #[error("operation timed out")]
    OperationTimeout,
    /// `BADARGUMENTS` (-8): the server rejected a path, flags or TTL.
    #[error("bad arguments")]
    BadArguments,
    /// `UNKNOWNSESSION` (-12).
    #[error("unknown session")]
    UnknownSession,
    /// `NEWCONFIGNOQUORUM` (-13).
    #[error("new configuration has no quorum")]
    NewConfigNoQuorum,
    /// `RECONFIGINPROGRESS` (-14).
    #[error("reconfiguration in progress")]
    ReconfigInProgress,
    /// `APIERROR` (-100).
    #[error("api error")]
    ApiError,
    /// `NONODE` (-101): the node (or, for a create, its parent) does not exist.
    #[error("node does not exist")]
    NoNode,
    /// `NOAUTH` (-102): the ACL denies the operation.
    #[error("not authorized")]
    NoAuth,
    /// `BADVERSION` (-103): the expected version did not match.
    #[error("version mismatch")]
    BadVersion,
    /// `NOCHILDRENFOREPHEMERALS` (-108).
    #[error("ephemeral nodes cannot have children")]
    NoChildrenForEphemerals,
    /// `NODEEXISTS` (-110).
    #[error("node already exists")]
    NodeExists,
    /// `NOTEMPTY` (-111): the node has children.
    #[error("node has children")]
    NotEmpty,
    /// `SESSIONEXPIRED` (-112): the session is gone, and with it its ephemeral nodes and watches.
    #[error("session expired")]
    SessionExpired,
    /// `INVALIDCALLBACK` (-113).
    #[error("invalid callback")]
    InvalidCallback,
    /// `INVALIDACL` (-114).
    #[error("invalid ACL")]
    InvalidAcl,
    /// `AUTHFAILED` (-115): the server refused credentials; the session is unusable.
    #[error("authentication failed")]
    AuthFailed,
    /// `SESSIONMOVED` (-118): the session is now attached to another connection.
    #[error("session moved to another connection")]
    SessionMoved,
    /// `NOTREADONLY` (-119): a write reached a read-only server.
    #[error("server is read-only")]
    NotReadOnly,
    /// `EPHEMERALONLOCALSESSION` (-120).
    #[error("ephemeral node on a local session")]
    EphemeralOnLocalSession,
    /// `NOWATCHER` (-121): no such watch is registered.
    #[error("no such watcher")]
    NoWatcher,
    /// `REQUESTTIMEOUT` (-122).
    #[error("request timed out")]
    RequestTimeout,
    /// `RECONFIGDISABLED` (-123).
    #[error("reconfiguration disabled")]
    ReconfigDisabled,
    /// `SESSIONCLOSEDREQUIRESASLAUTH` (-124).
    #[error("session closed: SASL authentication required")]
    SessionClosedRequireSaslAuth,
    /// `QUOTAEXCEEDED` (-125).
    #[error("quota exceeded")]
    QuotaExceeded,
    /// `THROTTLEDOP` (-127).
    #[error("operation throttled by the server")]
    ThrottledOp,
    /// A result code this crate does not know.
    #[error("unknown ZooKeeper error code {0}")]
    Unknown(i32),

    /// A path that ZooKeeper would reject; nothing was sent.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request whose frame would exceed the `jute.maxbuffer` limit; nothing was sent.
    #[error("request of {size} bytes exceeds the {limit}-byte frame limit")]
    DataTooLarge {
        /// The encoded request size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An argument that makes no sense (a bad connect string, TTL or option); nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No server of the connect string could be reached (or none accepted the session); the
    /// message says what happened on the last attempt.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The peer broke the protocol (a malformed frame, an unexpected xid, ...).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The client was closed; no more requests can be sent.
    #[error("client closed")]
    Closed,
    /// An op of a `multi` failed; no op was applied.
    #[error("multi op #{index} failed: {source}")]
    MultiFailed {
        /// Index of the first failing op.
        index: usize,
        /// Its error.
        #[source]
        source: Box<Error>,
    },
    /// A read answered from an older state than this client (or its zxid floor) had already
    /// seen: the server is behind. `sync()` and read again.
    #[error("stale read: the reply reflects zxid {zxid:#x}, older than {floor:#x} already seen")]
    StaleRead {
        /// The zxid the reply reflects.
        zxid: i64,
        /// The zxid already seen when the read was sent.
        floor: i64,
    },
    /// An I/O error of the embedded server or the command line (binding a port, ...).
    #[error("I/O error: {0}")]
    Io(String),
}

impl Error {
    /// The error for a ZooKeeper result code (`code` must not be 0).
    pub fn from_code(code: i32) -> Error {
        match ErrorCode::from_i32(code) {
            Some(c) => Error::from(c),
            None => Error::Unknown(code),
        }
    }

    /// The ZooKeeper result code behind the error, when there is one. Client-side validation
    /// errors have none (nothing reached the server); a failed multi reports its failing op's.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Error::SystemError => ErrorCode::SystemError,
            Error::RuntimeInconsistency => ErrorCode::RuntimeInconsistency,
            Error::DataInconsistency => ErrorCode::DataInconsistency,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::MarshallingError => ErrorCode::MarshallingError,
            Error::Unimplemented => ErrorCode::Unimplemented,
            Error::OperationTimeout => ErrorCode::OperationTimeout,
            Error::BadArguments => ErrorCode::BadArguments,
            Error::UnknownSession => ErrorCode::UnknownSession,
            Error::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Error::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            Error::ApiError => ErrorCode::ApiError,
            Error::NoNode => ErrorCode::NoNode,
            Error::NoAuth => ErrorCode::NoAuth,
            Error::BadVersion => ErrorCode::BadVersion,
            Error::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
            Error::NodeExists => ErrorCode::NodeExists,
            Error::NotEmpty => ErrorCode::NotEmpty,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::InvalidCallback => ErrorCode::InvalidCallback,
            Error::InvalidAcl => ErrorCode::InvalidAcl,
            Error::AuthFailed => ErrorCode::AuthFailed,
            Error::SessionMoved => ErrorCode::SessionMoved,
            Error::NotReadOnly => ErrorCode::NotReadOnly,
            Error::EphemeralOnLocalSession => ErrorCode::EphemeralOnLocalSession,
            Error::NoWatcher => ErrorCode::NoWatcher,
            Error::RequestTimeout => ErrorCode::RequestTimeout,
            Error::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            Error::SessionClosedRequireSaslAuth => ErrorCode::SessionClosedRequireSaslAuth,
            Error::QuotaExceeded => ErrorCode::QuotaExceeded,
            Error::ThrottledOp => ErrorCode::ThrottledOp,
            Error::MultiFailed { source, .. } => return source.code(),
            Error::Unknown(_)
            | Error::InvalidPath { .. }
            | Error::DataTooLarge { .. }
            | Error::InvalidArgument(_)
            | Error::Connect(_)
            | Error::Protocol(_)
            | Error::Closed
            | Error::StaleRead { .. }
            | Error::Io(_) => return None,
        })
    }

    /// The raw result code, including codes this crate does not know.
    pub fn raw_code(&self) -> Option<i32> {
        match self {
            Error::Unknown(c) => Some(*c),
            Error::MultiFailed { source, .. } => source.raw_code(),
            other => other.code().map(ErrorCode::as_i32),
        }
    }

    /// Whether retrying the same request may succeed: the connection broke or a deadline passed,
    /// so the outcome is unknown. Never true for session expiry or for logic errors.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::ConnectionLoss | Error::OperationTimeout)
    }

    /// Whether the session (or client) is finished: no later request on it can succeed.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Error::SessionExpired | Error::AuthFailed | Error::SessionMoved | Error::Closed)
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Error {
        match code {
            // `Ok` is not an error; treat a stray one as a protocol violation rather than panic.
            ErrorCode::Ok => Error::Protocol("result code 0 reported as an error".into()),
            ErrorCode::SystemError => Error::SystemError,
            ErrorCode::RuntimeInconsistency => Error::RuntimeInconsistency,
            ErrorCode::DataInconsistency => Error::DataInconsistency,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::MarshallingError => Error::MarshallingError,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::OperationTimeout => Error::OperationTimeout,
            ErrorCode::BadArguments => Error::BadArguments,
            ErrorCode::UnknownSession => Error::UnknownSession,
            ErrorCode::NewConfigNoQuorum => Error::NewConfigNoQuorum,
            ErrorCode::ReconfigInProgress => Error::ReconfigInProgress,
            ErrorCode::ApiError => Error::ApiError,
            ErrorCode::NoNode => Error::NoNode,
            ErrorCode::NoAuth => Error::NoAuth,
            ErrorCode::BadVersion => Error::BadVersion,
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals,
            ErrorCode::NodeExists => Error::NodeExists,
            ErrorCode::NotEmpty => Error::NotEmpty,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::InvalidCallback => Error::InvalidCallback,
            ErrorCode::InvalidAcl => Error::InvalidAcl,
            ErrorCode::AuthFailed => Error::AuthFailed,
            ErrorCode::SessionMoved => Error::SessionMoved,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::EphemeralOnLocalSession => Error::EphemeralOnLocalSession,
            ErrorCode::NoWatcher => Error::NoWatcher,
            ErrorCode::RequestTimeout => Error::RequestTimeout,
            ErrorCode::ReconfigDisabled => Error::ReconfigDisabled,
            ErrorCode::SessionClosedRequireSaslAuth => Error::SessionClosedRequireSaslAuth,
            ErrorCode::QuotaExceeded => Error::QuotaExceeded,
            ErrorCode::ThrottledOp => Error::ThrottledOp,
        }
    }
}

impl From<crate::proto::DecodeError> for Error {
    fn from(e: crate::proto::DecodeError) -> Error {
        Error::Protocol(e.to_string())
    }
}

impl From<crate::proto::FrameError> for Error {
    fn from(e: crate::proto::FrameError) -> Error {
        Error::Protocol(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e.to_string())
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_to_itself() {
        for code in ErrorCode::ALL.iter().filter(|c| **c != ErrorCode::Ok) {
            let e = Error::from(*code);
            assert_eq!(e.code(), Some(*code), "{e:?}");
            assert_eq!(Error::from_code(code.as_i32()), e);
        }
        assert_eq!(Error::from_code(-9), Error::Unknown(-9));
        assert_eq!(Error::Unknown(-9).raw_code(), Some(-9));
    }

    #[test]
    fn classification() {
        assert!(Error::ConnectionLoss.is_retryable());
        assert!(!Error::SessionExpired.is_retryable());
        assert!(Error::SessionExpired.is_terminal());
        let multi = Error::MultiFailed { index: 1, source: Box::new(Error::NoNode) };
        assert_eq!(multi.code(), Some(ErrorCode::NoNode));
        assert!(!Error::NoNode.is_terminal());
    }
}
