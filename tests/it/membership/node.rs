//! `PersistentNode` (`conclave::membership`) on both backends: created in place with its data,
//! created again after a deletion, no churn across connection cuts, 20 forced session expiries
//! (back within a session timeout and a round trip each time), data set before an expiry,
//! the path rules of protected and sequential nodes, persistent nodes adopted on the new
//! session, drop and close, a drop while the create is in flight, another session's node at the
//! path, two keepers of one path on one session, and the errors the keeper cannot get past. A
//! lost create reply (embedded server only: its lost-reply hook) leaves one node.

use std::time::{Duration, Instant};

use conclave::membership::PersistentNode;
use conclave::proto::OpCode;
use conclave::{
    path, Acl, Client, ConnectionState, CreateMode, CreateOptions, Error, Id, Perms, Result, Stat, ZkError,
};
use futures::{FutureExt, Stream, StreamExt};

use crate::conformance;
use crate::lock::{children, name};
use crate::support::{cut_and_reconnect, within, Env};

conformance!(
    created_in_place_with_its_data,
    created_again_after_a_deletion,
    connection_cuts_cause_no_churn,
    survives_twenty_expiries,
    new_data_survives_an_expiry,
    protected_nodes_take_a_new_path_after_an_expiry,
    sequential_nodes_keep_their_number,
    persistent_nodes_are_adopted_after_an_expiry,
    drop_and_close_delete_the_node,
    a_drop_during_the_create_leaves_nothing,
    another_sessions_node_is_waited_out,
    two_keepers_of_one_path_on_one_session,
    unrecoverable_errors_are_reported,
);

/// Waits until `path` exists with a stat `ok` accepts (watching it, so without polling), and
/// returns that stat.
#[track_caller]
fn until_node<'a, F: Fn(&Stat) -> bool + 'a>(
    observer: &'a Client,
    path: &str,
    ok: F,
) -> impl std::future::Future<Output = Stat> + 'a {
    let path = path.to_string();
    within(20, async move {
        loop {
            let (stat, watcher) = observer.exists_and_watch(&path).await.expect("exists");
            if let Some(stat) = stat.filter(|s| ok(s)) {
                return stat;
            }
            let _ = watcher.await;
        }
    })
}

/// Waits until `path` does not exist.
#[track_caller]
fn until_gone<'a>(observer: &'a Client, path: &str) -> impl std::future::Future<Output = ()> + 'a {
    let path = path.to_string();
    within(20, async move {
        loop {
            let (stat, watcher) = observer.exists_and_watch(&path).await.expect("exists");
            if stat.is_none() {
                return;
            }
            let _ = watcher.await;
        }
    })
}

/// The next path the stream reports that is in place and not `old`.
async fn next_path_other_than<S: Stream<Item = Result<Option<String>>> + Unpin>(paths: &mut S, old: &str) -> String {
    within(20, async {
        loop {
            match paths.next().await {
                Some(Ok(Some(p))) if p != old => return p,
                Some(Ok(_)) => {}
                other => panic!("the path stream ended: {other:?}"),
            }
        }
    })
    .await
}

