//! `retry_change` on both backends: the gozk contract step by step (create with parents, set at
//! the version read, delete, keep, the closure's error), and 8 concurrent writers incrementing
//! one JSON document: the final count equals the number of successful calls, every closure
//! call saw a committed state, and no marker is left.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave::atomic::{retry_change, Change, RetryChange};
use conclave::{Client, Error, Result, ZkError};

use crate::conformance;
use crate::lock::children;
use crate::support::{within, Env};

conformance!(the_contract_step_by_step, concurrent_writers_count_exactly);

/// Create (missing parents too), set at the version read, keep, a closure error, delete.
async fn the_contract_step_by_step(env: Env) -> Result<()> {
    let c = env.client().await;
    let mut seen = Vec::new();
    let created = retry_change(&c, "/cfg/app/doc", |current| {
        seen.push(current.map(|(d, s)| (d.to_vec(), s.version)));
        Ok::<_, Error>(Change::set("v1"))
    })
    .await?;
    assert_eq!(seen, [None], "the closure saw the missing node");
    assert_eq!(created.data.as_deref(), Some(&b"v1"[..]));
    assert_eq!(created.stat.map(|s| s.version), Some(0));
    assert!(created.written && created.attempts == 1);
    let set = retry_change(&c, "/cfg/app/doc", |current| {
        let (data, stat) = current.expect("the node exists");
        assert_eq!((data, stat.version), (&b"v1"[..], 0));
        Ok::<_, Error>(Change::set("v2"))
    })
    .await?;
    assert_eq!(set.stat.map(|s| s.version), Some(1));
    let kept = retry_change(&c, "/cfg/app/doc", |_| Ok::<_, Error>(Change::Keep)).await?;
    assert_eq!((kept.data.as_deref(), kept.written), (Some(&b"v2"[..]), false));
    #[derive(Debug, PartialEq)]
    enum Mine {
        Refused,
        Zk(Error),
    }
    impl From<Error> for Mine {
        fn from(e: Error) -> Mine {
            Mine::Zk(e)
        }
    }
    let refused = retry_change(&c, "/cfg/app/doc", |_| Err::<Change, _>(Mine::Refused)).await;
    assert_eq!(refused, Err(Mine::Refused));
    assert_eq!(c.get_data("/cfg/app/doc").await?.0, &b"v2"[..], "nothing written");
    let deleted = retry_change(&c, "/cfg/app/doc", |_| Ok::<_, Error>(Change::Delete)).await?;
    assert_eq!((deleted.data, deleted.stat, deleted.written), (None, None, true));
    assert!(c.exists("/cfg/app/doc").await?.is_none());
    let again = retry_change(&c, "/cfg/app/doc", |_| Ok::<_, Error>(Change::Delete)).await?;
    assert!(!again.written, "nothing to delete: nothing written");
    let bad = retry_change(&c, "no-slash", |_| Ok::<_, Error>(Change::Keep)).await;
    assert!(matches!(bad, Err(Error::Zk(ZkError::InvalidPath { .. }))), "{bad:?}");
    Ok(())
}

/// Waits until the markers directory has no marker left (they go with their sessions).
pub(crate) async fn no_markers_left(client: &Client, dir: &str) {
    within(30, async {
        while !children(client, dir).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// 8 writers on their own sessions increment `{"n": …}` (500 times each on the embedded server,
/// 100 on a real ZooKeeper): the final `n` is the number of calls that returned `Ok`, and every
/// state a closure was given had been committed by some call (or is the initial one).
async fn concurrent_writers_count_exactly(env: Env) -> Result<()> {
    let per_writer = if env.is_embedded() { 500 } else { 100 };
    let committed: Arc<Mutex<HashSet<u64>>> = Arc::new(Mutex::new(HashSet::from([0])));
    let seen: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let mut writers = Vec::new();
    for _ in 0..8 {
        let client = env.client().await;
        let (committed, seen) = (committed.clone(), seen.clone());
        writers.push(tokio::spawn(async move {
            let change = RetryChange::new(client.clone(), "/doc");
            let mut oks = 0u64;
            for _ in 0..per_writer {
                let done = change
                    .run(|current| {
                        let n = match current {
                            Some((data, _)) => {
                                let doc: serde_json::Value = serde_json::from_slice(data).expect("json");
                                doc["n"].as_u64().expect("n")
                            }
                            None => 0,
                        };
                        seen.lock().expect("seen").insert(n);
                        Ok::<_, Error>(Change::set(serde_json::json!({ "n": n + 1 }).to_string()))
                    })
                    .await?;
                let doc: serde_json::Value = serde_json::from_slice(done.data.as_deref().expect("set")).expect("json");
                committed.lock().expect("committed").insert(doc["n"].as_u64().expect("n"));
                oks += 1;
            }
            // Its markers (one per change at once, reused) go with its session.
            client.close().await;
            Ok::<_, Error>(oks)
        }));
    }
    let mut oks = 0;
    for w in writers {
        oks += within(300, w).await.expect("writer")?;
    }
    let admin = env.client().await;
    let doc: serde_json::Value = serde_json::from_slice(&admin.get_data("/doc").await?.0).expect("json");
    assert_eq!(doc["n"].as_u64(), Some(oks), "the count is the number of successful calls");
    let committed = committed.lock().expect("committed").clone();
    let unseen: Vec<_> = seen.lock().expect("seen").difference(&committed).copied().collect();
    assert!(unseen.is_empty(), "closures saw states nobody committed: {unseen:?}");
    assert_eq!(committed.len() as u64, oks + 1, "every call committed its own state");
    no_markers_left(&admin, "/.conclave-markers").await;
    Ok(())
}
