//! Pass-through: random frames byte for byte, and two hundred sessions kept apart.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_frames_pass_through_byte_exact() {
    let (ws, ws_addr) = worldserver().await;
    let config = Config {
        max_client_frame: 0xFFFF,
        ..config_for(ws_addr)
    };
    let sidecar = start(config, PassThrough).await;
    let (gateway, upstream) = open(&sidecar, &ws).await;

    let mut rng = SampleRng::new(0x7C9_5EED);
    let client_frames = random_frames(&mut rng, Origin::Client, 1000, 65_531);
    let server_frames = random_frames(&mut rng, Origin::Server, 1000, 70_000);
    assert!(server_frames.iter().any(|f| f.header().len() == 5));
    assert!(server_frames.iter().any(|f| f.body().len() == 0x7FFD));
    assert!(client_frames.iter().any(|f| f.body().len() == 65_531));
    let c2s: Arc<Vec<u8>> = Arc::new(
        client_frames
            .iter()
            .flat_map(|f| f.as_bytes().iter().copied())
            .collect(),
    );
    let s2c: Arc<Vec<u8>> = Arc::new(
        server_frames
            .iter()
            .flat_map(|f| f.as_bytes().iter().copied())
            .collect(),
    );

    let (gw_read, gw_write) = gateway.into_split();
    let (ws_read, ws_write) = upstream.into_split();
    let gw_sends = tokio::spawn(send_chunked(gw_write, Arc::clone(&c2s), 11));
    let ws_sends = tokio::spawn(send_chunked(ws_write, Arc::clone(&s2c), 22));
    let ws_gets = tokio::spawn(read_all(ws_read));
    let gw_gets = tokio::spawn(read_all(gw_read));

    let (a, b, got_c2s, got_s2c) =
        within(Duration::from_secs(30), "both directions finish", async {
            tokio::join!(gw_sends, ws_sends, ws_gets, gw_gets)
        })
        .await;
    let (_gw_write, _ws_write) = (a.unwrap(), b.unwrap());
    ensure_same_stream("gateway -> worldserver", &got_c2s.unwrap(), &c2s).unwrap();
    ensure_same_stream("worldserver -> gateway", &got_s2c.unwrap(), &s2c).unwrap();
    shut_down(sidecar).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sessions() {
    const SESSIONS: usize = 200;
    const ROUNDS: usize = 3;
    let (ws, ws_addr) = worldserver().await;
    let sidecar = start(config_for(ws_addr), PassThrough).await;

    // Session-specific content: the id in the body, plus id-dependent padding.
    fn c2s(id: usize, round: usize) -> Frame {
        let mut body = format!("session {id} round {round}").into_bytes();
        body.extend(SampleRng::new((id * 31 + round) as u64 + 1).bytes(id % 50 + round * 7));
        client(Opcode::CMSG_GUILD_ROSTER, &body)
    }
    fn s2c(id: usize, round: usize) -> Frame {
        let mut body = format!("reply to {id} round {round}").into_bytes();
        body.extend(SampleRng::new((id * 57 + round) as u64 + 7).bytes(id % 300 + round));
        server(Opcode::SMSG_GUILD_ROSTER, &body)
    }

    // The worldserver: one task per connection, which learns its session from the
    // first frame and answers each frame with that session's reply.
    let worldserver = tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..SESSIONS {
            let (mut stream, _) = ws.accept().await.expect("accept");
            conns.push(tokio::spawn(async move {
                let first = read_frame(&mut stream, Origin::Client)
                    .await
                    .expect("first frame")
                    .expect("a first frame");
                let text = String::from_utf8_lossy(first.body()).into_owned();
                let id: usize = text
                    .strip_prefix("session ")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no session id in {text:?}"));
                assert_eq!(first, c2s(id, 0));
                stream.write_all(s2c(id, 0).as_bytes()).await.unwrap();
                for round in 1..ROUNDS {
                    let frame = read_frame(&mut stream, Origin::Client).await.unwrap();
                    assert_eq!(frame, Some(c2s(id, round)), "session {id}");
                    stream.write_all(s2c(id, round).as_bytes()).await.unwrap();
                }
                let end = read_frame(&mut stream, Origin::Client).await.unwrap();
                assert_eq!(end, None, "session {id}: EOF after the last frame");
                id
            }));
        }
        let mut ids = Vec::new();
        for conn in conns {
            ids.push(conn.await.expect("worldserver connection task"));
        }
        ids
    });

    let barrier = Arc::new(Barrier::new(SESSIONS));
    let addr = sidecar.addr();
    let gateways: Vec<_> = (0..SESSIONS)
        .map(|id| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let mut gw = TcpStream::connect(addr).await.expect("gateway connects");
                // Every session is open before any sends.
                barrier.wait().await;
                for round in 0..ROUNDS {
                    gw.write_all(c2s(id, round).as_bytes()).await.unwrap();
                    let frame = read_frame(&mut gw, Origin::Server).await.unwrap();
                    assert_eq!(frame, Some(s2c(id, round)), "gateway {id}");
                }
                gw.shutdown().await.unwrap();
                let end = read_frame(&mut gw, Origin::Server).await.unwrap();
                assert_eq!(end, None, "gateway {id}: EOF after the worldserver closed");
            })
        })
        .collect();

    within(Duration::from_secs(30), "all gateways finish", async {
        for gw in gateways {
            gw.await.expect("gateway task");
        }
    })
    .await;
    let mut ids = within(STEP, "worldserver finishes", worldserver)
        .await
        .expect("worldserver task");
    ids.sort_unstable();
    assert_eq!(ids, (0..SESSIONS).collect::<Vec<_>>());
    shut_down(sidecar).await;
}
