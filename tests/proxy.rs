//! End-to-end tests of the proxy: the real sidecar [`Server`] runs in-process between a
//! scripted gateway (a `TcpStream` the test drives) and a scripted worldserver (a
//! `TcpListener` the test owns), all on 127.0.0.1 with ephemeral ports.
//!
//! They check that frames pass through byte for byte in both directions (large server
//! headers included), that many sessions stay apart, that half-closes and resets
//! propagate, that an unreachable worldserver closes the gateway connection cleanly,
//! that handler decisions keep the frame order, that answers flowing both ways through
//! one-frame queues cannot deadlock the two directions, and that an unframeable client
//! stream falls back to opaque bytes. The last tests run the real binary: SIGTERM during
//! traffic, and `check-config`.

use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tc9_codec::sample::SampleRng;

use tc9_codec::{Frame, Opcode, Origin};
use tc9_opcodes::Group;
use tc9_proxy::{Decision, Handler, PassThrough, SessionInfo};
use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;
use tc9_testkit::frames::{ensure_same_stream, write_chunked};
use tc9_testkit::{client, read_frame, server, start_sidecar_with, within, STEP};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// How soon a reset or an unreachable worldserver must show at the other end.
const PROMPT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// Starts a sidecar whose intercepted frames `handler` decides.
async fn start<H: Handler>(config: Config, handler: H) -> Sidecar {
    start_sidecar_with(config, handler)
        .await
        .expect("sidecar starts")
}

/// Stops accepting and checks the sidecar stops cleanly after its grace period.
async fn shut_down(sidecar: Sidecar) {
    within(STEP, "sidecar stops", sidecar.stop())
        .await
        .expect("the sidecar stops cleanly");
}

/// A pass-through configuration toward `upstream`, with a short grace period.
fn config_for(upstream: SocketAddr) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: upstream.to_string(),
        shutdown_grace_secs: 1,
        ..Config::default()
    }
}

/// A scripted worldserver listening on an ephemeral port.
async fn worldserver() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Connects a gateway to the sidecar and accepts the sidecar's worldserver connection.
async fn open(sidecar: &Sidecar, ws: &TcpListener) -> (TcpStream, TcpStream) {
    let gateway = within(STEP, "gateway connects", TcpStream::connect(sidecar.addr()))
        .await
        .expect("gateway connects");
    let (upstream, _) = within(STEP, "sidecar connects upstream", ws.accept())
        .await
        .expect("worldserver accepts");
    (gateway, upstream)
}

/// Reads one frame and checks it is exactly `want` (header and body bytes).
async fn expect_frame<R: AsyncRead + Unpin>(r: &mut R, want: &Frame, what: &str) {
    tc9_testkit::frames::expect_frame(r, want, what)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// Writes the bytes of `frame`.
async fn send<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) {
    within(STEP, "write a frame", w.write_all(frame.as_bytes()))
        .await
        .expect("write a frame");
}

/// Checks the next read is a clean EOF (`Ok(0)`).
async fn expect_eof<R: AsyncRead + Unpin>(r: &mut R, what: &str) {
    let mut buf = [0u8; 64];
    match within(STEP, what, r.read(&mut buf)).await {
        Ok(0) => {}
        Ok(n) => panic!(
            "{what}: {n} unexpected bytes instead of EOF: {:?}",
            &buf[..n]
        ),
        Err(e) => panic!("{what}: error instead of a clean EOF: {e}"),
    }
}

/// Checks the connection ends (EOF or an error such as a reset) within [`PROMPT`].
async fn expect_closed<R: AsyncRead + Unpin>(r: &mut R, what: &str) {
    let mut buf = [0u8; 64];
    match within(PROMPT, what, r.read(&mut buf)).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!(
            "{what}: {n} unexpected bytes instead of a close: {:?}",
            &buf[..n]
        ),
    }
}

/// Guild, guild bank and petition opcodes that may travel from `origin`.
fn charter_opcodes(origin: Origin) -> Vec<Opcode> {
    tc9_opcodes::TABLE
        .iter()
        .filter(|row| matches!(row.group, Group::Guild | Group::GuildBank | Group::Petition))
        .filter(|row| match origin {
            Origin::Client => row.direction.allows_client_to_server(),
            Origin::Server => row.direction.allows_server_to_client(),
        })
        .map(|row| row.opcode)
        .collect()
}

