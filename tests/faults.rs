//! Fault injection: the sidecar under broken databases, broken peers and hostile
//! input. Everything runs in-process on 127.0.0.1 with ephemeral ports.
//!
//! The shared MariaDB and PostgreSQL servers are never stopped: a test that cuts a
//! database puts a [`Relay`] of its own between the sidecar and the server and breaks
//! the relay instead (every relayed connection dropped, new ones refused, or every
//! byte held back: a blackhole), then restores it.
//!
//! - `mariadb_cut_mid_session_fails_open`: charter signs fail open (the original
//!   packet reaches the worldserver within `resolve_timeout_ms`) while MariaDB is
//!   blackholed or refused, sessions stay open, new sessions pass traffic, and
//!   signs are resolved again once the relay is back, without a restart.
//! - `postgres_cut_and_back_loses_no_event`: events published for a sidecar whose
//!   bus is cut are delivered exactly once after it comes back; cross-server offers
//!   fail open while the bus is down.
//! - `sign_committed_during_bus_stall_is_answered`: a signature committed in MariaDB
//!   while the bus stalls must still be answered.
//! - `worldserver_killed_mid_stream`: a worldserver connection dropped inside a large
//!   frame (FIN or RST, in its body or its header) closes its gateway connection
//!   promptly, after the bytes that did come (a FIN) or at once (a reset); other
//!   sessions go on.
//! - `gateway_garbage`: seeded random bytes and malformed charter packets pass through
//!   byte for byte (framed while possible, then opaque), a header announcing 65 KiB
//!   followed by a close arrives as sent; nothing crashes or stalls.
//! - `slow_gateway_that_never_reads`: a flooding worldserver is stopped by bounded
//!   buffering; other sessions keep full service.

mod support;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tc9_codec::sample::SampleRng;

use anyhow::{bail, ensure, Context, Result};
use futures::StreamExt;
use mysql_async::prelude::*;
use tc9_codec::messages::petition::{sign_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{
    CmsgGuildQuery, CmsgOfferPetition, CmsgPetitionQuery, CmsgPetitionShowSignatures,
    CmsgPetitionSign, CmsgPlayerLogin, MsgPetitionDeclineClient, SmsgLoginVerifyWorld,
    SmsgPetitionShowSignatures, SmsgPetitionSignResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, FrameCodec, Message, Opcode, Origin};
use tc9_sidecar::bus::Bus;
use tc9_sidecar::charter::CharterHandler;
use tc9_sidecar::config::Config;
use tc9_sidecar::handler::{Handler, PassThrough};
use tc9_sidecar::memory::{MemoryBus, MemoryStore};
use tc9_sidecar::server::{Databases, Server};
use tc9_sidecar::store::Db;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use support::{read_frame, stream_difference, MariaDb, PgDb};

/// How long any single network step may take before the test fails.
const STEP: Duration = Duration::from_secs(10);
/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(30);
/// How soon a close must show at the other end.
const PROMPT: Duration = Duration::from_secs(3);
/// How long "nothing is answered" is watched.
const SILENCE: Duration = Duration::from_millis(500);
/// The sidecars' `resolve_timeout_ms`.
const RESOLVE_TIMEOUT: Duration = Duration::from_millis(500);
/// What a fail-open may take beyond [`RESOLVE_TIMEOUT`] on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1000);
/// The MariaDB server.
const MARIADB_ADDR: &str = "127.0.0.1:3306";
/// The PostgreSQL server.
const POSTGRES_ADDR: &str = "127.0.0.1:5432";
/// The bus schema of realm 1.
const SCHEMA: &str = "tc9_realm_1";

// ---------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The resident set of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn client(opcode: Opcode, body: &[u8]) -> Frame {
    Frame::new(Origin::Client, opcode, body).expect("a client frame")
}

fn server(opcode: Opcode, body: &[u8]) -> Frame {
    Frame::new(Origin::Server, opcode, body).expect("a server frame")
}

fn client_frame<M: Message>(message: &M) -> Frame {
    Frame::from_message(Origin::Client, message).expect("a client frame")
}

fn server_frame<M: Message>(message: &M) -> Frame {
    Frame::from_message(Origin::Server, message).expect("a server frame")
}

fn sign(petition: u32) -> Frame {
    client_frame(&CmsgPetitionSign {
        petition: Guid::item(petition),
        unk: 1,
    })
}

