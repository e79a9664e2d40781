//! The choice half of a service provider: given the instances of a service as a cache currently
//! sees them, [`InstancePicker::pick`] returns the one to use by a [`Strategy`] (round-robin,
//! random, sticky), skipping disabled instances and instances that were reported failing too
//! often lately ([`InstancePicker::note_error`], under a [`DownInstances`] policy). It does no
//! I/O, so a provider can feed it from any list of instances; it is safe to share between tasks.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::ServiceInstance;
use crate::error::{Result, ZkError};

/// How [`InstancePicker::pick`] chooses among the candidates (the enabled instances that are
/// not down, in the order they are given).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Each pick takes the next position: the `n`-th pick of the picker takes position
    /// `n % candidates` of its list, as Curator's `RoundRobinStrategy` (the default).
    #[default]
    RoundRobin,
    /// A uniformly random candidate, as Curator's `RandomStrategy`.
    Random,
    /// The candidate picked last time, as long as it is still a candidate (by id); otherwise a
    /// new one picked by the inner strategy, kept from then on: Curator's `StickyStrategy`
    /// with its "master strategy". Build it with [`Strategy::sticky`].
    Sticky(Box<Strategy>),
}

impl Strategy {
    /// Sticks to one instance, picking a new one with `inner` when it is gone.
    pub fn sticky(inner: Strategy) -> Strategy {
        Strategy::Sticky(Box::new(inner))
    }
}

/// When an instance counts as down: after `error_threshold` errors within `timeout`, for
/// `timeout`. The default is Curator's: 2 errors in 30 seconds.
///
/// # Semantics, and how they differ from Curator's
/// An instance is *down* once it had [`error_threshold`](Self::error_threshold) errors
/// within the last [`timeout`](Self::timeout) (a sliding window), and stays down for
/// `timeout` from the error that brought it down; errors noted while it is down do not extend
/// that. Then it is a candidate again, with no errors counted. Curator's `DownInstanceManager`
/// counts errors from the first one on, and only forgets them in a sweep that runs at most every
/// `timeout / 2` and drops the records whose *first* error is `timeout` old: an instance there
/// is down until between `timeout` and `1.5 × timeout` after its first error, however late the
/// error that brought it down came. When every candidate is down,
/// [`pick`](InstancePicker::pick) returns `None`, as Curator's provider does. A threshold of 0
/// (in Curator: down at the first error) is refused by [`DownInstances::new`]; 1 says the same.
/// Times are [`tokio::time::Instant`]s, so a test with a paused clock can move them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownInstances {
    error_threshold: u32,
    timeout: Duration,
}

impl DownInstances {
    /// Curator's default threshold: 2 errors.
    pub const DEFAULT_ERROR_THRESHOLD: u32 = 2;
    /// Curator's default timeout: 30 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A policy: down after `error_threshold` errors within `timeout`, for `timeout`. A zero
    /// `timeout` turns the tracking off (no error is ever recent).
    ///
    /// # Errors
    /// `InvalidArgument` for an `error_threshold` of 0 (an instance would be down before any
    /// error).
    pub fn new(error_threshold: u32, timeout: Duration) -> Result<DownInstances> {
        if error_threshold == 0 {
            return Err(
                ZkError::InvalidArgument("the error threshold of down instances must be at least 1".into()).into()
            );
        }
        Ok(DownInstances { error_threshold, timeout })
    }

    /// How many errors within [`timeout`](Self::timeout) make an instance down.
    pub fn error_threshold(&self) -> u32 {
        self.error_threshold
    }

    /// The window errors are counted in, and how long an instance stays down.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for DownInstances {
    fn default() -> DownInstances {
        DownInstances { error_threshold: Self::DEFAULT_ERROR_THRESHOLD, timeout: Self::DEFAULT_TIMEOUT }
    }
}

/// Picks the instance to use from a list of instances of one service, by a [`Strategy`],
/// skipping disabled and down instances; remembers the errors reported against instances
/// ([`note_error`](Self::note_error)). Methods take `&self` (the state is behind a mutex held
/// for no I/O), so one picker can serve every task of a client, behind an `Arc`.
///
/// # Identity
/// Instances are told apart by their [`id`](ServiceInstance::id) alone: the sticky choice and
/// the error records follow an id, so an instance whose registration was updated (a new
/// payload, say) keeps its standing, and [`pick`](Self::pick) returns the current
/// version from the list it is given. Curator compares whole instances (every field) instead.
/// `DYNAMIC_SEQUENTIAL` registrations of one id share one record.
#[derive(Debug)]
pub struct InstancePicker {
    strategy: Strategy,
    down: DownInstances,
    state: Mutex<State>,
}

