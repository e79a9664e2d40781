//! `conclave`: the command line of Conclave. It runs the embedded ZooKeeper-compatible server
//! (`conclave serve`) and talks to any ZooKeeper ensemble with one command per operation (`ls`,
//! `get`, `stat`, `create`, `set`, `delete`, `watch`), in plain text for people and shell
//! scripts, or as JSON with `--json`. `lock` runs a command under a distributed lock (flock(1)
//! across machines) and `locks` shows who holds and who waits; `elect` runs a command while
//! leading an election and `leader` shows who leads; `queue put|take|ls` feeds and drains work
//! queues (`take --ack` runs a command on an item and deletes it only if the command succeeds);
//! `counter PATH [get|add N|set N]` reads and updates a counter (Curator's DistributedAtomicLong);
//! `members PATH` lists a group's members (Curator's GroupMember) and `services BASE [NAME]` the
//! services registered for discovery and their instances (Curator's curator-x-discovery).
//!
//! # Layout
//! The binary is the target `conclave` of the root package, `conclave-cli`, in `cli/`: the
//! command line's dependencies (clap, tracing-subscriber, serde_json, libc) stay out of the
//! library `conclave` (`recipes/`), which it uses like any other program would.
//! - `main.rs`: the argument grammar (clap derive), the runtime and the dispatch.
//! - `connect.rs`: the connection flags and opening a session.
//! - `ops.rs`: the one-shot commands (`locks` too); `watch.rs`: the `watch` command; `lock.rs`:
//!   the `lock` command and running a command under a hold (shared by `elect.rs` and
//!   `queue.rs`); `elect.rs`, `leader.rs`: `elect` and `leader`; `queue.rs`: the `queue`
//!   commands; `counter.rs`: the `counter` command; `members.rs`, `services.rs`: `members` and
//!   `services`.
//! - `output.rs`: plain and JSON rendering; `exit.rs`: errors and exit codes.
//! - `serve.rs`: `conclave serve`; `signal.rs`: Ctrl-C and SIGTERM, and sending signals.
//!
//! A new command (such as `elect`) is a variant of [`ops::ClientCommand`] (or of its
//! own `Subcommand` enum flattened into [`Command`]) plus a function that returns a
//! [`output::Reply`] or writes through [`output::Output`].
//!
//! # Output
//! Plain output is meant for scripts: `ls` prints one child per line (sorted), `get` writes the
//! data's bytes exactly, `stat` prints `field value` lines, `create` the created path, `set` the
//! new data version, `delete` nothing, `watch` one `EventType path` line per event. With
//! `--json`, every command prints one JSON document (`watch`: one per line); node data is a
//! string when it is valid UTF-8 and an array of byte values otherwise; zxids and session ids are
//! `0x` hex strings (they do not fit a JSON number safely). `lock` prints nothing: stdout is its
//! command's. `locks` prints `holder|waiting SEQUENCE NODE SESSION FENCING_TOKEN DATA` lines.
//! `queue put` prints the item's path, `queue take` the item's data as `get` does (nothing with
//! `--ack`: stdout is the command's), `queue ls` one `NAME SIZE available|claimed` line per item.
//! `counter` prints the counter's value in decimal: the value read (`get`), or the value after
//! the update (`add`, `incr`, `decr`, `set`); with `--json`, `{"path", "value"}` for `get` and
//! `{"path", "pre", "post"}` for an update. `members` prints one `ID DATA` line per member,
//! `services BASE` one `NAME COUNT` line per service and `services BASE NAME` one
//! `ID ADDRESS[:PORT] [URI]` line per instance; with `--json`, each one array (of
//! `{"id", "path", "data", "stat"}`, of `{"name", "instances"}`, of the instances' JSON objects).
//!
//! # Exit codes
//! Every failure prints one line to stderr, `conclave: <what failed>: <why>`, and exits with a
//! stable code per class of error:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success (also when the reader of stdout went away, as with `\| head -1`) |
//! | 1 | any other failure (I/O, protocol error, an unexpected server error) |
//! | 2 | usage error (unknown flag, missing argument) |
//! | 3 | the node does not exist (`NONODE`) |
//! | 4 | the node already exists (`NODEEXISTS`) |
//! | 5 | version mismatch (`BADVERSION`) |
//! | 6 | the node has children (`NOTEMPTY`) |
//! | 7 | not authorized or authentication failed (`NOAUTH`, `AUTHFAILED`) |
//! | 8 | cannot connect, connection lost, session expired, or no reply in time |
//! | 9 | invalid path or argument, data too large, or rejected by the server (`BADARGUMENTS`) |
//! | 10 | `lock`: the lock was not acquired within `--timeout`; `queue take`: no item within `--timeout` |
//! | 11 | `lock`: the lock was lost while the command ran (the command was stopped); `queue take --ack`: the item's claim was lost likewise (the item is not acked) |
//! | 12 | `elect`: the leadership was lost while the command ran (the command was stopped) |
//! | 126 | `lock`, `elect`, `queue take --ack`: the command could not be started |
//! | 127 | `lock`, `elect`, `queue take --ack`: the command was not found |
//!
//! `lock`, `elect` and `queue take --ack` otherwise exit with their command's status, 128+N if
//! the command died of signal N (also when conclave itself is stopped by signal N while waiting
//! for the lock, the leadership or an item).
//!
//! # Errors as JSON
//! With `--json`, a failure is also printed as one JSON object on stdout, as the last line
//! (after whatever the command printed: the events of `watch`, the output of `lock`'s command),
//! besides the usual line on stderr:
//!
//! ```text
//! {"error":{"code":"NONODE","code_number":-101,"context":"get /a","exit":3,"message":"node does not exist (NONODE)"}}
//! ```
//!
//! `code` is ZooKeeper's name for the result code and `code_number` its number; both are left
//! out when no ZooKeeper code is behind the failure (an invalid argument, no connection, a lock
//! timeout; `code_number` alone for a code this client has no name for). `exit` is the
//! exit code, `context` what failed (`usage` for a usage error) and `message` why, as on
//! stderr. A command run by `lock` that exits non-zero is not a failure of conclave: nothing is
//! printed.

