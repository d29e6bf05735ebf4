//! Unframeable input, a peer closing mid-frame, and the real binary: SIGTERM during
//! traffic and check-config.

use super::*;
use tc9_testkit::closed_at_connect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_header_passes_through_opaque() {
    let (ws, ws_addr) = worldserver().await;
    let config = Config {
        max_client_frame: 100,
        ..config_for(ws_addr)
    };
    let sidecar = start(config, PassThrough).await;
    let (mut gw, mut up) = open(&sidecar, &ws).await;

    // Framed traffic first.
    let valid = client(Opcode::CMSG_GUILD_INFO, &[1; 10]);
    send(&mut gw, &valid).await;
    expect_frame(&mut up, &valid, "valid frame before the bad header").await;
    let before = server(Opcode::SMSG_GUILD_EVENT, b"before");
    send(&mut up, &before).await;
    expect_frame(&mut gw, &before, "server frame before the bad header").await;

    // A header announcing 0xFFFF bytes, over the limit of 100, then arbitrary bytes in
    // two writes (the second also holds what looks like a valid frame).
    let mut rng = SampleRng::new(0xBAD);
    let mut opaque = vec![0xFF, 0xFF, 0x34, 0x12, 0x00, 0x00];
    opaque.extend(rng.bytes(5000));
    let tail = [
        client(Opcode::CMSG_GUILD_INFO, b"looks framed")
            .as_bytes()
            .as_ref(),
        &rng.bytes(777),
    ]
    .concat();
    gw.write_all(&opaque).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    gw.write_all(&tail).await.unwrap();
    gw.shutdown().await.unwrap();
    let got = within(STEP, "worldserver reads the opaque bytes", async {
        let mut got = Vec::new();
        up.read_to_end(&mut got).await.map(|_| got)
    })
    .await
    .expect("read to EOF");
    ensure_same_stream("opaque client bytes", &got, &[opaque, tail].concat()).unwrap();

    // The other direction is still framed and flowing.
    let after = server(Opcode::SMSG_GUILD_EVENT, &[9; 40_000]);
    send(&mut up, &after).await;
    expect_frame(&mut gw, &after, "server frame after the opaque fallback").await;
    drop(up);
    expect_eof(&mut gw, "gateway sees the worldserver close").await;

    // A header announcing fewer bytes than its own opcode (size 2) is no frame either:
    // it and everything after it arrive as they were sent.
    let (mut gw, mut up) = open(&sidecar, &ws).await;
    let mut short = vec![0x00, 0x02, 0xAA, 0xBB, 0xCC, 0xDD];
    short.extend(rng.bytes(300));
    gw.write_all(&short).await.unwrap();
    gw.shutdown().await.unwrap();
    let got = within(STEP, "worldserver reads the short-header bytes", async {
        let mut got = Vec::new();
        up.read_to_end(&mut got).await.map(|_| got)
    })
    .await
    .expect("read to EOF");
    ensure_same_stream("short-header client bytes", &got, &short).unwrap();
    drop(up);
    expect_eof(&mut gw, "gateway sees the worldserver close").await;
    shut_down(sidecar).await;
}

// ---------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------

