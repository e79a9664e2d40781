//! Randomness for back-off and host order: a random pause from the upper half of a delay (so that
//! clients that lost their connections together do not retry together) and an in-place shuffle.
//! A leaf module, used by [`crate::retry`] and the session's reconnect loop alike; the random
//! bits come from UUID v4 generation, so no extra dependency is needed.

use std::time::Duration;

/// 64 random bits.
fn random_u64() -> u64 {
    u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

/// A random duration in `max / 2 .. max` (`max` itself when it is zero): a pause with jitter
/// that still waits at least half of `max`.
pub(crate) fn upper_half(max: Duration) -> Duration {
    let low = max / 2;
    let span = (max - low).as_nanos() as u64;
    if span == 0 {
        max
    } else {
        low + Duration::from_nanos(random_u64() % span)
    }
}

/// Shuffles `v` in place (Fisher–Yates).
pub(crate) fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, (random_u64() % (i as u64 + 1)) as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_keeps_elements() {
        let mut v: Vec<u32> = (0..50).collect();
        shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn upper_half_stays_in_range() {
        let max = Duration::from_millis(10);
        for _ in 0..100 {
            let d = upper_half(max);
            assert!(d >= max / 2 && d < max, "{d:?}");
        }
        assert_eq!(upper_half(Duration::ZERO), Duration::ZERO);
        assert_eq!(upper_half(Duration::from_nanos(1)), Duration::ZERO);
    }
}
