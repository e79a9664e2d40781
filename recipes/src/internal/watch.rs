//! The watch-and-re-read loop every recipe wait runs on, and the only place in the recipes that
//! reads with a one-shot watch, apart from the caches (`crate::cache`), which follow a whole
//! subtree with one persistent watch (or one-shot watches kept per node) in their own task.
//!
//! A recipe that waits for something (its turn in a lock, a lease to free up, its own node to
//! go) writes one *round*: reads that look at the state, some of them leaving a one-shot watch
//! through [`Round`], and a verdict ([`Step`]): done, wait for a watch to fire (or also for an
//! instant, [`Step::WaitUntil`]), or look again at once. [`until`] runs rounds until one is
//! done, and owns the rules every wait must follow:
//! - a round that meets a connection loss (`ConnectionLoss`, `OperationTimeout`) is run again
//!   once the session is connected again: its reads are repeatable, and their outcome unknown;
//! - while waiting, a reconnection to the same session (`Reconnected`, or a read-only server)
//!   runs the round again even though no watch fired, since something may have changed while
//!   the client could not hear about it;
//! - the session's end ends the loop with the session's error (a watcher fails with it, and so
//!   does the next read).
//!
//! [`until_within`] is the same loop under a [`Wait`](crate::Wait)'s limits, which end only its
//! waiting and never a round in progress (a queue take that deleted an item returns it).
//! [`answered`] is the degenerate loop of one round that never waits: a read (or a write that
//! is safe to repeat) ridden through connection losses. Dropping any of these futures drops the
//! round in progress and its watchers, which unregister themselves.

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use conclave_core::{Client, ConnectionState, ConnectionStateStream, Error as ZkError, OneshotWatcher, Stat};
use futures::future::{select_all, FutureExt};
use futures::StreamExt;

use crate::error::Result;
use crate::wait::Bound;

/// A round's verdict.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// The wait is over, with this.
    Done(T),
    /// Wait until a watch set in this round fires, or the client reconnects, then run the round
    /// again. A round that set no watch is run again at once.
    Wait,
    /// Run the round again at once (what it would have waited for is already gone).
    Again,
    /// As [`Step::Wait`], and also run the round again at this instant (something the round
    /// saw becomes ready then: a delayed queue item falls due). A round that set no watch
    /// only waits for the instant.
    WaitUntil(tokio::time::Instant),
}

/// One round's reads with a watch. Plain reads (without a watch) go straight to the client.
/// A cheap handle, passed by value to the round (which keeps the loop's future `Send`).
#[derive(Debug, Clone)]
pub(crate) struct Round {
    client: Client,
    watchers: Arc<Mutex<Vec<OneshotWatcher>>>,
}

