//! End-to-end charter sign latency across two sidecars, with the real MariaDB and
//! PostgreSQL the tests use (`mysql://root@127.0.0.1:3306`,
//! `postgres://postgres@127.0.0.1:5432`).
//!
//! One realm: a temporary MariaDB database loaded with AzerothCore's tables, a
//! temporary PostgreSQL database as the realm bus, two scripted worldservers and two
//! in-process sidecars built as the binary builds them (`Sidecar::build`), with the
//! production defaults (`bus_poll_ms` 1000: delivery is woken by NOTIFY).
//!
//! `TC9_CHARTER_SIGNS` owners (default 300) play behind sidecar A, each owning a
//! fresh guild charter; one signer plays behind sidecar B and signs the charters one
//! after another (`TC9_CHARTER_GAP_MS` apart, default 110: the sidecar holds a
//! session to AzerothCore's 10 signs per second and closes it above), after 10 unmeasured
//! warm-up signatures, each, as a client signs, from the signature list the owner's
//! offer showed it (`TC9_CHARTER_OFFER=0`: straight away, the charter then looked up
//! by its item). Measured per signature, from the signer's `CMSG_PETITION_SIGN`
//! write:
//!
//! - to the owner's `SMSG_PETITION_SIGN_RESULTS` arriving through A (B's MySQL
//!   transaction, which claims the owner's notice for A once B's lookup found the
//!   owner there; B's NOTIFY carrying the notice; A's write, without a claim: the
//!   `notice_claim_one` line below counts the notices A had to claim);
//! - to the signer's own `SMSG_PETITION_SIGN_RESULTS` arriving through B.
//!
//! Prints p50/p95/p99/max, and of the owner's copy after the signer's (what the
//! bus adds), against the target p99 < 5 ms (issue 15), and when the five
//! slowest were sent (a periodic cause shows in the offsets). Beside the signatures,
//! a probe ([`probe`]) makes bare durable commits on connections of its own, and the
//! bench counts the slow signatures that overlap a stall of the database itself.
//! Without MariaDB or PostgreSQL it prints why it skipped and exits 0.
//!
//! Run with `cargo bench --bench charter_latency` (about 40 seconds).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use mysql_async::prelude::*;
use tc9_charter::Directory;
use tc9_codec::messages::petition::{sign_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{CmsgOfferPetition, CmsgPetitionSign, SmsgPetitionSignResults};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Message, Opcode, Origin};
use tc9_sidecar::config::Config;
use tc9_testkit::db::CHARACTER_COLUMNS;
use tc9_testkit::{start_sidecar, test_config, Gateway, MariaDb, PgDb, World};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::timeout;

mod probe;
mod report;

use probe::{Commits, Probe};
use report::{ms, operation_means, percentile};

/// The target: 99 % of owners hear of a signature within this.
const TARGET_P99: Duration = Duration::from_millis(5);
/// How long any single step may take.
const STEP: Duration = Duration::from_secs(10);
/// Unmeasured signatures before the measured ones.
const WARM_UP: usize = 10;
/// The signer's character (and account).
const SIGNER: u32 = 5;
/// Owner `i`'s character (and account) is `OWNER_BASE + i`.
const OWNER_BASE: u32 = 1000;
/// Owner `i`'s charter item (and petition id) is `CHARTER_BASE + i`.
const CHARTER_BASE: u32 = 20_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------
// The measurement
// ---------------------------------------------------------------------------------

/// Whether both databases answer; why not otherwise.
async fn reachable() -> Result<()> {
    tc9_testkit::db::mariadb_reachable().await?;
    tc9_testkit::db::postgres_reachable().await
}

/// The measured signatures, (sent, owner hears, signer hears), and what the probe
/// saw meanwhile.
struct Run {
    latencies: Vec<(Instant, Duration, Duration)>,
    commits: Commits,
}

