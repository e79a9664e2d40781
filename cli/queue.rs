//! `conclave queue`: work queues for shell scripts, on [`conclave::queue::Queue`] (Curator's
//! `SimpleDistributedQueue` layout: items are persistent sequential nodes `PATH/qn-<seq>`, their
//! data the payload, so Java producers and consumers share the queue).
//!
//! - `queue put PATH [DATA|-]` adds one item at the end of the queue (the queue node is created
//!   with its parents if missing) and prints its path (`{"path"}` with `--json`). DATA is read
//!   from stdin for `-`, and is empty when absent, as for `create`.
//! - `queue take PATH` takes the first item at most once (it is deleted as it is read; if the
//!   connection fails at the wrong moment, it is lost) and writes its data to stdout exactly as
//!   stored, as `get` does (`{"path", "data", "stat"}` with `--json`). It waits for an item,
//!   within `--timeout` if given (exit 10 when none came).
//! - `queue take PATH --ack -- COMMAND...` consumes at least once: it claims the first item (it
//!   stays in the queue, invisible to other consumers), runs COMMAND under the claim exactly as
//!   `lock` runs its command under the lock (`run_under` in `lock.rs`: its own process group,
//!   signals passed on, SIGTERM then SIGKILL after `--grace` if the claim may be lost), with the
//!   item's data on its stdin and [`ITEM_ENV`] and [`TOKEN_ENV`] in its environment. If COMMAND
//!   exits 0 the item is acked (deleted); otherwise the claim is released (the item is
//!   available again, in its place) and conclave exits with the command's status. A claim lost
//!   while the command runs (connection lost, session ended, claim node deleted) stops the
//!   command and exits 11, without an ack: the item will be handed out again.
//! - `queue ls PATH` lists the items, `NAME SIZE available|claimed` per line, in queue order
//!   (by sequence number, across the wrap of the server's counter; see [`queue_order`]).
//!
//! A signal while connecting or waiting for an item ends the wait and exits 128+N, as for
//! `lock`; a take already under way when it arrives is completed rather than abandoned (an
//! abandoned take may have deleted its item on the server), and its item printed (exit 0). A
//! second signal abandons it.

use std::ffi::OsString;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use conclave::hold::LossReason;
use conclave::queue::{Claim, Queue};
use conclave::{CancellationToken, Wait};
use conclave_core::path::{join, validate_path};
use conclave_core::{Client, Error, Stat};
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::connect::ConnectOpts;
use crate::exit::{CliError, ExitClass};
use crate::lock::{interrupted, parse_duration, run_under, CommandOpts, Held, Under, TOKEN_ENV};
use crate::ops::read_data;
use crate::output::{Output, Reply};
use crate::signal::{Shutdown, Signal};

/// The command's environment variable holding the claimed item's path.
pub const ITEM_ENV: &str = "CONCLAVE_ITEM_PATH";

/// The name prefix of the items of a FIFO queue, before ZooKeeper's 10-character sequence
/// suffix.
const ITEM_PREFIX: &str = "qn-";

/// How many item stats `queue ls` asks for at once.
const LS_PIPELINE: usize = 128;

