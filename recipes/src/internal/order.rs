//! How contenders are named and put in order: the Curator-compatible node-name markers of each
//! kind of contender, and the overflow-safe ordering of their 32-bit sequence suffixes.
//!
//! A contender's node is `_c_<uuid>-<kind><seq>`, where `<kind>` is `lock-` (mutex, semaphore
//! lock), `__READ__` or `__WRIT__` (read-write lock), `lease-` (semaphore lease), `latch-`
//! (leader election), and `<seq>` the
//! ten-digit, signed suffix ZooKeeper appends. Curator sorts by the text after the last kind marker, compared as a
//! string; this module parses the suffix as the signed 32-bit number it is and orders by
//! serial-number arithmetic (RFC 1982), so a counter that wraps past `i32::MAX` (or runs through
//! negative values, ZOOKEEPER-4372) never puts a newcomer ahead of an older contender.

/// The node-name marker of one kind of contender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Kind(pub(crate) &'static str);

/// Curator's `InterProcessMutex` marker (also the semaphore's internal lock).
pub(crate) const LOCK: Kind = Kind("lock-");
/// Curator's `InterProcessSemaphoreV2` lease marker.
pub(crate) const LEASE: Kind = Kind("lease-");
/// Curator's `InterProcessReadWriteLock` read marker.
pub(crate) const READ: Kind = Kind("__READ__");
/// Curator's `InterProcessReadWriteLock` write marker.
pub(crate) const WRITE: Kind = Kind("__WRIT__");
/// Curator's `LeaderLatch` marker.
pub(crate) const LATCH: Kind = Kind("latch-");

/// One child of a contention directory, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contender {
    /// The child's name.
    pub(crate) name: String,
    /// Which marker it carries.
    pub(crate) kind: Kind,
    /// Its sequence suffix.
    pub(crate) seq: i32,
    /// Its creation zxid, when it had to be read to order contenders sharing a suffix (else 0).
    pub(crate) czxid: i64,
}

/// Parses a child name carrying one of `kinds` followed by a sequence suffix: `%010d` of a
/// signed 32-bit number (`0000000042`; once the counter has gone negative `-000000005`, or
/// eleven characters for `-2147483648`). The last occurrence of a marker counts, as in Curator. Other names are not
/// contenders.
pub(crate) fn parse(name: &str, kinds: &[Kind]) -> Option<Contender> {
    let (at, kind) = kinds.iter().filter_map(|k| name.rfind(k.0).map(|at| (at, *k))).max_by_key(|(at, _)| *at)?;
    let digits = &name[at + kind.0.len()..];
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    if digits.len() < 10 || unsigned.len() > 10 || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq = digits.parse::<i32>().ok()?;
    Some(Contender { name: name.to_string(), kind, seq, czxid: 0 })
}

/// The contenders among `children`, oldest first, ordered by the serial-number distance of
/// their suffixes from `anchor` (a suffix known to be among the live ones, normally our own).
/// All live contenders were created within far fewer than 2^31 creations of each other, so the
/// signed distance from any one of them orders them all correctly across a wrap. Ties (the same
/// suffix twice, which ZooKeeper never produces under one parent) fall back to the name.
pub(crate) fn sorted<S: AsRef<str>>(children: &[S], kinds: &[Kind], anchor: i32) -> Vec<Contender> {
    let mut out: Vec<Contender> = children.iter().filter_map(|c| parse(c.as_ref(), kinds)).collect();
    out.sort_by(|a, b| distance(anchor, a.seq).cmp(&distance(anchor, b.seq)).then_with(|| a.name.cmp(&b.name)));
    out
}

/// The signed serial-number distance from `anchor` to `seq` (negative: created before it).
pub(crate) fn distance(anchor: i32, seq: i32) -> i32 {
    seq.wrapping_sub(anchor)
}

