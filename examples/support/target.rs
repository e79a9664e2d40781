//! Where the example programs run (each includes this file as a module): a real ZooKeeper named
//! by `--connect HOSTS`, or else an embedded server started on a free port.

use conclave::{Result, ServerHandle};

/// The embedded server started (if `--connect` was not given) and the connect string to use.
pub async fn server_or_hosts() -> Result<(Option<ServerHandle>, String)> {
    let args: Vec<String> = std::env::args().collect();
    let connect_to = args.iter().position(|a| a == "--connect").and_then(|i| args.get(i + 1)).cloned();
    Ok(match connect_to {
        Some(hosts) => {
            println!("Using the ZooKeeper at {hosts}");
            (None, hosts)
        }
        None => {
            let server = conclave::Server::builder().start().await?;
            let hosts = server.connect_string();
            println!("Started an embedded ZooKeeper-compatible server on {hosts}");
            (Some(server), hosts)
        }
    })
}
