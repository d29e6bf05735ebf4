//! A gateway sending garbage: every byte still reaches the worldserver, and the sidecar
//! keeps serving.

use super::*;

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
    within(WHOLE_TEST, "gateway garbage flow", gateway_garbage_flow()).await
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
