//! The stress-run scaffolding every recipe family shares. A family writes one run function (its
//! contenders, its log and its checker) and one negative control (the checker fed a known
//! violation, so it is shown to catch it); [`stress_trio!`](crate::stress_trio) turns them into
//! the three tests every family has:
//! - `stress_embedded`: the run on the embedded server in virtual time, with the server's fault
//!   hooks (cut connections, stalls, killed sessions, deleted nodes, replies lost after the
//!   request was applied);
//! - `stress_real_zookeeper`: a shorter real-time run on a real ZooKeeper, each session through a
//!   fault-injecting proxy (cuts, stalls, lost replies) and killed the way Curator's
//!   `KillSession` does;
//! - the negative control, on both backends.
//!
//! A [`Plan`] sizes the runs; [`Run`] hands the run function its environment, clients, length
//! and fault injector.

use std::time::Duration;

use conclave::proto::OpCode;
use conclave::Client;

use super::Env;

/// A small deterministic generator (xorshift), seeded per run so failures can be replayed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a family's stress runs are sized on each backend.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Names the run (`RESULT <name> ...` lines, test chroots).
    pub name: &'static str,
    /// Sessions on the embedded server, and on the real ZooKeeper.
    pub sessions: (usize, usize),
    /// The variable giving the embedded run's length in virtual seconds, and its default.
    pub secs: (&'static str, u64),
    /// The variable giving the real run's length in seconds, and its default.
    pub real_secs: (&'static str, u64),
    /// Faults per second, embedded and real.
    pub faults_per_sec: (u64, u64),
    /// On the embedded server, the op whose reply a "lost reply" fault drops after the server
    /// applied it (`None`: the next reply, whatever it is).
    pub lost_reply: Option<OpCode>,
}

/// One fault, drawn by [`Run::draw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The victim's connection is cut; it reconnects to the same session.
    Cut,
    /// The victim's connection stalls this long (nothing goes through).
    Stall(Duration),
    /// The victim's session is expired.
    Kill,
    /// A node the family names (a holder's) is deleted by another client.
    Delete,
    /// The victim's next reply is lost after the server applied its request.
    LostReply,
}

impl Fault {
    /// The fault's name, for the figures.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Cut => "cut",
            Fault::Stall(_) => "stall",
            Fault::Kill => "kill",
            Fault::Delete => "delete",
            Fault::LostReply => "lost-reply",
        }
    }
}

enum Injector {
    Embedded(conclave::Faults),
    /// One proxy per session, and the address of the server itself (for kills).
    Real(Vec<conclave_core::testing::Proxy>, String),
}

/// One stress run: its environment, its clients (one session each), its length, how many faults
/// to inject, and the injector.
pub struct Run {
    pub env: Env,
    /// The plan's name.
    pub name: &'static str,
    /// `embedded-virtual`, `real-zookeeper-proxied`, ...
    pub backend: &'static str,
    pub clients: Vec<Client>,
    pub duration: Duration,
    pub faults: u64,
    lost_reply: Option<OpCode>,
    injector: Injector,
}

