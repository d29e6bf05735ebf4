//! Load: 2,000 concurrent sessions through one sidecar, each with a steady packet mix
//! both ways, some of them with charter operations, for a bounded time.
//!
//! The sidecar runs the charter resolver over in-process tables (`MemoryStore`,
//! `MemoryBus`), so signs and charter queries are resolved without databases. A
//! scripted worldserver echoes every data frame back as a server frame (bodies of
//! 4 KiB and more use the 5-byte large header) and answers logins; the gateways
//! check that every byte comes back intact and in order, and that every charter
//! operation is answered as the rules say.
//!
//! `TC9_LOAD_SECS` sets how long the steady phase lasts (default 10 s); the figures
//! (packets/s, MB/s, latency, RSS) are printed at the end. The process holds about
//! 8,000 descriptors (four per session): the test checks the open-files limit in
//! `/proc/self/limits` and names the `ulimit -n` it needs when it is too low.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tc9_codec::sample::SampleRng;

use anyhow::{bail, ensure, Context, Result};
use tc9_codec::messages::petition::{sign_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{
    CmsgPetitionQuery, CmsgPetitionSign, CmsgPlayerLogin, SmsgLoginVerifyWorld,
    SmsgPetitionQueryResponse, SmsgPetitionSignResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Message, Opcode, Origin};
use tc9_sidecar::backends::memory::{
    MemoryRealm, MemoryStore, SeedCharacter, SeedPetition, World as Seed,
};
use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;
use tc9_testkit::{read_frame, status_kib};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, Semaphore};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

mod traffic;
use traffic::*;

/// Concurrent sessions.
const SESSIONS: usize = 2000;
/// Every this many sessions, one also does charter operations.
const CHARTER_EVERY: usize = 10;
/// Signers per charter (a guild charter takes 9; fewer keeps re-signs answered).
const SIGNERS_PER_CHARTER: usize = 8;
/// Frames a session may have in flight before it waits for their echoes.
const WINDOW: usize = 4;
/// Mean pause between two sends of one session.
const MEAN_GAP: Duration = Duration::from_millis(400);
/// Sessions opened at once while ramping up.
const RAMP_BATCH: usize = 100;
/// How long any single step may take.
const STEP: Duration = Duration::from_secs(20);
/// The steady phase when `TC9_LOAD_SECS` is not set.
const DEFAULT_SECS: u64 = 10;
/// Largest RSS growth accepted over the run.
const RSS_GROWTH_LIMIT_KIB: u64 = 512 << 10;
/// Guid of session `i`'s character.
const CHARACTER_BASE: u32 = 10_000;
/// Low guid of charter `k`'s item (owned by character `k + 1`, never online).
const CHARTER_BASE: u32 = 100_000;
/// The data opcodes: echoed by the worldserver, never intercepted by the sidecar.
const DATA_UP: Opcode = Opcode::CMSG_GUILD_ROSTER;
const DATA_DOWN: Opcode = Opcode::SMSG_GUILD_ROSTER;

/// A session's read side: a small fixed buffer, and one allocation per frame, so
/// that the test's own sockets keep no large buffers and the RSS figures show the
/// sidecar.
type Reader = BufReader<OwnedReadHalf>;

/// Read buffer of the test's own sockets.
const READ_BUFFER: usize = 4096;

/// `(soft, hard)` limit on open files of this process, from `/proc/self/limits`.
fn open_files_limit() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    Some((numbers.next()?, numbers.next()?))
}

