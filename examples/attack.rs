//! Hostile-client attacks on a ZooKeeper-compatible server (issue 10), each measured beside a
//! well-behaved bystander session, so that the embedded server (`conclave serve`) and a real
//! ZooKeeper 3.8 can be compared on the same inputs, before and after a fix.
//!
//! ```text
//! cargo build --release --bin conclave --example attack
//! target/release/conclave serve --port 23181 &                     # or a real ZooKeeper
//! target/release/examples/attack --hosts 127.0.0.1:23181 [--only amplify,collide,counts,counts_alt,fourlw,lockout]
//!                                [--scale small|full] [--pid SERVER_PID]
//! ```
//!
//! `--scale` defaults to `full` (the sizes of issue 10); `--pid` is the server's process id
//! (for a ZooKeeper started by `../shared/peers/zk.sh start1 DIR PORT`, the number in
//! `DIR/zk.pid`). Restart the server between attacks when one kills it.
//!
//! The attacks run one at a time, in the order given. While each runs, a bystander (a
//! [`Client`] with a 4 s session timeout, holding an ephemeral node and a data watch) sends an
//! `exists("/")` every 50 ms and records each request's latency and its session's states. After
//! each attack one `attack=NAME ...` line reports: whether the server is still alive (a fresh
//! session answers `exists("/")` within 10 s), the bystander's max and p99 latency (a request
//! that fails, e.g. when the client drops a connection silent for 2/3 of the session timeout,
//! counts with its time until the failure), its longest time without a successful reply,
//! whether its session expired (the client sees the `Expired` state, which with client-side
//! expiry off comes only from the server; and, checked by a fresh session, the bystander's
//! ephemeral node is gone), the attack's duration and its own numbers. Lines starting with `#` add details: per-phase
//! timings and the bystander's worst latency in each phase. With `--pid`, the server process's
//! resident memory is sampled every 50 ms (`VmRSS`, and `VmHWM` as last seen).
//!
//! - `amplify`: a node `/attack-big` of 1 000 000 bytes, then one `multiRead` (op 22) frame
//!   listing `getData(/attack-big)` as many times as fit in 52 KiB (`small`: 200 times). Reports
//!   the server's answer (its error code and announced length, or the connection closing) and
//!   how many reply bytes arrived; the reply is read and discarded as it streams in.
//! - `collide`: one session creates 100 000 (`small`: 5 000) ephemeral nodes under
//!   `/attack-eph` whose names (17 blocks of `Aa` or `BB`) all have the same Java
//!   `String.hashCode`, 256 creates in flight; then times `getEphemerals` (op 103) on that
//!   session, `getChildren(/attack-eph)`, the session's `close()` and how long until another
//!   session sees no children left.
//! - `counts`: a subtree `/attack-tree` of 100 × 1000 nodes (`small`: 100 × 100; kept between
//!   runs), then one raw connection writes 2 000 (`small`: 200) `getAllChildrenNumber` (op 104)
//!   of `/attack-tree` in one write and reads all the replies.
//! - `counts_alt`: as `counts`, but every other request counts the small subtree
//!   `/attack-tree/p0` instead, so that a server that keeps its last count walks the big subtree
//!   every time (`count_answer` is the big subtree's).
//! - `fourlw`: each of `dump wchc wchp cons mntr srvr ruok stat envi conf` sent alone on a new
//!   TCP connection; the answer's length, or that it was refused (empty, or "not in the
//!   whitelist"); whether `dump` shows ephemeral paths and session ids.
//! - `lockout`: 60, then 61 to 100, idle TCP connections from this address that never send a
//!   `ConnectRequest`; after each one, a new session is attempted (5 s). Reports the first count
//!   at which the new session is refused, how many idle connections the server accepted, and
//!   how long the server keeps them before closing them (up to 30 s). The bystander's own
//!   connection comes from the same address and counts against any per-address cap.
//!
//! Every attack stops after 180 s ("timed out"). Nodes are created with the open ACL.

#[path = "support/stats.rs"]
mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use conclave_core::proto::{frame, ConnectRequest, ConnectResponse, Decode, ReplyHeader, Request, Response};
use conclave_core::{Client, CreateMode, Error, SessionState};
use futures::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use stats::percentile;

/// Every attack, in the order they run by default.
const ALL: [&str; 6] = ["amplify", "collide", "counts", "counts_alt", "fourlw", "lockout"];

/// Every attack stops after this long and is reported as timed out.
const ATTACK_LIMIT: Duration = Duration::from_secs(180);

/// The bystander's session timeout.
const BYSTANDER_TIMEOUT: Duration = Duration::from_secs(4);

