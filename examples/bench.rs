//! Benchmarks with the same definitions and metric names as the peer harness in
//! `../shared/peers/` (see its `RESULTS.md`), printing one `name value unit` line per metric
//! (`#` lines are comments).
//!
//! ```text
//! cargo run --release --example bench                         # fresh embedded server, in-process
//! cargo run --release --example bench -- --tcp                # fresh embedded server over loopback TCP
//! cargo run --release --example bench -- --hosts 127.0.0.1:2181 [--only raw_sync,lock_contended]
//! ```
//!
//! - `raw_sync`: 5000 sequential ops on one session, cycles of create / getData / setData /
//!   delete of 16-byte nodes, after a warm-up of 2000 ops; ops/s and per-op p50/p99 (µs).
//! - `raw_async`: 20 000 getData of one node with at most 1000 in flight on one session; the
//!   median of 3 repetitions after a 5000-request warm-up.
//! - `lock_uncontended`: 2000 acquire + release cycles of one [`Mutex`] by one client after 300
//!   warm-up cycles, the release awaited (`guard.release().await`); cycles/s and per-cycle
//!   p50/p99 (µs). Then 500 more cycles count the requests a cycle costs, on the client (every
//!   request the session sends, by op, split between acquire and release) and on the server
//!   (its `srvr` "Received" counter, pings included): `lock_uncontended_requests_per_cycle`
//!   is the server's count. Last, `lock_uncontended_floor_cycles_per_s`: the same three
//!   requests sent directly with the client (no recipe), in blocks interleaved with lock cycles.
//! - `lock_contended`: 8 sessions loop acquire / hold ≈ 0 / release on one lock path for 10 s;
//!   acq/s, handoff p50/p99 (from the releaser's timestamp taken just before its release to the
//!   next holder's acquire returning), violations of mutual exclusion seen by a shared holder
//!   counter, errors (an acquire that failed or gave up after 15 s, a release that failed) and
//!   min_client_share (the smallest per-client count ÷ the mean).
//! - `leader_failover`: 5 participants, each on its own session, in one [`Election`]; the leader
//!   closes its session (`Client::close`); the time from just before the close call until the
//!   next participant's campaign returns; 20 rounds, the closed participant replaced by a fresh
//!   one after each; p50 and max, and `close_call` (how long the close call itself took).
//! - `double_barrier`: 8 participants, each on its own session, `enter()` then `leave()` on a
//!   [`DoubleBarrier`] of 8; the time until the last `leave()` returns; a fresh barrier path per
//!   round; 10 rounds; p50 and max.
//! - `queue`: 2000 items of 16 bytes, producer and consumer on separate sessions: `put` = fill
//!   an empty queue, one `put` after the other; `take` = drain the 2000, one `take` after the
//!   other; `concurrent` = producer and consumer together, the producer pipelining its puts (up
//!   to 64 in flight, which keeps their order) and the consumer taking `take_batch(100)`,
//!   waiting when the queue is empty; items/s each. Ours only: `concurrent_sequential` (one
//!   call after the other on both sides) and `take_batch` (a full queue drained in batches of
//!   100), `drain_4_consumers` (a full queue drained by 4 consumers on their own sessions,
//!   `take_batch(32)` each). The same six for the at-least-once mode (`queue_ack_*`: `claim` / `claim_batch`,
//!   then the acks, pipelined).
//! - `counter`: 8 clients on their own sessions increment one counter (created beforehand, 0)
//!   for a 1 s warm-up and 10 s, with the peers' retry policy (a lost race sleeps 1 ms, at most
//!   1000 retries): increments/s in the window, p50 and p99 per call (µs, its retries
//!   included), failed calls, and `counter_final_ok` (the final value equals the successful
//!   increments), and `counter_min_client_share` (the fewest increments of one client in the
//!   window ÷ the mean; a `#` line gives each client's count, p99.9 and the slowest call). With
//!   the exactly-once marker (`counter_*`) and, ours only, without it (`counter_unmarked_*`)
//!   and promoted to a lock after 2 lost races (`counter_promoted_*`: with markers, and not
//!   starting from the last write; env `PROMOTE_AFTER` changes the 2). The others start each
//!   change from their handle's last write (`RetryChange::reuse_last_write`, the default).
//! - `lock_many` (ours only): 1000 distinct lock paths acquired at once on one session (all
//!   1000 acquires in flight together), timed until all are held, then all released together;
//!   acquisitions/s, the median of 5 repetitions after one warm-up on the same paths.

