//! The leader-election stress run, on the lock family's harness (`crate::lock::stress`, with
//! `Contended::Election`): 5 participants campaign, lead for a few fenced writes (some as
//! "zombies" that ignore `lost()` and write on), and resign, again and again, while connections
//! are cut and stalled, sessions killed, create replies lost and leaders' nodes deleted under
//! them. The checker proves, from what was logged on one logical clock:
//!
//! - one leader at a time: each leadership's interval `[elected, end]` (`end` the first of
//!   `lost()`, the resignation, the kill of its session or the deletion of its node) ends before
//!   the next epoch's begins, and epochs strictly increase from leader to leader;
//! - no stale write: the epochs each leader appended to a store through fenced creates never go
//!   backwards in the order the server accepted them (a deposed leader's late writes are
//!   refused: `fence_rejects`);
//! - nothing lost: every campaign ended (elected, or the session's error), every participant
//!   led, and the election is empty at the end.
//!
//! 30 virtual seconds with 510 faults on the embedded server (`CONCLAVE_LEADER_STRESS_SECS`),
//! 8 s with 40 faults through proxies on a real ZooKeeper (`CONCLAVE_LEADER_STRESS_REAL_SECS`);
//! the negative control feeds the checker a leader that ignores its loss and writes unfenced.

use conclave::proto::OpCode;
use conclave::Result;

use crate::lock::stress::{negative_control_as, run_as, Contended};
use crate::stress_trio;
use crate::support::stress::{Plan, Run};
use crate::support::Env;

/// 5 sessions on the embedded server for 30 virtual seconds, 17 faults a second (510); 5
/// sessions through proxies on a real ZooKeeper for 8 s, 5 a second.
const PLAN: Plan = Plan {
    name: "leader_stress",
    sessions: (5, 5),
    secs: ("CONCLAVE_LEADER_STRESS_SECS", 30),
    real_secs: ("CONCLAVE_LEADER_STRESS_REAL_SECS", 8),
    faults_per_sec: (17, 5),
    lost_reply: Some(OpCode::Create2),
};

stress_trio!(PLAN, run, negative_control);

async fn run(run: Run) {
    run_as(run, Contended::Election).await;
}

async fn negative_control(env: Env) -> Result<()> {
    negative_control_as(env, Contended::Election).await
}