/// The `queue` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Put an item at the end of the queue and print its path.
    ///
    /// The queue node (and its parents) is created if missing. The item is a persistent
    /// sequential node PATH/qn-<10 digits> holding DATA (Curator's SimpleDistributedQueue
    /// layout). If the connection is lost before the reply, the put fails with exit 8 and
    /// whether the item was added is unknown. With --json: {"path"}.
    Put {
        /// The queue.
        path: String,
        /// The item's data (default empty); `-` reads it from stdin.
        data: Option<String>,
    },
    /// Take the first item and print its data, or with --ack run a command on it.
    ///
    /// Without --ack the item is taken at most once: deleted as it is read, then its data is
    /// written to stdout exactly as stored (as `get` does); if the connection fails between the
    /// delete and its reply, the item is lost. With --json: {"path", "data", "stat"}.
    ///
    /// With --ack -- COMMAND the item is consumed at least once: it is claimed (it stays in the
    /// queue, invisible to other consumers), COMMAND runs with the item's data on its stdin and
    /// CONCLAVE_ITEM_PATH (the item's node) and CONCLAVE_FENCING_TOKEN (greater for every new
    /// claim of the item) in its environment, and the item is acked (deleted) if COMMAND exits
    /// 0. Otherwise the claim is released (the item is available again, in its place) and
    /// conclave exits with the command's status. If the claim may be lost while the command
    /// runs (the connection to ZooKeeper is lost, the session ends, or someone deletes the claim
    /// node), the command gets SIGTERM, then SIGKILL after --grace, and conclave exits 11
    /// without acking: the item will be handed out again. Process groups and signals work as
    /// for `lock`; stdout and stderr are the command's.
    ///
    /// Waits for an item as long as it takes, or up to --timeout. A signal while waiting exits
    /// 128+N.
    ///
    /// Exit codes: 10 no item within --timeout, 11 claim lost, 126 command not runnable, 127
    /// command not found, 128+N stopped by signal N while waiting; with --ack otherwise the
    /// command's.
    Take(TakeArgs),
    /// List the queue's items in queue order, one `NAME SIZE available|claimed` line each.
    ///
    /// SIZE is the data's length in bytes; an item is claimed while it has children (a consumer
    /// is working on it under `take --ack`). Only items (qn-<sequence>) are listed, in the
    /// order consumers take them: by sequence number, the newest last even once the server's
    /// sequence counter has wrapped (after 2^31 changes of the queue's children). Prints nothing (exit 0) for an empty queue, and
    /// fails with exit 3 if PATH does not exist. With --json, one array of {"name", "path",
    /// "sequence", "size", "claimed"}.
    Ls {
        /// The queue.
        path: String,
    },
}

/// Arguments of `queue take`.
#[derive(Debug, Args)]
pub struct TakeArgs {
    /// Give up if no item can be had within D (exit code 10); 0 tries once without waiting. D
    /// is a number with a unit (ms, s, m, h), such as 500ms, 10s or 1m30s.
    /// [default: wait as long as it takes]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Claim the item instead of taking it, run COMMAND on it, and ack it (delete it) only if
    /// COMMAND exits 0; otherwise it goes back to the queue.
    #[arg(long, requires = "command")]
    pub ack: bool,
    /// How long the command, and the processes of its group, have to exit after SIGTERM before
    /// they are killed with SIGKILL (with --ack).
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "10s", requires = "ack")]
    pub grace: Duration,
    /// The queue.
    pub path: String,
    /// With --ack: the command to run on the item, and its arguments (after `--` if they start
    /// with `-`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND", requires = "ack")]
    pub command: Vec<OsString>,
}

/// Runs a `queue` subcommand.
pub async fn run(cmd: QueueCommand, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    match cmd {
        QueueCommand::Put { path, data } => put(&path, data.as_deref(), opts, out).await,
        QueueCommand::Take(args) if args.ack => take_ack(&args, opts).await,
        QueueCommand::Take(args) => take(&args, opts, out).await,
        QueueCommand::Ls { path } => ls(&path, opts, out).await,
    }
}

