//! The gateway's store counters, from `GET /health` (`store.commits`, `store.reads`):
//! how many commits and reads a turn costs is measured, not asserted.

use std::time::Duration;

/// Commits and reads the gateway's store has made since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounts {
    pub commits: u64,
    /// Units written (steps and single writes); a group commit holds many.
    pub writes: u64,
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
        writes: health
            .pointer("/store/writes")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        reads: health.pointer("/store/reads")?.as_u64()?,
    })
}

/// Per turn, between two readings.
/// Commits, writes and reads per turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerTurn {
    pub commits: f64,
    pub writes: f64,
    pub reads: f64,
}

/// Per turn, between two readings.
pub fn per_turn(before: StoreCounts, after: StoreCounts, turns: usize) -> Option<PerTurn> {
    if turns == 0 {
        return None;
    }
    let turns = turns as f64;
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / turns;
    Some(PerTurn {
        commits: per(after.commits, before.commits),
        writes: per(after.writes, before.writes),
        reads: per(after.reads, before.reads),
    })
}

/// The counters of every gateway in `urls`, added up (a cluster's nodes count
/// their own); `None` when any of them does not report them.
pub async fn total_counts(urls: &[String]) -> Option<StoreCounts> {
    let mut total = StoreCounts {
        commits: 0,
        writes: 0,
        reads: 0,
    };
    for url in urls {
        let counts = store_counts(url).await?;
        total.commits += counts.commits;
        total.writes += counts.writes;
        total.reads += counts.reads;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_turn_divides_the_difference() {
        let before = StoreCounts {
            commits: 10,
            writes: 20,
            reads: 4,
        };
        let after = StoreCounts {
            commits: 40,
            writes: 70,
            reads: 24,
        };
        assert_eq!(
            per_turn(before, after, 10),
            Some(PerTurn {
                commits: 3.0,
                writes: 5.0,
                reads: 2.0
            })
        );
        assert_eq!(per_turn(before, after, 0), None);
    }
}
