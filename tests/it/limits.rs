//! Limits: path validation, the `jute.maxbuffer` frame limit on both sides, and request order
//! under pipelining.

use conclave::CreateMode;
use conclave_core::{Error, Result};

use crate::conformance;
use crate::support::Env;

conformance!(
    invalid_paths_never_leave_the_client,
    frame_limit_is_exact,
    oversized_request_closes_the_connection,
    pipelined_requests_keep_call_order
);

/// Paths ZooKeeper rejects are refused locally with a typed error.
async fn invalid_paths_never_leave_the_client(env: Env) -> Result<()> {
    let c = env.client().await;
    for p in [
        "",
        "x",
        "/a/",
        "//",
        "/a//b",
        "/.",
        "/a/..",
        "/a\0b",
        "/\u{1}",
        "/\u{7f}",
        "/\u{fff0}",
        "/\u{e000}",
        "/\u{1f600}",
    ] {
        assert!(matches!(c.get_data(p).await, Err(Error::InvalidPath { .. })), "{p:?}");
        assert!(matches!(c.create(p, b"", CreateMode::Persistent).await, Err(Error::InvalidPath { .. })), "{p:?}");
    }
    Ok(())
}

/// The largest setData whose frame is exactly `jute.maxbuffer` (1 048 575 bytes) is accepted;
/// one byte more is refused by the client before sending.
async fn frame_limit_is_exact(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/big", b"", CreateMode::Persistent).await?;
    // Frame body: header 8 + path (4 + len) + data (4 + n) + version 4.
    let server_path_len = env.root.len() + "/big".len();
    let max = 0xfffff - (8 + 4 + server_path_len + 4 + 4);
    let st = c.set_data("/big", vec![7u8; max], None).await?;
    assert_eq!(st.data_length as usize, max);
    assert_eq!(c.get_data("/big").await?.0.len(), max);
    assert_eq!(
        c.set_data("/big", vec![7u8; max + 1], None).await,
        Err(Error::DataTooLarge { size: 0x100000, limit: 0xfffff })
    );
    Ok(())
}

/// A request frame over the server's limit makes the server close the connection; the request
/// fails with CONNECTIONLOSS and the client reconnects to the same session.
async fn oversized_request_closes_the_connection(env: Env) -> Result<()> {
    let c = env.connect(env.builder().max_frame(4 << 20)).await;
    let session = c.session_id();
    c.create("/big", b"", CreateMode::Persistent).await?;
    assert_eq!(c.set_data("/big", vec![0u8; 2 << 20], None).await, Err(Error::ConnectionLoss));
    c.wait_connected().await?;
    assert_eq!(c.session_id(), session);
    assert_eq!(c.get_data("/big").await?.1.data_length, 0);
    Ok(())
}

/// Requests are applied in call order, whether or not earlier replies have arrived.
async fn pipelined_requests_keep_call_order(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/q", b"", CreateMode::Persistent).await?;
    let creates: Vec<_> = (0..500).map(|_| c.create("/q/n-", b"", CreateMode::PersistentSequential)).collect();
    // Queued after the creates, so it sees all of them.
    let count = c.get_all_children_number("/q");
    for (i, f) in creates.into_iter().enumerate() {
        assert_eq!(f.await?.0, format!("/q/n-{i:010}"));
    }
    assert_eq!(count.await?, 500);
    // A write then a read of the same node, without waiting in between.
    let w = c.set_data("/q", b"v", None);
    let r = c.get_data("/q");
    assert_eq!(r.await?.0.as_ref(), b"v");
    assert_eq!(w.await?.version, 1);
    Ok(())
}