/// `count` random frames from `origin` with bodies of at most `max_body` bytes: mostly
/// small, some medium, some large, plus the header-size edge cases.
fn random_frames(rng: &mut SampleRng, origin: Origin, count: usize, max_body: usize) -> Vec<Frame> {
    let named = charter_opcodes(origin);
    assert!(!named.is_empty());
    let mut edges = vec![0, max_body, 1];
    if origin == Origin::Server {
        // The largest small header (size 0x7FFF) and the smallest large one.
        edges.extend([0x7FFD, 0x7FFE, 0xFFFF]);
    }
    (0..count)
        .map(|i| {
            let opcode = if rng.index(2) == 0 {
                named[rng.index(named.len())]
            } else {
                match origin {
                    Origin::Client => Opcode(rng.next_u64() as u32),
                    Origin::Server => Opcode(u32::from(rng.next_u64() as u16)),
                }
            };
            let len = match (i % 97, rng.index(100)) {
                (k, _) if k < edges.len() && i >= 97 => edges[k],
                (_, 0..=69) => rng.index(64),
                (_, 70..=89) => rng.index(4096),
                _ => rng.index(max_body + 1),
            };
            Frame::new(origin, opcode, &rng.bytes(len)).expect("random frame")
        })
        .collect()
}

/// Writes `bytes` in random-sized chunks (so frames are split across writes), then
/// half-closes.
async fn send_chunked<W: AsyncWrite + Unpin>(mut w: W, bytes: Arc<Vec<u8>>, seed: u64) -> W {
    write_chunked(&mut w, &bytes, seed, 100_000)
        .await
        .expect("write chunks");
    w.shutdown().await.expect("half-close");
    w
}

/// Reads everything until EOF.
async fn read_all<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.expect("read to EOF");
    out
}

// ---------------------------------------------------------------------------------
// Pass-through
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Handler decisions
// ---------------------------------------------------------------------------------

const ANSWERED: Opcode = Opcode::CMSG_PETITION_SHOWLIST;
const DROPPED: Opcode = Opcode::CMSG_GUILD_ROSTER;
const REWRITTEN: Opcode = Opcode::CMSG_PETITION_SIGN;
const INTERCEPTED_FORWARD: Opcode = Opcode::CMSG_GUILD_QUERY;
const FAILS_OPEN: Opcode = Opcode::CMSG_PETITION_QUERY;

/// What [`Scripted`] saw: session id, opcode and body of each intercepted frame.
type Seen = Arc<Mutex<Vec<(u64, Opcode, Vec<u8>)>>>;

/// Answers, drops, rewrites, forwards or fails open by opcode, and records what it saw.
struct Scripted {
    seen: Seen,
}

impl Scripted {
    fn answer(body: &[u8]) -> Frame {
        server(Opcode::SMSG_PETITION_SHOWLIST, &[b"answer:", body].concat())
    }

    fn rewritten(body: &[u8]) -> Vec<Frame> {
        vec![
            client(REWRITTEN, &[b"rewritten:", body].concat()),
            client(Opcode::CMSG_GUILD_INFO, b"added by the rewrite"),
        ]
    }
}