/// How often the bystander sends its request.
const BYSTANDER_PERIOD: Duration = Duration::from_millis(50);

/// Requests in flight at once when an attack fills the tree.
const WINDOW: usize = 256;

/// How large the attacks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// Quick runs, for checking the tool.
    Small,
    /// The sizes of issue 10.
    Full,
}

/// The command line.
#[derive(Debug)]
struct Args {
    /// The server to attack, `host:port`.
    hosts: String,
    /// The attacks to run, in order.
    only: Vec<String>,
    /// How large the attacks are.
    scale: Scale,
    /// The server's process id, to sample its memory.
    pid: Option<u32>,
}

/// Parses the command line (the style of `bench.rs`: no argument parser crate).
fn parse_args() -> std::result::Result<Args, String> {
    let mut hosts = None;
    let mut only = None;
    let mut scale = Scale::Full;
    let mut pid = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--hosts" => hosts = Some(it.next().ok_or("--hosts needs a value")?),
            "--only" => {
                let list = it.next().ok_or("--only needs a value")?;
                only = Some(list.split(',').map(str::to_string).collect::<Vec<_>>());
            }
            "--scale" => {
                scale = match it.next().ok_or("--scale needs a value")?.as_str() {
                    "small" => Scale::Small,
                    "full" => Scale::Full,
                    other => return Err(format!("--scale must be small or full, not {other:?}")),
                }
            }
            "--pid" => {
                let v = it.next().ok_or("--pid needs a value")?;
                pid = Some(v.parse().map_err(|_| format!("--pid: not a process id: {v:?}"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let hosts = hosts.ok_or("--hosts is required")?;
    let only = only.unwrap_or_else(|| ALL.iter().map(|s| s.to_string()).collect());
    if let Some(bad) = only.iter().find(|n| !ALL.contains(&n.as_str())) {
        return Err(format!("unknown attack {bad:?}"));
    }
    Ok(Args { hosts, only, scale, pid })
}

/// The first `host:port` of a connect string, for raw connections.
fn first_host(hosts: &str) -> String {
    let h = hosts.split('/').next().unwrap_or(hosts);
    h.split(',').next().unwrap_or(h).to_string()
}

/// A duration in milliseconds, one decimal.
fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// A duration in seconds, three decimals.
fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// A client for setting up and observing, with room for large replies.
async fn admin(hosts: &str) -> conclave_core::Result<Client> {
    Client::builder()
        .session_timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .max_reply_frame(512 << 20)
        .connect(hosts)
        .await
}

/// Ignores `NodeExists`, so that set-up steps can be repeated.
fn created_or_exists<T>(r: conclave_core::Result<T>) -> conclave_core::Result<()> {
    match r {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Bystander

/// One bystander request: when it was sent and how long it took.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When the request was sent.
    at: Instant,
    /// How long until its reply (or until the bystander stopped waiting).
    latency: Duration,
    /// Whether it succeeded.
    ok: bool,
}

/// What the bystander's task shares with whoever stops it.
#[derive(Debug, Default)]
struct BystanderShared {
    /// Set to make the loop stop after its current request.
    stop: AtomicBool,
    /// Every finished request.
    samples: Mutex<Vec<Sample>>,
    /// The request in flight, if any: when it was sent.
    in_flight: Mutex<Option<Instant>>,
    /// Requests that failed, by error.
    errors: Mutex<Vec<String>>,
    /// Every session state seen, with its time since the start.
    states: Mutex<Vec<(Duration, SessionState)>>,
}

/// A well-behaved session running beside an attack.
struct Bystander {
    /// The session.
    client: Client,
    /// Its ephemeral node, to tell afterwards whether the server expired the session.
    ephemeral: String,
    /// Shared with its tasks.
    shared: Arc<BystanderShared>,
    /// The request loop.
    task: tokio::task::JoinHandle<()>,
    /// When it started.
    started: Instant,
}

/// What the bystander saw.
#[derive(Debug)]
struct BystanderReport {
    /// Every request, the one still in flight at the end included (its wait so far).
    samples: Vec<Sample>,
    /// Whether a request was still unanswered when the bystander stopped.
    unfinished: bool,
    /// Failed requests.
    errors: Vec<String>,
    /// Whether the client saw its session expire.
    expired_client: bool,
    /// The session states seen.
    states: Vec<(Duration, SessionState)>,
    /// The negotiated session timeout.
    negotiated: Duration,
}

/// Starting, stopping and closing the bystander.
impl Bystander {
    /// Connects, creates the ephemeral node with a data watch on it, and starts the loop.
    async fn start(hosts: &str, attack: &str) -> conclave_core::Result<Bystander> {
        let client = Client::builder()
            .session_timeout(BYSTANDER_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            // Only the server decides that the session expired: the client keeps reconnecting
            // until a server answers, then learns whether its session survived.
            .client_side_expiry(false)
            .connect(hosts)
            .await?;
        let started = Instant::now();
        let shared = Arc::new(BystanderShared::default());
        let mut states = client.state_stream();
        let s = shared.clone();
        tokio::spawn(async move {
            while let Some(state) = states.next().await {
                s.states.lock().unwrap().push((started.elapsed(), state));
            }
        });
        let ephemeral = format!("/attack-bystander-{}-{attack}", std::process::id());
        created_or_exists(client.create(&ephemeral, b"bystander", CreateMode::Ephemeral).await)?;
        // A data watch, so that watch listings (wchc, wchp) have something to show.
        let (_, _, watch) = client.get_data_and_watch(&ephemeral).await?;
        let (c, s) = (client.clone(), shared.clone());
        let task = tokio::spawn(async move {
            let _watch = watch;
            while !s.stop.load(Ordering::SeqCst) {
                let at = Instant::now();
                *s.in_flight.lock().unwrap() = Some(at);
                let r = c.exists("/").await;
                let latency = at.elapsed();
                *s.in_flight.lock().unwrap() = None;
                s.samples.lock().unwrap().push(Sample { at, latency, ok: r.is_ok() });
                match r {
                    Ok(_) => {}
                    Err(e) => {
                        let terminal = e.is_terminal();
                        s.errors.lock().unwrap().push(e.to_string());
                        if terminal {
                            break;
                        }
                    }
                }
                tokio::time::sleep(BYSTANDER_PERIOD.saturating_sub(latency)).await;
            }
        });
        Ok(Bystander { client, ephemeral, shared, task, started })
    }

    /// Stops the loop (waiting up to 10 s for a request in flight) and reports; the session
    /// stays open (close it with [`Bystander::close`] once its ephemeral node was checked).
    async fn finish(&mut self) -> BystanderReport {
        self.shared.stop.store(true, Ordering::SeqCst);
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.is_err() {
            self.task.abort();
        }
        let mut samples = self.shared.samples.lock().unwrap().clone();
        let pending = *self.shared.in_flight.lock().unwrap();
        if let Some(at) = pending {
            samples.push(Sample { at, latency: at.elapsed(), ok: false });
        }
        let negotiated = self.client.negotiated_timeout();
        let states = self.shared.states.lock().unwrap().clone();
        let expired_client =
            states.iter().any(|(_, s)| *s == SessionState::Expired) || self.client.state() == SessionState::Expired;
        BystanderReport {
            samples,
            unfinished: pending.is_some(),
            errors: self.shared.errors.lock().unwrap().clone(),
            expired_client,
            states,
            negotiated,
        }
    }

    /// Closes the session (within 5 s).
    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.close()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Server memory

/// Samples a process's memory from `/proc/PID/status` every 50 ms in a thread.
struct RssSampler {
    /// Set to stop the thread.
    stop: Arc<AtomicBool>,
    /// The thread; returns (peak VmRSS kB, last VmHWM kB, whether the process disappeared).
    thread: std::thread::JoinHandle<(u64, u64, bool)>,
}

/// A `kB` field of `/proc/PID/status`.
fn status_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Starting and stopping the sampler.
impl RssSampler {
    /// Starts sampling `pid`.
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut peak, mut hwm, mut gone) = (0, 0, false);
            while !s.load(Ordering::SeqCst) {
                match std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    Ok(status) => {
                        peak = peak.max(status_kb(&status, "VmRSS:").unwrap_or(0));
                        hwm = status_kb(&status, "VmHWM:").unwrap_or(hwm);
                    }
                    Err(_) => gone = true,
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (peak, hwm, gone)
        });
        RssSampler { stop, thread }
    }

    /// Stops and returns (peak VmRSS kB, last VmHWM kB, whether the process disappeared).
    fn finish(self) -> (u64, u64, bool) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or((0, 0, false))
    }
}

// ---------------------------------------------------------------------------------------------
// Raw connections

/// A raw TCP connection with an established session.
struct Raw {
    /// The socket.
    stream: TcpStream,
    /// Bytes read and not yet split into frames.
    buf: BytesMut,
}

/// Handshake, frames and close on a raw connection.
impl Raw {
    /// Connects and creates a session asking for `timeout_ms`, within 5 s.
    async fn open(host: &str, timeout_ms: i32) -> std::result::Result<(Raw, ConnectResponse), String> {
        let go = async {
            let mut stream = TcpStream::connect(host).await.map_err(|e| format!("connect: {e}"))?;
            stream.set_nodelay(true).ok();
            let mut b = BytesMut::new();
            frame::write_record_frame(
                &mut b,
                &ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0,
                    timeout: timeout_ms,
                    session_id: 0,
                    passwd: Bytes::from_static(&[0; 16]),
                    read_only: Some(false),
                },
            );
            stream.write_all(&b).await.map_err(|e| format!("write: {e}"))?;
            let mut raw = Raw { stream, buf: BytesMut::new() };
            let f = raw.next_frame(1 << 20).await?.ok_or("closed before the handshake answer")?;
            let resp = ConnectResponse::decode_bytes(f).map_err(|e| format!("handshake answer: {e}"))?;
            if resp.timeout <= 0 {
                return Err("session refused (timeout 0)".to_string());
            }
            Ok((raw, resp))
        };
        tokio::time::timeout(Duration::from_secs(5), go).await.map_err(|_| "no handshake answer in 5 s".to_string())?
    }

    /// The next frame, or `None` when the server closed the connection.
    async fn next_frame(&mut self, max: usize) -> std::result::Result<Option<Bytes>, String> {
        loop {
            match frame::split_frame(&mut self.buf, max) {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Sends `closeSession` and drops the connection.
    async fn close(mut self) {
        let mut b = BytesMut::new();
        frame::write_request_frame(&mut b, 1_000_000, &Request::CloseSession);
        let _ = self.stream.write_all(&b).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.next_frame(1 << 20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Attacks

/// What an attack reports: `key=value` pairs for its line, and timed phases.
#[derive(Debug, Default)]
struct Outcome {
    /// Attack-specific numbers, in order.
    fields: Vec<(String, String)>,
    /// Named phases with their start and end.
    phases: Vec<(String, Instant, Instant)>,
    /// Extra `#` lines.
    notes: Vec<String>,
}

/// Filling in an attack's report.
impl Outcome {
    /// Adds one `key=value`.
    fn field(&mut self, key: &str, value: impl ToString) {
        self.fields.push((key.to_string(), value.to_string()));
    }

    /// Records a phase that started at `from` and ends now.
    fn phase(&mut self, name: &str, from: Instant) {
        self.phases.push((name.to_string(), from, Instant::now()));
    }
}

/// `amplify`: one small `multiRead` frame asking for a 1 MB node thousands of times.
async fn amplify(hosts: &str, scale: Scale, out: &mut Outcome) -> conclave_core::Result<()> {
    let c = admin(hosts).await?;
    let t = Instant::now();
    let big = vec![b'x'; 1_000_000];
    match c.create("/attack-big", big.clone(), CreateMode::Persistent).await {
        Ok(_) => {}
        Err(Error::NodeExists) => {
            c.set_data("/attack-big", big, None).await?;
        }
        Err(e) => return Err(e),
    }
    out.phase("setup", t);
    c.close().await;

    let get = Request::GetData { path: "/attack-big".into(), watch: false };
    let frame_len = |n: usize| {
        let mut b = BytesMut::new();
        frame::write_request_frame(&mut b, 1, &Request::MultiRead(vec![get.clone(); n]))
    };
    let n = match scale {
        Scale::Small => 200,
        Scale::Full => {
            let (base, per_op) = (frame_len(0), frame_len(1) - frame_len(0));
            (52 * 1024 - 4 - base) / per_op
        }
    };
    let mut request = BytesMut::new();
    frame::write_request_frame(&mut request, 1, &Request::MultiRead(vec![get; n]));
    out.field("ops", n);
    out.field("frame_bytes", request.len());
    out.field("would_reply_bytes", n * 1_000_085);

    let host = first_host(hosts);
    let (mut raw, _) = Raw::open(&host, 20_000).await.map_err(Error::Connect)?;
    let t = Instant::now();
    raw.stream.write_all(&request).await.map_err(|e| Error::Connect(e.to_string()))?;
    // Read the length and the reply header, then discard the rest as it arrives.
    let mut got: u64 = 0;
    let mut first: Option<Duration> = None;
    let mut head = Vec::with_capacity(20);
    let mut chunk = vec![0u8; 1 << 20];
    let deadline = ATTACK_LIMIT - Duration::from_secs(15);
    let reply = loop {
        let read = tokio::time::timeout(deadline.saturating_sub(t.elapsed()), raw.stream.read(&mut chunk)).await;
        match read {
            Err(_) => break format!("no complete answer in {} s", deadline.as_secs()),
            Ok(Err(e)) => break format!("connection error ({e})"),
            Ok(Ok(0)) => break "connection closed".to_string(),
            Ok(Ok(k)) => {
                first.get_or_insert(t.elapsed());
                got += k as u64;
                if head.len() < 20 {
                    let take = (20 - head.len()).min(k);
                    head.extend_from_slice(&chunk[..take]);
                }
                if head.len() == 20 {
                    let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                    if len >= 0 && got >= 4 + len as u64 {
                        break "complete reply".to_string();
                    }
                }
            }
        }
    };
    out.phase("attack", t);
    if head.len() >= 4 {
        out.field("reply_len", i32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    }
    if head.len() == 20 {
        let h = ReplyHeader::decode_bytes(Bytes::copy_from_slice(&head[4..])).ok();
        if let Some(h) = h {
            out.field("reply_xid", h.xid);
            out.field("reply_err", h.err);
        }
    }
    out.field("reply", format!("{reply:?}"));
    out.field("reply_bytes_read", got);
    out.field("first_byte_s", first.map_or("-".to_string(), secs));
    out.field("answer_s", secs(t.elapsed()));
    drop(raw);
    // Leave no 1 MB node behind, if the server is still there.
    if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(10), admin(hosts)).await {
        let _ = tokio::time::timeout(Duration::from_secs(10), c.delete("/attack-big", None)).await;
        c.close().await;
    }
    Ok(())
}

/// Java's `String.hashCode` (over UTF-16 units; the names here are ASCII).
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The `i`-th of 2^17 names of 17 blocks, each `Aa` or `BB` by the bits of `i`: all have the
/// same Java hash code, since `"Aa".hashCode() == "BB".hashCode()`.
fn colliding_name(i: usize) -> String {
    (0..17).map(|bit| if i >> bit & 1 == 1 { "BB" } else { "Aa" }).collect()
}

/// `collide`: many ephemeral nodes with colliding Java hash codes on one session.
async fn collide(hosts: &str, scale: Scale, out: &mut Outcome) -> conclave_core::Result<()> {
    let n = match scale {
        Scale::Small => 5_000,
        Scale::Full => 100_000,
    };
    let names: Vec<String> = (0..n).map(colliding_name).collect();
    let hash = java_hash(&names[0]);
    out.field("nodes", n);
    out.field("same_java_hash", names.iter().all(|s| java_hash(s) == hash));
    let observer = admin(hosts).await?;
    created_or_exists(observer.create("/attack-eph", b"", CreateMode::Persistent).await)?;
    let owner = admin(hosts).await?;

    let t = Instant::now();
    let results: Vec<conclave_core::Result<()>> = stream::iter(names.iter())
        .map(|name| {
            let reply = owner.create(&format!("/attack-eph/{name}"), b"", CreateMode::Ephemeral);
            async move { reply.await.map(|_| ()) }
        })
        .buffer_unordered(WINDOW)
        .collect()
        .await;
    out.phase("create", t);
    let failed = results.iter().filter(|r| r.is_err()).count();
    out.field("create_s", secs(t.elapsed()));
    out.field("create_failed", failed);
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        out.notes.push(format!("first create error: {e}"));
    }

    let t = Instant::now();
    let eph = owner.get_ephemerals("/attack-eph").await;
    out.phase("getEphemerals", t);
    out.field("get_ephemerals_s", secs(t.elapsed()));
    out.field("get_ephemerals", eph.map_or_else(|e| format!("error:{e:?}"), |v| v.len().to_string()));

    let t = Instant::now();
    let children = owner.get_children("/attack-eph").await;
    out.phase("getChildren", t);
    out.field("get_children_s", secs(t.elapsed()));
    out.field("get_children", children.map_or_else(|e| format!("error:{e:?}"), |v| v.len().to_string()));

    let t = Instant::now();
    owner.close().await;
    let closed = t.elapsed();
    out.field("close_s", secs(closed));
    let gone = loop {
        match observer.get_all_children_number("/attack-eph").await {
            Ok(0) => break Some(t.elapsed()),
            _ if t.elapsed() > Duration::from_secs(120) => break None,
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) if e.is_terminal() => {
                out.notes.push(format!("observer: {e}"));
                break None;
            }
            // The observer lost its connection while the server stalled: it reconnects.
            Err(e) => {
                out.notes.push(format!("observer at +{} s: {e}", secs(t.elapsed())));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    out.phase("close", t);
    out.field("nodes_gone_s", gone.map_or("not within 120 s".to_string(), secs));
    let _ = observer.delete("/attack-eph", None).await;
    observer.close().await;
    Ok(())
}

/// `counts`: a batch of `getAllChildrenNumber` of a large subtree in one write.
async fn counts(hosts: &str, scale: Scale, alternate: bool, out: &mut Outcome) -> conclave_core::Result<()> {
    let (width, depth, k) = match scale {
        Scale::Small => (100, 100, 200),
        Scale::Full => (100, 1000, 2000),
    };
    let c = admin(hosts).await?;
    let t = Instant::now();
    created_or_exists(c.create("/attack-tree", b"", CreateMode::Persistent).await)?;
    let want = (width + width * depth) as i32;
    let have = c.get_all_children_number("/attack-tree").await?;
    if have != want {
        let mut paths: Vec<String> = (0..width).map(|i| format!("/attack-tree/p{i}")).collect();
        for i in 0..width {
            paths.extend((0..depth).map(|j| format!("/attack-tree/p{i}/c{j}")));
        }
        // Parents first, in order, then all children.
        let (parents, kids) = paths.split_at(width);
        for batch in [parents, kids] {
            let results: Vec<conclave_core::Result<()>> = stream::iter(batch.iter())
                .map(|p| {
                    let reply = c.create(p, b"", CreateMode::Persistent);
                    async move { created_or_exists(reply.await) }
                })
                .buffer_unordered(WINDOW)
                .collect()
                .await;
            if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
                return Err(e);
            }
        }
        out.field("setup", "created");
    } else {
        out.field("setup", "reused");
    }
    out.phase("setup", t);
    out.field("subtree_nodes", c.get_all_children_number("/attack-tree").await?);
    c.close().await;

    let host = first_host(hosts);
    let (mut raw, _) = Raw::open(&host, 20_000).await.map_err(Error::Connect)?;
    let mut batch = BytesMut::new();
    for xid in 1..=k {
        let path = if alternate && xid % 2 == 0 { "/attack-tree/p0" } else { "/attack-tree" };
        frame::write_request_frame(&mut batch, xid, &Request::GetAllChildrenNumber { path: path.into() });
    }
    out.field("requests", k);
    out.field("write_bytes", batch.len());
    let t = Instant::now();
    raw.stream.write_all(&batch).await.map_err(|e| Error::Connect(e.to_string()))?;
    let (mut replies, mut errors, mut first, mut count) = (0, 0, None, None);
    let deadline = ATTACK_LIMIT - Duration::from_secs(30);
    let end = loop {
        if replies == k {
            break "all replies".to_string();
        }
        match tokio::time::timeout(deadline.saturating_sub(t.elapsed()), raw.next_frame(1 << 20)).await {
            Err(_) => break format!("timed out after {} s", deadline.as_secs()),
            Ok(Err(e)) => break e,
            Ok(Ok(None)) => break "connection closed".to_string(),
            Ok(Ok(Some(f))) => {
                first.get_or_insert(t.elapsed());
                let mut r = conclave_core::proto::Reader::new(f);
                let Ok(h) = ReplyHeader::decode(&mut r) else { continue };
                if h.xid < 0 {
                    continue; // a notification or ping
                }
                replies += 1;
                if h.err != 0 {
                    errors += 1;
                } else if count.is_none() {
                    if let Ok(Response::Count(n)) =
                        Response::decode(conclave_core::proto::OpCode::GetAllChildrenNumber, &mut r)
                    {
                        count = Some(n);
                    }
                }
            }
        }
    };
    out.phase("attack", t);
    out.field("end", format!("{end:?}"));
    out.field("replies", replies);
    out.field("reply_errors", errors);
    out.field("count_answer", count.map_or("-".to_string(), |n| n.to_string()));
    out.field("first_reply_s", first.map_or("-".to_string(), secs));
    out.field("all_replies_s", secs(t.elapsed()));
    raw.close().await;
    Ok(())
}

/// `fourlw`: which four-letter words answer an unauthenticated connection.
async fn fourlw(hosts: &str, out: &mut Outcome) -> conclave_core::Result<()> {
    let host = first_host(hosts);
    let t = Instant::now();
    let (mut answered, mut refused) = (Vec::new(), Vec::new());
    for word in ["dump", "wchc", "wchp", "cons", "mntr", "srvr", "ruok", "stat", "envi", "conf"] {
        let ask = async {
            let mut s = TcpStream::connect(&host).await?;
            s.write_all(word.as_bytes()).await?;
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await?;
            std::io::Result::Ok(answer)
        };
        let answer = match tokio::time::timeout(Duration::from_secs(5), ask).await {
            Err(_) => {
                refused.push(format!("{word}(no answer in 5 s)"));
                continue;
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                refused.push(format!("{word}(reset)"));
                continue;
            }
            Ok(Err(e)) => {
                refused.push(format!("{word}({e})"));
                continue;
            }
            Ok(Ok(a)) => a,
        };
        let text = String::from_utf8_lossy(&answer);
        if answer.is_empty() {
            refused.push(format!("{word}(empty)"));
        } else if text.contains("not in the whitelist") || text.contains("not executed") {
            refused.push(format!("{word}(\"{}\")", text.trim()));
        } else {
            answered.push(format!("{word}:{}B", answer.len()));
            if word == "dump" {
                let eph = text.contains("/attack-bystander");
                let sid = text.contains("0x");
                out.field("dump_shows_ephemeral_paths", eph);
                out.field("dump_shows_session_ids", sid);
            }
            if word == "wchp" {
                out.field("wchp_shows_watched_paths", text.contains("/attack-bystander"));
            }
            if word == "cons" {
                out.field("cons_shows_session_ids", text.contains("sid=0x"));
            }
        }
        out.notes.push(format!("{word}: {} bytes: {:?}", answer.len(), text.chars().take(120).collect::<String>()));
    }
    out.phase("attack", t);
    out.field("answered", if answered.is_empty() { "none".to_string() } else { answered.join(",") });
    out.field("refused", if refused.is_empty() { "none".to_string() } else { refused.join(",") });
    Ok(())
}

/// Whether a socket that never sent anything has been closed by the server (without waiting).
fn closed_by_server(s: &TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.try_read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// `lockout`: idle connections from one address, then a new session.
async fn lockout(hosts: &str, out: &mut Outcome) -> conclave_core::Result<()> {
    let host = first_host(hosts);
    let t = Instant::now();
    let mut idle: Vec<(TcpStream, Instant)> = Vec::new();
    let mut connect_failed = 0;
    let mut first_refused = None;
    let mut first_idle_closed = None;
    let mut probes = Vec::new();
    for target in 60..=100 {
        while idle.len() + connect_failed < target {
            match TcpStream::connect(&host).await {
                Ok(s) => idle.push((s, Instant::now())),
                Err(_) => connect_failed += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let open = idle.iter().filter(|(s, _)| !closed_by_server(s)).count();
        if first_idle_closed.is_none() && open < idle.len() {
            first_idle_closed = Some(target);
        }
        let probe = Raw::open(&host, 4000).await;
        let ok = probe.is_ok();
        match probe {
            Ok((raw, _)) => raw.close().await,
            Err(e) => {
                first_refused.get_or_insert((target, e));
            }
        }
        probes.push(format!("{target}:{}/{}", if ok { "ok" } else { "REFUSED" }, open));
    }
    out.phase("attack", t);
    out.notes.push(format!("probe at idle count: result/idle still open: {}", probes.join(" ")));
    out.field(
        "first_refused_at_idle",
        first_refused.as_ref().map_or("never (up to 100)".to_string(), |(k, _)| k.to_string()),
    );
    if let Some((_, e)) = &first_refused {
        out.field("refusal", format!("{e:?}"));
    }
    let open = idle.iter().filter(|(s, _)| !closed_by_server(s)).count();
    out.field("idle_open_of_100", open);
    out.field("idle_connect_failed", connect_failed);
    out.field("first_idle_closed_at", first_idle_closed.map_or("-".to_string(), |k: usize| k.to_string()));
    // How long the server keeps connections that never say hello.
    let t = Instant::now();
    let held = loop {
        let open = idle.iter().filter(|(s, _)| !closed_by_server(s)).count();
        if open == 0 {
            break format!("all closed {} s after the last opened", secs(idle.last().map_or(t, |l| l.1).elapsed()));
        }
        if t.elapsed() > Duration::from_secs(30) {
            break format!("{open} still open after 30 s more");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    out.phase("hold", t);
    out.field("idle_fate", format!("{held:?}"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running and reporting

/// A fresh session that answers `exists("/")` within 10 s, if the server is alive.
async fn alive(hosts: &str) -> Option<Client> {
    let check = async {
        let c = Client::builder()
            .session_timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(10))
            .connect(hosts)
            .await
            .ok()?;
        c.exists("/").await.ok()?;
        Some(c)
    };
    tokio::time::timeout(Duration::from_secs(10), check).await.ok().flatten()
}

/// Runs one attack with a bystander and prints its line.
async fn run(name: &str, args: &Args) {
    let mut bystander = match Bystander::start(&args.hosts, name).await {
        Ok(b) => b,
        Err(e) => {
            println!("attack={name} alive=no error=\"bystander could not start: {e}\"");
            return;
        }
    };
    let sampler = args.pid.map(RssSampler::start);
    let started = Instant::now();
    let mut out = Outcome::default();
    let (hosts, scale) = (args.hosts.as_str(), args.scale);
    let attack = async {
        match name {
            "amplify" => amplify(hosts, scale, &mut out).await,
            "collide" => collide(hosts, scale, &mut out).await,
            "counts" => counts(hosts, scale, false, &mut out).await,
            "counts_alt" => counts(hosts, scale, true, &mut out).await,
            "fourlw" => fourlw(hosts, &mut out).await,
            _ => lockout(hosts, &mut out).await,
        }
    };
    let result = tokio::time::timeout(ATTACK_LIMIT, attack).await;
    let duration = started.elapsed();
    let by = bystander.started;
    let ephemeral = bystander.ephemeral.clone();
    let stopped = Instant::now();
    let report = bystander.finish().await;
    let check = alive(&args.hosts).await;
    // Before the bystander closes its session: its ephemeral node is gone only if the server
    // expired the session.
    let server_expired = match &check {
        Some(c) => {
            let gone = matches!(c.exists(&ephemeral).await, Ok(None));
            c.close().await;
            if gone {
                "YES"
            } else {
                "no"
            }
        }
        None => "unknown",
    };
    bystander.close().await;
    let memory = sampler.map(RssSampler::finish);

    // The longest time without a successful reply, from the bystander's start to its end.
    let mut done: Vec<Instant> = report.samples.iter().filter(|s| s.ok).map(|s| s.at + s.latency).collect();
    done.sort_unstable();
    let mut gap = Duration::ZERO;
    let mut last = by;
    for t in done.into_iter().chain([stopped]) {
        gap = gap.max(t.saturating_duration_since(last));
        last = last.max(t);
    }
    let failed = report.samples.iter().filter(|s| !s.ok).count();
    let mut lat: Vec<Duration> = report.samples.iter().map(|s| s.latency).collect();
    let max = lat.iter().copied().max().unwrap_or_default();
    let p99 = percentile(&mut lat, 99.0);
    let status = match &result {
        Err(_) => "timed out".to_string(),
        Ok(Err(e)) => format!("error: {e}"),
        Ok(Ok(())) => "done".to_string(),
    };
    let mut line = format!(
        "attack={name} scale={:?} alive={} status={status:?} duration_s={} bystander_max_ms={} bystander_p99_ms={} \
         bystander_requests={} bystander_failed={failed} bystander_longest_gap_ms={} bystander_expired_client={} bystander_expired_server={server_expired}",
        args.scale,
        if check.is_some() { "yes" } else { "NO" },
        secs(duration),
        ms(max),
        ms(p99),
        report.samples.len(),
        ms(gap),
        if report.expired_client { "YES" } else { "no" },
    );
    if let Some((peak, hwm, gone)) = memory {
        line.push_str(&format!(" server_rss_peak_mb={} server_hwm_mb={}", peak / 1024, hwm / 1024));
        if gone {
            line.push_str(" server_process=GONE");
        }
    }
    for (k, v) in &out.fields {
        line.push_str(&format!(" {k}={v}"));
    }
    println!("{line}");
    println!(
        "#   bystander: negotiated timeout {} ms, errors {}{}, states {:?}",
        report.negotiated.as_millis(),
        report.errors.len(),
        report.errors.first().map_or(String::new(), |e| format!(" (first: {e})")),
        report.states.iter().map(|(t, s)| format!("{s:?}@{}s", secs(*t))).collect::<Vec<_>>(),
    );
    if report.unfinished {
        println!("#   bystander: a request was still unanswered when the attack ended (counted with its wait so far)");
    }
    for (phase, from, to) in &out.phases {
        let worst = report
            .samples
            .iter()
            .filter(|s| s.at < *to && s.at + s.latency > *from)
            .map(|s| s.latency)
            .max()
            .unwrap_or_default();
        println!(
            "#   phase {phase}: {} s (from +{} s), bystander worst overlapping request {} ms",
            secs(*to - *from),
            secs(from.saturating_duration_since(by)),
            ms(worst)
        );
    }
    for note in &out.notes {
        println!("#   {note}");
    }
}

/// Parses the arguments and runs the attacks in order.
#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "attack: {e}\nusage: attack --hosts HOST:PORT [--only {}] [--scale small|full] [--pid PID]",
                ALL.join(",")
            );
            std::process::exit(2);
        }
    };
    println!(
        "# attack target={} scale={:?} pid={:?} attacks={}",
        args.hosts,
        args.scale,
        args.pid,
        args.only.join(",")
    );
    for name in &args.only {
        run(name, &args).await;
    }
}
