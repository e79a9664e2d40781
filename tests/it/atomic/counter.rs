//! `Counter` on both backends: Curator's `DistributedAtomicLong` layout (8 bytes big-endian, a
//! missing node is 0), every operation with its pre- and post-values, wrapping arithmetic, and a
//! node that is not a counter reported as such.

use conclave::atomic::{Counter, Updated};
use conclave::{CreateMode, Error, Result, ZkError};

use crate::conformance;

conformance!(operations_report_pre_and_post_values);

async fn operations_report_pre_and_post_values(env: Env) -> Result<()> {
    let c = env.client().await;
    let counter = Counter::new(c.clone(), "/counters/hits");
    assert_eq!(counter.get().await?, 0, "a missing counter is 0");
    assert_eq!(counter.increment().await?, Updated { pre: 0, post: 1 });
    assert_eq!(c.get_data("/counters/hits").await?.0, &1i64.to_be_bytes()[..], "8 bytes, big-endian");
    assert_eq!(counter.add(41).await?, Updated { pre: 1, post: 42 });
    assert_eq!(counter.decrement().await?, Updated { pre: 42, post: 41 });
    assert_eq!(counter.compare_and_set(40, 7).await?, None, "not the expected value: nothing written");
    assert_eq!(counter.get().await?, 41);
    assert_eq!(counter.compare_and_set(41, 7).await?, Some(Updated { pre: 41, post: 7 }));
    assert_eq!(counter.try_set(-3).await?, Some(Updated { pre: 7, post: -3 }));
    assert_eq!(counter.force_set(i64::MAX).await?, Updated { pre: -3, post: i64::MAX });
    assert_eq!(counter.increment().await?, Updated { pre: i64::MAX, post: i64::MIN }, "wraps like Java");
    // Curator initializes with an empty node: 0.
    c.create("/counters/empty", b"", CreateMode::Persistent).await?;
    assert_eq!(Counter::new(c.clone(), "/counters/empty").add(5).await?, Updated { pre: 0, post: 5 });
    // Not a counter.
    c.create("/counters/text", b"abc", CreateMode::Persistent).await?;
    let text = Counter::new(c.clone(), "/counters/text");
    assert!(matches!(text.get().await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    assert!(matches!(text.increment().await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    assert_eq!(c.get_data("/counters/text").await?.0, &b"abc"[..], "left as it was");
    Ok(())
}

use crate::support::Env;
