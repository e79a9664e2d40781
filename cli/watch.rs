//! `conclave watch`: follows a node with a persistent watch (`addWatch`, optionally recursive)
//! and prints each event as it arrives, until Ctrl-C or SIGTERM (exit 0), the first event with
//! `--once`, or the end of the session (exit 8).
//!
//! The signal handlers are installed before connecting, so a signal at any point ends the
//! command cleanly, and the session is closed before exiting. A client that cannot reach any
//! server keeps its session and reconnects by itself; if it hears from no server for 4/3 of the
//! session timeout it declares the session expired (the client's own client-side expiry), the
//! watch stream ends with SESSIONEXPIRED, and the command fails with exit code 8 rather than
//! wait forever.

use clap::Args;
use conclave_core::{AddWatchMode, Client, Error};
use futures::StreamExt;

use crate::connect::ConnectOpts;
use crate::exit::CliError;
use crate::output::Output;
use crate::signal::Shutdown;

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Watch the node and all its descendants (data and existence changes; no
    /// NodeChildrenChanged).
    #[arg(long)]
    pub recursive: bool,
    /// Exit 0 after the first event.
    #[arg(long)]
    pub once: bool,
    /// The node (it need not exist yet).
    pub path: String,
}

/// Runs `watch`.
pub async fn run(args: &WatchArgs, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let context = format!("watch {}", args.path);
    conclave_core::path::validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    until_stopped(opts, |client| async move { follow(&client, args, &context, out).await }).await
}

/// Installs the stop signals' handlers, connects, and runs `body` on the session until it ends
/// or SIGINT or SIGTERM arrives (then `Ok`: stopping a follower is its normal end, also while
/// it connects); the session is closed either way. The commands that follow something until
/// stopped (`watch`, `leader --watch`) run this way.
pub async fn until_stopped<Fut>(opts: &ConnectOpts, body: impl FnOnce(Client) -> Fut) -> Result<(), CliError>
where
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let mut shutdown = Shutdown::install()?;
    let client = tokio::select! {
        client = opts.connect() => client?,
        signal = shutdown.requested() => {
            tracing::debug!(signal, "stopped while connecting");
            return Ok(());
        }
    };
    let result = tokio::select! {
        r = body(client.clone()) => r,
        signal = shutdown.requested() => {
            tracing::debug!(signal, "stopped");
            Ok(())
        }
    };
    client.close().await;
    result
}

/// Registers the watch and prints its events.
async fn follow(client: &Client, args: &WatchArgs, context: &str, out: &mut Output) -> Result<(), CliError> {
    let mode = if args.recursive { AddWatchMode::PersistentRecursive } else { AddWatchMode::Persistent };
    let mut events = client.add_watch(&args.path, mode).await.map_err(|e| CliError::zk(context, &e))?;
    tracing::debug!(path = args.path, ?mode, "watch registered");
    loop {
        match events.next().await {
            Some(Ok(event)) => {
                out.event(&event)?;
                if args.once {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(CliError::zk(context, &e)),
            None => return Err(CliError::zk(context, &Error::Closed)),
        }
    }
}
