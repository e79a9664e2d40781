//! `conclave lock`: runs a command while holding a [`Mutex`], like flock(1) across machines (or
//! `etcdctl lock`). `conclave locks` (a one-shot command in `ops.rs`) shows who holds a lock and
//! who waits.
//!
//! The sequence: check the path (exit 9 before connecting), install the signal handlers, connect,
//! acquire (within `--timeout`, else exit 10 naming the holder), start the command with
//! [`TOKEN_ENV`] and [`NODE_ENV`] in its environment, then wait for whichever comes first:
//! - the command exits: release the lock (waiting for the server's answer) and exit with the
//!   command's status, 128+N if it died of signal N, as shells do;
//! - the lock may be lost ([`LockGuard::lost`]: connection lost, session ended, node deleted):
//!   send the command SIGTERM, SIGKILL once `--grace` has passed, and exit 11 with the reason
//!   once it is gone. It never runs on past the grace period without the lock.
//! - SIGINT, SIGTERM or SIGHUP reaches conclave: pass it on to the command (SIGKILL after
//!   `--grace`), wait for it, release, and exit with its status.
//!
//! The command runs in a process group of its own and the signals go to the whole group, so
//! that what the command started (`sh -c 'a; b'`, pipelines, background jobs) is stopped with
//! it, as GNU `timeout` does. And the lock outlives the whole group, as flock(1)'s outlives
//! every process that has the lock file open: once the command has exited (or died of a signal,
//! passed on or sent on a loss), any process still in its group (a `sleep 30 &` of a script, a
//! background job that ignores SIGINT) gets SIGTERM, then SIGKILL once `--grace` has passed
//! since the first stop signal, and the lock is released only when the group is empty. The exit
//! status is still the command's (11 on a loss). On Linux conclave becomes the reaper of the
//! orphans of its descendants (`PR_SET_CHILD_SUBREAPER`), so that a dead process of the group is
//! reaped at once instead of lingering as a zombie, which would still count as a member.
//! Processes that leave the group (`setsid`, daemons) are not followed, as with `timeout`.
//!
//! `--foreground` keeps the command in conclave's group, for interactive commands that read the
//! terminal (a background group cannot). What it gives up: signals go to the command alone (and
//! a Ctrl-C at the terminal reaches the command twice: from the terminal and from conclave);
//! processes it started are neither signalled on a loss nor waited for, so the lock is released
//! as soon as the command itself has exited, even if something it left in the background still
//! runs.
//!
//! A signal while connecting or waiting for the lock gives up the wait (the waiting node is
//! deleted) and exits 128+N. Nothing goes to stdout: stdin, stdout and stderr belong to the
//! command; conclave's own failures are the usual one `conclave: ...` line on stderr.
//!
//! [`run_under`] is shared: `elect` runs its command under a leadership, and `queue take --ack`
//! under a queue item's claim ([`Held`] is what they hold: the claim gives the command its
//! stdin, and ends in an ack or a release depending on the command's status).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use conclave::hold::Hold;
use conclave::lock::{participants, LossReason, Mutex};
use conclave_core::path::validate_path;
use conclave_core::Client;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::connect::ConnectOpts;
use crate::exit::{CliError, ExitClass};
use crate::signal::{self, Shutdown, Signal, Target};

/// The command's environment variable holding the fencing token of the acquisition.
pub const TOKEN_ENV: &str = "CONCLAVE_FENCING_TOKEN";

/// The command's environment variable holding the path of the lock node.
pub const NODE_ENV: &str = "CONCLAVE_LOCK_NODE";

/// How much of the command line goes into the lock node's data.
const MAX_COMMAND_IN_DATA: usize = 512;

/// Arguments of `lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// Give up if the lock is not acquired within D (exit code 10); 0 tries once without
    /// waiting. D is a number with a unit (ms, s, m, h), such as 500ms, 10s or 1m30s.
    /// [default: wait as long as it takes]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// How long the command, and the processes of its group, have to exit after SIGTERM (sent
    /// when the lock is lost, passed on from conclave, or sent to what the command left running
    /// once it exited) before they are killed with SIGKILL.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "10s")]
    pub grace: Duration,
    /// Run the command in conclave's process group, for interactive commands: it can read the
    /// terminal and gets Ctrl-C from it directly, but signals then reach only the command itself,
    /// not the processes it started, and the lock is released when the command exits even if
    /// processes it started still run. By default the command gets a process group of its own,
    /// every signal goes to the whole group, and the lock is held until the group is empty.
    #[arg(long)]
    pub foreground: bool,
    /// The lock: a node whose children are the contenders (created, as a container, if missing).
    pub path: String,
    /// The command to run while holding the lock, and its arguments (after `--` if they start
    /// with `-`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Runs `lock`.
