//! The discovery stress run: the membership family's harness (`crate::membership::stress`) with
//! 5 service registrations (`/svc/api/m0`..`m4`, updated every 100 ms) instead of group members,
//! under the same faults (cuts, stalls, killed sessions, deleted instance nodes, lost replies).
//! The checker proves every registration is back within the session timeout plus one second
//! after each loss, the service holds exactly the 5 instances at the end (each on its
//! registration's current session, with its latest JSON), a service cache sees them all, and
//! the observer's events are consistent. The negative control is the membership one, on
//! registrations.

use conclave::Result;

use crate::membership::stress::{negative_control_as, run_as, Presence, PLAN};
use crate::stress_trio;
use crate::support::stress::Run;
use crate::support::Env;

stress_trio!(PLAN, run, negative_control);

async fn run(run: Run) {
    run_as(run, Presence::Registrations).await;
}

async fn negative_control(env: Env) -> Result<()> {
    negative_control_as(env, Presence::Registrations).await
}
