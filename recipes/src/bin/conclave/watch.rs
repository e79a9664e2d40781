//! `conclave watch`: follows a node with a persistent watch (`addWatch`, optionally recursive)
//! and prints each event as it arrives, until Ctrl-C or SIGTERM (exit 0), the first event with
//! `--once`, or the end of the session (exit 8).
//!
//! The signal handlers are installed before connecting, so a signal at any point ends the
//! command cleanly, and the session is closed before exiting. A client that cannot reach any
//! server keeps its session and reconnects by itself; if it stays disconnected for longer than
//! the negotiated session timeout, the server has surely expired the session (and its watch),
//! so the command fails with exit code 8 rather than wait forever.

use std::time::Duration;

use clap::Args;
use conclave_core::{AddWatchMode, Client, Error, SessionState};
use futures::StreamExt;
use tokio::time::Instant;

use crate::connect::ConnectOpts;
use crate::exit::{CliError, ExitClass};
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
    let mut shutdown = Shutdown::install()?;
    let client = tokio::select! {
        client = opts.connect() => client?,
        signal = shutdown.requested() => {
            tracing::debug!(signal, "stopped while connecting");
            return Ok(());
        }
    };
    let result = tokio::select! {
        r = follow(&client, args, &context, out) => r,
        e = session_lost(&client, &context) => Err(e),
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

/// Resolves with an error once the client has been disconnected for longer than the session
/// timeout (by then the server has expired the session); never resolves otherwise.
async fn session_lost(client: &Client, context: &str) -> CliError {
    let mut states = client.state_stream();
    let limit = client.negotiated_timeout().max(Duration::from_millis(1));
    let mut deadline: Option<Instant> = None;
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, states.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let why = format!("disconnected for more than {} ms; the session has expired", limit.as_millis());
                    return CliError::new(context, why, ExitClass::Connection);
                }
            },
            None => states.next().await,
        };
        match next {
            Some(state) if state.is_connected() => deadline = None,
            Some(SessionState::Disconnected) => deadline = deadline.or(Some(Instant::now() + limit)),
            Some(_) => {}
            // The session ended: the watcher reports why.
            None => std::future::pending::<()>().await,
        }
    }
}
