//! `SharedValue` and `SharedCount` on both backends: versioned reads, `try_set` at the version
//! read (a stale version writes nothing), Curator's 4-byte count layout, and the change stream
//! under a writer doing 1000 updates: every value it yields is one the writer wrote, versions
//! strictly increase, and the last value is seen. A codec of the user's (JSON of a config type)
//! types the value both ways, and data it cannot read is an `InvalidArgument` naming the node.

use std::collections::HashSet;

use bytes::Bytes;
use conclave::atomic::{Codec, SharedCount, SharedValue};
use conclave::{Error, Result, ZkError};
use futures::StreamExt;

use crate::conformance;
use crate::support::{within, Env};

conformance!(try_set_needs_the_version_read, the_stream_follows_a_writer, a_codec_types_the_value);

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

/// A config type shared as JSON.
#[derive(Debug, Clone, PartialEq)]
struct Limits {
    /// Requests per second.
    rate: u64,
    /// Who set it.
    by: String,
}

/// [`Limits`] as a JSON object.
struct JsonLimits;

impl Codec for JsonLimits {
    type Input = Limits;
    type Value = Limits;
    fn encode(&self, value: Limits) -> std::result::Result<Bytes, String> {
        Ok(serde_json::json!({ "rate": value.rate, "by": value.by }).to_string().into())
    }
    fn decode(&self, data: Bytes) -> std::result::Result<Limits, String> {
        let doc: serde_json::Value = serde_json::from_slice(&data).map_err(|e| e.to_string())?;
        let rate = doc["rate"].as_u64().ok_or("no rate")?;
        let by = doc["by"].as_str().ok_or("no by")?.to_string();
        Ok(Limits { rate, by })
    }
}

/// A `SharedValue` with a codec: typed `try_set`, `get` and stream; the JSON in the node; data
/// the codec cannot read fails `get` and ends the stream with `InvalidArgument`.
async fn a_codec_types_the_value(env: Env) -> Result<()> {
    let c = env.client().await;
    let limits = SharedValue::with_codec(c.clone(), "/typed/limits", JsonLimits);
    assert!(limits.try_set(Limits { rate: 100, by: "ops".into() }, -1).await?);
    let v = limits.get().await?.expect("set");
    assert_eq!(v.value, Limits { rate: 100, by: "ops".into() });
    let raw: serde_json::Value = serde_json::from_slice(&c.get_data("/typed/limits").await?.0).expect("JSON");
    assert_eq!(raw, serde_json::json!({ "rate": 100, "by": "ops" }));
    let mut changes = Box::pin(limits.changes());
    assert_eq!(within(10, changes.next()).await.expect("a value")?.value.rate, 100);
    assert!(limits.try_set(Limits { rate: 200, by: "sre".into() }, v.version).await?);
    assert_eq!(within(10, changes.next()).await.expect("a value")?.value.by, "sre");
    c.set_data("/typed/limits", "not json", None).await?;
    let bad = within(10, changes.next()).await.expect("an error");
    assert!(matches!(&bad, Err(Error::Zk(ZkError::InvalidArgument(m))) if m.starts_with("/typed/limits: ")), "{bad:?}");
    assert!(within(10, changes.next()).await.is_none(), "the stream ends after its error");
    assert!(matches!(limits.get().await, Err(Error::Zk(ZkError::InvalidArgument(_)))));
    Ok(())
}
