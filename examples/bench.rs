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
//! - `cache`: a [`TreeCache`] on `<root>/cache`, its own session, over a fresh tree
//!   `<root>/cache/pNN/cNN` (100 parents × 100 children: 10 101 nodes with the root, 16-byte
//!   data) created beforehand by pipelined creates (at most 1000 in flight) on an admin session;
//!   one subscriber to its events from the start (as the peers' listeners). `cache_init_ms`: from
//!   `TreeCache::new` until `initialized()` returns, checked to hold the 10 000 children (else
//!   until it does). `cache_rss_mb` (MiB, as the peers print it): the live heap after the load
//!   (the subscriber's queue drained, 100 ms later) minus just before `TreeCache::new`; the
//!   live heap is what this binary's counting allocator counts, the bytes asked for and not
//!   freed (malloc's headers and rounding not included; the peers: Curator, the JVM's used heap
//!   after GC; kazoo, VmRSS). It is the cache (its nodes, ~160 bytes each beyond their data)
//!   plus what the load grew and keeps for reuse: the cache session's buffers and request
//!   queue, sized by the 10 000 reads the load pipelines, and on the embedded server in-process,
//!   the server's side of them; so it varies from run to run. Ours only: `cache_bytes_per_node`,
//!   that ÷ 10 101; `#` lines give the cache's own share (what dropping it frees at the end),
//!   the heap's peak during the load, malloc's in-use growth and VmRSS's. `cache_events_per_s`:
//!   4 writer sessions do 1250 setData each (5000, at most 100 in flight per writer) with data
//!   `w<w><k:014>` on children chosen by the peers' 64-bit LCG (3952 distinct nodes); from the
//!   first write until the subscriber has seen, for every written node, an `Updated` carrying
//!   the data of its acked write with the highest mzxid (the time of that event, taken by the
//!   subscriber task): acked writes ÷ that time. `cache_consistent`: 1 if then (no `sync()`
//!   first, as the peers) the cache's data of all 10 101 nodes equals a fresh read of the
//!   server. Deadlines: 40 s for the measured phases, 45 s for the check, 55 s for the deletes;
//!   a missed one gives NaN (0 for `cache_consistent`).
//!
//! The binary's global allocator counts the live heap for `cache` (two relaxed atomic
//! operations per allocation, one per free): it does not move `raw_async` or `raw_sync` beyond
//! their noise.

#[path = "support/stats.rs"]
mod stats;

// Counts the live heap for the `cache` benchmark's memory figure.
#[path = "../tests/shared/counting.rs"]
mod counting;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conclave::atomic::{Counter, RetryChange};
use conclave::barrier::DoubleBarrier;
use conclave::cache::{CacheEvent, TreeCache};
use conclave::leader::{Election, Leadership};
use conclave::lock::Mutex;
use conclave::queue::Queue;
use conclave::{Client, CreateMode, Result, ZkError};
use futures::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use stats::percentile;

/// Every benchmark, in the order they run by default.
const ALL: [&str; 10] = [
    "raw_sync",
    "raw_async",
    "lock_uncontended",
    "lock_contended",
    "lock_many",
    "leader_failover",
    "queue",
    "double_barrier",
    "counter",
    "cache",
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

/// Runs the calls `call(0)`, `call(1)`, ... `call(n - 1)` with at most `window` of them in
/// flight (each call sends its request when it is made, so the next is made only when one is
/// answered) until `deadline`: each one's output by index, `None` for those not answered in
/// time.
async fn pipelined<T, F>(
    n: usize,
    window: usize,
    deadline: tokio::time::Instant,
    mut call: impl FnMut(usize) -> F,
) -> Vec<Option<T>>
where
    F: std::future::Future<Output = T>,
{
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(n).collect();
    let mut replies = stream::iter(0..n)
        .map(|i| {
            let reply = call(i);
            async move { (i, reply.await) }
        })
        .buffer_unordered(window);
    while let Ok(Some((i, reply))) = tokio::time::timeout_at(deadline, replies.next()).await {
        out[i] = Some(reply);
    }
    out
}

/// The 64-bit LCG of the peers (Knuth's MMIX constants), so that every peer writes the same
/// nodes.
fn lcg_next(x: u64) -> u64 {
    x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407)
}

/// The process's resident set (`VmRSS`), in bytes, where /proc has it.
fn rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb as usize * 1024)
}

