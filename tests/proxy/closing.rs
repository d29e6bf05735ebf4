//! Closing: half-closes, resets and an unreachable worldserver.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_close_propagates_and_sidecar_keeps_serving() {
    let (ws, ws_addr) = worldserver().await;
    let sidecar = start(config_for(ws_addr), PassThrough).await;
    let ping = client(Opcode::CMSG_PETITION_SHOWLIST, b"ping");
    let pong = server(Opcode::SMSG_PETITION_SHOWLIST, b"pong");

    // (a) The gateway half-closes: the worldserver reads EOF, can still send, and its
    // close reaches the gateway as EOF.
    {
        let (mut gw, mut up) = open(&sidecar, &ws).await;
        send(&mut gw, &ping).await;
        expect_frame(&mut up, &ping, "(a) ping").await;
        send(&mut up, &pong).await;
        expect_frame(&mut gw, &pong, "(a) pong").await;
        gw.shutdown().await.unwrap();
        expect_eof(&mut up, "(a) worldserver sees the half-close").await;
        let late = [
            server(Opcode::SMSG_GUILD_EVENT, b"after the half-close"),
            server(Opcode::SMSG_GUILD_ROSTER, &[7; 40_000]),
        ];
        for frame in &late {
            send(&mut up, frame).await;
        }
        for frame in &late {
            expect_frame(&mut gw, frame, "(a) frames after the half-close").await;
        }
        drop(up);
        expect_eof(&mut gw, "(a) gateway sees the worldserver close").await;
    }

    // (b) The worldserver resets: the gateway's connection ends promptly.
    {
        let (mut gw, mut up) = open(&sidecar, &ws).await;
        send(&mut gw, &ping).await;
        expect_frame(&mut up, &ping, "(b) ping").await;
        up.set_zero_linger().unwrap();
        drop(up);
        expect_closed(&mut gw, "(b) gateway sees the worldserver reset").await;
    }

    // (c) The gateway resets: the worldserver's connection ends promptly.
    {
        let (mut gw, mut up) = open(&sidecar, &ws).await;
        send(&mut up, &pong).await;
        expect_frame(&mut gw, &pong, "(c) pong").await;
        gw.set_zero_linger().unwrap();
        drop(gw);
        expect_closed(&mut up, "(c) worldserver sees the gateway reset").await;
    }

    // A new session afterwards works both ways.
    {
        let (mut gw, mut up) = open(&sidecar, &ws).await;
        send(&mut gw, &ping).await;
        expect_frame(&mut up, &ping, "new session ping").await;
        send(&mut up, &pong).await;
        expect_frame(&mut gw, &pong, "new session pong").await;
        gw.shutdown().await.unwrap();
        expect_eof(&mut up, "new session: worldserver sees EOF").await;
        drop(up);
        expect_eof(&mut gw, "new session: gateway sees EOF").await;
    }
    shut_down(sidecar).await;
}

/// A peer's reset should reach the other peer as a reset, as `Outbound::Reset`
/// intends ("the source side reset: reset this side too"), not as a clean EOF that
/// looks like an orderly logout. Repeated because part of the cause is a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_propagate_as_resets() {
    let (ws, ws_addr) = worldserver().await;
    let sidecar = start(config_for(ws_addr), PassThrough).await;
    let ping = client(Opcode::CMSG_PETITION_SHOWLIST, b"ping");
    for round in 0..10 {
        // The worldserver resets.
        let (mut gw, mut up) = open(&sidecar, &ws).await;
        send(&mut gw, &ping).await;
        expect_frame(&mut up, &ping, "ping").await;
        up.set_zero_linger().unwrap();
        drop(up);
        let mut buf = [0u8; 16];
        let read = within(PROMPT, "gateway read", gw.read(&mut buf)).await;
        assert!(
            matches!(&read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "round {round}: the worldserver reset reached the gateway as {read:?}"
        );

        // The gateway resets.
        let (mut gw, mut up) = open(&sidecar, &ws).await;
        send(&mut gw, &ping).await;
        expect_frame(&mut up, &ping, "ping").await;
        gw.set_zero_linger().unwrap();
        drop(gw);
        let read = within(PROMPT, "worldserver read", up.read(&mut buf)).await;
        assert!(
            matches!(&read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "round {round}: the gateway reset reached the worldserver as {read:?}"
        );
    }
    shut_down(sidecar).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worldserver_unreachable() {
    // A port nobody listens on.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = Config {
        connect_attempts: 2,
        connect_backoff_ms: 10,
        ..config_for(dead)
    };
    let sidecar = start(config, PassThrough).await;
    for attempt in 0..2 {
        let started = Instant::now();
        let mut gw = within(STEP, "gateway connects", TcpStream::connect(sidecar.addr()))
            .await
            .unwrap_or_else(|e| panic!("connection {attempt} accepted: {e}"));
        let mut buf = [0u8; 16];
        let read = within(PROMPT, "the sidecar closes the gateway", gw.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(0)),
            "connection {attempt}: expected a clean close, got {read:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    shut_down(sidecar).await;
}
