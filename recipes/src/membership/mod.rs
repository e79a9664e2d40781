//! Presence in ZooKeeper: nodes a process keeps in place for as long as it runs, the building
//! block of group membership. A [`PersistentNode`] is an ephemeral node (optionally protected,
//! sequential or persistent) that its own background task re-creates whenever it goes — deleted
//! by someone else, or taken away with an expired session, which the task replaces with a new
//! one — until the handle is dropped or closed, which deletes it (Apache Curator's
//! `PersistentNode`, with the same node layouts). A [`GroupMember`] is one on `<group>/<id>`
//! with a [`ChildrenCache`](crate::cache::ChildrenCache) of the group (Curator's
//! `GroupMember`).

mod group;
mod node;

pub use group::GroupMember;
pub use node::{PersistentNode, PersistentNodeBuilder};
