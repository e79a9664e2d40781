//! Benchmarks with the same definitions and metric names as the peer harness in
//! `../shared/peers/` (see its `RESULTS.md`), printing one `name value unit` line per metric
//! (`#` lines are comments).
//!
//! ```text
//! cargo run --release --example bench                         # fresh embedded server, in-process
//! cargo run --release --example bench -- --tcp                # fresh embedded server over loopback TCP
//! cargo run --release --example bench -- --hosts 127.0.0.1:2181 [--only raw_sync,raw_async]
//! ```
//!
//! - `raw_sync`: 5000 sequential ops on one session, cycles of create / getData / setData /
//!   delete of 16-byte nodes, after a warm-up of 2000 ops; ops/s and per-op p50/p99 (µs).
//! - `raw_async`: 20 000 getData of one node with at most 1000 in flight on one session; the
//!   median of 3 repetitions after a 5000-request warm-up.

use std::time::{Duration, Instant};

use conclave::{Client, CreateMode, Result};
use futures::stream::{self, StreamExt};

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

/// Nearest-rank percentile, the definition every peer uses.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0 * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
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
        match self {
            Target::Hosts(h) => builder.connect(h).await,
            Target::Embedded(server, true) => builder.connect(&server.connect_string()).await,
            Target::Embedded(server, false) => builder.connect_in_process(server).await,
        }
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

/// Deletes `path` and everything below it.
async fn delete_tree(c: &Client, path: &str) -> Result<()> {
    let mut stack = vec![(path.to_string(), false)];
    while let Some((p, expanded)) = stack.pop() {
        if expanded {
            c.delete(&p, None).await?;
            continue;
        }
        stack.push((p.clone(), true));
        for child in c.get_children(&p).await? {
            stack.push((conclave::path::join(&p, &child), false));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}\nusage: bench [--hosts host:port] [--only raw_sync,raw_async] [--tcp]");
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
    let only = args.only.unwrap_or_else(|| vec!["raw_sync".into(), "raw_async".into()]);
    for name in &only {
        let t = Instant::now();
        let (target, root) = (target.clone(), root.clone());
        // Each benchmark runs as a spawned task, so its futures and the session task are
        // scheduled by the runtime's workers rather than woken across threads from `block_on`.
        let run = match name.as_str() {
            "raw_sync" => tokio::spawn(async move { raw_sync(&target, &root, 5000, 2000).await }),
            "raw_async" => tokio::spawn(async move { raw_async(&target, &root, 20_000, 1000, 5000, 3).await }),
            other => {
                println!("# unknown bench {other}");
                continue;
            }
        };
        run.await.map_err(|e| conclave::Error::Io(format!("benchmark task failed: {e}")))??;
        println!("# {name} took {:.1} s", t.elapsed().as_secs_f64());
    }
    delete_tree(&admin, &root).await?;
    admin.close().await;
    if let Target::Embedded(server, _) = &target {
        server.shutdown().await;
    }
    Ok(())
}