pub async fn run(args: LockArgs, opts: &ConnectOpts) -> Result<(), CliError> {
    let context = format!("lock {}", args.path);
    validate_path(&args.path).map_err(|e| CliError::zk(context.as_str(), &e))?;
    // Before connecting: from here on a signal is handled (relayed or ends the wait), never the
    // default death that would leave a waiting node behind until the session expires.
    let mut signals = Shutdown::install_relay()?;
    let client = tokio::select! {
        client = opts.connect() => client?,
        signal = signals.received() => return Err(interrupted(&context, "the lock", signal)),
    };
    let result = hold(&client, &args, &context, &mut signals).await;
    // Ends the session: whatever lock node is left goes with it.
    client.close().await;
    result
}

/// Acquires the lock, runs the command under it and releases it.
async fn hold(client: &Client, args: &LockArgs, context: &str, signals: &mut Shutdown) -> Result<(), CliError> {
    let mutex = Mutex::new(client.clone(), &args.path).with_data(node_data(&args.command));
    let acquire = async {
        match args.timeout {
            None => mutex.lock().await.map(Some),
            // A zero timeout makes one attempt without waiting.
            Some(d) => mutex.lock_timeout(d).await,
        }
    };
    // Dropping the acquire (on a signal) deletes its waiting node.
    let acquired = tokio::select! {
        acquired = acquire => acquired.map_err(|e| CliError::recipe(context, &e))?,
        signal = signals.received() => return Err(interrupted(context, "the lock", signal)),
    };
    let Some(guard) = acquired else {
        return Err(not_acquired(client, args, context).await);
    };
    tracing::debug!(node = guard.path(), token = guard.fencing_token(), "lock acquired");
    let under = Under {
        what: "the lock",
        node: "lock",
        env: vec![(TOKEN_ENV, guard.fencing_token().to_string()), (NODE_ENV, guard.path().to_string())],
        lost: ExitClass::LockLost,
    };
    let command = CommandOpts { command: &args.command, grace: args.grace, foreground: args.foreground };
    run_under(guard, &under, &command, context, signals).await.map_err(CliError::from)
}

/// What a command runs under, as [`run_under`] watches and ends it: a [`Hold`] (a lock, a
/// leadership), or a queue item's claim (`queue.rs`), which ends in an ack or a release
/// depending on how the command exited.
pub trait Held: Sized {
    /// Whether it is held as far as this client can tell ([`Hold::is_held`]).
    fn is_held(&self) -> bool;

    /// Resolves, with the reason, once it may no longer be held ([`Hold::lost`]).
    fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static;

    /// What the command reads on its stdin: `None` for conclave's own stdin.
    fn input(&self) -> Option<Bytes> {
        None
    }

    /// Ends it once the command has ended by itself (`succeeded`: it exited 0) and its process
    /// group is gone, and waits for the server's answer. A hold is released whatever the status.
    fn end(self, succeeded: bool) -> impl Future<Output = conclave::Result<()>>;

    /// Gives it up when the command could not be started.
    fn give_up(self) -> impl Future<Output = conclave::Result<()>>;

    /// What [`Held::end`] does, in messages: `released`, `acked`.
    fn ending(succeeded: bool) -> &'static str {
        let _ = succeeded;
        "released"
    }

    /// Whether a failure of [`Held::end`] means that it had been lost (exit with the loss class
    /// of [`Under`]) rather than an error of its own (exit with the error's class).
    fn lost_by(e: &conclave::Error) -> bool {
        let _ = e;
        true
    }
}

impl Held for Hold {
    fn is_held(&self) -> bool {
        Hold::is_held(self)
    }

    fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        Hold::lost(self)
    }

    fn end(self, _succeeded: bool) -> impl Future<Output = conclave::Result<()>> {
        self.release()
    }

    fn give_up(self) -> impl Future<Output = conclave::Result<()>> {
        self.release()
    }
}

