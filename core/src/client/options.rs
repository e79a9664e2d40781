//! Per-call options: how a node is created ([`CreateOptions`]) and the operations of a `multi`
//! ([`Op`]) and `multiRead` ([`ReadOp`]) with their typed results.

use std::time::Duration;

use bytes::Bytes;

use super::Data;
use crate::error::{Error, Result};
use crate::proto::{Acl, CreateMode, Stat};

/// The largest TTL ZooKeeper accepts (`0x00FFFFFFFFFF` ms, about 34.8 years).
pub const MAX_TTL: Duration = Duration::from_millis(0x00FF_FFFF_FFFF);

/// How to create a node: its mode, ACL and, for TTL modes, its time to live.
///
/// Built from a [`CreateMode`] (`CreateMode::Ephemeral.into()`), or with [`CreateOptions::new`] and
/// the `acl`/`ttl` setters. The default ACL is `OPEN_ACL_UNSAFE` (everything for everyone), as
/// in most ZooKeeper clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// The create mode.
    pub mode: CreateMode,
    /// The ACL of the new node.
    pub acl: Vec<Acl>,
    /// Time to live, required by (and only allowed with) the TTL modes.
    pub ttl: Option<Duration>,
}

impl CreateOptions {
    /// Options for `mode` with the open ACL and no TTL.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions { mode, acl: Acl::open_unsafe(), ttl: None }
    }

    /// Sets the ACL.
    pub fn acl(mut self, acl: Vec<Acl>) -> Self {
        self.acl = acl;
        self
    }

    /// Sets the time to live (TTL modes only).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Checks the combination of mode and TTL, returning the TTL in ms for TTL modes.
    pub(crate) fn validated_ttl(&self) -> Result<Option<i64>> {
        match (self.mode.is_ttl(), self.ttl) {
            (true, Some(ttl)) if !ttl.is_zero() && ttl <= MAX_TTL => Ok(Some(ttl.as_millis() as i64)),
            (true, Some(ttl)) => Err(Error::InvalidArgument(format!("TTL {ttl:?} outside 1 ms..={MAX_TTL:?}"))),
            (true, None) => Err(Error::InvalidArgument(format!("{:?} needs a TTL", self.mode))),
            (false, Some(_)) => Err(Error::InvalidArgument(format!("{:?} does not take a TTL", self.mode))),
            (false, None) => Ok(None),
        }
    }
}

impl From<CreateMode> for CreateOptions {
    fn from(mode: CreateMode) -> Self {
        CreateOptions::new(mode)
    }
}

/// One operation of an atomic `multi` (see [`crate::Client::multi`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node.
    Create {
        /// Path (sequential modes get a suffix).
        path: String,
        /// Initial data.
        data: Bytes,
        /// Mode, ACL and TTL.
        options: CreateOptions,
    },
    /// Delete a node, at `version` if given.
    Delete {
        /// Path.
        path: String,
        /// Expected data version; `None` matches any.
        version: Option<i32>,
    },
    /// Set a node's data, at `version` if given.
    SetData {
        /// Path.
        path: String,
        /// New data.
        data: Bytes,
        /// Expected data version; `None` matches any.
        version: Option<i32>,
    },
    /// Require a node to exist (at `version` if given) for the whole multi to apply.
    Check {
        /// Path.
        path: String,
        /// Expected data version; `None` only requires existence.
        version: Option<i32>,
    },
}

impl Op {
    /// A create op.
    pub fn create(path: impl Into<String>, data: impl Into<Data>, options: impl Into<CreateOptions>) -> Op {
        Op::Create { path: path.into(), data: data.into().into_bytes(), options: options.into() }
    }

    /// A delete op.
    pub fn delete(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Delete { path: path.into(), version }
    }

    /// A setData op.
    pub fn set_data(path: impl Into<String>, data: impl Into<Data>, version: Option<i32>) -> Op {
        Op::SetData { path: path.into(), data: data.into().into_bytes(), version }
    }

    /// A version check.
    pub fn check(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Check { path: path.into(), version }
    }
}

/// The result of one op of a successful `multi`, in op order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The node was created at `path`. `stat` is `None` when the server answers with a plain
    /// create result (ZooKeeper before 3.9 does so inside multi, ZOOKEEPER-4026).
    Create {
        /// The created path (chroot removed), with any sequence suffix.
        path: String,
        /// The new node's stat, when the server sent it.
        stat: Option<Stat>,
    },
    /// The node was deleted.
    Delete,
    /// The node's data was set.
    SetData {
        /// The node's new stat.
        stat: Stat,
    },
    /// The check passed.
    Check,
}

/// One read of a `multiRead` (see [`crate::Client::multi_read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// Read a node's data.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

/// The result of one successful read of a `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// A node's data and stat.
    Data {
        /// The data.
        data: Bytes,
        /// The stat.
        stat: Stat,
    },
    /// A node's children.
    Children(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_only_with_ttl_modes() {
        assert_eq!(CreateOptions::new(CreateMode::Persistent).validated_ttl(), Ok(None));
        assert!(CreateOptions::new(CreateMode::PersistentWithTtl).validated_ttl().is_err());
        let ok = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(1));
        assert_eq!(ok.validated_ttl(), Ok(Some(1000)));
        assert!(CreateOptions::new(CreateMode::Ephemeral).ttl(Duration::from_secs(1)).validated_ttl().is_err());
        assert!(CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::ZERO).validated_ttl().is_err());
        assert!(CreateOptions::new(CreateMode::PersistentWithTtl).ttl(MAX_TTL * 2).validated_ttl().is_err());
    }
}
