//! The protocol's numeric vocabularies: op codes, error codes, watch event types, session states,
//! watcher types, add-watch modes, create modes and ACL permission bits.
//!
//! Each enum converts from the wire `int` with `from_i32` (returning `None` for values the
//! protocol does not define) and back with `as_i32`, so unknown values can be answered or
//! reported rather than silently mapped to something else.

use std::fmt;

/// Declares a `#[repr(i32)]` enum with checked conversion from the wire integer.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value for a wire integer, or `None` if the protocol defines no such value.
            pub fn from_i32(v: i32) -> Option<Self> {
                match v {
                    $( $value => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The wire integer.
            pub fn as_i32(self) -> i32 {
                self as i32
            }
        }
    };
}

wire_enum! {
    /// Request types (`ZooDefs.OpCode`). `RequestHeader.type` carries one of these.
    pub enum OpCode {
        /// Watch notification (never sent as a request).
        Notification = 0,
        /// Create a node; replies with the path.
        Create = 1,
        /// Delete a node.
        Delete = 2,
        /// Stat a node, optionally leaving an exists watch.
        Exists = 3,
        /// Read a node's data and stat.
        GetData = 4,
        /// Write a node's data.
        SetData = 5,
        /// Read a node's ACL.
        GetAcl = 6,
        /// Write a node's ACL.
        SetAcl = 7,
        /// List a node's children.
        GetChildren = 8,
        /// Wait until the server has applied everything before this request.
        Sync = 9,
        /// Keep-alive (xid -2).
        Ping = 11,
        /// List children and stat.
        GetChildren2 = 12,
        /// Version check (inside multi only).
        Check = 13,
        /// Atomic batch of writes.
        Multi = 14,
        /// Create, replying with path and stat.
        Create2 = 15,
        /// Dynamic reconfiguration (refused by a standalone server).
        Reconfig = 16,
        /// Test whether a watch is registered.
        CheckWatches = 17,
        /// Remove watches.
        RemoveWatches = 18,
        /// Create a container node.
        CreateContainer = 19,
        /// Server-internal delete of an empty container or expired TTL node.
        DeleteContainer = 20,
        /// Create a node with a time to live.
        CreateTtl = 21,
        /// Batch of independent reads.
        MultiRead = 22,
        /// Add authentication credentials (xid -4).
        Auth = 100,
        /// Re-register watches after a reconnect (no persistent watches).
        SetWatches = 101,
        /// SASL token exchange.
        Sasl = 102,
        /// List the calling session's ephemeral nodes.
        GetEphemerals = 103,
        /// Count all descendants of a node.
        GetAllChildrenNumber = 104,
        /// Re-register watches after a reconnect, persistent ones included.
        SetWatches2 = 105,
        /// Add a persistent or persistent-recursive watch.
        AddWatch = 106,
        /// List the connection's authenticated identities.
        WhoAmI = 107,
        /// Server-internal session creation.
        CreateSession = -10,
        /// End the session.
        CloseSession = -11,
        /// Server-internal error transaction; also the type of an error result inside multi.
        Error = -1,
    }
}

impl OpCode {
    /// The name ZooKeeper uses for the op in logs and `cons` output.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Notification => "notification",
            OpCode::Create => "create",
            OpCode::Delete => "delete",
            OpCode::Exists => "exists",
            OpCode::GetData => "getData",
            OpCode::SetData => "setData",
            OpCode::GetAcl => "getACL",
            OpCode::SetAcl => "setACL",
            OpCode::GetChildren => "getChildren",
            OpCode::Sync => "sync",
            OpCode::Ping => "ping",
            OpCode::GetChildren2 => "getChildren2",
            OpCode::Check => "check",
            OpCode::Multi => "multi",
            OpCode::Create2 => "create2",
            OpCode::Reconfig => "reconfig",
            OpCode::CheckWatches => "checkWatches",
            OpCode::RemoveWatches => "removeWatches",
            OpCode::CreateContainer => "createContainer",
            OpCode::DeleteContainer => "deleteContainer",
            OpCode::CreateTtl => "createTTL",
            OpCode::MultiRead => "multiRead",
            OpCode::Auth => "auth",
            OpCode::SetWatches => "setWatches",
            OpCode::Sasl => "sasl",
            OpCode::GetEphemerals => "getEphemerals",
            OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
            OpCode::SetWatches2 => "setWatches2",
            OpCode::AddWatch => "addWatch",
            OpCode::WhoAmI => "whoAmI",
            OpCode::CreateSession => "createSession",
            OpCode::CloseSession => "closeSession",
            OpCode::Error => "error",
        }
    }
}