impl Round {
    fn keep(&self, watcher: OneshotWatcher) {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner()).push(watcher);
    }

    fn take(&self) -> Vec<OneshotWatcher> {
        std::mem::take(&mut *self.watchers.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The node's children, leaving a watch that fires when a child is created or deleted or
    /// the node is deleted; `None` (and no watch) if the node does not exist.
    pub(crate) async fn watch_children(&self, path: &str) -> Result<Option<Vec<String>>> {
        match self.client.get_children_and_watch(path).await {
            Ok((children, watcher)) => {
                self.keep(watcher);
                Ok(Some(children))
            }
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The node's stat if it exists, leaving a watch either way: it fires when the node is
    /// created, changes or is deleted (the one read that watches a node that does not exist).
    pub(crate) async fn watch_exists(&self, path: &str) -> Result<Option<Stat>> {
        let (stat, watcher) = self.client.exists_and_watch(path).await?;
        self.keep(watcher);
        Ok(stat)
    }

    /// The node's data and stat, leaving a watch that fires when it changes or is deleted;
    /// `None` (and no watch: a node that is gone for good leaves nothing behind on the server)
    /// if the node does not exist.
    pub(crate) async fn watch_data(&self, path: &str) -> Result<Option<(Bytes, Stat)>> {
        match self.client.get_data_and_watch(path).await {
            Ok((data, stat, watcher)) => {
                self.keep(watcher);
                Ok(Some((data, stat)))
            }
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `round` until it is [done](Step::Done), under the rules of the [module docs](self).
/// Each call of `round` makes the future of one round (state carried from one round to the
/// next lives in the closure, and is moved into the future).
///
/// # Errors
/// The first error of a round that is not a connection loss; the session's terminal error if
/// it ends first.
pub(crate) async fn until<T, F, Fut>(client: &Client, round: F) -> Result<T>
where
    F: FnMut(Round) -> Fut,
    Fut: Future<Output = Result<Step<T>>>,
{
    let done = drive(client, None, round).await?;
    Ok(done.expect("a loop without a bound only ends with its result"))
}

/// [`until`] within `bound`, which ends only the *waiting*: between rounds, while a watch or a
/// reconnection is awaited, the bound being over ends the loop with `Ok(None)`; a round in
/// progress is never interrupted. For waits whose rounds have effects that must not be cut in
/// half (a queue take deletes an item and must return it). A round should return
/// `Step::Done(None)` instead of waiting when `bound.once()`.
///
/// # Errors
/// As [`until`].
pub(crate) async fn until_within<T, F, Fut>(client: &Client, bound: &Bound, round: F) -> Result<Option<T>>
where
    F: FnMut(Round) -> Fut,
    Fut: Future<Output = Result<Step<Option<T>>>>,
{
    Ok(drive(client, Some(bound), round).await?.flatten())
}

/// The loop of [`until`] and [`until_within`]: `None` when `bound` ended a wait.
async fn drive<T, F, Fut>(client: &Client, bound: Option<&Bound>, mut round: F) -> Result<Option<T>>
where
    F: FnMut(Round) -> Fut,
    Fut: Future<Output = Result<Step<T>>>,
{
    // Subscribed at the first wait (a round that is done at once, the common case of an
    // uncontended acquire, costs no subscription): what matters is a reconnection while waiting.
    // One that happened before the wait is covered by the round's watch, which the reconnection
    // set again with the server's catch-up.
    let mut states: Option<ConnectionStateStream> = None;
    // The last round's watchers, kept until this round's reads have registered theirs: a watch
    // dropped first would be removed from the server (a request) just before it is set again.
    let mut previous = Vec::new();
    let over = || async {
        match bound {
            Some(b) => b.over().await,
            None => std::future::pending().await,
        }
    };
    loop {
        // What happened before this round is seen by its reads.
        if let Some(states) = states.as_mut() {
            while let Some(Some(_)) = states.next().now_or_never() {}
        }
        let r = Round { client: client.clone(), watchers: Arc::default() };
        let step = round(r.clone()).await;
        drop(std::mem::take(&mut previous));
        let mut watchers = r.take();
        let waiting = match step {
            Ok(Step::Done(done)) => return Ok(Some(done)),
            Ok(Step::Again) => continue,
            Ok(Step::Wait) if watchers.is_empty() => continue,
            Ok(Step::Wait) => None,
            Ok(Step::WaitUntil(at)) => Some(at),
            Err(e) if e.is_retryable() => {
                tokio::select! {
                    biased;
                    connected = client.wait_connected() => connected?,
                    () = over() => return Ok(None),
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let states = states.get_or_insert_with(|| client.connection_states());
        let timer = async {
            match waiting {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            changed = changed(&mut watchers, states) => changed?,
            () = timer => {}
            () = over() => return Ok(None),
        }
        previous = watchers;
    }
}

/// Runs `op` (reads, or writes that are safe to repeat) until the server answers it, waiting for
/// the session to reconnect after each connection loss.
///
/// # Errors
/// The server's answer if it is an error; the session's terminal error if it ends first.
pub(crate) async fn answered<T, F, Fut>(client: &Client, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    until(client, |_| op().map(|done| done.map(Step::Done))).await
}

/// Waits until one of `watchers` fires or the client is connected again after a disconnection.
/// A watcher failing with the session's end, or the connection states ending, also returns: the
/// next round's reads report the end.
async fn changed(watchers: &mut [OneshotWatcher], states: &mut ConnectionStateStream) -> Result<()> {
    if watchers.is_empty() {
        // Only a reconnection (or the round's own timer) can end this wait.
        reconnected(states).await;
        return Ok(());
    }
    tokio::select! {
        (fired, _, _) = select_all(watchers.iter_mut()) => {
            if let Err(e) = fired {
                return Err(e.into());
            }
        }
        () = reconnected(states) => {}
    }
    Ok(())
}

/// Resolves when the client is connected again after a disconnection, or the session ends.
async fn reconnected(states: &mut ConnectionStateStream) {
    while let Some(state) = states.next().await {
        match state {
            ConnectionState::Reconnected | ConnectionState::ReadOnly | ConnectionState::Lost => return,
            _ => {}
        }
    }
}

/// The loop's rules, driven through a real client against a scripted peer
/// ([`conclave_core::testing::MockServer`]) in virtual time.
#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use conclave_core::proto::{ErrorCode, OpCode, Request, Response};
    use conclave_core::testing::{MockConn, MockServer, MOCK_SESSION_TIMEOUT_MS};

    use super::*;
    use crate::error::Error;

    const SESSION: i64 = 0x1007;

    /// A loop that reads `/x` with a watch until its data is `go`, counting its rounds.
    fn follow(client: Client, rounds: Arc<AtomicUsize>) -> tokio::task::JoinHandle<Result<Bytes>> {
        tokio::spawn(async move {
            until(&client, |round| {
                rounds.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok(match round.watch_data("/x").await? {
                        Some((data, _)) if &data[..] == b"go" => Step::Done(data),
                        _ => Step::Wait,
                    })
                }
            })
            .await
        })
    }

    fn data(bytes: &'static [u8]) -> Response {
        Response::Data { data: Some(Bytes::from_static(bytes)), stat: Stat::default() }
    }

    /// Answers the next request, a watched read of `/x`, with `bytes`. Fails if none comes
    /// within a minute (of virtual time; the client's pings alone never end the wait).
    async fn answer_read(conn: &mut MockConn, bytes: &'static [u8]) {
        let r = tokio::time::timeout(Duration::from_secs(60), conn.expect_request()).await.expect("a read in time");
        assert_eq!(r.request, Request::GetData { path: "/x".into(), watch: true });
        conn.reply(r.xid, 5, ErrorCode::Ok, Some(&data(bytes))).await;
    }

    /// What the loop of `task` ended with (within a minute of virtual time).
    async fn ended(task: tokio::task::JoinHandle<Result<Bytes>>) -> Result<Bytes> {
        tokio::time::timeout(Duration::from_secs(60), task).await.expect("ended").expect("task")
    }

    async fn accept_resume(server: &mut MockServer) -> MockConn {
        let mut conn = server.accept().await;
        let request = conn.accept_session(SESSION, MOCK_SESSION_TIMEOUT_MS).await;
        assert_eq!(request.session_id, SESSION);
        conn
    }

    /// After a reconnect to the same session the round runs again although no watch fired:
    /// something may have changed while the client could not hear of it.
    #[tokio::test(start_paused = true)]
    async fn a_reconnect_runs_the_round_again() {
        let mut server = MockServer::new();
        let (client, mut conn) = server.connect(Client::builder(), SESSION).await.expect("connected");
        let rounds = Arc::new(AtomicUsize::new(0));
        let task = follow(client, rounds.clone());
        answer_read(&mut conn, b"wait").await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!task.is_finished());
        drop(conn);
        let mut conn = accept_resume(&mut server).await;
        // The watch is re-registered; the server reports no change.
        let sw = conn.expect_request().await;
        assert_eq!(sw.op, OpCode::SetWatches);
        conn.reply(sw.xid, 5, ErrorCode::Ok, None).await;
        // Read again at once, with no removal of the old watch first.
        answer_read(&mut conn, b"go").await;
        assert_eq!(ended(task).await, Ok(Bytes::from_static(b"go")));
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
    }

    /// A round whose read meets a connection loss runs again once the session is back.
    #[tokio::test(start_paused = true)]
    async fn a_connection_loss_runs_the_round_again() {
        let mut server = MockServer::new();
        let (client, mut conn) = server.connect(Client::builder(), SESSION).await.expect("connected");
        let rounds = Arc::new(AtomicUsize::new(0));
        let task = follow(client, rounds.clone());
        let r = conn.expect_request().await;
        assert_eq!(r.op, OpCode::GetData);
        drop(conn);
        let mut conn = accept_resume(&mut server).await;
        answer_read(&mut conn, b"go").await;
        assert_eq!(ended(task).await, Ok(Bytes::from_static(b"go")));
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
    }

    /// Under a bound, a wait that outlasts it ends the loop with `None`; a round whose reply
    /// comes after the deadline is not cut short, and its result is returned.
    #[tokio::test(start_paused = true)]
    async fn a_bound_ends_only_the_waiting() {
        let mut server = MockServer::new();
        let (client, mut conn) = server.connect(Client::builder(), SESSION).await.expect("connected");
        let bounded = |client: Client| {
            tokio::spawn(async move {
                let bound = crate::Wait::timeout(Duration::from_secs(1)).start();
                until_within(&client, &bound, |round| async move {
                    Ok(match round.watch_data("/x").await? {
                        Some((data, _)) if &data[..] == b"go" => Step::Done(Some(data)),
                        _ => Step::Wait,
                    })
                })
                .await
            })
        };
        // Waiting past the bound: None.
        let task = bounded(client.clone());
        answer_read(&mut conn, b"wait").await;
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), task).await.expect("ended").expect("task"), Ok(None));
        // A reply that arrives after the deadline still counts.
        let task = bounded(client.clone());
        let r = loop {
            // The first loop's watch, dropped with it, is removed first.
            let r = conn.expect_request().await;
            if r.op == OpCode::GetData {
                break r;
            }
            assert_eq!(r.op, OpCode::RemoveWatches);
            conn.reply(r.xid, 5, ErrorCode::Ok, None).await;
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!task.is_finished(), "the round in progress was not cut short");
        conn.reply(r.xid, 6, ErrorCode::Ok, Some(&data(b"go"))).await;
        let done = tokio::time::timeout(Duration::from_secs(5), task).await.expect("ended").expect("task");
        assert_eq!(done, Ok(Some(Bytes::from_static(b"go"))));
    }

    /// `WaitUntil` runs the round again at its instant although no watch fired.
    #[tokio::test(start_paused = true)]
    async fn wait_until_runs_the_round_again_at_its_instant() {
        let mut server = MockServer::new();
        let (client, mut conn) = server.connect(Client::builder(), SESSION).await.expect("connected");
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = rounds.clone();
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(async move {
            until(&client, |round| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    let _ = round.watch_data("/x").await?;
                    Ok(if n == 0 { Step::WaitUntil(start + Duration::from_secs(3)) } else { Step::Done(()) })
                }
            })
            .await
        });
        answer_read(&mut conn, b"later").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(rounds.load(Ordering::SeqCst), 1, "nothing before the instant");
        answer_read(&mut conn, b"now").await;
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), task).await.expect("ended").expect("task"), Ok(()));
        assert!(start.elapsed() >= Duration::from_secs(3));
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
    }

    /// The session's end ends the loop with the session's error.
    #[tokio::test(start_paused = true)]
    async fn the_session_end_ends_the_loop() {
        let mut server = MockServer::new();
        let (client, mut conn) = server.connect(Client::builder(), SESSION).await.expect("connected");
        let task = follow(client, Arc::default());
        answer_read(&mut conn, b"wait").await;
        drop(conn);
        let mut conn = server.accept().await;
        let request = conn.expect_connect().await;
        conn.grant_session(&request, SESSION, 0).await;
        assert_eq!(ended(task).await, Err(Error::Zk(ZkError::SessionExpired)));
    }
}
