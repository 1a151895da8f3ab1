//! The gateway's store counters, from `GET /health` (`store.commits`, `store.reads`):
//! how many commits and reads a turn costs is measured, not asserted.

use std::time::Duration;

/// Commits and reads the gateway's store has made since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounts {
    pub commits: u64,
    pub reads: u64,
}

/// The counters now, or `None` when the gateway does not report them.
pub async fn store_counts(url: &str) -> Option<StoreCounts> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let health: serde_json::Value = client
        .get(format!("{}/health", url.trim_end_matches('/')))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(StoreCounts {
        commits: health.pointer("/store/commits")?.as_u64()?,
        reads: health.pointer("/store/reads")?.as_u64()?,
    })
}

/// Per turn, between two readings.
pub fn per_turn(before: StoreCounts, after: StoreCounts, turns: usize) -> Option<(f64, f64)> {
    if turns == 0 {
        return None;
    }
    let turns = turns as f64;
    Some((
        after.commits.saturating_sub(before.commits) as f64 / turns,
        after.reads.saturating_sub(before.reads) as f64 / turns,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_turn_divides_the_difference() {
        let before = StoreCounts {
            commits: 10,
            reads: 4,
        };
        let after = StoreCounts {
            commits: 40,
            reads: 24,
        };
        assert_eq!(per_turn(before, after, 10), Some((3.0, 2.0)));
        assert_eq!(per_turn(before, after, 0), None);
    }
}
