//! Inspection of a contention directory: who holds and who waits, in order, with each
//! contender's data, for operators, the command line (`conclave locks PATH`) and the recipes'
//! `participants` methods.

use bytes::Bytes;
use conclave_core::{path, Client, Error as ZkError, Stat};

use super::contend::{break_ties, Rule};
use super::order::{self, Kind};
use super::watch;
use crate::error::Result;

/// One contender of a recipe (a lock, a semaphore lease, ...), as its `participants` method
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The contender's node.
    pub path: String,
    /// The node's sequence suffix (signed: ZooKeeper's counter is a 32-bit `int`).
    pub sequence: i32,
    /// Its kind: `"lock-"` (mutex), `"__READ__"` or `"__WRIT__"` (read-write lock), `"lease-"`
    /// (semaphore lease), `"latch-"` (leader election).
    pub kind: &'static str,
    /// Whether it holds (for a read lock, several readers can).
    pub holder: bool,
    /// The node's data (what the contender chose to say about itself).
    pub data: Bytes,
    /// The node's stat: `czxid` is the fencing token, `ephemeral_owner` the session.
    pub stat: Stat,
}

/// The contenders of `kinds` under `dir`, holders first, then waiters in the order they will
/// hold (holders marked by `rule`; readers by the read rule). Empty if the directory does not
/// exist. Children that are not contenders are left out. Connection losses are ridden out: the
/// listing is read again once the session is back.
///
/// # Errors
/// `InvalidPath` for a bad `dir`; `NoAuth` if the directory or a node may not be read; the
/// session's terminal error if it ends first.
pub(crate) async fn participants_of(
    client: &Client,
    dir: &str,
    kinds: &[Kind],
    rule: Rule,
) -> Result<Vec<Participant>> {
    path::validate_path(dir)?;
    watch::answered(client, || async move {
        let children = match client.get_children(dir).await {
            Ok(children) => children,
            Err(ZkError::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let Some(anchor) = order::newest(&children, kinds) else { return Ok(Vec::new()) };
        let sorted = break_ties(client, dir, order::sorted(&children, kinds, anchor)).await?;
        // All reads are queued at once: one round trip for the lot.
        let reads: Vec<_> = sorted.iter().map(|c| client.get_data(&path::join(dir, &c.name))).collect();
        let mut present = Vec::with_capacity(sorted.len());
        let mut found = Vec::with_capacity(sorted.len());
        for (contender, read) in sorted.into_iter().zip(reads) {
            match read.await {
                Ok(node) => {
                    present.push(contender);
                    found.push(node);
                }
                // Left meanwhile: the holder is decided among those still there.
                Err(ZkError::NoNode) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let participants = present
            .iter()
            .zip(found)
            .enumerate()
            .map(|(index, (contender, (data, stat)))| Participant {
                path: path::join(dir, &contender.name),
                sequence: contender.seq,
                kind: contender.kind.0,
                holder: rule.for_kind(contender).blocker(&present, index).is_none(),
                data,
                stat,
            })
            .collect();
        Ok(participants)
    })
    .await
}
