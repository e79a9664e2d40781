//! Queue item names and their order: each kind of queue is an [`Order`] (a name prefix, an
//! optional key before the sequence suffix), and a listing is parsed into [`Entry`] values that
//! sort in the order consumers take them.
//!
//! | kind | item name | order |
//! | --- | --- | --- |
//! | [`Fifo`] | `qn-<seq>` (Curator's `SimpleDistributedQueue`, ZooKeeper's reference queue) | sequence |
//! | [`Priority`] | `qp-<8 hex digits>-<seq>` (the priority, sign bit flipped) | priority, then sequence |
//! | [`Delay`] | `qd-<16 hex digits>-<seq>` (due time, ms since the Unix epoch) | due time, then sequence |
//!
//! The sequence suffix is ZooKeeper's `%010d` of the parent's 32-bit child version, which wraps
//! after 2^31 children changes; a listing that holds suffixes from both ends of the range is
//! ordered across the wrap (every live item was created within 2^31 changes of the others).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a kind of queue names and orders its items. Implemented by [`Fifo`], [`Priority`] and
/// [`Delay`] only.
pub trait Order: sealed::Sealed + Send + Sync + 'static {
    /// The item name prefix.
    #[doc(hidden)]
    const PREFIX: &'static str;
    /// How many hex digits of key follow the prefix (then a `-`); 0 for none.
    #[doc(hidden)]
    const KEY_DIGITS: usize;
    /// Whether the key is a due time (items are invisible before it).
    #[doc(hidden)]
    const DELAYED: bool;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Fifo {}
    impl Sealed for super::Priority {}
    impl Sealed for super::Delay {}
}

/// First in, first out, in the order items were put (Curator's `SimpleDistributedQueue`
/// layout).
#[derive(Debug)]
pub enum Fifo {}

/// Lowest priority value first; first in, first out within one priority.
#[derive(Debug)]
pub enum Priority {}

/// Each item is invisible until its due time; earliest due first.
#[derive(Debug)]
pub enum Delay {}

impl Order for Fifo {
    const PREFIX: &'static str = "qn-";
    const KEY_DIGITS: usize = 0;
    const DELAYED: bool = false;
}

impl Order for Priority {
    const PREFIX: &'static str = "qp-";
    const KEY_DIGITS: usize = 8;
    const DELAYED: bool = false;
}

impl Order for Delay {
    const PREFIX: &'static str = "qd-";
    const KEY_DIGITS: usize = 16;
    const DELAYED: bool = true;
}

/// The name prefix (before ZooKeeper's sequence suffix) of an item with `key`.
pub(crate) fn prefix<O: Order>(key: u64) -> String {
    match O::KEY_DIGITS {
        0 => O::PREFIX.to_string(),
        digits => format!("{}{:0digits$X}-", O::PREFIX, key, digits = digits),
    }
}

/// A priority as an order-preserving key (the sign bit flipped, so -1 < 0 < 1 as unsigned).
pub(crate) fn priority_key(priority: i32) -> u64 {
    u64::from((priority as u32) ^ 0x8000_0000)
}

/// The priority back from its key.
pub(crate) fn priority_of(key: u64) -> i32 {
    ((key as u32) ^ 0x8000_0000) as i32
}

/// A due time as a key: milliseconds since the Unix epoch (0 for earlier times).
pub(crate) fn due_key(due: SystemTime) -> u64 {
    due.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The due time back from its key.
pub(crate) fn due_of(key: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(key)
}

/// One item of a listing, understood: 24 bytes, the name itself is not kept (a consumer holds a
/// whole listing of these), as it follows from the key and the suffix.
///
/// Two entries are the same item when key and suffix as written match (`seq`, widened relative
/// to one listing, may differ between listings across a wrap).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// The key (0 for FIFO).
    pub(crate) key: u64,
    /// The sequence suffix, widened so that suffixes past a wrap sort after the others.
    pub(crate) seq: i64,
    /// The sequence suffix as ZooKeeper wrote it.
    pub(crate) raw: i32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        (self.key, self.raw) == (other.key, other.raw)
    }
}

impl Eq for Entry {}

impl std::hash::Hash for Entry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.key, self.raw).hash(state);
    }
}

