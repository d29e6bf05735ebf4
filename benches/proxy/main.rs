//! Proxy throughput and added latency: the sidecar (in-process, built by
//! `Sidecar::build` with no characters database: a pass-through) against a minimal `tokio::io::copy_bidirectional` relay, in plain
//! and `wotlk-crypt` link modes, over 1, 100 and 2,000 sessions.
//!
//! Run with `cargo bench --bench proxy` (about two minutes; one minute without
//! MariaDB). Everything runs in this process, on three tokio runtimes standing for
//! the three processes of a deployment (each hop crosses threads, as it crosses
//! processes there):
//!
//! - `tc9-gateway` (1 worker; `TC9_BENCH_GATEWAY_THREADS`): scripted gateway sessions;
//! - `tc9-proxy` (1 worker; `TC9_BENCH_PROXY_THREADS`): the sidecar or the relay;
//! - `tc9-world` (1 worker; `TC9_BENCH_WORLD_THREADS`): a scripted echoing
//!   worldserver.
//!
//! Every session starts like a real one: the worldserver sends `SMSG_AUTH_CHALLENGE`,
//! the gateway `CMSG_AUTH_SESSION` (account `BENCH<i>`), the worldserver
//! `SMSG_AUTH_RESPONSE`; in `wotlk-crypt` mode both ends encrypt every later header
//! with the account's session key (ARC4-drop1024), and the sidecar, which finds the
//! key in a temporary MariaDB database, decrypts each header on both legs and seals
//! it again for the next (the bytes it came as, while no frame was added or dropped). The relay and a direct connection carry the same bytes opaquely.
//!
//! Traffic: each gateway request is a client frame with a 16..200-byte body (97 %),
//! 200..1,024 (2 %) or 1..4 KiB (1 %); the worldserver answers each with a server
//! frame of the same body size, or of 4..40 KiB (3 %; above 32 KiB with the 3-byte
//! large header).
//!
//! Per (link, session count), the direct connection, the relay and the sidecar are
//! connected side by side (each with its own worldserver) and measured in
//! interleaved slices (0.5 s each, after 0.15 s of warm-up, the order rotating every
//! round), so that noise from the rest of the machine falls on all of them alike:
//!
//! 1. latency: every session sends requests at a steady rate (see `TC9_BENCH_RATE`),
//!    each stamped with its send time; the
//!    worldserver stamps its answers. One-way latency per packet, both directions,
//!    through the proxy and through nothing (the direct connection); added latency
//!    is the proxy's percentile minus the direct one's.
//! 2. throughput (proxies only): every session keeps a window of requests in flight
//!    (2,000 in total, 2..64 per session); packets and bytes delivered per second,
//!    both directions, headers included; and the CPU time of the proxy runtime's
//!    threads per packet, whose inverse is the proxy's capacity per CPU second (the
//!    fairer ratio when the load generator, not the proxy, is the bottleneck).
//!
//! Then (`instructions.rs`) instructions and system calls per forwarded frame, the
//! sidecar process against a relay process, counted by callgrind and perf.
//!
//! Environment:
//!
//! - `TC9_BENCH_PHASES`: `timing` (throughput and latency, above), `instructions`, or
//!   both (the default; a smoke run under `cargo test --benches` runs timing only).
//! - `TC9_BENCH_SECS`: measured seconds per target and phase (default 2.5, in 0.5 s
//!   slices); the default run takes about two minutes.
//! - `TC9_BENCH_SESSIONS`: session counts (default `1,100,2000`).
//! - `TC9_BENCH_RATE`: requests per second per session in the latency phase
//!   (default 20), within 1,000 and `TC9_BENCH_MAX_RATE` (default 10,000) in total:
//!   at 2,000 sessions 5 per second each, 20,000 packets per second through the
//!   proxy, which this 2-CPU machine's gateway and worldserver scripts sustain
//!   without queueing of their own.
//! - `TC9_BENCH_TARGETS`: a subset of `direct,relay,sidecar`, for profiling.
//! - `TC9_BENCH_METRICS=0`: the sidecar without the Prometheus recorder (deployed
//!   sidecars have it; it is also how crypt mode proves that every key was found).
//! - `TC9_BENCH_PROXY_THREADS`, `TC9_BENCH_GATEWAY_THREADS`, `TC9_BENCH_WORLD_THREADS`.
//! - `TC9_BENCH_PIN=1`: the proxy runtime's threads on the last CPU, the gateway's and
//!   worldserver's on the first, so the proxy (relay or sidecar) has a core of its
//!   own, as it would in a deployment, instead of sharing both with the load.
//!
//! Descriptors: a session takes 2 (direct) or 4 (through a proxy) in this process.
//! When the three targets of a session count do not fit `RLIMIT_NOFILE` together
//! (2,000 sessions need 20,000), each proxy is measured in a batch of its own with a
//! direct baseline of its own (two `direct` rows; the relay and sidecar throughput
//! are then measured one batch after the other, not interleaved); counts that do
//! not fit even so are capped, with a note (raise the limit with `ulimit -n`). Without MariaDB the crypt rows print
//! "skipped".

