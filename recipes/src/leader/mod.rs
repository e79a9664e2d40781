//! Leader election: [`Election`] campaigns for the leadership of a path and grants a
//! [`Leadership`] (a [`Hold`] with an epoch); [`leader`], [`participants`] and [`observe`] tell
//! anyone (participant or not) who leads.
//!
//! The election runs on the shared contention engine, with Apache Curator's `LeaderLatch` node
//! layout: every participant creates a protected, ephemeral-sequential node
//! `<path>/_c_<uuid>-latch-<seq>` whose data is its participant id, and the participant whose
//! node is first in sequence order leads. A waiting participant watches only the node just ahead
//! of it, so a leader's departure wakes exactly one successor. Java (`LeaderLatch`) and Rust
//! participants on one path take part in one election and agree on its leader.
//!
//! # Epochs
//! A leadership's [`epoch`](Leadership::epoch) is the `czxid` of the leader's node. Successive
//! leaders of a path hold nodes created in that order, so epochs strictly increase from one
//! leader to the next (even across a deletion and re-creation of the election path, on one
//! ensemble): a resource that remembers the highest epoch it has accepted can refuse a deposed
//! leader's late write. Within ZooKeeper, [`fenced`](Hold::fenced) writes are refused outright
//! once the leader's node is gone.
//!
//! # When two participants may both believe they lead
//! ZooKeeper grants leadership to exactly one node at a time: the next leader is chosen only
//! once the previous leader's node is gone (resigned, deleted, or its session expired on the
//! server). What a *process* believes can lag behind:
//! - With the default [`LossPolicy::Suspended`], [`lost`](Hold::lost) resolves as soon as the
//!   client loses its connection. The server expires the session, at the earliest, a session
//!   timeout after it last heard from the client, and the client declares the connection lost
//!   after two thirds of the session timeout without hearing from the server (it pings at a
//!   third). So a leader that stops leading when `lost()` resolves stops about a third of the
//!   session timeout (less the one-way latency of the last thing it heard) before anyone else
//!   can be elected. This rests on two assumptions: the client's and the server's clocks
//!   advance at about the same rate over a session timeout (no drift of a third of it), which
//!   holds for ordinary hardware clocks; and the connection fails in both directions together.
//!   A client that still receives (watch notifications, say) while what it sends is lost goes
//!   on believing it is connected while the server expires its session.
//! - A process that is paused (a GC pause, a stopped VM, a swapped-out machine) for longer than
//!   that margin, or that ignores `lost()`, may still run as leader after its successor was
//!   elected. Nothing in a client can prevent that; [`fenced`](Hold::fenced) writes and epochs
//!   checked by the resource are what make such a leader harmless.
//! - With [`LossPolicy::Lost`], `lost()` waits for the session's end (or the node's deletion):
//!   a leader keeps leading through short disconnections, and may overlap with its successor
//!   by up to the time it takes to learn that its session expired.

//!
//! # Curator's double-leader bugs, and why they cannot happen here
//! - CURATOR-696 (a participant whose session expired "regains" leadership with its old node,
//!   which the server then deletes): a candidacy here is one node created by one session, and
//!   the engine grants it only after checking that the node is its own session's; an expired
//!   session never campaigns again, and [`Election::rejoin_after_expiry`] campaigns with a new
//!   node on a new session (tested: the new leader node's owner is the new session).
//! - CURATOR-620, -653, -504, -444 (leadership flags flipped by interleaved reconnection events
//!   and resets): there is no leadership flag to reset. Leadership is the [`Hold`] returned by
//!   one campaign, lost once and for good ([`Hold::lost`] resolves once), and every wait runs on
//!   the one watch-and-re-read loop, which re-reads after each reconnection. The stress run
//!   (hundreds of cuts, stalls, session kills, lost replies and deleted nodes) checks that
//!   leadership intervals never overlap and epochs only grow.
//! - CURATOR-460 (acting on LOST instead of SUSPENDED lets two leaders overlap): the default
//!   policy is [`LossPolicy::Suspended`], with the margin described above; choosing
//!   [`LossPolicy::Lost`] is explicit, and documented as needing fenced writes.

use std::future::Future;
use std::ops::Deref;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use conclave_core::{path, CancellationToken, Client, Data, Error as ZkError};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{BoxStream, StreamExt};
use futures::Stream;

