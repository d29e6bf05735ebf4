//! The worldserver drops a connection inside a large frame.

use super::*;

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
    within(WHOLE_TEST, "killed mid stream", killed_mid_stream()).await
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