impl Entry {
    /// The child name: the prefix, then ZooKeeper's `%010d` of the suffix.
    pub(crate) fn name<O: Order>(&self) -> String {
        format!("{}{:010}", prefix::<O>(self.key), self.raw)
    }

    /// Where the entry is taken, among others.
    pub(crate) fn rank(&self) -> (u64, i64) {
        (self.key, self.seq)
    }
}

/// Parses an item name of kind `O`; other names (another kind's, foreign nodes) are `None`.
pub(crate) fn parse<O: Order>(name: &str) -> Option<Entry> {
    let rest = name.strip_prefix(O::PREFIX)?;
    let (key, digits) = match O::KEY_DIGITS {
        0 => (0, rest),
        n => {
            let hex = rest.get(..n)?;
            let digits = rest.get(n..)?.strip_prefix('-')?;
            (u64::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?, digits)
        }
    };
    // The suffix alone (not `path::sequence_number`, which reads `-` plus ten digits at the end
    // of a name as positive: here the prefix is known, and `qn--2147483647` is negative).
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    if digits.len() < 10 || unsigned.len() > 10 || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq = digits.parse::<i32>().ok()?;
    let entry = Entry { key, seq: i64::from(seq), raw: seq };
    // Only names exactly as ZooKeeper writes them (the name is not kept, but rebuilt).
    (entry.name::<O>() == name).then_some(entry)
}

/// The items of kind `O` among `children`, in the order they are taken.
pub(crate) fn sorted<O: Order>(children: &[String]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = children.iter().filter_map(|c| parse::<O>(c)).collect();
    // Suffixes from both ends of the 32-bit range: the counter wrapped between them, and the
    // negative ones are the newer.
    let quarter = i64::from(i32::MAX / 2);
    if entries.iter().any(|e| e.seq > quarter) && entries.iter().any(|e| e.seq < -quarter) {
        for e in entries.iter_mut().filter(|e| e.seq < 0) {
            e.seq += 1 << 32;
        }
    }
    entries.sort_by_key(Entry::rank);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| e.name::<Fifo>()).collect()
    }

    #[test]
    fn fifo_orders_by_sequence_across_a_wrap() {
        let children: Vec<String> =
            ["qn-0000000010", "qn-2147483647", "qn--2147483648", "qn-0000000002", "foreign", "qn-12"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(
            names(&sorted::<Fifo>(&children)),
            ["qn-0000000002", "qn-0000000010", "qn-2147483647", "qn--2147483648"]
        );
        let wrapped: Vec<String> =
            ["qn--2147483647", "qn-2147483600", "qn--2147483648"].iter().map(|s| s.to_string()).collect();
        assert_eq!(names(&sorted::<Fifo>(&wrapped)), ["qn-2147483600", "qn--2147483648", "qn--2147483647"]);
    }

    #[test]
    fn priorities_order_numerically_then_by_sequence() {
        let mut children = Vec::new();
        for (i, p) in [5, -3, 0, 5, i32::MIN, i32::MAX].into_iter().enumerate() {
            children.push(format!("{}{:010}", prefix::<Priority>(priority_key(p)), i));
        }
        let order: Vec<i32> = sorted::<Priority>(&children).iter().map(|e| priority_of(e.key)).collect();
        assert_eq!(order, [i32::MIN, -3, 0, 5, 5, i32::MAX]);
        let fives: Vec<i64> =
            sorted::<Priority>(&children).iter().filter(|e| priority_of(e.key) == 5).map(|e| e.seq).collect();
        assert_eq!(fives, [0, 3]);
        assert!(parse::<Priority>("qp-0000000G-0000000001").is_none());
        assert!(parse::<Priority>("qn-0000000001").is_none());
        assert!(parse::<Fifo>("qn--0000000005").is_none(), "not as ZooKeeper writes -5");
        assert!(parse::<Priority>("qp-8000000a-0000000001").is_none(), "lower-case hex");
    }

    #[test]
    fn due_times_round_trip_to_the_millisecond() {
        let t = UNIX_EPOCH + Duration::from_millis(1_790_000_000_123);
        let name = format!("{}0000000007", prefix::<Delay>(due_key(t)));
        assert_eq!(name, "qd-000001A0C4506C7B-0000000007");
        let e = parse::<Delay>(&name).expect("parsed");
        assert_eq!((due_of(e.key), e.seq), (t, 7));
        assert_eq!(due_key(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
