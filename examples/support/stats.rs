//! Statistics shared by the example binaries (each includes this file as a module).

use std::time::Duration;

/// Nearest-rank percentile of `samples` (sorted here), the definition every peer benchmark uses.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0 * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}
