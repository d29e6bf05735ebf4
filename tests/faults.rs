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
    status_kib, test_config, Cut, Gateway, MariaDb, PgDb, Relay, World, MARIADB_ADDR,
    POSTGRES_ADDR, SILENCE, STEP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

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

// ---------------------------------------------------------------------------------
// 1. MariaDB cut in the middle of a session
// ---------------------------------------------------------------------------------

/// A sign the sidecar resolves: `SMSG_PETITION_SIGN_RESULTS` OK for `guid`, nothing
/// to the worldserver.
async fn expect_sign_resolved(
    gateway: &mut Gateway,
    world: &World,
    petition: u32,
    guid: u32,
) -> Result<()> {
    let before = world.count(Opcode::CMSG_PETITION_SIGN);
    gateway.send_frame(&sign(petition)).await?;
    let result = gateway
        .expect::<SmsgPetitionSignResults>("the sign is resolved")
        .await?;
    ensure!(
        result
            == SmsgPetitionSignResults {
                petition: Guid::item(petition),
                signer: Guid::player(guid),
                result: sign_result::OK,
            },
        "{}: {result:?}",
        gateway.who
    );
    let stray = gateway.fence().await?;
    ensure!(stray.is_empty(), "{}: also got {stray:?}", gateway.who);
    ensure!(
        world.count(Opcode::CMSG_PETITION_SIGN) == before,
        "{}: a resolved sign reached the worldserver",
        gateway.who
    );
    Ok(())
}

