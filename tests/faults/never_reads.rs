//! A gateway that never reads.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_gateway_that_never_reads() -> Result<()> {
    within(WHOLE_TEST, "never reads", never_reads()).await
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
