//! Leader election (`conclave::leader`) on both backends: one leader among many, succession on
//! resignation, session expiry and node deletion, epochs, cancelled campaigns, the one-shot
//! queries and the observer stream.

use std::time::Duration;

use conclave::leader::{self, Election, ElectionEvent, Layout, Leader, Leadership, LossReason};
use conclave::{CancellationToken, Client, Result, ZkError};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::conformance;
use crate::lock::{children, name, until_children};
use crate::support::{pending_for, within, Env};

conformance!(
    one_leader_at_a_time_and_succession_in_order,
    session_expiry_elects_the_next,
    a_deleted_leader_node_is_a_lost_leadership,
    given_up_campaigns_leave_nothing,
    observe_reports_every_change_in_order,
    bad_paths_are_reported,
    run_leads_again_after_a_loss_and_stops_when_told,
    run_with_the_selector_layout_waits_its_turn,
    events_report_election_loss_and_requeue,
    participants_rejoin_after_expiry_only_when_asked,
    run_keeps_the_leadership_while_the_work_runs,
);

/// Starts a campaign of `id` on its own task.
fn campaign(client: &Client, path: &str, id: &str) -> JoinHandle<Result<Leadership>> {
    let election = Election::new(client.clone(), path).with_id(id.to_string());
    tokio::spawn(async move { election.campaign().await })
}

/// Five participants: exactly one leads; the queries name it; each resignation elects the next
/// in line, with a greater epoch, until nobody is left.
async fn one_leader_at_a_time_and_succession_in_order(env: Env) -> Result<()> {
    let observer = env.client().await;
    let mut clients = Vec::new();
    let mut pending = Vec::new();
    for i in 0..5 {
        let c = env.client().await;
        pending.push(campaign(&c, "/election", &format!("p{i}")));
        // Queue in a known order: each candidacy is on the server before the next starts.
        until_children(&observer, "/election", i + 1).await;
        clients.push(c);
    }
    let mut last_epoch = 0;
    for (i, client) in clients.iter().enumerate() {
        let leadership = within(10, pending.remove(0)).await.expect("campaign task")?;
        assert_eq!(&leadership.id()[..], format!("p{i}").as_bytes(), "elected in the order they joined");
        assert!(leadership.epoch() > last_epoch, "epochs increase");
        last_epoch = leadership.epoch();
        assert!(leadership.is_held());
        for other in &mut pending {
            pending_for(100, other).await;
        }
        let leader = leader::leader(&observer, "/election").await?.expect("a leader");
        let want = Leader {
            id: format!("p{i}").into_bytes().into(),
            epoch: leadership.epoch(),
            path: leadership.path().to_string(),
        };
        assert_eq!(leader, want);
        let participants = leader::participants(&observer, "/election").await?;
        assert_eq!(participants.len(), 5 - i);
        assert!(participants[0].holder && participants.iter().skip(1).all(|p| !p.holder));
        assert_eq!(participants[0].path, leadership.path());
        assert_eq!(participants[0].kind, "latch-");
        assert!(name(leadership.path()).starts_with("_c_") && name(leadership.path()).contains("-latch-"));
        let stat = observer.exists(leadership.path()).await?.expect("the leader's node");
        assert_eq!(leadership.epoch(), stat.czxid as u64, "the epoch is the node's czxid");
        assert_eq!(stat.ephemeral_owner, client.session_id());
        leadership.resign().await?;
    }
    assert_eq!(leader::leader(&observer, "/election").await?, None);
    assert_eq!(children(&observer, "/election").await, Vec::<String>::new());
    Ok(())
}