/// What a command runs under: a lock, a leadership, or a queue item's claim.
pub struct Under {
    /// What is held, in messages: `the lock`, `the leadership`, `the claim`.
    pub what: &'static str,
    /// What its node is called, in messages: `lock`, `leader`, `claim`.
    pub node: &'static str,
    /// What the command finds in its environment.
    pub env: Vec<(&'static str, String)>,
    /// The exit class of a loss while the command runs.
    pub lost: ExitClass,
}

/// The command to run and how: its arguments and the `--grace` and `--foreground` flags.
pub struct CommandOpts<'a> {
    /// The program and its arguments.
    pub command: &'a [OsString],
    /// `--grace`.
    pub grace: Duration,
    /// `--foreground`.
    pub foreground: bool,
}

/// How a command run under a hold failed.
pub enum Failure {
    /// The hold was lost before the command started, or while it ran (the command was stopped).
    Lost(CliError),
    /// Anything else, including a hold found lost only at its release, after the command ended
    /// by itself (its run is complete, but its exclusivity cannot be vouched for).
    Other(CliError),
}

impl From<Failure> for CliError {
    fn from(f: Failure) -> CliError {
        match f {
            Failure::Lost(e) | Failure::Other(e) => e,
        }
    }
}

/// Runs the command while `guard` is held, stops it if the hold may be lost, and ends the hold
/// ([`Held::end`]: releases it) once the command and its process group are gone (see the module
/// docs).
pub async fn run_under<G: Held>(
    guard: G,
    under: &Under,
    opts: &CommandOpts<'_>,
    context: &str,
    signals: &mut Shutdown,
) -> Result<(), Failure> {
    let mut lost = pin!(guard.lost());
    if !guard.is_held() {
        // Lost between the acquire and now: do not start the command at all. The loss signal
        // resolves at once in that case; the bound only keeps a surprise from hanging here.
        let reason = tokio::time::timeout(Duration::from_secs(1), &mut lost).await.unwrap_or(LossReason::Suspended);
        drop(guard);
        return Err(Failure::Lost(CliError::new(
            context,
            format!("lost {} before the command started: {}", under.what, loss_text(under, reason)),
            under.lost,
        )));
    }

    let program = &opts.command[0];
    let mut command = Command::new(program);
    command.args(&opts.command[1..]).envs(under.env.iter().map(|(k, v)| (k, v))).kill_on_drop(true);
    let input = guard.input();
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    #[cfg(unix)]
    if !opts.foreground {
        command.process_group(0);
        // So that the group's processes the command leaves behind can be reaped once dead.
        if let Err(e) = signal::adopt_orphans() {
            tracing::debug!(error = %e, "cannot become the reaper of the command's orphans");
        }
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            give_up_quietly(guard).await;
            return Err(Failure::Other(spawn_error(context, program, e)));
        }
    };
    // Written alongside, so that the command can read as it likes (a pipe holds 64 KiB); a
    // command that exits without reading it all ends the write (EPIPE).
    let feeder = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => Some(tokio::spawn(async move {
            if let Err(e) = stdin.write_all(&input).await {
                tracing::debug!(error = %e, "the command did not read all of its input");
            }
        })),
        _ => None,
    };
    let ended = supervise(child, opts.foreground, &mut lost, signals, opts.grace).await;
    if let Some(feeder) = feeder {
        // Still writing only if a process outside the command's group (one that left it) holds
        // the pipe open without reading: nobody is left to take the rest.
        feeder.abort();
    }
    let ended = match ended {
        Ok(ended) => ended,
        Err(e) => {
            drop(guard);
            return Err(Failure::Other(CliError::io(format!("{context}: wait for the command"), e)));
        }
    };

    if let Some(reason) = ended.loss {
        // The node may still exist (a connection loss the session survives): the drop queues its
        // delete, and closing the session removes it in any case.
        drop(guard);
        return Err(Failure::Lost(CliError::new(
            context,
            format!(
                "{} was lost while the command ran: {}; {}",
                under.what,
                loss_text(under, reason),
                ended.stop_story()
            ),
            under.lost,
        )));
    }
    let code = status_code(ended.status);
    if let Err(e) = guard.end(code == 0).await {
        let ending = G::ending(code == 0);
        if !G::lost_by(&e) {
            let context =
                format!("{context}: {} could not be {ending} once the command {}", under.what, describe(ended.status));
            return Err(Failure::Other(CliError::recipe(context, &e)));
        }
        // Gone before the release, perhaps while the command ran and before its loss was seen:
        // the command's exclusivity cannot be vouched for.
        return Err(Failure::Other(CliError::new(
            context,
            format!(
                "{} was lost before it was {ending} ({}); the command {}",
                under.what,
                release_text(under, &e),
                describe(ended.status)
            ),
            under.lost,
        )));
    }
    match code {
        0 => Ok(()),
        code => Err(Failure::Other(CliError::status(code))),
    }
}