use crate::error::Result;
use crate::hold::{Hold, LossPolicy};
use crate::internal::contend::{self, break_ties, Rule, Spec};
use crate::internal::order::{self, Kind, LATCH, LOCK};
use crate::internal::participants::participants_of;
use crate::internal::watch::{self, Round, Step};
use crate::wait::{wait_forms, Wait};

pub use crate::hold::LossReason;
pub use crate::internal::participants::Participant;

/// The node markers of both layouts: readers ([`leader`], [`participants`], [`observe`]) count
/// either kind of participant.
const BOTH: &[Kind] = &[LATCH, LOCK];

/// How participants' nodes are named: as by Curator's `LeaderLatch` (the default) or by its
/// `LeaderSelector`. All participants of one path must use the same layout: a participant
/// counts only the nodes of its own layout, so two layouts on one path are two elections with a
/// leader each (as with Curator), which the readers ([`leader`], [`observe`]), counting both
/// kinds together, cannot show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `<path>/_c_<uuid>-latch-<seq>`, as `LeaderLatch`.
    #[default]
    Latch,
    /// `<path>/_c_<uuid>-lock-<seq>`, as `LeaderSelector` (an `InterProcessMutex` on the path).
    Selector,
}

/// A participant in the leader election of one path, interoperable with Apache Curator's
/// `LeaderLatch` on the same path (or its `LeaderSelector`, with [`Layout::Selector`]).
///
/// Cloning is cheap; clones are handles on the same election with the same participant id, and
/// each campaign is a separate candidacy.
///
/// # Cancellation safety
/// Every campaign future is cancellation-safe: dropping it deletes the node it created, so a
/// campaign given up leaves no candidacy behind and is never elected later.
///
/// ```no_run
/// # async fn demo(client: conclave::Client) -> conclave::Result<()> {
/// use conclave::leader::Election;
///
/// let election = Election::new(client, "/services/billing/leader").with_id("billing-7");
/// let leadership = election.campaign().await?;
/// println!("leading with epoch {}", leadership.epoch());
/// tokio::select! {
///     reason = leadership.lost() => println!("leadership lost: {reason}"),
///     _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => leadership.resign().await?,
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Election {
    spec: Spec,
    policy: LossPolicy,
    rejoin: bool,
}

impl Election {
    /// A participant in the election on `path`, with an empty participant id. Nothing is sent
    /// until a campaign (a bad path is reported then).
    pub fn new(client: Client, path: &str) -> Election {
        let spec = Spec::new(client, path, LATCH, &[LATCH], Rule::Ahead(1));
        Election { spec, policy: LossPolicy::default(), rejoin: false }
    }

    /// The node layout (default [`Layout::Latch`]): [`Layout::Selector`] to share an election
    /// with Curator `LeaderSelector`s.
    pub fn layout(mut self, layout: Layout) -> Election {
        self.spec = match layout {
            Layout::Latch => self.spec.with_kinds(LATCH, &[LATCH]),
            Layout::Selector => self.spec.with_kinds(LOCK, &[LOCK]),
        };
        self
    }

    /// The participant id, stored as the data of this participant's node (as Curator's
    /// `LeaderLatch` stores its id), and reported as [`Leader::id`] while it leads.
    pub fn with_id(mut self, id: impl Into<Data>) -> Election {
        self.spec.data = id.into().into_bytes();
        self
    }

    /// When leaderships won by this election consider themselves lost (default
    /// [`LossPolicy::Suspended`]; see the [module docs](self) for what each guarantees).
    pub fn loss_policy(mut self, policy: LossPolicy) -> Election {
        self.policy = policy;
        self
    }

    /// Whether [`Election::run`] and [`Election::events`] go on after the session expired, on a
    /// new session ([`Client::reconnect_new_session`]: same servers and settings); default false
    /// (they end with `SessionExpired`). Campaigns and the rest use the client given.
    pub fn rejoin_after_expiry(mut self, rejoin: bool) -> Election {
        self.rejoin = rejoin;
        self
    }

    /// This election on a new session, if it rejoins after `e` (a session expiry).
    async fn rejoined(&self, e: &crate::Error) -> Option<Result<Election>> {
        if !self.rejoin || *e != ZkError::SessionExpired {
            return None;
        }
        let spec = &self.spec;
        Some(match crate::internal::session::renewed(&spec.client).await {
            Ok(client) => {
                tracing::debug!(path = %spec.dir, session = %format_args!("{:#x}", client.session_id()), "rejoining on a new session");
                Ok(Election { spec: spec.with_client(client), ..self.clone() })
            }
            Err(e) => Err(e),
        })
    }