/// `queue put`: one item, its path printed.
async fn put(path: &str, data: Option<&str>, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let context = format!("queue put {path}");
    validate_path(path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    let data = read_data(data, &context)?;
    let client = opts.connect().await?;
    let put = Queue::new(client.clone(), path).put(data).await;
    client.close().await;
    let item = put.map_err(|e| CliError::recipe(context.as_str(), &e))?;
    out.line(&item, &json!({ "path": item }))
}

/// What both forms of `queue take` start with: the path checked, the signal relay installed
/// (before connecting, as `lock` does: a signal ends the wait cleanly instead of killing the
/// process in the middle of a take), and the connection; with the command's context.
async fn connect_to_take(args: &TakeArgs, opts: &ConnectOpts) -> Result<(String, Shutdown, Client), CliError> {
    let context = format!("queue take {}", args.path);
    validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    let mut signals = Shutdown::install_relay()?;
    let client = tokio::select! {
        client = opts.connect() => client?,
        signal = signals.received() => return Err(interrupted(&context, "an item", signal)),
    };
    Ok((context, signals, client))
}

/// `queue take` without `--ack`: one item taken at most once, its data printed.
async fn take(args: &TakeArgs, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let (context, mut signals, client) = connect_to_take(args, opts).await?;
    let queue = Queue::new(client.clone(), &args.path);
    let (taken, stopped) = wait_for(|wait| queue.take_with(wait), args.timeout, &mut signals).await;
    client.close().await;
    // An item taken after a signal is printed all the same: it is no longer in the queue.
    match taken.map_err(|e| CliError::recipe(context.as_str(), &e))? {
        Some(item) => {
            let reply = Reply::Data { path: item.path().to_string(), data: item.data().clone(), stat: *item.stat() };
            out.reply(&reply)
        }
        None => Err(nothing(&context, args.timeout, stopped)),
    }
}

/// `queue take --ack`: one item claimed and handed to the command, acked if it succeeds.
async fn take_ack(args: &TakeArgs, opts: &ConnectOpts) -> Result<(), CliError> {
    let (context, mut signals, client) = connect_to_take(args, opts).await?;
    let result = claim_and_run(&client, args, &context, &mut signals).await;
    // Ends the session: a claim left behind goes with it, and its item is available again.
    client.close().await;
    result
}

/// Claims an item and runs the command under the claim.
async fn claim_and_run(
    client: &Client,
    args: &TakeArgs,
    context: &str,
    signals: &mut Shutdown,
) -> Result<(), CliError> {
    let queue = Queue::new(client.clone(), &args.path);
    let (claimed, stopped) = wait_for(|wait| queue.claim_with(wait), args.timeout, signals).await;
    let claim = match claimed.map_err(|e| CliError::recipe(context, &e))? {
        Some(claim) => claim,
        None => return Err(nothing(context, args.timeout, stopped)),
    };
    if let Some(signal) = stopped {
        // Claimed as the signal arrived: the item goes back to the queue untouched.
        if let Err(e) = claim.release().await {
            tracing::debug!(error = %e, "release failed");
        }
        return Err(interrupted(context, "an item", signal));
    }
    tracing::debug!(item = claim.item().path(), token = claim.fencing_token(), "item claimed");
    let under = Under {
        what: "the claim",
        node: "claim",
        env: vec![(ITEM_ENV, claim.item().path().to_string()), (TOKEN_ENV, claim.fencing_token().to_string())],
        lost: ExitClass::LockLost,
    };
    let command = CommandOpts { command: &args.command, grace: args.grace, foreground: false };
    run_under(claim, &under, &command, context, signals).await.map_err(CliError::from)
}

/// A claim runs its command as a hold does, with the item on its stdin, and ends in an ack when
/// the command succeeded, else in a release.
impl Held for Claim {
    fn is_held(&self) -> bool {
        Claim::is_held(self)
    }

    fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        Claim::lost(self)
    }

    fn input(&self) -> Option<Bytes> {
        Some(self.data().clone())
    }

    async fn end(self, succeeded: bool) -> conclave::Result<()> {
        if succeeded {
            self.ack().await
        } else {
            self.release().await
        }
    }

    fn give_up(self) -> impl Future<Output = conclave::Result<()>> {
        self.release()
    }

    fn ending(succeeded: bool) -> &'static str {
        if succeeded {
            "acked"
        } else {
            "released"
        }
    }

    /// Lost: [`conclave::Error::Lost`] and the session's end; an ack refused for want of
    /// permission (`NOAUTH`) is an error of its own.
    fn lost_by(e: &conclave::Error) -> bool {
        match e {
            conclave::Error::Zk(e) => e.is_terminal(),
            _ => true,
        }
    }
}

/// Waits for `get` (a take or a claim, given the [`Wait`] it may use) within `timeout`, and
/// cancels the wait at the first signal: an attempt under way completes, and its result is
/// returned. A second signal abandons it. Gives the result and the first signal, if any.
async fn wait_for<T, F>(
    get: impl FnOnce(Wait) -> F,
    timeout: Option<Duration>,
    signals: &mut Shutdown,
) -> (conclave::Result<Option<T>>, Option<Signal>)
where
    F: Future<Output = conclave::Result<Option<T>>>,
{
    let cancel = CancellationToken::new();
    let wait = match timeout {
        Some(d) => Wait::until(&cancel).with_timeout(d),
        None => Wait::until(&cancel),
    };
    let mut get = pin!(get(wait));
    let mut stopped = None;
    loop {
        tokio::select! {
            got = &mut get => return (got, stopped),
            signal = signals.received() => {
                if stopped.is_some() {
                    tracing::debug!(signal = signal.name(), "second signal: abandoning the wait");
                    return (Ok(None), stopped);
                }
                tracing::debug!(signal = signal.name(), "ending the wait");
                stopped = Some(signal);
                cancel.cancel();
            }
        }
    }
}