#[path = "support/stats.rs"]
mod stats;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conclave::atomic::{Counter, RetryChange};
use conclave::barrier::DoubleBarrier;
use conclave::leader::{Election, Leadership};
use conclave::lock::Mutex;
use conclave::queue::Queue;
use conclave::{Client, CreateMode, Result, ZkError};
use futures::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use stats::percentile;

/// Every benchmark, in the order they run by default.
const ALL: [&str; 9] = [
    "raw_sync",
    "raw_async",
    "lock_uncontended",
    "lock_contended",
    "lock_many",
    "leader_failover",
    "queue",
    "double_barrier",
    "counter",
];

/// Every benchmark stops after this long, whatever its count.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Args {
    hosts: Option<String>,
    only: Option<Vec<String>>,
    tcp: bool,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--hosts" => args.hosts = Some(it.next().ok_or("--hosts needs a value")?),
            "--only" => {
                let list = it.next().ok_or("--only needs a value")?;
                args.only = Some(list.split(',').map(str::to_string).collect());
            }
            "--tcp" => args.tcp = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Prints `value` with 6 significant digits, without trailing zeros.
fn emit(metric: &str, value: f64, unit: &str) {
    let text = if value == 0.0 || !value.is_finite() {
        format!("{value}")
    } else {
        let decimals = (5 - value.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{value:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    println!("{metric} {text} {unit}");
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Where the benchmark clients connect.
#[derive(Clone)]
enum Target {
    Hosts(String),
    Embedded(conclave::ServerHandle, bool),
}

impl Target {
    async fn connect(&self) -> Result<Client> {
        let builder =
            Client::builder().session_timeout(Duration::from_secs(10)).connect_timeout(Duration::from_secs(15));
        Ok(match self {
            Target::Hosts(h) => builder.connect(h).await?,
            Target::Embedded(server, true) => builder.connect(&server.connect_string()).await?,
            Target::Embedded(server, false) => builder.connect_in_process(server).await?,
        })
    }
}

async fn raw_sync(target: &Target, root: &str, n: usize, warm: usize) -> Result<()> {
    let c = target.connect().await?;
    let base = format!("{root}/raw_sync");
    c.create(&base, b"", CreateMode::Persistent).await?;
    let data = [b'x'; 16];
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    let mut t0 = Instant::now();
    let mut i = 0usize;
    while lat.len() < n && started.elapsed() < LIMIT {
        let record = i >= warm / 4;
        if record && lat.is_empty() {
            t0 = Instant::now();
        }
        let p = format!("{base}/n{i}");
        let t = Instant::now();
        c.create(&p, &data, CreateMode::Persistent).await?;
        let t1 = Instant::now();
        c.get_data(&p).await?;
        let t2 = Instant::now();
        c.set_data(&p, &data, None).await?;
        let t3 = Instant::now();
        c.delete(&p, None).await?;
        let t4 = Instant::now();
        if record {
            lat.extend([t1 - t, t2 - t1, t3 - t2, t4 - t3]);
        }
        i += 1;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    emit("raw_sync_ops_per_s", lat.len() as f64 / elapsed, "ops/s");
    emit("raw_sync_p50", micros(percentile(&mut lat, 50.0)), "us");
    emit("raw_sync_p99", micros(percentile(&mut lat, 99.0)), "us");
    c.close().await;
    Ok(())
}

async fn raw_async(target: &Target, root: &str, n: usize, window: usize, warm: usize, reps: usize) -> Result<()> {
    let c = target.connect().await?;
    let p = format!("{root}/raw_async");
    c.create(&p, &[b'y'; 16], CreateMode::Persistent).await?;
    let mut rates = Vec::new();
    let mut errors = 0usize;
    // Round 0 is the warm-up, then `reps` measured repetitions.
    for round in 0..=reps {
        let total = if round == 0 { warm } else { n };
        let t0 = Instant::now();
        let ok: Vec<bool> = stream::iter(0..total)
            .map(|_| {
                let reply = c.get_data(&p); // queued now, awaited below
                async move { reply.await.is_ok() }
            })
            .buffer_unordered(window)
            .collect()
            .await;
        let elapsed = t0.elapsed().as_secs_f64();
        if round > 0 {
            rates.push(ok.len() as f64 / elapsed);
            errors += ok.iter().filter(|ok| !**ok).count();
        }
    }
    rates.sort_by(f64::total_cmp);
    emit("raw_async_ops_per_s", rates[rates.len() / 2], "ops/s");
    emit("raw_async_errors", errors as f64, "count");
    c.close().await;
    Ok(())
}

/// Counts the requests clients send, by op, from the client's per-request `zk_request` span,
/// while switched on. Installed as the global subscriber; it enables nothing else, and while
/// off the span costs one atomic load per request.
struct RequestCounter {
    on: AtomicBool,
    counts: std::sync::Mutex<BTreeMap<String, u64>>,
}

static REQUESTS: RequestCounter =
    RequestCounter { on: AtomicBool::new(false), counts: std::sync::Mutex::new(BTreeMap::new()) };

impl RequestCounter {
    fn install() {
        struct Global;
        impl tracing::Subscriber for Global {
            fn register_callsite(&self, meta: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
                if meta.is_span() && meta.name() == "zk_request" {
                    tracing::subscriber::Interest::sometimes()
                } else {
                    tracing::subscriber::Interest::never()
                }
            }
            fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
                meta.name() == "zk_request" && REQUESTS.on.load(Ordering::Relaxed)
            }
            fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                struct Op(String);
                impl tracing::field::Visit for Op {
                    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                        if field.name() == "op" {
                            self.0 = value.to_string();
                        }
                    }
                    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                        if field.name() == "op" {
                            self.0 = format!("{value:?}");
                        }
                    }
                }
                let mut op = Op(String::new());
                span.record(&mut op);
                *REQUESTS.counts.lock().unwrap().entry(op.0).or_default() += 1;
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        if tracing::subscriber::set_global_default(Global).is_err() {
            println!("# a tracing subscriber was already installed: client-side request counts unavailable");
        }
    }

    /// Starts counting from zero.
    fn start() {
        REQUESTS.counts.lock().unwrap().clear();
        REQUESTS.on.store(true, Ordering::SeqCst);
    }

    /// The requests counted so far, by op.
    fn snapshot() -> BTreeMap<String, u64> {
        REQUESTS.counts.lock().unwrap().clone()
    }

    fn stop() -> BTreeMap<String, u64> {
        REQUESTS.on.store(false, Ordering::SeqCst);
        Self::snapshot()
    }
}

fn total(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().sum()
}

/// Adds `after - before`, by op, to `acc`.
fn add_diff(acc: &mut BTreeMap<String, u64>, before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) {
    for (op, n) in after {
        let d = n - before.get(op).copied().unwrap_or(0);
        if d > 0 {
            *acc.entry(op.clone()).or_default() += d;
        }
    }
}

/// Counts by op as `op=count/per` text.
fn per_op(counts: &BTreeMap<String, u64>, per: usize) -> String {
    let parts: Vec<String> = counts.iter().map(|(op, n)| format!("{op}={:.2}", *n as f64 / per as f64)).collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

/// The server's `Received` request counter (`srvr`; pings and handshakes included), if it
/// answers four-letter words.
async fn server_received(target: &Target) -> Option<u64> {
    let addr = match target {
        Target::Hosts(h) => {
            let first = h.split(',').next()?;
            first.split('/').next()?.to_string()
        }
        Target::Embedded(server, _) => server.local_addr()?.to_string(),
    };
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await.ok()?;
        s.write_all(b"srvr").await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        out.lines().find_map(|l| l.strip_prefix("Received: ")).and_then(|v| v.trim().parse().ok())
    };
    tokio::time::timeout(Duration::from_secs(5), ask).await.ok().flatten()
}

async fn lock_uncontended(target: &Target, root: &str, n: usize, warm: usize, counted: usize) -> Result<()> {
    let c = target.connect().await?;
    let m = Mutex::new(c.clone(), &format!("{root}/lock_u"));
    for _ in 0..warm {
        m.lock().await?.release().await?;
    }
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    while lat.len() < n && t0.elapsed() < LIMIT {
        let t = Instant::now();
        let guard = m.lock().await?;
        guard.release().await?;
        lat.push(t.elapsed());
    }
    let elapsed = t0.elapsed().as_secs_f64();
    emit("lock_uncontended_cycles_per_s", lat.len() as f64 / elapsed, "cycles/s");
    emit("lock_uncontended_p50", micros(percentile(&mut lat, 50.0)), "us");
    emit("lock_uncontended_p99", micros(percentile(&mut lat, 99.0)), "us");

    // Requests per cycle, outside the timed part: the client's count by op, split between
    // acquire and release, and the server's count.
    let server_before = server_received(target).await;
    RequestCounter::start();
    let (mut acquire, mut release) = (BTreeMap::new(), BTreeMap::new());
    let (mut acquire_lat, mut release_lat) = (Vec::with_capacity(counted), Vec::with_capacity(counted));
    let t1 = Instant::now();
    for _ in 0..counted {
        let a = RequestCounter::snapshot();
        let t = Instant::now();
        let guard = m.lock().await?;
        let locked = Instant::now();
        let b = RequestCounter::snapshot();
        guard.release().await?;
        let released = Instant::now();
        acquire_lat.push(locked - t);
        release_lat.push(released - locked);
        let r = RequestCounter::snapshot();
        add_diff(&mut acquire, &a, &b);
        add_diff(&mut release, &b, &r);
    }
    let window = t1.elapsed();
    let client = RequestCounter::stop();
    let server_after = server_received(target).await;
    println!(
        "# lock_uncontended requests sent per cycle (client side, {counted} cycles): acquire {:.2} [{}], release {:.2} [{}]",
        total(&acquire) as f64 / counted as f64,
        per_op(&acquire, counted),
        total(&release) as f64 / counted as f64,
        per_op(&release, counted),
    );
    println!(
        "# lock_uncontended in those cycles: acquire p50 {:.0} us, release p50 {:.0} us (one round trip each if pipelined)",
        micros(percentile(&mut acquire_lat, 50.0)),
        micros(percentile(&mut release_lat, 50.0))
    );
    if total(&client) > 0 {
        emit("lock_uncontended_client_requests_per_acquire", total(&acquire) as f64 / counted as f64, "requests");
        emit("lock_uncontended_client_requests_per_release", total(&release) as f64 / counted as f64, "requests");
    }
    match (server_before, server_after) {
        (Some(before), Some(after)) => {
            println!(
                "# lock_uncontended server received {} requests in {counted} cycles ({:.0} ms, pings of every open session included)",
                after - before,
                window.as_secs_f64() * 1e3
            );
            emit("lock_uncontended_requests_per_cycle", (after - before) as f64 / counted as f64, "requests");
        }
        _ => {
            println!(
                "# lock_uncontended: the server's srvr counter is unavailable; requests per cycle from the client side"
            );
            emit("lock_uncontended_requests_per_cycle", total(&client) as f64 / counted as f64, "requests");
        }
    }

    // The floor for this design: the same three requests sent directly (create and getChildren
    // back to back, then the delete), in blocks alternating with blocks of lock cycles so that
    // both see the same machine.
    let dir = format!("{root}/lock_u");
    let (mut lock_time, mut floor_time) = (Duration::ZERO, Duration::ZERO);
    let (blocks, per_block) = (10, 100);
    for _ in 0..blocks {
        let t = Instant::now();
        for _ in 0..per_block {
            m.lock().await?.release().await?;
        }
        lock_time += t.elapsed();
        let t = Instant::now();
        for _ in 0..per_block {
            let created = c.create(&format!("{dir}/floor-"), b"", CreateMode::EphemeralSequential);
            let listing = c.get_children(&dir);
            let (own, _) = created.await?;
            listing.await?;
            c.delete(&own, None).await?;
        }
        floor_time += t.elapsed();
    }
    let cycles = (blocks * per_block) as f64;
    println!(
        "# lock_uncontended vs the same requests sent directly, interleaved blocks: lock {:.0} cycles/s, direct {:.0} cycles/s",
        cycles / lock_time.as_secs_f64(),
        cycles / floor_time.as_secs_f64()
    );
    emit("lock_uncontended_floor_cycles_per_s", cycles / floor_time.as_secs_f64(), "cycles/s");
    c.close().await;
    Ok(())
}

/// The state the contending clients share, to check what the lock promises.
#[derive(Default)]
struct Shared {
    holders: i32,
    violations: u64,
    last_release: Option<Instant>,
    handoffs: Vec<Duration>,
}

async fn lock_contended(target: &Target, root: &str, clients: usize, secs: f64) -> Result<()> {
    let path = format!("{root}/lock_c");
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        sessions.push(target.connect().await?);
    }
    let shared = std::sync::Arc::new(std::sync::Mutex::new(Shared::default()));
    let errors = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    let t_end = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(clients);
    for c in &sessions {
        let m = Mutex::new(c.clone(), &path);
        let (shared, errors, start) = (shared.clone(), errors.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let mut mine = 0u64;
            while Instant::now() < t_end {
                let guard = match m.lock_timeout(Duration::from_secs(15)).await {
                    Ok(Some(g)) => g,
                    Ok(None) | Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let t = Instant::now();
                {
                    let mut s = shared.lock().unwrap();
                    s.holders += 1;
                    if s.holders != 1 {
                        s.violations += 1;
                    }
                    if t < t_end {
                        if let Some(r) = s.last_release {
                            s.handoffs.push(t - r);
                        }
                        mine += 1;
                    }
                }
                // Hold ≈ 0, but let the other tasks run: a second holder would be counted above.
                tokio::task::yield_now().await;
                {
                    let mut s = shared.lock().unwrap();
                    s.holders -= 1;
                    s.last_release = Some(Instant::now());
                }
                if guard.release().await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            mine
        }));
    }
    start.wait().await;
    let mut per = Vec::with_capacity(clients);
    for t in tasks {
        per.push(t.await.map_err(|e| ZkError::Io(format!("lock_contended task failed: {e}")))?);
    }
    let total: u64 = per.iter().sum();
    let min = per.iter().copied().min().unwrap_or(0);
    {
        let mut s = shared.lock().unwrap();
        emit("lock_contended_acq_per_s", total as f64 / secs, "acq/s");
        emit("lock_contended_handoff_p50", micros(percentile(&mut s.handoffs, 50.0)), "us");
        emit("lock_contended_handoff_p99", micros(percentile(&mut s.handoffs, 99.0)), "us");
        emit("lock_contended_violations", s.violations as f64, "count");
        emit("lock_contended_errors", errors.load(Ordering::Relaxed) as f64, "count");
        emit("lock_contended_min_client_share", min as f64 / total.max(1) as f64 * clients as f64, "ratio");
    }
    for c in &sessions {
        c.close().await;
    }
    Ok(())
}

async fn lock_many(target: &Target, root: &str, n: usize, reps: usize) -> Result<()> {
    let c = target.connect().await?;
    let locks: Vec<Mutex> = (0..n).map(|i| Mutex::new(c.clone(), &format!("{root}/lock_m/l{i}"))).collect();
    let (mut rates, mut release_rates) = (Vec::new(), Vec::new());
    let mut errors = 0usize;
    // Round 0 is the warm-up (it also creates the lock directories), then `reps` measured
    // rounds, then one untimed round counting the requests sent.
    for round in 0..=reps + 1 {
        let counting = round == reps + 1;
        if counting {
            RequestCounter::start();
        }
        let t0 = Instant::now();
        let acquired = futures::future::join_all(locks.iter().map(Mutex::lock)).await;
        let took = t0.elapsed();
        let acquire_requests = if counting { total(&RequestCounter::snapshot()) } else { 0 };
        let mut guards = Vec::with_capacity(n);
        for a in acquired {
            match a {
                Ok(g) => guards.push(g),
                Err(_) => errors += 1,
            }
        }
        let held = guards.len();
        let t1 = Instant::now();
        let released = futures::future::join_all(guards.into_iter().map(|g| g.release())).await;
        let release_took = t1.elapsed();
        errors += released.iter().filter(|r| r.is_err()).count();
        if counting {
            let all = total(&RequestCounter::stop());
            println!(
                "# lock_many requests sent (client side): {:.2} per acquire, {:.2} per release",
                acquire_requests as f64 / n as f64,
                (all - acquire_requests) as f64 / held.max(1) as f64
            );
        } else if round == 0 {
            println!(
                "# lock_many warm-up (creates the lock directories): {:.0} acq/s",
                held as f64 / took.as_secs_f64()
            );
        } else {
            rates.push(held as f64 / took.as_secs_f64());
            release_rates.push(held as f64 / release_took.as_secs_f64());
        }
    }
    rates.sort_by(f64::total_cmp);
    release_rates.sort_by(f64::total_cmp);
    println!("# lock_many acq/s per repetition (sorted): {rates:.0?}");
    emit("lock_many_acq_per_s", rates[rates.len() / 2], "acq/s");
    emit("lock_many_release_per_s", release_rates[release_rates.len() / 2], "releases/s");
    emit("lock_many_errors", errors as f64, "count");
    c.close().await;
    Ok(())
}

/// A participant elected: who, when its campaign returned, its leadership and its client.
type Elected = (usize, Instant, Leadership, Client);

/// Starts participant `i` of the election on `path`: its own session, campaigning until elected.
async fn participant(
    target: &Target,
    path: &str,
    i: usize,
    elected: &tokio::sync::mpsc::UnboundedSender<Elected>,
) -> Result<Client> {
    let client = target.connect().await?;
    let election = Election::new(client.clone(), path).with_id(format!("p{i}"));
    let (elected, c) = (elected.clone(), client.clone());
    tokio::spawn(async move {
        if let Ok(leadership) = election.campaign().await {
            let _ = elected.send((i, Instant::now(), leadership, c));
        }
    });
    Ok(client)
}

/// The next participant elected (30 s at most).
async fn next_elected(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Elected>) -> Result<Elected> {
    match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        Ok(Some(elected)) => Ok(elected),
        _ => Err(ZkError::Io("no participant was elected within 30 s".into()).into()),
    }
}

async fn leader_failover(target: &Target, root: &str, n: usize, rounds: usize) -> Result<()> {
    let path = format!("{root}/leader_failover");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Elected>();
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(participant(target, &path, i, &tx).await?);
    }
    let mut leader = next_elected(&mut rx).await?;
    let (mut failover, mut close_call) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (_, _, leadership, client) = leader;
        let t = Instant::now();
        client.close().await;
        close_call.push(t.elapsed());
        leader = next_elected(&mut rx).await?;
        failover.push(leader.1.duration_since(t));
        // The session is closed: the leadership's drop finds nothing left to delete.
        drop(leadership);
        clients.push(participant(target, &path, n + round, &tx).await?);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    emit("leader_failover_p50", ms(percentile(&mut failover, 50.0)), "ms");
    emit("leader_failover_max", ms(percentile(&mut failover, 100.0)), "ms");
    emit("leader_failover_close_call_p50", ms(percentile(&mut close_call, 50.0)), "ms");
    emit("leader_failover_rounds", rounds as f64, "count");
    let (_, _, leadership, _) = leader;
    drop(leadership);
    for c in clients {
        c.close().await;
    }
    Ok(())
}