/// One echo round over a session through the binary: a client frame out, the
/// worldserver's echo back.
async fn echo_round(gw: &mut TcpStream, round: u32) -> io::Result<()> {
    let body = format!("ping {round}").into_bytes();
    gw.write_all(client(Opcode::CMSG_GUILD_INFO, &body).as_bytes())
        .await?;
    match tokio::time::timeout(STEP, read_frame(gw, Origin::Server)).await {
        Ok(Ok(Some(frame))) if frame == server(Opcode::SMSG_GUILD_INFO, &body) => Ok(()),
        Ok(Ok(Some(frame))) => Err(io::Error::other(format!("unexpected echo {frame:?}"))),
        Ok(Ok(None)) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_traffic_exits_zero() {
    const GRACE: Duration = Duration::from_secs(2);
    // An echoing worldserver: every client frame comes back as SMSG_GUILD_INFO.
    let (ws, ws_addr) = worldserver().await;
    let echo = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = ws.accept().await else {
                return;
            };
            tokio::spawn(async move {
                while let Ok(Some(frame)) = read_frame(&mut stream, Origin::Client).await {
                    let reply = server(Opcode::SMSG_GUILD_INFO, frame.body());
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tc9-sidecar"));
    command
        .args([
            "run",
            "--listen",
            &listen.to_string(),
            "--upstream",
            &ws_addr.to_string(),
        ])
        .env("TC9_SHUTDOWN_GRACE_SECS", GRACE.as_secs().to_string())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("TC9_") && name != "TC9_SHUTDOWN_GRACE_SECS" {
            command.env_remove(name);
        }
    }
    let mut child = command.spawn().expect("the binary starts");
    let pid = child.id().expect("a pid");
    // Drain the logs so the pipes never fill.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
    });

    // Wait until it accepts; that first connection is the session under test.
    let started = Instant::now();
    let mut gw = loop {
        match TcpStream::connect(listen).await {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < STEP => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("the sidecar never accepted on {listen}: {e}"),
        }
    };
    for round in 0..5 {
        echo_round(&mut gw, round)
            .await
            .expect("traffic before SIGTERM");
    }

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let signalled = Instant::now();

    // New connections are refused soon after.
    loop {
        match TcpStream::connect(listen).await {
            // Refused, or closed mid-handshake by the listener going away.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused || closed_at_connect(&e) => {
                break
            }
            Err(e) => panic!("unexpected connect error after SIGTERM: {e}"),
            Ok(stream) => {
                drop(stream);
                assert!(
                    signalled.elapsed() < Duration::from_secs(3),
                    "still accepting {:?} after SIGTERM",
                    signalled.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    // The open session keeps working during the grace period...
    for round in 5..10 {
        if let Err(e) = echo_round(&mut gw, round).await {
            assert!(
                signalled.elapsed() >= GRACE,
                "the session failed {:?} after SIGTERM, inside the grace period: {e}",
                signalled.elapsed()
            );
            break;
        }
    }
    // ...and is closed after it.
    let mut buf = [0u8; 64];
    let read = within(
        GRACE + Duration::from_secs(5),
        "the session is closed after the grace period",
        gw.read(&mut buf),
    )
    .await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected a close, got {read:?}"
    );
    let closed_after = signalled.elapsed();
    assert!(
        closed_after >= GRACE - Duration::from_millis(100),
        "the session was closed {closed_after:?} after SIGTERM, before the grace period ended"
    );

    let status = within(
        GRACE + Duration::from_secs(5),
        "the process exits",
        child.wait(),
    )
    .await
    .expect("wait for the process");
    let logs = within(STEP, "logs drained", logs).await.unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}; logs:\n{logs}"
    );
    assert!(
        signalled.elapsed() <= GRACE + Duration::from_secs(5),
        "exited {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(logs.contains("sidecar stopped"), "logs:\n{logs}");
    echo.abort();
}

#[test]
fn check_config_names_bad_key_and_line() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bad = dir.join(format!("proxy-bad-config-{}.toml", std::process::id()));
    std::fs::write(&bad, "listen = \"127.0.0.1:9085\"\nno_such_key = 3\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tc9-sidecar"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("the binary runs");
    std::fs::remove_file(&bad).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("no_such_key"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");

    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sidecar.example.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tc9-sidecar"))
        .arg("check-config")
        .arg(&example)
        .output()
        .expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

/// A peer that closes in the middle of a frame: the bytes it did send still reach the
/// other side, then the close (found by the session fuzz target).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_frame_before_close_is_forwarded() {
    let (ws, ws_addr) = worldserver().await;
    let sidecar = start(config_for(ws_addr), PassThrough).await;
    for tail in [
        &[0xF4][..],
        &[0x00, 0x20, 0xC0, 0x01, 0x00, 0x00, 1, 2, 3][..],
    ] {
        let (mut gw, mut up) = open(&sidecar, &ws).await;
        let whole = client(Opcode::CMSG_GUILD_INFO, b"whole");
        gw.write_all(&[whole.as_bytes().as_ref(), tail].concat())
            .await
            .unwrap();
        gw.shutdown().await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), up.read_to_end(&mut got))
            .await
            .expect("the worldserver sees the close")
            .unwrap();
        assert_eq!(got, [whole.as_bytes().as_ref(), tail].concat());
    }
}