/// Created at once (with its missing parent, as a container), with its data, on the client's
/// session; set_data writes the node in place (and refuses oversized data without remembering
/// it); close deletes it, the container parent goes with it, and the stream ends.
async fn created_in_place_with_its_data(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let node = PersistentNode::new(&c, "/members/a", "hello");
    assert_eq!(node.base_path(), "/members/a");
    assert_eq!(within(10, node.created()).await?, "/members/a");
    let mut paths = Box::pin(node.paths());
    assert_eq!(within(10, paths.next()).await, Some(Ok(Some("/members/a".to_string()))), "the current path first");
    assert_eq!(node.path().as_deref(), Some("/members/a"));
    assert_eq!(node.try_created().await?.as_deref(), Some("/members/a"));
    let (data, stat) = observer.get_data("/members/a").await?;
    assert_eq!(&data[..], b"hello");
    assert_eq!(stat.ephemeral_owner, c.session_id());
    assert_eq!(node.client().session_id(), c.session_id());
    assert_eq!(&node.data()[..], b"hello");

    let written = node.set_data("v2").await?.expect("written to the node in place");
    let (data, stat) = observer.get_data("/members/a").await?;
    assert_eq!((&data[..], stat.version), (&b"v2"[..], written.version));
    assert_eq!(&node.data()[..], b"v2");
    let too_large = node.set_data(vec![0u8; 2 << 20]).await;
    assert!(matches!(too_large, Err(Error::Zk(ZkError::DataTooLarge { .. }))), "{too_large:?}");
    assert_eq!(&node.data()[..], b"v2", "refused data is not remembered");

    node.close().await?;
    assert_eq!(observer.exists("/members/a").await?, None);
    // The parent was created as a container: the server removes it now that it is empty.
    until_gone(&observer, "/members").await;
    assert_eq!(within(10, paths.next()).await, Some(Ok(None)), "a last None");
    assert!(within(10, paths.next()).await.is_none(), "then the end");
    Ok(())
}

/// Deleted by someone else, the node is created again at once with the same data, on the same
/// session; a data change by someone else is not a reason to create it again.
async fn created_again_after_a_deletion(env: Env) -> Result<()> {
    let c = env.client().await;
    let operator = env.client().await;
    let node = PersistentNode::new(&c, "/d/me", "data");
    within(10, node.created()).await?;
    for _ in 0..3 {
        let before = operator.exists("/d/me").await?.expect("in place").czxid;
        operator.delete("/d/me", None).await?;
        let again = until_node(&operator, "/d/me", |s| s.czxid != before).await;
        assert_eq!(again.ephemeral_owner, c.session_id());
        assert_eq!(&operator.get_data("/d/me").await?.0[..], b"data");
    }
    let czxid = operator.exists("/d/me").await?.expect("in place").czxid;
    operator.set_data("/d/me", "theirs", None).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (data, stat) = operator.get_data("/d/me").await?;
    assert_eq!((&data[..], stat.czxid), (&b"theirs"[..], czxid), "the same node, left alone");
    assert_eq!(within(10, node.created()).await?, "/d/me");
    node.close().await?;
    Ok(())
}

/// Connection cuts (the session survives) neither delete nor re-create the node, nor report a
/// path change; a deletion made while the client was away is seen once it is back, and the
/// node is created again.
async fn connection_cuts_cause_no_churn(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder()).await;
    let observer = env.client().await;
    let node = PersistentNode::new(&c, "/cut/me", "data");
    within(10, node.created()).await?;
    let mut paths = Box::pin(node.paths());
    assert_eq!(within(10, paths.next()).await, Some(Ok(Some("/cut/me".to_string()))));
    let czxid = observer.exists("/cut/me").await?.expect("created").czxid;
    for _ in 0..3 {
        cut_and_reconnect(&proxy, &c).await;
        // Whatever the keeper does after the reconnect is queued behind this on the session.
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.sync("/cut").await?;
        let stat = observer.exists("/cut/me").await?.expect("still in place");
        assert_eq!(stat.czxid, czxid, "not deleted and created again");
    }
    assert!(paths.next().now_or_never().is_none(), "no path change reported");
    assert_eq!(node.client().session_id(), c.session_id());

    // Away while an operator deletes the node.
    let mut states = c.connection_states();
    assert_eq!(states.next().await, Some(ConnectionState::Connected));
    proxy.refuse(true);
    proxy.cut();
    assert_eq!(within(10, states.next()).await, Some(ConnectionState::Suspended));
    observer.delete("/cut/me", None).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.refuse(false);
    assert_eq!(within(10, states.next()).await, Some(ConnectionState::Reconnected));
    let again = until_node(&observer, "/cut/me", |s| s.czxid != czxid).await;
    assert_eq!(again.ephemeral_owner, c.session_id(), "the same session");
    node.close().await?;
    Ok(())
}

