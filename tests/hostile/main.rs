//! Hostile clients against the embedded server: one test per way a single unprivileged client
//! could take the server, or everyone else's sessions and locks, away. Each attack runs beside a
//! well-behaved [`Bystander`] (a short session timeout, requests every few milliseconds, a lock
//! taken and released over and over) and each test asserts that the server survives, that the
//! bystander's session is never expired and that its requests' latency stays under
//! [`LATENCY_BOUND`] while the attack runs.
//!
//! This is its own test binary, for two reasons: its tests run one at a time (see [`turn`]),
//! so that no other test's load counts against the latency bound; and its global allocator
//! counts the process's allocated bytes, for the memory bound of the amplification test. All
//! traffic stays in the process or on loopback; sizes are chosen so that each test takes a
//! few seconds in a debug build.

mod attacks;
mod raw;

use std::time::{Duration, Instant};

use conclave::lock::Mutex;
use conclave_core::{Client, ServerHandle, SessionState};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "../shared/counting.rs"]
mod counting;

pub use counting::{live_bytes, peak_bytes, reset_peak};

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// The longest a bystander request may take while an attack runs.
pub const LATENCY_BOUND: Duration = Duration::from_millis(1500);

/// The bystander's session timeout: short, so that a stalled server would expire it.
pub const BYSTANDER_TIMEOUT: Duration = Duration::from_millis(2000);

/// Serializes this binary's tests (each has a runtime of its own, so the lock is a tokio one).
pub async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// A server set up as the attacks need: a 250 ms tick (sessions of 0.5 to 5 s), the default
/// limits.
pub async fn server() -> ServerHandle {
    conclave_core::Server::builder()
        .tick_time(Duration::from_millis(250))
        .start()
        .await
        .expect("start the embedded server")
}

/// What a bystander saw.
#[derive(Debug)]
pub struct Seen {
    /// Requests made.
    pub requests: usize,
    /// Locks taken and released.
    pub locks: usize,
    /// The slowest request.
    pub max_latency: Duration,
    /// Whether its session expired (or any request failed).
    pub failure: Option<String>,
}

/// A well-behaved client running beside an attack: an `exists` every 10 ms and a lock taken
/// and released every tenth round, each timed.
pub struct Bystander {
    stop: CancellationToken,
    task: JoinHandle<Seen>,
    started: Instant,
}

impl Bystander {
    /// Starts one on `server`, connected in-process.
    pub async fn start(server: &ServerHandle) -> Bystander {
        let client = Client::builder()
            .session_timeout(BYSTANDER_TIMEOUT)
            .connect_in_process(server)
            .await
            .expect("bystander connects");
        let stop = CancellationToken::new();
        let task = tokio::spawn(Self::run(client, stop.clone()));
        Bystander { stop, task, started: Instant::now() }
    }

    async fn run(client: Client, stop: CancellationToken) -> Seen {
        let mut seen = Seen { requests: 0, locks: 0, max_latency: Duration::ZERO, failure: None };
        let lock = Mutex::new(client.clone(), "/bystander-lock");
        let mut round = 0u64;
        while !stop.is_cancelled() {
            round += 1;
            let started = Instant::now();
            let outcome = if round.is_multiple_of(10) {
                match lock.lock().await {
                    Ok(guard) => guard.release().await.map_err(|e| e.to_string()).map(|()| seen.locks += 1),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                client.exists("/").await.map(drop).map_err(|e| e.to_string())
            };
            seen.max_latency = seen.max_latency.max(started.elapsed());
            seen.requests += 1;
            if let Err(e) = outcome {
                seen.failure = Some(e);
                break;
            }
            if client.state() == SessionState::Expired {
                seen.failure = Some("session expired".into());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if seen.failure.is_none() && client.state() != SessionState::Connected {
            seen.failure = Some(format!("session state {:?} at the end", client.state()));
        }
        let _ = client.close().await;
        seen
    }

    /// Stops it and checks what it saw: no failure, no expiry, every request under the bound.
    pub async fn check(self, attack: &str) -> Seen {
        // A quick attack still gets a bystander that ran long enough to take its lock a few times.
        let minimum = Duration::from_millis(500);
        tokio::time::sleep(minimum.saturating_sub(self.started.elapsed())).await;
        self.stop.cancel();
        let seen = self.task.await.expect("bystander task");
        eprintln!("{attack}: bystander saw {seen:?}");
        assert!(seen.failure.is_none(), "{attack}: the bystander failed: {seen:?}");
        assert!(seen.requests >= 5 && seen.locks >= 1, "{attack}: the bystander barely ran: {seen:?}");
        assert!(seen.max_latency < LATENCY_BOUND, "{attack}: a bystander request took {:?}", seen.max_latency);
        seen
    }
}

/// Whether the server still answers a new session.
pub async fn alive(server: &ServerHandle) -> bool {
    let probe = async {
        let c = Client::builder().connect_in_process(server).await.ok()?;
        c.exists("/").await.ok()?;
        c.close().await;
        Some(())
    };
    matches!(tokio::time::timeout(Duration::from_secs(10), probe).await, Ok(Some(())))
}
