//! `conclave watch`: follows a node with a persistent watch (`addWatch`, optionally recursive)
//! and prints each event as it arrives, until Ctrl-C or SIGTERM (exit 0), the first event with
//! `--once`, or the end of the session (exit 8). With `--tree` it follows the subtree through a
//! [`TreeCache`] instead: every node as `Added` (with its data and version), `Initialized`,
//! then each change with the node's new state, and `Resynced` after a reconnection or a new
//! session (the cache moves to a new session after an expiry, so `--tree` never ends with
//! one); `--once` then prints the tree and exits after `Initialized`.
//!
//! The signal handlers are installed before connecting, so a signal at any point ends the
//! command cleanly, and the session is closed before exiting. A client that cannot reach any
//! server keeps its session and reconnects by itself; if it hears from no server for 4/3 of the
//! session timeout it declares the session expired (the client's own client-side expiry), the
//! watch stream ends with SESSIONEXPIRED, and the command fails with exit code 8 rather than
//! wait forever.

use clap::Args;
use conclave::cache::{CacheEvent, TreeCache};
use conclave_core::{AddWatchMode, Client, Error};
use futures::StreamExt;
use serde_json::json;

use crate::connect::ConnectOpts;
use crate::exit::CliError;
use crate::output::Output;
use crate::signal::Shutdown;

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Watch the node and all its descendants (data and existence changes; no
    /// NodeChildrenChanged).
    #[arg(long, conflicts_with = "tree")]
    pub recursive: bool,
    /// Follow the subtree through a cache: each node with its data first, `Initialized`, then
    /// each change with the node's new state, and `Resynced` after a reconnection.
    #[arg(long)]
    pub tree: bool,
    /// Exit 0 after the first event (with `--tree`: after `Initialized`).
    #[arg(long)]
    pub once: bool,
    /// The node (it need not exist yet).
    pub path: String,
}

/// Runs `watch`.
pub async fn run(args: &WatchArgs, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let context = format!("watch {}", args.path);
    conclave_core::path::validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    if args.tree {
        return until_stopped(opts, |client| async move { follow_tree(&client, args, &context, out).await }).await;
    }
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

/// Follows the subtree with a cache and prints its events.
async fn follow_tree(client: &Client, args: &WatchArgs, context: &str, out: &mut Output) -> Result<(), CliError> {
    let cache = TreeCache::new(client, &args.path).map_err(|e| CliError::recipe(context, &e))?;
    let mut events = cache.events();
    loop {
        match events.next().await {
            Some(Ok(event)) => {
                print_cache_event(out, &event)?;
                if args.once && event == CacheEvent::Initialized {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(CliError::recipe(context, &e)),
            None => return Err(CliError::zk(context, &Error::Closed)),
        }
    }
}

/// One cache event: `Added /path v0 data` (plain) or a JSON object with the node's data and
/// stat.
fn print_cache_event(out: &mut Output, event: &CacheEvent) -> Result<(), CliError> {
    let (kind, path, node) = match event {
        CacheEvent::Added { path, node } => ("Added", path, node),
        CacheEvent::Updated { path, node } => ("Updated", path, node),
        CacheEvent::Removed { path, node } => ("Removed", path, node),
        CacheEvent::Resynced { possibly_missed } => {
            let plain = format!("Resynced possibly_missed={possibly_missed}");
            return out.line(&plain, &json!({ "event": "Resynced", "possibly_missed": possibly_missed }));
        }
        _ => return out.line("Initialized", &json!({ "event": "Initialized" })),
    };
    let plain = format!("{kind} {path} v{} {}", node.stat.version, crate::output::escaped(&node.data));
    let doc = json!({
        "event": kind,
        "path": path,
        "data": crate::output::data_json(&node.data),
        "stat": crate::output::stat_json(&node.stat),
    });
    out.line(&plain, &doc)
}
