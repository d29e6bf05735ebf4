//! Caps: at most `max_sessions` connections (one more is closed at once and
//! counted), a time limit for a connection's first whole frame (slowloris), and
//! descriptors kept in reserve, so `/metrics`, `/health` and the databases keep
//! working when connections exhaust the process's descriptor limit.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tc9_codec::Opcode;
use tc9_sidecar::config::Config;
use tc9_testkit::{
    client, closed_at_connect, eventually, http_get, metric_sum, start_sidecar, test_config,
    within, BusRealm, Gateway, SidecarProcess, World, POSTGRES_ADDR, STEP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the sidecar closes `stream` within `limit` (EOF or reset), reading and
/// discarding whatever it sends first.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// A metric's value on `/metrics`.
async fn metric(metrics: SocketAddr, name: &str, labels: &[&str]) -> Result<f64> {
    Ok(metric_sum(
        &http_get(metrics, "/metrics").await?.1,
        name,
        labels,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cap_and_first_frame_timeout_hold() -> Result<()> {
    within(Duration::from_secs(60), "the caps test", cap_and_timeout()).await
}

async fn cap_and_timeout() -> Result<()> {
    const CAP: usize = 5;
    const FIRST_FRAME: Duration = Duration::from_millis(800);
    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        max_sessions: CAP,
        first_frame_timeout_ms: FIRST_FRAME.as_millis() as u64,
        metrics: "127.0.0.1:0".into(),
        ..test_config("caps", world.addr)
    })
    .await?;
    let metrics = sidecar.metrics_addr().context("metrics")?;

    // A slowloris connection (part of a header, then nothing) is closed after the
    // first-frame limit; a session that sent a frame lives on past it.
    let mut session = Gateway::logged_in(sidecar.addr(), "early session", 1).await?;
    let mut slow = TcpStream::connect(sidecar.addr()).await?;
    slow.write_all(&[0x00, 0x20]).await?;
    let opened = Instant::now();
    ensure!(
        closed_within(&mut slow, FIRST_FRAME + STEP).await,
        "the slowloris connection stayed open"
    );
    let took = opened.elapsed();
    eprintln!("a connection without a whole frame was closed after {took:?}");
    ensure!(
        took >= FIRST_FRAME - Duration::from_millis(100),
        "closed too early: {took:?}"
    );
    session
        .echo(b"a session past the first-frame limit")
        .await?;
    ensure!(
        metric(
            metrics,
            "tc9_sidecar_sessions_refused_total",
            &["first_frame"]
        )
        .await?
            == 1.0
    );

    // At the cap, one more connection is closed at once and counted; /metrics answers.
    let mut sessions = vec![session];
    for n in 1..CAP {
        sessions
            .push(Gateway::logged_in(sidecar.addr(), &format!("session {n}"), n as u32 + 1).await?);
    }
    let closed = match TcpStream::connect(sidecar.addr()).await {
        Ok(mut extra) => closed_within(&mut extra, Duration::from_secs(1)).await,
        // Reset so quickly that the connect itself saw it.
        Err(e) => closed_at_connect(&e),
    };
    ensure!(closed, "a connection over the cap was kept");
    ensure!(
        metric(
            metrics,
            "tc9_sidecar_sessions_refused_total",
            &["max_sessions"]
        )
        .await?
            == 1.0
    );
    ensure!(metric(metrics, "tc9_sidecar_sessions_cap", &[]).await? == CAP as f64);
    for session in &mut sessions {
        session.echo(b"sessions under the cap are served").await?;
    }
    // A slot given back is taken again.
    drop(sessions.pop());
    let mut again = eventually("a slot given back", STEP, || async {
        match Gateway::logged_in(sidecar.addr(), "after a slot came back", 9).await {
            Ok(g) => Ok(Some(g)),
            Err(_) => Ok(None),
        }
    })
    .await?;
    again.echo(b"the new session is served").await?;
    drop((sessions, again));
    sidecar.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_databases_work_at_the_descriptor_limit() -> Result<()> {
    within(
        Duration::from_secs(90),
        "the descriptor test",
        descriptors(),
    )
    .await
}

async fn descriptors() -> Result<()> {
    /// `ulimit -n` of the sidecar process, and its reserve.
    const NOFILE: u64 = 256;
    const RESERVE: u64 = 128;
    const CONNECTIONS: usize = 300;
    let realm = BusRealm::create("caps_fd").await?;
    let world = World::start().await?;
    let config = realm.config("fd", &world, POSTGRES_ADDR);
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let process = SidecarProcess::spawn_limited(
        env!("CARGO_BIN_EXE_tc9-sidecar"),
        &[
            ("upstream", config.upstream.clone()),
            ("sidecar_id", "fd".into()),
            ("worldserver_module", "true".into()),
            ("characters_db_url", config.characters_db_url.clone()),
            ("bus_url", config.bus_url.clone()),
            ("metrics", metrics_addr.to_string()),
            ("fd_reserve", RESERVE.to_string()),
        ],
        Some(NOFILE),
    )
    .await?;
    let mut bystander = Gateway::logged_in(process.addr, "bystander", 1).await?;

    // Far more connections than descriptors, each sending a whole frame.
    let ping = client(Opcode::CMSG_PING, &[1, 0, 0, 0, 0, 0, 0, 0]);
    let mut open = Vec::new();
    for _ in 0..CONNECTIONS {
        match TcpStream::connect(process.addr).await {
            Ok(mut stream) => {
                let _ = stream.write_all(ping.as_bytes()).await;
                open.push(stream);
            }
            // Closed with a reset so quickly that the connect itself saw it.
            Err(e) if closed_at_connect(&e) => {}
            Err(e) => bail!("the listener stopped accepting: {e}"),
        }
    }
    let cap = ((NOFILE - RESERVE) / 2) as f64;
    let refused = eventually("connections over the cap refused", STEP, || async {
        let refused = metric(
            metrics_addr,
            "tc9_sidecar_sessions_refused_total",
            &["max_sessions"],
        )
        .await?;
        Ok((refused >= (CONNECTIONS as f64 - cap)).then_some(refused))
    })
    .await?;
    ensure!(metric(metrics_addr, "tc9_sidecar_sessions_cap", &[]).await? == cap);
    let (status, ready) = http_get(metrics_addr, "/health/ready").await?;
    eprintln!(
        "at ulimit -n {NOFILE}: cap {cap}, {refused} of {CONNECTIONS} connections refused; \
         /health/ready {status}"
    );
    // Ready means every probe answered: upstream, characters database, bus.
    ensure!(status == 200, "not ready at the limit: {ready}");
    for down in ["characters_db: ", "bus: ", "upstream: "] {
        ensure!(
            !ready.contains(down),
            "{down:?} named at the limit: {ready}"
        );
    }
    ensure!(http_get(metrics_addr, "/health/live").await?.0 == 200);
    bystander.echo(b"an early session is still served").await?;
    drop(open);
    let mut late = eventually("a new session once the flood is gone", STEP, || async {
        Ok(Gateway::logged_in(process.addr, "late", 2).await.ok())
    })
    .await?;
    late.echo(b"served after the flood").await?;
    drop((bystander, late));
    process.kill().await?;
    Ok(())
}
