//! `conclave leader`: who leads an election (`conclave::leader`, or Curator's `LeaderLatch` /
//! `LeaderSelector` on the same path), once or, with `--watch`, at every change until Ctrl-C
//! or SIGTERM (exit 0) or the end of the session (exit 8).
//!
//! A line is `ID EPOCH NODE` (the leader's participant id with control characters escaped, its
//! epoch in decimal, its node's name), or `-` when nobody leads. With `--json`, one
//! `{"path", "leader"}` document per line, `leader` being `{"id", "epoch", "node", "path"}` or
//! `null`. The one-shot form prints nothing when nobody leads, and fails with
//! exit 3 (NONODE) if the election path does not exist.

use clap::Args;
use conclave::leader::{self, Leader};
use conclave_core::{Client, Error};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::connect::ConnectOpts;
use crate::exit::CliError;
use crate::output::{data_json, escaped, Output};
use crate::watch::until_stopped;

/// Arguments of `leader`.
#[derive(Debug, Args)]
pub struct LeaderArgs {
    /// Print the leader at once, then again every time it changes, until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub watch: bool,
    /// The election path.
    pub path: String,
}

/// Runs `leader`.
pub async fn run(args: &LeaderArgs, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let context = format!("leader {}", args.path);
    conclave_core::path::validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    until_stopped(opts, |client| async move { report(&client, args, &context, out).await }).await
}

/// Prints the leader once, or at every change.
async fn report(client: &Client, args: &LeaderArgs, context: &str, out: &mut Output) -> Result<(), CliError> {
    let fail = |e: conclave::Error| CliError::recipe(context, &e);
    if !args.watch {
        let now = leader::leader(client, &args.path).await.map_err(fail)?;
        if now.is_none() && client.exists(&args.path).await.map_err(|e| CliError::zk(context, &e))?.is_none() {
            return Err(CliError::zk(context, &Error::NoNode));
        }
        return match now {
            Some(l) => print(out, &args.path, Some(&l)),
            None if out.is_json() => print(out, &args.path, None),
            None => Ok(()),
        };
    }
    let mut changes = Box::pin(leader::observe(client, &args.path));
    while let Some(change) = changes.next().await {
        print(out, &args.path, change.map_err(fail)?.as_ref())?;
    }
    Err(CliError::zk(context, &Error::Closed))
}

/// One line about the leader of `path`.
fn print(out: &mut Output, path: &str, leader: Option<&Leader>) -> Result<(), CliError> {
    let plain = match leader {
        Some(l) => format!("{} {} {}", escaped(&l.id), l.epoch, node_name(&l.path)),
        None => "-".to_string(),
    };
    let doc = json!({ "path": path, "leader": leader.map_or(Value::Null, leader_json) });
    out.line(&plain, &doc)
}

fn leader_json(l: &Leader) -> Value {
    json!({
        "id": data_json(&l.id),
        // As `elect` puts it in CONCLAVE_EPOCH; a string, like every 64-bit id here.
        "epoch": l.epoch.to_string(),
        "node": node_name(&l.path),
        "path": l.path,
    })
}

fn node_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
