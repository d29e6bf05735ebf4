//! Reading what the counting tools wrote: callgrind's instructions and `perf
//! stat`'s system calls, per kind.

use anyhow::{ensure, Context, Result};

/// System calls per forwarded frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syscalls {
    /// All of them.
    pub(crate) total: f64,
    /// `recvfrom` and `sendto`.
    pub(crate) socket: f64,
    /// `epoll_wait` and `futex`: how often a worker parked or woke another, which
    /// moves with timing from run to run.
    pub(crate) waits: f64,
}

impl Syscalls {
    /// The figures per frame of the [`PERF_EVENTS`] counts, in that list's order.
    pub(crate) fn from_events(per_event: &[f64]) -> Syscalls {
        let at = |n: usize| per_event.get(n).copied().unwrap_or(0.0);
        Syscalls {
            total: at(0),
            socket: at(1) + at(2),
            waits: at(3) + at(4),
        }
    }
}

/// What `perf stat` counts: every system call, then the socket reads and writes,
/// then the waits (a worker parking in `epoll_wait`, or waking another by `futex`).
pub(crate) const PERF_EVENTS: [&str; 5] = [
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_futex",
];

/// The counts `perf stat -x ,` wrote to `out` (`12345,,raw_syscalls:sys_enter,...`),
/// one per [`PERF_EVENTS`] entry.
pub(crate) fn read_syscalls(out: &std::path::Path) -> Result<Vec<u64>> {
    let text = std::fs::read_to_string(out)?;
    PERF_EVENTS
        .iter()
        .map(|event| {
            let line = text
                .lines()
                .find(|l| l.split(',').nth(2) == Some(event))
                .with_context(|| format!("perf wrote its count of {event}"))?;
            Ok(line.split(',').next().unwrap_or("").trim().parse()?)
        })
        .collect()
}

/// The instructions callgrind counted in `out` (or, with `--separate-threads=yes` in
/// `VALGRIND_OPTS`, summed over its per-thread files, each printed).
pub(crate) fn read_instructions(out: &std::path::Path) -> Result<u64> {
    let dir = out.parent().context("a directory")?;
    let name = out
        .file_name()
        .context("a file name")?
        .to_string_lossy()
        .into_owned();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&name))
        })
        .collect();
    files.sort();
    let mut count = 0;
    let mut read = 0;
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        // With threads separated, the file named `out` itself holds no counts.
        let Some(totals) = text
            .lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .or_else(|| text.lines().find_map(|l| l.strip_prefix("summary:")))
        else {
            continue;
        };
        read += 1;
        let instructions: u64 = totals.split_whitespace().next().context("Ir")?.parse()?;
        if files.len() > 1 {
            eprintln!("  {}: {instructions} instructions", file.display());
        }
        count += instructions;
    }
    ensure!(read > 0, "callgrind wrote no totals in {}", out.display());
    Ok(count)
}