impl Handler for Scripted {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        vec![
            ANSWERED,
            DROPPED,
            REWRITTEN,
            INTERCEPTED_FORWARD,
            FAILS_OPEN,
        ]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        origin == Origin::Client
            && [
                ANSWERED,
                DROPPED,
                REWRITTEN,
                INTERCEPTED_FORWARD,
                FAILS_OPEN,
            ]
            .contains(&opcode)
    }

    async fn handle(&self, session: &SessionInfo, frame: &Frame) -> Decision {
        self.seen
            .lock()
            .unwrap()
            .push((session.id, frame.opcode(), frame.body().to_vec()));
        // Let the decision take a moment, as a database lookup would.
        tokio::time::sleep(Duration::from_millis(5)).await;
        match frame.opcode() {
            ANSWERED => Decision::Answer(vec![Self::answer(frame.body())]),
            DROPPED => Decision::Drop,
            REWRITTEN => Decision::Rewrite(Self::rewritten(frame.body())),
            FAILS_OPEN => Decision::FailOpen("no database in this test".to_owned()),
            _ => Decision::Forward,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_decisions_keep_order() {
    let (ws, ws_addr) = worldserver().await;
    let seen = Seen::default();
    let handler = Scripted {
        seen: Arc::clone(&seen),
    };
    let sidecar = start(config_for(ws_addr), handler).await;
    let (mut gw, mut up) = open(&sidecar, &ws).await;

    let s1 = server(Opcode::SMSG_GUILD_EVENT, b"s1 before the answer");
    let s2 = server(Opcode::SMSG_GUILD_EVENT, b"s2 after the answer");
    let s3 = server(Opcode::SMSG_GUILD_ROSTER, b"s3 after the second answer");
    let f1 = client(Opcode::CMSG_GUILD_INFO, b"f1");
    let f2 = client(Opcode::CMSG_GUILD_MOTD, b"f2 after a dropped frame");
    let f3 = client(Opcode::CMSG_GUILD_INFO, b"f3 right after an answered frame");
    let a1 = client(ANSWERED, b"a1");
    let a2 = client(ANSWERED, b"a2");
    let d1 = client(DROPPED, b"d1 must never reach the worldserver");
    let r1 = client(REWRITTEN, b"r1");
    let fwd = client(INTERCEPTED_FORWARD, b"intercepted, forwarded");
    let open_ = client(FAILS_OPEN, b"fails open");

    // The worldserver speaks first; the gateway gets it.
    send(&mut up, &s1).await;
    expect_frame(&mut gw, &s1, "s1").await;
    // A frame the handler does not intercept is forwarded.
    send(&mut gw, &f1).await;
    expect_frame(&mut up, &f1, "f1 forwarded").await;
    // The answered frame comes back to the gateway after s1 and before s2.
    send(&mut gw, &a1).await;
    expect_frame(&mut gw, &Scripted::answer(b"a1"), "answer to a1").await;
    send(&mut up, &s2).await;
    expect_frame(&mut gw, &s2, "s2 after the answer").await;
    // A dropped frame leaves no trace: the next forwarded frame is the next one seen.
    send(&mut gw, &d1).await;
    send(&mut gw, &f2).await;
    expect_frame(&mut up, &f2, "f2 after the dropped frame").await;
    // A rewritten frame reaches the worldserver as its replacements, in order.
    send(&mut gw, &r1).await;
    for (i, frame) in Scripted::rewritten(b"r1").iter().enumerate() {
        expect_frame(&mut up, frame, &format!("rewrite part {i}")).await;
    }
    // Answer and forward in one write: each goes its own way.
    let both = [a2.as_bytes().as_ref(), f3.as_bytes().as_ref()].concat();
    within(STEP, "write a2+f3", gw.write_all(&both))
        .await
        .unwrap();
    expect_frame(&mut gw, &Scripted::answer(b"a2"), "answer to a2").await;
    expect_frame(&mut up, &f3, "f3 forwarded after the answered frame").await;
    send(&mut up, &s3).await;
    expect_frame(&mut gw, &s3, "s3 after the second answer").await;
    // Intercepted but forwarded, and failing open: the original bytes go on.
    send(&mut gw, &fwd).await;
    expect_frame(&mut up, &fwd, "intercepted and forwarded").await;
    send(&mut gw, &open_).await;
    expect_frame(&mut up, &open_, "failed open").await;

    // Nothing else arrived on either side: closing shows EOF right after.
    gw.shutdown().await.unwrap();
    expect_eof(&mut up, "worldserver: nothing after the expected frames").await;
    drop(up);
    expect_eof(&mut gw, "gateway: nothing after the expected frames").await;

    let seen = seen.lock().unwrap().clone();
    let opcodes: Vec<Opcode> = seen.iter().map(|(_, op, _)| *op).collect();
    assert_eq!(
        opcodes,
        [
            ANSWERED,
            DROPPED,
            REWRITTEN,
            ANSWERED,
            INTERCEPTED_FORWARD,
            FAILS_OPEN
        ]
    );
    assert_eq!(seen[0].2, b"a1");
    assert!(seen.iter().all(|(id, _, _)| *id == seen[0].0));
    shut_down(sidecar).await;
}

/// Answers every intercepted frame, from either side, with three frames back to its
/// sender: each direction's pump keeps feeding the other one's inbox.
struct AnswersBothWays;

/// The server opcode [`AnswersBothWays`] answers back to the worldserver.
const ANSWERED_BY_SERVER: Opcode = Opcode::SMSG_GUILD_ROSTER;

impl Handler for AnswersBothWays {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        vec![ANSWERED, ANSWERED_BY_SERVER]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        match origin {
            Origin::Client => opcode == ANSWERED,
            Origin::Server => opcode == ANSWERED_BY_SERVER,
        }
    }

    async fn handle(&self, _session: &SessionInfo, frame: &Frame) -> Decision {
        let answers = (0..3u8).map(|i| {
            let body = [frame.body(), &[i]].concat();
            match frame.origin() {
                Origin::Client => server(Opcode::SMSG_PETITION_SHOWLIST, &body),
                Origin::Server => client(Opcode::CMSG_GUILD_INFO, &body),
            }
        });
        Decision::Answer(answers.collect())
    }
}

/// Reads `count` frames of `origin` and returns their bodies.
async fn read_bodies<R: AsyncRead + Unpin>(mut r: R, origin: Origin, count: usize) -> Vec<Vec<u8>> {
    let mut bodies = Vec::with_capacity(count);
    while bodies.len() < count {
        match read_frame(&mut r, origin).await {
            Ok(Some(frame)) => bodies.push(frame.body().to_vec()),
            other => panic!("{origin} answers: {other:?} after {}", bodies.len()),
        }
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_both_ways_through_full_queues_do_not_deadlock() {
    let (ws, ws_addr) = worldserver().await;
    let mut config = config_for(ws_addr);
    // One queued frame per side: each pump waits on the other's inbox at once.
    config.session_queue = 1;
    let sidecar = start(config, AnswersBothWays).await;
    let (gw, up) = open(&sidecar, &ws).await;
    let (gw_read, mut gw_write) = gw.into_split();
    let (up_read, mut up_write) = up.into_split();
    const N: u32 = 300;
    let from_gateway: Vec<u8> = (0..N)
        .flat_map(|i| client(ANSWERED, &i.to_le_bytes()).as_bytes().to_vec())
        .collect();
    let from_world: Vec<u8> = (0..N)
        .flat_map(|i| {
            server(ANSWERED_BY_SERVER, &i.to_le_bytes())
                .as_bytes()
                .to_vec()
        })
        .collect();
    let gateway_answers = tokio::spawn(read_bodies(gw_read, Origin::Server, 3 * N as usize));
    let world_answers = tokio::spawn(read_bodies(up_read, Origin::Client, 3 * N as usize));
    let (a, b) = within(STEP, "both sides write all their frames", async {
        tokio::join!(
            gw_write.write_all(&from_gateway),
            up_write.write_all(&from_world)
        )
    })
    .await;
    a.unwrap();
    b.unwrap();
    let expected: Vec<Vec<u8>> = (0..N)
        .flat_map(|i| (0..3u8).map(move |k| [&i.to_le_bytes()[..], &[k]].concat()))
        .collect();
    let to_gateway = within(STEP, "every answer reaches the gateway", gateway_answers)
        .await
        .unwrap();
    assert!(to_gateway == expected, "answers to the gateway, in order");
    let to_world = within(STEP, "every answer reaches the worldserver", world_answers)
        .await
        .unwrap();
    assert!(to_world == expected, "answers to the worldserver, in order");
    shut_down(sidecar).await;
}

// ---------------------------------------------------------------------------------
// Unframeable input
// ---------------------------------------------------------------------------------

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
            // Refused, or reset when the listener closes mid-handshake.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                ) =>
            {
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