/// 20 forced expiries of the node's session in a row: each time the keeper opens a new session
/// and creates the node again, with its data, within a session timeout and a round trip of
/// the moment the client saw its session expire (as another client observes it).
async fn survives_twenty_expiries(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let node = PersistentNode::new(&c, "/group/me", "payload");
    within(10, node.created()).await?;
    // From the moment the client saw its session expire (asserted), and from the start of the
    // forced expiry (its own round trips included; printed).
    let (mut worst, mut worst_since_forced) = (Duration::ZERO, Duration::ZERO);
    for i in 0..20 {
        let session = node.client();
        let old = session.session_id();
        let started = Instant::now();
        observer.exists("/group").await?;
        let round_trip = started.elapsed();
        let forced = Instant::now();
        within(30, env.expire(&session)).await?;
        let expired = Instant::now();
        let stat = until_node(&observer, "/group/me", |s| s.ephemeral_owner != old).await;
        let took = expired.elapsed();
        let bound = session.negotiated_timeout() + round_trip;
        assert!(took <= bound, "expiry {i}: back after {took:?}, over {bound:?}");
        worst = worst.max(took);
        worst_since_forced = worst_since_forced.max(forced.elapsed());
        assert_eq!(stat.ephemeral_owner, node.client().session_id(), "on the node's new session");
        assert_ne!(stat.ephemeral_owner, old);
        assert_eq!(&observer.get_data("/group/me").await?.0[..], b"payload");
        assert_eq!(within(10, node.created()).await?, "/group/me");
    }
    eprintln!(
        "PersistentNode on the {}: 20 expiries, back within {worst:?} at worst of the client seeing the \
         expiry ({worst_since_forced:?} of forcing it)",
        env.backend_name()
    );
    node.close().await?;
    assert_eq!(observer.exists("/group/me").await?, None);
    Ok(())
}

/// Data set before an expiry is the data the node is created again with.
async fn new_data_survives_an_expiry(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let node = PersistentNode::new(&c, "/nd/me", "old");
    within(10, node.created()).await?;
    assert!(node.set_data("new").await?.is_some());
    within(30, env.expire(&c)).await?;
    let stat = until_node(&observer, "/nd/me", |s| s.ephemeral_owner != c.session_id()).await;
    assert_eq!(stat.ephemeral_owner, node.client().session_id());
    assert_eq!(&observer.get_data("/nd/me").await?.0[..], b"new");
    node.close().await?;
    Ok(())
}

/// A protected node (`_c_<uuid>-<name>`) is created again under a new uuid after an expiry, and
/// the path stream reports the new path; the old one is gone.
async fn protected_nodes_take_a_new_path_after_an_expiry(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let node = PersistentNode::builder(&c, "/prot/member", "p").protected(true).start();
    let first = within(10, node.created()).await?;
    assert!(first.starts_with("/prot/_c_") && first.ends_with("-member"), "{first}");
    assert_eq!(path::strip_protection(name(&first)), "member");
    let mut paths = Box::pin(node.paths());
    assert_eq!(within(10, paths.next()).await, Some(Ok(Some(first.clone()))));
    within(30, env.expire(&c)).await?;
    let second = next_path_other_than(&mut paths, &first).await;
    assert!(second.starts_with("/prot/_c_") && second.ends_with("-member"), "{second}");
    assert_eq!(node.path(), Some(second.clone()));
    assert_eq!(observer.exists(&first).await?, None);
    let stat = observer.exists(&second).await?.expect("the new node");
    assert_eq!(stat.ephemeral_owner, node.client().session_id());
    assert_eq!(children(&observer, "/prot").await, vec![name(&second).to_string()]);
    node.close().await?;
    assert_eq!(children(&observer, "/prot").await, Vec::<String>::new());
    Ok(())
}