mod connect;
mod counter;
mod elect;
mod exit;
mod leader;
mod lock;
mod members;
mod ops;
mod output;
mod queue;
mod serve;
mod services;
mod signal;
mod watch;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::connect::ConnectOpts;
use crate::exit::CliError;
use crate::output::Output;

/// Command-line grammar of `conclave`.
#[derive(Debug, Parser)]
#[command(
    name = "conclave",
    version,
    about = "Conclave: run a ZooKeeper-compatible server; read, write and watch znodes; run commands under locks; feed and drain queues; keep counters; list group members and registered services",
    after_help = exit::EXIT_CODES_HELP
)]
pub struct Cli {
    /// How to reach the servers.
    #[command(flatten, next_help_heading = "Global options")]
    pub connect: ConnectOpts,

    /// Print machine-readable JSON: one document per command, one per line for `watch`.
    /// Node data is a string when valid UTF-8, else an array of byte values; zxids and session
    /// ids are "0x..." hex strings. A failure also prints {"error": {...}} on stdout (see the
    /// end of `conclave --help`).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the embedded ZooKeeper-compatible server in the foreground until Ctrl-C or SIGTERM.
    ///
    /// It keeps all data in memory only (no snapshot, no transaction log): every node and
    /// session is gone when the process stops. For data that must survive a restart, run a real
    /// ZooKeeper ensemble; every other command talks to it the same way.
    ///
    /// Prints `listening on ADDRESS:PORT` (or `{"listening": "ADDRESS:PORT"}` with --json) to
    /// stdout once it accepts connections; logs go to stderr (filter with RUST_LOG, default
    /// `info`).
    Serve(serve::ServeArgs),
    /// A client command (see the list of commands).
    #[command(flatten)]
    Client(ops::ClientCommand),
    /// Work queues: put items, take them (at most once, or at least once with --ack), list them.
    ///
    /// The queue at PATH is Curator's SimpleDistributedQueue layout (items PATH/qn-<sequence>,
    /// their data the payload), shared with Java producers and consumers and with
    /// `conclave::queue::Queue`.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Read or update a 64-bit counter: get (the default), add N, incr, decr, set N.
    ///
    /// The counter at PATH is Curator's DistributedAtomicLong layout (8 bytes, big-endian; a
    /// missing or empty node counts as 0), shared with Java services and with
    /// `conclave::atomic::Counter`. `get` prints the value; an update prints the value after it
    /// and creates the node (with its parents) if missing. Arithmetic wraps, as Java's does.
    /// With --json: {"path", "value"} for get, {"path", "pre", "post"} for an update.
    ///
    /// An update is applied exactly once, even if its reply is lost to a broken connection: it
    /// goes in one transaction with an ephemeral marker node under `.conclave-markers` beside
    /// PATH (a node made by the first update and left in place, empty between updates), which
    /// tells after the reconnect whether it was applied. A node whose data is not a counter
    /// (neither empty nor 8 bytes) fails with exit 9 and is left unchanged.
    Counter(counter::CounterArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A usage error under --json is also reported as JSON, like every other failure.
            if e.use_stderr() && json_requested() {
                let _ = e.print();
                return CliError::usage(&e.to_string()).report_json_only();
            }
            // Prints help or version (exit 0) or the usage error (exit 2).
            e.exit()
        }
    };
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(json),
    }
}

/// Whether `--json` is among the arguments (before any `--`), for a command line that did not
/// parse.
fn json_requested() -> bool {
    std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// Sets up logging and the runtime, then runs the command.
fn run(cli: Cli) -> Result<(), CliError> {
    let mut out = Output::new(cli.json);
    match cli.command {
        Command::Serve(args) => {
            init_tracing("info");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::io("start the runtime", e))?;
            rt.block_on(serve::run(&args, &mut out))
        }
        Command::Client(cmd) => client_runtime()?.block_on(ops::run(cmd, &cli.connect, &mut out)),
        Command::Queue(cmd) => client_runtime()?.block_on(queue::run(cmd, &cli.connect, &mut out)),
        Command::Counter(args) => client_runtime()?.block_on(counter::run(&args, &cli.connect, &mut out)),
    }
}

/// Sets up logging and the runtime of a client command.
fn client_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // The client logs nothing unless asked: stderr is reserved for the one error line.
    init_tracing("off");
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| CliError::io("start the runtime", e))
}

/// Logs to stderr, filtered by `RUST_LOG` (or `default` when unset or invalid), in colour only
/// on a terminal.
fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Fails only if a subscriber is already set, which cannot happen here.
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}
