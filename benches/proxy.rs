//! Proxy throughput and added latency: the sidecar (in-process, built by
//! `Sidecar::build` with no characters database: a pass-through) against a minimal `tokio::io::copy_bidirectional` relay, in plain
//! and `wotlk-crypt` link modes, over 1, 100 and 2,000 sessions.
//!
//! Run with `cargo bench --bench proxy` (about two minutes; one minute without
//! MariaDB). Everything runs in this process, on three tokio runtimes standing for
//! the three processes of a deployment (each hop crosses threads, as it crosses
//! processes there):
//!
//! - `tc9-gateway` (1 worker; `TC9_BENCH_GATEWAY_THREADS`): scripted gateway sessions;
//! - `tc9-proxy` (1 worker; `TC9_BENCH_PROXY_THREADS`): the sidecar or the relay;
//! - `tc9-world` (1 worker; `TC9_BENCH_WORLD_THREADS`): a scripted echoing
//!   worldserver.
//!
//! Every session starts like a real one: the worldserver sends `SMSG_AUTH_CHALLENGE`,
//! the gateway `CMSG_AUTH_SESSION` (account `BENCH<i>`), the worldserver
//! `SMSG_AUTH_RESPONSE`; in `wotlk-crypt` mode both ends encrypt every later header
//! with the account's session key (ARC4-drop1024), and the sidecar, which finds the
//! key in a temporary MariaDB database, decrypts and re-encrypts each header on both
//! legs. The relay and a direct connection carry the same bytes opaquely.
//!
//! Traffic: each gateway request is a client frame with a 16..200-byte body (97 %),
//! 200..1,024 (2 %) or 1..4 KiB (1 %); the worldserver answers each with a server
//! frame of the same body size, or of 4..40 KiB (3 %; above 32 KiB with the 3-byte
//! large header).
//!
//! Per (link, session count), the direct connection, the relay and the sidecar are
//! connected side by side (each with its own worldserver) and measured in
//! interleaved slices (0.5 s each, after 0.15 s of warm-up, the order rotating every
//! round), so that noise from the rest of the machine falls on all of them alike:
//!
//! 1. latency: every session sends requests at a steady rate (see `TC9_BENCH_RATE`),
//!    each stamped with its send time; the
//!    worldserver stamps its answers. One-way latency per packet, both directions,
//!    through the proxy and through nothing (the direct connection); added latency
//!    is the proxy's percentile minus the direct one's.
//! 2. throughput (proxies only): every session keeps a window of requests in flight
//!    (2,000 in total, 2..64 per session); packets and bytes delivered per second,
//!    both directions, headers included; and the CPU time of the proxy runtime's
//!    threads per packet, whose inverse is the proxy's capacity per CPU second (the
//!    fairer ratio when the load generator, not the proxy, is the bottleneck).
//!
//! Environment:
//!
//! - `TC9_BENCH_SECS`: measured seconds per target and phase (default 2.5, in 0.5 s
//!   slices); the default run takes about two minutes.
//! - `TC9_BENCH_SESSIONS`: session counts (default `1,100,2000`).
//! - `TC9_BENCH_RATE`: requests per second per session in the latency phase
//!   (default 20), within 1,000 and `TC9_BENCH_MAX_RATE` (default 10,000) in total:
//!   at 2,000 sessions 5 per second each, 20,000 packets per second through the
//!   proxy, which this 2-CPU machine's gateway and worldserver scripts sustain
//!   without queueing of their own.
//! - `TC9_BENCH_TARGETS`: a subset of `direct,relay,sidecar`, for profiling.
//! - `TC9_BENCH_METRICS=0`: the sidecar without the Prometheus recorder (deployed
//!   sidecars have it; it is also how crypt mode proves that every key was found).
//! - `TC9_BENCH_PROXY_THREADS`, `TC9_BENCH_GATEWAY_THREADS`, `TC9_BENCH_WORLD_THREADS`.
//! - `TC9_BENCH_PIN=1`: the proxy runtime's threads on the last CPU, the gateway's and
//!   worldserver's on the first, so the proxy (relay or sidecar) has a core of its
//!   own, as it would in a deployment, instead of sharing both with the load.
//!
//! Descriptors: a session takes 2 (direct) or 4 (through a proxy) in this process.
//! When the three targets of a session count do not fit `RLIMIT_NOFILE` together
//! (2,000 sessions need 20,000), each proxy is measured in a batch of its own with a
//! direct baseline of its own (two `direct` rows; the relay and sidecar throughput
//! are then measured one batch after the other, not interleaved); counts that do
//! not fit even so are capped, with a note (raise the limit with `ulimit -n`). Without MariaDB the crypt rows print
//! "skipped".

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::BytesMut;
use mysql_async::prelude::*;
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::messages::{CmsgAuthSession, Message, SmsgAuthChallenge};
use tc9_codec::sample::SampleRng;
use tc9_codec::wire::Bytes;
use tc9_codec::{Frame, FrameCodec, HeaderCipher, Opcode, Origin};
use tc9_sidecar::config::{Config, LinkMode};
use tc9_sidecar::Sidecar;
use tc9_testkit::MariaDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;

