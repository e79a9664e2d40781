//! `SharedValue` and `SharedCount` on both backends: versioned reads, `try_set` at the version
//! read (a stale version writes nothing), Curator's 4-byte count layout, and the change stream
//! under a writer doing 1000 updates: every value it yields is one the writer wrote, versions
//! strictly increase, and the last value is seen.

use std::collections::HashSet;

use conclave::atomic::{SharedCount, SharedValue};
use conclave::{Error, Result, ZkError};
use futures::StreamExt;

use crate::conformance;
use crate::support::{within, Env};

conformance!(try_set_needs_the_version_read, the_stream_follows_a_writer);

async fn try_set_needs_the_version_read(env: Env) -> Result<()> {
    let c = env.client().await;
    let shared = SharedValue::new(c.clone(), "/shared/config");
    assert_eq!(shared.get().await?, None);
    assert!(shared.try_set("a", -1).await?, "created with its parents");
    assert!(!shared.try_set("x", -1).await?, "exists already");
    let v = shared.get().await?.expect("set");
    assert_eq!((&v.value[..], v.version), (&b"a"[..], 0));
    assert!(shared.try_set("b", v.version).await?);
    assert!(!shared.try_set("c", v.version).await?, "a stale version writes nothing");
    assert_eq!(&shared.get().await?.expect("set").value[..], b"b");
    let count = SharedCount::new(c.clone(), "/shared/count");
    assert!(count.try_set(41, -1).await?);
    assert_eq!(c.get_data("/shared/count").await?.0, &41i32.to_be_bytes()[..], "4 bytes, big-endian");
    let v = count.get().await?.expect("set");
    assert!(count.try_set(v.value + 1, v.version).await?);
    assert_eq!(count.get().await?.map(|v| v.value), Some(42));
    let not_a_count = SharedCount::new(c, "/shared/config");
    assert!(matches!(not_a_count.get().await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    Ok(())
}

async fn the_stream_follows_a_writer(env: Env) -> Result<()> {
    const UPDATES: usize = 1000;
    let (writer, reader) = (env.client().await, env.client().await);
    let shared = SharedValue::new(writer, "/followed");
    assert!(shared.try_set("v0", -1).await?);
    let mut changes = Box::pin(SharedValue::new(reader, "/followed").changes());
    let first = within(10, changes.next()).await.expect("a value")?;
    assert_eq!(&first.value[..], b"v0");
    let writing = tokio::spawn(async move {
        for i in 1..=UPDATES {
            let v = shared.get().await?.expect("set");
            assert!(shared.try_set(format!("v{i}"), v.version).await?, "the only writer");
        }
        Ok::<_, Error>(())
    });
    let written: HashSet<String> = (0..=UPDATES).map(|i| format!("v{i}")).collect();
    let (mut last_version, mut last_zxid, mut seen) = (first.version, first.mzxid, 1);
    loop {
        let v = within(60, changes.next()).await.expect("a value")?;
        let value = String::from_utf8_lossy(&v.value).into_owned();
        assert!(written.contains(&value), "{value} was never written");
        assert!(v.version > last_version && v.mzxid > last_zxid, "went back: {v:?} after {last_version}");
        (last_version, last_zxid) = (v.version, v.mzxid);
        seen += 1;
        if value == format!("v{UPDATES}") {
            break;
        }
    }
    within(60, writing).await.expect("writer")?;
    assert!(seen >= 2, "the stream saw the changes");
    eprintln!("the stream yielded {seen} of {} values", UPDATES + 1);
    Ok(())
}