fn offer(petition: u32, target: u32) -> Frame {
    client_frame(&CmsgOfferPetition {
        unk: 0,
        petition: Guid::item(petition),
        target: Guid::player(target),
    })
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one frame within [`STEP`] and checks it is exactly `want`.
async fn expect_frame<R: AsyncRead + Unpin>(r: &mut R, want: &Frame, what: &str) -> Result<()> {
    let got = timeout(STEP, read_frame(r, want.origin()))
        .await
        .with_context(|| format!("{what}: no frame within {STEP:?}"))?
        .with_context(|| format!("{what}: read failed"))?
        .with_context(|| format!("{what}: EOF instead of {want:?}"))?;
    ensure!(
        got.as_bytes() == want.as_bytes(),
        "{what}: got {got:?}, want {want:?}"
    );
    Ok(())
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A clean EOF (FIN).
    Eof,
    /// A read error, such as a reset.
    Error,
}

/// Reads until the connection ends (EOF or an error such as a reset), for at most
/// `limit`; returns the bytes read before the end and how it ended.
async fn read_to_close<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: Duration,
    what: &str,
) -> Result<(Vec<u8>, Ending)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, r.read(&mut buf)).await {
            Err(_) => bail!(
                "{what}: still open after {limit:?} ({} bytes read)",
                got.len()
            ),
            Ok(Ok(0)) => return Ok((got, Ending::Eof)),
            Ok(Err(_)) => return Ok((got, Ending::Error)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// [`read_to_close`], the bytes only.
async fn read_until_closed<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: Duration,
    what: &str,
) -> Result<Vec<u8>> {
    Ok(read_to_close(r, limit, what).await?.0)
}

/// Asserts two byte streams are identical, reporting the first difference.
fn ensure_same_stream(what: &str, got: &[u8], want: &[u8]) -> Result<()> {
    match stream_difference(got, want) {
        Some(difference) => bail!("{what}: {difference}"),
        None => Ok(()),
    }
}

/// Writes `bytes` in seeded random-sized chunks (headers split too).
async fn write_chunked<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8], seed: u64) -> Result<()> {
    let mut rng = SampleRng::new(seed);
    let mut at = 0;
    while at < bytes.len() {
        let n = if rng.index(4) == 0 {
            1 + rng.index(7)
        } else {
            1 + rng.index(20_000)
        };
        let n = n.min(bytes.len() - at);
        timeout(STEP, w.write_all(&bytes[at..at + n]))
            .await
            .context("chunk write timed out")??;
        at += n;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The relay: a database connection the test can break
// ---------------------------------------------------------------------------------

/// How a [`Relay`] is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Every relayed connection is reset; new ones are accepted and reset at once.
    Refuse,
    /// Every relayed connection stops moving bytes (its sockets stay open); new ones
    /// are accepted and never answered. A network partition.
    Blackhole,
}

struct RelayState {
    cut: Option<Cut>,
    /// Cancelled to stop every connection relayed so far.
    generation: CancellationToken,
    /// Connections still moving bytes (or connecting).
    live: usize,
    /// Sockets a blackhole holds open and unanswered, reset at the restore.
    held: Vec<TcpStream>,
}

/// A TCP relay toward one database server; see [`Cut`].
struct Relay {
    addr: SocketAddr,
    state: Arc<Mutex<RelayState>>,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(target: &str) -> Result<Relay> {
        let target: SocketAddr = target.parse()?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(RelayState {
            cut: None,
            generation: CancellationToken::new(),
            live: 0,
            held: Vec::new(),
        }));
        let accepted = Arc::new(AtomicU64::new(0));
        let (st, count) = (Arc::clone(&state), Arc::clone(&accepted));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let mut state = lock(&st);
                match state.cut {
                    Some(Cut::Refuse) => {
                        let _ = client.set_zero_linger();
                        drop(client);
                    }
                    Some(Cut::Blackhole) => state.held.push(client),
                    None => {
                        state.live += 1;
                        let generation = state.generation.clone();
                        tokio::spawn(relay_connection(
                            client,
                            target,
                            generation,
                            Arc::clone(&st),
                        ));
                    }
                }
            }
        });
        Ok(Relay {
            addr,
            state,
            accepted,
            task,
        })
    }

    /// Breaks the relay; returns once no relayed connection moves a byte any more.
    async fn cut(&self, how: Cut) -> Result<()> {
        {
            let mut state = lock(&self.state);
            state.cut = Some(how);
            state.generation.cancel();
            state.generation = CancellationToken::new();
        }
        eventually("every relayed connection stopped", STEP, || {
            let stopped = lock(&self.state).live == 0;
            async move { Ok(stopped.then_some(())) }
        })
        .await
    }

    /// Mends the relay: the sockets a blackhole held are reset (before this returns),
    /// new connections are relayed.
    fn restore(&self) {
        let mut state = lock(&self.state);
        state.cut = None;
        for held in state.held.drain(..) {
            let _ = held.set_zero_linger();
        }
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        self.restore();
        lock(&self.state).generation.cancel();
    }
}

/// Relays one connection until either side closes or its generation is cut: a
/// refusal resets both sides, a blackhole hands them to the relay to hold.
async fn relay_connection(
    mut client: TcpStream,
    target: SocketAddr,
    generation: CancellationToken,
    state: Arc<Mutex<RelayState>>,
) {
    let mut sockets = Vec::new();
    let server = tokio::select! {
        server = TcpStream::connect(target) => server.ok(),
        _ = generation.cancelled() => None,
    };
    let mut cut = server.is_none();
    if let Some(mut server) = server {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        cut = tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
            _ = generation.cancelled() => true,
        };
        sockets.push(server);
    }
    sockets.push(client);
    let mut state = lock(&state);
    state.live -= 1;
    if cut && state.cut == Some(Cut::Blackhole) {
        state.held.extend(sockets);
    } else if cut {
        for socket in &sockets {
            let _ = socket.set_zero_linger();
        }
    }
}

// ---------------------------------------------------------------------------------
// The scripted worldserver (framed)
// ---------------------------------------------------------------------------------

/// A frame a [`World`] received: connection number, arrival time, frame.
type Logged = (usize, Instant, Frame);

/// A scripted worldserver: answers logins and pings, records every client frame.
struct World {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Logged>>>,
    task: JoinHandle<()>,
}

