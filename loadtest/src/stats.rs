//! Latency statistics.

use std::time::Duration;

/// Sorted samples with percentile lookups.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The nearest-rank percentile (`p` in 0..=100); zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }

    /// Each sample minus `base` (never below zero).
    pub fn minus(&self, base: Duration) -> Samples {
        Samples::new(self.sorted.iter().map(|d| d.saturating_sub(base)).collect())
    }
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Samples {
        Samples::new(values.iter().map(|v| Duration::from_millis(*v)).collect())
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = ms(&[50, 10, 40, 20, 30, 60, 70, 80, 90, 100]);
        assert_eq!(s.percentile(50.0), Duration::from_millis(50));
        assert_eq!(s.percentile(90.0), Duration::from_millis(90));
        assert_eq!(s.percentile(99.0), Duration::from_millis(100));
        assert_eq!(s.percentile(0.0), Duration::from_millis(10));
        assert_eq!(s.max(), Duration::from_millis(100));
        assert_eq!(Samples::default().percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn overhead_subtracts_the_model_latency() {
        let s = ms(&[55, 60, 45]).minus(Duration::from_millis(50));
        assert_eq!(s.percentile(50.0), Duration::from_millis(5));
        assert_eq!(s.percentile(0.0), Duration::ZERO);
    }
}