async fn double_barrier(target: &Target, root: &str, n: usize, rounds: usize) -> Result<()> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(target.connect().await?);
    }
    let mut took = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let path = format!("{root}/double_barrier/r{round}");
        let t = Instant::now();
        let members = clients.iter().enumerate().map(|(i, c)| {
            let barrier = DoubleBarrier::new(c.clone(), &path, format!("m{i}"), n);
            async move {
                barrier.enter().await?;
                barrier.leave().await
            }
        });
        for done in futures::future::join_all(members).await {
            done?;
        }
        took.push(t.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    emit("double_barrier_p50", ms(percentile(&mut took, 50.0)), "ms");
    emit("double_barrier_max", ms(percentile(&mut took, 100.0)), "ms");
    for c in clients {
        c.close().await;
    }
    Ok(())
}

/// The `queue` benchmark (see the module docs), at most once and then at least once.
async fn queue(target: &Target, root: &str, items: usize) -> Result<()> {
    let (p, c) = (target.connect().await?, target.connect().await?);
    let rate = |n: usize, t: Instant| n as f64 / t.elapsed().as_secs_f64();
    for ack in [false, true] {
        let prefix = if ack { "queue_ack" } else { "queue" };
        let queues = |name: &str| {
            let path = format!("{root}/{prefix}/{name}");
            (Queue::new(p.clone(), &path), Queue::new(c.clone(), &path))
        };
        // Fill, then drain, one call per item.
        let (producer, consumer) = queues("fill");
        let t = Instant::now();
        put_items(&producer, items, 1).await?;
        emit(&format!("{prefix}_put_per_s"), rate(items, t), "items/s");
        let t = Instant::now();
        consume_items(consumer, items, ack, 1).await?;
        emit(&format!("{prefix}_take_per_s"), rate(items, t), "items/s");
        // Producer and consumer together: puts pipelined (in order), takes in batches; then,
        // ours only, one call per item on both sides.
        for (metric, in_flight, batch) in [("concurrent", 64, 100), ("concurrent_sequential", 1, 1)] {
            let (producer, consumer) = queues(metric);
            let t = Instant::now();
            let consuming = tokio::spawn(consume_items(consumer, items, ack, batch));
            put_items(&producer, items, in_flight).await?;
            consuming.await.map_err(|e| ZkError::Io(format!("consumer task failed: {e}")))??;
            emit(&format!("{prefix}_{metric}_items_per_s"), rate(items, t), "items/s");
        }
        // Ours only: a full queue drained in batches.
        let (producer, consumer) = queues("batch");
        put_items(&producer, items, 64).await?;
        let t = Instant::now();
        consume_items(consumer, items, ack, 100).await?;
        emit(&format!("{prefix}_take_batch_per_s"), rate(items, t), "items/s");
        // Ours only: a full queue drained by 4 consumers on their own sessions, in batches.
        let path = format!("{root}/{prefix}/consumers4");
        put_items(&Queue::new(p.clone(), &path), items, 64).await?;
        let mut consumers = Vec::new();
        for _ in 0..4 {
            consumers.push(Queue::new(target.connect().await?, &path));
        }
        let t = Instant::now();
        let left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(items));
        let drains = consumers.iter().cloned().map(|queue| {
            let left = left.clone();
            async move {
                while left.load(Ordering::SeqCst) > 0 {
                    let wait = Duration::from_millis(100);
                    let got = if ack {
                        let claims = queue.claim_batch_timeout(32, wait).await?.unwrap_or_default();
                        let n = claims.len();
                        for acked in futures::future::join_all(claims.into_iter().map(|c| c.ack())).await {
                            acked?;
                        }
                        n
                    } else {
                        queue.take_batch_timeout(32, wait).await?.map_or(0, |b| b.len())
                    };
                    left.fetch_sub(got, Ordering::SeqCst);
                }
                Ok::<_, conclave::Error>(())
            }
        });
        for drained in futures::future::join_all(drains).await {
            drained?;
        }
        emit(&format!("{prefix}_drain_4_consumers_per_s"), rate(items, t), "items/s");
        for queue in consumers {
            queue.client().close().await;
        }
    }
    p.close().await;
    c.close().await;
    Ok(())
}

