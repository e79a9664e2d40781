//! Protected creates: at most one node per call, even across connection losses.

use super::{Client, CreateOptions, Data};
use crate::error::{Error, Result};
use crate::path::{self, protected_name};
use crate::proto::Stat;
use crate::retry::RetryPolicy;

impl Client {
    /// Creates a node whose name carries a unique protected prefix, `_c_<uuid>-<name>` (the
    /// layout of Curator's `withProtection()`), so that a create whose reply was lost is found
    /// rather than repeated: after `ConnectionLoss` (or `OperationTimeout`) the parent is listed
    /// and a child with this call's prefix is taken as the node created; only if there is none
    /// is the create sent again. For ephemeral modes the node found must belong to this session.
    /// Each call creates at most one node, which makes sequential creates safe to retry.
    ///
    /// Returns the created path (with the protected prefix and any sequence suffix) and stat.
    /// `retry` bounds the attempts; the last error is returned when it allows no more.
    ///
    /// # Errors
    /// As [`Client::create`]; [`Error::NodeExists`] if a node with this call's prefix exists but
    /// belongs to another session.
    pub async fn create_protected(
        &self,
        path: &str,
        data: impl Into<Data>,
        options: impl Into<CreateOptions>,
        retry: &RetryPolicy,
    ) -> Result<(String, Stat)> {
        let options = options.into();
        let (parent, name) = match path.rfind('/') {
            Some(0) => ("/", &path[1..]),
            Some(i) => (&path[..i], &path[i + 1..]),
            None => return Err(Error::InvalidPath { path: path.to_string(), reason: "path must start with /" }),
        };
        let id = uuid::Uuid::new_v4().to_string();
        let protected = path::join(parent, &protected_name(&id, name));
        let prefix = protected_name(&id, "");
        let data = data.into().into_bytes();
        let mut created_maybe = false;
        crate::retry::retry(retry, || {
            let attempt = created_maybe;
            created_maybe = true;
            let (protected, prefix, data, options) = (&protected, &prefix, &data, &options);
            async move {
                if attempt {
                    if let Some(found) = self.find_protected(parent, prefix, options).await? {
                        return Ok(found);
                    }
                }
                self.create(protected, data, options.clone()).await
            }
        })
        .await
    }

    /// The child of `parent` named with `prefix`, if one exists (and, for ephemeral modes,
    /// belongs to this session).
    async fn find_protected(
        &self,
        parent: &str,
        prefix: &str,
        options: &CreateOptions,
    ) -> Result<Option<(String, Stat)>> {
        let children = match self.get_children(parent).await {
            Ok(children) => children,
            Err(Error::NoNode) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(name) = children.into_iter().find(|c| c.starts_with(prefix)) else { return Ok(None) };
        let found = path::join(parent, &name);
        match self.exists(&found).await? {
            None => Ok(None),
            Some(stat) if options.mode.is_ephemeral() && stat.ephemeral_owner != self.session_id() => {
                Err(Error::NodeExists)
            }
            Some(stat) => Ok(Some((found, stat))),
        }
    }
}