/// The leader's session expires: its leadership is lost, and the next participant is elected.
async fn session_expiry_elects_the_next(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let la = within(10, Election::new(a.clone(), "/e").with_id("a").campaign()).await?;
    let mut next = campaign(&b, "/e", "b");
    pending_for(200, &mut next).await;
    let lost = la.lost();
    env.expire(&a).await?;
    let reason = within(10, lost).await;
    assert!(matches!(reason, LossReason::SessionLost | LossReason::Suspended | LossReason::NodeDeleted), "{reason:?}");
    assert!(!la.is_held());
    let lb = within(10, next).await.expect("campaign task")?;
    assert!(lb.epoch() > la.epoch());
    assert_eq!(&lb.id()[..], b"b");
    lb.resign().await?;
    Ok(())
}

/// An operator deletes the leader's node: the leader learns it lost (`NodeDeleted`) and the next
/// participant is elected.
async fn a_deleted_leader_node_is_a_lost_leadership(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let operator = env.client().await;
    let la = within(10, Election::new(a.clone(), "/e").with_id("a").campaign()).await?;
    let next = campaign(&b, "/e", "b");
    until_children(&operator, "/e", 2).await;
    operator.delete(la.path(), None).await?;
    assert_eq!(within(10, la.lost()).await, LossReason::NodeDeleted);
    let lb = within(10, next).await.expect("campaign task")?;
    assert_eq!(leader::leader(&operator, "/e").await?.map(|l| l.epoch), Some(lb.epoch()));
    drop(la);
    lb.resign().await?;
    Ok(())
}

/// A campaign that gives up — `try_campaign` while someone leads, a timeout, a dropped future —
/// leaves no node behind and is never elected later.
async fn given_up_campaigns_leave_nothing(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let la = within(10, Election::new(a.clone(), "/e").with_id("a").campaign()).await?;
    let eb = Election::new(b.clone(), "/e").with_id("b");
    assert!(within(10, eb.try_campaign()).await?.is_none());
    assert!(within(10, eb.campaign_timeout(Duration::from_millis(200))).await?.is_none());
    {
        let mut dropped = Box::pin(eb.campaign());
        pending_for(200, &mut dropped).await;
    }
    // The drop's delete is queued on b's session before this read.
    assert_eq!(children(&b, "/e").await, vec![name(la.path()).to_string()]);
    la.resign().await?;
    assert_eq!(leader::leader(&b, "/e").await?, None, "nobody was elected behind our back");
    let lb = within(10, eb.try_campaign()).await?.expect("a free election is won at once");
    lb.resign().await?;
    Ok(())
}

/// An observer (not a participant) sees the current leader first, then each change in order:
/// nobody (the path does not exist yet), a, b after a resigns, nobody after b resigns. A
/// participant joining behind the leader is no change.
async fn observe_reports_every_change_in_order(env: Env) -> Result<()> {
    let o = env.client().await;
    let a = env.client().await;
    let b = env.client().await;
    let mut seen = Box::pin(leader::observe(&o, "/watched"));
    assert_eq!(within(10, seen.next()).await.expect("an item")?, None, "nobody leads a path that does not exist");
    let la = within(10, Election::new(a.clone(), "/watched").with_id("a").campaign()).await?;
    let first = within(10, seen.next()).await.expect("an item")?.expect("a leader");
    assert_eq!((&first.id[..], first.epoch), (&b"a"[..], la.epoch()));
    let nb = campaign(&b, "/watched", "b");
    until_children(&o, "/watched", 2).await;
    pending_for(200, &mut seen.next()).await;
    la.resign().await?;
    let second = within(10, seen.next()).await.expect("an item")?.expect("a leader");
    let lb = within(10, nb).await.expect("campaign task")?;
    assert_eq!((&second.id[..], second.epoch), (&b"b"[..], lb.epoch()));
    assert!(second.epoch > first.epoch);
    lb.resign().await?;
    assert_eq!(within(10, seen.next()).await.expect("an item")?, None);
    Ok(())
}