/// A sign that fails open: the worldserver gets the original within the resolve
/// timeout, the gateway is answered nothing, the session goes on.
async fn expect_sign_failed_open(
    gateway: &mut Gateway,
    world: &World,
    petition: u32,
) -> Result<Duration> {
    let took = world
        .expect_forwarded(gateway, &sign(petition), RESOLVE_TIMEOUT + SLACK)
        .await?;
    gateway
        .expect_silence(SILENCE, "a failed-open sign is not answered")
        .await?;
    Ok(took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cut_mid_session_fails_open() -> Result<()> {
    timeout(WHOLE_TEST, mariadb_cut())
        .await
        .context("the test took too long")?
}

async fn mariadb_cut() -> Result<()> {
    const CHARTER: u32 = 500;
    let db = MariaDb::create("fault_mysql").await?;
    for (guid, name) in [
        (1, "Owner"),
        (2, "Second"),
        (3, "Third"),
        (4, "Fourth"),
        (5, "Fifth"),
    ] {
        db.character(guid, guid, name, 1).await?;
    }
    db.petition(1, CHARTER, CHARTER, "Relayed").await?;
    let relay = Relay::start(MARIADB_ADDR).await?;
    let world = World::start().await?;
    // prefer_socket=false: else mysql_async moves to MariaDB's Unix socket and
    // around the relay.
    let config = Config {
        characters_db_url: format!(
            "mysql://root@{}/{}?prefer_socket=false",
            relay.addr, db.name
        ),
        ..base_config("F1", world.addr)
    };
    let sidecar = charter_sidecar(config, None).await?;

    let mut second = Gateway::logged_in(sidecar.addr(), "second 2", 2).await?;
    let mut third = Gateway::logged_in(sidecar.addr(), "third 3", 3).await?;
    expect_sign_resolved(&mut third, &world, CHARTER, 3).await?;
    ensure!(relay.accepted() > 0, "the sidecar bypassed the relay");

    // -- Blackhole: the database stops answering in the middle of the sessions.
    relay.cut(Cut::Blackhole).await?;
    let took = expect_sign_failed_open(&mut second, &world, CHARTER).await?;
    eprintln!("blackholed MariaDB: sign failed open after {took:?}");
    ensure!(
        took >= RESOLVE_TIMEOUT - Duration::from_millis(50),
        "failed open after {took:?}, before the resolve timeout: the database cannot have answered"
    );
    second.echo(b"the session stays open").await?;
    // A session opened during the outage passes traffic, and fails open too.
    let mut fourth = Gateway::logged_in(sidecar.addr(), "fourth 4 (during the outage)", 4).await?;
    fourth.echo(&[4; 3000]).await?;
    expect_sign_failed_open(&mut fourth, &world, CHARTER).await?;
    fourth.echo(b"still open").await?;
    third.echo(b"an older session too").await?;
    ensure!(
        db.signers(CHARTER).await? == [3],
        "no signature was written during the outage"
    );

    // -- Restored: resolved again, by the same pools, without a restart.
    relay.restore();
    expect_sign_resolved(&mut second, &world, CHARTER, 2).await?;
    expect_sign_resolved(&mut fourth, &world, CHARTER, 4).await?;

    // -- Refused: connections reset, new ones refused; failing open is quick.
    relay.cut(Cut::Refuse).await?;
    let mut fifth = Gateway::logged_in(sidecar.addr(), "fifth 5 (during the outage)", 5).await?;
    let took = expect_sign_failed_open(&mut fifth, &world, CHARTER).await?;
    eprintln!("refused MariaDB: sign failed open after {took:?}");
    fifth.echo(b"open").await?;
    second.echo(b"open").await?;
    relay.restore();
    expect_sign_resolved(&mut fifth, &world, CHARTER, 5).await?;

    ensure!(
        db.signers(CHARTER).await? == [2, 3, 4, 5],
        "one row per resolved sign"
    );
    ensure!(
        world.count(Opcode::CMSG_PETITION_SIGN) == 3,
        "exactly the three failed-open signs reached the worldserver"
    );
    ensure!(sidecar.is_running(), "the sidecar\'s server task ended");
    drop((second, third, fourth, fifth));
    sidecar.stop().await
}

// ---------------------------------------------------------------------------------
// 2. PostgreSQL cut and back
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_and_back_loses_no_event() -> Result<()> {
    timeout(WHOLE_TEST, postgres_cut())
        .await
        .context("the test took too long")?
}

async fn postgres_cut() -> Result<()> {
    // 500 of 1 (on A), 501 of 4 (on B), 502 of 2 (on B).
    const ALPHA: u32 = 500;
    const BETA: u32 = 501;
    const GAMMA: u32 = 502;
    let db = MariaDb::create("fault_pg").await?;
    for (guid, name) in [
        (1, "OwnerA"),
        (2, "TargetB"),
        (3, "SignerA"),
        (4, "OwnerB"),
        (5, "TargetA"),
    ] {
        db.character(guid, guid, name, 1).await?;
    }
    db.petition(1, ALPHA, ALPHA, "Alpha").await?;
    db.petition(4, BETA, BETA, "Beta").await?;
    db.petition(2, GAMMA, GAMMA, "Gamma").await?;
    let pg = PgDb::create("fault_pg").await?;
    let observer = pg.client().await?;
    let relay_a = Relay::start(POSTGRES_ADDR).await?;
    let relay_b = Relay::start(POSTGRES_ADDR).await?;
    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let sidecar = |id: &str, world: &World, relay: &Relay| {
        let config = Config {
            characters_db_url: db.url(),
            presence_expiry_secs: 30,
            bus_poll_ms: 150,
            ..base_config(id, world.addr)
        };
        let bus_url = format!("postgres://postgres@{}/{}", relay.addr, pg.name);
        async move { charter_sidecar(config, Some(&bus_url)).await }
    };
    let a = sidecar("A", &world_a, &relay_a).await?;
    let b = sidecar("B", &world_b, &relay_b).await?;
    let mut g1 = Gateway::logged_in(a.addr(), "owner 1 @A", 1).await?;
    let mut g3 = Gateway::logged_in(a.addr(), "signer 3 @A", 3).await?;
    let mut g5 = Gateway::logged_in(a.addr(), "target 5 @A", 5).await?;
    let mut g2 = Gateway::logged_in(b.addr(), "target 2 @B", 2).await?;
    let mut g4 = Gateway::logged_in(b.addr(), "owner 4 @B", 4).await?;
    for (guid, at) in [(1, "A"), (3, "A"), (5, "A"), (2, "B"), (4, "B")] {
        wait_located(&observer, guid, at).await?;
    }
    let shown_alpha = server_frame(&SmsgPetitionShowSignatures {
        petition: Guid::item(ALPHA),
        owner: Guid::player(1),
        petition_id: ALPHA,
        signatures: Vec::new(),
    });

    // Before any cut: an offer crosses through the bus.
    g1.send_frame(&offer(ALPHA, 2)).await?;
    let first = g2.recv(STEP).await?.context("the first offer")?;
    ensure!(first.as_bytes() == shown_alpha.as_bytes(), "{first:?}");
    eventually("the first offer marked delivered", STEP, || async {
        Ok((db.notices().await? == [(2, true)]).then_some(()))
    })
    .await?;

    // -- B's bus is cut: its pool and its LISTEN connection are reset, and stay down.
    relay_b.cut(Cut::Refuse).await?;
    // A's bus is up: A sends two offers to 2 and a sign result to 4, both on B.
    for _ in 0..2 {
        g1.send_frame(&offer(ALPHA, 2)).await?;
    }
    ensure!(
        g1.fence().await?.is_empty(),
        "the offerer is answered nothing"
    );
    g3.send_frame(&sign(BETA)).await?;
    let signed = g3.expect::<SmsgPetitionSignResults>("3 signs 501").await?;
    ensure!(signed.result == sign_result::OK, "{signed:?}");
    ensure!(g3.fence().await?.is_empty());
    // Notices live in the characters database: B delivers them with its bus cut.
    for n in 1..=2 {
        let frame = g2
            .recv(STEP)
            .await?
            .with_context(|| format!("offer {n} with B's bus cut"))?;
        ensure!(frame.as_bytes() == shown_alpha.as_bytes(), "{frame:?}");
    }
    let told = g4
        .expect::<SmsgPetitionSignResults>("the owner hears of the signature")
        .await?;
    ensure!(told == signed, "{told:?}");
    // B cannot locate 5: its cross-server offer fails open, unchanged.
    let took = world_b
        .expect_forwarded(&mut g2, &offer(GAMMA, 5), RESOLVE_TIMEOUT + SLACK)
        .await?;
    eprintln!("B's offer with its bus refused failed open after {took:?}");

    // -- A's bus goes into a blackhole too: A's cross-server offer fails open after
    // the resolve timeout.
    relay_a.cut(Cut::Blackhole).await?;
    let took = world_a
        .expect_forwarded(&mut g1, &offer(ALPHA, 2), RESOLVE_TIMEOUT + SLACK)
        .await?;
    eprintln!("A's offer with its bus blackholed failed open after {took:?}");
    g1.echo(b"A's sessions pass traffic").await?;
    g5.echo(b"A's sessions pass traffic").await?;
    g4.echo(b"B's sessions pass traffic").await?;

    // -- Both come back: nothing is delivered twice, nor the offer that failed open.
    relay_a.restore();
    relay_b.restore();
    let extra = g2.drain(Duration::from_secs(1)).await?;
    ensure!(extra.is_empty(), "delivered again: {extra:?}");
    let extra = g4.drain(SILENCE).await?;
    ensure!(extra.is_empty(), "delivered again: {extra:?}");
    ensure!(db.notices().await? == [(2, true), (2, true), (2, true), (4, true)]);

    // -- Both buses work again, both ways.
    g2.send_frame(&offer(GAMMA, 5)).await?;
    let shown = g5
        .expect::<SmsgPetitionShowSignatures>("B's offer reaches 5 on A")
        .await?;
    ensure!(shown.petition == Guid::item(GAMMA), "{shown:?}");
    g1.send_frame(&offer(ALPHA, 2)).await?;
    let again = g2.recv(STEP).await?.context("an offer after the restore")?;
    ensure!(again.as_bytes() == shown_alpha.as_bytes(), "{again:?}");
    ensure!(g2.drain(SILENCE).await?.is_empty());
    ensure!(g5.drain(SILENCE).await?.is_empty());
    eventually("every notice delivered", STEP, || async {
        let notices = db.notices().await?;
        Ok((notices.len() == 6 && notices.iter().all(|(_, delivered)| *delivered)).then_some(()))
    })
    .await?;
    ensure!(
        world_a.count(Opcode::CMSG_OFFER_PETITION) == 1
            && world_b.count(Opcode::CMSG_OFFER_PETITION) == 1,
        "exactly the two failed-open offers reached a worldserver"
    );
    ensure!(world_a.count(Opcode::CMSG_PETITION_SIGN) == 0);
    ensure!(a.is_running(), "the sidecar\'s server task ended");
    ensure!(b.is_running(), "the sidecar\'s server task ended");
    drop((g1, g2, g3, g4, g5));
    a.stop().await?;
    b.stop().await
}

// ---------------------------------------------------------------------------------
// 3. The worldserver drops a connection inside a large frame
// ---------------------------------------------------------------------------------

/// How a worldserver connection ends mid-frame.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// FIN after part of a large frame's body.
    FinMidBody,
    /// RST after part of a large frame's body.
    ResetMidBody,
    /// FIN after 3 of a large header's 5 bytes.
    FinMidHeader,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worldserver_killed_mid_stream() -> Result<()> {
    timeout(WHOLE_TEST, killed_mid_stream())
        .await
        .context("the test took too long")?
}

async fn killed_mid_stream() -> Result<()> {
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let sidecar = start_sidecar(base_config("F3", ws.local_addr()?)).await?;

    // A healthy session streams throughout.
    let (gw, up) = open(sidecar.addr(), &ws).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_session(gw, up, Arc::clone(&stop), Duration::from_secs(2));

    let mut rng = SampleRng::new(0xDEAD);
    for kill in [Kill::FinMidBody, Kill::ResetMidBody, Kill::FinMidHeader] {
        let (mut gw, mut up) = open(sidecar.addr(), &ws).await?;
        raw_round(&mut gw, &mut up, 1, 100).await?;
        // Complete frames first, a large one among them: they reach the gateway.
        let complete = [
            server(Opcode::SMSG_GUILD_ROSTER, &rng.bytes(300)),
            server(Opcode::SMSG_GUILD_BANK_LIST, &rng.bytes(100_000)),
        ];
        for frame in &complete {
            up.write_all(frame.as_bytes()).await?;
        }
        for frame in &complete {
            expect_frame(&mut gw, frame, &format!("{kill:?}: a complete frame")).await?;
        }
        // Then part of a 200 KB frame, and the connection goes.
        let doomed = server(Opcode::SMSG_GUILD_BANK_LIST, &rng.bytes(200_000));
        assert_eq!(doomed.header().len(), 5);
        let part = match kill {
            Kill::FinMidHeader => &doomed.as_bytes()[..3],
            _ => &doomed.as_bytes()[..5 + 70_000],
        };
        up.write_all(part).await?;
        up.flush().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Kill::ResetMidBody = kill {
            up.set_zero_linger()?;
        }
        let killed = Instant::now();
        drop(up);
        let (rest, ending) =
            read_to_close(&mut gw, PROMPT, &format!("{kill:?}: the gateway")).await?;
        eprintln!(
            "{kill:?}: gateway connection closed ({ending:?}) {:?} after the worldserver's, \
             {} bytes of the unfinished frame forwarded",
            killed.elapsed(),
            rest.len()
        );
        match kill {
            // What the worldserver did send reaches the gateway, then its close.
            Kill::FinMidBody | Kill::FinMidHeader => {
                ensure_same_stream(&format!("{kill:?}: the unfinished frame"), &rest, part)?;
                ensure!(ending == Ending::Eof, "{kill:?}: closed with {ending:?}");
            }
            // A reset may discard what was in flight, never invent bytes.
            Kill::ResetMidBody => ensure!(
                part.starts_with(&rest),
                "{kill:?}: the gateway got {} bytes that are no prefix of the {} sent",
                rest.len(),
                part.len()
            ),
        }
        // The dead session takes no more traffic, but writing to it is harmless.
        let _ = gw
            .write_all(client(Opcode::CMSG_PING, &[0; 8]).as_bytes())
            .await;
    }

    // New sessions work, and the healthy one never faltered.
    let (mut gw, mut up) = open(sidecar.addr(), &ws).await?;
    for n in 0..5 {
        raw_round(&mut gw, &mut up, n, 50_000).await?;
    }
    stop.store(true, Ordering::Relaxed);
    healthy.await.context("the healthy session panicked")??;
    ensure!(sidecar.is_running(), "the sidecar\'s server task ended");
    drop((gw, up));
    sidecar.stop().await
}

// ---------------------------------------------------------------------------------
// 4. A gateway sending garbage
// ---------------------------------------------------------------------------------

/// Client opcodes the sidecar decodes (the session ones, the charter's, the ping), to
/// feed it malformed bodies.
fn decoded() -> Vec<Opcode> {
    [Opcode::CMSG_PLAYER_LOGIN, Opcode::CMSG_AUTH_SESSION]
        .into_iter()
        .chain(tc9_charter::cmd::CLIENT_OPCODES.iter().copied())
        .chain([Opcode::CMSG_PING])
        .collect()
}

/// Seeded garbage a gateway sends.
fn garbage(seed: u64) -> Vec<u8> {
    let mut rng = SampleRng::new(seed);
    match seed % 2 {
        // Pure random bytes.
        0 => rng.bytes(256 * 1024),
        // Frames of decoded opcodes with random (mostly malformed) bodies, then
        // random bytes.
        _ => {
            let mut out = Vec::new();
            let decoded = decoded();
            for _ in 0..2000 {
                let opcode = decoded[rng.index(decoded.len())];
                let len = rng.index(40);
                out.extend_from_slice(client(opcode, &rng.bytes(len)).as_bytes());
            }
            // A few well-formed charter packets for charters nobody has.
            out.extend_from_slice(sign(rng.next_u64() as u32).as_bytes());
            out.extend_from_slice(
                client_frame(&CmsgPetitionQuery {
                    petition_id: 7,
                    petition: Guid::item(7),
                })
                .as_bytes(),
            );
            out.extend_from_slice(
                client_frame(&CmsgPetitionShowSignatures {
                    petition: Guid::item(8),
                })
                .as_bytes(),
            );
            out.extend_from_slice(
                client_frame(&MsgPetitionDeclineClient {
                    petition: Guid::item(9),
                })
                .as_bytes(),
            );
            out.extend_from_slice(client_frame(&CmsgGuildQuery { guild_id: 3 }).as_bytes());
            out.extend_from_slice(offer(10, 11).as_bytes());
            out.extend(rng.bytes(64 * 1024));
            out
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_garbage() -> Result<()> {
    timeout(WHOLE_TEST, gateway_garbage_flow())
        .await
        .context("the test took too long")?
}

async fn gateway_garbage_flow() -> Result<()> {
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let ws_addr = ws.local_addr()?;
    // The charter resolver (over empty in-memory tables: every charter packet is
    // unknown, so everything must pass as it came) with the worldserver's limits.
    let handler = CharterHandler::new(
        MemoryStore::default(),
        None::<MemoryBus>,
        base_config("F4", ws_addr).charter_settings(),
    );
    let sidecar = start_sidecar_with(base_config("F4", ws_addr), handler).await?;
    // A pass-through sidecar accepting any client size: a 65 KiB header is a frame.
    let roomy = start_sidecar(Config {
        max_client_frame: 0xFFFF,
        ..base_config("F4-roomy", ws_addr)
    })
    .await?;

    let (gw, up) = open(sidecar.addr(), &ws).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_session(gw, up, Arc::clone(&stop), Duration::from_secs(2));

    // -- Garbage from four gateways at once; each stream reaches the worldserver
    // exactly as sent, and the other direction keeps working.
    let mut sessions = Vec::new();
    for seed in 1..=4u64 {
        let (gw, up) = open(sidecar.addr(), &ws).await?;
        sessions.push(tokio::spawn(async move {
            let sent = garbage(seed);
            let (mut gw_read, mut gw_write) = gw.into_split();
            let (mut up_read, mut up_write) = up.into_split();
            let writer = async {
                write_chunked(&mut gw_write, &sent, seed, 20_000).await?;
                gw_write.shutdown().await?;
                anyhow::Ok(())
            };
            let reader = async {
                let mut got = Vec::new();
                timeout(STEP, up_read.read_to_end(&mut got))
                    .await
                    .context("the worldserver never saw the end of the garbage")??;
                anyhow::Ok(got)
            };
            let (written, got) = tokio::join!(writer, reader);
            written?;
            let got = got?;
            ensure_same_stream(&format!("garbage {seed}"), &got, &sent)?;
            eprintln!(
                "garbage {seed}: {} bytes reached the worldserver as sent",
                got.len()
            );
            let reply = server(Opcode::SMSG_GUILD_ROSTER, &[seed as u8; 5000]);
            up_write.write_all(reply.as_bytes()).await?;
            expect_frame(&mut gw_read, &reply, "a reply after the garbage").await?;
            drop(up_write);
            let rest = read_until_closed(&mut gw_read, PROMPT, "the garbage gateway").await?;
            ensure!(
                rest.is_empty(),
                "garbage {seed}: {} stray bytes",
                rest.len()
            );
            anyhow::Ok(())
        }));
    }
    for (n, session) in sessions.into_iter().enumerate() {
        session
            .await
            .with_context(|| format!("garbage session {n} panicked"))??;
    }

    // -- A header announcing a 65 KiB frame, a little body, then the gateway closes.
    let mut announce = vec![0xFF, 0xFF];
    announce.extend_from_slice(&Opcode::CMSG_GUILD_ROSTER.0.to_le_bytes());
    announce.extend(SampleRng::new(65).bytes(1000));
    // Over the worldserver's limit: opaque bytes, then the close.
    let (mut gw, mut up) = open(sidecar.addr(), &ws).await?;
    gw.write_all(&announce).await?;
    gw.shutdown().await?;
    let got = read_until_closed(&mut up, PROMPT, "the oversized header's upstream").await?;
    ensure_same_stream("oversized header", &got, &announce)?;
    drop((gw, up));
    // Within the limit: an unfinished frame. A close forwards what came, then the
    // close; a reset may discard bytes in flight but never invents any.
    for reset in [false, true] {
        let (mut gw, mut up) = open(roomy.addr(), &ws).await?;
        gw.write_all(&announce).await?;
        if reset {
            gw.set_zero_linger()?;
            drop(gw);
        } else {
            gw.shutdown().await?;
        }
        let (got, ending) =
            read_to_close(&mut up, PROMPT, "the unfinished frame's upstream").await?;
        if reset {
            ensure!(
                announce.starts_with(&got),
                "a reset unfinished frame: {} bytes upstream, no prefix of what was sent",
                got.len()
            );
        } else {
            ensure_same_stream("a closed unfinished frame", &got, &announce)?;
            ensure!(ending == Ending::Eof, "closed with {ending:?}");
        }
    }

    // Both sidecars still serve.
    let (mut gw, mut up) = open(sidecar.addr(), &ws).await?;
    raw_round(&mut gw, &mut up, 1, 40_000).await?;
    let (mut gw2, mut up2) = open(roomy.addr(), &ws).await?;
    raw_round(&mut gw2, &mut up2, 2, 40_000).await?;
    stop.store(true, Ordering::Relaxed);
    healthy.await.context("the healthy session panicked")??;
    ensure!(sidecar.is_running(), "the sidecar\'s server task ended");
    ensure!(roomy.is_running(), "the sidecar\'s server task ended");
    drop((gw, up, gw2, up2));
    sidecar.stop().await?;
    roomy.stop().await
}

// ---------------------------------------------------------------------------------
// 5. A gateway that never reads
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_gateway_that_never_reads() -> Result<()> {
    timeout(WHOLE_TEST, never_reads())
        .await
        .context("the test took too long")?
}

async fn never_reads() -> Result<()> {
    /// The flood stops here if nothing pushes back.
    const CAP: u64 = 512 << 20;
    /// What the sidecar's queues and the four socket buffers of the session may
    /// hold (loopback receive buffers autotune up to `tcp_rmem`'s maximum).
    const BOUND: u64 = 64 << 20;
    /// A write blocked this long counts as stalled.
    const STALL: Duration = Duration::from_secs(1);
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let sidecar = start_sidecar(base_config("F5", ws.local_addr()?)).await?;
    let (slow_gw, mut slow_up) = open(sidecar.addr(), &ws).await?;
    let (gw, up) = open(sidecar.addr(), &ws).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_session(gw, up, Arc::clone(&stop), Duration::from_secs(2));

    let rss_before = status_kib("VmRSS:");
    let flood = server(Opcode::SMSG_GUILD_BANK_LIST, &[0x5A; 60_000]);
    let started = Instant::now();
    let mut accepted = 0u64;
    let stalled = loop {
        match timeout(STALL, slow_up.write_all(flood.as_bytes())).await {
            Err(_) => break true,
            Ok(Err(e)) => bail!("the flood write failed after {accepted} bytes: {e}"),
            Ok(Ok(())) => accepted += flood.len() as u64,
        }
        if accepted >= CAP {
            break false;
        }
    };
    let rss_stalled = status_kib("VmRSS:");
    eprintln!(
        "flood: {} MiB accepted in {:?} before the worldserver's writes stalled; \
         RSS {} -> {} MiB",
        accepted >> 20,
        started.elapsed().saturating_sub(STALL),
        rss_before >> 10,
        rss_stalled >> 10
    );
    ensure!(
        stalled,
        "the sidecar buffered {CAP} bytes for a gateway that never reads"
    );
    ensure!(
        accepted < BOUND,
        "{} MiB accepted before the writes stalled",
        accepted >> 20
    );
    ensure!(
        rss_stalled.saturating_sub(rss_before) < 96 << 10,
        "RSS grew by {} MiB during the flood",
        (rss_stalled - rss_before) >> 10
    );
    // Still stalled a moment later: the buffers stay full, nothing drains them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = timeout(STALL, slow_up.write_all(flood.as_bytes())).await;
    ensure!(again.is_err(), "the flood's writes resumed: {again:?}");

    // Other sessions keep full service, old and new.
    let (mut gw, mut up) = open(sidecar.addr(), &ws).await?;
    for n in 0..20 {
        let started = Instant::now();
        raw_round(&mut gw, &mut up, n, if n % 5 == 0 { 60_000 } else { 100 }).await?;
        ensure!(
            started.elapsed() < Duration::from_secs(1),
            "round {n} took {:?} next to the stalled session",
            started.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    healthy.await.context("the healthy session panicked")??;

    // The slow gateway goes away: its worldserver connection ends promptly.
    slow_gw.set_zero_linger()?;
    drop(slow_gw);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + PROMPT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, slow_up.read(&mut buf)).await {
            Err(_) => bail!("the flooding worldserver connection outlived its gateway"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
        }
    }
    ensure!(sidecar.is_running(), "the sidecar\'s server task ended");
    drop((gw, up, slow_up));
    sidecar.stop().await
}