/// The error for a wait that ended without an item: stopped by a signal (128+N), else
/// `--timeout` ran out (exit 10).
fn nothing(context: &str, timeout: Option<Duration>, stopped: Option<Signal>) -> CliError {
    if let Some(signal) = stopped {
        return interrupted(context, "an item", signal);
    }
    let reason = match timeout.unwrap_or_default() {
        d if d.is_zero() => "no item available (--timeout 0: no waiting)".to_string(),
        d => format!("no item within {d:?}"),
    };
    CliError::new(context, reason, ExitClass::LockTimeout)
}

/// One item of a `queue ls` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    /// The item node's name, `qn-<sequence>`.
    name: String,
    /// Its path.
    path: String,
    /// The data's length in bytes.
    size: i32,
    /// Whether a consumer has claimed it (it has children).
    claimed: bool,
}

impl Listed {
    /// The entry for item `name` of queue `dir`, from its node's stat.
    fn new(dir: &str, name: String, stat: &Stat) -> Listed {
        Listed { path: join(dir, &name), name, size: stat.data_length, claimed: stat.num_children > 0 }
    }

    /// Whether it is claimed, in words.
    fn state(&self) -> &'static str {
        if self.claimed {
            "claimed"
        } else {
            "available"
        }
    }

    /// The plain line: `NAME SIZE available|claimed`.
    fn line(&self) -> String {
        format!("{} {} {}", self.name, self.size, self.state())
    }

    /// The JSON object.
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "path": self.path,
            "sequence": item_sequence(&self.name),
            "size": self.size,
            "claimed": self.claimed,
        })
    }
}

