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

mod binary;
mod closing;
mod decisions;
mod pass_through;

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
