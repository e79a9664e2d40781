//! Behaviour tests of the `conclave` command line: they run the real binary
//! (`CARGO_BIN_EXE_conclave`) and check what scripts rely on: its output, its JSON documents and
//! its exit codes.
//!
//! Tests that state ZooKeeper semantics run twice through the [`both!`] macro: against an
//! embedded server started in the test process, and against the real ZooKeeper shared by this
//! test binary (see `support::real_zookeeper`; without one that variant prints one line and
//! passes). Each
//! test works under a chroot of its own (`/cli-dev/t-<test>-<pid>-<n>`), which the CLI reaches
//! through its `--connect host:port/chroot`. Children the tests start are killed by a guard
//! when the test ends, even when it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conclave::{Acl, Client, CreateMode, CreateOptions, Id, Perms, Server, ServerHandle};
use conclave_core::Error;
use serde_json::{json, Value};

/// How long a child may take to do what a test waits for before the test fails (generous for
/// slow CI machines; the tests normally take milliseconds).
const PATIENCE: Duration = Duration::from_secs(20);

/// The exit codes documented in `conclave --help`.
mod code {
    pub const USAGE: i32 = 2;
    pub const NO_NODE: i32 = 3;
    pub const NODE_EXISTS: i32 = 4;
    pub const BAD_VERSION: i32 = 5;
    pub const NOT_EMPTY: i32 = 6;
    pub const AUTH: i32 = 7;
    pub const CONNECTION: i32 = 8;
    pub const INVALID: i32 = 9;
    pub const LOCK_TIMEOUT: i32 = 10;
    pub const LOCK_LOST: i32 = 11;
    pub const LEADERSHIP_LOST: i32 = 12;
    pub const NOT_FOUND: i32 = 127;
    /// 128 + SIGTERM.
    pub const SIGTERM: i32 = 143;
}

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

/// One test's server and chroot, plus an in-process client for setting the scene.
struct Zk {
    server: Option<ServerHandle>,
    /// `host:port` of the server.
    hosts: String,
    /// The test's chroot (a node under `/cli-dev`).
    root: String,
    /// A client of the chroot, for the test's own reads and writes.
    client: Client,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Zk {
    /// A fresh embedded server.
    async fn embedded(name: &str) -> Zk {
        let server = Server::builder().start().await.expect("start the embedded server");
        let hosts = server.connect_string();
        Zk::with(Some(server), hosts, name).await
    }

    /// The real ZooKeeper shared by this binary's tests, if there is one.
    async fn real(name: &str) -> Option<Zk> {
        let hosts =
            tokio::task::spawn_blocking(crate::support::real_zookeeper).await.expect("launch the real ZooKeeper")?;
        Some(Zk::with(None, hosts, name).await)
    }

    async fn with(server: Option<ServerHandle>, hosts: String, name: &str) -> Zk {
        let root = format!("/cli-dev/t-{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let admin = Client::connect(&hosts).await.expect("connect to the test server");
        for path in ["/cli-dev", root.as_str()] {
            match admin.create(path, b"", CreateMode::Persistent).await {
                Ok(_) | Err(Error::NodeExists) => {}
                Err(e) => panic!("create {path}: {e}"),
            }
        }
        admin.close().await;
        let client = Client::connect(&format!("{hosts}{root}")).await.expect("connect to the test chroot");
        Zk { server, hosts, root, client }
    }

    /// The `--connect` value for the test's chroot.
    fn connect(&self) -> String {
        format!("{}{}", self.hosts, self.root)
    }

    /// `conclave --connect <chroot> args...`, not yet started.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = conclave(&["--connect", &self.connect()]);
        cmd.args(args);
        cmd
    }

    /// Runs `conclave --connect <chroot> args...` to completion.
    async fn cli(&self, args: &[&str]) -> Run {
        run(self.command(args), None).await
    }

    /// Starts `conclave --connect <chroot> args...` with stdout and stderr piped.
    fn spawn(&self, args: &[&str]) -> Guard {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        Guard::spawn(cmd)
    }

    /// As [`Zk::cli`], with `input` on stdin.
    async fn cli_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run(self.command(args), Some(input.to_vec())).await
    }

    /// Removes the test's nodes (a real server outlives the test) and stops the server.
    async fn finish(self) {
        remove_tree(&self.client, "/").await;
        self.client.close().await;
        let admin = Client::connect(&self.hosts).await.expect("reconnect for cleanup");
        let _ = admin.delete(&self.root, None).await;
        admin.close().await;
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

/// Deletes everything below `path` (not `path` itself).
async fn remove_tree(client: &Client, path: &str) {
    for child in client.get_children(path).await.unwrap_or_default() {
        let _ = client.delete_all(&conclave::path::join(path, &child)).await;
    }
}

/// Declares a test `name::embedded` and a test `name::real` running `async fn name(Zk)`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                let zk = super::Zk::embedded(stringify!($name)).await;
                super::$name(&zk).await;
                zk.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn real() {
                if let Some(zk) = super::Zk::real(stringify!($name)).await {
                    super::$name(&zk).await;
                    zk.finish().await;
                }
            }
        }
    };
}