    /// The election path.
    pub fn path(&self) -> &str {
        &self.spec.dir
    }

    /// This participant's id.
    pub fn id(&self) -> &Bytes {
        &self.spec.data
    }

    wait_forms! {
        what: "the leadership",
        with: campaign_with() -> Leadership,
        forever: campaign,
        once: try_campaign,
        timeout: campaign_timeout,
        cancellable: campaign_cancellable,
    }

    /// Campaigns within `wait`'s limits: the leadership once this participant is elected, or
    /// `None` if the limits were reached first (the candidacy is withdrawn). The other campaign
    /// methods are shorthands for this one.
    ///
    /// # Errors
    /// `InvalidPath` (naming the election path) before anything is sent; `NoAuth` if the
    /// election path's ACL forbids creating children; `DataTooLarge` for an oversized id; the
    /// session's terminal error (`SessionExpired`, `Closed`, ...) if it ends first. Connection
    /// losses are ridden out.
    ///
    /// # Cancellation safety
    /// Dropping the future leaves no node behind (see [`Election`]).
    pub async fn campaign_with(&self, wait: Wait) -> Result<Option<Leadership>> {
        let Some(won) = contend::acquire(&self.spec, &wait.start()).await? else { return Ok(None) };
        tracing::debug!(node = %won.path, epoch = won.stat.czxid, "elected");
        let hold = Hold::new(self.spec.client.clone(), won.path, won.stat, self.policy);
        Ok(Some(Leadership { hold, id: self.spec.data.clone() }))
    }

