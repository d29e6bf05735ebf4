//! `tc9-sidecar replay`: a capture played through a real sidecar, with a transcript of
//! what the sidecar decided and what came out of it, frame by frame.
//!
//! The sidecar runs in-process with the charter resolver over in-memory backends
//! seeded from a world file (characters, petitions, guilds, and who plays behind which
//! other sidecar). The replay plays both peers: it sends each captured client frame as
//! the gateway and each captured server frame as the worldserver, and after each one
//! waits for a fence frame to come through, so everything the sidecar produced for that
//! frame has arrived. The transcript has no times or ports: the same capture and world
//! give the same transcript.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use tc9_charter::decode_frames;
use tc9_codec::wire::HexBytes;
use tc9_codec::{decode_frame, Frame, FrameCodec, Opcode, Origin};
use tc9_proxy::capture::Capture;
use tc9_proxy::{Decision, Handler, SessionEvent, SessionInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::app::{charter, Sidecar};
use crate::backends::memory::{MemoryRealm, MemoryStore, World};
use crate::config::Config;

/// The client frame that marks the end of a replay step (never intercepted).
const CLIENT_FENCE: Opcode = Opcode(0xFFFF_FFFF);
/// The server frame the worldserver answers a client fence with.
const SERVER_FENCE: Opcode = Opcode(0xFFFF);
/// How long one step may take.
const STEP: Duration = Duration::from_secs(5);
/// The replaying sidecar's id.
pub const SIDECAR_ID: &str = "replay";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A handler that records each decision of the handler it wraps.
struct Recording<H> {
    inner: H,
    decisions: Arc<Mutex<Vec<&'static str>>>,
}

impl<H: Handler> Handler for Recording<H> {
    type Session = H::Session;

    fn watched(&self) -> Vec<Opcode> {
        self.inner.watched()
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        self.inner.intercepts(origin, opcode)
    }

    async fn handle(&self, session: &SessionInfo<H::Session>, frame: &Frame) -> Decision {
        let decision = self.inner.handle(session, frame).await;
        lock(&self.decisions).push(decision.outcome().label());
        decision
    }

    async fn session_event(&self, session: &Arc<SessionInfo<H::Session>>, event: SessionEvent) {
        self.inner.session_event(session, event).await;
    }

    fn start(&self, cancel: CancellationToken) {
        self.inner.start(cancel);
    }
}

/// One frame on one line: opcode, then `field=value` pairs.
pub fn describe(frame: &Frame) -> String {
    let mut line = format!("{}", frame.opcode());
    match decode_frame(frame) {
        Some(Ok(decoded)) => {
            for (field, value) in decoded.fields().0 {
                let _ = write!(line, " {field}={value}");
            }
        }
        Some(Err(e)) => {
            let _ = write!(line, " MALFORMED({e}) body={}", HexBytes(frame.body()));
        }
        None => {
            let body = frame.body();
            let shown = &body[..body.len().min(32)];
            let _ = write!(line, " len={} body={}", body.len(), HexBytes(shown));
            if body.len() > 32 {
                line.push('…');
            }
        }
    }
    line
}

/// One end of the sidecar the replay plays: its connection, the frames it reads,
/// and the fence frame that ends each step.
struct End {
    stream: TcpStream,
    codec: FrameCodec,
    buf: BytesMut,
    /// The frame this end writes after each of its frames.
    own_fence: Frame,
    /// The frame that ends what this end reads in a step.
    fence: Opcode,
    who: &'static str,
}

impl End {
    /// Writes `frame` and this end's fence after it.
    async fn send(&mut self, frame: &Frame) -> anyhow::Result<()> {
        let mut bytes = frame.as_bytes().to_vec();
        bytes.extend_from_slice(self.own_fence.as_bytes());
        Ok(self.stream.write_all(&bytes).await?)
    }

    /// Writes this end's fence alone.
    async fn fence(&mut self) -> anyhow::Result<()> {
        Ok(self.stream.write_all(self.own_fence.as_bytes()).await?)
    }

    /// Reads frames until the fence, returning those before it.
    async fn until_fence(&mut self) -> anyhow::Result<Vec<Frame>> {
        let mut frames = Vec::new();
        let who = self.who;
        tokio::time::timeout(STEP, async {
            loop {
                while let Some(frame) = self.codec.decode(&mut self.buf)? {
                    if frame.opcode() == self.fence {
                        return anyhow::Ok(());
                    }
                    frames.push(frame);
                }
                if self.stream.read_buf(&mut self.buf).await? == 0 {
                    bail!("the sidecar closed the {who} connection");
                }
            }
        })
        .await
        .with_context(|| format!("the {who} waited too long for the step to finish"))??;
        Ok(frames)
    }
}

/// Replays `capture` against the world `world` and returns the transcript.
pub async fn replay(capture: &Capture, world: &World) -> anyhow::Result<String> {
    if let Some(r) = capture
        .records
        .iter()
        .find(|r| matches!(r.frame.opcode(), CLIENT_FENCE | SERVER_FENCE))
    {
        bail!(
            "the capture holds a frame of opcode {}, which replay uses to mark its steps",
            r.frame.opcode()
        );
    }
    let store = MemoryStore::from_world(world);
    let realm = MemoryRealm::new();
    realm.load(world);
    let worldserver = TcpListener::bind("127.0.0.1:0").await?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        upstream: worldserver.local_addr()?.to_string(),
        sidecar_id: SIDECAR_ID.to_owned(),
        max_client_frame: 0xFFFF,
        bus_poll_ms: 50,
        shutdown_grace_secs: 0,
        worldserver_module: true,
        ..Config::default()
    };
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let charter = charter(&config, store.clone(), realm.join(SIDECAR_ID));
    let probe = charter.clone();
    let handler = Recording {
        inner: charter,
        decisions: Arc::clone(&decisions),
    };
    let running = Sidecar::with_handler(&config, handler).await?;
    let sidecar = running.addr();

    let result = async {
        let gateway = TcpStream::connect(sidecar).await?;
        let (world_end, _) = tokio::time::timeout(STEP, worldserver.accept())
            .await
            .context("the sidecar did not connect to the worldserver")??;
        let mut gateway = End {
            stream: gateway,
            codec: FrameCodec::server(),
            buf: BytesMut::new(),
            own_fence: Frame::new(Origin::Client, CLIENT_FENCE, &[])?,
            fence: SERVER_FENCE,
            who: "gateway",
        };
        let mut world = End {
            stream: world_end,
            codec: FrameCodec::new(Origin::Client, 0xFFFF),
            buf: BytesMut::new(),
            own_fence: Frame::new(Origin::Server, SERVER_FENCE, &[])?,
            fence: CLIENT_FENCE,
            who: "worldserver",
        };
        let mut transcript = String::new();
        let (mut seen_events, mut seen_notices) = (0, 0);
        for (n, record) in capture.records.iter().enumerate() {
            let frame = &record.frame;
            let (arrow, to_world, to_gateway) = match record.origin {
                Origin::Client => {
                    gateway.send(frame).await?;
                    let to_world = world.until_fence().await?;
                    world.fence().await?;
                    ("c2s", to_world, gateway.until_fence().await?)
                }
                Origin::Server => {
                    world.send(frame).await?;
                    ("s2c", Vec::new(), gateway.until_fence().await?)
                }
            };
            let decision = if probe.intercepts(record.origin, frame.opcode()) {
                lock(&decisions)
                    .drain(..)
                    .next_back()
                    .unwrap_or("undecided")
            } else {
                "passed through"
            };
            let _ = writeln!(
                transcript,
                "#{} {arrow} {} -> {decision}",
                n + 1,
                frame.opcode()
            );
            for f in &to_world {
                let _ = writeln!(transcript, "    worldserver <- {}", describe(f));
            }
            for f in &to_gateway {
                let _ = writeln!(transcript, "    gateway <- {}", describe(f));
            }
            let notices = store.notices();
            for (notice, _) in notices.iter().skip(seen_notices) {
                for f in decode_frames(&notice.payload)? {
                    let _ = writeln!(
                        transcript,
                        "    notice for character {} <- {}",
                        notice.character,
                        describe(&f)
                    );
                }
            }
            seen_notices = notices.len();
            let events = realm.events();
            for (target, event, _) in events.iter().skip(seen_events) {
                let _ = writeln!(
                    transcript,
                    "    bus -> {target}: {} {}",
                    event.kind,
                    String::from_utf8_lossy(&event.payload)
                );
            }
            seen_events = events.len();
        }
        anyhow::Ok(transcript)
    }
    .await;
    running.stop().await?;
    result
}

/// The world file beside a capture: `NAME.world.toml` for `NAME.tc9cap`.
pub fn world_beside(capture: &Path) -> std::path::PathBuf {
    capture.with_extension("world.toml")
}

/// Compares a transcript with the expected one; `Err` holds a unified diff.
pub fn compare(expected: &str, actual: &str) -> Result<(), String> {
    if expected == actual {
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(expected, actual);
    Err(diff
        .unified_diff()
        .context_radius(2)
        .header("expected", "actual")
        .to_string())
}
