//! Service discovery, interoperable with Apache Curator's `curator-x-discovery`: services
//! register their instances (an address, ports, a payload) under a base path, and clients find
//! them and pick one to call. The layout is Curator's: the instance `<id>` of the service
//! `<name>` is the node `/<base>/<name>/<id>`, whose data is the instance as JSON
//! ([`ServiceInstance::to_json`], byte for byte what Curator writes), so Java services and Rust
//! clients (or the reverse) see each other. This module holds the pieces without I/O: the
//! instance record and its JSON codec with Curator's URI templates ([`ServiceInstance`],
//! [`UriSpec`]), and a provider's choice of an instance with down-instance tracking
//! ([`InstancePicker`], [`Strategy`], [`DownInstances`]); the registry and the service cache build
//! on them.

mod instance;
mod provider;

pub use instance::{local_address, ServiceInstance, ServiceInstanceBuilder, ServiceType, UriPart, UriSpec};
pub use provider::{DownInstances, InstancePicker, Strategy};