    /// Leads whenever elected, until `stop` is cancelled: the form of Curator's `LeaderSelector`
    /// (with auto-requeue). Each time this participant is elected, `work` is called with the
    /// [`Leadership`] (shared: `run` keeps it too) and a token, and its future runs:
    /// - the token is cancelled the moment the leadership may be lost ([`Hold::lost`], by the
    ///   loss policy), or when `stop` is cancelled; `work` should then wind down. Its future is
    ///   awaited to the end either way, and the leadership is resigned only then (once the last
    ///   clone of the `Arc` is dropped: keep none beyond the work), so the next leader is elected
    ///   only after `work` has returned;
    /// - the token is cancelled too once `work`'s future has returned, so tasks spawned under
    ///   the leadership with a child of the token (or awaiting it) end with it;
    /// - then the participant campaigns again, unless `stop` was cancelled. A leadership lost
    ///   before `work` could start is not given to it.
    ///
    /// Returns `Ok(())` once `stop` is cancelled (a campaign in progress is withdrawn).
    ///
    /// # Errors
    /// As [`Election::campaign_with`]: a session that ends (it expired, or was closed) ends the
    /// loop with its error, unless [`Election::rejoin_after_expiry`] asked to go on on a new
    /// session after an expiry.
    pub async fn run<F, Fut>(&self, stop: &CancellationToken, mut work: F) -> Result<()>
    where
        F: FnMut(Arc<Leadership>, CancellationToken) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut election = self.clone();
        while !stop.is_cancelled() {
            // A free election is won even with a cancelled token: hence the check above.
            let leadership = match election.campaign_cancellable(stop).await {
                Ok(Some(leadership)) => Arc::new(leadership),
                Ok(None) => break,
                Err(e) => {
                    let rejoined = tokio::select! {
                        rejoined = election.rejoined(&e) => rejoined,
                        () = stop.cancelled() => break,
                    };
                    match rejoined {
                        Some(rejoined) => {
                            election = rejoined?;
                            continue;
                        }
                        None => return Err(e),
                    }
                }
            };
            if !leadership.is_held() {
                // Lost between the election and now (the connection, say): campaign again.
                continue;
            }
            let lost = leadership.lost();
            let token = stop.child_token();
            let mut term = pin!(work(leadership.clone(), token.clone()));
            tokio::select! {
                () = &mut term => {}
                reason = lost => {
                    tracing::debug!(%reason, path = %election.spec.dir, "leadership may be lost; stopping the work");
                    token.cancel();
                    term.await;
                }
                () = token.cancelled() => term.await,
            }
            token.cancel();
            drop(leadership);
        }
        Ok(())
    }

    /// Takes part in the election for as long as the stream is polled, and reports what
    /// happens ([`ElectionEvent`]): who leads as it changes (as [`observe`] does), this
    /// participant's election, and the loss of its leadership, after which it campaigns again
    /// by itself (Curator's auto-requeue). The stream holds the leadership while it leads, and
    /// after reporting its loss until it is polled again, so that the consumer can stop acting
    /// as the leader before anyone else can be elected; dropping the stream withdraws the
    /// candidacy or resigns (in the background). A leadership always ends with a `Lost` event
    /// before anything else is reported (an error, or `Rejoined`).
    ///
    /// Unlike a bare campaign, which watches only the participant ahead of it, the stream also
    /// follows who leads: every participant joining or leaving wakes every participant's stream
    /// for one listing.
    ///
    /// The stream ends after its first error: `InvalidPath` at once, a refused create, or the
    /// session's end, unless [`Election::rejoin_after_expiry`] asked to go on on a new session
    /// after an expiry ([`ElectionEvent::Rejoined`]).
    pub fn events(&self) -> impl Stream<Item = Result<ElectionEvent>> + Send + 'static {
        struct Participating {
            election: Election,
            observe: BoxStream<'static, Result<Option<Leader>>>,
            term: Term,
            /// A failure seen while leading, reported after the `Lost` event.
            failure: Option<crate::Error>,
            ended: bool,
        }
        let start = Participating {
            election: self.clone(),
            observe: observe(&self.spec.client, &self.spec.dir).boxed(),
            term: Term::campaign(self),
            failure: None,
            ended: false,
        };
        futures::stream::unfold(start, |mut st| async move {
            if st.ended {
                return None;
            }
            if let Term::Lost { .. } = st.term {
                // The consumer has taken the `Lost` event: resign now (dropping the leadership
                // deletes its node in the background) and campaign again.
                st.term = Term::campaign(&st.election);
            }
            let next = match st.failure.take() {
                Some(e) => TermNext::Failed(e),
                None => {
                    let (term, observe) = (&mut st.term, &mut st.observe);
                    tokio::select! {
                        // The term first: a loss is reported before a failure of the observer.
                        biased;
                        next = term.next() => next,
                        leader = observe.next() => match leader {
                            Some(Ok(leader)) => TermNext::Leader(leader),
                            Some(Err(e)) => TermNext::Failed(e),
                            None => TermNext::Failed(ZkError::Closed.into()),
                        },
                    }
                }
            };
            let event = match next {
                TermNext::Leader(leader) => Ok(ElectionEvent::Leader(leader)),
                TermNext::Elected(leadership) => {
                    let event =
                        ElectionEvent::Elected { epoch: leadership.epoch(), node: leadership.path().to_string() };
                    let lost = leadership.lost().boxed();
                    st.term = Term::Leading { leadership, lost };
                    Ok(event)
                }
                TermNext::Lost(reason) => {
                    // Kept until the consumer asks for the next event, so that it can stop acting
                    // as the leader before anyone else can be elected.
                    if let Term::Leading { leadership, .. } = std::mem::replace(&mut st.term, Term::Done) {
                        st.term = Term::Lost { _leadership: leadership };
                    }
                    Ok(ElectionEvent::Lost { reason })
                }
                TermNext::Failed(e) if matches!(st.term, Term::Leading { .. }) => {
                    // Leading still: report the loss first, the failure at the next poll.
                    if let Term::Leading { leadership, .. } = std::mem::replace(&mut st.term, Term::Done) {
                        st.term = Term::Lost { _leadership: leadership };
                    }
                    st.failure = Some(e);
                    Ok(ElectionEvent::Lost { reason: LossReason::SessionLost })
                }
                TermNext::Failed(e) => match st.election.rejoined(&e).await {
                    Some(Ok(rejoined)) => {
                        let client = rejoined.spec.client.clone();
                        st.observe = observe(&client, &rejoined.spec.dir).boxed();
                        st.term = Term::campaign(&rejoined);
                        st.election = rejoined;
                        Ok(ElectionEvent::Rejoined { client })
                    }
                    Some(Err(failed)) => {
                        st.ended = true;
                        Err(failed)
                    }
                    None => {
                        st.ended = true;
                        Err(e)
                    }
                },
            };
            Some((event, st))
        })
    }

    /// The participants, leader first, then the others in the order they would lead.
    ///
    /// # Errors
    /// As [`participants`].
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        participants(&self.spec.client, &self.spec.dir).await
    }

    /// The current leader, if any.
    ///
    /// # Errors
    /// As [`leader`].
    pub async fn leader(&self) -> Result<Option<Leader>> {
        leader(&self.spec.client, &self.spec.dir).await
    }
}

