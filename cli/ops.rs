//! The client commands: their arguments ([`ClientCommand`]) and how each runs. A one-shot
//! command checks its arguments and reads its input first (a bad path fails with exit code 9
//! without touching the network), then opens a session, sends one request, closes the session
//! (so ephemeral nodes go at once) and prints the [`Reply`]. `watch` lives in `watch.rs`, `lock`
//! in `lock.rs`, `members` in `members.rs`, `services` in `services.rs`.
//!
//! Adding a command: add a variant to [`ClientCommand`], turn it into a checked [`OneShot`] in
//! [`run`] and send its request in [`OneShot::execute`]; a long-running command gets a module of
//! its own, like `watch.rs`, and [`run`] hands it over.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use conclave_core::client::MAX_TTL;
use conclave_core::path::{validate_path, validate_sequential_path};
use conclave_core::{Client, CreateMode, CreateOptions, Error};

use crate::connect::ConnectOpts;
use crate::elect::{self, ElectArgs};
use crate::exit::CliError;
use crate::leader::{self, LeaderArgs};
use crate::lock::{self, LockArgs};
use crate::members::{self, MembersArgs};
use crate::output::{Output, Reply};
use crate::services::{self, ServicesArgs};
use crate::watch::{self, WatchArgs};

/// The commands that talk to a server.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List a node's children, one per line, sorted.
    Ls {
        /// The node.
        path: String,
    },
    /// Print a node's data.
    ///
    /// The bytes are written exactly as stored (no newline is added), so `conclave get /a >
    /// file` copies the data; on a terminal a newline is added when the data does not end with
    /// one. With --json: {"path", "data", "stat"}.
    Get {
        /// The node.
        path: String,
    },
    /// Print a node's stat, one `field value` line per field.
    ///
    /// Fields: czxid, mzxid, pzxid (0x hex), ctime, mtime (ms since the epoch), version,
    /// cversion, aversion, ephemeralOwner (0x hex session id, 0x0 if persistent), dataLength,
    /// numChildren.
    Stat {
        /// The node.
        path: String,
    },
    /// Create a node and print its path (with the sequence suffix for -s).
    ///
    /// With -p, missing parent nodes are created first, like `mkdir -p` (persistent, empty, with
    /// the node's ACL); the node itself must still be new (else exit 4).
    ///
    /// An ephemeral node (-e) belongs to the session of this command, which ends when the
    /// command exits: the node is deleted right away. That is ZooKeeper's rule, not a bug; use
    /// a long-lived client to hold ephemeral nodes.
    Create(CreateArgs),
    /// Set a node's data and print its new data version.
    Set {
        /// Only if the node's data version is VERSION (else exit code 5).
        #[arg(short = 'v', long, value_name = "VERSION", allow_negative_numbers = true)]
        version: Option<i32>,
        /// The node.
        path: String,
        /// The new data; `-` reads it from stdin.
        data: String,
    },
    /// Delete a node; prints nothing. It must have no children (else exit 6), unless -r.
    ///
    /// With -r, the node's children are deleted too, and theirs (zkCli's `deleteall`): a level
    /// at a time, the deepest first. Not atomic: if it fails part way (exit 7 when a node may
    /// not be deleted), what was deleted stays deleted. The root (`/`) cannot be deleted.
    Delete {
        /// Only if the node's data version is VERSION (else exit code 5).
        #[arg(short = 'v', long, value_name = "VERSION", allow_negative_numbers = true, conflicts_with = "recursive")]
        version: Option<i32>,
        /// Delete the node's descendants too.
        #[arg(short = 'r', long)]
        recursive: bool,
        /// The node.
        path: String,
    },
    /// Print the node's events as they happen, one `EventType path` line each, until Ctrl-C
    /// or SIGTERM (exit 0).
    ///
    /// Uses a persistent watch (ZooKeeper 3.6+): NodeCreated, NodeDeleted, NodeDataChanged and
    /// NodeChildrenChanged on the node, or with --recursive NodeCreated, NodeDeleted and
    /// NodeDataChanged on the node and all its descendants. The node need not exist. Events
    /// that happen while the client is reconnecting are not replayed. With --json, one
    /// {"event", "path", "zxid"} object per line.
    ///
    /// With --tree, follows the subtree through a cache instead: `Added PATH vVERSION DATA` for
    /// every node, `Initialized`, then `Added`/`Updated`/`Removed` with the node's new state as
    /// it changes, and `Resynced possibly_missed=BOOL` after a reconnection (the cache re-reads
    /// and reports only the differences; it moves to a new session after an expiry). With
    /// --json, one {"event", "path", "data", "stat"} object per line.
    Watch(WatchArgs),
    /// Run a command while holding a lock, like flock(1) across machines.
    ///
    /// Waits for the lock on PATH (fair: first come, first served; the same lock as Apache
    /// Curator's InterProcessMutex on PATH), runs COMMAND with CONCLAVE_FENCING_TOKEN (a number
    /// that grows with every new holder; a resource can refuse writes carrying a smaller one)
    /// and CONCLAVE_LOCK_NODE (the holder's lock node, as seen through --connect) in its
    /// environment, releases the lock once it exits, and exits with its status (128+N if it
    /// died of signal N). The lock node's data is `HOST PID COMMAND`, shown by `conclave locks`.
    ///
    /// If the lock may be lost while the command runs (the connection to ZooKeeper is lost, the
    /// session ends, or someone deletes the lock node), the command gets SIGTERM, then SIGKILL
    /// after --grace, and conclave exits 11 saying why. SIGINT, SIGTERM and SIGHUP sent to
    /// conclave are passed on to the command (SIGKILL follows after --grace), and the lock is
    /// released once it has exited. The command runs in a process group of its own, and the
    /// signals go to the whole group (see --foreground). Like flock(1), the lock outlives
    /// everything the command started: once the command has exited or been stopped, processes
    /// still in its group (a background `sleep &`) get SIGTERM, then SIGKILL after --grace, and
    /// the lock is released only once they are all gone; the exit status stays the command's.
    /// stdin, stdout and stderr are the command's; conclave writes only its own errors, to
    /// stderr.
    ///
    /// Exit codes: 10 not acquired within --timeout, 11 lock lost, 126 command not runnable,
    /// 127 command not found, 128+N stopped by signal N while waiting; otherwise the command's.
    Lock(LockArgs),
    /// List who holds a lock and who waits for it, one line each.
    ///
    /// The holder first, then the waiters in the order they will get the lock:
    /// `holder|waiting SEQUENCE NODE SESSION FENCING_TOKEN DATA` (the session in 0x hex, the
    /// fencing token in decimal as `lock` passes it on, the node's data with control characters
    /// escaped). Works for `conclave lock`, Curator's InterProcessMutex and read-write locks.
    /// Prints nothing (exit 0) if nobody holds the lock, and fails with exit 3 (NONODE) if PATH
    /// does not exist (a mistyped path, or a lock directory the server removed once it was
    /// free: `conclave lock` makes it a container). With --json, one array of {"role", "holder",
    /// "sequence", "node", "path", "kind", "session", "fencing_token", "data"}.
    Locks {
        /// The lock path.
        path: String,
    },
    /// Run a command while leading an election, like `etcdctl elect`.
    ///
    /// Campaigns for the leadership of PATH as participant ID (the same election as Apache
    /// Curator's LeaderLatch on PATH; ID is shown by `conclave leader`), runs COMMAND once
    /// elected with CONCLAVE_EPOCH (the leadership's epoch, greater for every new leader: a
    /// resource can refuse writes carrying a smaller one) and CONCLAVE_LEADER_NODE (the leader's
    /// node) in its environment, resigns once it exits, and exits with its status.
    ///
    /// If the leadership may be lost while the command runs (the connection to ZooKeeper is
    /// lost, the session ends, or someone deletes the leader node), the command gets SIGTERM,
    /// then SIGKILL after --grace, and conclave exits 12 saying why, or with --requeue campaigns
    /// again and runs the command anew once elected. Signals, process groups and --foreground
    /// work as for `lock`.
    ///
    /// Exit codes: 12 leadership lost, 126 command not runnable, 127 command not found, 128+N
    /// stopped by signal N while campaigning; otherwise the command's.
    Elect(ElectArgs),
    /// Print who leads an election: `ID EPOCH NODE`, or `-` when nobody does (--watch).
    ///
    /// Works for conclave's elections and Curator's LeaderLatch and LeaderSelector on PATH. ID is
    /// the leader's participant id (its node's data, control characters escaped), EPOCH its
    /// epoch (its node's czxid, greater for every new leader), NODE its node's name. Prints
    /// nothing (exit 0) if nobody leads, and fails with exit 3 if PATH does not exist. With
    /// --watch, prints the leader at once and again at every change (`-` when nobody leads)
    /// until Ctrl-C or SIGTERM (exit 0). With --json, one {"path", "leader"} document per line,
    /// leader being {"id", "epoch", "node", "path"} or null.
    Leader(LeaderArgs),
    /// List a group's members, one `ID DATA` line each, sorted by id.
    ///
    /// Works for conclave's GroupMember and Curator's GroupMember on PATH (member ID is the
    /// ephemeral node PATH/ID, its data the member's data); reads the group without joining it.
    /// The data has control characters escaped (just `ID` when it is empty). Prints nothing
    /// (exit 0) for an empty group, and fails with exit 3 (NONODE) if PATH does not exist. With
    /// --json, one array of {"id", "path", "data", "stat"}.
    Members(MembersArgs),
    /// List the services registered under BASE (`NAME COUNT` lines), or one service's instances.
    ///
    /// Works for conclave's discovery and Curator's curator-x-discovery on BASE (instance ID of
    /// service NAME is the node BASE/NAME/ID, its data the instance as JSON). Without NAME: one
    /// `NAME COUNT` line per service, COUNT its instances. With NAME: one `ID ADDRESS[:PORT]
    /// [URI]` line per instance (ADDRESS `-` when it has none, PORT its port or else its SSL
    /// port, URI built from its uriSpec when it has one). Nodes whose data is not an instance
    /// are left out. Fails with exit 3 (NONODE) if BASE (or BASE/NAME) does not exist. With
    /// --json, one array of {"name", "instances"}, or of the instances' JSON objects as stored.
    Services(ServicesArgs),
}