fn load_secs() -> u64 {
    std::env::var("TC9_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(DEFAULT_SECS)
}

/// Totals over every session.
#[derive(Default)]
struct Totals {
    frames_up: AtomicU64,
    bytes_up: AtomicU64,
    frames_down: AtomicU64,
    bytes_down: AtomicU64,
    signs: AtomicU64,
    /// Sessions that signed at least once.
    signers: AtomicU64,
    queries: AtomicU64,
    /// Longest echo round trip, in microseconds.
    slowest_us: AtomicU64,
    /// Echo round trips by power of two of microseconds.
    latency: [AtomicU64; 32],
    /// Frames of intercepted opcodes the worldserver received (must stay 0).
    leaked_to_world: AtomicU64,
}

impl Totals {
    fn record_latency(&self, took: Duration) {
        let us = took.as_micros().max(1) as u64;
        self.slowest_us.fetch_max(us, Ordering::Relaxed);
        let bucket = (63 - us.leading_zeros() as usize).min(31);
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The upper bound, in milliseconds, under which `share` of the echoes came back.
    fn latency_ms(&self, share: f64) -> f64 {
        let counts: Vec<u64> = self
            .latency
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen as f64 >= share * total as f64 {
                return (1u64 << (bucket + 1)) as f64 / 1000.0;
            }
        }
        f64::NAN
    }
}

// ---------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_sessions_steady_mix() -> Result<()> {
    let secs = load_secs();
    timeout(Duration::from_secs(secs + 120), steady_mix(secs))
        .await
        .context("the load test took too long")?
}