/// Proof of leading an election: a [`Hold`] on the leader's own node (derefs to it, for
/// [`lost`](Hold::lost), [`fenced`](Hold::fenced), [`is_held`](Hold::is_held), ...), made by
/// [`Election::campaign`] and the other campaign methods. Dropping it resigns in the
/// background; [`Leadership::resign`] resigns and reports how that went.
#[derive(Debug)]
pub struct Leadership {
    hold: Hold,
    id: Bytes,
}

impl Leadership {
    /// The epoch of this leadership: the `czxid` of the leader's node, strictly greater than
    /// every earlier leader's of the same path (see the [module docs](self)). The same number
    /// as [`Hold::fencing_token`].
    pub fn epoch(&self) -> u64 {
        self.hold.fencing_token()
    }

    /// The participant id this leadership was won with.
    pub fn id(&self) -> &Bytes {
        &self.id
    }

    /// The hold underneath.
    pub fn hold(&self) -> &Hold {
        &self.hold
    }

    /// The hold underneath, taken: releasing it resigns, dropping it resigns in the background.
    pub fn into_hold(self) -> Hold {
        self.hold
    }

    /// Steps down: deletes the leader's node, which elects the next participant in line.
    ///
    /// # Errors
    /// As [`Hold::release`].
    pub async fn resign(self) -> Result<()> {
        self.hold.release().await
    }
}

impl Deref for Leadership {
    type Target = Hold;

    fn deref(&self) -> &Hold {
        &self.hold
    }
}

/// What [`Election::events`] reports (more kinds may come: match with a wildcard arm). Two
/// `Rejoined` are equal when their clients have the same session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ElectionEvent {
    /// Who leads now (`None`: nobody), first as it is, then at each change.
    Leader(Option<Leader>),
    /// This participant was elected.
    Elected {
        /// The leadership's epoch ([`Leadership::epoch`]).
        epoch: u64,
        /// The leader's node (for fenced writes: a `check` of it in a transaction).
        node: String,
    },
    /// This participant's leadership may be lost (by the election's loss policy); it campaigns
    /// again.
    Lost {
        /// Why.
        reason: LossReason,
    },
    /// The session expired and the participant campaigns again on a new one
    /// ([`Election::rejoin_after_expiry`]).
    Rejoined {
        /// The new session's client (the one given is expired), for fenced writes and the rest.
        client: Client,
    },
}

impl PartialEq for ElectionEvent {
    fn eq(&self, other: &Self) -> bool {
        use ElectionEvent::*;
        match (self, other) {
            (Leader(a), Leader(b)) => a == b,
            (Elected { epoch: a, node: m }, Elected { epoch: b, node: n }) => a == b && m == n,
            (Lost { reason: a }, Lost { reason: b }) => a == b,
            (Rejoined { client: a }, Rejoined { client: b }) => a.session_id() == b.session_id(),
            _ => false,
        }
    }
}

impl Eq for ElectionEvent {}