/// How often the command's process group is checked for processes left behind, once the
/// command itself has exited: short enough that the lock is released within a few milliseconds
/// of the last one ending, long enough to cost nothing (two system calls).
const GROUP_POLL: Duration = Duration::from_millis(10);

/// How long processes of the group may take to disappear after SIGKILL before the lock is
/// released anyway. SIGKILL cannot be caught or ignored; only a process stuck in the kernel (an
/// I/O on a dead network file system) or a dead one nobody reaps (outside Linux, under an init
/// that does not reap) stays longer, and neither runs any more code of its own.
const AFTER_KILL: Duration = Duration::from_secs(2);

/// How the command ended.
#[derive(Debug)]
struct Ended {
    status: ExitStatus,
    /// Why the lock was lost, if it was while the command ran.
    loss: Option<LossReason>,
    /// The signal first sent to stop the command (SIGTERM on a loss, or the one relayed).
    stopped_with: Option<Signal>,
    /// The grace period, if SIGKILL had to follow it while the command itself still ran.
    killed_after: Option<Duration>,
    /// Whether processes of the command's group outlived it, and the grace period, until
    /// SIGKILL.
    left_behind_killed: bool,
}

impl Ended {
    /// What was done to the command and how it ended, for the loss message.
    fn stop_story(&self) -> String {
        let mut story = match (self.stopped_with, self.killed_after) {
            (first, Some(grace)) => format!(
                "the command did not exit within {grace:?} of {} and was killed with SIGKILL",
                first.unwrap_or(Signal::Terminate).name()
            ),
            (Some(signal), None) => format!("the command was sent {} and {}", signal.name(), describe(self.status)),
            (None, None) => format!("the command {}", describe(self.status)),
        };
        if self.left_behind_killed {
            story.push_str("; processes it left running were killed with SIGKILL after the grace period");
        }
        story
    }
}

