//! Which operation changes which `Stat` field, on the node and on its parent, and how zxids and
//! sequence numbers advance (protocol reference sections 4 and 5.2).

use conclave::{Acl, CreateMode};
use conclave_core::{Error, Result};

use crate::conformance;
use crate::support::Env;

conformance!(
    create_and_delete_stats,
    set_data_and_set_acl_stats,
    sequence_counter_quirk;
    exclusive: zxids_count_failed_writes
);

/// A create sets every field of the new node and bumps the parent's cversion, pzxid and
/// numChildren (not its mzxid or version); a delete bumps the parent's cversion and pzxid again.
async fn create_and_delete_stats(env: Env) -> Result<()> {
    let c = env.client().await;
    let (_, parent0) = c.create("/p", b"", CreateMode::Persistent).await?;
    let (_, child) = c.create("/p/c", b"abc", CreateMode::Persistent).await?;
    assert_eq!(child.czxid, child.mzxid);
    assert_eq!(child.czxid, child.pzxid);
    assert_eq!(child.ctime, child.mtime);
    assert!(child.ctime > 0);
    assert_eq!((child.version, child.cversion, child.aversion), (0, 0, 0));
    assert_eq!((child.data_length, child.num_children, child.ephemeral_owner), (3, 0, 0));
    assert!(child.czxid > parent0.czxid);

    let parent1 = c.exists("/p").await?.expect("parent");
    assert_eq!(parent1.cversion, parent0.cversion + 1);
    assert_eq!(parent1.pzxid, child.czxid);
    assert_eq!(parent1.num_children, 1);
    assert_eq!((parent1.mzxid, parent1.mtime, parent1.version), (parent0.mzxid, parent0.mtime, parent0.version));

    c.delete("/p/c", None).await?;
    let parent2 = c.exists("/p").await?.expect("parent");
    assert_eq!(parent2.cversion, parent1.cversion + 1, "deletes count in the visible cversion");
    assert!(parent2.pzxid > parent1.pzxid);
    assert_eq!(parent2.num_children, 0);
    assert_eq!(parent2.mzxid, parent0.mzxid);
    Ok(())
}

/// setData changes version, mzxid, mtime and dataLength (not pzxid); setACL changes only the
/// aversion.
async fn set_data_and_set_acl_stats(env: Env) -> Result<()> {
    let c = env.client().await;
    let (_, s0) = c.create("/n", b"", CreateMode::Persistent).await?;
    let s1 = c.set_data("/n", b"hello", None).await?;
    assert_eq!(s1.version, 1);
    assert!(s1.mzxid > s0.mzxid);
    assert!(s1.mtime >= s0.mtime);
    assert_eq!((s1.czxid, s1.ctime, s1.pzxid, s1.cversion, s1.aversion), (s0.czxid, s0.ctime, s0.pzxid, 0, 0));
    assert_eq!(s1.data_length, 5);
    let s2 = c.set_acl("/n", Acl::open_unsafe(), None).await?;
    assert_eq!(s2.aversion, 1);
    assert_eq!((s2.mzxid, s2.version, s2.mtime), (s1.mzxid, s1.version, s1.mtime), "setACL leaves mzxid alone");
    assert_eq!(c.exists("/n").await?, Some(s2));
    Ok(())
}

/// Every write consumes a zxid, failed ones included; reads do not.
async fn zxids_count_failed_writes(env: Env) -> Result<()> {
    let c = env.client().await;
    let (_, a) = c.create("/a", b"", CreateMode::Persistent).await?;
    c.get_data("/a").await?;
    c.exists("/a").await?;
    let (_, b) = c.create("/b", b"", CreateMode::Persistent).await?;
    assert_eq!(b.czxid, a.czxid + 1, "reads consume no zxid");
    assert_eq!(c.create("/a", b"", CreateMode::Persistent).await, Err(Error::NodeExists));
    assert_eq!(c.delete("/nope", None).await, Err(Error::NoNode));
    let (_, d) = c.create("/d", b"", CreateMode::Persistent).await?;
    assert_eq!(d.czxid, b.czxid + 3, "each failed write consumed one zxid");
    assert!(c.last_zxid() >= d.czxid);
    Ok(())
}

/// The sequence suffix counts children ever created under the parent (deletes do not give
/// numbers back), while the visible cversion counts creates and deletes.
async fn sequence_counter_quirk(env: Env) -> Result<()> {
    let c = env.client().await;
    c.create("/q", b"", CreateMode::Persistent).await?;
    let (first, _) = c.create("/q/x", b"", CreateMode::PersistentSequential).await?;
    assert_eq!(first, "/q/x0000000000");
    c.delete(&first, None).await?;
    assert_eq!(c.exists("/q").await?.expect("q").cversion, 2);
    let (second, _) = c.create("/q/x", b"", CreateMode::PersistentSequential).await?;
    assert_eq!(second, "/q/x0000000001");
    // Non-sequential children advance the counter too.
    c.create("/q/plain", b"", CreateMode::Persistent).await?;
    let (third, _) = c.create("/q/y-", b"", CreateMode::EphemeralSequential).await?;
    assert_eq!(third, "/q/y-0000000003");
    Ok(())
}
