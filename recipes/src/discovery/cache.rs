//! Following a service's instances: a [`ServiceCache`] is a [`ChildrenCache`] on
//! `/<base>/<name>` whose children are decoded as [`ServiceInstance`]s, and a
//! [`ServiceProvider`] picks one of them to call with an [`InstancePicker`]. Instances are
//! keyed by their node's name, as Curator's `ServiceCache` keys them (for instances registered
//! by Curator or by this crate, the node name is the instance id).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use conclave_core::Client;
use futures::{Stream, StreamExt};

use super::{InstancePicker, ServiceInstance};
use crate::cache::{CacheEvents, CachedNode, ChildrenCache};
use crate::error::Result;

/// The path of a service's directory: `/<base>/<name>`.
pub(super) fn service_path(base: &str, name: &str) -> String {
    if base == "/" {
        format!("/{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// The instances among a service's nodes, by node name: nodes whose data is not an instance
/// are left out, with a warning.
fn decode(service: &str, children: BTreeMap<String, CachedNode>) -> BTreeMap<String, ServiceInstance> {
    let mut instances = BTreeMap::new();
    for (node, cached) in children {
        match ServiceInstance::from_json(&cached.data) {
            Ok(instance) => {
                instances.insert(node, instance);
            }
            Err(e) => tracing::warn!(service = %service, node = %node, error = %e, "not a service instance; left out"),
        }
    }
    instances
}

/// The live instances of one service (see the [module docs](crate::discovery)). Cheap to clone: clones
/// share one cache.
#[derive(Debug, Clone)]
pub struct ServiceCache {
    name: String,
    children: ChildrenCache,
    /// The instances as last decoded, with the cache generation they are current for: a provider
    /// picks on every call, and decoding every instance's JSON each time would be wasted.
    decoded: Arc<Mutex<Arc<Decoded>>>,
}

/// A service's instances, decoded.
#[derive(Debug, Default)]
struct Decoded {
    /// The cache generation they are current for (`None`: not decoded yet).
    generation: Option<u64>,
    by_node: BTreeMap<String, ServiceInstance>,
    list: Vec<ServiceInstance>,
}

impl ServiceCache {
    /// Starts following the instances of the service `name` registered under `base`.
    ///
    /// # Errors
    /// `InvalidPath` if `/<base>/<name>` is not a valid path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(client: &Client, base: &str, name: &str) -> Result<ServiceCache> {
        let children = ChildrenCache::new(client, &service_path(base, name))?;
        Ok(ServiceCache { name: name.to_string(), children, decoded: Arc::default() })
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instances as last seen, by node name. A node whose data is not an instance (not
    /// JSON, or not Curator's form) is left out, with a warning in the log.
    pub fn instances(&self) -> Vec<ServiceInstance> {
        self.current().list.clone()
    }

    /// The instances as last seen, keyed by node name.
    pub fn by_node(&self) -> BTreeMap<String, ServiceInstance> {
        self.current().by_node.clone()
    }

    /// The instances decoded, again only if the cache changed since they last were.
    fn current(&self) -> Arc<Decoded> {
        let generation = self.children.generation();
        let mut decoded = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        if decoded.generation != Some(generation) {
            let by_node = decode(&self.name, self.children.children());
            let list = by_node.values().cloned().collect();
            *decoded = Arc::new(Decoded { generation: Some(generation), by_node, list });
        }
        decoded.clone()
    }

    /// Waits until the instances have been read once.
    ///
    /// # Errors
    /// As [`ChildrenCache::initialized`].
    pub async fn initialized(&self) -> Result<()> {
        self.children.initialized().await
    }

    /// As [`ChildrenCache::sync`]: after it returns, registrations and removals made before the
    /// call are seen.
    ///
    /// # Errors
    /// As [`ChildrenCache::sync`].
    pub async fn sync(&self) -> Result<()> {
        self.children.sync().await
    }

    /// The instances once they have been read, then again after every change (changes that
    /// come together are reported once; the same list is not reported twice in a row). The
    /// stream ends after yielding the cache's end (its session ended and it does not rebuild).
    pub fn changes(&self) -> impl Stream<Item = Result<Vec<ServiceInstance>>> + Send + 'static {
        let name = self.name.clone();
        let lists = self.children.changes().map(move |c| c.map(|c| decode(&name, c).into_values().collect::<Vec<_>>()));
        crate::internal::distinct(lists)
    }

    /// The events of the service's nodes (as [`ChildrenCache::events`]): for consumers that
    /// need each change (an instance deleted and registered again shows as removed and added,
    /// where [`ServiceCache::changes`] may report the same list).
    pub fn events(&self) -> CacheEvents {
        self.children.events()
    }

    /// The session the cache reads on (see [`crate::cache::TreeCache::client`]).
    pub fn client(&self) -> Client {
        self.children.client()
    }
}

/// Picks an instance of a service to call: a [`ServiceCache`] and an [`InstancePicker`]
/// (strategy and down instances) together, like Curator's `ServiceProvider`.
#[derive(Debug)]
pub struct ServiceProvider {
    cache: ServiceCache,
    picker: InstancePicker,
}

impl ServiceProvider {
    /// A provider picking among `cache`'s instances with `picker`.
    pub fn new(cache: ServiceCache, picker: InstancePicker) -> ServiceProvider {
        ServiceProvider { cache, picker }
    }

    /// An instance to call (see [`InstancePicker::pick`]); `None` if there is none that is
    /// enabled and not down (or the instances have not been read yet: see
    /// [`ServiceProvider::initialized`]).
    pub fn instance(&self) -> Option<ServiceInstance> {
        self.picker.pick(&self.cache.current().list)
    }

    /// Every instance the cache sees (disabled and down ones included).
    pub fn all_instances(&self) -> Vec<ServiceInstance> {
        self.cache.instances()
    }

    /// Reports that calling `instance` failed (see [`InstancePicker::note_error`]).
    pub fn note_error(&self, instance: &ServiceInstance) {
        self.picker.note_error(instance);
    }

    /// Waits until the instances have been read once.
    ///
    /// # Errors
    /// As [`ServiceCache::initialized`].
    pub async fn initialized(&self) -> Result<()> {
        self.cache.initialized().await
    }

    /// The cache the provider picks from.
    pub fn cache(&self) -> &ServiceCache {
        &self.cache
    }

    /// The picker (strategy and down instances).
    pub fn picker(&self) -> &InstancePicker {
        &self.picker
    }
}