/// Runs the bench: the measured signatures, with the probe (unless `probe_every` is
/// zero) committing beside them.
async fn measure(signs: usize, gap: Duration, probe_every: Duration, offer: bool) -> Result<Run> {
    let mysql = MariaDb::create("bench_charter").await?;
    let pg = PgDb::create("bench_charter").await?;
    let total = WARM_UP + signs;

    mysql.character(SIGNER, SIGNER, "Signer", 1).await?;
    let mut conn = mysql.pool.get_conn().await?;
    for chunk in (0..total as u32).collect::<Vec<_>>().chunks(500) {
        let characters: Vec<String> = chunk
            .iter()
            .map(|i| {
                let guid = OWNER_BASE + i;
                format!("({guid}, {guid}, 'Owner{i}', 1, 1, 0, 80, 1, '', 0)")
            })
            .collect();
        conn.query_drop(format!(
            "INSERT INTO characters {CHARACTER_COLUMNS} VALUES {}",
            characters.join(",")
        ))
        .await?;
        let petitions: Vec<String> = chunk
            .iter()
            .map(|i| {
                let charter = CHARTER_BASE + i;
                format!(
                    "({}, {charter}, {charter}, 'Bench {i}', {GUILD_CHARTER_TYPE})",
                    OWNER_BASE + i
                )
            })
            .collect();
        conn.query_drop(format!(
            "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) VALUES {}",
            petitions.join(",")
        ))
        .await?;
    }
    drop(conn);

    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let sidecar = |id: &str, world: &World| {
        start_sidecar(Config {
            characters_db_url: mysql.url(),
            bus_url: pg.url(),
            ..test_config(id, world.addr)
        })
    };
    let a = sidecar("A", &world_a).await?;
    let b = sidecar("B", &world_b).await?;
    let bus = a.bus().context("sidecar A has a bus")?;

    // Owners behind A; each reader reports the sign results it receives.
    let (heard, mut hearing) = mpsc::unbounded_channel::<(u32, Instant, SmsgPetitionSignResults)>();
    let mut readers = Vec::new();
    let mut owner_writers = Vec::new();
    for i in 0..total as u32 {
        let gateway = Gateway::logged_in(a.addr(), &format!("owner {i}"), OWNER_BASE + i)
            .await
            .with_context(|| format!("owner {i} logging in through A"))?;
        let (mut reader, writer) = gateway.into_parts();
        owner_writers.push(writer);
        let heard = heard.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = reader.next().await {
                let at = Instant::now();
                if frame.opcode() == Opcode::SMSG_PETITION_SIGN_RESULTS {
                    if let Ok(result) = SmsgPetitionSignResults::decode(frame.body()) {
                        let _ = heard.send((result.petition.low(), at, result));
                    }
                }
            }
        }));
    }
    drop(heard);
    let mut signer = Gateway::logged_in(b.addr(), "signer", SIGNER)
        .await
        .context("the signer logging in through B")?;
    // Everyone is online on the bus before the first signature.
    let deadline = Instant::now() + STEP;
    for i in 0..total as u32 {
        while bus.locate(OWNER_BASE + i).await?.as_deref() != Some("A") {
            ensure!(
                Instant::now() < deadline,
                "owner {i} never showed on the bus"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while bus.locate(SIGNER).await?.as_deref() != Some("B") {
        ensure!(
            Instant::now() < deadline,
            "the signer never showed on the bus"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let probe = if probe_every.is_zero() {
        None
    } else {
        Some(Probe::start(&mysql, &pg, probe_every).await?)
    };
    let mut early: HashMap<u32, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(signs);
    for i in 0..total as u32 {
        let charter = CHARTER_BASE + i;
        let sign = CmsgPetitionSign {
            petition: Guid::item(charter),
            unk: 1,
        };
        if offer {
            // As a client signs: from the list the owner's offer showed it.
            let offered = CmsgOfferPetition {
                unk: 0,
                petition: Guid::item(charter),
                target: Guid::player(SIGNER),
            };
            let frame = Frame::from_message(Origin::Client, &offered)?;
            owner_writers[i as usize]
                .write_all(frame.as_bytes())
                .await?;
            loop {
                let frame = signer.recv(STEP).await?.context("the offer's list")?;
                if frame.opcode() == Opcode::SMSG_PETITION_SHOW_SIGNATURES {
                    break;
                }
            }
        }
        let frame = Frame::from_message(Origin::Client, &sign)?;
        let sent = Instant::now();
        signer.send_frame(&frame).await?;
        // The signer's own answer.
        let signer_heard = loop {
            let frame = signer
                .recv(STEP)
                .await?
                .context("the signer's sign result")?;
            if frame.opcode() == Opcode::SMSG_PETITION_SIGN_RESULTS {
                let at = Instant::now();
                let result = SmsgPetitionSignResults::decode(frame.body())?;
                ensure!(
                    result.petition == Guid::item(charter) && result.result == sign_result::OK,
                    "signature {i}: the signer got {result:?}"
                );
                break at;
            }
        };
        // The owner's copy, through the bus and A.
        let owner_heard = match early.remove(&charter) {
            Some(at) => at,
            None => loop {
                let (petition, at, result) = timeout(STEP, hearing.recv())
                    .await
                    .with_context(|| format!("signature {i}: the owner never heard"))?
                    .context("every owner reader ended")?;
                ensure!(
                    result.signer == Guid::player(SIGNER) && result.result == sign_result::OK,
                    "signature {i}: the owner got {result:?}"
                );
                if petition == charter {
                    break at;
                }
                early.insert(petition, at);
            },
        };
        if i as usize >= WARM_UP {
            latencies.push((sent, owner_heard - sent, signer_heard - sent));
        }
        tokio::time::sleep(gap).await;
    }

    let commits = match probe {
        Some(probe) => probe.stop().await?,
        None => Commits::default(),
    };
    let rows: Option<u64> = mysql
        .pool
        .get_conn()
        .await?
        .query_first("SELECT COUNT(*) FROM petition_sign")
        .await?;
    ensure!(
        rows == Some(total as u64),
        "petition_sign holds {rows:?} rows, {total} expected"
    );

    drop(signer);
    drop(owner_writers);
    for reader in readers {
        reader.abort();
    }
    a.stop().await?;
    b.stop().await?;
    drop(mysql);
    drop(pg);
    Ok(Run { latencies, commits })
}

fn main() -> Result<()> {
    // `cargo test --benches` runs this binary without `--bench`: a smoke run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let signs: usize = env_or("TC9_CHARTER_SIGNS", if quick { 20 } else { 300 }).max(1);
    let gap = Duration::from_millis(env_or("TC9_CHARTER_GAP_MS", 110));
    let probe_every = Duration::from_millis(env_or("TC9_CHARTER_PROBE_MS", 20));
    let offer = env_or("TC9_CHARTER_OFFER", 1u8) != 0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Err(e) = runtime.block_on(reachable()) {
        println!("charter_latency: skipped ({e:#})");
        return Ok(());
    }
    // As deployed (`metrics` set); its histograms break the time down below.
    let metrics = tc9_sidecar::admin::install_recorder("bench", 1).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let Run { latencies, commits } = runtime.block_on(async {
        timeout(
            Duration::from_secs(300),
            measure(signs, gap, probe_every, offer),
        )
        .await
        .context("the run took longer than 5 minutes")?
    })?;
    let mut owner: Vec<Duration> = latencies.iter().map(|l| l.1).collect();
    let mut signer: Vec<Duration> = latencies.iter().map(|l| l.2).collect();
    // What the bus adds: the owner's copy after the signer's own answer.
    let mut after: Vec<Duration> = latencies.iter().map(|l| l.1.saturating_sub(l.2)).collect();
    owner.sort_unstable();
    signer.sort_unstable();
    after.sort_unstable();

    println!(
        "charter sign latency: {} signatures on fresh charters (after {WARM_UP} warm-up), {} ms apart, {}; \
         owner behind sidecar A, signer behind sidecar B; MariaDB + PostgreSQL on 127.0.0.1; {} CPUs",
        owner.len(),
        gap.as_millis(),
        if offer {
            "each from the list the owner's offer showed (TC9_CHARTER_OFFER=0: without)"
        } else {
            "without a list shown first (the charter looked up by item)"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!(
        "{:<52} {:>10} {:>10} {:>10} {:>10}",
        "from the signer's CMSG_PETITION_SIGN write", "p50", "p95", "p99", "max"
    );
    for (what, sorted) in [
        ("to the owner's SMSG_PETITION_SIGN_RESULTS (via A)", &owner),
        (
            "to the signer's SMSG_PETITION_SIGN_RESULTS (via B)",
            &signer,
        ),
        ("the owner's after the signer's (the bus's share)", &after),
    ] {
        println!(
            "{:<52} {:>10} {:>10} {:>10} {:>10}",
            what,
            ms(percentile(sorted, 0.50)),
            ms(percentile(sorted, 0.95)),
            ms(percentile(sorted, 0.99)),
            ms(*sorted.last().expect("at least one signature")),
        );
    }
    let p99 = percentile(&owner, 0.99);
    println!();
    println!(
        "target: owner p99 < {} ms: {} (p99 {})",
        TARGET_P99.as_millis(),
        if p99 < TARGET_P99 { "met" } else { "NOT met" },
        ms(p99)
    );
    // When the slowest happened: a period (a poll, a heartbeat) shows in the offsets.
    let first = latencies
        .first()
        .map(|l| l.0)
        .expect("at least one signature");
    let mut slowest: Vec<_> = latencies.iter().collect();
    slowest.sort_by_key(|l| std::cmp::Reverse(l.1));
    println!();
    println!("slowest signatures (offset from the first measured one):");
    for (sent, owner, signer) in slowest.into_iter().take(5) {
        println!(
            "  +{:>8.3} s: owner {}, signer {}",
            (*sent - first).as_secs_f64(),
            ms(*owner),
            ms(*signer)
        );
    }
    report::stalls(&latencies, &commits, TARGET_P99, probe_every);
    println!();
    println!("where the time goes: mean per call over the whole run (both sidecars, warm-up and logins included)");
    for (histogram, op, calls, mean) in operation_means(&metrics.render()) {
        let histogram = histogram.trim_start_matches("tc9_sidecar_");
        println!(
            "  {:<40} {:>7.0} calls {:>9.3} ms",
            format!("{histogram} {op}"),
            calls,
            mean * 1000.0
        );
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
