//! Lock inspection: who holds a lock and who waits, in order, for operators and the command
//! line (`conclave locks PATH`).

use bytes::Bytes;
use conclave_core::{path, Client, Error, Result, Stat};

use super::engine::{break_ties, Rule};
use super::order::{self, Kind};

/// One contender on a lock, as seen by [`participants`] or [`Mutex::participants`](super::Mutex::participants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The contender's node.
    pub path: String,
    /// The node's sequence suffix (signed: ZooKeeper's counter is a 32-bit `int`).
    pub sequence: i32,
    /// Its kind: `"lock-"` (mutex), `"__READ__"` or `"__WRIT__"` (read-write lock), `"lease-"`
    /// (semaphore lease).
    pub kind: &'static str,
    /// Whether it holds the lock (for a read lock, several readers can).
    pub holder: bool,
    /// The node's data (what the contender chose to say about itself).
    pub data: Bytes,
    /// The node's stat: `czxid` is the fencing token, `ephemeral_owner` the session.
    pub stat: Stat,
}

/// The contenders on the lock directory `path` — a [`Mutex`](super::Mutex) (or Curator
/// `InterProcessMutex`) or a [`RwLock`](super::RwLock) (`InterProcessReadWriteLock`) — holders
/// first, then waiters in the order they will get the lock. Empty if the directory does not
/// exist. Children that are not contenders are left out.
///
/// # Errors
/// As [`Client::get_children`].
pub async fn participants(client: &Client, path: &str) -> Result<Vec<Participant>> {
    participants_of(client, path, &[order::LOCK, order::READ, order::WRITE], Rule::Ahead(1)).await
}

/// The contenders of `kinds` under `dir`, holders marked by `rule` (readers by the read rule).
pub(crate) async fn participants_of(
    client: &Client,
    dir: &str,
    kinds: &[Kind],
    rule: Rule,
) -> Result<Vec<Participant>> {
    let children = match client.get_children(dir).await {
        Ok(children) => children,
        Err(Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(e),
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
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    let mut out = Vec::with_capacity(present.len());
    for (index, (contender, (data, stat))) in present.iter().zip(found).enumerate() {
        let rule = if contender.kind == order::READ { Rule::Reader } else { rule };
        out.push(Participant {
            path: path::join(dir, &contender.name),
            sequence: contender.seq,
            kind: contender.kind.0,
            holder: rule.blocker(&present, index).is_none(),
            data,
            stat,
        });
    }
    Ok(out)
}
