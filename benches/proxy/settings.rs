//! Settings from the environment, and the links and targets measured.

use super::*;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Measured time per target and phase, spread over slices.
    pub(crate) measure: Duration,
    /// One measured slice.
    pub(crate) slice: Duration,
    /// Unmeasured time before each slice.
    pub(crate) warm: Duration,
    pub(crate) sessions: Vec<usize>,
    pub(crate) rate: f64,
    pub(crate) min_total_rate: f64,
    pub(crate) max_total_rate: f64,
    pub(crate) proxy_threads: usize,
    pub(crate) gateway_threads: usize,
    pub(crate) world_threads: usize,
    pub(crate) metrics: bool,
    /// Proxy threads on the last CPU, gateway and worldserver threads on the first
    /// (`TC9_BENCH_PIN=1`): the proxy on a core of its own, as in a deployment.
    pub(crate) pin: bool,
    /// The targets measured (all three unless `TC9_BENCH_TARGETS` narrows them).
    pub(crate) targets: Vec<Target>,
    /// `timing` (throughput and latency) and `instructions` (callgrind counts), as
    /// `TC9_BENCH_PHASES` lists them; both by default, timing only in a smoke run.
    pub(crate) phases: Vec<&'static str>,
}

impl Settings {
    pub(crate) fn from_env() -> Settings {
        // `cargo test --benches` runs this binary without `--bench`: a smoke run.
        let quick = !std::env::args().any(|a| a == "--bench");
        let secs: f64 = env_or("TC9_BENCH_SECS", if quick { 0.3 } else { 2.5 });
        let sessions = std::env::var("TC9_BENCH_SESSIONS")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_else(|| {
                if quick {
                    vec![1, 10]
                } else {
                    vec![1, 100, 2000]
                }
            });
        Settings {
            measure: Duration::from_secs_f64(secs),
            slice: Duration::from_millis(if quick { 100 } else { 500 }),
            warm: Duration::from_millis(if quick { 50 } else { 150 }),
            sessions,
            rate: env_or("TC9_BENCH_RATE", 20.0),
            min_total_rate: 1000.0,
            max_total_rate: env_or("TC9_BENCH_MAX_RATE", 10_000.0),
            proxy_threads: env_or("TC9_BENCH_PROXY_THREADS", 1),
            gateway_threads: env_or("TC9_BENCH_GATEWAY_THREADS", 1),
            world_threads: env_or("TC9_BENCH_WORLD_THREADS", 1),
            metrics: env_or("TC9_BENCH_METRICS", 1) != 0,
            pin: env_or("TC9_BENCH_PIN", 0) != 0,
            targets: [Target::Direct, Target::Relay, Target::Sidecar]
                .into_iter()
                .filter(|t| {
                    std::env::var("TC9_BENCH_TARGETS")
                        .map_or(true, |v| v.split(',').any(|name| name.trim() == t.name()))
                })
                .collect(),
            phases: ["timing", "instructions"]
                .into_iter()
                .filter(|phase| match std::env::var("TC9_BENCH_PHASES") {
                    Ok(v) => v.split(',').any(|name| name.trim() == *phase),
                    Err(_) => !quick || *phase == "timing",
                })
                .collect(),
        }
    }

    /// Requests per second each of `n` sessions sends in the latency phase.
    pub(crate) fn rate_per_session(&self, n: usize) -> f64 {
        let n = n as f64;
        self.rate
            .min(self.max_total_rate / n)
            .max(self.min_total_rate / n)
    }

    /// Measured slices per target and phase.
    pub(crate) fn slices(&self) -> usize {
        (self.measure.as_secs_f64() / self.slice.as_secs_f64())
            .ceil()
            .max(1.0) as usize
    }

    /// Requests each of `n` sessions keeps in flight in the throughput phase.
    pub(crate) fn window(n: usize) -> usize {
        (WINDOW_TOTAL / n).clamp(2, 64)
    }
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits`.
pub(crate) fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
