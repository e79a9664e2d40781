//! Where the example programs run (each includes this file as a module): a real ZooKeeper named
//! by `--connect HOSTS`, or else an embedded server started on a free port.

use std::future::Future;
use std::time::Duration;

use conclave::{Result, ServerHandle};

/// Any error of an example that checks what it prints: the client's, or a failed check.
// Not every example checks its output (each includes this file).
#[allow(dead_code)]
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs an example that checks itself: `run` on the target's connect string, given up after
/// `limit` rather than hang; the embedded server is shut down either way.
#[allow(dead_code)]
pub async fn run_checked<F, Fut>(limit: Duration, run: F) -> std::result::Result<(), BoxError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = std::result::Result<(), BoxError>>,
{
    let (server, hosts) = server_or_hosts().await?;
    let outcome = tokio::time::timeout(limit, run(hosts)).await;
    if let Some(server) = server {
        server.shutdown().await;
    }
    match outcome {
        Ok(result) => result,
        Err(_) => Err(format!("gave up after {limit:?}").into()),
    }
}

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