/// A sequential node keeps its path after an expiry (created again without a new number); a
/// protected sequential one keeps its number under a new uuid.
async fn sequential_nodes_keep_their_number(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let plain = PersistentNode::builder(&c, "/seq/n-", "s").sequential(true).start();
    let protected = PersistentNode::builder(&c, "/seq/p-", "s").sequential(true).protected(true).start();
    let p1 = within(10, plain.created()).await?;
    let q1 = within(10, protected.created()).await?;
    let seq = |p: &str, base: &str| path::strip_protection(name(p)).strip_prefix(base).map(str::to_string);
    assert!(seq(&p1, "n-").is_some_and(|s| s.len() == 10 && path::sequence_number(&s).is_some()), "{p1}");
    assert!(name(&q1).starts_with("_c_"), "{q1}");
    let q_seq = seq(&q1, "p-").expect("a sequence number");
    let mut q_paths = Box::pin(protected.paths());
    within(30, env.expire(&c)).await?;
    let stat = until_node(&observer, &p1, |s| s.ephemeral_owner != c.session_id()).await;
    assert_eq!(stat.ephemeral_owner, plain.client().session_id());
    let q2 = next_path_other_than(&mut q_paths, &q1).await;
    assert!(name(&q2).starts_with("_c_"), "{q2}");
    assert_eq!(seq(&q2, "p-"), Some(q_seq), "the same number under a new uuid");
    assert_eq!(within(10, plain.created()).await?, p1);
    let mut want = vec![name(&p1).to_string(), name(&q2).to_string()];
    want.sort();
    assert_eq!(children(&observer, "/seq").await, want);
    plain.close().await?;
    protected.close().await?;
    Ok(())
}