/// A bad path is reported by every entry point, naming it; `observe` ends after reporting it.
async fn bad_paths_are_reported(env: Env) -> Result<()> {
    let c = env.client().await;
    let bad = |r: Result<()>| matches!(r, Err(conclave::Error::Zk(ZkError::InvalidPath { .. })));
    assert!(bad(Election::new(c.clone(), "no-slash").campaign().await.map(drop)));
    assert!(bad(leader::leader(&c, "no-slash").await.map(drop)));
    assert!(bad(leader::participants(&c, "no-slash").await.map(drop)));
    let mut s = Box::pin(leader::observe(&c, "no-slash"));
    assert!(bad(s.next().await.expect("one item").map(drop)));
    assert!(s.next().await.is_none(), "then the stream ends");
    Ok(())
}

/// `run` calls the work once elected; when the leader's node is deleted the work's token is
/// cancelled, the work ends, and the participant is elected again (a greater epoch); cancelling
/// `stop` ends the work and the loop, leaving no node.
async fn run_leads_again_after_a_loss_and_stops_when_told(env: Env) -> Result<()> {
    let c = env.client().await;
    let operator = env.client().await;
    let stop = CancellationToken::new();
    let (terms, mut started) = mpsc::unbounded_channel::<(u64, String)>();
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<u64>();
    let election = Election::new(c.clone(), "/run").with_id("runner");
    let runner = {
        let stop = stop.clone();
        tokio::spawn(async move {
            election
                .run(&stop, |leadership, token| {
                    let (terms, ended) = (terms.clone(), ended_tx.clone());
                    async move {
                        let epoch = leadership.epoch();
                        terms.send((epoch, leadership.path().to_string())).expect("report the term");
                        token.cancelled().await;
                        ended.send(epoch).expect("report the end");
                        drop(leadership);
                    }
                })
                .await
        })
    };
    let (first, node) = within(10, started.recv()).await.expect("a first term");
    pending_for(200, &mut Box::pin(ended.recv())).await;
    operator.delete(&node, None).await?;
    assert_eq!(within(10, ended.recv()).await, Some(first), "the token is cancelled on the loss");
    let (second, _) = within(10, started.recv()).await.expect("elected again");
    assert!(second > first);
    stop.cancel();
    assert_eq!(within(10, ended.recv()).await, Some(second), "the token is cancelled on stop");
    within(10, runner).await.expect("the run task")?;
    within(10, until_children(&operator, "/run", 0)).await;
    Ok(())
}

/// With Curator's `LeaderSelector` layout (`-lock-` nodes), `run` waits while another
/// participant leads, gives up its candidacy when stopped, and the readers understand the
/// layout.
async fn run_with_the_selector_layout_waits_its_turn(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let la = within(10, Election::new(a.clone(), "/sel").layout(Layout::Selector).with_id("a").campaign()).await?;
    assert!(name(la.path()).contains("-lock-"), "{}", la.path());
    assert_eq!(leader::leader(&b, "/sel").await?.map(|l| l.id), Some(b"a".to_vec().into()));
    let stop = CancellationToken::new();
    let election = Election::new(b.clone(), "/sel").layout(Layout::Selector).with_id("b");
    let mut run = Box::pin({
        let stop = stop.clone();
        async move { election.run(&stop, |_, _| async { panic!("b must not be elected while a leads") }).await }
    });
    pending_for(300, &mut run).await;
    let participants = leader::participants(&b, "/sel").await?;
    assert_eq!(
        participants.iter().map(|p| (p.kind, p.holder)).collect::<Vec<_>>(),
        [("lock-", true), ("lock-", false)]
    );
    stop.cancel();
    within(10, run).await?;
    assert_eq!(children(&b, "/sel").await, vec![name(la.path()).to_string()], "the candidacy was withdrawn");
    la.resign().await?;
    Ok(())
}