impl World {
    async fn start() -> Result<World> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let recorder = Arc::clone(&log);
        let task = tokio::spawn(async move {
            let mut connections = 0;
            while let Ok((stream, _)) = listener.accept().await {
                connections += 1;
                tokio::spawn(serve_world(stream, connections, Arc::clone(&recorder)));
            }
        });
        Ok(World { addr, log, task })
    }

    fn count(&self, opcode: Opcode) -> usize {
        lock(&self.log)
            .iter()
            .filter(|(_, _, f)| f.opcode() == opcode)
            .count()
    }

    /// Waits until the `n`th (1-based) frame of `opcode` has arrived; returns it with
    /// its arrival time.
    async fn nth(&self, opcode: Opcode, n: usize, limit: Duration) -> Result<(Instant, Frame)> {
        eventually(
            &format!("{opcode} number {n} at the worldserver"),
            limit,
            || {
                let found = lock(&self.log)
                    .iter()
                    .filter(|(_, _, f)| f.opcode() == opcode)
                    .nth(n - 1)
                    .map(|(_, at, f)| (*at, f.clone()));
                async move { Ok(found) }
            },
        )
        .await
    }

    /// Sends `frame` from this gateway and checks the worldserver receives it,
    /// byte for byte, within `limit`; returns how long it took.
    async fn expect_forwarded(
        &self,
        gateway: &mut Gateway,
        frame: &Frame,
        limit: Duration,
    ) -> Result<Duration> {
        let n = self.count(frame.opcode()) + 1;
        let sent = Instant::now();
        gateway.send_frame(frame).await?;
        let (at, got) = self.nth(frame.opcode(), n, STEP).await?;
        ensure!(
            got.as_bytes() == frame.as_bytes(),
            "{}: forwarded {got:?}, sent {frame:?}",
            gateway.who
        );
        let took = at.saturating_duration_since(sent);
        ensure!(
            took <= limit,
            "{}: {} reached the worldserver after {took:?}, more than {limit:?}",
            gateway.who,
            frame.opcode()
        );
        Ok(took)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_world(stream: TcpStream, connection: usize, log: Arc<Mutex<Vec<Logged>>>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut frames = FramedRead::new(read, FrameCodec::client());
    while let Some(Ok(frame)) = frames.next().await {
        lock(&log).push((connection, Instant::now(), frame.clone()));
        let reply = match frame.opcode() {
            Opcode::CMSG_PLAYER_LOGIN => Some(server_frame(&SmsgLoginVerifyWorld {
                map: 0,
                x: -8949.95,
                y: -132.49,
                z: 83.53,
                orientation: 0.0,
            })),
            Opcode::CMSG_PING => frame
                .body()
                .get(..4)
                .and_then(|seq| Frame::new(Origin::Server, Opcode::SMSG_PONG, seq).ok()),
            // Anything else of this family is echoed, so pass-through shows.
            Opcode::CMSG_GUILD_ROSTER => Some(server(Opcode::SMSG_GUILD_ROSTER, frame.body())),
            _ => None,
        };
        if let Some(reply) = reply {
            if write.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The scripted gateway (framed)
// ---------------------------------------------------------------------------------

/// A scripted ToCloud9 gateway connection: one player session, plain frames.
struct Gateway {
    who: String,
    reader: FramedRead<OwnedReadHalf, FrameCodec>,
    writer: OwnedWriteHalf,
    early: VecDeque<Frame>,
}

impl Gateway {
    async fn connect(addr: SocketAddr, who: &str) -> Result<Gateway> {
        let stream = timeout(STEP, TcpStream::connect(addr))
            .await
            .with_context(|| format!("{who}: connect timed out"))??;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        Ok(Gateway {
            who: who.to_owned(),
            reader: FramedRead::new(read, FrameCodec::server()),
            writer,
            early: VecDeque::new(),
        })
    }

    async fn logged_in(addr: SocketAddr, who: &str, guid: u32) -> Result<Gateway> {
        let mut gateway = Gateway::connect(addr, who).await?;
        gateway.log_in(guid).await?;
        Ok(gateway)
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<()> {
        timeout(STEP, self.writer.write_all(frame.as_bytes()))
            .await
            .with_context(|| format!("{}: write timed out", self.who))?
            .with_context(|| format!("{}: write failed", self.who))
    }

    async fn read(&mut self, limit: Duration) -> Result<Option<Frame>> {
        match timeout(limit, self.reader.next()).await {
            Err(_) => Ok(None),
            Ok(None) => bail!("{}: the sidecar closed the connection", self.who),
            Ok(Some(Err(e))) => bail!("{}: unreadable frame: {e}", self.who),
            Ok(Some(Ok(frame))) => Ok(Some(frame)),
        }
    }

    async fn recv(&mut self, limit: Duration) -> Result<Option<Frame>> {
        match self.early.pop_front() {
            Some(frame) => Ok(Some(frame)),
            None => self.read(limit).await,
        }
    }

    /// The next frame, which must carry an `M`.
    async fn expect<M: Message>(&mut self, what: &str) -> Result<M> {
        let frame = self
            .recv(STEP)
            .await?
            .with_context(|| format!("{}: no {} within {STEP:?}: {what}", self.who, M::OPCODE))?;
        ensure!(
            frame.opcode() == M::OPCODE,
            "{}: {what}: expected {}, got {frame:?}",
            self.who,
            M::OPCODE
        );
        M::decode(frame.body())
            .with_context(|| format!("{}: {what}: undecodable {}", self.who, M::OPCODE))
    }

    async fn log_in(&mut self, guid: u32) -> Result<()> {
        self.send_frame(&client_frame(&CmsgPlayerLogin {
            guid: Guid::player(guid),
        }))
        .await?;
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self
                .read(left)
                .await?
                .with_context(|| format!("{}: no SMSG_LOGIN_VERIFY_WORLD", self.who))?;
            if frame.opcode() == Opcode::SMSG_LOGIN_VERIFY_WORLD {
                return Ok(());
            }
            self.early.push_back(frame);
        }
    }

    /// The ordering fence: a ping, read up to its pong. Returns the frames that came
    /// before the pong.
    async fn fence(&mut self) -> Result<Vec<Frame>> {
        static SEQ: AtomicU32 = AtomicU32::new(1);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut body = seq.to_le_bytes().to_vec();
        body.extend_from_slice(&0u32.to_le_bytes());
        self.send_frame(&client(Opcode::CMSG_PING, &body)).await?;
        let mut before = Vec::new();
        loop {
            let frame = self
                .recv(STEP)
                .await?
                .with_context(|| format!("{}: no SMSG_PONG for ping {seq}", self.who))?;
            if frame.opcode() == Opcode::SMSG_PONG && frame.body() == seq.to_le_bytes() {
                return Ok(before);
            }
            before.push(frame);
        }
    }

    /// Nothing arrives for `quiet`, and nothing is queued before a fence either.
    async fn expect_silence(&mut self, quiet: Duration, what: &str) -> Result<()> {
        if let Some(frame) = self.recv(quiet).await? {
            bail!("{}: {what}: expected silence, got {frame:?}", self.who);
        }
        let before = self.fence().await?;
        ensure!(
            before.is_empty(),
            "{}: {what}: expected silence, got {before:?}",
            self.who
        );
        Ok(())
    }

    /// A pass-through round: a frame the worldserver echoes comes back intact.
    async fn echo(&mut self, body: &[u8]) -> Result<()> {
        self.send_frame(&client(Opcode::CMSG_GUILD_ROSTER, body))
            .await?;
        let want = server(Opcode::SMSG_GUILD_ROSTER, body);
        let got = self
            .recv(STEP)
            .await?
            .with_context(|| format!("{}: no echo", self.who))?;
        ensure!(
            got.as_bytes() == want.as_bytes(),
            "{}: echo {got:?}, want {want:?}",
            self.who
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Sidecars
// ---------------------------------------------------------------------------------

/// A sidecar running in this test's runtime, wired as the binary's `serve()`.
struct Sidecar {
    addr: SocketAddr,
    background: CancellationToken,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Sidecar {
    async fn start<H: Handler>(
        mut config: Config,
        databases: Databases,
        handler: H,
        background: CancellationToken,
    ) -> Result<Sidecar> {
        config.listen = "127.0.0.1:0".parse()?;
        config.validate()?;
        let server = Server::bind_with(config, databases, handler).await?;
        let addr = server.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Ok(Sidecar {
            addr,
            background,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A pass-through sidecar.
    async fn pass_through(config: Config) -> Result<Sidecar> {
        Sidecar::start(
            config,
            Databases::default(),
            PassThrough,
            CancellationToken::new(),
        )
        .await
    }

    /// The accept loop has not ended (no panic, no error).
    fn ensure_running(&self) -> Result<()> {
        let running = self.task.as_ref().is_some_and(|t| !t.is_finished());
        ensure!(running, "the sidecar's server task ended");
        Ok(())
    }

    fn begin_stop(&mut self) {
        self.background.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn stop(mut self) -> Result<()> {
        self.begin_stop();
        if let Some(task) = self.task.take() {
            timeout(Duration::from_secs(15), task)
                .await
                .context("the sidecar did not stop")?
                .context("the sidecar panicked")?
                .context("the sidecar failed")?;
        }
        Ok(())
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.begin_stop();
    }
}

/// A configuration every test starts from.
fn base_config(id: &str, upstream: SocketAddr) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("an address"),
        upstream: upstream.to_string(),
        sidecar_id: id.to_owned(),
        realm_id: 1,
        resolve_timeout_ms: RESOLVE_TIMEOUT.as_millis() as u64,
        connect_backoff_ms: 20,
        shutdown_grace_secs: 1,
        ..Config::default()
    }
}

/// A charter sidecar over MariaDB at `mysql_url` and, if given, the bus at `bus_url`.
async fn charter_sidecar(config: Config, bus_url: Option<&str>) -> Result<Sidecar> {
    let store = Db::new(&config.characters_db_url)?;
    let bus = match bus_url {
        Some(url) => Some(
            timeout(
                STEP,
                Bus::connect(
                    url,
                    config.realm_id,
                    &config.sidecar_id,
                    config.presence_expiry(),
                ),
            )
            .await
            .context("bus connect timed out")??,
        ),
        None => None,
    };
    let config = Config {
        bus_url: bus_url.unwrap_or_default().to_owned(),
        ..config
    };
    let handler = CharterHandler::new(store.clone(), bus, config.charter_settings());
    let background = CancellationToken::new();
    handler.start_background(background.clone());
    let databases = Databases {
        characters: Some(store),
        auth: None,
    };
    Sidecar::start(config, databases, handler, background).await
}

/// Connects a raw gateway to the sidecar and accepts the sidecar's worldserver
/// connection.
async fn open(sidecar: SocketAddr, ws: &TcpListener) -> Result<(TcpStream, TcpStream)> {
    let gateway = timeout(STEP, TcpStream::connect(sidecar))
        .await
        .context("gateway connect timed out")??;
    let (upstream, _) = timeout(STEP, ws.accept())
        .await
        .context("the sidecar never connected upstream")??;
    gateway.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    Ok((gateway, upstream))
}

/// One raw round trip over an open session: a client frame to the worldserver and a
/// server frame back, both checked byte for byte.
async fn raw_round(gw: &mut TcpStream, up: &mut TcpStream, n: usize, size: usize) -> Result<()> {
    let mut rng = SampleRng::new(n as u64 + 17);
    let up_frame = client(Opcode::CMSG_GUILD_ROSTER, &rng.bytes(size.min(10_000)));
    let down_frame = server(Opcode::SMSG_GUILD_ROSTER, &rng.bytes(size));
    timeout(STEP, gw.write_all(up_frame.as_bytes())).await??;
    expect_frame(up, &up_frame, &format!("round {n}: to the worldserver")).await?;
    timeout(STEP, up.write_all(down_frame.as_bytes())).await??;
    expect_frame(gw, &down_frame, &format!("round {n}: to the gateway")).await?;
    Ok(())
}

/// A healthy session that keeps doing rounds until `stop`, failing on any lost,
/// changed or slow frame; returns how many rounds it did.
fn healthy_session(
    mut gw: TcpStream,
    mut up: TcpStream,
    stop: Arc<AtomicBool>,
    max_round_trip: Duration,
) -> JoinHandle<Result<usize>> {
    tokio::spawn(async move {
        let mut n = 0;
        let mut slowest = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            let size = if n % 10 == 9 { 40_000 } else { 10 + n % 190 };
            let started = Instant::now();
            raw_round(&mut gw, &mut up, n, size).await?;
            let took = started.elapsed();
            slowest = slowest.max(took);
            ensure!(
                took <= max_round_trip,
                "round {n} of a healthy session took {took:?}"
            );
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("healthy session: {n} rounds, slowest {slowest:?}");
        ensure!(n > 0, "the healthy session did no round");
        Ok(n)
    })
}

// ---------------------------------------------------------------------------------
// 1. MariaDB cut in the middle of a session
// ---------------------------------------------------------------------------------

/// The players who signed the charter item `petition`, by guid.
async fn signers(db: &MariaDb, petition: u32) -> Result<Vec<u32>> {
    let mut conn = db.pool.get_conn().await?;
    Ok(conn
        .exec(
            "SELECT playerguid FROM petition_sign WHERE petitionguid = ? ORDER BY playerguid",
            (petition,),
        )
        .await?)
}

async fn add_petition(db: &MariaDb, owner: u32, petition: u32, name: &str) {
    db.exec(
        "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) \
         VALUES (?, ?, ?, ?, ?)",
        (owner, petition, petition, name, GUILD_CHARTER_TYPE),
    )
    .await;
}

/// A sign the sidecar resolves: `SMSG_PETITION_SIGN_RESULTS` OK for `guid`, nothing
/// to the worldserver.
async fn expect_sign_resolved(
    gateway: &mut Gateway,
    world: &World,
    petition: u32,
    guid: u32,
) -> Result<()> {
    let before = world.count(Opcode::CMSG_PETITION_SIGN);
    gateway.send_frame(&sign(petition)).await?;
    let result = gateway
        .expect::<SmsgPetitionSignResults>("the sign is resolved")
        .await?;
    ensure!(
        result
            == SmsgPetitionSignResults {
                petition: Guid::item(petition),
                signer: Guid::player(guid),
                result: sign_result::OK,
            },
        "{}: {result:?}",
        gateway.who
    );
    let stray = gateway.fence().await?;
    ensure!(stray.is_empty(), "{}: also got {stray:?}", gateway.who);
    ensure!(
        world.count(Opcode::CMSG_PETITION_SIGN) == before,
        "{}: a resolved sign reached the worldserver",
        gateway.who
    );
    Ok(())
}

/// A sign that fails open: the worldserver gets the original within the resolve
/// timeout, the gateway is answered nothing, the session goes on.
async fn expect_sign_failed_open(
    gateway: &mut Gateway,
    world: &World,
    petition: u32,
) -> Result<Duration> {
    let took = world
        .expect_forwarded(gateway, &sign(petition), RESOLVE_TIMEOUT + SLACK)
        .await?;
    gateway
        .expect_silence(SILENCE, "a failed-open sign is not answered")
        .await?;
    Ok(took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cut_mid_session_fails_open() -> Result<()> {
    timeout(WHOLE_TEST, mariadb_cut())
        .await
        .context("the test took too long")?
}

async fn mariadb_cut() -> Result<()> {
    const CHARTER: u32 = 500;
    let db = MariaDb::create("fault_mysql").await;
    for (guid, name) in [
        (1, "Owner"),
        (2, "Second"),
        (3, "Third"),
        (4, "Fourth"),
        (5, "Fifth"),
    ] {
        db.character(guid, guid, name, 1, None).await;
    }
    add_petition(&db, 1, CHARTER, "Relayed").await;
    let relay = Relay::start(MARIADB_ADDR).await?;
    let world = World::start().await?;
    // prefer_socket=false: else mysql_async moves to MariaDB's Unix socket and
    // around the relay.
    let config = Config {
        characters_db_url: format!(
            "mysql://root@{}/{}?prefer_socket=false",
            relay.addr, db.name
        ),
        ..base_config("F1", world.addr)
    };
    let sidecar = charter_sidecar(config, None).await?;

    let mut second = Gateway::logged_in(sidecar.addr, "second 2", 2).await?;
    let mut third = Gateway::logged_in(sidecar.addr, "third 3", 3).await?;
    expect_sign_resolved(&mut third, &world, CHARTER, 3).await?;
    ensure!(relay.accepted() > 0, "the sidecar bypassed the relay");

    // -- Blackhole: the database stops answering in the middle of the sessions.
    relay.cut(Cut::Blackhole).await?;
    let took = expect_sign_failed_open(&mut second, &world, CHARTER).await?;
    eprintln!("blackholed MariaDB: sign failed open after {took:?}");
    ensure!(
        took >= RESOLVE_TIMEOUT - Duration::from_millis(50),
        "failed open after {took:?}, before the resolve timeout: the database cannot have answered"
    );
    second.echo(b"the session stays open").await?;
    // A session opened during the outage passes traffic, and fails open too.
    let mut fourth = Gateway::logged_in(sidecar.addr, "fourth 4 (during the outage)", 4).await?;
    fourth.echo(&[4; 3000]).await?;
    expect_sign_failed_open(&mut fourth, &world, CHARTER).await?;
    fourth.echo(b"still open").await?;
    third.echo(b"an older session too").await?;
    ensure!(
        signers(&db, CHARTER).await? == [3],
        "no signature was written during the outage"
    );

    // -- Restored: resolved again, by the same pools, without a restart.
    relay.restore();
    expect_sign_resolved(&mut second, &world, CHARTER, 2).await?;
    expect_sign_resolved(&mut fourth, &world, CHARTER, 4).await?;

    // -- Refused: connections reset, new ones refused; failing open is quick.
    relay.cut(Cut::Refuse).await?;
    let mut fifth = Gateway::logged_in(sidecar.addr, "fifth 5 (during the outage)", 5).await?;
    let took = expect_sign_failed_open(&mut fifth, &world, CHARTER).await?;
    eprintln!("refused MariaDB: sign failed open after {took:?}");
    fifth.echo(b"open").await?;
    second.echo(b"open").await?;
    relay.restore();
    expect_sign_resolved(&mut fifth, &world, CHARTER, 5).await?;

    ensure!(
        signers(&db, CHARTER).await? == [2, 3, 4, 5],
        "one row per resolved sign"
    );
    ensure!(
        world.count(Opcode::CMSG_PETITION_SIGN) == 3,
        "exactly the three failed-open signs reached the worldserver"
    );
    sidecar.ensure_running()?;
    drop((second, third, fourth, fifth));
    sidecar.stop().await
}

// ---------------------------------------------------------------------------------
// 2. PostgreSQL cut and back
// ---------------------------------------------------------------------------------

/// The sidecar the bus places `character` behind, read from PostgreSQL directly.
async fn located(pg: &tokio_postgres::Client, character: u32) -> Result<Option<String>> {
    let row = pg
        .query_opt(
            &format!("SELECT sidecar_id FROM {SCHEMA}.online WHERE character_guid = $1"),
            &[&i64::from(character)],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn wait_located(pg: &tokio_postgres::Client, character: u32, sidecar: &str) -> Result<()> {
    eventually(
        &format!("character {character} behind {sidecar}"),
        STEP,
        || async move {
            Ok((located(pg, character).await?.as_deref() == Some(sidecar)).then_some(()))
        },
    )
    .await
}

/// `(character, delivered)` of every outbox event for `sidecar`, oldest first.
async fn outbox(pg: &tokio_postgres::Client, sidecar: &str) -> Result<Vec<(i64, bool)>> {
    let rows = pg
        .query(
            &format!(
                "SELECT character_guid, delivered_at IS NOT NULL FROM {SCHEMA}.outbox \
                 WHERE target_sidecar = $1 ORDER BY id"
            ),
            &[&sidecar],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Collects every frame that arrives within `quiet` of the previous one.
async fn drain(gateway: &mut Gateway, quiet: Duration) -> Result<Vec<Frame>> {
    let mut frames = Vec::new();
    while let Some(frame) = gateway.recv(quiet).await? {
        frames.push(frame);
    }
    frames.extend(gateway.fence().await?);
    Ok(frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_and_back_loses_no_event() -> Result<()> {
    timeout(WHOLE_TEST, postgres_cut())
        .await
        .context("the test took too long")?
}

async fn postgres_cut() -> Result<()> {
    // 500 of 1 (on A), 501 of 4 (on B), 502 of 2 (on B).
    const ALPHA: u32 = 500;
    const BETA: u32 = 501;
    const GAMMA: u32 = 502;
    let db = MariaDb::create("fault_pg").await;
    for (guid, name) in [
        (1, "OwnerA"),
        (2, "TargetB"),
        (3, "SignerA"),
        (4, "OwnerB"),
        (5, "TargetA"),
    ] {
        db.character(guid, guid, name, 1, None).await;
    }
    add_petition(&db, 1, ALPHA, "Alpha").await;
    add_petition(&db, 4, BETA, "Beta").await;
    add_petition(&db, 2, GAMMA, "Gamma").await;
    let pg = PgDb::create("fault_pg").await;
    let observer = pg.client().await;
    let relay_a = Relay::start(POSTGRES_ADDR).await?;
    let relay_b = Relay::start(POSTGRES_ADDR).await?;
    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let sidecar = |id: &str, world: &World, relay: &Relay| {
        let config = Config {
            characters_db_url: db.url(),
            presence_expiry_secs: 30,
            bus_poll_ms: 150,
            ..base_config(id, world.addr)
        };
        let bus_url = format!("postgres://postgres@{}/{}", relay.addr, pg.name);
        async move { charter_sidecar(config, Some(&bus_url)).await }
    };
    let a = sidecar("A", &world_a, &relay_a).await?;
    let b = sidecar("B", &world_b, &relay_b).await?;
    let mut g1 = Gateway::logged_in(a.addr, "owner 1 @A", 1).await?;
    let mut g3 = Gateway::logged_in(a.addr, "signer 3 @A", 3).await?;
    let mut g5 = Gateway::logged_in(a.addr, "target 5 @A", 5).await?;
    let mut g2 = Gateway::logged_in(b.addr, "target 2 @B", 2).await?;
    let mut g4 = Gateway::logged_in(b.addr, "owner 4 @B", 4).await?;
    for (guid, at) in [(1, "A"), (3, "A"), (5, "A"), (2, "B"), (4, "B")] {
        wait_located(&observer, guid, at).await?;
    }
    let shown_alpha = server_frame(&SmsgPetitionShowSignatures {
        petition: Guid::item(ALPHA),
        owner: Guid::player(1),
        petition_id: ALPHA,
        signatures: Vec::new(),
    });

    // Before any cut: an offer crosses through the bus.
    g1.send_frame(&offer(ALPHA, 2)).await?;
    let first = g2.recv(STEP).await?.context("the first offer")?;
    ensure!(first.as_bytes() == shown_alpha.as_bytes(), "{first:?}");
    let obs = &observer;
    eventually("the first offer marked delivered", STEP, || async move {
        Ok((outbox(obs, "B").await? == [(2, true)]).then_some(()))
    })
    .await?;

    // -- B's bus is cut: its pool and its LISTEN connection are reset, and stay down.
    relay_b.cut(Cut::Refuse).await?;
    // A's bus is up: A publishes two offers to 2 and a sign result to 4, both on B.
    for _ in 0..2 {
        g1.send_frame(&offer(ALPHA, 2)).await?;
    }
    ensure!(
        g1.fence().await?.is_empty(),
        "the offerer is answered nothing"
    );
    g3.send_frame(&sign(BETA)).await?;
    let signed = g3.expect::<SmsgPetitionSignResults>("3 signs 501").await?;
    ensure!(signed.result == sign_result::OK, "{signed:?}");
    ensure!(g3.fence().await?.is_empty());
    // The owner is told off the signer's clock: wait for the event to be written.
    let expected = [(2, true), (2, false), (2, false), (4, false)];
    let obs = &observer;
    eventually("the sign result in B's outbox", STEP, || async move {
        Ok((outbox(obs, "B").await? == expected).then_some(()))
    })
    .await
    .context("B's outbox while its bus is cut")?;
    // B cannot locate 5: its cross-server offer fails open, unchanged.
    let took = world_b
        .expect_forwarded(&mut g2, &offer(GAMMA, 5), RESOLVE_TIMEOUT + SLACK)
        .await?;
    eprintln!("B's offer with its bus refused failed open after {took:?}");
    // Nothing reaches B's players over several poll periods.
    g2.expect_silence(Duration::from_secs(1), "B's bus is cut")
        .await?;
    g4.expect_silence(SILENCE, "B's bus is cut").await?;

    // -- A's bus goes into a blackhole too: A's cross-server offer fails open after
    // the resolve timeout.
    relay_a.cut(Cut::Blackhole).await?;
    let took = world_a
        .expect_forwarded(&mut g1, &offer(ALPHA, 2), RESOLVE_TIMEOUT + SLACK)
        .await?;
    eprintln!("A's offer with its bus blackholed failed open after {took:?}");
    g1.echo(b"A's sessions pass traffic").await?;
    g5.echo(b"A's sessions pass traffic").await?;
    g4.echo(b"B's sessions pass traffic").await?;

    // -- Both come back: B delivers what waited, exactly once.
    relay_a.restore();
    relay_b.restore();
    for n in 1..=2 {
        let frame = g2
            .recv(STEP)
            .await?
            .with_context(|| format!("pending offer {n} after the restore"))?;
        ensure!(frame.as_bytes() == shown_alpha.as_bytes(), "{frame:?}");
    }
    let told = g4
        .expect::<SmsgPetitionSignResults>("the owner hears of the signature")
        .await?;
    ensure!(told == signed, "{told:?}");
    // Several poll periods: nothing twice, and not the offer that failed open.
    let extra = drain(&mut g2, Duration::from_secs(1)).await?;
    ensure!(extra.is_empty(), "delivered again: {extra:?}");
    let extra = drain(&mut g4, SILENCE).await?;
    ensure!(extra.is_empty(), "delivered again: {extra:?}");
    eventually("B's outbox delivered", STEP, || async move {
        let events = outbox(obs, "B").await?;
        Ok(events.iter().all(|(_, delivered)| *delivered).then_some(()))
    })
    .await?;
    ensure!(outbox(&observer, "B").await?.len() == 4);

    // -- Both buses work again, both ways.
    g2.send_frame(&offer(GAMMA, 5)).await?;
    let shown = g5
        .expect::<SmsgPetitionShowSignatures>("B's offer reaches 5 on A")
        .await?;
    ensure!(shown.petition == Guid::item(GAMMA), "{shown:?}");
    g1.send_frame(&offer(ALPHA, 2)).await?;
    let again = g2.recv(STEP).await?.context("an offer after the restore")?;
    ensure!(again.as_bytes() == shown_alpha.as_bytes(), "{again:?}");
    ensure!(drain(&mut g2, SILENCE).await?.is_empty());
    ensure!(drain(&mut g5, SILENCE).await?.is_empty());
    eventually("every outbox event delivered", STEP, || async move {
        let (to_a, to_b) = (outbox(obs, "A").await?, outbox(obs, "B").await?);
        Ok((to_a.len() == 1
            && to_b.len() == 5
            && to_a.iter().chain(&to_b).all(|(_, delivered)| *delivered))
        .then_some(()))
    })
    .await?;
    ensure!(
        world_a.count(Opcode::CMSG_OFFER_PETITION) == 1
            && world_b.count(Opcode::CMSG_OFFER_PETITION) == 1,
        "exactly the two failed-open offers reached a worldserver"
    );
    ensure!(world_a.count(Opcode::CMSG_PETITION_SIGN) == 0);
    a.ensure_running()?;
    b.ensure_running()?;
    drop((g1, g2, g3, g4, g5));
    a.stop().await?;
    b.stop().await
}

// ---------------------------------------------------------------------------------
// 2b. A signature committed while the bus stalls
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_committed_during_bus_stall_is_answered() -> Result<()> {
    timeout(WHOLE_TEST, committed_sign())
        .await
        .context("the test took too long")?
}

async fn committed_sign() -> Result<()> {
    const CHARTER: u32 = 510;
    let db = MariaDb::create("fault_stall").await;
    db.character(1, 1, "OwnerB", 1, None).await;
    db.character(2, 2, "SignerA", 1, None).await;
    add_petition(&db, 1, CHARTER, "Stalled").await;
    let pg = PgDb::create("fault_stall").await;
    let observer = pg.client().await;
    let relay_a = Relay::start(POSTGRES_ADDR).await?;
    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let config = |id: &str, world: &World| Config {
        characters_db_url: db.url(),
        presence_expiry_secs: 30,
        bus_poll_ms: 150,
        ..base_config(id, world.addr)
    };
    let a = charter_sidecar(
        config("A", &world_a),
        Some(&format!("postgres://postgres@{}/{}", relay_a.addr, pg.name)),
    )
    .await?;
    let b = charter_sidecar(config("B", &world_b), Some(&pg.url())).await?;
    let mut owner = Gateway::logged_in(b.addr, "owner 1 @B", 1).await?;
    let mut signer = Gateway::logged_in(a.addr, "signer 2 @A", 2).await?;
    wait_located(&observer, 1, "B").await?;
    wait_located(&observer, 2, "A").await?;

    relay_a.cut(Cut::Blackhole).await?;
    signer.send_frame(&sign(CHARTER)).await?;
    let answer = signer.recv(RESOLVE_TIMEOUT + SLACK + SLACK).await?;
    let rows = signers(&db, CHARTER).await?;
    ensure!(rows == [2], "the signature is committed: {rows:?}");
    let forwarded = world_a.count(Opcode::CMSG_PETITION_SIGN);
    relay_a.restore();
    ensure!(
        forwarded == 0,
        "a sign the sidecar committed was also handed to the worldserver"
    );
    let answer = answer.context("the signer of a committed signature was answered nothing")?;
    ensure!(
        answer.opcode() == Opcode::SMSG_PETITION_SIGN_RESULTS,
        "{answer:?}"
    );
    let result = SmsgPetitionSignResults::decode(answer.body())?;
    ensure!(result.result == sign_result::OK, "{result:?}");
    // (Telling the owner is best effort while the bus is down; not checked here.)
    owner.echo(b"the owner's session is fine").await?;
    drop((owner, signer));
    a.stop().await?;
    b.stop().await
}

// ---------------------------------------------------------------------------------
// 3. The worldserver drops a connection inside a large frame
// ---------------------------------------------------------------------------------

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
    timeout(WHOLE_TEST, killed_mid_stream())
        .await
        .context("the test took too long")?
}

async fn killed_mid_stream() -> Result<()> {
    let ws = TcpListener::bind("127.0.0.1:0").await?;
    let sidecar = Sidecar::pass_through(base_config("F3", ws.local_addr()?)).await?;

    // A healthy session streams throughout.
    let (gw, up) = open(sidecar.addr, &ws).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_session(gw, up, Arc::clone(&stop), Duration::from_secs(2));

    let mut rng = SampleRng::new(0xDEAD);
    for kill in [Kill::FinMidBody, Kill::ResetMidBody, Kill::FinMidHeader] {
        let (mut gw, mut up) = open(sidecar.addr, &ws).await?;
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
    let (mut gw, mut up) = open(sidecar.addr, &ws).await?;
    for n in 0..5 {
        raw_round(&mut gw, &mut up, n, 50_000).await?;
    }
    stop.store(true, Ordering::Relaxed);
    healthy.await.context("the healthy session panicked")??;
    sidecar.ensure_running()?;
    drop((gw, up));
    sidecar.stop().await
}

// ---------------------------------------------------------------------------------
// 4. A gateway sending garbage
// ---------------------------------------------------------------------------------

/// Client opcodes the charter resolver decodes, to feed it malformed bodies.
const DECODED: [Opcode; 10] = [
    Opcode::CMSG_PLAYER_LOGIN,
    Opcode::CMSG_AUTH_SESSION,
    Opcode::CMSG_OFFER_PETITION,
    Opcode::CMSG_PETITION_SIGN,
    Opcode::CMSG_PETITION_QUERY,
    Opcode::CMSG_PETITION_SHOW_SIGNATURES,
    Opcode::MSG_PETITION_DECLINE,
    Opcode::CMSG_TURN_IN_PETITION,
    Opcode::CMSG_GUILD_QUERY,
    Opcode::CMSG_PING,
];

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
            for _ in 0..2000 {
                let opcode = DECODED[rng.index(DECODED.len())];
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
    timeout(WHOLE_TEST, gateway_garbage_flow())
        .await
        .context("the test took too long")?
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
    let sidecar = Sidecar::start(
        base_config("F4", ws_addr),
        Databases::default(),
        handler,
        CancellationToken::new(),
    )
    .await?;
    // A pass-through sidecar accepting any client size: a 65 KiB header is a frame.
    let roomy = Sidecar::pass_through(Config {
        max_client_frame: 0xFFFF,
        ..base_config("F4-roomy", ws_addr)
    })
    .await?;

    let (gw, up) = open(sidecar.addr, &ws).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_session(gw, up, Arc::clone(&stop), Duration::from_secs(2));

    // -- Garbage from four gateways at once; each stream reaches the worldserver
    // exactly as sent, and the other direction keeps working.
    let mut sessions = Vec::new();
    for seed in 1..=4u64 {
        let (gw, up) = open(sidecar.addr, &ws).await?;
        sessions.push(tokio::spawn(async move {
            let sent = garbage(seed);
            let (mut gw_read, mut gw_write) = gw.into_split();
            let (mut up_read, mut up_write) = up.into_split();
            let writer = async {
                write_chunked(&mut gw_write, &sent, seed).await?;
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
    let (mut gw, mut up) = open(sidecar.addr, &ws).await?;
    gw.write_all(&announce).await?;
    gw.shutdown().await?;
    let got = read_until_closed(&mut up, PROMPT, "the oversized header's upstream").await?;
    ensure_same_stream("oversized header", &got, &announce)?;
    drop((gw, up));
    // Within the limit: an unfinished frame. A close forwards what came, then the
    // close; a reset may discard bytes in flight but never invents any.
    for reset in [false, true] {
        let (mut gw, mut up) = open(roomy.addr, &ws).await?;
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
    let (mut gw, mut up) = open(sidecar.addr, &ws).await?;
    raw_round(&mut gw, &mut up, 1, 40_000).await?;
    let (mut gw2, mut up2) = open(roomy.addr, &ws).await?;
    raw_round(&mut gw2, &mut up2, 2, 40_000).await?;
    stop.store(true, Ordering::Relaxed);
    healthy.await.context("the healthy session panicked")??;
    sidecar.ensure_running()?;
    roomy.ensure_running()?;
    drop((gw, up, gw2, up2));
    sidecar.stop().await?;
    roomy.stop().await
}

// ---------------------------------------------------------------------------------
// 5. A gateway that never reads
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_gateway_that_never_reads() -> Result<()> {
    timeout(WHOLE_TEST, never_reads())
        .await
        .context("the test took too long")?
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
    let sidecar = Sidecar::pass_through(base_config("F5", ws.local_addr()?)).await?;
    let (slow_gw, mut slow_up) = open(sidecar.addr, &ws).await?;
    let (gw, up) = open(sidecar.addr, &ws).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_session(gw, up, Arc::clone(&stop), Duration::from_secs(2));

    let rss_before = rss_kib();
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
    let rss_stalled = rss_kib();
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
    let (mut gw, mut up) = open(sidecar.addr, &ws).await?;
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
    sidecar.ensure_running()?;
    drop((gw, up, slow_up));
    sidecar.stop().await
}
