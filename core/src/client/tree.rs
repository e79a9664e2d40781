//! Operations on a path with its ancestors or its descendants: [`Client::create_all`] (create a
//! node and its missing ancestors) and [`Client::delete_all`] (delete a node and its subtree).
//!
//! ZooKeeper has neither: they are made of plain creates, listings and deletes, pipelined so that
//! their cost in round trips depends on the depth of the path or tree, not on its size. Neither
//! is atomic: other clients may see, and change, the tree half made or half deleted. Both ride
//! out the changes other clients make meanwhile (an ancestor deleted, a child added), a bounded
//! number of times.

use std::future::Future;

use futures::future::{join_all, BoxFuture, FutureExt};

use super::{Client, CreateOptions, Data};
use crate::error::{Error, Result};
use crate::path::{ancestors, join, validate_path};
use crate::proto::{CreateMode, Stat};

/// How many times [`Client::create_all`] and [`Client::delete_all`] start over after another
/// client changed the tree under them (deleted an ancestor, added a child). Each start-over
/// means someone else won a race within one round trip; ten in a row means a tree under constant
/// churn, which calls for a lock rather than more retries.
const MAX_PASSES: usize = 10;

impl Client {
    /// Creates a node like [`Client::create`], and its missing ancestors first: ZooKeeper's
    /// `mkdir -p`, Curator's `creatingParentsIfNeeded()` and kazoo's `create(makepath=True)`
    /// (kazoo's `ensure_path` is this with no node of its own to create). Returns the node's path
    /// (with the sequence suffix for sequential modes) and stat.
    ///
    /// Missing ancestors are created as persistent nodes with empty data and the ACL of
    /// `options` (the node's own ACL; Curator takes it from its ACL provider, kazoo from its
    /// `acl` argument), whatever the node's mode is: a container, TTL or ephemeral node gets
    /// plain persistent ancestors. Ancestors that exist are left as they are. With a chroot, only
    /// ancestors inside it are created: the chroot node itself must exist. Since the ancestors
    /// get the node's ACL, an ACL that does not let this session CREATE makes the call fail with
    /// `NoAuth` below the first ancestor it creates: create such a node's ancestors first, with
    /// the ACL they need.
    ///
    /// # Cost
    /// One round trip when the parent exists (the create is tried first). Otherwise one more:
    /// the creates of every ancestor, top down, and the node's create again are queued at once,
    /// and ZooKeeper applies a session's requests in order, so a chain of any depth costs two
    /// round trips in all. If another client deletes an ancestor between those creates, the
    /// whole step is repeated (at most ten times in all).
    ///
    /// # Ordering
    /// The first create is queued when this method is called, as with [`Client::create`]; the
    /// ancestors' creates, if needed, when its `NoNode` reply arrives.
    ///
    /// # Errors
    /// As [`Client::create`] for the node itself (`NodeExists` if it exists). If an ancestor
    /// cannot be created, that ancestor's error: `NoAuth` (no CREATE on its parent),
    /// `InvalidAcl`, `NoChildrenForEphemerals` (an ancestor is ephemeral). `NoNode` if the chroot
    /// node is missing, or if ancestors kept being deleted as fast as they were created.
    /// Ancestors created before a failure stay. Not retried on `ConnectionLoss`: the node may or
    /// may not have been created (see [`Client::create_protected`]).
    pub fn create_all(
        &self,
        path: &str,
        data: impl Into<Data>,
        options: impl Into<CreateOptions>,
    ) -> BoxFuture<'static, Result<(String, Stat)>> {
        let (data, options) = (data.into(), options.into());
        let first = self.create_data(path, data.clone(), &options);
        let (client, path) = (self.clone(), path.to_string());
        async move {
            let mut result = first.await;
            let ancestors: Vec<String> = ancestors(&path).into_iter().map(str::to_string).collect();
            let ancestor_options = CreateOptions::new(CreateMode::Persistent).acl(options.acl.clone());
            for _ in 0..MAX_PASSES {
                if !matches!(result, Err(Error::NoNode)) || ancestors.is_empty() {
                    return result;
                }
                let creates: Vec<_> =
                    ancestors.iter().map(|a| client.create_data(a, Data::default(), &ancestor_options)).collect();
                let again = client.create_data(&path, data.clone(), &options);
                let outcomes: Vec<Result<()>> = join_all(creates).await.into_iter().map(|r| r.map(drop)).collect();
                result = again.await;
                if matches!(result, Err(Error::NoNode)) {
                    if let Some(cause) = missing_ancestor_cause(outcomes) {
                        return Err(cause);
                    }
                }
            }
            result
        }
        .boxed()
    }

    /// Deletes a node and all its descendants: Curator's `deletingChildrenIfNeeded()`, kazoo's
    /// `delete(recursive=True)`, zkCli's `deleteall`.
    ///
    /// The subtree is listed level by level (the `getChildren` of one level all queued at once),
    /// then deleted bottom up, the deletes of one level queued at once.
    ///
    /// Races with other clients: a descendant that someone else deletes meanwhile is fine (it is
    /// gone either way), and so is the node itself once it has been seen. A child created
    /// meanwhile makes its parent's delete fail with `NotEmpty`: the rest of the subtree is then
    /// listed again and the deletion goes on, at most ten passes in all.
    ///
    /// # Cost
    /// `2 × (depth + 1)` round trips for a subtree `depth` levels deep (a node without children:
    /// two, a listing and the delete), however many nodes it has. Curator and kazoo need a round
    /// trip per node.
    ///
    /// # Ordering
    /// The first listing is queued when this method is called; the rest as replies arrive.
    ///
    /// # Errors
    /// `NoNode` if `path` does not exist (as [`Client::delete`]); `NotEmpty` if children kept
    /// being added for ten passes; `NoAuth` if a node cannot be listed (no READ) or deleted (no
    /// DELETE on its parent); `BadArguments` for the nodes ZooKeeper keeps (`/zookeeper`);
    /// client-side `InvalidPath`, and `InvalidArgument` for `/` (the root, or the chroot node,
    /// cannot be deleted: delete its children one by one). Nodes deleted before a failure stay
    /// deleted. Not retried on `ConnectionLoss`.
    pub fn delete_all(&self, path: &str) -> impl Future<Output = Result<()>> + Send + 'static {
        let checked = match validate_path(path) {
            Ok(()) if path == "/" => Err(Error::InvalidArgument("delete_all cannot delete the root \"/\"".into())),
            Ok(()) => Ok(self.get_children(path)),
            Err(e) => Err(e),
        };
        let (client, path) = (self.clone(), path.to_string());
        async move {
            let mut top = Some(checked?.await?);
            for _ in 0..MAX_PASSES {
                let children = match top.take() {
                    Some(children) => children,
                    None => match client.get_children(&path).await {
                        Ok(children) => children,
                        // Deleted by someone else since this call saw it: gone either way.
                        Err(Error::NoNode) => return Ok(()),
                        Err(e) => return Err(e),
                    },
                };
                let levels = client.list_levels(&path, children).await?;
                match client.delete_levels(levels).await {
                    Err(Error::NotEmpty) => continue,
                    done => return done,
                }
            }
            Err(Error::NotEmpty)
        }
    }

    /// The subtree below `path`, whose children are `children`, as levels from the top:
    /// `[[path], [its children], [their children], ...]`. Nodes that vanish while being listed
    /// are left out.
    async fn list_levels(&self, path: &str, children: Vec<String>) -> Result<Vec<Vec<String>>> {
        let mut levels = vec![vec![path.to_string()]];
        let mut next: Vec<String> = children.iter().map(|c| join(path, c)).collect();
        while !next.is_empty() {
            let listings = join_all(next.iter().map(|node| self.get_children(node))).await;
            let mut below = Vec::new();
            for (node, listing) in next.iter().zip(listings) {
                match listing {
                    Ok(children) => below.extend(children.iter().map(|c| join(node, c))),
                    Err(Error::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
            levels.push(next);
            next = below;
        }
        Ok(levels)
    }

    /// Deletes `levels` (as [`Client::list_levels`] gives them) bottom up, one level's deletes
    /// queued at once. A node already gone is fine; `NotEmpty` (a child was added) stops at the
    /// end of its level.
    async fn delete_levels(&self, levels: Vec<Vec<String>>) -> Result<()> {
        for level in levels.iter().rev() {
            let outcomes = join_all(level.iter().map(|node| self.delete(node, None))).await;
            let mut not_empty = false;
            for outcome in outcomes {
                match outcome {
                    Ok(()) | Err(Error::NoNode) => {}
                    Err(Error::NotEmpty) => not_empty = true,
                    Err(e) => return Err(e),
                }
            }
            if not_empty {
                return Err(Error::NotEmpty);
            }
        }
        Ok(())
    }
}

/// Why the node's parent is still missing after the pipelined creates of its ancestors
/// (`outcomes`, top down), or `None` if an ancestor was there and has been deleted since (worth
/// another try). Walking up from the parent: an ancestor whose create failed with `NoNode` only
/// lacked its own parent, so the first other outcome decides. `NoNode` all the way up means the
/// top level's parent, the root or the chroot node, is missing.
fn missing_ancestor_cause(outcomes: Vec<Result<()>>) -> Option<Error> {
    for outcome in outcomes.into_iter().rev() {
        match outcome {
            Err(Error::NoNode) => continue,
            // Created or found, then deleted before the next create: a race, try again.
            Ok(()) | Err(Error::NodeExists) => return None,
            Err(e) => return Some(e),
        }
    }
    Some(Error::NoNode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deepest_decisive_ancestor_is_the_cause() {
        use Error::*;
        // An existing ancestor under a parent without CREATE reports NOAUTH (it wins over
        // NODEEXISTS), but a deeper ancestor was created: that one's deletion is the story.
        assert_eq!(missing_ancestor_cause(vec![Err(NoAuth), Ok(()), Err(NoNode)]), None);
        assert_eq!(missing_ancestor_cause(vec![Err(NodeExists), Err(NoAuth), Err(NoNode)]), Some(NoAuth));
        assert_eq!(missing_ancestor_cause(vec![Err(NodeExists), Err(NodeExists)]), None);
        assert_eq!(missing_ancestor_cause(vec![Err(NoNode), Err(NoNode)]), Some(NoNode));
        assert_eq!(missing_ancestor_cause(vec![Ok(()), Err(InvalidAcl)]), Some(InvalidAcl));
    }
}