mod counts;
mod ends;
mod fleet;
mod instructions;
mod proxies;
mod report;
mod settings;
mod wire;

use ends::*;
use fleet::*;
use proxies::*;
use report::*;
use settings::*;
use wire::*;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::BytesMut;
use mysql_async::prelude::*;
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::messages::{CmsgAuthSession, Message, SmsgAuthChallenge};
use tc9_codec::sample::SampleRng;
use tc9_codec::wire::Bytes;
use tc9_codec::{Frame, FrameCodec, HeaderCipher, Opcode, Origin};
use tc9_sidecar::config::{Config, LinkMode};
use tc9_sidecar::Sidecar;
use tc9_testkit::MariaDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;

/// Bytes of the timing head every request and answer body starts with.
const HEAD: usize = 16;
/// Opcode of the requests (`CMSG_MESSAGECHAT`): nothing the sidecar intercepts.
const REQUEST_OPCODE: u32 = 0x095;
/// Opcode of small answers (`SMSG_MESSAGECHAT`).
const ANSWER_OPCODE: u16 = 0x096;
/// Opcode of large answers (`SMSG_COMPRESSED_UPDATE_OBJECT`).
const LARGE_ANSWER_OPCODE: u16 = 0x1F6;
/// Largest body either side sends.
const MAX_BODY: usize = 40 * 1024;
/// Filler for bodies.
static FILLER: [u8; MAX_BODY] = [0x5A; MAX_BODY];
/// `SMSG_AUTH_RESPONSE` with `AUTH_OK`.
const AUTH_OK_BODY: [u8; 11] = [0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Requests in flight over all sessions in the throughput phase.
const WINDOW_TOTAL: usize = 2000;
/// Sessions connecting (and handshaking) at the same time.
const CONNECT_CONCURRENCY: usize = 128;
/// How long any setup or teardown step may take.
const STEP: Duration = Duration::from_secs(60);

/// Request kinds, echoed in answers.
const PACED: u8 = 0;
const SATURATING: u8 = 1;

/// A latency sample: when the packet arrived, and how long it took (ns).
type Sample = (u64, u32);

fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, listen, upstream] = args.as_slice() {
        if mode == "relay" {
            return instructions::relay_main(listen, upstream);
        }
    }
    // The sidecar's warnings (failed key lookups and the like) go to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut settings = Settings::from_env();
    let limit = fd_limit();
    if let Some(limit) = limit {
        // A proxy and its direct baseline: 4 + 2 descriptors per session.
        let max = limit.saturating_sub(512) / 6;
        if settings.sessions.iter().any(|&n| n > max) {
            println!(
                "note: RLIMIT_NOFILE is {limit}: session counts capped at {max} (6 descriptors per session for a proxy and its direct baseline; raise with `ulimit -n`)"
            );
            for n in &mut settings.sessions {
                *n = (*n).min(max);
            }
        }
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (first, last) = (cores.first().copied(), cores.last().copied());
    let pinned = settings.pin && cores.len() > 1;
    let runtime = |name: &str, threads: usize, core: Option<core_affinity::CoreId>| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .on_thread_start(move || {
                if let (true, Some(core)) = (pinned, core) {
                    core_affinity::set_for_current(core);
                }
            })
            .enable_all()
            .build()
    };
    let proxy_rt = runtime("tc9-proxy", settings.proxy_threads, last)?;
    let gateway_rt = runtime("tc9-gateway", settings.gateway_threads, first)?;
    let world_rt = runtime("tc9-world", settings.world_threads, first)?;
    let metrics = if settings.metrics {
        Some(tc9_sidecar::admin::install_recorder("bench", 1).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let max_sessions = settings.sessions.iter().copied().max().unwrap_or(1);
    let database = match gateway_rt.block_on(crypt_database(max_sessions)) {
        Ok(db) => Some(db),
        Err(e) => {
            println!("wotlk-crypt: skipped ({e:#})");
            None
        }
    };
    println!(
        "proxy bench: {} CPUs, load average {} at start; worker threads: proxy {}, gateway {}, worldserver {}; \
         per target and phase {} slices of {:.2} s (each after {:.2} s warm-up), targets interleaved; \
         latency phase {} req/s per session ({} to {} in total); throughput phase {} requests in flight in total; \
         sidecar metrics {}; RLIMIT_NOFILE {}{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        settings.proxy_threads,
        settings.gateway_threads,
        settings.world_threads,
        settings.slices(),
        settings.slice.as_secs_f64(),
        settings.warm.as_secs_f64(),
        settings.rate,
        settings.min_total_rate,
        settings.max_total_rate,
        WINDOW_TOTAL,
        if settings.metrics { "on" } else { "off" },
        limit.map_or("?".to_owned(), |l| l.to_string()),
        match (pinned, first, last) {
            (true, Some(first), Some(last)) => format!(
                "; pinned: proxy on CPU {}, gateway and worldserver on CPU {}",
                last.id, first.id
            ),
            _ => String::new(),
        },
    );
    let bench = Bench {
        proxy_rt: &proxy_rt,
        gateway_rt: &gateway_rt,
        world_rt: &world_rt,
        settings: &settings,
        auth_db_url: database.as_ref().map(MariaDb::url).unwrap_or_default(),
        metrics,
    };
    let links: Vec<Link> = if database.is_some() {
        vec![Link::Plain, Link::Crypt]
    } else {
        vec![Link::Plain]
    };
    let started = Instant::now();
    if settings.phases.contains(&"timing") {
        timing(&bench, &links, limit, max_sessions)?;
    }
    if settings.phases.contains(&"instructions") {
        instructions::run(&bench, &links)?;
    }
    println!();
    println!(
        "total {:.0} s; load average {} at the end",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    drop(database);
    Ok(())
}

/// The throughput and latency phases: every link and session count, the rows and the
/// targets printed.
fn timing(
    bench: &Bench<'_>,
    links: &[Link],
    limit: Option<usize>,
    max_sessions: usize,
) -> Result<()> {
    let settings = bench.settings;
    let mut rows = Vec::new();
    for &link in links {
        for &n in &settings.sessions {
            let step = Instant::now();
            // All at once when the descriptors allow (2 + 4 + 4 per session), else
            // each proxy with a direct baseline of its own (2 + 4).
            let all = &settings.targets;
            let direct = all.contains(&Target::Direct);
            let batches: Vec<Vec<Target>> = if limit.is_none_or(|l| 10 * n + 512 <= l) {
                vec![all.clone()]
            } else {
                all.iter()
                    .filter(|&&t| t != Target::Direct)
                    .map(|&t| {
                        let mut batch = vec![t];
                        if direct {
                            batch.insert(0, Target::Direct);
                        }
                        batch
                    })
                    .collect()
            };
            for (batch, targets) in batches.iter().enumerate() {
                for (target, outcome) in bench.measure(link, n, targets)? {
                    rows.push(Row {
                        link,
                        n,
                        batch,
                        target,
                        outcome,
                    });
                }
            }
            eprintln!(
                "  {} {n} sessions measured in {:.1} s",
                link.name(),
                step.elapsed().as_secs_f64()
            );
        }
    }
    rows.sort_by_key(|r| (r.link == Link::Crypt, r.n, r.batch, r.target as u8));

    println!();
    println!(
        "== proxy throughput (both directions, headers included) and one-way latency per packet"
    );
    println!("   x relay: sidecar / relay; cpu/pkt: CPU time of the proxy runtime's threads per delivered packet;");
    println!("   cpu: that CPU time per wall second; second x relay: capacity per CPU second (relay cpu/pkt / sidecar cpu/pkt);");
    println!("   p99 mid: median over the latency slices of each slice's p99 (robust to one slice hit by a machine-wide stall);");
    println!("   +p50/+p99/+p99 mid: that figure through the proxy minus through its (interleaved) direct connection, us");
    println!();
    print_rows(&rows);
    println!();
    println!("   latency phase: one-way samples, and the CPU each runtime's threads used per wall second");
    print_latency_load(&rows, settings);
    if links.len() == 1 {
        println!("{:<11} skipped (MariaDB unreachable)", Link::Crypt.name());
    }
    println!();
    println!("== targets");
    for &link in links {
        for &n in &settings.sessions {
            let (Some(relay), Some(sidecar)) = (
                find(&rows, link, n, Target::Relay),
                find(&rows, link, n, Target::Sidecar),
            ) else {
                continue;
            };
            if let (Some(s), Some(r)) = (sidecar.packets_per_sec(), relay.packets_per_sec()) {
                let capacity = match (relay.cpu_per_packet_ns(), sidecar.cpu_per_packet_ns()) {
                    (Some(r), Some(s)) => format!("; capacity per CPU second {:.2}x relay", r / s),
                    _ => String::new(),
                };
                println!(
                    "{:<11} {:>5} sessions: throughput {:.2}x relay (target >= 1.00x): {}{capacity}",
                    link.name(),
                    n,
                    s / r,
                    if s / r >= 1.0 { "met" } else { "NOT met" }
                );
            }
            if n == max_sessions {
                let p99 = |target: Target| {
                    let row = rows
                        .iter()
                        .find(|r| r.link == link && r.n == n && r.target == target)?;
                    Some((
                        added(&rows, row, |o| percentile(&o.latency, 0.99))?,
                        added(&rows, row, Outcome::p99_slice_median)?,
                    ))
                };
                if let (Some((pooled, mid)), Some((relay_pooled, relay_mid))) =
                    (p99(Target::Sidecar), p99(Target::Relay))
                {
                    println!(
                        "{:<11} {:>5} sessions: p99 added latency {pooled:+.1} us pooled, {mid:+.1} us slice median (relay: {relay_pooled:+.1} / {relay_mid:+.1}; target: no worse than the relay): {}",
                        link.name(),
                        n,
                        match (pooled <= relay_pooled, mid <= relay_mid) {
                            (true, true) => "met",
                            (false, true) => "met on the slice median only",
                            _ => "NOT met",
                        }
                    );
                }
            }
        }
    }
    Ok(())
}
