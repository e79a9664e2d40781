//! [`WatchedEvent`]: what a watcher receives. It is defined here, below the client handles,
//! because the session's watch registry builds and delivers it; `client` re-exports it.

use crate::proto::EventType;

/// A watch notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened. Besides the server's events (`NodeCreated`, `NodeDeleted`,
    /// `NodeDataChanged`, `NodeChildrenChanged`), a watcher ended by
    /// [`crate::Client::remove_watches`] receives `DataWatchRemoved`, `ChildWatchRemoved` or
    /// `PersistentWatchRemoved`.
    pub event_type: EventType,
    /// The path the event is about (chroot removed).
    pub path: String,
    /// The zxid of the transaction that fired the event; -1 for events the server synthesised
    /// while re-registering watches after a reconnect, and for local removal events.
    pub zxid: i64,
}
