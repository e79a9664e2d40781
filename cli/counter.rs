//! `conclave counter`: a 64-bit counter in one node for shell scripts, on
//! [`conclave::atomic::Counter`] (Curator's `DistributedAtomicLong` layout: the value is 8 bytes,
//! big-endian; a missing or empty node counts as 0), so scripts and Java services share it.
//!
//! - `counter PATH [get]` prints the value (0 when the node does not exist); `--json`:
//!   `{"path", "value"}`.
//! - `counter PATH add N` (`incr`: add 1, `decr`: add -1) and `counter PATH set N` update it and
//!   print the value after the update; `--json`: `{"path", "pre", "post"}`, the values before and
//!   after it. The node is created (with its parents) by the first update; N may be negative
//!   (`add -5`); arithmetic wraps, as Java's does.
//!
//! An update is applied exactly once even if its reply is lost to a broken connection: it is
//! written in one transaction with an ephemeral marker under `.conclave-markers` beside the
//! counter, which tells after the reconnect whether it committed (see [`conclave::atomic`]).
//! A node whose data is not a counter (neither empty nor 8 bytes) fails with exit 9 and is left
//! as it is; a bad path fails with exit 9 before connecting, as for the other commands.

use clap::{Args, Subcommand};
use conclave::atomic::{Counter, Updated};
use conclave_core::path::validate_path;
use serde_json::{json, Value};

use crate::connect::ConnectOpts;
use crate::exit::CliError;
use crate::output::Output;

/// Arguments of `counter`.
#[derive(Debug, Args)]
#[command(subcommand_value_name = "ACTION", subcommand_help_heading = "Actions", disable_help_subcommand = true)]
pub struct CounterArgs {
    /// The counter's node.
    pub path: String,
    /// What to do with the counter [default: get].
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// What `counter` does with the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Action {
    /// Print the value (0 if the node does not exist). The default.
    Get,
    /// Add N (negative to subtract) and print the new value.
    Add {
        /// What to add, such as 5 or -5.
        #[arg(allow_negative_numbers = true)]
        n: i64,
    },
    /// Add 1 and print the new value.
    Incr,
    /// Subtract 1 and print the new value.
    Decr,
    /// Set the value to N, whatever it was, and print it.
    Set {
        /// The new value, such as 10 or -10.
        #[arg(allow_negative_numbers = true)]
        n: i64,
    },
}

impl Action {
    /// What the command does, for error messages: `counter /c add -2`.
    fn context(self, path: &str) -> String {
        match self {
            Action::Get => format!("counter {path} get"),
            Action::Add { n } => format!("counter {path} add {n}"),
            Action::Incr => format!("counter {path} incr"),
            Action::Decr => format!("counter {path} decr"),
            Action::Set { n } => format!("counter {path} set {n}"),
        }
    }
}

/// What an action found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// `get`: the value.
    Value(i64),
    /// An update: the values before and after it.
    Updated(Updated),
}

/// Runs `counter`.
pub async fn run(args: &CounterArgs, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let action = args.action.unwrap_or(Action::Get);
    let context = action.context(&args.path);
    validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    let client = opts.connect().await?;
    let counter = Counter::new(client.clone(), &args.path);
    let done = match action {
        Action::Get => counter.get().await.map(Done::Value),
        Action::Add { n } => counter.add(n).await.map(Done::Updated),
        Action::Incr => counter.increment().await.map(Done::Updated),
        Action::Decr => counter.decrement().await.map(Done::Updated),
        Action::Set { n } => counter.force_set(n).await.map(Done::Updated),
    };
    // Ends the session: an update's marker goes with it.
    client.close().await;
    let done = done.map_err(|e| CliError::recipe(context.as_str(), &e))?;
    let (plain, doc) = render(&args.path, done);
    out.line(&plain, &doc)
}

/// The plain line (the value, or the value after the update) and the JSON document.
fn render(path: &str, done: Done) -> (String, Value) {
    match done {
        Done::Value(value) => (value.to_string(), json!({ "path": path, "value": value })),
        Done::Updated(Updated { pre, post }) => (post.to_string(), json!({ "path": path, "pre": pre, "post": post })),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    /// The action `conclave counter ARGS...` parses to.
    fn parsed(args: &[&str]) -> Result<(String, Option<Action>), clap::Error> {
        let cli = Cli::try_parse_from(["conclave", "counter"].iter().chain(args))?;
        match cli.command {
            Command::Counter(args) => Ok((args.path, args.action)),
            other => panic!("not a counter command: {other:?}"),
        }
    }

    #[test]
    fn actions_parse_with_negative_numbers() {
        assert_eq!(parsed(&["/c"]).expect("get by default"), ("/c".into(), None));
        assert_eq!(parsed(&["/c", "get"]).expect("get").1, Some(Action::Get));
        assert_eq!(parsed(&["/c", "add", "5"]).expect("add").1, Some(Action::Add { n: 5 }));
        assert_eq!(parsed(&["/c", "add", "-5"]).expect("add -5").1, Some(Action::Add { n: -5 }));
        assert_eq!(parsed(&["/c", "set", "-9223372036854775808"]).expect("set").1, Some(Action::Set { n: i64::MIN }));
        assert_eq!(parsed(&["/c", "incr"]).expect("incr").1, Some(Action::Incr));
        assert_eq!(parsed(&["/c", "decr", "--json"]).expect("decr").1, Some(Action::Decr));
        for bad in [&["/c", "add"][..], &["/c", "add", "x"], &["/c", "add", "9223372036854775808"], &["/c", "inc"], &[]]
        {
            let e = parsed(bad).expect_err("a usage error");
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
    }

    #[test]
    fn contexts_name_the_action() {
        assert_eq!(Action::Add { n: -2 }.context("/c"), "counter /c add -2");
        assert_eq!(Action::Get.context("/c"), "counter /c get");
        assert_eq!(Action::Set { n: 10 }.context("/a/b"), "counter /a/b set 10");
    }

    #[test]
    fn plain_is_the_value_and_json_has_both_sides() {
        assert_eq!(render("/c", Done::Value(-3)), ("-3".to_string(), json!({"path": "/c", "value": -3})));
        let updated = Done::Updated(Updated { pre: 3, post: 10 });
        assert_eq!(render("/c", updated), ("10".to_string(), json!({"path": "/c", "pre": 3, "post": 10})));
    }
}