/// Waits for the command to exit, stopping it if the lock is lost and relaying signals: to the
/// command alone in the `foreground`, else to its whole process group (which it leads). Then,
/// outside the foreground, waits for the rest of the group: processes the command started and
/// left running get SIGTERM, and SIGKILL once `grace` has passed since the first stop signal;
/// it returns only when the group is empty, so that the lock outlives every one of them.
async fn supervise(
    mut child: Child,
    foreground: bool,
    lost: &mut (impl std::future::Future<Output = LossReason> + Unpin),
    signals: &mut Shutdown,
    grace: Duration,
) -> io::Result<Ended> {
    // The group's id is its leader's pid; known before the leader is reaped.
    let group = if foreground { None } else { child.id() };
    let mut status: Option<ExitStatus> = None;
    let mut loss = None;
    let mut stopped_with = None;
    let mut kill_at: Option<Instant> = None;
    let mut killed_at: Option<Instant> = None;
    let mut killed_after = None;
    let mut left_behind = false;
    let mut left_behind_killed = false;
    let mut poll = tokio::time::interval(GROUP_POLL);
    loop {
        if let Some(status) = status {
            let rest = group.filter(|&pgid| signal::group_alive(pgid));
            let waited_out = killed_at.is_some_and(|at| at.elapsed() >= AFTER_KILL);
            if rest.is_none() || waited_out {
                if waited_out {
                    tracing::debug!("the command's process group is still there {AFTER_KILL:?} after SIGKILL");
                }
                return Ok(Ended { status, loss, stopped_with, killed_after, left_behind_killed });
            }
            if !left_behind {
                left_behind = true;
                // Unless they had SIGKILL with the command.
                if killed_at.is_none() {
                    tracing::debug!("the command left processes running in its group; stopping them");
                    send(group, Signal::Terminate);
                    kill_at.get_or_insert_with(|| Instant::now() + grace);
                }
            }
        }
        let kill = kill_at.filter(|_| killed_at.is_none());
        let deadline = async move {
            match kill {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // Stop requests (SIGTERM, relayed signals) start the grace period once; SIGKILL ends it.
        let stop = tokio::select! {
            biased;
            exited = child.wait(), if status.is_none() => {
                status = Some(exited?);
                continue;
            }
            reason = &mut *lost, if loss.is_none() => {
                tracing::debug!(%reason, "lock lost; stopping the command");
                loss = Some(reason);
                Signal::Terminate
            }
            signal = signals.received() => {
                tracing::debug!(signal = signal.name(), "relaying");
                signal
            }
            () = deadline => {
                killed_at = Some(Instant::now());
                if status.is_none() {
                    killed_after = Some(grace);
                } else {
                    left_behind_killed = true;
                }
                Signal::Kill
            }
            _ = poll.tick(), if status.is_some() => continue,
        };
        if status.is_none() {
            // `id` is `None` once the child is reaped: then there is nobody left to signal.
            if let Some(pid) = child.id() {
                let target = if foreground { Target::Process(pid) } else { Target::Group(pid) };
                if let Err(e) = signal::send(target, stop) {
                    tracing::debug!(error = %e, signal = stop.name(), "cannot signal the command; killing it");
                    // Fails only if the child is already gone, which the next wait reports.
                    let _ = child.start_kill();
                }
            }
        } else {
            send(group, stop);
        }
        if stop == Signal::Kill {
            continue;
        }
        stopped_with.get_or_insert(stop);
        kill_at.get_or_insert_with(|| Instant::now() + grace);
    }
}

/// Sends `signal` to what is left of the command's process `group` (none in the foreground).
fn send(group: Option<u32>, signal: Signal) {
    if let Some(pgid) = group {
        if let Err(e) = signal::send(Target::Group(pgid), signal) {
            // The group emptied meanwhile: the next check sees it.
            tracing::debug!(error = %e, signal = signal.name(), "cannot signal the command's process group");
        }
    }
}

/// The error for a signal that arrived before the command started: 128+N, as a shell reports a
/// process that signal N ended.
pub fn interrupted(context: &str, what: &str, signal: Signal) -> CliError {
    CliError::new(
        context,
        format!("stopped by {} while waiting for {what}", signal.name()),
        ExitClass::Signal(signal.number() as u8),
    )
}

/// The error for a lock not acquired within `--timeout`, naming the holder when it can.
async fn not_acquired(client: &Client, args: &LockArgs, context: &str) -> CliError {
    let timeout = args.timeout.unwrap_or_default();
    let mut reason = if timeout.is_zero() {
        "not acquired (--timeout 0: no waiting)".to_string()
    } else {
        format!("not acquired within {timeout:?}")
    };
    if let Ok(Ok(contenders)) = tokio::time::timeout(Duration::from_secs(2), participants(client, &args.path)).await {
        if let Some(holder) = contenders.iter().find(|p| p.holder) {
            reason.push_str(&format!(": held by session {:#x}", holder.stat.ephemeral_owner));
            let data = String::from_utf8_lossy(&holder.data);
            let data = data.trim();
            if !data.is_empty() && !data.contains(char::is_control) {
                reason.push_str(&format!(" ({data})"));
            }
        }
    }
    CliError::new(context, reason, ExitClass::LockTimeout)
}

/// The error for a command that could not be started: 127 if not found, else 126 (as shells).
fn spawn_error(context: &str, program: &OsStr, e: io::Error) -> CliError {
    let program = program.to_string_lossy();
    if e.kind() == io::ErrorKind::NotFound {
        CliError::new(context, format!("{program}: command not found"), ExitClass::CommandNotFound)
    } else {
        CliError::new(context, format!("cannot run {program}: {e}"), ExitClass::CannotRun)
    }
}

/// Gives the hold up when the command never ran; a failure changes nothing for the caller.
async fn give_up_quietly(guard: impl Held) {
    if let Err(e) = guard.give_up().await {
        tracing::debug!(error = %e, "release failed");
    }
}

/// What a loss means, told of what is held.
fn loss_text(under: &Under, reason: LossReason) -> String {
    match reason {
        LossReason::NodeDeleted => format!("the {} node was deleted", under.node),
        other => other.to_string(),
    }
}

/// Why a release failed, told of what is held.
fn release_text(under: &Under, e: &conclave::Error) -> String {
    match e {
        conclave::Error::Lost { reason, .. } => loss_text(under, *reason),
        other => other.to_string(),
    }
}

/// The exit code a shell would report for `status`: the code, or 128+N for death by signal N.
fn status_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return (code & 0xff) as u8;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128u8.saturating_add(signal as u8);
        }
    }
    1
}