async fn steady_mix(secs: u64) -> Result<()> {
    // Each session holds four descriptors in this process: gateway, the sidecar's
    // two sockets, and the worldserver's.
    let needed = (SESSIONS * 4 + 256) as u64;
    let (soft, hard) = open_files_limit().context("no open-files limit in /proc/self/limits")?;
    ensure!(
        soft >= needed,
        "the open-files limit is {soft} (hard {hard}); {SESSIONS} sessions need {needed}: \
         raise it (ulimit -n {needed}) before running this test"
    );

    // The realm: every session's character, and one charter per eight signers, each
    // owned by a character who is never online.
    let charters = SESSIONS.div_ceil(CHARTER_EVERY * SIGNERS_PER_CHARTER);
    let mut seed = Seed::default();
    for k in 0..charters as u32 {
        seed.character.push(SeedCharacter {
            guid: k + 1,
            account: k + 1,
            name: format!("Owner{k}"),
            race: 1,
            class: 1,
            level: 80,
            guild: None,
        });
        seed.petition.push(SeedPetition {
            guid: CHARTER_BASE + k,
            id: None,
            owner: k + 1,
            name: format!("Load {}", CHARTER_BASE + k),
            kind: GUILD_CHARTER_TYPE,
        });
    }
    for i in 0..SESSIONS {
        let guid = CHARACTER_BASE + i as u32;
        seed.character.push(SeedCharacter {
            guid,
            account: guid,
            name: format!("Load{i}"),
            race: 1,
            class: 1,
            level: 80,
            guild: None,
        });
    }
    let store = MemoryStore::from_world(&seed);
    let realm = MemoryRealm::new();

    let totals = Arc::new(Totals::default());
    let world = TcpListener::bind("127.0.0.1:0").await?;
    let world_addr = world.local_addr()?;
    let world_task = tokio::spawn(echo_world(world, Arc::clone(&totals)));

    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        upstream: world_addr.to_string(),
        sidecar_id: "load".to_owned(),
        // Data frames up to 40 KiB travel both ways.
        max_client_frame: 0xFFFF,
        shutdown_grace_secs: 1,
        worldserver_module: true,
        ..Config::default()
    };
    config.validate()?;
    let sidecar = Sidecar::in_memory(&config, &store, &realm).await?;
    let addr = sidecar.addr();

    let rss_before = status_kib("VmRSS:");
    let fds_before = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());

    // Ramp up in batches; every session is logged in before the steady phase.
    let start = Arc::new(Barrier::new(SESSIONS + 1));
    let until: Arc<Mutex<Option<Instant>>> = Arc::default();
    let ramp = Instant::now();
    let mut tasks = Vec::with_capacity(SESSIONS);
    for batch in (0..SESSIONS).collect::<Vec<_>>().chunks(RAMP_BATCH) {
        let logins: Vec<_> = batch
            .iter()
            .map(|&i| {
                tokio::spawn(async move {
                    let session = Session::new(i);
                    let (reader, writer) = timeout(STEP, log_in(addr, &session))
                        .await
                        .context("login timed out")??;
                    anyhow::Ok((session, reader, writer))
                })
            })
            .collect();
        for (n, login) in logins.into_iter().enumerate() {
            let (session, reader, writer) = login
                .await
                .context("a login panicked")?
                .with_context(|| format!("session {} could not log in", batch[n]))?;
            let index = session.index;
            let task = tokio::spawn(run_session(
                session,
                reader,
                writer,
                Arc::clone(&start),
                Arc::clone(&until),
                Arc::clone(&totals),
            ));
            tasks.push((index, task));
        }
    }
    let ramp = ramp.elapsed();
    let fds_open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());

    // The steady phase.
    let steady = Instant::now();
    *until.lock().unwrap() = Some(steady + Duration::from_secs(secs));
    start.wait().await;
    let sampling = CancellationToken::new();
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !sampling.is_cancelled() {
                peak = status_kib("VmRSS:").max(peak);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = sampling.cancelled() => {}
                }
            }
            peak
        })
    };
    let mut lost = Vec::new();
    for (index, task) in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => lost.push(format!("session {index}: {e:#}")),
            Err(e) => lost.push(format!("session {index}: panicked: {e}")),
        }
    }
    let elapsed = steady.elapsed();
    sampling.cancel();
    let rss_peak = sampler.await.context("the RSS sampler panicked")?;
    let rss_after = status_kib("VmRSS:");
    let rss_hwm = status_kib("VmHWM:");

    let up = totals.frames_up.load(Ordering::Relaxed);
    let down = totals.frames_down.load(Ordering::Relaxed);
    let bytes_up = totals.bytes_up.load(Ordering::Relaxed);
    let bytes_down = totals.bytes_down.load(Ordering::Relaxed);
    let signs = totals.signs.load(Ordering::Relaxed);
    let queries = totals.queries.load(Ordering::Relaxed);
    let seconds = elapsed.as_secs_f64();
    eprintln!(
        "load: {SESSIONS} sessions (ramp-up {ramp:.2?}, {fds_before} -> {fds_open} fds), \
         steady phase {secs} s, all closed after {elapsed:.2?}"
    );
    eprintln!(
        "load: {up} frames up + {down} echoed = {:.0} packets/s; {:.1} MB up + {:.1} MB down = \
         {:.2} MB/s; {signs} signs + {queries} charter queries answered; echo round trip p50 < {} ms, \
         p99 < {} ms, slowest {:.1} ms",
        (up + down) as f64 / seconds,
        bytes_up as f64 / 1e6,
        bytes_down as f64 / 1e6,
        (bytes_up + bytes_down) as f64 / 1e6 / seconds,
        totals.latency_ms(0.5),
        totals.latency_ms(0.99),
        totals.slowest_us.load(Ordering::Relaxed) as f64 / 1000.0,
    );
    eprintln!(
        "load: RSS {} MiB before, {} MiB peak seen, {} MiB after (high-water mark {} MiB)",
        rss_before >> 10,
        rss_peak >> 10,
        rss_after >> 10,
        rss_hwm >> 10
    );

    ensure!(
        lost.is_empty(),
        "{} of {SESSIONS} sessions failed; first: {}",
        lost.len(),
        lost.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    );
    ensure!(up == down, "{up} frames sent, {down} echoed");
    ensure!(bytes_up > 0 && signs > 0 && queries > 0, "no traffic");
    ensure!(
        totals.leaked_to_world.load(Ordering::Relaxed) == 0,
        "resolved charter operations reached the worldserver"
    );
    // Every signer that signed left exactly one row, eight per charter at most.
    let mut rows = 0;
    for k in 0..charters as u32 {
        let signatures = store.signatures_now(CHARTER_BASE + k);
        ensure!(signatures.len() <= SIGNERS_PER_CHARTER, "{signatures:?}");
        rows += signatures.len();
    }
    let signers = totals.signers.load(Ordering::Relaxed) as usize;
    ensure!(
        rows == signers,
        "{rows} signature rows for {signers} signing sessions"
    );
    let growth = rss_peak.max(rss_after).saturating_sub(rss_before);
    ensure!(
        growth < RSS_GROWTH_LIMIT_KIB,
        "RSS grew by {} MiB",
        growth >> 10
    );

    timeout(STEP, sidecar.stop())
        .await
        .context("the sidecar did not stop")??;
    world_task.abort();
    Ok(())
}
