//! The recipes' one error type: [`Error`] is either an error of the ZooKeeper client
//! ([`Error::Zk`], wrapping [`conclave_core::Error`] unchanged) or a condition only a recipe can
//! report, such as a hold that ended before it was released ([`Error::Lost`]).
//!
//! Why a wrapper rather than more variants in the core error: the core crate speaks ZooKeeper
//! (every variant there is a result code or a client-side condition of the protocol), while
//! what a recipe reports — "the lock you held is gone, and here is why" — only exists above it.
//! Wrapping keeps both honest: `?` converts a core error into this one, [`Error::code`],
//! [`Error::is_retryable`] and [`Error::is_terminal`] answer as the core error does, and the
//! core error itself is one `match` arm away (`Error::Zk(ZkError::NoNode)`, or
//! [`Error::zk`]).

use conclave_core::ErrorCode;

use crate::hold::LossReason;

/// The error of the ZooKeeper client, as [`conclave_core`] reports it (re-exported under this
/// name so that it does not shadow the recipes' [`Error`]).
pub use conclave_core::Error as ZkError;

/// The result type of the recipes.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a recipe can fail with.
///
/// It is `Clone + Eq`, like the core error, so tests can compare errors with `assert_eq!`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the ZooKeeper client or server: a result code (`NoNode`, `NoAuth`, ...), a
    /// connection or session condition (`ConnectionLoss`, `SessionExpired`, ...) or a
    /// client-side check (`InvalidPath`, `InvalidArgument`, ...).
    #[error(transparent)]
    Zk(#[from] ZkError),
    /// A hold (a lock, a lease, a leadership) ended before it was released: its node was
    /// deleted by someone else, or went with the session. Work done under it may not have been
    /// exclusive; a fenced write made without it was rejected, and nothing of it was applied.
    #[error("{path}: the hold was lost before it was released ({reason})")]
    Lost {
        /// The recipe's own node, the one that proved the hold.
        path: String,
        /// What happened to it.
        reason: LossReason,
    },
    /// A directory has too many children to list in one reply: listing it would take about
    /// `bytes`, over the `limit` of the client's reply frame
    /// ([`Client::max_reply_frame`](conclave_core::Client::max_reply_frame)) or the server's
    /// reply limit. A queue this long must be drained by consumers with a larger limit, or
    /// split across several queue paths.
    #[error("{path}: {children} children cannot be listed in one reply (about {bytes} bytes, limit {limit})")]
    TooManyChildren {
        /// The directory.
        path: String,
        /// How many children it has.
        children: usize,
        /// The estimated size of the listing.
        bytes: usize,
        /// The reply limit it exceeds.
        limit: usize,
    },
    /// A stream of a cache's events fell more than `limit` events behind: the cache ended the
    /// stream (after the events it holds) rather than keep queueing for it without bound. Take
    /// a new stream ([`crate::cache::TreeCache::events`]: it starts with the cache's content)
    /// and consume it faster, or raise the limit
    /// ([`crate::cache::CacheBuilder::max_lag`]).
    #[error("{path}: a cache event stream fell {limit} events behind and was ended")]
    Lagged {
        /// The cache's root path.
        path: String,
        /// How many undelivered events a stream may have.
        limit: usize,
    },
}

impl Error {
    /// The core error inside, if this is one.
    pub fn zk(&self) -> Option<&ZkError> {
        match self {
            Error::Zk(e) => Some(e),
            Error::Lost { .. } | Error::TooManyChildren { .. } | Error::Lagged { .. } => None,
        }
    }

    /// The ZooKeeper result code behind the error, when there is one (see
    /// [`ZkError::code`]); `None` for recipe conditions.
    pub fn code(&self) -> Option<ErrorCode> {
        self.zk().and_then(ZkError::code)
    }

    /// The raw ZooKeeper result code, including codes the client does not know.
    pub fn raw_code(&self) -> Option<i32> {
        self.zk().and_then(ZkError::raw_code)
    }

    /// Whether repeating the same call may succeed (the outcome of the last request is unknown:
    /// see [`ZkError::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.zk().is_some_and(ZkError::is_retryable)
    }

    /// Whether the session is over, so that no later call on the same client can succeed (see
    /// [`ZkError::is_terminal`]).
    pub fn is_terminal(&self) -> bool {
        self.zk().is_some_and(ZkError::is_terminal)
    }

    /// Whether this is [`Error::Lost`].
    pub fn is_lost(&self) -> bool {
        matches!(self, Error::Lost { .. })
    }
}

impl PartialEq<ZkError> for Error {
    fn eq(&self, other: &ZkError) -> bool {
        self.zk() == Some(other)
    }
}

// Errors cross tasks and threads.
const _: () = send_sync::<Error>();
const fn send_sync<T: Send + Sync + 'static>() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_the_core_classification() {
        let e = Error::from(ZkError::NoNode);
        assert_eq!(e.code(), Some(ErrorCode::NoNode));
        assert_eq!(e, ZkError::NoNode);
        assert!(!e.is_retryable() && !e.is_terminal());
        assert!(Error::from(ZkError::ConnectionLoss).is_retryable());
        assert!(Error::from(ZkError::SessionExpired).is_terminal());
        assert_eq!(Error::from(ZkError::Unknown(-9)).raw_code(), Some(-9));
        let failed = Error::from(ZkError::MultiFailed { index: 0, source: Box::new(ZkError::BadVersion) });
        assert_eq!(failed.code(), Some(ErrorCode::BadVersion));
        assert_eq!(ZkError::NoAuth.to_string(), Error::from(ZkError::NoAuth).to_string(), "transparent");
    }

    #[test]
    fn a_loss_has_no_code() {
        let lost = Error::Lost { path: "/l/_c_x-lock-0000000001".into(), reason: LossReason::NodeDeleted };
        assert_eq!(lost.code(), None);
        assert!(lost.is_lost() && !lost.is_retryable() && !lost.is_terminal());
        assert_eq!(lost.zk(), None);
        assert!(lost.to_string().contains("/l/_c_x-lock-0000000001"), "{lost}");
        assert!(lost.to_string().contains(&LossReason::NodeDeleted.to_string()), "{lost}");
    }
}