impl OpCode {
    /// Whether the reply reflects the server's state at some zxid, and so can be older than what
    /// the client has already seen: `exists`, `getData`, `getChildren`, `getChildren2`, `getACL`,
    /// `getAllChildrenNumber`, `getEphemerals` and `multiRead`. (`sync` is not: it is the way to
    /// catch up.)
    pub fn is_read(self) -> bool {
        matches!(
            self,
            OpCode::Exists
                | OpCode::GetData
                | OpCode::GetChildren
                | OpCode::GetChildren2
                | OpCode::GetAcl
                | OpCode::GetAllChildrenNumber
                | OpCode::GetEphemerals
                | OpCode::MultiRead
        )
    }

    /// Whether the op creates a node: `create`, `create2`, `createContainer` or `createTTL`.
    pub fn is_create(self) -> bool {
        matches!(self, OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl)
    }

    /// Whether a client request of this op changes the data tree: the four creates, `delete`,
    /// `setData`, `setACL` and `multi`. Each is a transaction with its own zxid, failed ones
    /// included. Not counted: `closeSession` (a session operation, though it deletes the
    /// session's ephemeral nodes), `reconfig` and the server-internal `deleteContainer`.
    pub fn is_write(self) -> bool {
        self.is_create() || matches!(self, OpCode::Delete | OpCode::SetData | OpCode::SetAcl | OpCode::Multi)
    }

    /// Whether the op may appear inside `multi` (14): the four creates, `delete`, `setData` and
    /// `check`.
    pub fn is_multi_write(self) -> bool {
        self.is_create() || matches!(self, OpCode::Delete | OpCode::SetData | OpCode::Check)
    }

    /// Whether the op may appear inside `multiRead` (22): `getData` and `getChildren`.
    pub fn is_multi_read(self) -> bool {
        matches!(self, OpCode::GetData | OpCode::GetChildren)
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

wire_enum! {
    /// Result codes (`KeeperException.Code`), as carried in `ReplyHeader.err` and in multi results.
    pub enum ErrorCode {
        /// Success.
        Ok = 0,
        /// Marker for system errors; never sent.
        SystemError = -1,
        /// A multi op after the failing one was not run.
        RuntimeInconsistency = -2,
        /// A data inconsistency was found.
        DataInconsistency = -3,
        /// The connection was lost (client-local).
        ConnectionLoss = -4,
        /// A request could not be (de)serialized.
        MarshallingError = -5,
        /// The operation is not implemented by this server or in this mode.
        Unimplemented = -6,
        /// An operation timed out (client-local).
        OperationTimeout = -7,
        /// Invalid arguments: a bad path, bad flags or a bad TTL.
        BadArguments = -8,
        /// Unknown session (server-internal).
        UnknownSession = -12,
        /// No quorum of the new configuration is connected (reconfig).
        NewConfigNoQuorum = -13,
        /// Another reconfiguration is in progress.
        ReconfigInProgress = -14,
        /// Marker for API errors; never sent.
        ApiError = -100,
        /// The node does not exist.
        NoNode = -101,
        /// Not authorized.
        NoAuth = -102,
        /// The expected version does not match.
        BadVersion = -103,
        /// Ephemeral nodes may not have children.
        NoChildrenForEphemerals = -108,
        /// The node already exists.
        NodeExists = -110,
        /// The node has children.
        NotEmpty = -111,
        /// The session has expired.
        SessionExpired = -112,
        /// Invalid callback (client-local).
        InvalidCallback = -113,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// The session moved to another server.
        SessionMoved = -118,
        /// A write was sent to a read-only server.
        NotReadOnly = -119,
        /// An ephemeral was requested on a local session.
        EphemeralOnLocalSession = -120,
        /// No such watcher.
        NoWatcher = -121,
        /// A request timed out (client-local).
        RequestTimeout = -122,
        /// Reconfiguration is disabled.
        ReconfigDisabled = -123,
        /// The session was closed because SASL authentication is required.
        SessionClosedRequireSaslAuth = -124,
        /// A quota was exceeded.
        QuotaExceeded = -125,
        /// The server throttled the operation.
        ThrottledOp = -127,
    }
}

impl ErrorCode {
    /// ZooKeeper's upper-case name for the code, as printed by zkCli and the Java client.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::SystemError => "SYSTEMERROR",
            ErrorCode::RuntimeInconsistency => "RUNTIMEINCONSISTENCY",
            ErrorCode::DataInconsistency => "DATAINCONSISTENCY",
            ErrorCode::ConnectionLoss => "CONNECTIONLOSS",
            ErrorCode::MarshallingError => "MARSHALLINGERROR",
            ErrorCode::Unimplemented => "UNIMPLEMENTED",
            ErrorCode::OperationTimeout => "OPERATIONTIMEOUT",
            ErrorCode::BadArguments => "BADARGUMENTS",
            ErrorCode::UnknownSession => "UNKNOWNSESSION",
            ErrorCode::NewConfigNoQuorum => "NEWCONFIGNOQUORUM",
            ErrorCode::ReconfigInProgress => "RECONFIGINPROGRESS",
            ErrorCode::ApiError => "APIERROR",
            ErrorCode::NoNode => "NONODE",
            ErrorCode::NoAuth => "NOAUTH",
            ErrorCode::BadVersion => "BADVERSION",
            ErrorCode::NoChildrenForEphemerals => "NOCHILDRENFOREPHEMERALS",
            ErrorCode::NodeExists => "NODEEXISTS",
            ErrorCode::NotEmpty => "NOTEMPTY",
            ErrorCode::SessionExpired => "SESSIONEXPIRED",
            ErrorCode::InvalidCallback => "INVALIDCALLBACK",
            ErrorCode::InvalidAcl => "INVALIDACL",
            ErrorCode::AuthFailed => "AUTHFAILED",
            ErrorCode::SessionMoved => "SESSIONMOVED",
            ErrorCode::NotReadOnly => "NOTREADONLY",
            ErrorCode::EphemeralOnLocalSession => "EPHEMERALONLOCALSESSION",
            ErrorCode::NoWatcher => "NOWATCHER",
            ErrorCode::RequestTimeout => "REQUESTTIMEOUT",
            ErrorCode::ReconfigDisabled => "RECONFIGDISABLED",
            ErrorCode::SessionClosedRequireSaslAuth => "SESSIONCLOSEDREQUIRESASLAUTH",
            ErrorCode::QuotaExceeded => "QUOTAEXCEEDED",
            ErrorCode::ThrottledOp => "THROTTLEDOP",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i32())
    }
}