/// The bytes glibc's malloc has handed out and not had back (`mallinfo2`: `uordblks`, the
/// arenas' chunks in use, plus `hblkhd`, the blocks mapped on their own), its headers and
/// rounding included; `None` elsewhere.
fn malloc_in_use() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        Some(info.uordblks + info.hblkhd)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Aborts a spawned task when dropped (the cache's event consumer, the writers), so that no
/// path out of the benchmark leaves them running.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the cache's event consumer records: per path, when the latest `Updated` was seen and
/// its data; and counts of the other events.
#[derive(Default)]
struct CacheSeen {
    updated: std::sync::Mutex<HashMap<String, (Instant, Bytes)>>,
    updates: AtomicUsize,
    added: AtomicUsize,
    removed: AtomicUsize,
    resynced: AtomicUsize,
}

/// The `cache` benchmark (see the module docs): the tree, the sessions and the cleanup; the
/// measurements are in [`cache_measured`].
async fn cache(
    target: &Target,
    root: &str,
    parents: usize,
    children: usize,
    writers: usize,
    writes: usize,
    window: usize,
) -> Result<()> {
    let start = Instant::now();
    let at = |secs: u64| tokio::time::Instant::from_std(start + Duration::from_secs(secs));
    let base = format!("{root}/cache");
    let admin = target.connect().await?;
    admin.create(&base, b"", CreateMode::Persistent).await?;
    let mut sessions = Vec::new();
    // Every phase has its deadline; this one only guards against a wait without one.
    let measured = tokio::time::timeout_at(
        at(55),
        cache_measured(target, &admin, &base, (parents, children), (writers, writes, window), at, &mut sessions),
    )
    .await
    .unwrap_or_else(|_| {
        println!("# cache: the measurements did not end by the deletes' deadline");
        Ok(())
    });
    // The cache (and its consumer) are gone: close the sessions, then delete the tree.
    let closing = futures::future::join_all(sessions.iter().map(Client::close));
    let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    let delete_by = at(55).max(tokio::time::Instant::now() + Duration::from_secs(5));
    match tokio::time::timeout_at(delete_by, admin.delete_all(&base)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("# cache: deleting the tree failed ({e}; left to the final cleanup)"),
        Err(_) => println!("# cache: deleting the tree timed out (left to the final cleanup)"),
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), admin.close()).await;
    measured
}