/// What a picker remembers between calls.
#[derive(Debug)]
struct State {
    choice: Choice,
    /// The error records, by instance id: only instances with a recent error or down.
    health: HashMap<String, Health>,
}

/// A strategy's memory, shaped as the strategy.
#[derive(Debug)]
enum Choice {
    RoundRobin { next: usize },
    Random,
    Sticky { current: Option<String>, inner: Box<Choice> },
}

/// One instance's errors.
#[derive(Debug, Default)]
struct Health {
    /// When the recent errors (within the timeout, while not down) happened, oldest first.
    errors: VecDeque<Instant>,
    /// Since when it is down, if it went down.
    down_since: Option<Instant>,
}

impl InstancePicker {
    /// A picker with this strategy and down-instance policy.
    pub fn new(strategy: Strategy, down: DownInstances) -> InstancePicker {
        let choice = Choice::new(&strategy);
        InstancePicker { strategy, down, state: Mutex::new(State { choice, health: HashMap::new() }) }
    }

    /// The strategy.
    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    /// The down-instance policy.
    pub fn down_instances(&self) -> DownInstances {
        self.down
    }

    /// The instance to use among `instances` (a copy of it), by the strategy, or `None` when no
    /// instance is a candidate: none is enabled and up (or the list is empty).
    pub fn pick(&self, instances: &[ServiceInstance]) -> Option<ServiceInstance> {
        let now = Instant::now();
        let mut state = self.lock();
        state.forget(now, self.down.timeout);
        let candidates: Vec<&ServiceInstance> =
            instances.iter().filter(|i| i.enabled && !state.is_down(&i.id, now, self.down.timeout)).collect();
        let chosen = state.choice.choose(&candidates)?;
        Some(candidates[chosen].clone())
    }

    /// The candidates among `instances`: the enabled instances that are not down, in order
    /// (what Curator's `getAllInstances` returns).
    pub fn candidates<'a>(&self, instances: &'a [ServiceInstance]) -> Vec<&'a ServiceInstance> {
        let now = Instant::now();
        let state = self.lock();
        instances.iter().filter(|i| i.enabled && !state.is_down(&i.id, now, self.down.timeout)).collect()
    }

    /// Reports that using `instance` failed: with enough such reports it is down for a while
    /// (see [`DownInstances`]). Only its id is looked at.
    pub fn note_error(&self, instance: &ServiceInstance) {
        let now = Instant::now();
        let mut state = self.lock();
        state.forget(now, self.down.timeout);
        let timeout = self.down.timeout;
        let health = state.health.entry(instance.id.clone()).or_default();
        if let Some(since) = health.down_since {
            if now.duration_since(since) < timeout {
                return;
            }
            health.down_since = None;
        }
        health.errors.retain(|&at| now.duration_since(at) < timeout);
        health.errors.push_back(now);
        if health.errors.len() >= self.down.error_threshold as usize {
            health.errors.clear();
            health.down_since = Some(now);
        }
    }

    /// Whether the instance with `instance`'s id is down now.
    pub fn is_down(&self, instance: &ServiceInstance) -> bool {
        self.lock().is_down(&instance.id, Instant::now(), self.down.timeout)
    }

    /// The state; a panic in another thread while it was held cannot leave it inconsistent
    /// (every update is a single step), so a poisoned lock is taken over.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for InstancePicker {
    /// Round-robin, Curator's default down-instance policy.
    fn default() -> InstancePicker {
        InstancePicker::new(Strategy::default(), DownInstances::default())
    }
}

impl State {
    /// Whether the instance `id` is down at `now`.
    fn is_down(&self, id: &str, now: Instant, timeout: Duration) -> bool {
        self.health.get(id).and_then(|h| h.down_since).is_some_and(|since| now.duration_since(since) < timeout)
    }

    /// Drops the records that no longer matter at `now`: no recent error and not down.
    fn forget(&mut self, now: Instant, timeout: Duration) {
        self.health.retain(|_, h| {
            if h.down_since.is_some_and(|since| now.duration_since(since) >= timeout) {
                h.down_since = None;
            }
            h.errors.retain(|&at| now.duration_since(at) < timeout);
            h.down_since.is_some() || !h.errors.is_empty()
        });
    }
}

impl Choice {
    fn new(strategy: &Strategy) -> Choice {
        match strategy {
            Strategy::RoundRobin => Choice::RoundRobin { next: 0 },
            Strategy::Random => Choice::Random,
            Strategy::Sticky(inner) => Choice::Sticky { current: None, inner: Box::new(Choice::new(inner)) },
        }
    }

