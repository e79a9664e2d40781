//! [`RoundTrips`]: counts the requests a client sends and the round trips they take, from the
//! client's own tracing (a `zk_request` span when a request is queued, an event carrying
//! `latency_us` when its reply is taken), on the current thread only.
//!
//! A round trip is a run of requests queued before any reply is taken: a pipelined batch counts
//! once, requests that each wait for the previous reply count once each. This holds for code
//! that queues a batch and then awaits it, which is how pipelining is written. Use it in tests
//! on a current-thread runtime (`conformance!` tests are), where every request and reply of the
//! code under test is seen on the test's thread.

use std::sync::{Arc, Mutex};

use tracing::subscriber::{DefaultGuard, Interest};
use tracing::{Event, Metadata, Subscriber};

/// What the client did, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sent,
    Replied,
}

/// Records requests and replies while it lives; see the module doc.
#[derive(Debug)]
pub struct RoundTrips {
    steps: Arc<Mutex<Vec<Step>>>,
    _guard: DefaultGuard,
}

impl RoundTrips {
    /// Starts recording on this thread.
    pub fn start() -> RoundTrips {
        let steps = Arc::new(Mutex::new(Vec::new()));
        let guard = tracing::subscriber::set_default(Recorder { steps: steps.clone() });
        RoundTrips { steps, _guard: guard }
    }

    /// The requests queued so far.
    pub fn requests(&self) -> usize {
        self.steps().iter().filter(|s| **s == Step::Sent).count()
    }

    /// The round trips so far: runs of requests queued with no reply taken in between.
    pub fn count(&self) -> usize {
        let steps = self.steps();
        let mut previous = Step::Replied;
        let mut trips = 0;
        for step in steps {
            if step == Step::Sent && previous == Step::Replied {
                trips += 1;
            }
            previous = step;
        }
        trips
    }

    /// Forgets what was recorded so far.
    pub fn reset(&self) {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn steps(&self) -> Vec<Step> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The thread-local subscriber behind [`RoundTrips`].
struct Recorder {
    steps: Arc<Mutex<Vec<Step>>>,
}

impl Recorder {
    fn push(&self, step: Step) {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).push(step);
    }
}

/// The client's span for one request.
fn is_request(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == "zk_request"
}

/// The client's event for one reply.
fn is_reply(meta: &Metadata<'_>) -> bool {
    meta.is_event() && meta.fields().field("latency_us").is_some()
}

impl Subscriber for Recorder {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_request(meta) || is_reply(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        is_request(meta) || is_reply(meta)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.push(Step::Sent);
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &Event<'_>) {
        self.push(Step::Replied);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