fn env_secs((var, default): (&str, u64)) -> Duration {
    Duration::from_secs(std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

impl Run {
    /// The embedded-server run of `plan`.
    pub async fn embedded(plan: &Plan) -> Run {
        let env = Env::embedded(plan.name).await;
        let mut clients = Vec::new();
        for _ in 0..plan.sessions.0 {
            clients.push(env.client().await);
        }
        let duration = env_secs(plan.secs);
        let faults = duration.as_secs() * plan.faults_per_sec.0;
        Run::embedded_with(plan, env, "embedded-virtual", clients, duration, faults)
    }

    /// A custom run on an embedded environment (a variant of the plan's run).
    pub fn embedded_with(
        plan: &Plan,
        env: Env,
        backend: &'static str,
        clients: Vec<Client>,
        duration: Duration,
        faults: u64,
    ) -> Run {
        let injector = Injector::Embedded(env.server().faults());
        Run { env, name: plan.name, backend, clients, duration, faults, lost_reply: plan.lost_reply, injector }
    }

    /// The real-ZooKeeper run of `plan`, if there is a real ZooKeeper.
    pub async fn real(plan: &Plan) -> Option<Run> {
        let env = Env::real(plan.name, false).await?;
        let mut proxies = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..plan.sessions.1 {
            let (p, c) = env.proxied(env.builder()).await;
            proxies.push(p);
            clients.push(c);
        }
        let duration = env_secs(plan.real_secs);
        let faults = duration.as_secs() * plan.faults_per_sec.1;
        let injector = Injector::Real(proxies, env.tcp_address());
        let backend = "real-zookeeper-proxied";
        Some(Run { env, name: plan.name, backend, clients, duration, faults, lost_reply: None, injector })
    }

    /// The seed of this run's generators.
    pub fn seed(&self) -> u64 {
        0x10c4_0000 + self.faults
    }

    /// Draws a fault: 8 in 20 cuts, 4 stalls, 4 kills, 2 deletes, 2 lost replies.
    pub fn draw(&self, rng: &mut Rng) -> Fault {
        let real = matches!(self.injector, Injector::Real(..));
        match rng.below(20) {
            0..=7 => Fault::Cut,
            8..=11 if real => Fault::Stall(Duration::from_millis(20 + rng.below(780))),
            8..=11 => Fault::Stall(Duration::from_millis(50 + rng.below(1450))),
            12..=15 => Fault::Kill,
            16..=17 => Fault::Delete,
            _ => Fault::LostReply,
        }
    }

    /// Injects `fault` on session `victim` (an index into the run's sessions), whose current
    /// client is `client`; a `Delete` removes `node` (through `admin`) if there is one. Fails if
    /// the fault could not be injected (a kill on a real server needs a connection of its own).
    pub async fn inject(
        &self,
        fault: Fault,
        admin: &Client,
        victim: usize,
        client: &Client,
        node: Option<&str>,
    ) -> conclave_core::Result<()> {
        let session = client.session_id();
        match (fault, &self.injector) {
            (Fault::Cut, Injector::Embedded(f)) => {
                f.cut_connection(session);
            }
            (Fault::Cut, Injector::Real(p, _)) => p[victim].cut(),
            (Fault::Stall(d), Injector::Embedded(f)) => f.stall(Some(session), d),
            (Fault::Stall(d), Injector::Real(p, _)) => p[victim].stall(d),
            (Fault::Kill, Injector::Embedded(f)) => {
                f.expire_session(session);
            }
            (Fault::Kill, Injector::Real(_, server)) => {
                let server = server.clone();
                let open = move || tokio::net::TcpStream::connect(server.clone());
                conclave_core::testing::expire_session_over(client, open).await?;
            }
            (Fault::Delete, _) => {
                if let Some(node) = node {
                    let _ = admin.delete(node, None).await;
                }
            }
            (Fault::LostReply, Injector::Embedded(f)) => f.drop_reply_after_apply(session, self.lost_reply),
            (Fault::LostReply, Injector::Real(p, _)) => p[victim].drop_next_reply(),
        }
        Ok(())
    }
}

/// The three stress tests of a recipe family (see the [module docs](self)):
/// `stress_trio!(PLAN, run, negative_control)` for `async fn run(run: Run)` and
/// `async fn negative_control(env: Env) -> Result<()>`.
#[macro_export]
macro_rules! stress_trio {
    ($plan:expr, $run:path, $control:ident) => {
        #[tokio::test(start_paused = true)]
        async fn stress_embedded() {
            $run($crate::support::stress::Run::embedded(&$plan).await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn stress_real_zookeeper() {
            if let Some(run) = $crate::support::stress::Run::real(&$plan).await {
                $run(run).await;
            }
        }

        $crate::conformance!($control);
    };
}
