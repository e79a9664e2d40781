//! `GroupMember` on both backends: Curator's layout (`<group>/<id>`, ephemeral, data = the
//! member's data), members seeing each other converge, data changes, leaving, a member whose
//! session expired coming back on a new one, the stream of member maps, and bad ids.

use std::collections::BTreeMap;
use std::time::Duration;

use conclave::membership::GroupMember;
use conclave::{Bytes, Error, Result, ZkError};
use futures::StreamExt;

use crate::conformance;
use crate::support::{within, Env};

conformance!(
    members_see_each_other_in_curators_layout,
    a_member_whose_session_expired_comes_back,
    the_stream_follows_the_group,
    bad_member_ids_are_refused,
);

fn view(entries: &[(&str, &str)]) -> BTreeMap<String, Bytes> {
    entries.iter().map(|(id, data)| (id.to_string(), Bytes::copy_from_slice(data.as_bytes()))).collect()
}

/// Waits until every member sees `expected`.
async fn converge(members: &[&GroupMember], expected: &BTreeMap<String, Bytes>) {
    within(20, async {
        for m in members {
            while &m.members() != expected {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .await;
}

/// Three members on their own sessions: each node is `<group>/<id>`, ephemeral, with its data;
/// every view converges to all three; a data change and a leave are seen by the others.
async fn members_see_each_other_in_curators_layout(env: Env) -> Result<()> {
    let (c1, c2, c3) = (env.client().await, env.client().await, env.client().await);
    let a = GroupMember::new(&c1, "/g", "a", "1")?;
    // Itself, before anything is read.
    assert_eq!(a.members(), view(&[("a", "1")]));
    let b = GroupMember::new(&c2, "/g", "b", "2")?;
    let c = GroupMember::new(&c3, "/g", "c", "3")?;
    for m in [&a, &b, &c] {
        within(10, m.joined()).await?;
    }
    let (data, stat) = c1.get_data("/g/b").await?;
    assert_eq!((&data[..], stat.ephemeral_owner), (&b"2"[..], c2.session_id()));
    converge(&[&a, &b, &c], &view(&[("a", "1"), ("b", "2"), ("c", "3")])).await;
    b.set_data("2b").await?;
    converge(&[&a, &b, &c], &view(&[("a", "1"), ("b", "2b"), ("c", "3")])).await;
    c.close().await?;
    converge(&[&a, &b], &view(&[("a", "1"), ("b", "2b")])).await;
    assert_eq!(c1.exists("/g/c").await?, None);
    Ok(())
}

/// A member's session expires: its node goes, and comes back on the successor session (with
/// its latest data); the others see it back.
async fn a_member_whose_session_expired_comes_back(env: Env) -> Result<()> {
    let (c1, c2) = (env.client().await, env.client().await);
    let a = GroupMember::new(&c1, "/g", "a", "1")?;
    let b = GroupMember::new(&c2, "/g", "b", "2")?;
    within(10, a.joined()).await?;
    within(10, b.joined()).await?;
    b.set_data("2'").await?;
    converge(&[&a, &b], &view(&[("a", "1"), ("b", "2'")])).await;
    let old = b.client().session_id();
    env.expire(&c2).await?;
    within(20, async {
        loop {
            match c1.exists("/g/b").await? {
                Some(stat) if stat.ephemeral_owner != old => return Ok::<_, ZkError>(()),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await?;
    assert_ne!(b.client().session_id(), old);
    converge(&[&a, &b], &view(&[("a", "1"), ("b", "2'")])).await;
    Ok(())
}

/// The stream: the member map once read, then after each change.
async fn the_stream_follows_the_group(env: Env) -> Result<()> {
    let (c1, c2) = (env.client().await, env.client().await);
    let a = GroupMember::new(&c1, "/g", "a", "1")?;
    within(10, a.joined()).await?;
    let mut changes = Box::pin(a.changes());
    assert_eq!(within(10, changes.next()).await.expect("a map")?, view(&[("a", "1")]));
    let b = GroupMember::new(&c2, "/g", "b", "2")?;
    assert_eq!(within(10, changes.next()).await.expect("a map")?, view(&[("a", "1"), ("b", "2")]));
    drop(b);
    assert_eq!(within(10, changes.next()).await.expect("a map")?, view(&[("a", "1")]));
    Ok(())
}

/// An id must be one node name; the group path must be valid.
async fn bad_member_ids_are_refused(env: Env) -> Result<()> {
    let c = env.client().await;
    for id in ["", "a/b", ".", ".."] {
        assert!(matches!(GroupMember::new(&c, "/g", id, ""), Err(Error::Zk(ZkError::InvalidArgument(_)))), "{id:?}");
    }
    assert!(matches!(GroupMember::new(&c, "g", "a", ""), Err(Error::Zk(ZkError::InvalidPath { .. }))));
    assert_eq!(c.exists("/g").await?, None);
    Ok(())
}