/// The `cache` benchmark's measurements; the sessions it opens are pushed to `sessions`, for
/// the caller to close.
async fn cache_measured(
    target: &Target,
    admin: &Client,
    base: &str,
    (parents, children): (usize, usize),
    (writers, writes, window): (usize, usize, usize),
    at: impl Fn(u64) -> tokio::time::Instant,
    sessions: &mut Vec<Client>,
) -> Result<()> {
    // Deadlines: measured phases 40 s, consistency read 45 s (the deletes', 55 s, are the caller's).
    let (measure_by, check_by) = (at(40), at(45));
    let n = parents * children;
    let per = writes / writers;
    let ppaths: Vec<String> = (0..parents).map(|i| format!("{base}/p{i:02}")).collect();
    let cpaths: Arc<Vec<String>> =
        Arc::new((0..n).map(|i| format!("{}/c{:02}", ppaths[i / children], i % children)).collect());
    let all: Vec<&str> = std::iter::once(base)
        .chain(ppaths.iter().map(|p| p.as_str()))
        .chain(cpaths.iter().map(|p| p.as_str()))
        .collect();

    // The tree, by pipelined creates (at most 1000 in flight) on the admin session.
    let t = Instant::now();
    let mut bad = pipelined(parents, 1000, measure_by, |i| {
        admin.create(&ppaths[i], format!("parent{i:010}"), CreateMode::Persistent)
    })
    .await
    .iter()
    .filter(|r| !matches!(r, Some(Ok(_))))
    .count();
    bad += pipelined(n, 1000, measure_by, |i| admin.create(&cpaths[i], format!("init{i:012}"), CreateMode::Persistent))
        .await
        .iter()
        .filter(|r| !matches!(r, Some(Ok(_))))
        .count();
    if bad > 0 {
        return Err(ZkError::Io(format!("cache: {bad} creates failed")).into());
    }
    println!("# cache: tree of {} nodes created in {:.1} s", all.len(), t.elapsed().as_secs_f64());
    let mut wclients = Vec::new();
    for _ in 0..writers {
        let c = target.connect().await?;
        sessions.push(c.clone());
        wclients.push(c);
    }
    let cc = target.connect().await?;
    sessions.push(cc.clone());

    // Init: from `TreeCache::new` to `initialized()` with every child cached. The consumer of
    // the events is subscribed at once (as the peers' listeners are before `start()`): its
    // `Added` events are built and delivered during the load.
    let seen = Arc::new(CacheSeen::default());
    // Live heap before and after, each after a short pause (the peers' 3 × GC + sleep).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (heap0, malloc0, rss0) = (counting::reset_peak(), malloc_in_use(), rss_bytes());
    let t0 = Instant::now();
    let cache = TreeCache::new(&cc, base)?;
    let mut events = cache.events();
    let (inited_tx, inited_rx) = tokio::sync::oneshot::channel();
    let consumer = AbortOnDrop(tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut inited = Some(inited_tx);
            while let Some(event) = events.next().await {
                let now = Instant::now();
                match event {
                    Ok(CacheEvent::Updated { path, node }) => {
                        seen.updated.lock().unwrap().insert(path, (now, node.data));
                        seen.updates.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(CacheEvent::Added { .. }) => _ = seen.added.fetch_add(1, Ordering::Relaxed),
                    Ok(CacheEvent::Removed { .. }) => _ = seen.removed.fetch_add(1, Ordering::Relaxed),
                    Ok(CacheEvent::Resynced { .. }) => _ = seen.resynced.fetch_add(1, Ordering::Relaxed),
                    Ok(CacheEvent::Initialized) => {
                        if let Some(tx) = inited.take() {
                            let _ = tx.send(now);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        println!("# cache: the event stream ended: {e}");
                        return;
                    }
                }
            }
        }
    }));
    let ready = tokio::time::timeout_at(measure_by, cache.initialized()).await;
    let mut t_ready = Instant::now();
    if !matches!(ready, Ok(Ok(()))) {
        let why = match ready {
            Ok(Err(e)) => format!("failed: {e}"),
            _ => "not initialized before the deadline".into(),
        };
        println!("# cache: TreeCache {why}; {} nodes added", seen.added.load(Ordering::Relaxed));
        emit("cache_init_ms", f64::NAN, "ms");
        emit("cache_consistent", 0.0, "bool");
        return Ok(());
    }
    let mut missing: Vec<&String> = cpaths.iter().filter(|p| cache.get(p).is_none()).collect();
    if !missing.is_empty() {
        println!("# cache: {} children missing at initialized()", missing.len());
    }
    while !missing.is_empty() && tokio::time::Instant::now() < measure_by {
        tokio::time::sleep(Duration::from_millis(2)).await;
        missing.retain(|p| cache.get(p).is_none());
        t_ready = Instant::now();
    }
    let init_ms = (t_ready - t0).as_secs_f64() * 1e3;
    emit("cache_init_ms", if missing.is_empty() { init_ms } else { f64::NAN }, "ms");
    // The stream's `Initialized` comes after the 10 101 `Added`: once the consumer has it, the
    // stream's queue is empty and the heap holds the cache, not events waiting.
    let streamed = tokio::time::timeout_at(measure_by, inited_rx).await;
    if let Ok(Ok(t)) = streamed {
        println!(
            "# cache: {} nodes cached; the stream's Initialized seen after {:.1} ms ({} Added before it)",
            cache.len(),
            (t - t0).as_secs_f64() * 1e3,
            seen.added.load(Ordering::Relaxed)
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (heap1, peak, malloc1, rss1) = (counting::live_bytes(), counting::peak_bytes(), malloc_in_use(), rss_bytes());
    let grown = heap1 as f64 - heap0 as f64;
    emit("cache_rss_mb", grown / 1048576.0, "MB");
    emit("cache_bytes_per_node", grown / all.len() as f64, "bytes");
    let mib = |before: Option<usize>, after: Option<usize>| match (before, after) {
        (Some(b), Some(a)) => format!("{:.2} MiB", (a as f64 - b as f64) / 1048576.0),
        _ => "unknown".into(),
    };
    println!(
        "# cache: meanwhile the live heap peaked {} above its start; malloc's bytes in use (headers and rounding included) grew by {}, VmRSS (the kazoo peer's measure) by {}",
        mib(Some(heap0), Some(peak)),
        mib(malloc0, malloc1),
        mib(rss0, rss1)
    );

    // Writes: writer w does `per` setData on LCG-chosen children, data "w<w><k:014>" (16 bytes),
    // at most `window` in flight.
    let mut plans = Vec::with_capacity(writers);
    for w in 0..writers {
        let mut x = w as u64 + 1;
        let plan: Vec<(usize, Bytes)> = (0..per)
            .map(|k| {
                x = lcg_next(x);
                (((x >> 33) % n as u64) as usize, Bytes::from(format!("w{w}{k:014}")))
            })
            .collect();
        plans.push(Arc::new(plan));
    }
    let t_w0 = Instant::now();
    let mut running = Vec::new();
    for (client, plan) in wclients.iter().zip(&plans) {
        let (client, plan, cpaths) = (client.clone(), plan.clone(), cpaths.clone());
        running.push(AbortOnDrop(tokio::spawn(async move {
            pipelined(plan.len(), window, measure_by, |k| {
                let written = client.set_data(&cpaths[plan[k].0], plan[k].1.clone(), None);
                async move { (written.await, Instant::now()) }
            })
            .await
        })));
    }
    // Expected final data of every written node: its acked write with the highest mzxid.
    let mut finals: HashMap<usize, (i64, Bytes)> = HashMap::new();
    let (mut acked, mut t_acked) = (0usize, t_w0);
    for (w, writer) in running.iter_mut().enumerate() {
        let Ok(Ok(results)) = tokio::time::timeout_at(measure_by + Duration::from_secs(1), &mut writer.0).await else {
            continue;
        };
        for (k, result) in results.into_iter().enumerate() {
            let Some((Ok(stat), t)) = result else { continue };
            acked += 1;
            t_acked = t_acked.max(t);
            let (node, data) = &plans[w][k];
            if finals.get(node).is_none_or(|(mzxid, _)| stat.mzxid > *mzxid) {
                finals.insert(*node, (stat.mzxid, data.clone()));
            }
        }
    }
    drop(running);
    let mut remaining: Vec<usize> = finals.keys().copied().collect();
    while !remaining.is_empty() && tokio::time::Instant::now() < measure_by {
        {
            let updated = seen.updated.lock().unwrap();
            remaining.retain(|i| updated.get(&cpaths[*i]).is_none_or(|(_, data)| *data != finals[i].1));
        }
        if !remaining.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let t_end = {
        let updated = seen.updated.lock().unwrap();
        finals.keys().filter_map(|i| updated.get(&cpaths[*i]).map(|(t, _)| *t)).max().unwrap_or(t_w0)
    };
    let caught_up = remaining.is_empty() && acked > 0;
    let took = (t_end - t_w0).as_secs_f64();
    emit("cache_events_per_s", if caught_up { acked as f64 / took } else { f64::NAN }, "events/s");
    println!(
        "# cache: {acked} setData acked ({} not) on {} distinct nodes, last ack after {:.2} s; {} update events; {}",
        writers * per - acked,
        finals.len(),
        (t_acked - t_w0).as_secs_f64(),
        seen.updates.load(Ordering::Relaxed),
        if caught_up {
            format!("cache caught up {took:.2} s after the first write")
        } else {
            format!("{} written nodes never reached their final data in the cache", remaining.len())
        }
    );
    let (removed, resynced) = (seen.removed.load(Ordering::Relaxed), seen.resynced.load(Ordering::Relaxed));
    if removed + resynced > 0 {
        println!("# cache: unexpected events: {removed} Removed, {resynced} Resynced");
    }

    // Consistency, as the peers check it (no sync first): the cache's data of every node (root,
    // parents, children) against a fresh read of the server.
    let server = pipelined(all.len(), 1000, check_by, |i| admin.get_data(all[i])).await;
    let differ = |cache: &TreeCache| {
        all.iter()
            .zip(&server)
            .filter(|(path, read)| match (read, cache.get(path)) {
                (Some(Ok((data, _))), Some(node)) => *data != node.data,
                _ => true,
            })
            .count()
    };
    let diff = differ(&cache);
    if diff > 0 {
        println!("# cache: {diff} of {} nodes differ from the server", all.len());
        if let Ok(Ok(())) = tokio::time::timeout_at(check_by, cache.sync()).await {
            println!("# cache: {} differ after cache.sync()", differ(&cache));
        }
    }
    emit("cache_consistent", f64::from(u8::from(diff == 0)), "bool");

    // The cache's own share of `cache_rss_mb`: what dropping it (and its subscriber) frees. The
    // rest is what the load grew and the sessions keep for reuse.
    let held = counting::live_bytes();
    drop(consumer);
    drop(cache);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let freed = held as f64 - counting::live_bytes() as f64;
    println!(
        "# cache: dropping the cache freed {:.2} MiB ({:.0} bytes per node): the cache's own share of cache_rss_mb",
        freed / 1048576.0,
        freed / all.len() as f64
    );
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
            "cache" => tokio::spawn(async move { cache(&target, &root, 100, 100, 4, 5000, 100).await }),
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