/// Arguments of `create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Ephemeral: deleted when this command's session ends, i.e. as soon as it exits.
    #[arg(short = 'e', long)]
    pub ephemeral: bool,
    /// Sequential: the server appends a 10-digit counter to the name.
    #[arg(short = 's', long)]
    pub sequential: bool,
    /// Create missing parent nodes first (persistent, empty), like `mkdir -p`.
    #[arg(short = 'p', long)]
    pub parents: bool,
    /// Container: the server deletes it once it has had children and has none left.
    #[arg(long, conflicts_with_all = ["ephemeral", "sequential", "ttl"])]
    pub container: bool,
    /// Time to live in ms: the server deletes the node when it has no children and was not
    /// modified for that long (needs a server with TTL nodes enabled).
    #[arg(long, value_name = "MS", conflicts_with = "ephemeral",
          value_parser = clap::value_parser!(u64).range(1..=MAX_TTL.as_millis() as u64))]
    pub ttl: Option<u64>,
    /// The node to create; with -s, the prefix of its name.
    pub path: String,
    /// The initial data (default empty); `-` reads it from stdin.
    pub data: Option<String>,
}

impl CreateArgs {
    /// The create options the flags ask for.
    pub fn options(&self) -> CreateOptions {
        let mode = match (self.container, self.ttl.is_some(), self.ephemeral, self.sequential) {
            (true, ..) => CreateMode::Container,
            (_, true, _, false) => CreateMode::PersistentWithTtl,
            (_, true, _, true) => CreateMode::PersistentSequentialWithTtl,
            (_, _, true, false) => CreateMode::Ephemeral,
            (_, _, true, true) => CreateMode::EphemeralSequential,
            (_, _, false, true) => CreateMode::PersistentSequential,
            (_, _, false, false) => CreateMode::Persistent,
        };
        let options = CreateOptions::new(mode);
        match self.ttl {
            Some(ms) => options.ttl(Duration::from_millis(ms)),
            None => options,
        }
    }
}