/// How the command ended, in words: `exited with status 3`, `died of signal 15 (SIGTERM)`.
fn describe(status: ExitStatus) -> impl fmt::Display {
    struct Describe(ExitStatus);
    impl fmt::Display for Describe {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if let Some(code) = self.0.code() {
                return write!(f, "exited with status {code}");
            }
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(n) = self.0.signal() {
                    let name = [Signal::Hangup, Signal::Interrupt, Signal::Kill, Signal::Terminate]
                        .into_iter()
                        .find(|s| s.number() == n)
                        .map(|s| format!(" ({})", s.name()))
                        .unwrap_or_default();
                    return write!(f, "died of signal {n}{name}");
                }
            }
            write!(f, "ended ({})", self.0)
        }
    }
    Describe(status)
}

/// The lock node's data, for operators (`conclave locks`): `HOST PID COMMAND...`, the command
/// line cut to [`MAX_COMMAND_IN_DATA`] bytes.
fn node_data(command: &[OsString]) -> String {
    let line = command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let mut end = line.len().min(MAX_COMMAND_IN_DATA);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} {} {}", hostname(), std::process::id(), &line[..end])
}

/// This machine's name, as far as it can be found without a system call of its own.
fn hostname() -> String {
    let from_file = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// Parses a duration such as `500ms`, `10s`, `1.5s`, `2m` or `1h30m` (units ms, s, m, h;
/// several parts add up; exact, no floating point); a bare `0` is zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let usage = || format!("invalid duration {text:?}: expected a number and a unit (ms, s, m, h), e.g. 500ms or 10s");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut nanos: u128 = 0;
    if rest.is_empty() {
        return Err(usage());
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(usage)?;
        let after = &rest[number_len..];
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (number, unit) = (&rest[..number_len], &after[..unit_len]);
        let unit_nanos: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(usage()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits_ok = |d: &str| d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) || number.ends_with('.') {
            return Err(usage());
        }
        let whole: u128 = whole.parse().map_err(|_| usage())?;
        let scale = 10u128.pow(fraction.len() as u32);
        let fraction: u128 = if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| usage())? };
        nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(fraction * unit_nanos / scale))
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(usage)?;
        rest = &after[unit_len..];
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| usage())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.3s"), Ok(Duration::from_millis(300)));
        assert_eq!(format!("{:?}", parse_duration("300ms").unwrap_or_default()), "300ms");
        for bad in ["", "10", "s", "5x", "1..2s", "-1s", "ms10", ".5s", "5.s", " 1s", "99999999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn node_data_names_host_pid_and_command() {
        let data = node_data(&["sh".into(), "-c".into(), "echo hi".into()]);
        let mut parts = data.splitn(3, ' ');
        assert!(!parts.next().unwrap_or_default().is_empty());
        assert_eq!(parts.next(), Some(std::process::id().to_string().as_str()));
        assert_eq!(parts.next(), Some("sh -c echo hi"));
        let long = node_data(&["é".repeat(MAX_COMMAND_IN_DATA).into()]);
        assert!(long.len() < MAX_COMMAND_IN_DATA + 64, "cut on a char boundary");
    }

    #[cfg(unix)]
    #[test]
    fn statuses_map_like_a_shell() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(status_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(describe(ExitStatus::from_raw(9)).to_string(), "died of signal 9 (SIGKILL)");
        assert_eq!(describe(ExitStatus::from_raw(0)).to_string(), "exited with status 0");
    }

    #[cfg(unix)]
    #[test]
    fn the_loss_story_says_what_was_killed() {
        use std::os::unix::process::ExitStatusExt;
        let ended = |stopped_with, killed_after, left_behind_killed, raw| Ended {
            status: ExitStatus::from_raw(raw),
            loss: Some(LossReason::NodeDeleted),
            stopped_with,
            killed_after,
            left_behind_killed,
        };
        let term = Some(Signal::Terminate);
        assert_eq!(ended(term, None, false, 0).stop_story(), "the command was sent SIGTERM and exited with status 0");
        assert_eq!(
            ended(term, None, true, 0).stop_story(),
            "the command was sent SIGTERM and exited with status 0; processes it left running were killed with \
             SIGKILL after the grace period"
        );
        assert_eq!(
            ended(term, Some(Duration::from_secs(1)), false, 9).stop_story(),
            "the command did not exit within 1s of SIGTERM and was killed with SIGKILL"
        );
    }
}
