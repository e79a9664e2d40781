//! [`GroupMember`]: membership of a group, Curator's `GroupMember` layout — each member keeps
//! its own ephemeral node `<group>/<id>` (data = the member's data) with a
//! [`PersistentNode`], and sees the others through a [`ChildrenCache`] of the group.

use std::collections::BTreeMap;

use bytes::Bytes;
use conclave_core::{path, Client, Data, Error as ZkError};
use futures::{Stream, StreamExt};

use super::PersistentNode;
use crate::cache::ChildrenCache;
use crate::error::Result;
use crate::wait::Wait;

/// A member of a group: this process's node in it, kept in place (across deletions, connection
/// losses and expiries: see [`PersistentNode`]), and the group as it is seen, by member id.
///
/// The layout is Curator's `GroupMember`: member `<id>` is the ephemeral node `<group>/<id>`
/// (missing parents created as containers), its data the member's data, so Java and Rust
/// members of one group see each other. As in Curator, [`GroupMember::members`] always includes
/// this member, even before its node is in place or seen by the cache.
///
/// The node and the cache use the same session; after an expiry both move to its successor
/// (one new session, shared with the other recipes that were on the expired one).
///
/// ```no_run
/// # async fn demo(client: conclave::Client) -> conclave::Result<()> {
/// use conclave::membership::GroupMember;
/// use futures::StreamExt;
///
/// let me = GroupMember::new(&client, "/services/workers", "worker-7", "10.0.0.7")?;
/// me.joined().await?;
/// let mut changes = Box::pin(me.changes());
/// while let Some(members) = changes.next().await {
///     println!("{} workers: {:?}", members?.len(), me.members().keys());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "the member leaves the group as soon as it is dropped"]
pub struct GroupMember {
    id: String,
    group: String,
    node: PersistentNode,
    cache: ChildrenCache,
}

impl GroupMember {
    /// Joins the group at `group` as `id` with `data`: starts keeping the member's node and
    /// following the group (both in the background; [`GroupMember::joined`] waits for them).
    ///
    /// # Errors
    /// `InvalidPath` for a bad group path; `InvalidArgument` for an id that is not one node
    /// name (empty, `.`, `..`, or with a `/`).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(client: &Client, group: &str, id: &str, data: impl Into<Data>) -> Result<GroupMember> {
        path::validate_path(group)?;
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(ZkError::InvalidArgument(format!("{id:?} is not a member id: one node name is")).into());
        }
        let member = if group == "/" { format!("/{id}") } else { format!("{group}/{id}") };
        path::validate_path(&member)?;
        let cache = ChildrenCache::new(client, group)?;
        let node = PersistentNode::new(client, &member, data);
        Ok(GroupMember { id: id.to_string(), group: group.to_string(), node, cache })
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The group's path.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Waits until this member's node is in place and the group has been read once.
    ///
    /// # Errors
    /// What the node's keeper cannot get past (`NoAuth` on the group, data too large...) or the
    /// cache's end (see [`PersistentNode::created`] and [`ChildrenCache::initialized`]).
    pub async fn joined(&self) -> Result<()> {
        self.joined_with(Wait::forever()).await.map(drop)
    }

    /// As [`GroupMember::joined`], within `wait`'s limits: `Some(())` once joined, `None` if
    /// the limits were reached first (the member still joins in the background).
    ///
    /// # Errors
    /// As [`GroupMember::joined`].
    pub async fn joined_with(&self, wait: Wait) -> Result<Option<()>> {
        if self.node.created_with(wait).await?.is_none() {
            return Ok(None);
        }
        self.cache.initialized().await?;
        Ok(Some(()))
    }

    /// The members as last seen, id → data. This member is always included: with its node's
    /// data as the group shows it, or (before its node is seen) with the data it joins with.
    pub fn members(&self) -> BTreeMap<String, Bytes> {
        with_self(&self.id, &self.node.data(), self.cache.children())
    }

    /// The members (as [`GroupMember::members`]) once the group has been read, then again after
    /// every change of the group (changes that come together are reported once, and the same
    /// map is not reported twice in a row). The stream ends after yielding the cache's end.
    pub fn changes(&self) -> impl Stream<Item = Result<BTreeMap<String, Bytes>>> + Send + 'static {
        let (id, data) = (self.id.clone(), self.node.data_source());
        let members =
            self.cache.changes().map(move |children| children.map(|children| with_self(&id, &data(), children)));
        crate::internal::distinct(members)
    }

    /// Sets this member's data (and keeps it for the node's re-creations).
    ///
    /// # Errors
    /// As [`PersistentNode::set_data`].
    pub async fn set_data(&self, data: impl Into<Data>) -> Result<()> {
        self.node.set_data(data).await.map(drop)
    }

    /// The member's own node (its path, its path changes, its session).
    pub fn node(&self) -> &PersistentNode {
        &self.node
    }

    /// The group's cache.
    pub fn cache(&self) -> &ChildrenCache {
        &self.cache
    }

    /// The session the member is on: the client given, or its successor after an expiry.
    pub fn client(&self) -> Client {
        self.node.client()
    }

    /// Leaves the group: deletes this member's node and stops following the group.
    ///
    /// # Errors
    /// As [`PersistentNode::close`].
    pub async fn close(self) -> Result<()> {
        self.node.close().await
    }
}

/// The group's members by id, with `id` added (with `data`) if the group does not show it yet.
fn with_self(id: &str, data: &Bytes, children: BTreeMap<String, crate::cache::CachedNode>) -> BTreeMap<String, Bytes> {
    let mut members: BTreeMap<String, Bytes> = children.into_iter().map(|(id, node)| (id, node.data)).collect();
    members.entry(id.to_string()).or_insert_with(|| data.clone());
    members
}