/// The anchor for sorting a listing without a contender of our own (inspection): the suffix of
/// the contender from which the most others are ahead, i.e. the newest. Picks the suffix that
/// has every other one at a non-positive distance, falling back to the numeric maximum.
pub(crate) fn newest<S: AsRef<str>>(children: &[S], kinds: &[Kind]) -> Option<i32> {
    let seqs: Vec<i32> = children.iter().filter_map(|c| parse(c.as_ref(), kinds)).map(|c| c.seq).collect();
    seqs.iter().copied().find(|&a| seqs.iter().all(|&s| distance(a, s) <= 0)).or_else(|| seqs.iter().copied().max())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(kind: Kind, seq: i32) -> String {
        format!("_c_6f1d5a56-8f0e-4a43-9a33-0c2b8f1f7a11-{}{seq:010}", kind.0)
    }

    #[test]
    fn parses_curator_names_and_rejects_others() {
        let c = parse(&name(LOCK, 42), &[LOCK]).unwrap();
        assert_eq!((c.kind, c.seq), (LOCK, 42));
        assert_eq!(parse(&name(LOCK, -5), &[LOCK]).unwrap().seq, -5);
        assert_eq!(parse("lock-0000000007", &[LOCK]).unwrap().seq, 7, "unprotected names (go-zk, kazoo patterns)");
        assert_eq!(parse(&name(READ, 3), &[READ, WRITE]).unwrap().kind, READ);
        assert_eq!(parse(&name(WRITE, 3), &[READ, WRITE]).unwrap().kind, WRITE);
        // The last marker counts, even when a uuid-like prefix contains another.
        assert_eq!(parse("_c_x-lock-__WRIT__0000000009", &[READ, WRITE]).unwrap().seq, 9);
        for bad in ["leases", "lock-12", "lock-00000000012", "lock-00000x0012", "_c_u-lease-0000000001"] {
            assert_eq!(parse(bad, &[LOCK]), None, "{bad}");
        }
        assert_eq!(parse(&name(READ, 3), &[LOCK]), None, "a read node is not a mutex contender");
    }

    #[test]
    fn sorts_by_sequence_not_by_name() {
        let kids = [name(LOCK, 3), "_c_0000-lock-0000000002".to_string(), name(LOCK, 10), "zzz".to_string()];
        let order: Vec<i32> = sorted(&kids, &[LOCK], 10).iter().map(|c| c.seq).collect();
        assert_eq!(order, [2, 3, 10]);
    }

    #[test]
    fn negative_suffixes_sort_numerically_unlike_strings() {
        // String order would put -2 before -3 ("-000000002" < "-000000003").
        let kids: Vec<String> = [-3, -2, -1, 0, 1].iter().map(|&s| name(LOCK, s)).collect();
        let mut shuffled = kids.clone();
        shuffled.reverse();
        let order: Vec<i32> = sorted(&shuffled, &[LOCK], 1).iter().map(|c| c.seq).collect();
        assert_eq!(order, [-3, -2, -1, 0, 1]);
    }

    #[test]
    fn a_wrapped_counter_never_jumps_the_queue() {
        // Holder created just below i32::MAX, newcomers after the wrap.
        let seqs = [i32::MAX - 1, i32::MAX, i32::MIN, i32::MIN + 1];
        let kids: Vec<String> = seqs.iter().rev().map(|&s| name(LOCK, s)).collect();
        for anchor in seqs {
            let order: Vec<i32> = sorted(&kids, &[LOCK], anchor).iter().map(|c| c.seq).collect();
            assert_eq!(order, seqs, "anchored at {anchor}");
        }
        assert_eq!(newest(&kids, &[LOCK]), Some(i32::MIN + 1));
    }

    #[test]
    fn newest_without_wrap_is_the_maximum() {
        let kids: Vec<String> = [5, 9, 7].iter().map(|&s| name(LOCK, s)).collect();
        assert_eq!(newest(&kids, &[LOCK]), Some(9));
        assert_eq!(newest(&["x"], &[LOCK]), None);
    }
}
