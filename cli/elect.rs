//! `conclave elect`: campaigns for the leadership of an election and runs a command while
//! leading, like `etcdctl elect` — Curator `LeaderLatch` participants on the same path take part
//! in the same election. The command runs under the leadership exactly as `conclave lock`'s
//! runs under its lock (see `lock.rs`): in a process group of its own, stopped with SIGTERM and
//! then SIGKILL after `--grace` the moment the leadership may be lost (the connection lost, the
//! session ended, the leader node deleted), signals to conclave passed on, and the leadership
//! held until the whole group is gone. Its environment has [`EPOCH_ENV`] (the leadership's epoch,
//! greater for every new leader: a resource can refuse writes carrying a smaller one) and
//! [`NODE_ENV`].
//!
//! On a loss conclave exits 12, or with `--requeue` campaigns again (on a new session if the old
//! one ended) and runs the command anew once elected. A command that exits by itself ends
//! `elect` with its status (the leadership is resigned first).

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;
use conclave::leader::Election;
use conclave_core::path::validate_path;
use conclave_core::SessionState;

use crate::connect::ConnectOpts;
use crate::exit::{CliError, ExitClass};
use crate::lock::{interrupted, parse_duration, run_under, CommandOpts, Failure, Under};
use crate::signal::Shutdown;

/// The command's environment variable holding the leadership's epoch.
pub const EPOCH_ENV: &str = "CONCLAVE_EPOCH";

/// The command's environment variable holding the path of the leader's node.
pub const NODE_ENV: &str = "CONCLAVE_LEADER_NODE";

/// Arguments of `elect`.
#[derive(Debug, Args)]
pub struct ElectArgs {
    /// After a loss of the leadership, campaign again and run the command anew once elected,
    /// instead of exiting 12.
    #[arg(long)]
    pub requeue: bool,
    /// How long the command, and the processes of its group, have to exit after SIGTERM before
    /// they are killed with SIGKILL.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "10s")]
    pub grace: Duration,
    /// Run the command in conclave's process group, for interactive commands (see `lock
    /// --foreground`).
    #[arg(long)]
    pub foreground: bool,
    /// The election path.
    pub path: String,
    /// This participant's id, stored in its node and shown by `conclave leader`.
    pub id: String,
    /// The command to run while leading, and its arguments (after `--` if they start with `-`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Runs `elect`.
pub async fn run(args: ElectArgs, opts: &ConnectOpts) -> Result<(), CliError> {
    let context = format!("elect {}", args.path);
    validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    // Before connecting: from here on a signal is handled, never the default death that would
    // leave a candidacy behind until the session expires.
    let mut signals = Shutdown::install_relay()?;
    let command = CommandOpts { command: &args.command, grace: args.grace, foreground: args.foreground };
    let mut client = None;
    loop {
        let session = match client.take() {
            Some(c) => c,
            None => tokio::select! {
                c = opts.connect() => c?,
                signal = signals.received() => return Err(interrupted(&context, "the leadership", signal)),
            },
        };
        let election = Election::new(session.clone(), &args.path).with_id(args.id.clone());
        // Dropping the campaign (on a signal) withdraws the candidacy.
        let won = tokio::select! {
            won = election.campaign() => won.map_err(|e| CliError::recipe(context.as_str(), &e)),
            signal = signals.received() => Err(interrupted(&context, "the leadership", signal)),
        };
        let leadership = match won {
            Ok(l) => l,
            Err(e) => {
                let expired = session.state() == SessionState::Expired;
                session.close().await;
                // The session expired while campaigning again: on a new one.
                if args.requeue && expired {
                    eprintln!("conclave: {e}; campaigning again on a new session (--requeue)");
                    continue;
                }
                return Err(e);
            }
        };
        tracing::debug!(node = leadership.path(), epoch = leadership.epoch(), "elected");
        let under = Under {
            what: "the leadership",
            node: "leader",
            env: vec![(EPOCH_ENV, leadership.epoch().to_string()), (NODE_ENV, leadership.path().to_string())],
            lost: ExitClass::LeadershipLost,
        };
        let result = run_under(leadership.into_hold(), &under, &command, &context, &mut signals).await;
        match result {
            // Only a leadership lost before or while the command ran: a command that ended by
            // itself is not run again.
            Err(Failure::Lost(e)) if args.requeue => {
                eprintln!("conclave: {e}; campaigning again (--requeue)");
                if session.state().is_terminal() {
                    session.close().await;
                } else {
                    client = Some(session);
                }
            }
            other => {
                // Ends the session: whatever node is left goes with it.
                session.close().await;
                return other.map_err(CliError::from);
            }
        }
    }
}