/// Where a participant of [`Election::events`] stands.
enum Term {
    /// Campaigning.
    Campaigning(BoxFuture<'static, Result<Leadership>>),
    /// Leading, until `lost` resolves.
    Leading { leadership: Leadership, lost: BoxFuture<'static, LossReason> },
    /// The leadership may be lost and the consumer was told; resigned at the next poll.
    Lost {
        /// Held until then.
        _leadership: Leadership,
    },
    /// In between (never polled).
    Done,
}

/// What changed for a participant of [`Election::events`].
enum TermNext {
    Leader(Option<Leader>),
    Elected(Leadership),
    Lost(LossReason),
    Failed(crate::Error),
}

impl Term {
    fn campaign(election: &Election) -> Term {
        let election = election.clone();
        Term::Campaigning(async move { election.campaign().await }.boxed())
    }

    /// Waits for the campaign's end, or the leadership's loss.
    async fn next(&mut self) -> TermNext {
        match self {
            Term::Campaigning(campaign) => match campaign.await {
                Ok(leadership) => TermNext::Elected(leadership),
                Err(e) => TermNext::Failed(e),
            },
            Term::Leading { lost, .. } => TermNext::Lost(lost.await),
            Term::Lost { .. } | Term::Done => std::future::pending().await,
        }
    }
}

/// Who leads an election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leader's participant id (its node's data).
    pub id: Bytes,
    /// Its epoch (its node's `czxid`).
    pub epoch: u64,
    /// Its node.
    pub path: String,
}

/// The participants in the election on `path` — [`Election`]s and Curator `LeaderLatch`es or
/// `LeaderSelector`s —
/// leader first, then the others in the order they would lead, with their ids as node data.
/// Empty if the path does not exist. Children that are not participants are left out.
///
/// # Errors
/// `InvalidPath` (naming `path`); `NoAuth` if the path may not be read; the session's terminal
/// error if it ends first (connection losses are ridden out).
pub async fn participants(client: &Client, path: &str) -> Result<Vec<Participant>> {
    participants_of(client, path, BOTH, Rule::Ahead(1)).await
}

/// The current leader of the election on `path`, if any.
///
/// # Errors
/// As [`participants`].
pub async fn leader(client: &Client, path: &str) -> Result<Option<Leader>> {
    path::validate_path(path)?;
    watch::answered(client, || async move {
        match client.get_children(path).await {
            Ok(children) => first_present(client, path, &children).await,
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// The leader of the election on `path` as it changes, for anyone (participant or not), like
/// etcd's `Observe`: first the current leader (or `None`), then every change, in order. A change
/// is a new leader, or no leader; the stream waits on a watch between changes, and ends after
/// its first error (`InvalidPath` at once; the session's terminal error when it ends).
/// Connection losses are ridden out; a leader that came and went while the client was
/// disconnected is not seen.
///
/// Every participant joining or leaving wakes an observer (it watches the election's children);
/// participants themselves watch only the node ahead of them.
pub fn observe(client: &Client, path: &str) -> impl Stream<Item = Result<Option<Leader>>> + Send + 'static {
    struct State {
        client: Client,
        path: String,
        last: Option<Option<Leader>>,
        ended: bool,
    }
    let start = State { client: client.clone(), path: path.to_string(), last: None, ended: false };
    futures::stream::unfold(start, |mut st| async move {
        if st.ended {
            return None;
        }
        let next = match path::validate_path(&st.path) {
            Err(e) => Err(e.into()),
            Ok(()) => {
                let (client, dir, last) = (&st.client, st.path.as_str(), &st.last);
                watch::until(client, |round| async move {
                    let now = current(&round, client, dir).await?;
                    Ok(match now {
                        Some(now) if last.as_ref() != Some(&now) => Step::Done(now),
                        Some(_) => Step::Wait,
                        None => Step::Again,
                    })
                })
                .await
            }
        };
        match next {
            Ok(leader) => {
                st.last = Some(leader.clone());
                Some((Ok(leader), st))
            }
            Err(e) => {
                st.ended = true;
                Some((Err(e), st))
            }
        }
    })
}

/// One round of [`observe`]: the leader now, with a watch on the election's children (or, if
/// the path does not exist, on its creation); `None` if the path appeared meanwhile (look again).
async fn current(round: &Round, client: &Client, dir: &str) -> Result<Option<Option<Leader>>> {
    match round.watch_children(dir).await? {
        Some(children) => Ok(Some(first_present(client, dir, &children).await?)),
        None => match round.watch_exists(dir).await? {
            Some(_) => Ok(None),
            None => Ok(Some(None)),
        },
    }
}

/// The first participant among `children` whose node is still there, read.
async fn first_present(client: &Client, dir: &str, children: &[String]) -> Result<Option<Leader>> {
    let Some(anchor) = order::newest(children, BOTH) else { return Ok(None) };
    let sorted = break_ties(client, dir, order::sorted(children, BOTH, anchor)).await?;
    for candidate in sorted {
        let node = path::join(dir, &candidate.name);
        match client.get_data(&node).await {
            Ok((id, stat)) => return Ok(Some(Leader { id, epoch: stat.czxid as u64, path: node })),
            // Gone meanwhile: the next one leads.
            Err(ZkError::NoNode) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}
