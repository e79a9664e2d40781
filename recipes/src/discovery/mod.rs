//! Service discovery, interoperable with Apache Curator's `curator-x-discovery`: services
//! register their instances (an address, ports, a payload) under a base path, and clients find
//! them and pick one to call. The layout is Curator's: the instance `<id>` of the service
//! `<name>` is the node `/<base>/<name>/<id>`, whose data is the instance as JSON
//! ([`ServiceInstance::to_json`], byte for byte what Curator writes), so Java services and Rust
//! clients (or the reverse) see each other.
//!
//! - [`ServiceDiscovery`] registers instances ([`ServiceDiscovery::register`]: a
//!   [`Registration`] keeps the node in place across connection losses and session expiries,
//!   and unregisters on drop) and reads what is registered.
//! - [`ServiceCache`] follows one service's instances (a children cache of `/<base>/<name>`),
//!   as a current list and as a stream of lists.
//! - [`ServiceProvider`] picks an instance to call from a cache with an [`InstancePicker`]:
//!   a [`Strategy`] (round-robin, random, sticky) that skips disabled instances and those
//!   reported failing ([`DownInstances`]).
//! - [`ServiceInstance`] is the record and its JSON codec, with Curator's URI templates
//!   ([`UriSpec`]).
//!
//! ```no_run
//! # async fn demo(client: conclave::Client) -> conclave::Result<()> {
//! use conclave::discovery::{DownInstances, InstancePicker, ServiceDiscovery, ServiceInstance, Strategy};
//!
//! let discovery = ServiceDiscovery::new(&client, "/services")?;
//! let me = ServiceInstance::builder("api").address("10.0.0.5").port(8080).build();
//! let _registration = discovery.register(me).await?;
//!
//! let provider = discovery.provider("api", InstancePicker::new(Strategy::RoundRobin, DownInstances::default()))?;
//! provider.initialized().await?;
//! if let Some(api) = provider.instance() {
//!     println!("calling {}:{:?}", api.address.as_deref().unwrap_or("?"), api.port);
//! }
//! # Ok(()) }
//! ```

mod cache;
mod instance;
mod provider;
mod registry;
mod uri;

pub use cache::{ServiceCache, ServiceProvider};
pub use instance::{local_address, ServiceInstance, ServiceInstanceBuilder, ServiceType};
pub use provider::{DownInstances, InstancePicker, Strategy};
pub use registry::{Registration, ServiceDiscovery};
pub use uri::{UriPart, UriSpec};