/// Runs a client command.
pub async fn run(cmd: ClientCommand, opts: &ConnectOpts, out: &mut Output) -> Result<(), CliError> {
    let op = match cmd {
        ClientCommand::Ls { path } => OneShot::Ls(checked("ls", path)?),
        ClientCommand::Get { path } => OneShot::Get(checked("get", path)?),
        ClientCommand::Stat { path } => OneShot::Stat(checked("stat", path)?),
        ClientCommand::Create(args) => {
            let context = format!("create {}", args.path);
            let valid = if args.sequential { validate_sequential_path(&args.path) } else { validate_path(&args.path) };
            valid.map_err(|e| CliError::zk(context.as_str(), &e))?;
            let data = read_data(args.data.as_deref(), &context)?;
            OneShot::Create { options: args.options(), parents: args.parents, path: args.path, data }
        }
        ClientCommand::Set { version, path, data } => {
            let path = checked("set", path)?;
            let data = read_data(Some(&data), &format!("set {path}"))?;
            OneShot::Set { path, data, version }
        }
        ClientCommand::Delete { version, recursive, path } => {
            OneShot::Delete { path: checked("delete", path)?, version, recursive }
        }
        ClientCommand::Watch(args) => return watch::run(&args, opts, out).await,
        ClientCommand::Lock(args) => return lock::run(args, opts).await,
        ClientCommand::Leader(args) => return leader::run(&args, opts, out).await,
        ClientCommand::Elect(args) => return elect::run(args, opts).await,
        ClientCommand::Members(args) => return members::run(&args, opts, out).await,
        ClientCommand::Services(args) => return services::run(&args, opts, out).await,
        ClientCommand::Locks { path } => OneShot::Locks(checked("locks", path)?),
    };
    let client = opts.connect().await?;
    // The client bounds the wait (its request timeout is the session timeout).
    let result = op.execute(&client).await;
    client.close().await;
    let reply = result.map_err(|e| CliError::zk(op.context(), &e))?;
    out.reply(&reply)
}