/// `queue ls`: the items in queue order, with size and claim state.
async fn ls(path: &str, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let context = format!("queue ls {path}");
    validate_path(path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    let client = opts.connect().await?;
    let listed = list(&client, path).await;
    client.close().await;
    let listed = listed.map_err(|e| CliError::zk(context.as_str(), &e))?;
    if listed.is_empty() && !out.is_json() {
        return Ok(());
    }
    let text = listed.iter().map(Listed::line).collect::<Vec<_>>().join("\n");
    out.line(&text, &Value::from(listed.iter().map(Listed::json).collect::<Vec<_>>()))
}

/// The items of queue `dir` with their stats, asked for [`LS_PIPELINE`] at a time; items taken
/// meanwhile are left out.
async fn list(client: &Client, dir: &str) -> Result<Vec<Listed>, Error> {
    let names = queue_order(client.get_children(dir).await?);
    let stats = futures::stream::iter(names)
        .map(|name| async move {
            let stat = client.exists(&join(dir, &name)).await?;
            Ok::<_, Error>(stat.map(|stat| Listed::new(dir, name, &stat)))
        })
        .buffered(LS_PIPELINE)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(stats.into_iter().flatten().collect())
}

/// The items among `children` (see [`item_sequence`]), in the order consumers take them: by
/// sequence number, except that when the server's counter has wrapped between two items (the
/// listing holds numbers from both ends of the 32-bit range), the negative ones are the newer,
/// as `conclave::queue` orders them.
fn queue_order(children: Vec<String>) -> Vec<String> {
    let mut items: Vec<(i64, String)> =
        children.into_iter().filter_map(|name| Some((i64::from(item_sequence(&name)?), name))).collect();
    let quarter = i64::from(i32::MAX / 2);
    if items.iter().any(|(seq, _)| *seq > quarter) && items.iter().any(|(seq, _)| *seq < -quarter) {
        for (seq, _) in items.iter_mut().filter(|(seq, _)| *seq < 0) {
            *seq += 1 << 32;
        }
    }
    items.sort();
    items.into_iter().map(|(_, name)| name).collect()
}

/// The sequence number of `name` if it is an item of a FIFO queue: `qn-` and the sequence
/// suffix exactly as ZooKeeper writes it (`%010d` of a signed 32-bit counter: ten digits, or a
/// `-` and at least nine once the counter has wrapped).
fn item_sequence(name: &str) -> Option<i32> {
    let suffix = name.strip_prefix(ITEM_PREFIX)?;
    let digits = suffix.strip_prefix('-').unwrap_or(suffix);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: i32 = suffix.parse().ok()?;
    (format!("{seq:010}") == suffix).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_qn_and_a_sequence() {
        assert_eq!(item_sequence("qn-0000000042"), Some(42));
        assert_eq!(item_sequence("qn-2147483647"), Some(i32::MAX));
        assert_eq!(item_sequence("qn--000000001"), Some(-1), "wrapped counter");
        assert_eq!(item_sequence("qn--2147483648"), Some(i32::MIN));
        for other in [
            "qn-42",
            "qn-00000000042",
            "qn--0000000001",
            "qp-0000000001",
            "qn-+000000001",
            "qn-00000000x1",
            "qn-0000000001 ",
            "claim",
            "qn-",
        ] {
            assert_eq!(item_sequence(other), None, "{other}");
        }
    }

    #[test]
    fn queue_order_is_by_sequence_across_the_wrap() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let listing = names(&["qn-0000000010", "other", "qn-0000000002", "qn-0000000001"]);
        assert_eq!(queue_order(listing), names(&["qn-0000000001", "qn-0000000002", "qn-0000000010"]));
        let wrapped = names(&["qn--2147483647", "qn-2147483646", "qn--2147483648", "qn-2147483647"]);
        assert_eq!(
            queue_order(wrapped),
            names(&["qn-2147483646", "qn-2147483647", "qn--2147483648", "qn--2147483647"]),
            "the negative numbers came after the wrap"
        );
        let negative = names(&["qn--000000001", "qn--000000002"]);
        assert_eq!(queue_order(negative), names(&["qn--000000002", "qn--000000001"]));
    }

    #[test]
    fn listing_lines_and_json() {
        let stat = Stat { data_length: 5, num_children: 2, ..Stat::default() };
        let claimed = Listed::new("/q", "qn-0000000003".into(), &stat);
        assert_eq!(claimed.line(), "qn-0000000003 5 claimed");
        assert_eq!(
            claimed.json(),
            json!({"name": "qn-0000000003", "path": "/q/qn-0000000003", "sequence": 3, "size": 5, "claimed": true})
        );
        let free = Listed::new("/", "qn-0000000000".into(), &Stat::default());
        assert_eq!((free.line().as_str(), free.path.as_str()), ("qn-0000000000 0 available", "/qn-0000000000"));
    }

    #[test]
    fn a_wait_without_an_item_says_why() {
        let e = nothing("queue take /q", Some(Duration::from_millis(300)), None);
        assert_eq!(
            (e.class(), e.to_string().as_str()),
            (ExitClass::LockTimeout, "queue take /q: no item within 300ms")
        );
        let e = nothing("queue take /q", Some(Duration::ZERO), None);
        assert!(e.to_string().contains("--timeout 0"), "{e}");
        let e = nothing("queue take /q", None, Some(Signal::Terminate));
        assert_eq!(e.class(), ExitClass::Signal(15));
        assert_eq!(e.to_string(), "queue take /q: stopped by SIGTERM while waiting for an item");
    }

    #[test]
    fn a_claim_is_lost_only_with_the_session_or_its_node() {
        let lost = conclave::Error::Lost { path: "/q/qn-0000000000/claim-x".into(), reason: LossReason::NodeDeleted };
        assert!(<Claim as Held>::lost_by(&lost));
        assert!(<Claim as Held>::lost_by(&conclave::Error::Zk(Error::SessionExpired)));
        assert!(!<Claim as Held>::lost_by(&conclave::Error::Zk(Error::NoAuth)));
        assert_eq!((<Claim as Held>::ending(true), <Claim as Held>::ending(false)), ("acked", "released"));
    }
}