/// The events of a participant that stays in the election: who leads, its own election (with
/// its node), the loss when an operator deletes its node, and its election again (a greater
/// epoch) without being asked; dropping the stream resigns.
async fn events_report_election_loss_and_requeue(env: Env) -> Result<()> {
    let c = env.client().await;
    let operator = env.client().await;
    let mut events = Box::pin(Election::new(c.clone(), "/ev").with_id("me").events());
    // Our election, and who leads: us (perhaps after nobody), in either order.
    let (mut elected, mut reported) = (None, None);
    while elected.is_none() || reported.is_none() {
        match next_event(&mut events).await {
            ElectionEvent::Elected { epoch, node } => elected = Some((epoch, node)),
            ElectionEvent::Leader(Some(l)) => reported = Some(l),
            ElectionEvent::Leader(None) => assert!(reported.is_none(), "nobody leads after we were reported"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let ((first, node), reported) = (elected.expect("elected"), reported.expect("reported"));
    assert_eq!((&reported.id[..], reported.epoch, reported.path.as_str()), (&b"me"[..], first, node.as_str()));
    let stat = operator.exists(&node).await?.expect("our node");
    assert_eq!((stat.czxid as u64, stat.ephemeral_owner), (first, c.session_id()));
    operator.delete(&node, None).await?;
    let mut lost = false;
    let second = loop {
        match next_event(&mut events).await {
            ElectionEvent::Lost { reason } => {
                assert_eq!(reason, LossReason::NodeDeleted);
                lost = true;
            }
            ElectionEvent::Elected { epoch, .. } => break epoch,
            ElectionEvent::Leader(Some(l)) => assert!(l.epoch >= first, "{l:?}"),
            ElectionEvent::Leader(None) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(lost && second > first, "lost, then elected again with a greater epoch");
    // Our new term shows as the leader (if not already reported before the election).
    let leader = leader::leader(&operator, "/ev").await?.expect("a leader");
    assert_eq!((&leader.id[..], leader.epoch), (&b"me"[..], second));
    drop(events);
    within(10, until_children(&operator, "/ev", 0)).await;
    Ok(())
}

/// The next event (20 s at most), which must not be an error.
async fn next_event(events: &mut (impl futures::Stream<Item = Result<ElectionEvent>> + Unpin)) -> ElectionEvent {
    within(20, events.next()).await.expect("an event").expect("no error")
}

/// After its session expired, a participant that asked for it (`rejoin_after_expiry`) campaigns
/// again on a new session: its events say `Rejoined`, then `Elected` with a node of the new
/// session; `run` leads again. Without asking, the events end with `SessionExpired`.
async fn participants_rejoin_after_expiry_only_when_asked(env: Env) -> Result<()> {
    let operator = env.client().await;
    let c = env.client().await;
    let mut events = Box::pin(Election::new(c.clone(), "/rj").with_id("me").rejoin_after_expiry(true).events());
    let first = loop {
        if let ElectionEvent::Elected { epoch, .. } = next_event(&mut events).await {
            break epoch;
        }
    };
    env.expire(&c).await?;
    // (A term may begin again on the old session before it is closed: see `run` below.)
    let mut rejoined = false;
    let (second, node) = loop {
        match next_event(&mut events).await {
            ElectionEvent::Rejoined { .. } => rejoined = true,
            ElectionEvent::Elected { epoch, node } if rejoined => break (epoch, node),
            _ => {}
        }
    };
    assert!(second > first, "elected again");
    let owner = operator.exists(&node).await?.expect("the new leader node").ephemeral_owner;
    assert!(owner != c.session_id() && owner != 0, "the node belongs to the new session");
    drop(events);
    within(10, until_children(&operator, "/rj", 0)).await;

    // `run` too.
    let d = env.client().await;
    let stop = CancellationToken::new();
    let (terms, mut started) = mpsc::unbounded_channel::<i64>();
    let runner = {
        let (stop, election) = (stop.clone(), Election::new(d.clone(), "/rj").rejoin_after_expiry(true));
        tokio::spawn(async move {
            election
                .run(&stop, |leadership, token| {
                    let terms = terms.clone();
                    async move {
                        terms.send(leadership.client().session_id()).expect("report the term");
                        token.cancelled().await;
                    }
                })
                .await
        })
    };
    let session = within(10, started.recv()).await.expect("a first term");
    assert_eq!(session, d.session_id());
    env.expire(&d).await?;
    // The expiry first cuts the connection (the killing connection takes the session over), so
    // a term may begin again on the old session before it is closed; then one on a new session.
    within(20, async { while started.recv().await.expect("terms") == session {} }).await;
    stop.cancel();
    within(10, runner).await.expect("the run task")?;

    // Without asking: the events end with the session's error.
    let e = env.client().await;
    let mut events = Box::pin(Election::new(e.clone(), "/rj2").events());
    while !matches!(next_event(&mut events).await, ElectionEvent::Elected { .. }) {}
    env.expire(&e).await?;
    let ended = within(20, async {
        loop {
            match events.next().await {
                Some(Ok(_)) => {}
                Some(Err(err)) => return Some(err),
                None => return None,
            }
        }
    })
    .await;
    assert_eq!(ended, Some(conclave::Error::Zk(ZkError::SessionExpired)));
    assert!(events.next().await.is_none(), "then the stream ends");
    Ok(())
}

/// `run`'s work is stopped the moment the connection is lost (the default loss policy), though
/// the session survives: its token is cancelled, and once it has ended the participant campaigns
/// again on the same session. Embedded only: the cut comes from the server's fault hooks.
#[tokio::test]
async fn run_stops_the_work_when_the_connection_is_lost() -> Result<()> {
    let env = Env::embedded("leader-run-suspended").await;
    let c = env.client().await;
    let stop = CancellationToken::new();
    let (terms, mut started) = mpsc::unbounded_channel::<u64>();
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<u64>();
    let runner = {
        let (stop, election) = (stop.clone(), Election::new(c.clone(), "/sus"));
        tokio::spawn(async move {
            election
                .run(&stop, |leadership, token| {
                    let (terms, ended) = (terms.clone(), ended_tx.clone());
                    async move {
                        terms.send(leadership.epoch()).expect("report the term");
                        token.cancelled().await;
                        ended.send(leadership.epoch()).expect("report the end");
                    }
                })
                .await
        })
    };
    let first = within(10, started.recv()).await.expect("a first term");
    assert!(env.server().faults().cut_connection(c.session_id()), "the connection was cut");
    assert_eq!(within(10, ended.recv()).await, Some(first), "the work is stopped on the connection loss");
    let second = within(20, started.recv()).await.expect("elected again once reconnected");
    assert!(second > first);
    assert!(!c.state().is_terminal(), "the same session");
    stop.cancel();
    within(10, runner).await.expect("the run task")?;
    Ok(())
}

/// Work that ignores the leadership it is given still leads until it returns: `run` keeps the
/// leadership too, and resigns only after the work's future ended.
async fn run_keeps_the_leadership_while_the_work_runs(env: Env) -> Result<()> {
    let a = env.client().await;
    let b = env.client().await;
    let stop = CancellationToken::new();
    let runner = {
        let (stop, election) = (stop.clone(), Election::new(a.clone(), "/keep").with_id("a"));
        tokio::spawn(async move { election.run(&stop, |_, token| async move { token.cancelled().await }).await })
    };
    within(10, until_children(&b, "/keep", 1)).await;
    let eb = Election::new(b.clone(), "/keep").with_id("b");
    let mut waiting = Box::pin(eb.campaign());
    pending_for(500, &mut waiting).await;
    assert_eq!(leader::leader(&b, "/keep").await?.map(|l| l.id), Some(b"a".to_vec().into()));
    stop.cancel();
    within(10, runner).await.expect("the run task")?;
    let lb = within(10, waiting).await?;
    assert_eq!(&lb.id()[..], b"b");
    lb.resign().await?;
    Ok(())
}