wire_enum! {
    /// The kind of change a watch event reports (`Watcher.Event.EventType`).
    pub enum EventType {
        /// A session event (client-local).
        None = -1,
        /// The watched node was created.
        NodeCreated = 1,
        /// The watched node was deleted.
        NodeDeleted = 2,
        /// The watched node's data changed.
        NodeDataChanged = 3,
        /// The watched node's children changed.
        NodeChildrenChanged = 4,
        /// A data watch was removed (client-local).
        DataWatchRemoved = 5,
        /// A child watch was removed (client-local).
        ChildWatchRemoved = 6,
        /// A persistent watch was removed (client-local).
        PersistentWatchRemoved = 7,
    }
}

wire_enum! {
    /// Session state carried in a watch event (`Watcher.Event.KeeperState`). Servers only ever
    /// send `SyncConnected`.
    pub enum KeeperState {
        /// Deprecated.
        Unknown = -1,
        /// Disconnected from the server.
        Disconnected = 0,
        /// Deprecated.
        NoSyncConnected = 1,
        /// Connected.
        SyncConnected = 3,
        /// Authentication failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authentication succeeded.
        SaslAuthenticated = 6,
        /// The session expired.
        Expired = -112,
        /// The client closed the session.
        Closed = 7,
    }
}

wire_enum! {
    /// Which watches `checkWatches` and `removeWatches` address (`Watcher.WatcherType`).
    pub enum WatcherType {
        /// One-shot child watches.
        Children = 1,
        /// One-shot data and exists watches.
        Data = 2,
        /// Every kind.
        Any = 3,
        /// Persistent (non-recursive) watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

wire_enum! {
    /// The mode of an `addWatch` request.
    pub enum AddWatchMode {
        /// Data and child events on the node itself; stays until removed.
        Persistent = 0,
        /// Data events on the node and all its descendants; stays until removed.
        PersistentRecursive = 1,
    }
}

wire_enum! {
    /// The `flags` of a create request: how the node lives and whether it is sequential.
    pub enum CreateMode {
        /// Lives until deleted.
        Persistent = 0,
        /// Deleted when the creating session ends.
        Ephemeral = 1,
        /// Persistent, with a 10-digit sequence suffix appended to the name.
        PersistentSequential = 2,
        /// Ephemeral, with a sequence suffix.
        EphemeralSequential = 3,
        /// Deleted by the server once it has had children and has none left.
        Container = 4,
        /// Deleted by the server when it has no children and was not modified for its TTL.
        PersistentWithTtl = 5,
        /// As `PersistentWithTtl`, with a sequence suffix.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Whether the node belongs to its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    /// Whether the server appends a sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the mode takes a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }

    /// Whether the mode is a container.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
}

/// ACL permission bits (`ZooDefs.Perms`). Combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// No permission.
    pub const NONE: Perms = Perms(0);
    /// Read data, list children, stat.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Every permission.
    pub const ALL: Perms = Perms(31);

    /// Whether any bit of `other` is set in `self`.
    pub fn intersects(self, other: Perms) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl fmt::Display for Perms {
    /// zkCli's letters: `c` create, `d` delete, `r` read, `w` write, `a` admin.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in
            [(Perms::CREATE, 'c'), (Perms::DELETE, 'd'), (Perms::READ, 'r'), (Perms::WRITE, 'w'), (Perms::ADMIN, 'a')]
        {
            if self.contains(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknowns_are_none() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_i32(op.as_i32()), Some(*op));
        }
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_i32(code.as_i32()), Some(*code));
        }
        assert_eq!(OpCode::from_i32(10), None);
        assert_eq!(ErrorCode::from_i32(-9), None);
        assert_eq!(ErrorCode::NoNode.as_i32(), -101);
        assert_eq!(OpCode::WhoAmI.as_i32(), 107);
    }

    #[test]
    fn op_code_classifications() {
        // (op, is_read, is_write, is_multi_write, is_multi_read, is_create)
        #[rustfmt::skip]
        let table = [
            (OpCode::Notification,         false, false, false, false, false),
            (OpCode::Create,               false, true,  true,  false, true),
            (OpCode::Delete,               false, true,  true,  false, false),
            (OpCode::Exists,               true,  false, false, false, false),
            (OpCode::GetData,              true,  false, false, true, false),
            (OpCode::SetData,              false, true,  true,  false, false),
            (OpCode::GetAcl,               true,  false, false, false, false),
            (OpCode::SetAcl,               false, true,  false, false, false),
            (OpCode::GetChildren,          true,  false, false, true, false),
            (OpCode::Sync,                 false, false, false, false, false),
            (OpCode::Ping,                 false, false, false, false, false),
            (OpCode::GetChildren2,         true,  false, false, false, false),
            (OpCode::Check,                false, false, true,  false, false),
            (OpCode::Multi,                false, true,  false, false, false),
            (OpCode::Create2,              false, true,  true,  false, true),
            (OpCode::Reconfig,             false, false, false, false, false),
            (OpCode::CheckWatches,         false, false, false, false, false),
            (OpCode::RemoveWatches,        false, false, false, false, false),
            (OpCode::CreateContainer,      false, true,  true,  false, true),
            (OpCode::DeleteContainer,      false, false, false, false, false),
            (OpCode::CreateTtl,            false, true,  true,  false, true),
            (OpCode::MultiRead,            true,  false, false, false, false),
            (OpCode::Auth,                 false, false, false, false, false),
            (OpCode::SetWatches,           false, false, false, false, false),
            (OpCode::Sasl,                 false, false, false, false, false),
            (OpCode::GetEphemerals,        true,  false, false, false, false),
            (OpCode::GetAllChildrenNumber, true,  false, false, false, false),
            (OpCode::SetWatches2,          false, false, false, false, false),
            (OpCode::AddWatch,             false, false, false, false, false),
            (OpCode::WhoAmI,               false, false, false, false, false),
            (OpCode::CreateSession,        false, false, false, false, false),
            (OpCode::CloseSession,         false, false, false, false, false),
            (OpCode::Error,                false, false, false, false, false),
        ];
        assert_eq!(table.len(), OpCode::ALL.len(), "every op code is in the table");
        for (op, read, write, multi_write, multi_read, create) in table {
            let got = (op.is_read(), op.is_write(), op.is_multi_write(), op.is_multi_read(), op.is_create());
            assert_eq!(got, (read, write, multi_write, multi_read, create), "{op}");
        }
    }

    #[test]
    fn create_mode_properties() {
        assert!(CreateMode::EphemeralSequential.is_ephemeral());
        assert!(CreateMode::EphemeralSequential.is_sequential());
        assert!(CreateMode::PersistentSequentialWithTtl.is_ttl());
        assert!(!CreateMode::Container.is_ephemeral());
        assert_eq!(CreateMode::from_i32(7), None);
    }

    #[test]
    fn perms_display_like_zkcli() {
        assert_eq!(Perms::ALL.to_string(), "cdrwa");
        assert_eq!((Perms::READ | Perms::WRITE).to_string(), "rw");
    }
}
