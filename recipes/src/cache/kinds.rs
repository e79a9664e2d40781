//! The kinds of cache: a [`ChildrenCache`] and a [`NodeCache`] are a [`TreeCache`] with a fixed
//! depth (1 and 0), and what a [`CacheBuilder`] starts is chosen by the [`CacheKind`] it builds.

use std::collections::BTreeMap;

use conclave_core::Client;
use futures::Stream;

use super::{mirror, CacheBuilder, CacheEvent, CacheEvents, CachedNode, TreeCache};
use crate::error::Result;

/// The kinds of cache a [`CacheBuilder`] starts: [`TreeCache`], [`ChildrenCache`],
/// [`NodeCache`].
pub trait CacheKind: Sized + sealed::Sealed {
    /// The depth this kind caches to, whatever the builder says (`None`: the builder's).
    #[doc(hidden)]
    fn depth() -> Option<usize>;
    /// The kind around a started tree cache.
    #[doc(hidden)]
    fn wrap(tree: TreeCache) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TreeCache {}
    impl Sealed for super::ChildrenCache {}
    impl Sealed for super::NodeCache {}
}

/// The methods a [`ChildrenCache`] and a [`NodeCache`] pass on to their tree cache.
macro_rules! delegate_to_tree {
    () => {
        /// Whether the first load is complete.
        pub fn is_initialized(&self) -> bool {
            self.tree.is_initialized()
        }

        /// As [`TreeCache::initialized`].
        ///
        /// # Errors
        /// As [`TreeCache::initialized`].
        pub async fn initialized(&self) -> Result<()> {
            self.tree.initialized().await
        }

        /// As [`TreeCache::sync`].
        ///
        /// # Errors
        /// As [`TreeCache::sync`].
        pub async fn sync(&self) -> Result<()> {
            self.tree.sync().await
        }

        /// The session the cache reads on (see [`TreeCache::client`]).
        pub fn client(&self) -> Client {
            self.tree.client()
        }
    };
}

impl CacheKind for TreeCache {
    fn depth() -> Option<usize> {
        None
    }

    fn wrap(tree: TreeCache) -> Self {
        tree
    }
}

/// A cache of a node's children (Curator's `PathChildrenCache`, `CuratorCache` on one level):
/// each child's data and [`Stat`](conclave_core::Stat), kept like a [`TreeCache`] of depth 1 whose events leave the
/// parent itself out. The parent need not exist: the children come when it does.
#[derive(Debug, Clone)]
pub struct ChildrenCache {
    tree: TreeCache,
}

impl CacheKind for ChildrenCache {
    fn depth() -> Option<usize> {
        Some(1)
    }

    fn wrap(tree: TreeCache) -> Self {
        ChildrenCache { tree }
    }
}

impl ChildrenCache {
    /// Starts caching the children of `path`.
    ///
    /// # Errors
    /// `InvalidPath` for a bad path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(client: &Client, path: &str) -> Result<ChildrenCache> {
        ChildrenCache::builder(client, path).start()
    }

    /// A cache of `path`'s children, to be set up and then [started](CacheBuilder::start).
    pub fn builder(client: &Client, path: &str) -> CacheBuilder<ChildrenCache> {
        CacheBuilder::new(client, path)
    }

    /// The parent's path.
    pub fn path(&self) -> &str {
        self.tree.path()
    }

    /// The cached children by name (not path), in name order.
    pub fn children(&self) -> BTreeMap<String, CachedNode> {
        let shared = self.tree.shared();
        let mut children = BTreeMap::new();
        if let Some(parent) = shared.mirror.get(self.path()) {
            for (name, entry) in parent.children() {
                children.insert(name.to_string(), entry.node());
            }
        }
        children
    }

    /// Changes every time a node of the cache is added, changed or removed: read it *before*
    /// [`ChildrenCache::children`] to know what a view built from them is current for.
    pub(crate) fn generation(&self) -> u64 {
        self.tree.shared().generation
    }

    /// The cached child `name` (a name, not a path).
    pub fn get(&self, name: &str) -> Option<CachedNode> {
        self.tree.get(&mirror::child_path(self.path(), name))
    }

    /// The children's events (see [`TreeCache::events`]): the parent's own are left out.
    pub fn events(&self) -> CacheEvents {
        CacheEvents { skip: Some(self.path().to_string()), ..self.tree.events() }
    }

    /// The children (as [`ChildrenCache::children`]) once the cache is initialized, then again
    /// after every change: level-triggered, for consumers that want the current set rather than
    /// each event. Changes that come together are reported once, and the same set is not
    /// reported twice in a row. The stream ends after yielding the cache's end (its session
    /// ended and it does not rebuild).
    pub fn changes(&self) -> impl Stream<Item = Result<BTreeMap<String, CachedNode>>> + Send + 'static {
        let cache = self.clone();
        let mut events = futures::StreamExt::ready_chunks(self.events(), 1024);
        crate::internal::distinct(async_stream::stream! {
            let mut initialized = false;
            while let Some(chunk) = futures::StreamExt::next(&mut events).await {
                for event in chunk {
                    match event {
                        Ok(CacheEvent::Initialized) => initialized = true,
                        Ok(_) => {}
                        Err(e) => {
                            yield Err(e);
                            return;
                        }
                    }
                }
                if initialized {
                    yield Ok(cache.children());
                }
            }
        })
    }

    delegate_to_tree!();
}

/// A cache of one node (Curator's `NodeCache`): its data and [`Stat`](conclave_core::Stat), kept by a persistent
/// (non-recursive) watch, with the same events and guarantees as a [`TreeCache`] of depth 0.
/// The node need not exist.
#[derive(Debug, Clone)]
pub struct NodeCache {
    tree: TreeCache,
}

impl CacheKind for NodeCache {
    fn depth() -> Option<usize> {
        Some(0)
    }

    fn wrap(tree: TreeCache) -> Self {
        NodeCache { tree }
    }
}

impl NodeCache {
    /// Starts caching the node `path`.
    ///
    /// # Errors
    /// `InvalidPath` for a bad path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(client: &Client, path: &str) -> Result<NodeCache> {
        NodeCache::builder(client, path).start()
    }

    /// A cache of the node `path`, to be set up and then [started](CacheBuilder::start).
    pub fn builder(client: &Client, path: &str) -> CacheBuilder<NodeCache> {
        CacheBuilder::new(client, path)
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        self.tree.path()
    }

    /// The node as cached; `None` if it does not exist (or is not loaded yet).
    pub fn get(&self) -> Option<CachedNode> {
        self.tree.get(self.path())
    }

    /// The node's events (see [`TreeCache::events`]).
    pub fn events(&self) -> CacheEvents {
        self.tree.events()
    }

    delegate_to_tree!();
}