    /// The position of the chosen candidate, `None` when there is none.
    fn choose(&mut self, candidates: &[&ServiceInstance]) -> Option<usize> {
        match self {
            Choice::RoundRobin { next } => {
                if candidates.is_empty() {
                    return None;
                }
                let chosen = *next % candidates.len();
                *next = next.wrapping_add(1);
                Some(chosen)
            }
            Choice::Random => {
                if candidates.is_empty() {
                    return None;
                }
                Some((random_u64() % candidates.len() as u64) as usize)
            }
            Choice::Sticky { current, inner } => {
                if let Some(kept) = current.as_deref().and_then(|id| candidates.iter().position(|c| c.id == id)) {
                    return Some(kept);
                }
                *current = None;
                let chosen = inner.choose(candidates)?;
                *current = Some(candidates[chosen].id.clone());
                Some(chosen)
            }
        }
    }
}

/// 64 random bits, from a v4 UUID's random bytes (as conclave-core's back-off jitter gets
/// them, so no random-number crate is needed).
fn random_u64() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[9], bytes[10]])
}

// A picker is shared between tasks.
const _: () = send_sync::<InstancePicker>();
const fn send_sync<T: Send + Sync + 'static>() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str) -> ServiceInstance {
        ServiceInstance::builder("svc").id(id).address("192.0.2.10").port(80u16).registration_time_utc(1).build()
    }

    fn list(ids: &[&str]) -> Vec<ServiceInstance> {
        ids.iter().map(|id| instance(id)).collect()
    }

    fn picks(picker: &InstancePicker, instances: &[ServiceInstance], n: usize) -> Vec<String> {
        (0..n).map(|_| picker.pick(instances).map(|i| i.id).unwrap_or_else(|| "-".into())).collect()
    }

    fn picker(strategy: Strategy) -> InstancePicker {
        InstancePicker::new(strategy, DownInstances::default())
    }

    #[test]
    fn round_robin_cycles_in_order_and_survives_changes() {
        let p = picker(Strategy::RoundRobin);
        let abc = list(&["a", "b", "c"]);
        assert_eq!(picks(&p, &abc, 7), ["a", "b", "c", "a", "b", "c", "a"]);
        // The 8th and 9th picks over a shorter list: positions 7 % 2 and 8 % 2.
        let ac = list(&["a", "c"]);
        assert_eq!(picks(&p, &ac, 2), ["c", "a"]);
        // An instance comes: positions 9 % 4, 10 % 4, ...
        let abcd = list(&["a", "b", "c", "d"]);
        assert_eq!(picks(&p, &abcd, 4), ["b", "c", "d", "a"]);
        assert_eq!(p.pick(&[]), None);
        assert_eq!(picks(&p, &list(&["z"]), 2), ["z", "z"]);
    }

    #[test]
    fn random_covers_every_candidate() {
        let p = picker(Strategy::Random);
        let abc = list(&["a", "b", "c"]);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for id in picks(&p, &abc, 600) {
            *seen.entry(id).or_default() += 1;
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.values().all(|&n| n > 100), "roughly uniform: {seen:?}");
        assert_eq!(p.pick(&[]), None);
    }

    #[test]
    fn sticky_stays_then_moves() {
        let p = picker(Strategy::sticky(Strategy::RoundRobin));
        let abc = list(&["a", "b", "c"]);
        assert_eq!(picks(&p, &abc, 3), ["a", "a", "a"]);
        // Still listed, elsewhere and updated: the same id, the current version.
        let mut moved = list(&["c", "b", "a"]);
        moved[2].port = Some(81);
        assert_eq!(p.pick(&moved).and_then(|i| i.port), Some(81));
        // Gone: the inner round-robin's next pick (its 2nd: position 1), then kept.
        let bc = list(&["b", "c"]);
        assert_eq!(picks(&p, &bc, 3), ["c", "c", "c"]);
        // Disabled counts as gone.
        let mut disabled = list(&["b", "c"]);
        disabled[1].enabled = false;
        assert_eq!(picks(&p, &disabled, 2), ["b", "b"]);
        // An empty list forgets the choice.
        assert_eq!(p.pick(&[]), None);
        assert_eq!(picks(&p, &abc, 2), ["a", "a"], "the inner strategy's 4th pick: position 0 again");
        assert_eq!(p.strategy(), &Strategy::Sticky(Box::new(Strategy::RoundRobin)));
    }

    #[test]
    fn sticky_over_random_keeps_its_pick() {
        let p = picker(Strategy::sticky(Strategy::Random));
        let many = list(&["a", "b", "c", "d", "e", "f"]);
        let first = picks(&p, &many, 1).remove(0);
        assert!(picks(&p, &many, 20).iter().all(|id| *id == first));
    }

    #[test]
    fn disabled_instances_are_skipped_and_empty_gives_none() {
        let p = InstancePicker::default();
        let mut abc = list(&["a", "b", "c"]);
        abc[1].enabled = false;
        assert_eq!(picks(&p, &abc, 4), ["a", "c", "a", "c"]);
        assert_eq!(p.candidates(&abc).iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        for i in &mut abc {
            i.enabled = false;
        }
        assert_eq!(p.pick(&abc), None);
        assert_eq!(p.pick(&[]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn down_after_the_threshold_within_the_timeout() {
        let p = InstancePicker::default();
        let ab = list(&["a", "b"]);
        let a = &ab[0];
        p.note_error(a);
        assert!(!p.is_down(a), "one error is under the threshold of 2");
        assert_eq!(picks(&p, &ab, 2), ["a", "b"]);
        // The second error comes after the first left the 30 s window: still one.
        tokio::time::advance(Duration::from_secs(30)).await;
        p.note_error(a);
        assert!(!p.is_down(a));
        tokio::time::advance(Duration::from_secs(29)).await;
        p.note_error(a);
        assert!(p.is_down(a), "two errors within 30 s");
        assert_eq!(picks(&p, &ab, 3), ["b", "b", "b"]);
        assert_eq!(p.candidates(&ab).len(), 1);
        // Errors while down do not extend it: down for 30 s from the error that brought it down.
        tokio::time::advance(Duration::from_secs(20)).await;
        p.note_error(a);
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(p.is_down(a));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!p.is_down(a), "up again 30 s after it went down");
        assert_eq!(picks(&p, &ab, 2).len(), 2);
        // It comes back with no errors counted.
        p.note_error(a);
        assert!(!p.is_down(a));
        p.note_error(a);
        assert!(p.is_down(a));
    }

    #[tokio::test(start_paused = true)]
    async fn all_down_gives_none_and_ids_are_the_identity() {
        let p =
            InstancePicker::new(Strategy::RoundRobin, DownInstances::new(1, Duration::from_secs(5)).expect("policy"));
        let ab = list(&["a", "b"]);
        p.note_error(&ab[0]);
        // The same id, another version of the instance: the same record.
        let mut b2 = ab[1].clone();
        b2.payload = serde_json::json!({"v": 2});
        p.note_error(&b2);
        assert!(p.is_down(&ab[1]));
        assert_eq!(p.pick(&ab), None, "every candidate is down");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!p.is_down(&ab[0]) && !p.is_down(&ab[1]), "up again after the timeout");
        assert_eq!(p.lock().health.len(), 2, "the records wait for the next pick or error");
        assert!(p.pick(&ab).is_some());
        assert!(p.lock().health.is_empty(), "expired records are forgotten");
        p.note_error(&ab[0]);
        tokio::time::advance(Duration::from_secs(5)).await;
        p.note_error(&instance("c"));
        assert_eq!(p.lock().health.keys().collect::<Vec<_>>(), ["c"], "expired records are forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_timeout_turns_tracking_off() {
        let p = InstancePicker::new(Strategy::RoundRobin, DownInstances::new(1, Duration::ZERO).expect("policy"));
        let a = instance("a");
        p.note_error(&a);
        p.note_error(&a);
        assert!(!p.is_down(&a));
        assert_eq!(p.pick(std::slice::from_ref(&a)).map(|i| i.id), Some("a".to_string()));
    }

    #[test]
    fn the_policy_checks_its_threshold() {
        assert!(matches!(
            DownInstances::new(0, Duration::from_secs(1)),
            Err(crate::Error::Zk(ZkError::InvalidArgument(m))) if m.contains("threshold")
        ));
        let d = DownInstances::default();
        assert_eq!((d.error_threshold(), d.timeout()), (2, Duration::from_secs(30)));
        let custom = DownInstances::new(3, Duration::from_secs(1)).expect("policy");
        assert_eq!(InstancePicker::new(Strategy::Random, custom).down_instances(), custom);
    }

    #[tokio::test]
    async fn is_shared_between_tasks() {
        let p = std::sync::Arc::new(picker(Strategy::RoundRobin));
        let abc = std::sync::Arc::new(list(&["a", "b", "c"]));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (p, abc) = (p.clone(), abc.clone());
                tokio::spawn(async move { (0..100).filter_map(|_| p.pick(&abc)).count() })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("task");
        }
        assert_eq!(total, 300);
        // 300 picks so far: the next is position 300 % 3.
        assert_eq!(p.pick(&abc).map(|i| i.id), Some("a".to_string()));
    }
}
