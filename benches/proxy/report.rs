//! Reporting: percentiles and the printed tables.

use super::*;

pub(crate) fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p * sorted.len() as f64) as usize).min(sorted.len() - 1);
    Some(f64::from(sorted[i]) / 1000.0)
}

pub(crate) fn show(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

pub(crate) struct Row {
    pub(crate) link: Link,
    pub(crate) n: usize,
    /// Targets of one batch were connected side by side and interleaved.
    pub(crate) batch: usize,
    pub(crate) target: Target,
    pub(crate) outcome: Outcome,
}

pub(crate) fn find(rows: &[Row], link: Link, n: usize, target: Target) -> Option<&Outcome> {
    rows.iter()
        .find(|r| r.link == link && r.n == n && r.target == target)
        .map(|r| &r.outcome)
}

/// `metric` of `row` minus that of its direct baseline.
pub(crate) fn added(
    rows: &[Row],
    row: &Row,
    metric: impl Fn(&Outcome) -> Option<f64>,
) -> Option<f64> {
    if row.target == Target::Direct {
        return None;
    }
    // The direct baseline interleaved with this proxy.
    let direct = rows
        .iter()
        .find(|r| {
            r.link == row.link && r.n == row.n && r.batch == row.batch && r.target == Target::Direct
        })
        .map(|r| &r.outcome)?;
    Some(metric(&row.outcome)? - metric(direct)?)
}

pub(crate) fn print_rows(rows: &[Row]) {
    println!(
        "{:<11} {:>5} {:<7} {:>10} {:>7} {:>7} {:>8} {:>5} {:>7} | {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "link",
        "sess",
        "target",
        "pkt/s",
        "MB/s",
        "x relay",
        "cpu/pkt",
        "cpu",
        "x relay",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "p99 mid",
        "+p50",
        "+p99",
        "+p99 mid"
    );
    for row in rows {
        let o = &row.outcome;
        let relay = find(rows, row.link, row.n, Target::Relay);
        let vs_relay = |mine: Option<f64>, theirs: Option<f64>| match (mine, theirs) {
            (Some(m), Some(t)) if row.target == Target::Sidecar => format!("{:.2}", m / t),
            _ => "-".to_owned(),
        };
        // Capacity per proxy CPU second: the inverse of CPU per packet.
        let capacity = |o: &Outcome| o.cpu_per_packet_ns().map(|ns| 1e9 / ns);
        println!(
            "{:<11} {:>5} {:<7} {:>10} {:>7} {:>7} {:>8} {:>5} {:>7} | {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
            row.link.name(),
            row.n,
            row.target.name(),
            show(o.packets_per_sec(), |v| format!("{v:.0}")),
            show(o.bytes_per_sec(), |v| format!("{:.1}", v / 1e6)),
            vs_relay(o.packets_per_sec(), relay.and_then(Outcome::packets_per_sec)),
            show(o.cpu_per_packet_ns(), |v| format!("{:.2}us", v / 1000.0)),
            show(o.cpu_share(), |v| format!("{:.0}%", v * 100.0)),
            vs_relay(capacity(o), relay.and_then(capacity)),
            show(percentile(&o.latency, 0.50), |v| format!("{v:.1}")),
            show(percentile(&o.latency, 0.99), |v| format!("{v:.1}")),
            show(percentile(&o.latency, 0.999), |v| format!("{v:.1}")),
            show(o.p99_slice_median(), |v| format!("{v:.1}")),
            show(added(rows, row, |o| percentile(&o.latency, 0.50)), |v| format!("{v:+.1}")),
            show(added(rows, row, |o| percentile(&o.latency, 0.99)), |v| format!("{v:+.1}")),
            show(added(rows, row, Outcome::p99_slice_median), |v| format!("{v:+.1}")),
        );
    }
}

/// The latency phase's samples and how busy each script was meanwhile.
pub(crate) fn print_latency_load(rows: &[Row], settings: &Settings) {
    println!(
        "{:<11} {:>5} {:<7} {:>9} {:>10} {:>8} {:>8} {:>12} {:>10} {:>10}",
        "link",
        "sess",
        "target",
        "samples",
        "req/s/sess",
        "c2s p99",
        "s2c p99",
        "gateway cpu",
        "proxy cpu",
        "world cpu"
    );
    for row in rows {
        let o = &row.outcome;
        let share = |k: usize| {
            show((o.latency_secs > 0.0).then_some(o.latency_secs), |secs| {
                format!("{:.0}%", o.latency_cpu_ns[k] as f64 / 1e9 / secs * 100.0)
            })
        };
        println!(
            "{:<11} {:>5} {:<7} {:>9} {:>10.1} {:>8} {:>8} {:>12} {:>10} {:>10}",
            row.link.name(),
            row.n,
            row.target.name(),
            o.latency.len(),
            settings.rate_per_session(row.n),
            show(percentile(&o.c2s, 0.99), |v| format!("{v:.1}")),
            show(percentile(&o.s2c, 0.99), |v| format!("{v:.1}")),
            share(0),
            share(1),
            share(2),
        );
    }
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}
