//! Fault injection: the sidecar under broken databases, broken peers and hostile
//! input. Everything runs in-process on 127.0.0.1 with ephemeral ports.
//!
//! The shared MariaDB and PostgreSQL servers are never stopped: a test that cuts a
//! database puts a relay of its own (`tc9_testkit::Relay`) between the sidecar and the server and breaks
//! the relay instead (every relayed connection dropped, new ones refused, or every
//! byte held back: a blackhole), then restores it.
//!
//! - `mariadb_cut_mid_session_fails_open`: charter signs fail open (the original
//!   packet reaches the worldserver within `resolve_timeout_ms`) while MariaDB is
//!   blackholed or refused, sessions stay open, new sessions pass traffic, and
//!   signs are resolved again once the relay is back, without a restart.
//! - `postgres_cut_and_back_loses_no_event`: offers and sign results for characters
//!   behind a sidecar whose bus is cut still reach them (notices live in the
//!   characters database), exactly once; cross-server offers fail open while the
//!   offerer's bus is down. Signatures under every outage: `tests/notices.rs`.
//! - `worldserver_killed_mid_stream`: a worldserver connection dropped inside a large
//!   frame (FIN or RST, in its body or its header) closes its gateway connection
//!   promptly, after the bytes that did come (a FIN) or at once (a reset); other
//!   sessions go on.
//! - `gateway_garbage`: seeded random bytes and malformed charter packets pass through
//!   byte for byte (framed while possible, then opaque), a header announcing 65 KiB
//!   followed by a close arrives as sent; nothing crashes or stalls.
//! - `slow_gateway_that_never_reads`: a flooding worldserver is stopped by bounded
//!   buffering; other sessions keep full service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tc9_charter::CharterHandler;
use tc9_codec::messages::petition::sign_result;
use tc9_codec::messages::{
    CmsgGuildQuery, CmsgOfferPetition, CmsgPetitionQuery, CmsgPetitionShowSignatures,
    CmsgPetitionSign, MsgPetitionDeclineClient, SmsgPetitionShowSignatures,
    SmsgPetitionSignResults,
};
use tc9_codec::sample::SampleRng;
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Opcode};
use tc9_sidecar::backends::memory::{MemoryBus, MemoryStore};
use tc9_sidecar::config::Config;
use tc9_testkit::db::wait_located;
use tc9_testkit::frames::{ensure_same_stream, expect_frame, read_to_close, write_chunked, Ending};
use tc9_testkit::{
    client, client_frame, eventually, server, server_frame, start_sidecar, start_sidecar_with,
    status_kib, test_config, within, Cut, Gateway, MariaDb, PgDb, Relay, World, MARIADB_ADDR,
    POSTGRES_ADDR, SILENCE, STEP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

mod garbage;
mod mariadb_cut;
mod never_reads;
mod postgres_cut;
mod worldserver_cut;

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(30);
/// How soon a close must show at the other end.
const PROMPT: Duration = Duration::from_secs(3);
/// The sidecars' `resolve_timeout_ms`.
const RESOLVE_TIMEOUT: Duration = Duration::from_millis(500);
/// What a fail-open may take beyond [`RESOLVE_TIMEOUT`] on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1000);

fn sign(petition: u32) -> Frame {
    client_frame(&CmsgPetitionSign {
        petition: Guid::item(petition),
        unk: 1,
    })
}

fn offer(petition: u32, target: u32) -> Frame {
    client_frame(&CmsgOfferPetition {
        unk: 0,
        petition: Guid::item(petition),
        target: Guid::player(target),
    })
}

/// A configuration every test starts from.
fn base_config(id: &str, upstream: SocketAddr) -> Config {
    Config {
        resolve_timeout_ms: RESOLVE_TIMEOUT.as_millis() as u64,
        ..test_config(id, upstream)
    }
}

/// A charter sidecar over MariaDB at `config.characters_db_url` and, if given, the
/// bus at `bus_url`.
async fn charter_sidecar(config: Config, bus_url: Option<&str>) -> Result<tc9_sidecar::Sidecar> {
    start_sidecar(Config {
        bus_url: bus_url.unwrap_or_default().to_owned(),
        ..config
    })
    .await
}

/// Reads until the connection ends, for at most `limit`; the bytes read before.
async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    limit: Duration,
    what: &str,
) -> Result<Vec<u8>> {
    Ok(read_to_close(r, limit, what).await?.0)
}

/// Connects a raw gateway to the sidecar and accepts the sidecar's worldserver
/// connection.
async fn open(sidecar: SocketAddr, ws: &TcpListener) -> Result<(TcpStream, TcpStream)> {
    let gateway = timeout(STEP, TcpStream::connect(sidecar))
        .await
        .context("gateway connect timed out")??;
    let (upstream, _) = timeout(STEP, ws.accept())
        .await
        .context("the sidecar never connected upstream")??;
    gateway.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    Ok((gateway, upstream))
}

/// One raw round trip over an open session: a client frame to the worldserver and a
/// server frame back, both checked byte for byte.
async fn raw_round(gw: &mut TcpStream, up: &mut TcpStream, n: usize, size: usize) -> Result<()> {
    let mut rng = SampleRng::new(n as u64 + 17);
    let up_frame = client(Opcode::CMSG_GUILD_ROSTER, &rng.bytes(size.min(10_000)));
    let down_frame = server(Opcode::SMSG_GUILD_ROSTER, &rng.bytes(size));
    timeout(STEP, gw.write_all(up_frame.as_bytes())).await??;
    expect_frame(up, &up_frame, &format!("round {n}: to the worldserver")).await?;
    timeout(STEP, up.write_all(down_frame.as_bytes())).await??;
    expect_frame(gw, &down_frame, &format!("round {n}: to the gateway")).await?;
    Ok(())
}

/// A healthy session that keeps doing rounds until `stop`, failing on any lost,
/// changed or slow frame; returns how many rounds it did.
fn healthy_session(
    mut gw: TcpStream,
    mut up: TcpStream,
    stop: Arc<AtomicBool>,
    max_round_trip: Duration,
) -> JoinHandle<Result<usize>> {
    tokio::spawn(async move {
        let mut n = 0;
        let mut slowest = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            let size = if n % 10 == 9 { 40_000 } else { 10 + n % 190 };
            let started = Instant::now();
            raw_round(&mut gw, &mut up, n, size).await?;
            let took = started.elapsed();
            slowest = slowest.max(took);
            ensure!(
                took <= max_round_trip,
                "round {n} of a healthy session took {took:?}"
            );
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("healthy session: {n} rounds, slowest {slowest:?}");
        ensure!(n > 0, "the healthy session did no round");
        Ok(n)
    })
}