/// `path` if it is a valid znode path, else the error of `verb path` (exit code 9), so that a
/// bad path fails before connecting.
fn checked(verb: &str, path: String) -> Result<String, CliError> {
    match validate_path(&path) {
        Ok(()) => Ok(path),
        Err(e) => Err(CliError::zk(format!("{verb} {path}"), &e)),
    }
}

/// The data argument as bytes: empty when absent, stdin for `-` (`create`, `set`, `queue put`).
pub fn read_data(arg: Option<&str>, context: &str) -> Result<Bytes, CliError> {
    match arg {
        None => Ok(Bytes::new()),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::io(format!("{context}: read stdin"), e))?;
            Ok(buf.into())
        }
        Some(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
    }
}

/// A one-shot command with its arguments checked and its data read: one request.
#[derive(Debug)]
enum OneShot {
    Ls(String),
    Get(String),
    Stat(String),
    Create { path: String, data: Bytes, options: CreateOptions, parents: bool },
    Set { path: String, data: Bytes, version: Option<i32> },
    Delete { path: String, version: Option<i32>, recursive: bool },
    Locks(String),
}

impl OneShot {
    /// What the command does, for error messages (`get /a`).
    fn context(&self) -> String {
        match self {
            OneShot::Ls(path) => format!("ls {path}"),
            OneShot::Get(path) => format!("get {path}"),
            OneShot::Stat(path) => format!("stat {path}"),
            OneShot::Create { path, .. } => format!("create {path}"),
            OneShot::Set { path, .. } => format!("set {path}"),
            OneShot::Delete { path, .. } => format!("delete {path}"),
            OneShot::Locks(path) => format!("locks {path}"),
        }
    }

    /// Sends the request and shapes its result.
    async fn execute(&self, client: &Client) -> Result<Reply, Error> {
        Ok(match self {
            OneShot::Ls(path) => {
                let mut children = client.get_children(path).await?;
                children.sort();
                Reply::Children { path: path.clone(), children }
            }
            OneShot::Get(path) => {
                let (data, stat) = client.get_data(path).await?;
                Reply::Data { path: path.clone(), data, stat }
            }
            OneShot::Stat(path) => {
                let stat = client.exists(path).await?.ok_or(Error::NoNode)?;
                Reply::Stat { path: path.clone(), stat }
            }
            OneShot::Create { path, data, options, parents } => {
                let (path, stat) = if *parents {
                    client.create_all(path, data, options.clone()).await?
                } else {
                    client.create(path, data, options.clone()).await?
                };
                Reply::Created { path, stat }
            }
            OneShot::Set { path, data, version } => {
                let stat = client.set_data(path, data, *version).await?;
                Reply::Set { path: path.clone(), stat }
            }
            OneShot::Delete { path, version, recursive } => {
                if *recursive {
                    client.delete_all(path).await?;
                } else {
                    client.delete(path, *version).await?;
                }
                Reply::Deleted { path: path.clone() }
            }
            OneShot::Locks(path) => {
                // Inspection reports only the client's errors; a recipe condition would be a bug.
                let participants = conclave::lock::participants(client, path).await.map_err(|e| match e {
                    conclave::Error::Zk(e) => e,
                    other => Error::Protocol(other.to_string()),
                })?;
                // The recipe lists a missing lock directory as a lock nobody holds; a path
                // that is not there is worth saying so (a typo shows at once).
                if participants.is_empty() && client.exists(path).await?.is_none() {
                    return Err(Error::NoNode);
                }
                Reply::Locks { path: path.clone(), participants }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(flags: (bool, bool, bool, Option<u64>)) -> CreateMode {
        let (ephemeral, sequential, container, ttl) = flags;
        CreateArgs { ephemeral, sequential, parents: false, container, ttl, path: "/a".into(), data: None }
            .options()
            .mode
    }

    #[test]
    fn create_flags_pick_the_mode() {
        assert_eq!(create((false, false, false, None)), CreateMode::Persistent);
        assert_eq!(create((false, true, false, None)), CreateMode::PersistentSequential);
        assert_eq!(create((true, false, false, None)), CreateMode::Ephemeral);
        assert_eq!(create((true, true, false, None)), CreateMode::EphemeralSequential);
        assert_eq!(create((false, false, true, None)), CreateMode::Container);
        assert_eq!(create((false, false, false, Some(5))), CreateMode::PersistentWithTtl);
        assert_eq!(create((false, true, false, Some(5))), CreateMode::PersistentSequentialWithTtl);
    }
}
