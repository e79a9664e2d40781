//! `multi` is all or nothing, with per-op results; `multiRead` is per op (protocol reference
//! section 7).

use conclave::{CreateMode, Op, OpResult, ReadOp, ReadResult};
use conclave_core::{Error, Result};

use crate::conformance;
use crate::support::Env;

conformance!(multi_applies_in_order, failed_multi_applies_nothing, multi_read_is_per_op);

/// Ops see the effects of earlier ops in the same multi; results come in op order.
async fn multi_applies_in_order(env: Env) -> Result<()> {
    let c = env.client().await;
    assert_eq!(c.multi(Vec::<Op>::new()).await?, vec![], "an empty multi succeeds locally");
    c.create("/gone", b"", CreateMode::Persistent).await?;
    let results = c
        .multi([
            Op::create("/a", b"1".to_vec(), CreateMode::Persistent),
            Op::create("/a/b", b"2".to_vec(), CreateMode::Persistent),
            Op::check("/a", Some(0)),
            Op::set_data("/a", b"3".to_vec(), Some(0)),
            Op::delete("/gone", None),
            Op::create("/a/s-", b"".to_vec(), CreateMode::PersistentSequential),
            Op::create("/a/s-", b"".to_vec(), CreateMode::PersistentSequential),
        ])
        .await?;
    assert_eq!(results.len(), 7);
    let created: Vec<&str> = results
        .iter()
        .filter_map(|r| match r {
            OpResult::Create { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["/a", "/a/b", "/a/s-0000000001", "/a/s-0000000002"]);
    assert_eq!(results[2], OpResult::Check);
    assert_eq!(results[4], OpResult::Delete);
    let OpResult::SetData { stat } = &results[3] else { panic!("{:?}", results[3]) };
    assert_eq!(stat.version, 1);
    // One transaction: everything shares one zxid.
    let a = c.exists("/a").await?.expect("a");
    let b = c.exists("/a/b").await?.expect("b");
    assert_eq!(a.czxid, b.czxid);
    assert_eq!(a.mzxid, a.czxid);
    assert_eq!(c.get_data("/a").await?.0.as_ref(), b"3");
    assert_eq!(c.exists("/gone").await?, None);
    Ok(())
}

/// On the first failing op nothing is applied, the error names that op, and sequence numbers
/// are not consumed.
async fn failed_multi_applies_nothing(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/p", b"", CreateMode::Persistent).await?;
    let err = c
        .transaction()
        .create("/p/x", b"".to_vec(), CreateMode::Persistent)
        .create("/p/s-", b"".to_vec(), CreateMode::PersistentSequential)
        .delete("/p/missing", None)
        .set_data("/p", b"never".to_vec(), None)
        .commit()
        .await
        .unwrap_err();
    assert_eq!(err, Error::MultiFailed { index: 2, source: Box::new(Error::NoNode) });
    assert_eq!(err.code(), Some(conclave::ErrorCode::NoNode));
    assert_eq!(c.exists("/p/x").await?, None);
    assert_eq!(c.get_data("/p").await?.0.as_ref(), b"");
    let (seq, _) = c.create("/p/s-", b"", CreateMode::PersistentSequential).await?;
    assert_eq!(seq, "/p/s-0000000000", "the failed multi gave its sequence number back");
    let err = c.multi([Op::check("/p", Some(5))]).await.unwrap_err();
    assert_eq!(err, Error::MultiFailed { index: 0, source: Box::new(Error::BadVersion) });
    let err = c
        .multi([
            Op::create("/p/y", b"".to_vec(), CreateMode::Persistent),
            Op::create("/p/y", b"".to_vec(), CreateMode::Persistent),
        ])
        .await
        .unwrap_err();
    assert_eq!(err, Error::MultiFailed { index: 1, source: Box::new(Error::NodeExists) });
    Ok(())
}

/// multiRead returns data or an error for each op on its own.
async fn multi_read_is_per_op(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/r", b"data", CreateMode::Persistent).await?;
    c.create("/r/k", b"", CreateMode::Persistent).await?;
    let results = c
        .multi_read([
            ReadOp::GetData("/r".into()),
            ReadOp::GetData("/missing".into()),
            ReadOp::GetChildren("/r".into()),
        ])
        .await?;
    assert_eq!(results.len(), 3);
    match &results[0] {
        Ok(ReadResult::Data { data, stat }) => {
            assert_eq!(data.as_ref(), b"data");
            assert_eq!(stat.num_children, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(results[1], Err(Error::NoNode));
    assert_eq!(results[2], Ok(ReadResult::Children(vec!["k".into()])));
    Ok(())
}
