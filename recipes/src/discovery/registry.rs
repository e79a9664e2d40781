//! The registry half of service discovery: [`ServiceDiscovery`] registers instances under a
//! base path (each kept in place by a [`PersistentNode`], so it stays registered across
//! connection losses and session expiries), reads what is registered, and starts the caches and
//! providers that follow a service.

use std::future::Future;
use std::sync::{Arc, Mutex};

use conclave_core::{path, Client, Error as ZkError, SessionState};

use super::cache::service_path;
use super::{InstancePicker, ServiceCache, ServiceInstance, ServiceProvider, ServiceType};
use crate::error::Result;
use crate::internal::watch;
use crate::membership::PersistentNode;

/// Service discovery under one base path, in Curator's layout (`/<base>/<name>/<id>`, data =
/// the instance's JSON): see the [module docs](crate::discovery).
///
/// Like the registrations and caches it starts, it goes on after its session expired: its reads
/// move to the expired session's successor (the session the other recipes on it moved to).
/// Cheap to clone: clones share their session.
#[derive(Debug, Clone)]
pub struct ServiceDiscovery {
    client: Arc<Mutex<Client>>,
    base: String,
}

impl ServiceDiscovery {
    /// Discovery under `base` (created when the first instance registers, as a container).
    ///
    /// # Errors
    /// `InvalidPath` for a bad base path.
    pub fn new(client: &Client, base: &str) -> Result<ServiceDiscovery> {
        path::validate_path(base)?;
        Ok(ServiceDiscovery { client: Arc::new(Mutex::new(client.clone())), base: base.to_string() })
    }

    /// The session reads are made on: the client given, or its successor once it expired.
    pub fn client(&self) -> Client {
        self.client.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current session, moving to the successor of an expired one first.
    async fn session(&self) -> Result<Client> {
        let client = self.client();
        if client.state() != SessionState::Expired {
            return Ok(client);
        }
        let next = crate::internal::session::renewed(&client).await?;
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = next.clone();
        Ok(next)
    }

    /// Runs a read on the current session, once more on the successor if the session expires
    /// during it.
    async fn reading<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match read(self.session().await?).await {
            Err(e) if e == ZkError::SessionExpired => read(self.session().await?).await,
            other => other,
        }
    }

    /// The base path.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Registers `instance` and waits until its node is in place: `/<base>/<name>/<id>` with the
    /// instance's JSON. It stays registered — re-created if deleted, moved to a new session
    /// after an expiry — until the [`Registration`] is dropped or closed.
    ///
    /// A `DYNAMIC` instance is an ephemeral node, gone with the process; `STATIC` and
    /// `PERMANENT` instances are persistent nodes (they stay after the process, as in Curator,
    /// until unregistered). Unlike Curator, a registration does not delete and re-create its
    /// node after each reconnection (readers see no flapping), and an ephemeral node left by
    /// another session (this process's previous one, say) is waited out, not taken over.
    ///
    /// # Errors
    /// `InvalidArgument` for a `DYNAMIC_SEQUENTIAL` instance (Curator re-creates those as a new
    /// node after every reconnection; they can be read, not registered here) or a name or id
    /// that is not one node name; `InvalidPath`; what the node's keeper cannot get past
    /// (`NoAuth` under the base...).
    ///
    /// # Cancellation safety
    /// Dropping the future drops the registration, which deletes whatever it created.
    pub async fn register(&self, instance: ServiceInstance) -> Result<Registration> {
        if instance.service_type == ServiceType::DynamicSequential {
            return Err(ZkError::InvalidArgument(
                "DYNAMIC_SEQUENTIAL instances cannot be registered here (only read)".into(),
            )
            .into());
        }
        let path = self.instance_path(&instance.name, &instance.id)?;
        let node = PersistentNode::builder(&self.session().await?, &path, instance.to_json())
            .persistent(instance.service_type != ServiceType::Dynamic)
            .start();
        node.created().await?;
        Ok(Registration { node, instance: Mutex::new(instance) })
    }

    fn instance_path(&self, name: &str, id: &str) -> Result<String> {
        for (what, value) in [("service name", name), ("instance id", id)] {
            if value.is_empty() || value.contains('/') || value == "." || value == ".." {
                return Err(ZkError::InvalidArgument(format!("{value:?} is not a {what}: one node name is")).into());
            }
        }
        let path = format!("{}/{id}", service_path(&self.base, name));
        path::validate_path(&path)?;
        Ok(path)
    }

    /// The names of the services registered (the children of the base; none if it does not
    /// exist).
    ///
    /// # Errors
    /// `NoAuth`; the session's terminal error. Connection losses are ridden out.
    pub async fn names(&self) -> Result<Vec<String>> {
        let base = self.base.as_str();
        let mut names = self.reading(|client| async move { children(&client, base).await }).await?;
        names.sort();
        Ok(names)
    }