/// The `counter` benchmark (see the module docs): with markers, without, and promoted to a lock.
async fn counter(target: &Target, root: &str, clients: usize, warm: f64, secs: f64) -> Result<()> {
    // After how many lost races a promoted change takes the lock.
    let promote_after: u32 = std::env::var("PROMOTE_AFTER").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    for (prefix, marked, promoted) in
        [("counter", true, false), ("counter_unmarked", false, false), ("counter_promoted", true, true)]
    {
        let path = format!("{root}/{prefix}");
        let admin = target.connect().await?;
        admin.create(&path, &0i64.to_be_bytes()[..], CreateMode::Persistent).await?;
        let mut sessions = Vec::new();
        for _ in 0..clients {
            sessions.push(target.connect().await?);
        }
        let policy = conclave::RetryPolicy::exponential(Duration::from_millis(1), Duration::from_millis(1))
            .without_jitter()
            .max_retries(1000);
        let start = Instant::now();
        let (window_start, window_end) =
            (start + Duration::from_secs_f64(warm), start + Duration::from_secs_f64(warm + secs));
        let runs = sessions.iter().map(|client| {
            let change = RetryChange::new(client.clone(), &path).backoff(policy.clone()).exactly_once(marked);
            let counter = Counter::with(match promoted {
                true => change.promote_to_lock(&format!("{path}-lock"), promote_after),
                false => change,
            });
            async move {
                let (mut ok, mut failed, mut in_window, mut took) = (0u64, 0u64, 0u64, Vec::new());
                while Instant::now() < window_end {
                    let t = Instant::now();
                    match counter.increment().await {
                        Ok(_) => {
                            ok += 1;
                            let end = Instant::now();
                            if end >= window_start && end < window_end {
                                in_window += 1;
                                took.push(end - t);
                            }
                        }
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed, in_window, took)
            }
        });
        let results = futures::future::join_all(runs).await;
        let (mut ok, mut failed, mut in_window, mut took, mut shares) = (0, 0, 0, Vec::new(), Vec::new());
        for (o, f, w, t) in results {
            ok += o;
            failed += f;
            in_window += w;
            shares.push(w);
            took.extend(t);
        }
        let value = i64::from_be_bytes(admin.get_data(&path).await?.0[..].try_into().unwrap_or([0; 8]));
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        emit(&format!("{prefix}_increments_per_s"), in_window as f64 / secs, "incr/s");
        emit(&format!("{prefix}_p50"), us(percentile(&mut took, 50.0)), "us");
        emit(&format!("{prefix}_p99"), us(percentile(&mut took, 99.0)), "us");
        emit(&format!("{prefix}_failed"), failed as f64, "calls");
        emit(&format!("{prefix}_final_ok"), f64::from(u8::from(value == ok as i64)), "bool");
        let mean = in_window as f64 / clients as f64;
        let least = shares.iter().copied().min().unwrap_or(0) as f64;
        emit(&format!("{prefix}_min_client_share"), if mean > 0.0 { least / mean } else { 0.0 }, "ratio");
        let slowest = took.iter().max().copied().unwrap_or_default();
        println!(
            "# {prefix}: increments per client in the window {shares:?}; p99.9 {:.0} us, slowest {:.0} us",
            us(percentile(&mut took, 99.9)),
            us(slowest)
        );
        for c in sessions {
            c.close().await;
        }
        admin.close().await;
    }
    Ok(())
}

/// Puts `items` items of 16 bytes, in order, with up to `in_flight` puts pipelined.
async fn put_items(queue: &Queue, items: usize, in_flight: usize) -> Result<()> {
    let mut puts = stream::iter(0..items).map(|i| queue.put(format!("item-{i:011}"))).buffered(in_flight);
    while let Some(put) = puts.next().await {
        put?;
    }
    Ok(())
}

/// Takes (or claims and acks) `items` items, `batch` at a time (acks pipelined).
async fn consume_items(queue: Queue, items: usize, ack: bool, batch: usize) -> Result<()> {
    let mut left = items;
    while left > 0 {
        let n = batch.min(left);
        if ack {
            let claims = if n == 1 { vec![queue.claim().await?] } else { queue.claim_batch(n).await? };
            left -= claims.len();
            for acked in futures::future::join_all(claims.into_iter().map(|c| c.ack())).await {
                acked?;
            }
        } else {
            left -= if n == 1 {
                queue.take().await?;
                1
            } else {
                queue.take_batch(n).await?.len()
            };
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}\nusage: bench [--hosts host:port] [--only {}] [--tcp]", ALL.join(","));
            std::process::exit(2);
        }
    };
    let target = match &args.hosts {
        Some(h) => Target::Hosts(h.clone()),
        None => Target::Embedded(conclave::Server::builder().start().await?, args.tcp),
    };
    let where_ = match &target {
        Target::Hosts(h) => format!("ZooKeeper at {h}"),
        Target::Embedded(_, true) => "embedded server over loopback TCP".into(),
        Target::Embedded(_, false) => "embedded server, in-process".into(),
    };
    println!("# peer=conclave version={} target: {where_}; tokio multi-thread runtime", env!("CARGO_PKG_VERSION"));
    let admin = target.connect().await?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let root = format!("/conclave-bench-{}-{stamp}", std::process::id());
    admin.create(&root, b"", CreateMode::Persistent).await?;
    let only = args.only.unwrap_or_else(|| ALL.iter().map(|s| s.to_string()).collect());
    if only.iter().any(|name| name.starts_with("lock_")) {
        RequestCounter::install();
    }
    for name in &only {
        let t = Instant::now();
        let (target, root) = (target.clone(), root.clone());
        // Each benchmark runs as a spawned task, so its futures and the session task are
        // scheduled by the runtime's workers rather than woken across threads from `block_on`.
        let run = match name.as_str() {
            "raw_sync" => tokio::spawn(async move { raw_sync(&target, &root, 5000, 2000).await }),
            "raw_async" => tokio::spawn(async move { raw_async(&target, &root, 20_000, 1000, 5000, 3).await }),
            "lock_uncontended" => tokio::spawn(async move { lock_uncontended(&target, &root, 2000, 300, 500).await }),
            "lock_contended" => tokio::spawn(async move { lock_contended(&target, &root, 8, 10.0).await }),
            "lock_many" => tokio::spawn(async move { lock_many(&target, &root, 1000, 5).await }),
            "leader_failover" => tokio::spawn(async move { leader_failover(&target, &root, 5, 20).await }),
            "queue" => tokio::spawn(async move { queue(&target, &root, 2000).await }),
            "double_barrier" => tokio::spawn(async move { double_barrier(&target, &root, 8, 10).await }),
            "counter" => tokio::spawn(async move { counter(&target, &root, 8, 1.0, 10.0).await }),
            other => {
                println!("# unknown bench {other}");
                continue;
            }
        };
        run.await.map_err(|e| ZkError::Io(format!("benchmark task failed: {e}")))??;
        println!("# {name} took {:.1} s", t.elapsed().as_secs_f64());
    }
    // Nodes that vanish meanwhile are fine: the lock directories are containers, which the
    // server removes once they are empty.
    admin.delete_all(&root).await?;
    admin.close().await;
    if let Target::Embedded(server, _) = &target {
        server.shutdown().await;
    }
    Ok(())
}