/// A persistent node outlives its session: after an expiry the keeper, on its new session,
/// adopts it (same czxid) and keeps it (a deletion is undone); close deletes it.
async fn persistent_nodes_are_adopted_after_an_expiry(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let node = PersistentNode::builder(&c, "/pers/me", "x").persistent(true).start();
    within(10, node.created()).await?;
    let stat = observer.exists("/pers/me").await?.expect("created");
    assert_eq!(stat.ephemeral_owner, 0, "persistent");
    within(30, env.expire(&c)).await?;
    within(10, async {
        while node.client().session_id() == c.session_id() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let written = within(10, node.set_data("y")).await?.expect("written");
    let (data, after) = observer.get_data("/pers/me").await?;
    assert_eq!((&data[..], after.czxid, after.version), (&b"y"[..], stat.czxid, written.version));
    // Kept on the new session: deleted, it is created again.
    observer.delete("/pers/me", None).await?;
    let again = until_node(&observer, "/pers/me", |s| s.czxid != stat.czxid).await;
    assert_eq!(again.ephemeral_owner, 0);
    assert_eq!(&observer.get_data("/pers/me").await?.0[..], b"y");
    node.close().await?;
    assert_eq!(observer.exists("/pers/me").await?, None);
    Ok(())
}

/// Dropping deletes the node, queued on the session before `drop` returns (a read on the same
/// session behind it finds nothing); close deletes it and reports; close reports the error that
/// had ended the keeper.
async fn drop_and_close_delete_the_node(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let node = PersistentNode::new(&c, "/dc/a", "x");
    within(10, node.created()).await?;
    drop(node);
    assert_eq!(c.exists("/dc/a").await?, None, "the delete went out before the read");
    let node = PersistentNode::new(&c, "/dc/b", "x");
    within(10, node.created()).await?;
    node.close().await?;
    assert_eq!(observer.exists("/dc/b").await?, None);
    // A keeper that could not create its node (no parent, none to be created).
    let node = PersistentNode::builder(&c, "/nowhere/x", "x").create_parents(false).start();
    assert_eq!(within(10, node.created()).await, Err(Error::Zk(ZkError::NoNode)));
    assert_eq!(node.close().await, Err(Error::Zk(ZkError::NoNode)));
    assert_eq!(observer.exists("/nowhere").await?, None);
    Ok(())
}

/// Dropped while its create is on the way (the network holds it), a node leaves nothing: the
/// create lands, and is undone. For a plain, a protected and a sequential node.
async fn a_drop_during_the_create_leaves_nothing(env: Env) -> Result<()> {
    let (proxy, c) = env.proxied(env.builder()).await;
    let observer = env.client().await;
    observer.create("/inflight", b"", CreateMode::Persistent).await?;
    for (kind, protected, sequential) in
        [("plain", false, false), ("protected", true, false), ("sequential", false, true)]
    {
        let before = observer.exists("/inflight").await?.expect("the parent").cversion;
        proxy.stall(Duration::from_millis(800));
        let node =
            PersistentNode::builder(&c, "/inflight/me", kind).protected(protected).sequential(sequential).start();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(node.path(), None, "{kind}: the create is held");
        drop(node);
        // One create and one delete of a child: the parent's cversion goes up by two.
        // (A child's create or delete fires no watch on the parent's stat: polled.)
        let cversion = within(20, async {
            loop {
                let parent = observer.exists("/inflight").await.expect("exists").expect("the parent");
                if parent.cversion >= before + 2 {
                    return parent.cversion;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(cversion, before + 2, "{kind}");
        assert_eq!(children(&observer, "/inflight").await, Vec::<String>::new(), "{kind}");
    }
    Ok(())
}

/// Another session's ephemeral node at the path is not adopted: the keeper waits for it to go
/// (data set meanwhile is remembered), then creates its own. A second keeper dropped while
/// waiting deletes nothing.
async fn another_sessions_node_is_waited_out(env: Env) -> Result<()> {
    let c = env.client().await;
    let other = env.client().await;
    let observer = env.client().await;
    observer.create("/f", b"", CreateMode::Persistent).await?;
    other.create("/f/me", "theirs", CreateMode::Ephemeral).await?;
    let node = PersistentNode::new(&c, "/f/me", "mine");
    assert_eq!(node.created_timeout(Duration::from_millis(300)).await?, None);
    assert_eq!(node.path(), None);
    assert_eq!(node.set_data("mine, later").await?, None, "no node of ours to write to");
    let waiting = PersistentNode::new(&c, "/f/me", "x");
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(waiting);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (data, stat) = observer.get_data("/f/me").await?;
    assert_eq!((&data[..], stat.ephemeral_owner), (&b"theirs"[..], other.session_id()), "left alone");
    other.close().await;
    let path = within(10, node.created()).await?;
    let (data, stat) = observer.get_data(&path).await?;
    assert_eq!((&data[..], stat.ephemeral_owner), (&b"mine, later"[..], c.session_id()));
    node.close().await?;
    Ok(())
}

/// Two keepers of one path on one session do not share the node: the second waits until the
/// first lets it go, then creates its own.
async fn two_keepers_of_one_path_on_one_session(env: Env) -> Result<()> {
    let c = env.client().await;
    let observer = env.client().await;
    let first = PersistentNode::new(&c, "/two/me", "first");
    within(10, first.created()).await?;
    let second = PersistentNode::new(&c, "/two/me", "second");
    assert_eq!(second.created_timeout(Duration::from_millis(300)).await?, None, "the first one's node");
    assert_eq!(&observer.get_data("/two/me").await?.0[..], b"first");
    first.close().await?;
    assert_eq!(within(10, second.created()).await?, "/two/me");
    let (data, stat) = observer.get_data("/two/me").await?;
    assert_eq!((&data[..], stat.ephemeral_owner), (&b"second"[..], c.session_id()));
    second.close().await?;
    Ok(())
}

/// What the keeper cannot get past ends it and is reported by `created`, the path stream,
/// `set_data` and `close`: an invalid path (named as given), a parent whose ACL forbids the
/// create, oversized data, and an expiry when renewal was turned off.
async fn unrecoverable_errors_are_reported(env: Env) -> Result<()> {
    let c = env.client().await;
    let node = PersistentNode::new(&c, "no-slash", "x");
    match within(10, node.created()).await {
        Err(Error::Zk(ZkError::InvalidPath { path, .. })) => assert_eq!(path, "no-slash"),
        other => panic!("{other:?}"),
    }
    drop(node);

    let read_only = vec![Acl::new(Perms::READ, Id::anyone())];
    c.create("/sealed", b"", CreateOptions::new(CreateMode::Persistent).acl(read_only)).await?;
    let node = PersistentNode::new(&c, "/sealed/me", "x");
    let paths = node.paths();
    assert_eq!(within(10, node.created()).await, Err(Error::Zk(ZkError::NoAuth)));
    let seen: Vec<_> = within(10, paths.collect()).await;
    assert_eq!(seen.last(), Some(&Err(Error::Zk(ZkError::NoAuth))), "{seen:?}");
    assert_eq!(node.set_data("y").await, Err(Error::Zk(ZkError::NoAuth)));
    assert_eq!(node.close().await, Err(Error::Zk(ZkError::NoAuth)));

    let node = PersistentNode::new(&c, "/big", vec![0u8; 2 << 20]);
    let too_large = within(10, node.created()).await;
    assert!(matches!(too_large, Err(Error::Zk(ZkError::DataTooLarge { .. }))), "{too_large:?}");
    drop(node);

    let node = PersistentNode::builder(&c, "/once/me", "x").renew_after_expiry(false).start();
    within(10, node.created()).await?;
    let paths = node.paths();
    within(30, env.expire(&c)).await?;
    let seen: Vec<_> = within(10, paths.collect()).await;
    assert_eq!(seen.last(), Some(&Err(Error::Zk(ZkError::SessionExpired))), "{seen:?}");
    assert_eq!(within(10, node.created()).await, Err(Error::Zk(ZkError::SessionExpired)));
    assert_eq!(node.client().session_id(), c.session_id(), "no new session");
    assert_eq!(node.close().await, Err(Error::Zk(ZkError::SessionExpired)));
    Ok(())
}

/// A create whose reply is lost (applied, then the connection dropped before the reply) is
/// found, not repeated: one node, for each layout. Embedded server only (its lost-reply hook).
#[tokio::test]
async fn a_lost_create_reply_leaves_one_node() {
    let env = Env::embedded("lost_create_reply").await;
    let c = env.client().await;
    let observer = env.client().await;
    let layouts = [(false, false), (true, false), (false, true), (true, true)];
    for (i, (protected, sequential)) in layouts.into_iter().enumerate() {
        let dir = format!("/lost{i}");
        observer.create(&dir, b"", CreateMode::Persistent).await.expect("create the parent");
        let mut states = c.connection_states();
        assert_eq!(states.next().await, Some(ConnectionState::Connected));
        env.server().faults().drop_reply_after_apply(c.session_id(), Some(OpCode::Create2));
        let node =
            PersistentNode::builder(&c, &format!("{dir}/n-"), "x").protected(protected).sequential(sequential).start();
        let path = within(10, node.created()).await.expect("created");
        assert_eq!(within(10, states.next()).await, Some(ConnectionState::Suspended), "the reply was lost");
        assert_eq!(within(10, states.next()).await, Some(ConnectionState::Reconnected));
        let parent = observer.exists(&dir).await.expect("exists").expect("the parent");
        assert_eq!(parent.cversion, 1, "layout {i}: one create");
        assert_eq!(children(&observer, &dir).await, vec![name(&path).to_string()], "layout {i}");
        node.close().await.expect("close");
        assert_eq!(children(&observer, &dir).await, Vec::<String>::new());
    }
}
