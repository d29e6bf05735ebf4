//! Figures from a run: quantiles, milliseconds, and the sidecars' mean time per
//! timed operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::probe::{Commit, Commits};

/// Mean time per call of every timed operation, from the sidecars' Prometheus
/// histograms (`name{label="op"}` sums over counts), as `(histogram, op, calls, mean)`.
pub fn operation_means(text: &str) -> Vec<(String, String, f64, f64)> {
    let mut sums: HashMap<(String, String), (f64, f64)> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let (base, is_sum) = if let Some(base) = name.strip_suffix("_sum") {
            (base, true)
        } else if let Some(base) = name.strip_suffix("_count") {
            (base, false)
        } else {
            continue;
        };
        let op = labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| matches!(*k, "query" | "op" | "kind"))
            .map(|(_, v)| v.trim_matches(|c| c == '"' || c == '}').to_owned());
        let Some(op) = op else {
            continue;
        };
        let entry = sums.entry((base.to_owned(), op)).or_default();
        if is_sum {
            entry.0 += value;
        } else {
            entry.1 += value;
        }
    }
    let mut means: Vec<_> = sums
        .into_iter()
        .filter(|(_, (_, count))| *count > 0.0)
        .map(|((base, op), (sum, count))| (base, op, count, sum / count))
        .collect();
    means.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    means
}

/// The `p` quantile of `sorted` (nearest rank, rounded down).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((p * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[i]
}

/// `d` in milliseconds, two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Prints what the probe saw, and how many of the signatures slower than `limit`
/// overlap one of its commits slower than `limit`: a stall every client of that
/// database saw.
pub fn stalls(
    latencies: &[(Instant, Duration, Duration)],
    commits: &Commits,
    limit: Duration,
    every: Duration,
) {
    if every.is_zero() {
        return;
    }
    println!();
    println!(
        "durable-commit probe: one row per commit, on connections of its own, every {} ms \
         during the measured signatures",
        every.as_millis()
    );
    for (database, commits) in [
        ("MariaDB", &commits.mariadb),
        ("PostgreSQL", &commits.postgres),
    ] {
        let mut took: Vec<Duration> = commits.iter().map(|c| c.took).collect();
        took.sort_unstable();
        let Some(max) = took.last() else {
            println!("  {database:<11} no commits");
            continue;
        };
        println!(
            "  {database:<11} {:>6} commits   p50 {}   p99 {}   max {}   {} over {} ms",
            took.len(),
            ms(percentile(&took, 0.50)),
            ms(percentile(&took, 0.99)),
            ms(*max),
            took.iter().filter(|t| **t > limit).count(),
            limit.as_millis()
        );
    }
    let stalled = |sent: Instant, took: Duration| {
        let overlaps = |c: &Commit| c.stalled_within(limit, sent, sent + took);
        commits.mariadb.iter().any(overlaps) || commits.postgres.iter().any(overlaps)
    };
    let slow: Vec<_> = latencies.iter().filter(|l| l.1 > limit).collect();
    let during_stall = slow.iter().filter(|l| stalled(l.0, l.1)).count();
    println!(
        "  signatures over {} ms to the owner: {}; {} of them overlap a probe commit over {} ms",
        limit.as_millis(),
        slow.len(),
        during_stall,
        limit.as_millis()
    );
    let mut clear: Vec<Duration> = latencies
        .iter()
        .filter(|l| !stalled(l.0, l.1))
        .map(|l| l.1)
        .collect();
    clear.sort_unstable();
    if !clear.is_empty() {
        println!(
            "  owner p99 of the {} signatures that overlap no probe stall: {} \
             (the target counts them all)",
            clear.len(),
            ms(percentile(&clear, 0.99))
        );
    }
}
