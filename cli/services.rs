//! `conclave services`: what is registered for service discovery under a base path
//! ([`conclave::discovery`], or Curator's `curator-x-discovery` on the same base: instance `<id>`
//! of service `<name>` is the node `BASE/<name>/<id>`, its data the instance as JSON). Read once,
//! without registering anything.
//!
//! - `services BASE`: one `NAME COUNT` line per service (sorted by name), COUNT its instances;
//!   with `--json`, one array of `{"name", "instances"}` objects.
//! - `services BASE NAME`: one `ID ADDRESS[:PORT] [URI]` line per instance of the service, by id:
//!   ADDRESS is `-` when the instance has none, PORT its port (or its SSL port when it has only
//!   that), URI the instance's URI built from its template (Curator's `uriSpec`, such as
//!   `{scheme}://{address}:{port}`) when it has one. With `--json`, one array of the instances'
//!   JSON objects as stored (Curator's form, parsed: `name`, `id`, `address`, `port`, `sslPort`,
//!   `payload`, `registrationTimeUTC`, `serviceType`, `uriSpec`, and `enabled` when written).
//!
//! Nodes whose data is not an instance are left out (and not counted), as the library's readers
//! leave them out; an instance that goes while it is read is left out too. A BASE (or service)
//! that does not exist fails with exit 3 (NONODE), as `locks` does: a mistyped path shows at
//! once (the server removes an empty base or service directory, a container, so a service whose
//! last instance went is reported the same way); a bad path or name fails with exit 9 before
//! connecting.

use std::collections::HashMap;

use clap::Args;
use conclave::discovery::ServiceInstance;
use conclave_core::path::{join, validate_path};
use conclave_core::{Client, Error};
use serde_json::{json, Value};

use crate::connect::ConnectOpts;
use crate::exit::CliError;
use crate::output::{escaped, Output};

/// Arguments of `services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// The base path the services are registered under.
    pub base: String,
    /// A service: list its instances (without it: list the services).
    pub name: Option<String>,
}

/// An instance as read: decoded, and its JSON as stored.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    decoded: ServiceInstance,
    stored: Value,
}

/// Runs `services`.
pub async fn run(args: &ServicesArgs, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let context = match &args.name {
        Some(name) => format!("services {} {name}", args.base),
        None => format!("services {}", args.base),
    };
    let dir = match &args.name {
        Some(name) => {
            if name.is_empty() || name.contains('/') {
                let why = format!("{name:?} is not a service name (one node name)");
                return Err(CliError::zk(context.as_str(), &Error::InvalidArgument(why)));
            }
            join(&args.base, name)
        }
        None => args.base.clone(),
    };
    validate_path(&args.base).and_then(|()| validate_path(&dir)).map_err(|e| CliError::zk(context.as_str(), &e))?;
    let client = opts.connect().await?;
    let listed = match &args.name {
        Some(_) => instances(&client, &dir).await.map(Listing::Instances),
        None => services(&client, &dir).await.map(Listing::Services),
    };
    client.close().await;
    match listed.map_err(|e| CliError::zk(context.as_str(), &e))? {
        Listing::Services(services) => {
            if out.is_json() {
                let docs: Vec<Value> = services.iter().map(|(n, c)| json!({ "name": n, "instances": c })).collect();
                return out.line("", &Value::from(docs));
            }
            for (name, count) in &services {
                out.line(&format!("{} {count}", escaped(name.as_bytes())), &Value::Null)?;
            }
        }
        Listing::Instances(instances) => {
            if out.is_json() {
                return out.line("", &Value::from(instances.into_iter().map(|i| i.stored).collect::<Vec<_>>()));
            }
            for i in &instances {
                out.line(&instance_line(&i.decoded), &Value::Null)?;
            }
        }
    }
    Ok(())
}

/// What was read.
enum Listing {
    /// The services and their instance counts, by name.
    Services(Vec<(String, usize)>),
    /// One service's instances, by node name.
    Instances(Vec<Instance>),
}

/// The services under `base` with their instance counts, by name. `NoNode` if `base` does not
/// exist; a service removed while it is read is left out.
async fn services(client: &Client, base: &str) -> Result<Vec<(String, usize)>, Error> {
    let mut names = client.get_children(base).await?;
    names.sort();
    let dirs: Vec<String> = names.iter().map(|name| join(base, name)).collect();
    let reads = futures::future::join_all(dirs.iter().map(|dir| instances(client, dir))).await;
    let mut services = Vec::with_capacity(names.len());
    for (name, read) in names.into_iter().zip(reads) {
        match read {
            Ok(instances) => services.push((name, instances.len())),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(services)
}

/// The instances in the service directory `dir`, by node name: its children read in one
/// pipelined round, those whose data is an instance. `NoNode` if `dir` does not exist.
async fn instances(client: &Client, dir: &str) -> Result<Vec<Instance>, Error> {
    let mut nodes = client.get_children(dir).await?;
    nodes.sort();
    let paths: Vec<String> = nodes.iter().map(|node| join(dir, node)).collect();
    let reads = futures::future::join_all(paths.iter().map(|p| client.get_data(p))).await;
    let mut instances = Vec::with_capacity(nodes.len());
    for read in reads {
        let data = match read {
            Ok((data, _)) => data,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(e),
        };
        // Not an instance (not JSON, or not Curator's form): left out.
        let (Ok(decoded), Ok(stored)) = (ServiceInstance::from_json(&data), serde_json::from_slice(&data)) else {
            continue;
        };
        instances.push(Instance { decoded, stored });
    }
    Ok(instances)
}

/// One plain line: `ID ADDRESS[:PORT] [URI]`.
fn instance_line(i: &ServiceInstance) -> String {
    let mut line = format!("{} {}", escaped(i.id.as_bytes()), escaped(i.address.as_deref().unwrap_or("-").as_bytes()));
    if let Some(port) = i.port.or(i.ssl_port) {
        line.push_str(&format!(":{port}"));
    }
    if let Some(uri) = i.uri(&HashMap::new()) {
        line.push(' ');
        line.push_str(&escaped(uri.as_bytes()));
    }
    line
}

#[cfg(test)]
mod tests {
    use conclave::discovery::UriSpec;

    use super::*;

    #[test]
    fn lines_name_the_address_and_the_uri() {
        let base = ServiceInstance::builder("api").id("i-1").address("10.0.0.5").registration_time_utc(1);
        assert_eq!(instance_line(&base.clone().port(80).build()), "i-1 10.0.0.5:80");
        assert_eq!(instance_line(&base.clone().ssl_port(443).build()), "i-1 10.0.0.5:443");
        let spec = UriSpec::parse("{scheme}://{address}:{ssl-port}/x").expect("a template");
        assert_eq!(
            instance_line(&base.clone().port(80).ssl_port(443).uri_spec(spec).build()),
            "i-1 10.0.0.5:80 https://10.0.0.5:443/x"
        );
        let mut bare = base.build();
        bare.address = None;
        assert_eq!(instance_line(&bare), "i-1 -");
    }
}