/// The outcome of one CLI run.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    /// Stdout as text.
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts success and gives stdout as text.
    fn ok(&self) -> String {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        assert_eq!(self.stderr, "", "nothing on stderr on success");
        self.out()
    }

    /// Asserts the exit code and the one error line, which must contain `needle`.
    fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "exit code: {self:?}");
        assert!(self.stderr.starts_with("conclave: "), "error line: {self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one error line: {self:?}");
        assert!(self.stderr.contains(needle), "error line should mention {needle:?}: {self:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout on failure: {self:?}");
    }

    /// Asserts a failure under `--json`: the exit code and the one error line as
    /// [`Run::fails`], and on stdout one JSON object `{"error": {...}}` with the same exit code
    /// and context and message as the error line; gives the inner object.
    fn fails_json(&self, code: i32, needle: &str) -> Value {
        assert_eq!(self.code, code, "exit code: {self:?}");
        assert!(self.stderr.starts_with("conclave: ") && self.stderr.lines().count() == 1, "error line: {self:?}");
        assert!(self.stderr.contains(needle), "error line should mention {needle:?}: {self:?}");
        let out = self.out();
        assert_eq!(out.lines().count(), 1, "one JSON line on stdout: {self:?}");
        let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"));
        let error = doc["error"].clone();
        assert_eq!(error["exit"], code, "{doc}");
        let (context, message) = (error["context"].as_str(), error["message"].as_str());
        let line = format!("conclave: {}: {}\n", context.unwrap_or_default(), message.unwrap_or_default());
        assert_eq!(line, self.stderr, "the JSON says what the error line says: {doc}");
        error
    }

    /// Asserts success and parses stdout as one JSON document.
    fn json(&self) -> Value {
        serde_json::from_str(&self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// `conclave args...` with a clean environment, not yet started.
fn conclave(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conclave"));
    cmd.args(args).env_remove("CONCLAVE_CONNECT").env_remove("RUST_LOG").stdin(Stdio::null());
    cmd
}

/// Runs a command to completion off the async workers (the embedded server runs on them).
async fn run(mut cmd: Command, input: Option<Vec<u8>>) -> Run {
    tokio::task::spawn_blocking(move || {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = Guard::spawn(cmd);
        if let (Some(input), Some(mut stdin)) = (input, child.0.stdin.take()) {
            stdin.write_all(&input).expect("write stdin");
        }
        let status = child.wait(PATIENCE);
        let (stdout, stderr) = child.drain();
        Run { code: status.code().unwrap_or(-1), stdout, stderr: String::from_utf8_lossy(&stderr).into_owned() }
    })
    .await
    .expect("the CLI runner panicked")
}

/// A child process that is killed and reaped when the guard drops.
struct Guard(Child);

impl Guard {
    fn spawn(mut cmd: Command) -> Guard {
        Guard(cmd.spawn().expect("start conclave"))
    }

    /// Sends SIGTERM (with `kill`, which every Unix has).
    fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the exit, failing the test after `patience`.
    fn wait(&mut self, patience: Duration) -> ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait for conclave") {
                return status;
            }
            assert!(Instant::now() < deadline, "conclave did not exit within {patience:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the child has exited.
    fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }

    /// Everything left on stdout and stderr (call after the exit).
    fn drain(&mut self) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut s) = self.0.stdout.take() {
            let _ = s.read_to_end(&mut out);
        }
        if let Some(mut s) = self.0.stderr.take() {
            let _ = s.read_to_end(&mut err);
        }
        (out, err)
    }

    /// A channel receiving the child's stdout line by line (from a reader thread).
    fn lines(&mut self) -> mpsc::Receiver<String> {
        let stdout = self.0.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits (off the async workers) for the child to exit; gives its status, stdout and stderr.
async fn finished(mut child: Guard) -> (ExitStatus, String, String) {
    tokio::task::spawn_blocking(move || {
        let status = child.wait(PATIENCE);
        let (out, err) = child.drain();
        (status, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
    })
    .await
    .expect("the waiter panicked")
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------------------------
// Commands against a server (both backends)
// ---------------------------------------------------------------------------------------------

both!(round_trip);
/// create/get/set/stat/ls/delete print what the help promises, and `-v` is ZooKeeper's
/// conditional update (Programmer's Guide, "ZooKeeper Data Model": versions and conditional
/// updates; "Sequence Nodes": the 10-digit counter).
async fn round_trip(zk: &Zk) {
    assert_eq!(zk.cli(&["create", "/a", "hello"]).await.ok(), "/a\n");
    assert_eq!(zk.cli(&["get", "/a"]).await.ok(), "hello", "data is written exactly, without a newline");
    assert_eq!(zk.cli(&["set", "/a", "two"]).await.ok(), "1\n");
    zk.cli(&["set", "-v", "0", "/a", "three"]).await.fails(code::BAD_VERSION, "set /a: version mismatch (BADVERSION)");
    assert_eq!(zk.cli(&["set", "--version", "1", "/a", "three"]).await.ok(), "2\n");
    assert_eq!(zk.cli(&["get", "/a"]).await.ok(), "three");

    let stat = zk.cli(&["stat", "/a"]).await.ok();
    let fields: Vec<(&str, &str)> = stat.lines().filter_map(|l| l.split_once(' ')).collect();
    let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "czxid",
            "mzxid",
            "pzxid",
            "ctime",
            "mtime",
            "version",
            "cversion",
            "aversion",
            "ephemeralOwner",
            "dataLength",
            "numChildren"
        ]
    );
    let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    assert_eq!(field("version"), Some("2"));
    assert_eq!(field("dataLength"), Some("5"));
    assert_eq!(field("ephemeralOwner"), Some("0x0"));
    assert!(field("czxid").is_some_and(|v| v.starts_with("0x")), "{stat}");

    let first = zk.cli(&["create", "-s", "/a/item-"]).await.ok();
    let second = zk.cli(&["create", "--sequential", "/a/item-", "x"]).await.ok();
    assert!(first.starts_with("/a/item-") && first.len() == "/a/item-0000000000\n".len(), "{first:?}");
    assert!(second > first, "sequence numbers grow: {first:?} then {second:?}");
    zk.cli(&["create", "/a/b"]).await.ok();
    let listing = zk.cli(&["ls", "/a"]).await.ok();
    let mut expected = ["b".to_string(), first.trim()[3..].to_string(), second.trim()[3..].to_string()];
    expected.sort();
    assert_eq!(listing, expected.iter().map(|c| format!("{c}\n")).collect::<String>(), "sorted, one per line");

    zk.cli(&["delete", "/a/b", "-v", "7"]).await.fails(code::BAD_VERSION, "(BADVERSION)");
    assert_eq!(zk.cli(&["delete", "-v", "0", "/a/b"]).await.ok(), "", "delete prints nothing");
    zk.cli(&["get", "/a/b"]).await.fails(code::NO_NODE, "get /a/b: node does not exist (NONODE)");
}

both!(error_exit_codes);
/// Each class of failure has its documented exit code and one `conclave: <what>: <why>` line
/// (the error codes of the Programmer's Guide, "ZooKeeper Data Model").
async fn error_exit_codes(zk: &Zk) {
    zk.cli(&["get", "/missing"]).await.fails(code::NO_NODE, "get /missing: node does not exist (NONODE)");
    zk.cli(&["stat", "/missing"]).await.fails(code::NO_NODE, "(NONODE)");
    zk.cli(&["ls", "/missing"]).await.fails(code::NO_NODE, "(NONODE)");
    zk.cli(&["create", "/missing/child"]).await.fails(code::NO_NODE, "create /missing/child");
    zk.cli(&["set", "/missing", "x"]).await.fails(code::NO_NODE, "(NONODE)");

    zk.cli(&["create", "/p"]).await.ok();
    zk.cli(&["create", "/p"]).await.fails(code::NODE_EXISTS, "create /p: node already exists (NODEEXISTS)");
    zk.cli(&["create", "/p/c"]).await.ok();
    zk.cli(&["delete", "/p"]).await.fails(code::NOT_EMPTY, "delete /p: node has children (NOTEMPTY)");
    zk.cli(&["set", "-v", "3", "/p", "x"]).await.fails(code::BAD_VERSION, "(BADVERSION)");
}

both!(no_auth_and_auth_flag);
/// A node whose ACL names a digest identity is unreadable without it (exit 7) and readable
/// with `--auth digest:user:password` (Programmer's Guide, "ZooKeeper access control using
/// ACLs": the digest scheme).
async fn no_auth_and_auth_flag(zk: &Zk) {
    let acl = vec![Acl::new(Perms::ALL, Id::digest("cli", "secret"))];
    zk.client
        .create("/private", b"s3", CreateOptions::new(CreateMode::Persistent).acl(acl))
        .await
        .expect("create the protected node");
    zk.cli(&["get", "/private"]).await.fails(code::AUTH, "get /private: not authorized (NOAUTH)");
    assert_eq!(zk.cli(&["--auth", "digest:cli:secret", "get", "/private"]).await.ok(), "s3");
}

both!(json_documents);
/// `--json` prints one parseable document per command with the documented fields; data is a
/// string when UTF-8 and an array of bytes otherwise; ids are 0x hex strings.
async fn json_documents(zk: &Zk) {
    let created = zk.cli(&["--json", "create", "-s", "/j-", "text"]).await.json();
    let path = created["path"].as_str().expect("path").to_string();
    assert!(path.starts_with("/j-") && path.len() == 13, "{created}");
    assert_eq!(created["stat"]["version"], 0);

    let got = zk.cli(&["get", &path, "--json"]).await.json();
    assert_eq!(got["path"], path.as_str());
    assert_eq!(got["data"], "text");
    let stat = got["stat"].as_object().expect("stat object");
    for name in ["czxid", "mzxid", "pzxid", "ephemeralOwner"] {
        assert!(stat[name].as_str().is_some_and(|v| v.starts_with("0x")), "{name}: {got}");
    }
    for name in ["ctime", "mtime", "version", "cversion", "aversion", "dataLength", "numChildren"] {
        assert!(stat[name].is_i64(), "{name}: {got}");
    }
    assert_eq!(stat.len(), 11);
    assert_eq!(stat["dataLength"], 4);

    let binary = [0xff, 0x00, b'a'];
    zk.cli_stdin(&["create", "/bin", "-"], &binary).await.ok();
    assert_eq!(zk.cli(&["get", "/bin"]).await.stdout, binary, "stdin data is stored exactly");
    let got = zk.cli(&["--json", "get", "/bin"]).await.json();
    assert_eq!(got["data"], serde_json::json!([255, 0, 97]));

    let set = zk.cli(&["--json", "set", "/bin", "new"]).await.json();
    assert_eq!((set["path"].as_str(), set["version"].as_i64()), (Some("/bin"), Some(1)));
    let stat = zk.cli(&["--json", "stat", "/bin"]).await.json();
    assert_eq!(stat["stat"]["dataLength"], 3);
    let listed = zk.cli(&["--json", "ls", "/"]).await.json();
    assert_eq!(listed["children"], serde_json::json!(["bin", &path[1..]]));
    let deleted = zk.cli(&["--json", "delete", "/bin"]).await.json();
    assert_eq!(deleted["path"], "/bin");
}

both!(json_errors);
/// Under `--json` a failure is also one JSON object on stdout, with ZooKeeper's code name and
/// number when there is one, the exit code, and the context and message of the error line.
async fn json_errors(zk: &Zk) {
    let e = zk.cli(&["--json", "get", "/missing"]).await.fails_json(code::NO_NODE, "get /missing");
    assert_eq!((e["code"].as_str(), e["code_number"].as_i64()), (Some("NONODE"), Some(-101)), "{e}");
    assert_eq!(
        (e["context"].as_str(), e["message"].as_str()),
        (Some("get /missing"), Some("node does not exist (NONODE)"))
    );

    zk.cli(&["create", "/p"]).await.ok();
    zk.cli(&["create", "/p/c"]).await.ok();
    let e = zk.cli(&["create", "/p", "--json"]).await.fails_json(code::NODE_EXISTS, "create /p");
    assert_eq!((e["code"].as_str(), e["code_number"].as_i64()), (Some("NODEEXISTS"), Some(-110)), "{e}");
    let e = zk.cli(&["--json", "delete", "/p"]).await.fails_json(code::NOT_EMPTY, "delete /p");
    assert_eq!((e["code"].as_str(), e["code_number"].as_i64()), (Some("NOTEMPTY"), Some(-111)), "{e}");
    let e = zk.cli(&["--json", "set", "-v", "9", "/p", "x"]).await.fails_json(code::BAD_VERSION, "set /p");
    assert_eq!(e["code"], "BADVERSION", "{e}");

    // No ZooKeeper code behind these: no code fields.
    let e = zk.cli(&["--json", "get", "relative"]).await.fails_json(code::INVALID, "get relative: invalid path");
    assert_eq!((e.get("code"), e.get("code_number")), (None, None), "{e}");
    let e = zk.cli(&["--json", "delete", "-r", "/"]).await.fails_json(code::INVALID, "delete /");
    assert_eq!((e.get("code"), e.get("code_number")), (None, None), "{e}");
}

both!(create_parents_and_delete_recursive);
/// `create -p` creates the missing parents too (empty), like `mkdir -p`, and `delete -r` a node
/// with its whole subtree (zkCli's `deleteall`); the node itself must be new for `create -p`
/// and exist for `delete -r`.
async fn create_parents_and_delete_recursive(zk: &Zk) {
    assert_eq!(zk.cli(&["create", "-p", "/a/b/c", "hello"]).await.ok(), "/a/b/c\n");
    assert_eq!(zk.cli(&["get", "/a/b/c"]).await.ok(), "hello");
    assert_eq!(zk.cli(&["get", "/a/b"]).await.ok(), "", "parents are empty");
    zk.cli(&["create", "-p", "/a/b/c"]).await.fails(code::NODE_EXISTS, "create /a/b/c: node already exists");
    assert_eq!(zk.cli(&["create", "--parents", "-s", "/q/r/item-"]).await.ok(), "/q/r/item-0000000000\n");
    let created = zk.cli(&["--json", "create", "-p", "/a/x/y", "v"]).await.json();
    assert_eq!(created["path"], "/a/x/y");
    zk.cli(&["create", "/m/n"]).await.fails(code::NO_NODE, "create /m/n: node does not exist (NONODE)");

    zk.cli(&["delete", "/a"]).await.fails(code::NOT_EMPTY, "delete /a: node has children (NOTEMPTY)");
    assert_eq!(zk.cli(&["delete", "-r", "/a"]).await.ok(), "", "delete -r prints nothing");
    zk.cli(&["get", "/a"]).await.fails(code::NO_NODE, "(NONODE)");
    assert_eq!(zk.cli(&["ls", "/"]).await.ok(), "q\n", "only /a's subtree went");
    let deleted = zk.cli(&["--json", "delete", "--recursive", "/q"]).await.json();
    assert_eq!(deleted["path"], "/q");
    zk.cli(&["delete", "-r", "/missing"]).await.fails(code::NO_NODE, "delete /missing: node does not exist (NONODE)");
    zk.cli(&["delete", "-r", "/"]).await.fails(code::INVALID, "delete /: ");
    assert_eq!(zk.cli(&["delete", "-r", "-v", "1", "/x"]).await.code, code::USAGE, "no version with -r");
}

both!(ephemeral_goes_with_the_command);
/// An ephemeral node belongs to the CLI's session, which the CLI closes before exiting, so the
/// node is gone as soon as the command returns (Programmer's Guide, "Ephemeral Nodes").
async fn ephemeral_goes_with_the_command(zk: &Zk) {
    let path = zk.cli(&["create", "-e", "-s", "/e-"]).await.ok();
    assert!(path.starts_with("/e-"), "{path:?}");
    zk.cli(&["stat", path.trim()]).await.fails(code::NO_NODE, "(NONODE)");
}

both!(watch_once_prints_the_event);
/// `watch --once` prints the first event on the node as `EventType path` and exits 0
/// (Programmer's Guide, "ZooKeeper Watches": persistent watches, 3.6+).
async fn watch_once_prints_the_event(zk: &Zk) {
    zk.client.create("/w", b"0", CreateMode::Persistent).await.expect("create /w");
    let mut cmd = zk.command(&["watch", "--once", "/w"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut watch = Guard::spawn(cmd);
    // The watch is in place some time after the process starts: change the node until the
    // watcher reports a change.
    let deadline = Instant::now() + PATIENCE;
    while !watch.exited() {
        assert!(Instant::now() < deadline, "watch --once saw no event");
        zk.client.set_data("/w", b"1", None).await.expect("set /w");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, out, err) = finished(watch).await;
    assert!(status.success(), "{status:?}: {err}");
    assert_eq!(out, "NodeDataChanged /w\n");
}

both!(watch_tree_once_prints_the_tree);
/// `watch --tree --once` prints every node of the subtree (data and version) then
/// `Initialized`, and exits 0.
async fn watch_tree_once_prints_the_tree(zk: &Zk) {
    zk.client.create("/t", b"root", CreateMode::Persistent).await.expect("create /t");
    zk.client.create("/t/a", b"one", CreateMode::Persistent).await.expect("create /t/a");
    zk.client.create("/t/a/b", b"two", CreateMode::Persistent).await.expect("create /t/a/b");
    zk.client.set_data("/t/a", b"one'", None).await.expect("set /t/a");
    let mut cmd = zk.command(&["watch", "--tree", "--once", "/t"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let (status, out, err) = finished(Guard::spawn(cmd)).await;
    assert!(status.success(), "{status:?}: {err}");
    assert_eq!(out, "Added /t v0 root\nAdded /t/a v1 one'\nAdded /t/a/b v0 two\nInitialized\n");
}

both!(watch_tree_json_follows_changes);
/// `--json watch --tree` prints the tree, `Initialized`, then each change with the node's new
/// data and stat, until SIGTERM (exit 0).
async fn watch_tree_json_follows_changes(zk: &Zk) {
    zk.client.create("/f", b"", CreateMode::Persistent).await.expect("create /f");
    let mut cmd = zk.command(&["--json", "watch", "--tree", "/f"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut watch = Guard::spawn(cmd);
    let lines = watch.lines();
    let next = || {
        let line = lines.recv_timeout(PATIENCE).expect("a line from watch --tree");
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    assert_eq!((next()["event"].clone(), next()["event"].clone()), (Value::from("Added"), Value::from("Initialized")));
    zk.client.create("/f/new", b"x", CreateMode::Persistent).await.expect("create /f/new");
    let added = next();
    assert_eq!((&added["event"], &added["path"], &added["data"]), (&json!("Added"), &json!("/f/new"), &json!("x")));
    assert_eq!(added["stat"]["version"], 0, "{added}");
    zk.client.delete("/f/new", None).await.expect("delete /f/new");
    assert_eq!(next()["event"], "Removed");
    watch.terminate();
    let (status, _, err) = finished(watch).await;
    assert!(status.success(), "SIGTERM ends watch --tree with exit 0: {status:?} {err}");
}

both!(watch_json_until_sigterm);
/// `watch --recursive --json` prints one JSON object per event under the node and exits 0 on
/// SIGTERM (Programmer's Guide, "ZooKeeper Watches": recursive persistent watches).
async fn watch_json_until_sigterm(zk: &Zk) {
    zk.client.create("/r", b"", CreateMode::Persistent).await.expect("create /r");
    zk.client.create("/r/deep", b"", CreateMode::Persistent).await.expect("create /r/deep");
    let mut cmd = zk.command(&["--json", "watch", "--recursive", "/r"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut watch = Guard::spawn(cmd);
    let lines = watch.lines();
    let deadline = Instant::now() + PATIENCE;
    let line = loop {
        assert!(Instant::now() < deadline && !watch.exited(), "watch --recursive saw no event");
        zk.client.set_data("/r/deep", b"x", None).await.expect("set /r/deep");
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(line) = lines.try_recv() {
            break line;
        }
    };
    let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(event["event"], "NodeDataChanged");
    assert_eq!(event["path"], "/r/deep");
    assert!(event["zxid"].is_null() || event["zxid"].as_str().is_some_and(|z| z.starts_with("0x")), "{event}");
    watch.terminate();
    let (status, _, err) = finished(watch).await;
    assert!(status.success(), "SIGTERM ends watch with exit 0: {status:?} {err}");
}

// ---------------------------------------------------------------------------------------------
// lock and locks
// ---------------------------------------------------------------------------------------------

/// The next line of a child's stdout, failing the test after [`PATIENCE`].
async fn next_line(lines: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match lines.try_recv() {
            Ok(line) => return line,
            Err(mpsc::TryRecvError::Disconnected) => panic!("stdout closed before the expected line"),
            Err(mpsc::TryRecvError::Empty) => {}
        }
        assert!(Instant::now() < deadline, "no line on stdout within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `locks` lines of `path` once there are `n` of them (a lock directory not created yet, or
/// already reaped as an empty container, has none).
async fn wait_for_contenders(zk: &Zk, path: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let run = zk.cli(&["locks", path]).await;
        let out = if run.code == code::NO_NODE { String::new() } else { run.ok() };
        let lines: Vec<String> = out.lines().map(str::to_string).collect();
        if lines.len() == n {
            return lines;
        }
        assert!(Instant::now() < deadline, "never {n} contenders on {path}: {lines:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh file name in the temporary directory.
fn temp_file(name: &str) -> std::path::PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("conclave-cli-{name}-{}-{n}", std::process::id()))
}

both!(lock_runs_the_command_under_the_lock);
/// `lock` runs the command with the fencing token and the lock node in its environment, while
/// the node exists (seen by a nested `locks`), releases it afterwards, and exits with the
/// command's status: its code, 128+N for a death by signal N, 127 for a missing command.
async fn lock_runs_the_command_under_the_lock(zk: &Zk) {
    let script = r#"echo "$CONCLAVE_FENCING_TOKEN $CONCLAVE_LOCK_NODE"; "$BIN" --connect "$CONNECT" locks /l; exit 7"#;
    let mut cmd = zk.command(&["lock", "/l", "--", "sh", "-c", script]);
    cmd.env("BIN", env!("CARGO_BIN_EXE_conclave")).env("CONNECT", zk.connect());
    let r = run(cmd, None).await;
    assert_eq!((r.code, r.stderr.as_str()), (7, ""), "the command's status, nothing else: {r:?}");
    let out = r.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (token, node) = lines[0].split_once(' ').expect("token and node");
    assert!(token.parse::<u64>().is_ok_and(|t| t > 0), "a decimal token: {out}");
    let name = node.strip_prefix("/l/").expect("a node under the lock path");
    assert!(name.starts_with("_c_") && name.ends_with("-lock-0000000000"), "Curator's node name: {name}");
    let holder: Vec<&str> = lines[1].splitn(7, ' ').collect();
    assert_eq!(holder[..3], ["holder", "0", name], "{out}");
    assert!(holder[3].starts_with("0x"), "session: {out}");
    assert_eq!(holder[4], token, "locks shows the token the command got");
    assert!(holder[6].ends_with(&format!(" sh -c {script}")), "node data is HOST PID COMMAND: {out}");
    assert_free(zk, "/l", false).await;

    let r = zk.cli(&["lock", "/l", "--", "sh", "-c", "kill -TERM $$"]).await;
    assert_eq!((r.code, r.stderr.as_str()), (code::SIGTERM, ""), "death by SIGTERM is 143, as in shells: {r:?}");
    zk.cli(&["lock", "/l", "--", "conclave-no-such-command", "x"])
        .await
        .fails(code::NOT_FOUND, "lock /l: conclave-no-such-command: command not found");
    assert_eq!(zk.cli(&["lock", "/l", "true"]).await.ok(), "", "`--` is optional");
    assert_free(zk, "/l", true).await;
}

/// Asserts that nobody holds or waits for the lock at `path`: `locks` prints nothing (`[]` with
/// `--json`), or fails with NONODE (exit 3) once the server has removed the lock directory, a
/// container, for being empty (ZooKeeper removes emptied containers on its own schedule).
async fn assert_free(zk: &Zk, path: &str, json: bool) {
    let args = if json { vec!["--json", "locks", path] } else { vec!["locks", path] };
    let r = zk.cli(&args).await;
    match (r.code, json) {
        (code::NO_NODE, false) => r.fails(code::NO_NODE, "(NONODE)"),
        (code::NO_NODE, true) => assert_eq!(r.fails_json(code::NO_NODE, "(NONODE)")["code"], "NONODE"),
        (_, false) => assert_eq!(r.ok(), "", "released: {path}"),
        (_, true) => assert_eq!(r.json(), serde_json::json!([]), "released: {path}"),
    }
}

both!(lock_serializes_commands);
/// Commands under the same lock never overlap: each one's start and end lines are adjacent in
/// the shared log, whatever order they got the lock in.
async fn lock_serializes_commands(zk: &Zk) {
    let log = temp_file("serial");
    let script = r#"echo "start $NAME" >> "$LOG"; sleep 0.2; echo "end $NAME" >> "$LOG""#;
    let children: Vec<Guard> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let mut cmd = zk.command(&["lock", "/s", "--", "sh", "-c", script]);
            cmd.env("NAME", name).env("LOG", &log).stdout(Stdio::piped()).stderr(Stdio::piped());
            Guard::spawn(cmd)
        })
        .collect();
    for child in children {
        let (status, _, err) = finished(child).await;
        assert!(status.success(), "{status:?}: {err}");
    }
    let text = std::fs::read_to_string(&log).expect("read the log");
    let _ = std::fs::remove_file(&log);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let mut seen = Vec::new();
    for pair in lines.chunks(2) {
        let name = pair[0].strip_prefix("start ").unwrap_or_else(|| panic!("interleaved: {text}"));
        assert_eq!(pair[1], format!("end {name}"), "interleaved: {text}");
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"]);
}

both!(lock_timeout_and_signals);
/// `--timeout` gives up with exit 10 naming the holder (`0`: at once) and leaves no waiting
/// node; a signal to a waiting `lock` ends the wait (128+N); a signal to the holder is passed
/// on to its command (its whole process group), and the lock is released once it has exited.
async fn lock_timeout_and_signals(zk: &Zk) {
    let mut holder = zk.spawn(&["lock", "/t", "--", "sh", "-c", "sleep 30; echo not-stopped"]);
    wait_for_contenders(zk, "/t", 1).await;
    let started = Instant::now();
    let r = zk.cli(&["lock", "--timeout", "300ms", "/t", "--", "true"]).await;
    r.fails(code::LOCK_TIMEOUT, "lock /t: not acquired within 300ms: held by session 0x");
    assert!(r.stderr.contains(&format!(" {} sh -c sleep 30", holder.0.id())), "names the holder: {r:?}");
    assert!(started.elapsed() >= Duration::from_millis(300), "waited {:?}", started.elapsed());
    zk.cli(&["lock", "--timeout", "0", "/t", "true"]).await.fails(code::LOCK_TIMEOUT, "--timeout 0");
    assert_eq!(wait_for_contenders(zk, "/t", 1).await[0].split(' ').next(), Some("holder"), "no waiter left");

    let waiter = zk.spawn(&["lock", "/t", "--", "true"]);
    wait_for_contenders(zk, "/t", 2).await;
    waiter.terminate();
    let (status, out, err) = finished(waiter).await;
    assert_eq!(status.code(), Some(code::SIGTERM), "{err}");
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("", "conclave: lock /t: stopped by SIGTERM while waiting for the lock\n")
    );
    wait_for_contenders(zk, "/t", 1).await;

    assert!(!holder.exited());
    holder.terminate();
    let (status, out, err) = finished(holder).await;
    assert_eq!(status.code(), Some(code::SIGTERM), "the command (sh and its sleep) died of the relayed SIGTERM: {err}");
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    assert_eq!(zk.cli(&["lock", "--timeout", "0", "/t", "true"]).await.ok(), "", "released");
}

both!(lock_lost_stops_the_command);
/// When the lock node is deleted under a running command (an operator breaking the lock), the
/// command gets SIGTERM and conclave exits 11 saying why.
async fn lock_lost_stops_the_command(zk: &Zk) {
    let script = r#"trap "echo got-term; exit 0" TERM; echo ready; sleep 30 & wait"#;
    let mut holder = zk.spawn(&["lock", "/x", "--", "sh", "-c", script]);
    let lines = holder.lines();
    assert_eq!(next_line(&lines).await, "ready");
    let children = zk.client.get_children("/x").await.expect("list the lock");
    assert_eq!(children.len(), 1, "{children:?}");
    zk.client.delete(&format!("/x/{}", children[0]), None).await.expect("break the lock");
    let (status, _, err) = finished(holder).await;
    let rest: Vec<String> = lines.iter().collect();
    assert_eq!(rest, ["got-term"], "the command got SIGTERM");
    assert_eq!(status.code(), Some(code::LOCK_LOST), "{err}");
    assert_eq!(
        err,
        "conclave: lock /x: the lock was lost while the command ran: the lock node was deleted; the command was \
         sent SIGTERM and exited with status 0\n"
    );
}

/// Whether process `pid` is running: it exists and is not a zombie.
fn running(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        // `pid (name) S ...`: the state follows the last `)`.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
    } else {
        Command::new("kill").arg("-0").arg(pid.to_string()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    }
}

/// Runs `conclave lock FLAGS /g -- sh -c SCRIPT`, where SCRIPT starts a background process and
/// prints its pid and then `$CONCLAVE_LOCK_NODE` (the background process must not hold stdout
/// or stderr open: reading them to the end would wait for it). Until conclave exits, the lock
/// node must be there whenever the background process runs (read in that order: the node, then
/// the process, so a node found missing while the process still runs is a real overlap). Once
/// conclave has exited, the process is gone and so is the lock node. `interrupt` sends conclave
/// SIGINT once the lines are out. Gives conclave's exit status, stderr, how long it ran after
/// the lines were out, and whether the lock was seen held while the background process ran.
async fn lock_outlived_by(
    zk: &Zk,
    flags: &[&str],
    script: &str,
    interrupt: bool,
) -> (ExitStatus, String, Duration, bool) {
    let mut args = vec!["lock"];
    args.extend(flags);
    args.extend(["/g", "--", "sh", "-c", script]);
    let mut holder = zk.spawn(&args);
    let lines = holder.lines();
    let pid: u32 = next_line(&lines).await.parse().expect("the background process's pid");
    let node = next_line(&lines).await;
    let started = Instant::now();
    if interrupt {
        let sent = Command::new("kill").arg("-INT").arg(holder.0.id().to_string()).status().expect("run kill");
        assert!(sent.success(), "kill -INT failed");
    }
    let mut overlapped = false;
    while !holder.exited() {
        assert!(started.elapsed() < PATIENCE, "conclave did not exit");
        let held = zk.client.exists(&node).await.expect("look at the lock node").is_some();
        if running(pid) {
            assert!(held, "the lock node {node} is gone while process {pid} of the command's group runs");
            overlapped = true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ran = started.elapsed();
    let (status, _, err) = finished(holder).await;
    assert!(!running(pid), "process {pid} outlived conclave");
    assert_eq!(zk.client.exists(&node).await.expect("look at the lock node"), None, "released: {err}");
    (status, err, ran, overlapped)
}

both!(lock_outlives_the_background_processes);
/// The lock is held until every process of the command's process group is gone, as flock(1)
/// holds it while any process has the lock file open: a process the command left running in
/// the background gets SIGTERM once the command exits, and the lock is released after it is
/// gone. The exit status is still the command's.
async fn lock_outlives_the_background_processes(zk: &Zk) {
    let (status, err, ran, _) =
        lock_outlived_by(zk, &[], r#"sleep 30 >/dev/null 2>&1 & echo $!; echo "$CONCLAVE_LOCK_NODE"; exit 3"#, false)
            .await;
    assert_eq!((status.code(), err.as_str()), (Some(3), ""), "the command's status");
    assert!(ran < Duration::from_secs(5), "SIGTERM, not the 10 s grace period: {ran:?}");
}

both!(lock_interrupted_outlives_the_background_processes);
/// SIGINT to conclave reaches the command's group, but a background job of a script ignores it
/// (POSIX shells start asynchronous lists with SIGINT ignored; here it is also ignored from the
/// start, so that it does not depend on when the job runs): it gets SIGTERM once the command
/// has died, before the lock is released.
async fn lock_interrupted_outlives_the_background_processes(zk: &Zk) {
    let script = r#"trap "" INT; sleep 30 >/dev/null 2>&1 & trap - INT; echo $!; echo "$CONCLAVE_LOCK_NODE"; sleep 30"#;
    let (status, err, _, _) = lock_outlived_by(zk, &[], script, true).await;
    assert_eq!((status.code(), err.as_str()), (Some(128 + 2), ""), "the command died of SIGINT");
}

both!(lock_outlives_a_process_that_ignores_sigterm);
/// A background process that ignores SIGTERM is killed with SIGKILL after `--grace`, and the
/// lock is held until then.
async fn lock_outlives_a_process_that_ignores_sigterm(zk: &Zk) {
    let script = r#"trap "" TERM; sleep 30 >/dev/null 2>&1 & echo $!; echo "$CONCLAVE_LOCK_NODE""#;
    let (status, err, ran, overlapped) = lock_outlived_by(zk, &["--grace", "500ms"], script, false).await;
    assert_eq!((status.code(), err.as_str()), (Some(0), ""), "the command's status");
    assert!(ran >= Duration::from_millis(400), "held through the grace period: {ran:?}");
    assert!(overlapped, "the lock was seen held while the background process ran");
}

/// `--foreground` runs the command in conclave's own process group, which conclave cannot stop
/// without stopping itself: a process left in the background is not waited for (the documented
/// price of the foreground).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_in_the_foreground_does_not_wait_for_the_background() {
    let zk = Zk::embedded("lock-foreground").await;
    let script = r#"sleep 30 >/dev/null 2>&1 & echo $!; echo "$CONCLAVE_LOCK_NODE""#;
    let mut holder = zk.spawn(&["lock", "--foreground", "/f", "--", "sh", "-c", script]);
    let lines = holder.lines();
    let pid: u32 = next_line(&lines).await.parse().expect("the background process's pid");
    let (status, _, err) = finished(holder).await;
    assert!(status.success(), "{err}");
    assert!(running(pid), "left running");
    let _ = Command::new("kill").arg(pid.to_string()).status();
    zk.finish().await;
}

/// When the holder's session expires, a command that ignores SIGTERM is killed after `--grace`,
/// and conclave exits 11. Embedded only: it expires the session from the server's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_lost_with_the_session_escalates_to_sigkill() {
    let zk = Zk::embedded("lock-expiry").await;
    let mut holder =
        zk.spawn(&["lock", "--grace", "300ms", "/e", "--", "sh", "-c", r#"trap "" TERM; echo ready; exec sleep 30"#]);
    let lines = holder.lines();
    assert_eq!(next_line(&lines).await, "ready");
    let listed = zk.cli(&["--json", "locks", "/e"]).await.json();
    let session = listed[0]["session"].as_str().expect("the holder's session");
    let session = u64::from_str_radix(session.trim_start_matches("0x"), 16).expect("hex") as i64;
    let server = zk.server.as_ref().expect("embedded");
    let expired_at = Instant::now();
    assert!(server.faults().expire_session(session), "the session was live");
    let (status, _, err) = finished(holder).await;
    assert!(expired_at.elapsed() >= Duration::from_millis(300), "SIGKILL only after the grace period");
    assert_eq!(status.code(), Some(code::LOCK_LOST), "{err}");
    assert!(err.starts_with("conclave: lock /e: the lock was lost while the command ran: "), "{err}");
    // The expiry deletes the node (its notification may come first), closes the connection and
    // ends the session: whichever the client hears of first is the reason.
    let reasons = ["the ZooKeeper session ended", "the connection to ZooKeeper was lost", "the lock node was deleted"];
    assert!(reasons.iter().any(|r| err.contains(r)), "says why: {err}");
    assert!(err.ends_with("the command did not exit within 300ms of SIGTERM and was killed with SIGKILL\n"), "{err}");
    zk.finish().await;
}

both!(locks_lists_holder_then_waiters);
/// `locks` prints the holder, then the waiters in order, with session, fencing token and node
/// data; `--json` the same as an array; nothing (`[]`) for a free lock, and NONODE (exit 3) for
/// a path that does not exist.
async fn locks_lists_holder_then_waiters(zk: &Zk) {
    zk.cli(&["locks", "/never"]).await.fails(code::NO_NODE, "locks /never: node does not exist (NONODE)");
    zk.cli(&["--json", "locks", "/never"]).await.fails_json(code::NO_NODE, "locks /never: node does not exist");
    zk.client.create("/free", "", CreateMode::Persistent).await.expect("create /free");
    assert_eq!(zk.cli(&["locks", "/free"]).await.ok(), "", "a lock directory nobody holds");
    assert_eq!(zk.cli(&["--json", "locks", "/free"]).await.json(), serde_json::json!([]));

    let mut holder = zk.spawn(&["lock", "/q", "--", "sh", "-c", r#"echo "$CONCLAVE_FENCING_TOKEN"; exec sleep 30"#]);
    let token = next_line(&holder.lines()).await;
    let waiter = zk.spawn(&["lock", "/q", "--", "true"]);
    let lines = wait_for_contenders(zk, "/q", 2).await;
    let first: Vec<&str> = lines[0].splitn(7, ' ').collect();
    let second: Vec<&str> = lines[1].splitn(7, ' ').collect();
    assert_eq!((first[0], second[0]), ("holder", "waiting"), "{lines:?}");
    assert!(first[1].parse::<i32>().expect("seq") < second[1].parse::<i32>().expect("seq"), "{lines:?}");
    assert!(first[2].ends_with(&format!("lock-{:010}", first[1].parse::<i32>().expect("seq"))), "{lines:?}");
    assert!(first[3].starts_with("0x") && first[3] != second[3], "sessions: {lines:?}");
    assert_eq!(first[4], token, "{lines:?}");
    assert!(second[4].parse::<u64>().expect("token") > token.parse::<u64>().expect("token"), "tokens grow");
    assert_eq!(first[6], format!("{} sh -c echo \"$CONCLAVE_FENCING_TOKEN\"; exec sleep 30", holder.0.id()));
    assert_eq!(second[6], format!("{} true", waiter.0.id()));

    let listed = zk.cli(&["--json", "locks", "/q"]).await.json();
    let entries = listed.as_array().expect("an array");
    assert_eq!(entries.len(), 2, "{listed}");
    assert_eq!((entries[0]["role"].as_str(), entries[0]["holder"].as_bool()), (Some("holder"), Some(true)));
    assert_eq!((entries[1]["role"].as_str(), entries[1]["holder"].as_bool()), (Some("waiting"), Some(false)));
    assert_eq!(entries[0]["fencing_token"], token.as_str());
    assert_eq!(entries[0]["session"], first[3]);
    assert_eq!(entries[0]["node"], first[2]);
    assert_eq!(entries[0]["path"], format!("/q/{}", first[2]));
    assert_eq!(entries[0]["kind"], "lock-");
    assert!(entries[1]["data"].as_str().is_some_and(|d| d.ends_with(" true")), "{listed}");

    holder.terminate();
    let (status, _, err) = finished(holder).await;
    assert_eq!(status.code(), Some(code::SIGTERM), "{err}");
    let (status, _, err) = finished(waiter).await;
    assert!(status.success(), "the waiter ran once the holder let go: {status:?} {err}");
    assert_free(zk, "/q", false).await;
}

/// `--ttl` and `--container` create ZooKeeper's TTL and container nodes; a server without TTL
/// support answers UNIMPLEMENTED, which has no class of its own: exit 1 (Programmer's Guide,
/// "Container Nodes" and "TTL Nodes"). Embedded only: it needs a server with TTL nodes off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttl_and_container_modes() {
    let zk = Zk::embedded("ttl").await;
    assert_eq!(zk.cli(&["create", "--ttl", "60000", "/t"]).await.ok(), "/t\n");
    assert_eq!(zk.cli(&["create", "--ttl", "60000", "-s", "/t-"]).await.ok(), "/t-0000000001\n");
    assert_eq!(zk.cli(&["create", "--container", "/c"]).await.ok(), "/c\n");
    zk.finish().await;

    let server = Server::builder().ttl_enabled(false).start().await.expect("start a server without TTL");
    let hosts = server.connect_string();
    let zk = Zk::with(Some(server), hosts, "no-ttl").await;
    zk.cli(&["create", "--ttl", "60000", "/t"])
        .await
        .fails(1, "create /t: operation not implemented by the server (UNIMPLEMENTED)");
    zk.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Failures that need no server, and `serve`
// ---------------------------------------------------------------------------------------------

/// A server that refuses connections fails fast with exit 8 and names the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_refused_exits_8() {
    let target = format!("127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let r = run(conclave(&["--connect", &target, "--connect-timeout-ms", "300", "ls", "/"]), None).await;
    r.fails(code::CONNECTION, &format!("cannot connect to {target}: "));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// `CONCLAVE_CONNECT` supplies the default `--connect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_env_is_the_default() {
    let target = format!("127.0.0.1:{}", closed_port());
    let mut cmd = conclave(&["--connect-timeout-ms", "100", "get", "/"]);
    cmd.env("CONCLAVE_CONNECT", &target);
    run(cmd, None).await.fails(code::CONNECTION, &format!("cannot connect to {target}"));
}

/// Invalid paths, connect strings and data fail with exit 9 before any connection is made
/// (ZooKeeper's path rules: Programmer's Guide, "ZNodes").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_input_exits_9_without_connecting() {
    let target = format!("127.0.0.1:{}", closed_port());
    for (args, needle) in [
        (vec!["get", "relative"], "get relative: invalid path \"relative\": path must start with /"),
        (vec!["create", "/a/"], "create /a/: invalid path"),
        (vec!["delete", "/a//b"], "delete /a//b: invalid path"),
        (vec!["watch", "/a/."], "watch /a/.: invalid path"),
        (vec!["lock", "rel", "--", "true"], "lock rel: invalid path"),
        (vec!["locks", "/a/"], "locks /a/: invalid path"),
        (vec!["queue", "put", "rel", "x"], "queue put rel: invalid path"),
        (vec!["queue", "take", "/a/", "--ack", "true"], "queue take /a/: invalid path"),
        (vec!["queue", "ls", "/a//b"], "queue ls /a//b: invalid path"),
    ] {
        let mut full = vec!["--connect", &target];
        full.extend(args);
        run(conclave(&full), None).await.fails(code::INVALID, needle);
    }
    // A trailing slash is fine for a sequential create (the name is then just the counter), so
    // this one gets as far as connecting.
    let r = run(conclave(&["--connect", &target, "--connect-timeout-ms", "100", "create", "-s", "/a/"]), None).await;
    r.fails(code::CONNECTION, "cannot connect");
    run(conclave(&["--connect", "host:notaport", "ls", "/"]), None).await.fails(code::INVALID, "invalid port");
}

/// Usage errors are clap's exit code 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_errors_exit_2() {
    for args in [
        vec!["create", "--container", "-e", "/a"],
        vec!["create", "--ttl", "0", "/a"],
        vec!["--auth", "nocolon", "ls", "/"],
        vec!["set", "/a"],
        vec!["frobnicate"],
        vec!["lock", "/a"],
        vec!["lock", "--timeout", "5", "/a", "true"],
        vec!["lock", "--grace", "soon", "/a", "true"],
        vec!["queue", "take", "/q", "true"],
        vec!["queue", "take", "--ack", "/q"],
        vec!["queue", "take", "--grace", "1s", "/q"],
        vec!["queue", "take", "--timeout", "5", "/q"],
        vec!["queue", "put"],
        vec!["queue"],
    ] {
        let r = run(conclave(&args), None).await;
        assert_eq!(r.code, code::USAGE, "{args:?}: {r:?}");
    }
    let help = run(conclave(&["--help"]), None).await.ok();
    assert!(help.contains("Exit status:") && help.contains("9  invalid path"), "{help}");
    assert!(help.contains(" 10  lock: ") && help.contains(" 11  lock: the lock was lost"), "{help}");
}

/// Failures that need no server are JSON objects on stdout under `--json` too, without code
/// fields (no ZooKeeper code is behind them): a refused connection, and usage errors, whose
/// full text stays clap's on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_errors_without_a_server() {
    let target = format!("127.0.0.1:{}", closed_port());
    let r = run(conclave(&["--json", "--connect", &target, "--connect-timeout-ms", "300", "ls", "/"]), None).await;
    let e = r.fails_json(code::CONNECTION, &format!("cannot connect to {target}: "));
    assert_eq!((e.get("code"), e.get("code_number")), (None, None), "{e}");

    for args in [vec!["--json", "frobnicate"], vec!["lock", "--json", "/a"], vec!["set", "/a", "--json"]] {
        let r = run(conclave(&args), None).await;
        assert_eq!(r.code, code::USAGE, "{args:?}: {r:?}");
        assert!(r.stderr.starts_with("error: "), "clap's message: {r:?}");
        let doc: Value = serde_json::from_str(&r.out()).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"));
        assert_eq!(
            (doc["error"]["exit"].as_i64(), doc["error"]["context"].as_str()),
            (Some(2), Some("usage")),
            "{doc}"
        );
        let first = r.stderr.lines().next().unwrap_or_default();
        assert_eq!(Some(first.trim_start_matches("error: ")), doc["error"]["message"].as_str(), "{doc}");
    }
    // `--json` after `--` belongs to the command of `lock`: not a JSON usage error.
    let r = run(conclave(&["lock", "--", "--json"]), None).await;
    assert_eq!((r.code, r.out().as_str()), (code::USAGE, ""), "{r:?}");
    let help = run(conclave(&["--json", "--help"]), None).await.ok();
    assert!(help.contains("code_number"), "--help documents the JSON errors: {help}");
}

/// `serve --port 0` prints its address, serves other CLI calls, and exits 0 on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_prints_its_address_and_stops_on_sigterm() {
    let mut cmd = conclave(&["serve", "--port", "0"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut server = Guard::spawn(cmd);
    let lines = server.lines();
    let first = tokio::task::spawn_blocking(move || lines.recv_timeout(PATIENCE)).await.expect("join");
    let first = first.expect("serve printed no address");
    let address = first.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let address: std::net::SocketAddr = address.parse().expect("a socket address");
    assert!(address.ip().is_loopback() && address.port() != 0, "{address}");

    let connect = address.to_string();
    let cli = |args: &[&str]| {
        let mut cmd = conclave(&["--connect", &connect]);
        cmd.args(args);
        run(cmd, None)
    };
    assert_eq!(cli(&["create", "/served", "yes"]).await.ok(), "/served\n");
    assert_eq!(cli(&["get", "/served"]).await.ok(), "yes");

    server.terminate();
    let (status, _, log) = finished(server).await;
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}\n{log}");
}

/// `serve`'s limits are its flags: the four-letter words answered (an unknown one is refused at
/// start, exit 9) and the connections allowed from one address.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_takes_its_limits_from_flags() {
    let bad = run(conclave(&["serve", "--port", "0", "--four-letter-words", "ruok,bogus"]), None).await;
    bad.fails(9, "unknown four-letter word \"bogus\"");

    let mut cmd = conclave(&["serve", "--port", "0", "--four-letter-words", "ruok,mntr", "--max-client-cnxns", "2"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut server = Guard::spawn(cmd);
    let lines = server.lines();
    let first = tokio::task::spawn_blocking(move || lines.recv_timeout(PATIENCE)).await.expect("join");
    let address =
        first.expect("serve printed no address").strip_prefix("listening on ").expect("an address").to_string();
    let port: u16 = address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    let ask =
        |word: &'static str| tokio::task::spawn_blocking(move || conclave_core::testing::four_letter_word(port, word));
    assert_eq!(ask("ruok").await.expect("join").expect("answer"), "imok");
    assert!(ask("mntr").await.expect("join").expect("answer").starts_with("zk_version\t"));
    assert!(ask("srvr").await.expect("join").expect("answer").contains("Mode: standalone"), "srvr: always");
    assert_eq!(
        ask("dump").await.expect("join").expect("answer"),
        "dump is not executed because it is not in the whitelist.\n"
    );
    // Two idle connections from this address fill its allowance: a third is closed at once.
    let _held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&address).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = std::net::TcpStream::connect(&address).expect("connect");
    third.set_read_timeout(Some(PATIENCE)).expect("timeout");
    assert_eq!(third.read(&mut [0u8; 1]).unwrap_or(0), 0, "the third connection is refused");

    server.terminate();
    let (status, _, log) = finished(server).await;
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("connection refused") && log.contains("2 connections from this address"), "{log}");
}

both!(leader_prints_the_leader_and_follows_it);
/// `leader` prints `ID EPOCH NODE` of the current leader (or nothing; NONODE for a path that
/// does not exist), `--json` the same as a document; `--watch` prints it at once and at every
/// change, `-` when nobody leads, until SIGTERM (exit 0).
async fn leader_prints_the_leader_and_follows_it(zk: &Zk) {
    zk.cli(&["leader", "/never"]).await.fails(code::NO_NODE, "leader /never: node does not exist (NONODE)");
    zk.client.create("/vote", "", CreateMode::Persistent).await.expect("create /vote");
    assert_eq!(zk.cli(&["leader", "/vote"]).await.ok(), "", "nobody leads");
    assert_eq!(
        zk.cli(&["--json", "leader", "/vote"]).await.json(),
        serde_json::json!({"path": "/vote", "leader": null})
    );

    let mut watch = zk.spawn(&["leader", "--watch", "/vote"]);
    let lines = watch.lines();
    assert_eq!(next_line(&lines).await, "-");
    let election = conclave::leader::Election::new(zk.client.clone(), "/vote").with_id("node-a");
    let first = tokio::time::timeout(PATIENCE, election.campaign()).await.expect("in time").expect("elected");
    let node = first.path().rsplit('/').next().expect("a name").to_string();
    let line = format!("node-a {} {node}", first.epoch());
    assert_eq!(next_line(&lines).await, line);
    assert_eq!(zk.cli(&["leader", "/vote"]).await.ok(), format!("{line}\n"));
    let doc = zk.cli(&["--json", "leader", "/vote"]).await.json();
    assert_eq!(doc["leader"]["id"], "node-a");
    assert_eq!(doc["leader"]["epoch"], first.epoch().to_string());
    assert_eq!(doc["leader"]["node"], node.as_str());
    first.resign().await.expect("resign");
    assert_eq!(next_line(&lines).await, "-");
    watch.terminate();
    let (status, _, err) = finished(watch).await;
    assert!(status.success(), "{status:?} {err}");
}

both!(elect_runs_the_command_while_leading);
/// `elect` runs its command once elected, with the epoch and the leader node in its
/// environment; a second participant waits, and runs its command once the first one's exits
/// (with a greater epoch); `leader` names each in turn; exit statuses pass through.
async fn elect_runs_the_command_while_leading(zk: &Zk) {
    // The first command runs until the test creates the file `go`, then exits 3.
    let go = std::env::temp_dir().join(format!("conclave-elect-{}-{}", std::process::id(), zk.root.replace('/', "_")));
    let _ = std::fs::remove_file(&go);
    let script = format!(
        r#"echo "$CONCLAVE_EPOCH $CONCLAVE_LEADER_NODE"; while [ ! -e '{}' ]; do sleep 0.02; done; exit 3"#,
        go.display()
    );
    let mut first = zk.spawn(&["elect", "/el", "first", "--", "sh", "-c", &script]);
    let lines = first.lines();
    let announced = next_line(&lines).await;
    let (epoch, node) = announced.split_once(' ').expect("epoch and node");
    let epoch: u64 = epoch.parse().expect("an epoch");
    assert!(node.starts_with("/el/_c_") && node.contains("-latch-"), "{node}");
    let leader = zk.cli(&["leader", "/el"]).await.ok();
    assert!(leader.starts_with(&format!("first {epoch} ")), "{leader}");

    let mut second = zk.spawn(&["elect", "/el", "second", "--", "sh", "-c", r#"echo "$CONCLAVE_EPOCH""#]);
    let second_lines = second.lines();
    std::thread::sleep(Duration::from_millis(300));
    assert!(second_lines.try_recv().is_err(), "the second participant waits while the first leads");
    std::fs::write(&go, b"").expect("create the go file");
    let (status, _, err) = finished(first).await;
    let _ = std::fs::remove_file(&go);
    assert_eq!(status.code(), Some(3), "the command's status passes through: {err}");
    let next: u64 = next_line(&second_lines).await.parse().expect("an epoch");
    assert!(next > epoch, "a greater epoch for the next leader");
    let (status, _, err) = finished(second).await;
    assert!(status.success(), "{err}");
    assert_eq!(zk.cli(&["leader", "/el"]).await.ok(), "", "nobody leads any more");
}

/// When someone deletes the leader node, `elect` stops its command and exits 12; with
/// `--requeue` it campaigns again and runs the command anew, with a greater epoch. Embedded and
/// real ZooKeeper alike (an operator's delete needs no fault injection).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn elect_loses_and_requeues() {
    let zk = Zk::embedded("elect-loss").await;
    let script = r#"echo "$CONCLAVE_EPOCH $CONCLAVE_LEADER_NODE"; exec sleep 30"#;
    let mut once = zk.spawn(&["elect", "--grace", "300ms", "/lose", "a", "--", "sh", "-c", script]);
    let lines = once.lines();
    let announced = next_line(&lines).await;
    let node = announced.split_once(' ').expect("epoch and node").1.to_string();
    zk.client.delete(&node, None).await.expect("delete the leader node");
    let (status, _, err) = finished(once).await;
    assert_eq!(status.code(), Some(code::LEADERSHIP_LOST), "{err}");
    assert!(
        err.starts_with(
            "conclave: elect /lose: the leadership was lost while the command ran: the leader node was deleted; "
        ),
        "{err}"
    );

    let mut again = zk.spawn(&["elect", "--requeue", "--grace", "300ms", "/lose", "b", "--", "sh", "-c", script]);
    let lines = again.lines();
    let (first, node) = {
        let line = next_line(&lines).await;
        let (e, n) = line.split_once(' ').expect("epoch and node");
        (e.parse::<u64>().expect("an epoch"), n.to_string())
    };
    zk.client.delete(&node, None).await.expect("delete the leader node");
    let second: u64 = next_line(&lines).await.split_once(' ').expect("epoch and node").0.parse().expect("an epoch");
    assert!(second > first, "elected again with a greater epoch");
    again.terminate();
    let (status, _, err) = finished(again).await;
    assert_eq!(status.code(), Some(code::SIGTERM), "{err}");
    assert!(err.contains("campaigning again (--requeue)"), "{err}");
    zk.finish().await;
}

// ---------------------------------------------------------------------------------------------
// queue
// ---------------------------------------------------------------------------------------------

/// The `queue ls` lines of `path`.
async fn queue_lines(zk: &Zk, path: &str) -> Vec<String> {
    zk.cli(&["queue", "ls", path]).await.ok().lines().map(str::to_string).collect()
}

both!(queue_put_ls_take);
/// `queue put` prints the item's path (DATA, stdin for `-`, empty when absent), `queue ls` lists
/// the items in queue order with their sizes, `queue take` hands them out first in, first out,
/// writing the data exactly as stored; `--json` documents parse; an empty queue times out with
/// exit 10, and a queue that does not exist cannot be listed (exit 3).
async fn queue_put_ls_take(zk: &Zk) {
    zk.cli(&["queue", "ls", "/jobs"]).await.fails(code::NO_NODE, "queue ls /jobs: node does not exist (NONODE)");
    assert_eq!(zk.cli(&["queue", "put", "/jobs", "first"]).await.ok(), "/jobs/qn-0000000000\n");
    let binary = [0xff, 0x00, b'\n', 0x01];
    assert_eq!(zk.cli_stdin(&["queue", "put", "/jobs", "-"], &binary).await.ok(), "/jobs/qn-0000000001\n");
    let doc = zk.cli(&["--json", "queue", "put", "/jobs"]).await.json();
    assert_eq!(doc, serde_json::json!({"path": "/jobs/qn-0000000002"}));
    assert_eq!(
        queue_lines(zk, "/jobs").await,
        ["qn-0000000000 5 available", "qn-0000000001 4 available", "qn-0000000002 0 available"]
    );
    let listed = zk.cli(&["--json", "queue", "ls", "/jobs"]).await.json();
    assert_eq!(
        listed[0],
        serde_json::json!({"name": "qn-0000000000", "path": "/jobs/qn-0000000000", "sequence": 0, "size": 5,
                           "claimed": false})
    );
    let names: Vec<&str> = listed.as_array().expect("an array").iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, ["qn-0000000000", "qn-0000000001", "qn-0000000002"]);

    assert_eq!(zk.cli(&["queue", "take", "/jobs"]).await.ok(), "first", "data exactly, first in first out");
    let r = zk.cli(&["queue", "take", "/jobs"]).await;
    assert_eq!(r.stdout, binary, "bytes exactly: {r:?}");
    let doc = zk.cli(&["--json", "queue", "take", "/jobs"]).await.json();
    assert_eq!((doc["path"].as_str(), doc["data"].as_str()), (Some("/jobs/qn-0000000002"), Some("")), "{doc}");
    assert_eq!(doc["stat"]["dataLength"], 0, "{doc}");
    assert!(queue_lines(zk, "/jobs").await.is_empty(), "taken items are gone");
    assert_eq!(zk.cli(&["--json", "queue", "ls", "/jobs"]).await.json(), serde_json::json!([]));

    let started = Instant::now();
    zk.cli(&["queue", "take", "--timeout", "300ms", "/jobs"])
        .await
        .fails(code::LOCK_TIMEOUT, "queue take /jobs: no item within 300ms");
    assert!(started.elapsed() >= Duration::from_millis(300), "waited {:?}", started.elapsed());
    let e = zk
        .cli(&["--json", "queue", "take", "--timeout", "0", "/jobs"])
        .await
        .fails_json(code::LOCK_TIMEOUT, "--timeout 0");
    assert_eq!((e.get("code"), e["context"].as_str()), (None, Some("queue take /jobs")), "{e}");
    zk.cli(&["queue", "take", "--timeout", "0", "/jobs", "--ack", "true"])
        .await
        .fails(code::LOCK_TIMEOUT, "no item available");

    // A waiting consumer gets the item put meanwhile.
    let waiting = zk.spawn(&["queue", "take", "/jobs"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    zk.cli(&["queue", "put", "/jobs", "late"]).await.ok();
    let (status, out, err) = finished(waiting).await;
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, "late");
}

both!(queue_take_ack_runs_the_command_on_the_item);
/// `queue take --ack -- COMMAND` claims the first item and runs COMMAND with the data on its
/// stdin and the item's path in its environment; the item is deleted only if COMMAND exits 0,
/// else it stays in the queue, available to the next consumer, and conclave exits with the
/// command's status (127 for a command that does not exist).
async fn queue_take_ack_runs_the_command_on_the_item(zk: &Zk) {
    for data in ["one", "two"] {
        zk.cli(&["queue", "put", "/work", data]).await.ok();
    }
    let script = r#"printf '%s %s ' "$CONCLAVE_ITEM_PATH" "$CONCLAVE_FENCING_TOKEN"; cat; "$BIN" --connect "$CONNECT" queue ls /work; exit 3"#;
    let mut cmd = zk.command(&["queue", "take", "/work", "--ack", "--", "sh", "-c", script]);
    cmd.env("BIN", env!("CARGO_BIN_EXE_conclave")).env("CONNECT", zk.connect());
    let r = run(cmd, None).await;
    assert_eq!((r.code, r.stderr.as_str()), (3, ""), "the command's status, nothing else: {r:?}");
    let out = r.out();
    let (first, rest) = out.split_once('\n').expect("lines");
    let parts: Vec<&str> = first.splitn(3, ' ').collect();
    assert_eq!((parts[0], parts[2]), ("/work/qn-0000000000", "oneqn-0000000000 3 claimed"), "{out}");
    assert!(parts[1].parse::<u64>().is_ok_and(|t| t > 0), "a decimal fencing token: {out}");
    assert_eq!(rest, "qn-0000000001 3 available\n", "the other item is not claimed: {out}");
    assert_eq!(
        queue_lines(zk, "/work").await,
        ["qn-0000000000 3 available", "qn-0000000001 3 available"],
        "a failed command gives the item back, in its place"
    );

    zk.cli(&["queue", "take", "/work", "--ack", "--", "conclave-no-such-command"])
        .await
        .fails(code::NOT_FOUND, "queue take /work: conclave-no-such-command: command not found");
    assert_eq!(queue_lines(zk, "/work").await.len(), 2, "not acked");

    let r = zk.cli(&["queue", "take", "/work", "--ack", "--", "sh", "-c", "cat >/dev/null; exit 0"]).await;
    assert_eq!(r.ok(), "");
    assert_eq!(queue_lines(zk, "/work").await, ["qn-0000000001 3 available"], "acked: deleted");
    let r = zk.cli(&["--json", "queue", "take", "/work", "--ack", "sh", "-c", "cat; echo"]).await;
    assert_eq!(r.ok(), "two\n", "`--` is optional; stdout is the command's, even with --json");
    assert!(queue_lines(zk, "/work").await.is_empty());
}

/// When the claim nodes are deleted under a running command (an operator breaking the claim),
/// the command gets SIGTERM and conclave exits 11 without acking: the item stays in the queue.
/// A signal to a consumer that is still waiting ends the wait (128+N).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_claim_lost_stops_the_command() {
    let zk = Zk::embedded("queue-lost").await;
    zk.cli(&["queue", "put", "/q", "job"]).await.ok();
    let script = r#"trap "echo got-term; exit 0" TERM; echo ready; sleep 30 & wait"#;
    let mut consumer = zk.spawn(&["queue", "take", "--grace", "5s", "/q", "--ack", "--", "sh", "-c", script]);
    let lines = consumer.lines();
    assert_eq!(next_line(&lines).await, "ready");
    assert_eq!(queue_lines(&zk, "/q").await, ["qn-0000000000 3 claimed"]);
    for claim in zk.client.get_children("/q/qn-0000000000").await.expect("list the claim") {
        zk.client.delete(&format!("/q/qn-0000000000/{claim}"), None).await.expect("break the claim");
    }
    let (status, _, err) = finished(consumer).await;
    let rest: Vec<String> = lines.iter().collect();
    assert_eq!(rest, ["got-term"], "the command got SIGTERM");
    assert_eq!(status.code(), Some(code::LOCK_LOST), "{err}");
    assert!(
        err.starts_with(
            "conclave: queue take /q: the claim was lost while the command ran: the claim node was deleted; "
        ),
        "{err}"
    );
    assert_eq!(queue_lines(&zk, "/q").await, ["qn-0000000000 3 available"], "not acked");

    assert_eq!(zk.cli(&["queue", "take", "/q"]).await.ok(), "job");
    let waiter = zk.spawn(&["queue", "take", "/q"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    waiter.terminate();
    let (status, out, err) = finished(waiter).await;
    assert_eq!(status.code(), Some(code::SIGTERM), "{err}");
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("", "conclave: queue take /q: stopped by SIGTERM while waiting for an item\n")
    );
    zk.finish().await;
}

// ---------------------------------------------------------------------------------------------
// counter
// ---------------------------------------------------------------------------------------------

both!(counter_get_add_set);
/// `counter PATH` prints the value (0 for a node that does not exist, which it does not create);
/// `add N` (negative too), `incr`, `decr` and `set N` print the value after the update; `--json`
/// gives {"path", "value"} and {"path", "pre", "post"}. The node holds Curator's
/// DistributedAtomicLong layout, 8 bytes big-endian, both ways.
async fn counter_get_add_set(zk: &Zk) {
    assert_eq!(zk.cli(&["counter", "/stats/hits"]).await.ok(), "0\n", "a missing node counts as 0");
    assert_eq!(zk.client.exists("/stats").await.expect("exists"), None, "get creates nothing");
    assert_eq!(zk.cli(&["counter", "/stats/hits", "get"]).await.ok(), "0\n");
    assert_eq!(zk.cli(&["counter", "/stats/hits", "add", "5"]).await.ok(), "5\n", "created with its parents");
    assert_eq!(zk.cli(&["counter", "/stats/hits", "add", "-2"]).await.ok(), "3\n");
    let (data, _) = zk.client.get_data("/stats/hits").await.expect("read the counter node");
    assert_eq!(&data[..], &3i64.to_be_bytes(), "8 bytes, big-endian");
    assert_eq!(zk.cli(&["counter", "/stats/hits", "set", "10"]).await.ok(), "10\n");
    assert_eq!(zk.cli(&["counter", "/stats/hits"]).await.ok(), "10\n");
    assert_eq!(zk.cli(&["counter", "/stats/hits", "incr"]).await.ok(), "11\n");
    assert_eq!(zk.cli(&["counter", "/stats/hits", "decr"]).await.ok(), "10\n");

    let doc = zk.cli(&["--json", "counter", "/stats/hits"]).await.json();
    assert_eq!(doc, serde_json::json!({"path": "/stats/hits", "value": 10}));
    let doc = zk.cli(&["counter", "/stats/hits", "add", "-15", "--json"]).await.json();
    assert_eq!(doc, serde_json::json!({"path": "/stats/hits", "pre": 10, "post": -5}));
    let doc = zk.cli(&["--json", "counter", "/stats/hits", "set", "42"]).await.json();
    assert_eq!(doc, serde_json::json!({"path": "/stats/hits", "pre": -5, "post": 42}));

    // Written by someone else (a Java DistributedAtomicLong): read and updated alike.
    zk.client.set_data("/stats/hits", (i64::MAX).to_be_bytes().to_vec(), None).await.expect("write the counter");
    assert_eq!(zk.cli(&["counter", "/stats/hits"]).await.ok(), format!("{}\n", i64::MAX));
    assert_eq!(zk.cli(&["counter", "/stats/hits", "incr"]).await.ok(), format!("{}\n", i64::MIN), "wraps");
    zk.client.create("/empty", b"", CreateMode::Persistent).await.expect("create an empty node");
    assert_eq!(zk.cli(&["counter", "/empty"]).await.ok(), "0\n", "an empty node counts as 0");
    assert_eq!(zk.cli(&["counter", "/empty", "add", "-1"]).await.ok(), "-1\n");
}

both!(counter_refuses_data_that_is_not_a_counter);
/// A node whose data is neither empty nor 8 bytes is not a counter: reads and updates fail with
/// exit 9, saying so, and the node is left as it is.
async fn counter_refuses_data_that_is_not_a_counter(zk: &Zk) {
    zk.client.create("/three", b"abc", CreateMode::Persistent).await.expect("create a 3-byte node");
    let needle = "/three: 3 bytes of data, not an 8-byte counter";
    zk.cli(&["counter", "/three"])
        .await
        .fails(code::INVALID, &format!("counter /three get: invalid argument: {needle}"));
    zk.cli(&["counter", "/three", "add", "1"]).await.fails(code::INVALID, "counter /three add 1: invalid argument");
    zk.cli(&["counter", "/three", "set", "7"]).await.fails(code::INVALID, needle);
    let e = zk.cli(&["--json", "counter", "/three", "incr"]).await.fails_json(code::INVALID, needle);
    assert_eq!((e.get("code"), e["context"].as_str()), (None, Some("counter /three incr")), "{e}");
    let (data, stat) = zk.client.get_data("/three").await.expect("read the node");
    assert_eq!((&data[..], stat.version), (&b"abc"[..], 0), "left unchanged");
}

/// `counter` with a bad path exits 9 before connecting; a missing, malformed or out-of-range N
/// and an unknown action are usage errors (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_bad_arguments() {
    let target = format!("127.0.0.1:{}", closed_port());
    for (args, needle) in [
        (vec!["counter", "rel"], "counter rel get: invalid path \"rel\": path must start with /"),
        (vec!["counter", "/a/", "add", "-5"], "counter /a/ add -5: invalid path"),
        (vec!["counter", "/a//b", "set", "1"], "counter /a//b set 1: invalid path"),
    ] {
        let mut full = vec!["--connect", &target];
        full.extend(args);
        run(conclave(&full), None).await.fails(code::INVALID, needle);
    }
    let r = run(conclave(&["--json", "--connect", &target, "counter", "x", "incr"]), None).await;
    r.fails_json(code::INVALID, "counter x incr: invalid path");
    for args in [
        vec!["counter"],
        vec!["counter", "/c", "add"],
        vec!["counter", "/c", "add", "five"],
        vec!["counter", "/c", "set", "9223372036854775808"],
        vec!["counter", "/c", "incr", "2"],
        vec!["counter", "/c", "reset"],
    ] {
        let r = run(conclave(&args), None).await;
        assert_eq!(r.code, code::USAGE, "{args:?}: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// members and services
// ---------------------------------------------------------------------------------------------

both!(members_lists_the_group);
/// `members` prints `ID DATA` per member of a group (Curator's GroupMember layout), sorted, the
/// data escaped onto its line (just `ID` when empty); `--json` one array of {"id", "path",
/// "data", "stat"}; nothing (`[]`) for an empty group and NONODE (exit 3) for a missing path; a
/// member that leaves is gone from the next listing.
async fn members_lists_the_group(zk: &Zk) {
    use conclave::membership::GroupMember;
    zk.cli(&["members", "/never"]).await.fails(code::NO_NODE, "members /never: node does not exist (NONODE)");
    zk.cli(&["--json", "members", "/never"]).await.fails_json(code::NO_NODE, "members /never: node does not exist");
    zk.client.create("/empty", "", CreateMode::Persistent).await.expect("create /empty");
    assert_eq!(zk.cli(&["members", "/empty"]).await.ok(), "", "an empty group");
    assert_eq!(zk.cli(&["--json", "members", "/empty"]).await.json(), json!([]));

    let mut members = Vec::new();
    for (id, data) in [("w-2", ""), ("w-1", "10.0.0.1:80"), ("w-3", "a\nb")] {
        let member = GroupMember::new(&zk.client, "/workers", id, data).expect("a member");
        tokio::time::timeout(PATIENCE, member.joined()).await.expect("in time").expect("joined");
        members.push(member);
    }
    assert_eq!(zk.cli(&["members", "/workers"]).await.ok(), "w-1 10.0.0.1:80\nw-2\nw-3 a\\nb\n");
    let listed = zk.cli(&["members", "--json", "/workers"]).await.json();
    let entries = listed.as_array().expect("an array");
    assert_eq!(entries.len(), 3, "{listed}");
    assert_eq!((entries[0]["id"].as_str(), entries[0]["path"].as_str()), (Some("w-1"), Some("/workers/w-1")));
    assert_eq!((entries[0]["data"].as_str(), entries[2]["data"].as_str()), (Some("10.0.0.1:80"), Some("a\nb")));
    let session = format!("{:#x}", zk.client.session_id());
    assert!(entries.iter().all(|e| e["stat"]["ephemeralOwner"] == session.as_str()), "{listed}");

    // w-1 leaves: gone from the next listing.
    let w1 = members.remove(1);
    assert_eq!(w1.id(), "w-1");
    w1.close().await.expect("leave");
    assert_eq!(zk.cli(&["members", "/workers"]).await.ok(), "w-2\nw-3 a\\nb\n");
    for member in members {
        member.close().await.expect("leave");
    }
}

both!(services_lists_services_and_instances);
/// `services BASE` prints `NAME COUNT` per service; `services BASE NAME` prints
/// `ID ADDRESS[:PORT] [URI]` per instance (conclave's registrations and an instance as Curator
/// writes it alike; nodes that are not instances left out); `--json` gives arrays of
/// {"name", "instances"} and of the instances' JSON as stored; NONODE (exit 3) for a missing base
/// or service, exit 9 for a name that is not one node name.
async fn services_lists_services_and_instances(zk: &Zk) {
    use conclave::discovery::{ServiceDiscovery, ServiceInstance, UriSpec};
    zk.cli(&["services", "/svc"]).await.fails(code::NO_NODE, "services /svc: node does not exist (NONODE)");
    zk.cli(&["--json", "services", "/svc", "api"]).await.fails_json(code::NO_NODE, "services /svc api: node does not");

    let discovery = ServiceDiscovery::new(&zk.client, "/svc").expect("discovery");
    let a1 = ServiceInstance::builder("api")
        .id("a-1")
        .address("10.0.0.5")
        .port(8080)
        .payload(json!({"zone": "eu"}))
        .uri_spec(UriSpec::parse("{scheme}://{address}:{port}/x").expect("a template"))
        .build();
    let a2 = ServiceInstance::builder("api").id("a-2").address("10.0.0.6").ssl_port(8443).build();
    let mut d1 = ServiceInstance::builder("db").id("d-1").build();
    d1.address = None;
    let mut registrations = Vec::new();
    for instance in [&a1, &a2, &d1] {
        let registered = tokio::time::timeout(PATIENCE, discovery.register(instance.clone())).await;
        registrations.push(registered.expect("in time").expect("registered"));
    }
    // An instance as Curator 5.4 writes it, and a node that is not an instance.
    let curator = r#"{"name":"legacy","id":"id-1","address":"10.0.0.5","port":8080,"sslPort":8443,"payload":{"@class":"java.util.LinkedHashMap","zone":"eu","weight":3},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true},{"value":"/x","variable":false}]}}"#;
    let options = CreateOptions::new(CreateMode::Persistent);
    zk.client.create_all("/svc/legacy/id-1", curator, options.clone()).await.expect("create Curator's instance");
    zk.client.create("/svc/api/junk", "not an instance", CreateMode::Persistent).await.expect("create junk");

    assert_eq!(zk.cli(&["services", "/svc"]).await.ok(), "api 2\ndb 1\nlegacy 1\n", "junk is not counted");
    assert_eq!(
        zk.cli(&["--json", "services", "/svc"]).await.json(),
        json!([{"name": "api", "instances": 2}, {"name": "db", "instances": 1}, {"name": "legacy", "instances": 1}])
    );
    assert_eq!(
        zk.cli(&["services", "/svc", "api"]).await.ok(),
        "a-1 10.0.0.5:8080 http://10.0.0.5:8080/x\na-2 10.0.0.6:8443\n"
    );
    assert_eq!(zk.cli(&["services", "/svc", "db"]).await.ok(), "d-1 -\n");
    assert_eq!(zk.cli(&["services", "/svc", "legacy"]).await.ok(), "id-1 10.0.0.5:8080 https://10.0.0.5:8080/x\n");
    let parsed = |s: &str| serde_json::from_str::<Value>(s).expect("JSON");
    assert_eq!(
        zk.cli(&["services", "--json", "/svc", "api"]).await.json(),
        Value::from(vec![parsed(&a1.to_json()), parsed(&a2.to_json())])
    );
    assert_eq!(zk.cli(&["--json", "services", "/svc", "legacy"]).await.json(), json!([parsed(curator)]));
    zk.cli(&["services", "/svc", "nope"])
        .await
        .fails(code::NO_NODE, "services /svc nope: node does not exist (NONODE)");
    zk.cli(&["services", "/svc", "a/b"]).await.fails(code::INVALID, "services /svc a/b: invalid argument");

    // Unregistered: the count and the listing follow.
    registrations.remove(0).close().await.expect("unregister");
    assert_eq!(zk.cli(&["services", "/svc", "api"]).await.ok(), "a-2 10.0.0.6:8443\n");
    assert_eq!(zk.cli(&["services", "/svc"]).await.ok(), "api 1\ndb 1\nlegacy 1\n");
    for registration in registrations {
        registration.close().await.expect("unregister");
    }
}