/// Bytes of the timing head every request and answer body starts with.
const HEAD: usize = 16;
/// Opcode of the requests (`CMSG_MESSAGECHAT`): nothing the sidecar intercepts.
const REQUEST_OPCODE: u32 = 0x095;
/// Opcode of small answers (`SMSG_MESSAGECHAT`).
const ANSWER_OPCODE: u16 = 0x096;
/// Opcode of large answers (`SMSG_COMPRESSED_UPDATE_OBJECT`).
const LARGE_ANSWER_OPCODE: u16 = 0x1F6;
/// Largest body either side sends.
const MAX_BODY: usize = 40 * 1024;
/// Filler for bodies.
static FILLER: [u8; MAX_BODY] = [0x5A; MAX_BODY];
/// `SMSG_AUTH_RESPONSE` with `AUTH_OK`.
const AUTH_OK_BODY: [u8; 11] = [0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// Requests in flight over all sessions in the throughput phase.
const WINDOW_TOTAL: usize = 2000;
/// Sessions connecting (and handshaking) at the same time.
const CONNECT_CONCURRENCY: usize = 128;
/// How long any setup or teardown step may take.
const STEP: Duration = Duration::from_secs(60);

/// Request kinds, echoed in answers.
const PACED: u8 = 0;
const SATURATING: u8 = 1;

/// A latency sample: when the packet arrived, and how long it took (ns).
type Sample = (u64, u32);

fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Settings {
    /// Measured time per target and phase, spread over slices.
    measure: Duration,
    /// One measured slice.
    slice: Duration,
    /// Unmeasured time before each slice.
    warm: Duration,
    sessions: Vec<usize>,
    rate: f64,
    min_total_rate: f64,
    max_total_rate: f64,
    proxy_threads: usize,
    gateway_threads: usize,
    world_threads: usize,
    metrics: bool,
    /// Proxy threads on the last CPU, gateway and worldserver threads on the first
    /// (`TC9_BENCH_PIN=1`): the proxy on a core of its own, as in a deployment.
    pin: bool,
    /// The targets measured (all three unless `TC9_BENCH_TARGETS` narrows them).
    targets: Vec<Target>,
}

impl Settings {
    fn from_env() -> Settings {
        // `cargo test --benches` runs this binary without `--bench`: a smoke run.
        let quick = !std::env::args().any(|a| a == "--bench");
        let secs: f64 = env_or("TC9_BENCH_SECS", if quick { 0.3 } else { 2.5 });
        let sessions = std::env::var("TC9_BENCH_SESSIONS")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_else(|| {
                if quick {
                    vec![1, 10]
                } else {
                    vec![1, 100, 2000]
                }
            });
        Settings {
            measure: Duration::from_secs_f64(secs),
            slice: Duration::from_millis(if quick { 100 } else { 500 }),
            warm: Duration::from_millis(if quick { 50 } else { 150 }),
            sessions,
            rate: env_or("TC9_BENCH_RATE", 20.0),
            min_total_rate: 1000.0,
            max_total_rate: env_or("TC9_BENCH_MAX_RATE", 10_000.0),
            proxy_threads: env_or("TC9_BENCH_PROXY_THREADS", 1),
            gateway_threads: env_or("TC9_BENCH_GATEWAY_THREADS", 1),
            world_threads: env_or("TC9_BENCH_WORLD_THREADS", 1),
            metrics: env_or("TC9_BENCH_METRICS", 1) != 0,
            pin: env_or("TC9_BENCH_PIN", 0) != 0,
            targets: [Target::Direct, Target::Relay, Target::Sidecar]
                .into_iter()
                .filter(|t| {
                    std::env::var("TC9_BENCH_TARGETS")
                        .map_or(true, |v| v.split(',').any(|name| name.trim() == t.name()))
                })
                .collect(),
        }
    }

    /// Requests per second each of `n` sessions sends in the latency phase.
    fn rate_per_session(&self, n: usize) -> f64 {
        let n = n as f64;
        self.rate
            .min(self.max_total_rate / n)
            .max(self.min_total_rate / n)
    }

    /// Measured slices per target and phase.
    fn slices(&self) -> usize {
        (self.measure.as_secs_f64() / self.slice.as_secs_f64())
            .ceil()
            .max(1.0) as usize
    }

    /// Requests each of `n` sessions keeps in flight in the throughput phase.
    fn window(n: usize) -> usize {
        (WINDOW_TOTAL / n).clamp(2, 64)
    }
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits`.
fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

// ---------------------------------------------------------------------------------
// Wire helpers shared by the scripted ends
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Plain,
    Crypt,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Plain => "plain",
            Link::Crypt => "wotlk-crypt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Direct,
    Relay,
    Sidecar,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Relay => "relay",
            Target::Sidecar => "sidecar",
        }
    }
}

fn account(i: usize) -> String {
    format!("BENCH{i}")
}

fn session_key(i: usize) -> [u8; SESSION_KEY_LEN] {
    std::array::from_fn(|j| {
        (j as u8).wrapping_mul(73) ^ (i as u8) ^ ((i >> 8) as u8).rotate_left(3)
    })
}

fn auth_session(i: usize) -> Vec<u8> {
    tc9_testkit::frames::auth_session(&account(i)).to_body()
}

/// Appends a client frame; the header is encrypted when `cipher` is set.
fn put_client_frame(
    out: &mut Vec<u8>,
    cipher: &mut Option<HeaderCipher>,
    opcode: u32,
    body: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(&opcode.to_le_bytes());
    if let Some(cipher) = cipher {
        cipher.apply(&mut out[start..]);
    }
    out.extend_from_slice(body);
}

/// Appends a server frame header for a `body_len`-byte body (3-byte size when large).
fn put_server_header(
    out: &mut BytesMut,
    cipher: &mut Option<HeaderCipher>,
    opcode: u16,
    body_len: usize,
) {
    let start = out.len();
    let size = body_len + 2;
    if size > 0x7FFF {
        out.extend_from_slice(&[0x80 | (size >> 16) as u8]);
    }
    out.extend_from_slice(&(size as u16).to_be_bytes());
    out.extend_from_slice(&opcode.to_le_bytes());
    if let Some(cipher) = cipher {
        cipher.apply(&mut out[start..]);
    }
}

/// A request body: answer length, send time, kind, padding, filler.
fn put_request(
    out: &mut Vec<u8>,
    cipher: &mut Option<HeaderCipher>,
    len: usize,
    answer: usize,
    kind: u8,
    sent: u64,
) {
    let mut head = [0u8; HEAD];
    head[..4].copy_from_slice(&(answer as u32).to_le_bytes());
    head[4..12].copy_from_slice(&sent.to_le_bytes());
    head[12] = kind;
    let start = out.len();
    out.extend_from_slice(&((len + 4) as u16).to_be_bytes());
    out.extend_from_slice(&REQUEST_OPCODE.to_le_bytes());
    if let Some(cipher) = cipher {
        cipher.apply(&mut out[start..]);
    }
    out.extend_from_slice(&head);
    out.extend_from_slice(&FILLER[..len - HEAD]);
}

/// Body lengths of one request and its answer, from the realistic mix.
fn draw_sizes(rng: &mut SampleRng) -> (usize, usize) {
    let pick =
        |rng: &mut SampleRng, lo: usize, hi: usize| lo + rng.below((hi - lo) as u64) as usize;
    let request = match rng.below(100) {
        0 => pick(rng, 1024, 4096),
        1..=2 => pick(rng, 200, 1024),
        _ => pick(rng, HEAD, 200),
    };
    let answer = if rng.below(100) < 3 {
        pick(rng, 4096, MAX_BODY)
    } else {
        request
    };
    (request, answer)
}

/// A latency in ns, saturated to what a sample holds.
fn nanos(ns: u64) -> u32 {
    ns.min(u64::from(u32::MAX)) as u32
}

fn u64_at(body: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&body[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads from `io` until `codec` yields a frame.
async fn read_frame(
    io: &mut TcpStream,
    codec: &mut FrameCodec,
    buf: &mut BytesMut,
) -> Result<Frame> {
    loop {
        if let Some(frame) = codec.decode(buf)? {
            return Ok(frame);
        }
        if io.read_buf(buf).await? == 0 {
            bail!("the stream ended during the handshake");
        }
    }
}

// ---------------------------------------------------------------------------------
// What the scripted ends share in one run
// ---------------------------------------------------------------------------------

/// A packet and byte count, alone on its cache line: the gateway and worldserver
/// threads each update their own.
#[derive(Default)]
#[repr(align(128))]
struct Counter {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    fn add(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Counters, samples and the phase of one run.
#[derive(Default)]
struct Shared {
    /// Latency samples are kept while set.
    recording: AtomicBool,
    /// Requests the worldserver received.
    c2s: Counter,
    /// Answers the gateway sessions received.
    s2c: Counter,
    /// One-way client-to-server latencies (ns) the worldserver measured.
    c2s_samples: Mutex<Vec<Sample>>,
    /// Worldserver connections finished.
    world_done: AtomicUsize,
    /// Sessions through their handshake.
    ready: AtomicUsize,
}

impl Shared {
    fn delivered(&self) -> (u64, u64) {
        (
            self.c2s.packets.load(Ordering::Relaxed) + self.s2c.packets.load(Ordering::Relaxed),
            self.c2s.bytes.load(Ordering::Relaxed) + self.s2c.bytes.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connected, sending nothing.
    Idle,
    Paced,
    Saturate,
    Stop,
}

// ---------------------------------------------------------------------------------
// The scripted worldserver
// ---------------------------------------------------------------------------------

/// Accepts connections and answers every request; runs until aborted.
async fn worldserver(listener: TcpListener, link: Link, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            if let Err(e) = world_connection(stream, link, &shared, &mut samples).await {
                eprintln!("worldserver connection failed: {e:#}");
            }
            shared.c2s_samples.lock().unwrap().extend(samples);
            shared.world_done.fetch_add(1, Ordering::SeqCst);
        });
    }
}

async fn world_connection(
    mut stream: TcpStream,
    link: Link,
    shared: &Shared,
    samples: &mut Vec<Sample>,
) -> Result<()> {
    stream.set_nodelay(true)?;
    let challenge = SmsgAuthChallenge {
        one: 1,
        server_seed: Bytes([0xDE, 0xAD, 0xBE, 0xEF]),
        random: Bytes([7; 32]),
    };
    let frame = Frame::from_message(Origin::Server, &challenge)?;
    stream.write_all(frame.as_bytes()).await?;

    let mut codec = FrameCodec::new(Origin::Client, 0xFFFF);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let auth = read_frame(&mut stream, &mut codec, &mut buf).await?;
    ensure!(
        auth.opcode() == Opcode::CMSG_AUTH_SESSION,
        "expected CMSG_AUTH_SESSION"
    );
    let name = CmsgAuthSession::decode(auth.body())?.account;
    let index: usize = name
        .strip_prefix("BENCH")
        .and_then(|i| i.parse().ok())
        .context("a bench account")?;
    let mut cipher = None;
    if link == Link::Crypt {
        let key = session_key(index);
        codec.set_cipher(Some(HeaderCipher::client_to_server(&key)));
        cipher = Some(HeaderCipher::server_to_client(&key));
    }
    let mut out = BytesMut::with_capacity(64 * 1024);
    put_server_header(
        &mut out,
        &mut cipher,
        Opcode::SMSG_AUTH_RESPONSE.0 as u16,
        AUTH_OK_BODY.len(),
    );
    out.extend_from_slice(&AUTH_OK_BODY);
    stream.write_all(&out).await?;
    out.clear();

    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            break;
        }
        let arrived = now_ns();
        let recording = shared.recording.load(Ordering::Relaxed);
        // Every answer of this batch carries the time the batch is built and written.
        let mut head = [0u8; HEAD];
        head[..8].copy_from_slice(&now_ns().to_le_bytes());
        while let Some(frame) = codec.decode(&mut buf)? {
            shared.c2s.add(frame.len());
            let body = frame.body();
            ensure!(body.len() >= HEAD, "a short request");
            let answer = (u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize)
                .clamp(HEAD, MAX_BODY);
            let kind = body[12];
            if recording && kind == PACED {
                samples.push((arrived, nanos(arrived.saturating_sub(u64_at(body, 4)))));
            }
            let opcode = if answer > 4096 {
                LARGE_ANSWER_OPCODE
            } else {
                ANSWER_OPCODE
            };
            put_server_header(&mut out, &mut cipher, opcode, answer);
            head[8] = kind;
            out.extend_from_slice(&head);
            out.extend_from_slice(&FILLER[..answer - HEAD]);
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
    stream.shutdown().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// The scripted gateway sessions
// ---------------------------------------------------------------------------------

struct Session {
    index: usize,
    target: SocketAddr,
    link: Link,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
    window: usize,
    period: Duration,
    gate: Arc<Semaphore>,
}

/// Connects, handshakes, then follows the phases; returns the server-to-client
/// latency samples.
async fn session(s: Session) -> Result<Vec<Sample>> {
    let gate = Arc::clone(&s.gate);
    let permit = gate.acquire().await?;
    let mut stream = TcpStream::connect(s.target).await?;
    stream.set_nodelay(true)?;
    let mut codec = FrameCodec::server();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let challenge = read_frame(&mut stream, &mut codec, &mut buf).await?;
    ensure!(
        challenge.opcode() == Opcode::SMSG_AUTH_CHALLENGE,
        "expected SMSG_AUTH_CHALLENGE"
    );
    let mut out = Vec::with_capacity(4096);
    let mut cipher = None;
    put_client_frame(
        &mut out,
        &mut cipher,
        Opcode::CMSG_AUTH_SESSION.0,
        &auth_session(s.index),
    );
    if s.link == Link::Crypt {
        let key = session_key(s.index);
        cipher = Some(HeaderCipher::client_to_server(&key));
        codec.set_cipher(Some(HeaderCipher::server_to_client(&key)));
    }
    stream.write_all(&out).await?;
    let response = read_frame(&mut stream, &mut codec, &mut buf).await?;
    ensure!(
        response.opcode() == Opcode::SMSG_AUTH_RESPONSE && response.body() == AUTH_OK_BODY,
        "expected SMSG_AUTH_RESPONSE, got {response:?}"
    );
    drop(permit);
    s.shared.ready.fetch_add(1, Ordering::SeqCst);

    let (read, write) = stream.into_split();
    let credit = Semaphore::new(s.window);
    let (_, samples) = tokio::try_join!(
        writer(&s, write, cipher, &credit),
        reader(&s, read, codec, buf, &credit)
    )?;
    Ok(samples)
}

async fn writer(
    s: &Session,
    mut io: OwnedWriteHalf,
    mut cipher: Option<HeaderCipher>,
    credit: &Semaphore,
) -> Result<()> {
    let mut phase = s.phase.clone();
    let mut rng = SampleRng::new(s.index as u64 * 7919 + 1);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut ticks: Option<tokio::time::Interval> = None;
    loop {
        let now = *phase.borrow_and_update();
        match now {
            Phase::Idle | Phase::Saturate if ticks.is_some() => ticks = None,
            Phase::Idle => {
                if phase.changed().await.is_err() {
                    break;
                }
            }
            Phase::Paced => {
                let ticks = ticks.get_or_insert_with(|| {
                    let offset = s.period.mul_f64(rng.below(1000) as f64 / 1000.0);
                    let mut ticks =
                        tokio::time::interval_at(tokio::time::Instant::now() + offset, s.period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks
                });
                tokio::select! {
                    _ = ticks.tick() => {
                        let (len, answer) = draw_sizes(&mut rng);
                        out.clear();
                        put_request(&mut out, &mut cipher, len, answer, PACED, now_ns());
                        io.write_all(&out).await?;
                    }
                    changed = phase.changed() => if changed.is_err() { break },
                }
            }
            Phase::Saturate => {
                tokio::select! {
                    permit = credit.acquire() => {
                        permit?.forget();
                        let mut k = 1;
                        while k < s.window {
                            match credit.try_acquire() {
                                Ok(p) => p.forget(),
                                Err(_) => break,
                            }
                            k += 1;
                        }
                        out.clear();
                        for _ in 0..k {
                            let (len, answer) = draw_sizes(&mut rng);
                            put_request(&mut out, &mut cipher, len, answer, SATURATING, 0);
                        }
                        io.write_all(&out).await?;
                    }
                    changed = phase.changed() => if changed.is_err() { break },
                }
            }
            Phase::Stop => break,
        }
    }
    io.shutdown().await?;
    Ok(())
}

async fn reader(
    s: &Session,
    mut io: OwnedReadHalf,
    mut codec: FrameCodec,
    mut buf: BytesMut,
    credit: &Semaphore,
) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    loop {
        if io.read_buf(&mut buf).await? == 0 {
            break;
        }
        let arrived = now_ns();
        let recording = s.shared.recording.load(Ordering::Relaxed);
        while let Some(frame) = codec.decode(&mut buf)? {
            s.shared.s2c.add(frame.len());
            let body = frame.body();
            ensure!(body.len() >= HEAD, "a short answer");
            if body[8] == SATURATING {
                credit.add_permits(1);
            } else if recording {
                samples.push((arrived, nanos(arrived.saturating_sub(u64_at(body, 0)))));
            }
        }
    }
    ensure!(buf.is_empty(), "the stream ended inside a frame");
    Ok(samples)
}

// ---------------------------------------------------------------------------------
// The proxies
// ---------------------------------------------------------------------------------

/// A running proxy on the proxy runtime.
enum Proxy {
    None,
    Relay(JoinHandle<()>),
    Sidecar(Box<Sidecar>),
}

/// The minimal relay: accept, connect upstream, `copy_bidirectional`.
async fn relay(listener: TcpListener, upstream: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

fn start_proxy(
    runtime: &Runtime,
    target: Target,
    link: Link,
    world: SocketAddr,
    auth_db_url: &str,
) -> Result<(SocketAddr, Proxy)> {
    match target {
        Target::Direct => Ok((world, Proxy::None)),
        Target::Relay => {
            let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
            let addr = listener.local_addr()?;
            Ok((addr, Proxy::Relay(runtime.spawn(relay(listener, world)))))
        }
        Target::Sidecar => {
            let config = Config {
                listen: "127.0.0.1:0".parse()?,
                upstream: world.to_string(),
                sidecar_id: "bench".to_owned(),
                link_mode: match link {
                    Link::Plain => LinkMode::Plain,
                    Link::Crypt => LinkMode::WotlkCrypt,
                },
                auth_db_url: auth_db_url.to_owned(),
                shutdown_grace_secs: 2,
                ..Config::default()
            };
            config.validate()?;
            let sidecar = runtime.block_on(Sidecar::build(&config))?;
            Ok((sidecar.addr(), Proxy::Sidecar(Box::new(sidecar))))
        }
    }
}

fn stop_proxy(runtime: &Runtime, proxy: Proxy) -> Result<()> {
    match proxy {
        Proxy::None => {}
        Proxy::Relay(task) => task.abort(),
        Proxy::Sidecar(sidecar) => {
            runtime
                .block_on(async { tokio::time::timeout(STEP, sidecar.stop()).await })
                .context("the sidecar did not stop")??;
        }
    }
    Ok(())
}

/// The thread names of the three runtimes.
const THREADS: [&str; 3] = ["tc9-gateway", "tc9-proxy", "tc9-world"];

/// CPU time (ns) of this process's threads named `name`, from
/// `/proc/self/task/*/schedstat`.
fn thread_cpu_ns(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------
// Fleets: N connected sessions through one target, measured in interleaved slices
// ---------------------------------------------------------------------------------

/// What was measured of one target.
#[derive(Debug, Default, Clone)]
struct Outcome {
    /// One-way latencies, ns, sorted: both directions, then each.
    latency: Vec<u32>,
    c2s: Vec<u32>,
    s2c: Vec<u32>,
    /// Delivered in the throughput slices: packets, bytes, seconds, and what the
    /// proxy's threads used meanwhile.
    packets: u64,
    bytes: u64,
    secs: f64,
    cpu_ns: u64,
    /// Measured latency seconds and the CPU ns of the gateway, proxy and worldserver
    /// threads meanwhile: whether the scripts had headroom.
    latency_secs: f64,
    latency_cpu_ns: [u64; 3],
    /// The latency slices' recording windows (`now_ns`), and each slice's p99 (us,
    /// both directions): their median shrugs off one slice hit by a stall of the
    /// whole machine, which the pooled p99 does not.
    windows: Vec<(u64, u64)>,
    slice_p99: Vec<f64>,
    /// Crypt key lookups that found their key while the fleet connected.
    keys_found: Option<f64>,
}

impl Outcome {
    fn packets_per_sec(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.packets as f64 / self.secs)
    }

    fn bytes_per_sec(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.bytes as f64 / self.secs)
    }

    fn cpu_per_packet_ns(&self) -> Option<f64> {
        (self.packets > 0).then(|| self.cpu_ns as f64 / self.packets as f64)
    }

    /// The median of the slices' p99, us.
    fn p99_slice_median(&self) -> Option<f64> {
        let mut p99s = self.slice_p99.clone();
        p99s.sort_by(f64::total_cmp);
        p99s.get(p99s.len() / 2).copied()
    }

    fn cpu_share(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.cpu_ns as f64 / 1e9 / self.secs)
    }
}

/// N sessions through one target, with their worldserver and proxy.
struct Fleet {
    target: Target,
    n: usize,
    shared: Arc<Shared>,
    phase: watch::Sender<Phase>,
    sessions: Vec<JoinHandle<Result<Vec<Sample>>>>,
    world: JoinHandle<()>,
    proxy: Proxy,
    outcome: Outcome,
}

type Metrics = metrics_exporter_prometheus::PrometheusHandle;

fn keys_found(handle: Option<&Metrics>) -> Option<f64> {
    let text = handle?.render();
    Some(
        text.lines()
            .filter(|l| {
                l.starts_with("tc9_sidecar_crypt_key_lookups_total{")
                    && l.contains("result=\"found\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

struct Bench<'a> {
    proxy_rt: &'a Runtime,
    gateway_rt: &'a Runtime,
    world_rt: &'a Runtime,
    settings: &'a Settings,
    auth_db_url: String,
    metrics: Option<Metrics>,
}

impl Bench<'_> {
    /// Starts the worldserver and the proxy, connects `n` sessions through it and
    /// waits until every one is through its handshake.
    fn open(&self, target: Target, link: Link, n: usize) -> Result<Fleet> {
        let shared = Arc::new(Shared::default());
        let listener = self.world_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let world_addr = listener.local_addr()?;
        let world = self
            .world_rt
            .spawn(worldserver(listener, link, Arc::clone(&shared)));
        let (addr, proxy) =
            start_proxy(self.proxy_rt, target, link, world_addr, &self.auth_db_url)?;
        let found_before = keys_found(self.metrics.as_ref());
        let (phase, phase_rx) = watch::channel(Phase::Idle);
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let period = Duration::from_secs_f64(1.0 / self.settings.rate_per_session(n));
        let sessions: Vec<JoinHandle<Result<Vec<Sample>>>> = (0..n)
            .map(|index| {
                self.gateway_rt.spawn(session(Session {
                    index,
                    target: addr,
                    link,
                    shared: Arc::clone(&shared),
                    phase: phase_rx.clone(),
                    window: Settings::window(n),
                    period,
                    gate: Arc::clone(&gate),
                }))
            })
            .collect();
        let mut fleet = Fleet {
            target,
            n,
            shared,
            phase,
            sessions,
            world,
            proxy,
            outcome: Outcome::default(),
        };
        let ready = self.gateway_rt.block_on(async {
            let deadline = Instant::now() + STEP;
            while fleet.shared.ready.load(Ordering::SeqCst) < n {
                if Instant::now() > deadline || fleet.sessions.iter().any(JoinHandle::is_finished) {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            true
        });
        if !ready {
            let got = fleet.shared.ready.load(Ordering::SeqCst);
            let why = self.close(fleet).err().map(|e| format!(": {e:#}"));
            bail!(
                "only {got} of {n} sessions got through their handshake{}",
                why.unwrap_or_default()
            );
        }
        if let (Some(before), Some(after)) = (found_before, keys_found(self.metrics.as_ref())) {
            fleet.outcome.keys_found = Some(after - before);
        }
        Ok(fleet)
    }

    /// One latency slice: paced requests, samples kept after the warm-up.
    fn latency_slice(&self, fleet: &mut Fleet) {
        let outcome = &mut fleet.outcome;
        self.gateway_rt.block_on(async {
            fleet.phase.send_replace(Phase::Paced);
            tokio::time::sleep(self.settings.warm).await;
            let cpu0 = THREADS.map(thread_cpu_ns);
            let t0 = Instant::now();
            let from = now_ns();
            fleet.shared.recording.store(true, Ordering::SeqCst);
            tokio::time::sleep(self.settings.slice).await;
            fleet.shared.recording.store(false, Ordering::SeqCst);
            outcome.windows.push((from, now_ns()));
            outcome.latency_secs += t0.elapsed().as_secs_f64();
            let cpu1 = THREADS.map(thread_cpu_ns);
            for k in 0..THREADS.len() {
                outcome.latency_cpu_ns[k] += cpu1[k].saturating_sub(cpu0[k]);
            }
            fleet.phase.send_replace(Phase::Idle);
            // Let the last requests land before another fleet's slice starts.
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
    }

    /// One throughput slice: full windows, counted after the warm-up.
    fn throughput_slice(&self, fleet: &mut Fleet) {
        let outcome = &mut fleet.outcome;
        let shared = &fleet.shared;
        let phase = &fleet.phase;
        self.gateway_rt.block_on(async {
            phase.send_replace(Phase::Saturate);
            tokio::time::sleep(self.settings.warm).await;
            let (p0, b0) = shared.delivered();
            let cpu0 = thread_cpu_ns("tc9-proxy");
            let t0 = Instant::now();
            tokio::time::sleep(self.settings.slice).await;
            let (p1, b1) = shared.delivered();
            let cpu1 = thread_cpu_ns("tc9-proxy");
            outcome.secs += t0.elapsed().as_secs_f64();
            outcome.packets += p1 - p0;
            outcome.bytes += b1 - b0;
            outcome.cpu_ns += cpu1.saturating_sub(cpu0);
            phase.send_replace(Phase::Idle);
            // Drain the windows before another fleet's slice starts.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
    }

    /// Half-closes every session, reads them to the end, stops the proxy.
    fn close(&self, fleet: Fleet) -> Result<Outcome> {
        let Fleet {
            n,
            shared,
            phase,
            sessions,
            world,
            proxy,
            mut outcome,
            ..
        } = fleet;
        phase.send_replace(Phase::Stop);
        let mut s2c: Vec<Sample> = Vec::new();
        let failures = self.gateway_rt.block_on(async {
            let mut failures = Vec::new();
            for task in sessions {
                match tokio::time::timeout(STEP, task).await {
                    Ok(Ok(Ok(samples))) => s2c.extend(samples),
                    Ok(Ok(Err(e))) => failures.push(format!("{e:#}")),
                    Ok(Err(e)) => failures.push(format!("session panicked: {e}")),
                    Err(_) => failures.push("session did not end".to_owned()),
                }
            }
            let deadline = Instant::now() + STEP;
            while shared.world_done.load(Ordering::SeqCst) < shared.ready.load(Ordering::SeqCst)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failures
        });
        world.abort();
        stop_proxy(self.proxy_rt, proxy)?;
        if let Some(first) = failures.first() {
            bail!("{} of {n} sessions failed; first: {first}", failures.len());
        }
        let c2s = std::mem::take(&mut *shared.c2s_samples.lock().unwrap());
        for &(from, to) in &outcome.windows {
            let mut slice: Vec<u32> = c2s
                .iter()
                .chain(&s2c)
                .filter(|(at, _)| (from..=to).contains(at))
                .map(|&(_, ns)| ns)
                .collect();
            slice.sort_unstable();
            if let Some(p99) = percentile(&slice, 0.99) {
                outcome.slice_p99.push(p99);
            }
        }
        outcome.c2s = c2s.iter().map(|&(_, ns)| ns).collect();
        outcome.s2c = s2c.iter().map(|&(_, ns)| ns).collect();
        outcome.latency = outcome.c2s.iter().chain(&outcome.s2c).copied().collect();
        for samples in [&mut outcome.latency, &mut outcome.c2s, &mut outcome.s2c] {
            samples.sort_unstable();
        }
        Ok(outcome)
    }

    /// Measures `targets` at once, interleaving their slices round by round.
    fn measure(&self, link: Link, n: usize, targets: &[Target]) -> Result<Vec<(Target, Outcome)>> {
        let mut fleets = Vec::new();
        for &target in targets {
            let fleet = self.open(target, link, n).with_context(|| {
                format!("{} {n} sessions through {}", link.name(), target.name())
            })?;
            if link == Link::Crypt && target == Target::Sidecar {
                match fleet.outcome.keys_found {
                    Some(found) if found as usize == n => {}
                    Some(found) => println!(
                        "WARNING: wotlk-crypt {n} sessions: the sidecar found only {found} of {n} session keys; \
                         the other sessions are copied as opaque bytes (see the sidecar's warnings on stderr)"
                    ),
                    None => println!("note: metrics off, wotlk-crypt key lookups not verified"),
                }
            }
            fleets.push(fleet);
        }
        let slices = self.settings.slices();
        for round in 0..slices {
            // Rotate the order so that no target always follows the same one.
            for k in 0..fleets.len() {
                let i = (round + k) % fleets.len();
                self.latency_slice(&mut fleets[i]);
            }
        }
        for round in 0..slices {
            let proxied: Vec<usize> = (0..fleets.len())
                .filter(|&i| fleets[i].target != Target::Direct)
                .collect();
            for k in 0..proxied.len() {
                let i = proxied[(round + k) % proxied.len()];
                self.throughput_slice(&mut fleets[i]);
            }
        }
        fleets
            .into_iter()
            .map(|fleet| Ok((fleet.target, self.close(fleet)?)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------
// Crypt mode's database
// ---------------------------------------------------------------------------------

/// A temporary database with `BENCH<i>` accounts and their session keys, or why not.
async fn crypt_database(accounts: usize) -> Result<MariaDb> {
    tc9_testkit::db::mariadb_reachable().await?;
    let db = MariaDb::create("bench_proxy").await?;
    let mut conn = db.pool.get_conn().await?;
    let ids: Vec<usize> = (0..accounts).collect();
    for chunk in ids.chunks(500) {
        let mut sql = String::from("INSERT INTO account (id, username, session_key) VALUES ");
        for (k, &i) in chunk.iter().enumerate() {
            if k > 0 {
                sql.push(',');
            }
            write!(
                sql,
                "({}, '{}', X'{}')",
                i + 1,
                account(i),
                hex::encode(session_key(i))
            )?;
        }
        conn.query_drop(sql).await?;
    }
    drop(conn);
    // Free this pool's connections: the sidecar's key lookups need the server's.
    db.pool.clone().disconnect().await?;
    Ok(db)
}

// ---------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p * sorted.len() as f64) as usize).min(sorted.len() - 1);
    Some(f64::from(sorted[i]) / 1000.0)
}

fn show(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

struct Row {
    link: Link,
    n: usize,
    /// Targets of one batch were connected side by side and interleaved.
    batch: usize,
    target: Target,
    outcome: Outcome,
}

fn find(rows: &[Row], link: Link, n: usize, target: Target) -> Option<&Outcome> {
    rows.iter()
        .find(|r| r.link == link && r.n == n && r.target == target)
        .map(|r| &r.outcome)
}

/// `metric` of `row` minus that of its direct baseline.
fn added(rows: &[Row], row: &Row, metric: impl Fn(&Outcome) -> Option<f64>) -> Option<f64> {
    if row.target == Target::Direct {
        return None;
    }
    // The direct baseline interleaved with this proxy.
    let direct = rows
        .iter()
        .find(|r| {
            r.link == row.link && r.n == row.n && r.batch == row.batch && r.target == Target::Direct
        })
        .map(|r| &r.outcome)?;
    Some(metric(&row.outcome)? - metric(direct)?)
}

fn print_rows(rows: &[Row]) {
    println!(
        "{:<11} {:>5} {:<7} {:>10} {:>7} {:>7} {:>8} {:>5} {:>7} | {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "link",
        "sess",
        "target",
        "pkt/s",
        "MB/s",
        "x relay",
        "cpu/pkt",
        "cpu",
        "x relay",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "p99 mid",
        "+p50",
        "+p99",
        "+p99 mid"
    );
    for row in rows {
        let o = &row.outcome;
        let relay = find(rows, row.link, row.n, Target::Relay);
        let vs_relay = |mine: Option<f64>, theirs: Option<f64>| match (mine, theirs) {
            (Some(m), Some(t)) if row.target == Target::Sidecar => format!("{:.2}", m / t),
            _ => "-".to_owned(),
        };
        // Capacity per proxy CPU second: the inverse of CPU per packet.
        let capacity = |o: &Outcome| o.cpu_per_packet_ns().map(|ns| 1e9 / ns);
        println!(
            "{:<11} {:>5} {:<7} {:>10} {:>7} {:>7} {:>8} {:>5} {:>7} | {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
            row.link.name(),
            row.n,
            row.target.name(),
            show(o.packets_per_sec(), |v| format!("{v:.0}")),
            show(o.bytes_per_sec(), |v| format!("{:.1}", v / 1e6)),
            vs_relay(o.packets_per_sec(), relay.and_then(Outcome::packets_per_sec)),
            show(o.cpu_per_packet_ns(), |v| format!("{:.2}us", v / 1000.0)),
            show(o.cpu_share(), |v| format!("{:.0}%", v * 100.0)),
            vs_relay(capacity(o), relay.and_then(capacity)),
            show(percentile(&o.latency, 0.50), |v| format!("{v:.1}")),
            show(percentile(&o.latency, 0.99), |v| format!("{v:.1}")),
            show(percentile(&o.latency, 0.999), |v| format!("{v:.1}")),
            show(o.p99_slice_median(), |v| format!("{v:.1}")),
            show(added(rows, row, |o| percentile(&o.latency, 0.50)), |v| format!("{v:+.1}")),
            show(added(rows, row, |o| percentile(&o.latency, 0.99)), |v| format!("{v:+.1}")),
            show(added(rows, row, Outcome::p99_slice_median), |v| format!("{v:+.1}")),
        );
    }
}

/// The latency phase's samples and how busy each script was meanwhile.
fn print_latency_load(rows: &[Row], settings: &Settings) {
    println!(
        "{:<11} {:>5} {:<7} {:>9} {:>10} {:>8} {:>8} {:>12} {:>10} {:>10}",
        "link",
        "sess",
        "target",
        "samples",
        "req/s/sess",
        "c2s p99",
        "s2c p99",
        "gateway cpu",
        "proxy cpu",
        "world cpu"
    );
    for row in rows {
        let o = &row.outcome;
        let share = |k: usize| {
            show((o.latency_secs > 0.0).then_some(o.latency_secs), |secs| {
                format!("{:.0}%", o.latency_cpu_ns[k] as f64 / 1e9 / secs * 100.0)
            })
        };
        println!(
            "{:<11} {:>5} {:<7} {:>9} {:>10.1} {:>8} {:>8} {:>12} {:>10} {:>10}",
            row.link.name(),
            row.n,
            row.target.name(),
            o.latency.len(),
            settings.rate_per_session(row.n),
            show(percentile(&o.c2s, 0.99), |v| format!("{v:.1}")),
            show(percentile(&o.s2c, 0.99), |v| format!("{v:.1}")),
            share(0),
            share(1),
            share(2),
        );
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn main() -> Result<()> {
    // The sidecar's warnings (failed key lookups and the like) go to stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut settings = Settings::from_env();
    let limit = fd_limit();
    if let Some(limit) = limit {
        // A proxy and its direct baseline: 4 + 2 descriptors per session.
        let max = limit.saturating_sub(512) / 6;
        if settings.sessions.iter().any(|&n| n > max) {
            println!(
                "note: RLIMIT_NOFILE is {limit}: session counts capped at {max} (6 descriptors per session for a proxy and its direct baseline; raise with `ulimit -n`)"
            );
            for n in &mut settings.sessions {
                *n = (*n).min(max);
            }
        }
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (first, last) = (cores.first().copied(), cores.last().copied());
    let pinned = settings.pin && cores.len() > 1;
    let runtime = |name: &str, threads: usize, core: Option<core_affinity::CoreId>| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .on_thread_start(move || {
                if let (true, Some(core)) = (pinned, core) {
                    core_affinity::set_for_current(core);
                }
            })
            .enable_all()
            .build()
    };
    let proxy_rt = runtime("tc9-proxy", settings.proxy_threads, last)?;
    let gateway_rt = runtime("tc9-gateway", settings.gateway_threads, first)?;
    let world_rt = runtime("tc9-world", settings.world_threads, first)?;
    let metrics = if settings.metrics {
        Some(tc9_sidecar::admin::install_recorder("bench", 1).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let max_sessions = settings.sessions.iter().copied().max().unwrap_or(1);
    let database = match gateway_rt.block_on(crypt_database(max_sessions)) {
        Ok(db) => Some(db),
        Err(e) => {
            println!("wotlk-crypt: skipped ({e:#})");
            None
        }
    };
    println!(
        "proxy bench: {} CPUs, load average {} at start; worker threads: proxy {}, gateway {}, worldserver {}; \
         per target and phase {} slices of {:.2} s (each after {:.2} s warm-up), targets interleaved; \
         latency phase {} req/s per session ({} to {} in total); throughput phase {} requests in flight in total; \
         sidecar metrics {}; RLIMIT_NOFILE {}{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        settings.proxy_threads,
        settings.gateway_threads,
        settings.world_threads,
        settings.slices(),
        settings.slice.as_secs_f64(),
        settings.warm.as_secs_f64(),
        settings.rate,
        settings.min_total_rate,
        settings.max_total_rate,
        WINDOW_TOTAL,
        if settings.metrics { "on" } else { "off" },
        limit.map_or("?".to_owned(), |l| l.to_string()),
        match (pinned, first, last) {
            (true, Some(first), Some(last)) => format!(
                "; pinned: proxy on CPU {}, gateway and worldserver on CPU {}",
                last.id, first.id
            ),
            _ => String::new(),
        },
    );
    let bench = Bench {
        proxy_rt: &proxy_rt,
        gateway_rt: &gateway_rt,
        world_rt: &world_rt,
        settings: &settings,
        auth_db_url: database.as_ref().map(MariaDb::url).unwrap_or_default(),
        metrics,
    };
    let started = Instant::now();
    let links: Vec<Link> = if database.is_some() {
        vec![Link::Plain, Link::Crypt]
    } else {
        vec![Link::Plain]
    };
    let mut rows = Vec::new();
    for &link in &links {
        for &n in &settings.sessions {
            let step = Instant::now();
            // All at once when the descriptors allow (2 + 4 + 4 per session), else
            // each proxy with a direct baseline of its own (2 + 4).
            let all = &settings.targets;
            let direct = all.contains(&Target::Direct);
            let batches: Vec<Vec<Target>> = if limit.is_none_or(|l| 10 * n + 512 <= l) {
                vec![all.clone()]
            } else {
                all.iter()
                    .filter(|&&t| t != Target::Direct)
                    .map(|&t| {
                        let mut batch = vec![t];
                        if direct {
                            batch.insert(0, Target::Direct);
                        }
                        batch
                    })
                    .collect()
            };
            for (batch, targets) in batches.iter().enumerate() {
                for (target, outcome) in bench.measure(link, n, targets)? {
                    rows.push(Row {
                        link,
                        n,
                        batch,
                        target,
                        outcome,
                    });
                }
            }
            eprintln!(
                "  {} {n} sessions measured in {:.1} s",
                link.name(),
                step.elapsed().as_secs_f64()
            );
        }
    }
    rows.sort_by_key(|r| (r.link == Link::Crypt, r.n, r.batch, r.target as u8));

    println!();
    println!(
        "== proxy throughput (both directions, headers included) and one-way latency per packet"
    );
    println!("   x relay: sidecar / relay; cpu/pkt: CPU time of the proxy runtime's threads per delivered packet;");
    println!("   cpu: that CPU time per wall second; second x relay: capacity per CPU second (relay cpu/pkt / sidecar cpu/pkt);");
    println!("   p99 mid: median over the latency slices of each slice's p99 (robust to one slice hit by a machine-wide stall);");
    println!("   +p50/+p99/+p99 mid: that figure through the proxy minus through its (interleaved) direct connection, us");
    println!();
    print_rows(&rows);
    println!();
    println!("   latency phase: one-way samples, and the CPU each runtime's threads used per wall second");
    print_latency_load(&rows, &settings);
    if links.len() == 1 {
        println!("{:<11} skipped (MariaDB unreachable)", Link::Crypt.name());
    }
    println!();
    println!("== targets");
    for &link in &links {
        for &n in &settings.sessions {
            let (Some(relay), Some(sidecar)) = (
                find(&rows, link, n, Target::Relay),
                find(&rows, link, n, Target::Sidecar),
            ) else {
                continue;
            };
            if let (Some(s), Some(r)) = (sidecar.packets_per_sec(), relay.packets_per_sec()) {
                let capacity = match (relay.cpu_per_packet_ns(), sidecar.cpu_per_packet_ns()) {
                    (Some(r), Some(s)) => format!("; capacity per CPU second {:.2}x relay", r / s),
                    _ => String::new(),
                };
                println!(
                    "{:<11} {:>5} sessions: throughput {:.2}x relay (target >= 0.90x): {}{capacity}",
                    link.name(),
                    n,
                    s / r,
                    if s / r >= 0.9 { "met" } else { "NOT met" }
                );
            }
            if n == max_sessions {
                let p99 = |target: Target| {
                    let row = rows
                        .iter()
                        .find(|r| r.link == link && r.n == n && r.target == target)?;
                    Some((
                        added(&rows, row, |o| percentile(&o.latency, 0.99))?,
                        added(&rows, row, Outcome::p99_slice_median)?,
                    ))
                };
                if let Some((pooled, mid)) = p99(Target::Sidecar) {
                    let relay = p99(Target::Relay)
                        .map(|(p, m)| format!(" (relay: {p:+.1} / {m:+.1})"))
                        .unwrap_or_default();
                    println!(
                        "{:<11} {:>5} sessions: p99 added latency {pooled:+.1} us pooled, {mid:+.1} us slice median{relay} (target < 100 us): {}",
                        link.name(),
                        n,
                        match (pooled < 100.0, mid < 100.0) {
                            (true, true) => "met",
                            (false, true) => "met on the slice median only",
                            _ => "NOT met",
                        }
                    );
                }
            }
        }
    }
    println!();
    println!(
        "total {:.0} s; load average {} at the end",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    drop(database);
    Ok(())
}