    /// The instances of the service `name` as registered now (one read of each; nodes whose
    /// data is not an instance are left out, with a warning), in node-name order.
    ///
    /// # Errors
    /// As [`ServiceDiscovery::names`].
    pub async fn instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        let dir = service_path(&self.base, name);
        path::validate_path(&dir)?;
        let dir = dir.as_str();
        let found = self
            .reading(|client| async move {
                let mut nodes = children(&client, dir).await?;
                nodes.sort();
                let reads = nodes.iter().map(|node| read(&client, dir, node));
                let found = futures::future::try_join_all(reads).await?;
                Ok(nodes.into_iter().zip(found).collect::<Vec<_>>())
            })
            .await?;
        let mut instances = Vec::with_capacity(found.len());
        for (node, found) in found {
            match found {
                Some(Ok(instance)) => instances.push(instance),
                Some(Err(e)) => {
                    tracing::warn!(service = %name, node = %node, error = %e, "not a service instance; left out")
                }
                None => {}
            }
        }
        Ok(instances)
    }

    /// The instance `id` of the service `name`, if registered.
    ///
    /// # Errors
    /// `InvalidArgument` if its data is not an instance; as [`ServiceDiscovery::names`].
    pub async fn instance(&self, name: &str, id: &str) -> Result<Option<ServiceInstance>> {
        let path = self.instance_path(name, id)?;
        let (dir, node) = path.rsplit_once('/').expect("an instance path has a parent");
        self.reading(|client| async move { read(&client, dir, node).await }).await?.transpose()
    }

    /// A cache of the service `name`'s instances.
    ///
    /// # Errors
    /// `InvalidPath` if `/<base>/<name>` is not a valid path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn cache(&self, name: &str) -> Result<ServiceCache> {
        ServiceCache::new(&self.client(), &self.base, name)
    }

    /// A provider of the service `name`'s instances, picking with `picker` (for example
    /// `InstancePicker::new(Strategy::RoundRobin, DownInstances::default())`). Wait for
    /// [`ServiceProvider::initialized`] before the first pick.
    ///
    /// # Errors
    /// As [`ServiceDiscovery::cache`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn provider(&self, name: &str, picker: InstancePicker) -> Result<ServiceProvider> {
        Ok(ServiceProvider::new(self.cache(name)?, picker))
    }
}

/// One instance node read, riding out connection losses: `None` if it is gone.
async fn read(client: &Client, dir: &str, node: &str) -> Result<Option<Result<ServiceInstance>>> {
    let path = format!("{dir}/{node}");
    watch::answered(client, || {
        let path = path.as_str();
        async move {
            match client.get_data(path).await {
                Ok((data, _)) => Ok(Some(ServiceInstance::from_json(&data))),
                Err(ZkError::NoNode) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await
}

/// The children of `path` (none if it does not exist), riding out connection losses.
async fn children(client: &Client, path: &str) -> Result<Vec<String>> {
    watch::answered(client, || async move {
        match client.get_children(path).await {
            Ok(names) => Ok(names),
            Err(ZkError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// A registered instance, kept registered until dropped (which unregisters it in the
/// background) or [closed](Registration::close).
#[derive(Debug)]
#[must_use = "the instance is unregistered as soon as the registration is dropped"]
pub struct Registration {
    node: PersistentNode,
    instance: Mutex<ServiceInstance>,
}

impl Registration {
    /// The instance as last registered or updated.
    pub fn instance(&self) -> ServiceInstance {
        self.instance.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The instance's node path.
    pub fn path(&self) -> &str {
        self.node.base_path()
    }

    /// Updates the registered instance (its address, ports, payload, enabled flag...): the
    /// node's data is set now, and kept for the node's re-creations.
    ///
    /// # Errors
    /// `InvalidArgument` if `instance` has another name, id or service type; as
    /// [`PersistentNode::set_data`].
    pub async fn update(&self, instance: ServiceInstance) -> Result<()> {
        let same = {
            let current = self.instance.lock().unwrap_or_else(|e| e.into_inner());
            (&current.name, &current.id, current.service_type) == (&instance.name, &instance.id, instance.service_type)
        };
        if !same {
            return Err(ZkError::InvalidArgument(
                "an update keeps the instance's name, id and service type (register the new one instead)".into(),
            )
            .into());
        }
        self.node.set_data(instance.to_json()).await?;
        *self.instance.lock().unwrap_or_else(|e| e.into_inner()) = instance;
        Ok(())
    }

    /// The session the registration is on (the client given, or its successor after an
    /// expiry).
    pub fn client(&self) -> Client {
        self.node.client()
    }

    /// The node keeping the registration (its path changes, its session).
    pub fn node(&self) -> &PersistentNode {
        &self.node
    }

    /// Unregisters the instance: deletes its node and reports the outcome.
    ///
    /// # Errors
    /// As [`PersistentNode::close`].
    pub async fn close(self) -> Result<()> {
        self.node.close().await
    }
}
