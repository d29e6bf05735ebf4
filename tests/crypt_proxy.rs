//! The sidecar in-process between a scripted gateway and a scripted worldserver, with
//! a real MariaDB behind it (`mysql://root@127.0.0.1:3306`).
//!
//! - `wotlk-crypt` mode: the sidecar finds the session key in the auth database and
//!   keeps its four header keystreams in step while it drops client frames and
//!   answers others itself; both peers use `wow_srp`'s independent wrath header
//!   crypto, so any desynchronisation shows up as a garbled header.
//! - `wotlk-crypt` mode without a usable session key: the session after
//!   `CMSG_AUTH_SESSION` is copied byte for byte and the handler is never asked.
//! - Plain mode: the session's identity (account, character, guild) is learnt from
//!   the session opcodes and the characters database.
//!
//! Every test creates its own database and drops it when it ends, passed or failed.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use tc9_charter::{CharterHandler, CharterSession, Player};
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::messages::{CmsgPlayerLogin, Message, SmsgAuthChallenge, SmsgLoginVerifyWorld};
use tc9_codec::wire::{Bytes, Guid};
use tc9_codec::{Frame, Opcode, Origin};
use tc9_proxy::{Decision, Handler, SessionEvent, SessionInfo};
use tc9_sidecar::backends::mysql::Db;
use tc9_sidecar::backends::postgres::Bus;
use tc9_sidecar::config::{Config, LinkMode};
use tc9_testkit::{lock, start_sidecar_with, MariaDb, Relay, MARIADB_ADDR, STEP};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use wow_srp::normalized_string::NormalizedString;
use wow_srp::wrath_header::{ClientCrypto, ProofSeed, ServerCrypto, WrathServerAttempt};

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(60);

// Opcodes the scripts use without the sidecar caring about them. Server opcodes are
// 16-bit in the header.
const SMSG_PONG: u16 = 0x1DD;
const SMSG_ACCOUNT_DATA_TIMES: u16 = 0x209;
const SMSG_COMPRESSED_UPDATE_OBJECT: u16 = 0x1F6;
const SMSG_TIME_SYNC_REQ: u16 = 0x390;
const CMSG_MESSAGECHAT: u32 = 0x095;

/// `SMSG_AUTH_RESPONSE` with `AUTH_OK` (result, billing time, flags, rested, expansion).
const AUTH_OK_BODY: [u8; 11] = [0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

// ---------------------------------------------------------------------------------
// Packets and the two scripted peers
// ---------------------------------------------------------------------------------

/// One packet as a peer saw it: opcode and body (the size is implied by the body).
#[derive(Clone, PartialEq, Eq)]
struct Packet {
    opcode: u32,
    body: Vec<u8>,
}

impl Packet {
    fn new(opcode: impl Into<u32>, body: impl Into<Vec<u8>>) -> Packet {
        Packet {
            opcode: opcode.into(),
            body: body.into(),
        }
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Opcode(self.opcode).name().unwrap_or("?");
        let shown = self.body.len().min(24);
        write!(
            f,
            "{name} (0x{:03X}) [{} bytes: {}{}]",
            self.opcode,
            self.body.len(),
            hex::encode(&self.body[..shown]),
            if shown < self.body.len() { "…" } else { "" }
        )
    }
}

/// Fills `buf` from `stream`; `false` when the stream ended before its first byte.
async fn read_exact_or_eof(stream: &mut TcpStream, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = timeout(STEP, stream.read(&mut buf[filled..]))
            .await
            .context("timed out reading")??;
        if n == 0 {
            if filled == 0 {
                return Ok(false);
            }
            bail!("stream ended {filled} bytes into a {}-byte read", buf.len());
        }
        filled += n;
    }
    Ok(true)
}

/// A pattern body of `len` bytes, different per `seed`.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The scripted worldserver's end of its connection: server headers out, client
/// headers in, encrypted with `wow_srp` once `crypto` is set. Records every byte.
struct WorldEnd {
    stream: TcpStream,
    crypto: Option<ServerCrypto>,
    sent: Vec<u8>,
    received: Vec<u8>,
}

impl WorldEnd {
    fn new(stream: TcpStream) -> WorldEnd {
        WorldEnd {
            stream,
            crypto: None,
            sent: Vec::new(),
            received: Vec::new(),
        }
    }

    /// A server frame's bytes, its header encrypted once `crypto` is set.
    fn encode(&mut self, opcode: u16, body: &[u8]) -> Result<Vec<u8>> {
        let size = u32::try_from(body.len() + 2)?;
        let mut bytes = match &mut self.crypto {
            Some(crypto) => crypto.encrypt_server_header(size, opcode).to_vec(),
            None if size > 0x7FFF => {
                let mut header = size.to_be_bytes()[1..].to_vec();
                header[0] |= 0x80;
                header.extend_from_slice(&opcode.to_le_bytes());
                header
            }
            None => {
                let mut header = u16::try_from(size)?.to_be_bytes().to_vec();
                header.extend_from_slice(&opcode.to_le_bytes());
                header
            }
        };
        bytes.extend_from_slice(body);
        Ok(bytes)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        timeout(STEP, self.stream.write_all(bytes))
            .await
            .context("timed out writing")??;
        self.sent.extend_from_slice(bytes);
        Ok(())
    }

    async fn send(&mut self, opcode: u16, body: &[u8]) -> Result<()> {
        let bytes = self.encode(opcode, body)?;
        self.write(&bytes).await
    }

    /// Sends one frame in two writes: everything but its last `held` bytes, then,
    /// once `seen` fires, those.
    async fn send_split(
        &mut self,
        opcode: u16,
        body: &[u8],
        held: usize,
        seen: oneshot::Receiver<()>,
    ) -> Result<()> {
        let bytes = self.encode(opcode, body)?;
        let (start, rest) = bytes.split_at(bytes.len() - held);
        self.write(start).await?;
        timeout(STEP, seen)
            .await
            .context("the gateway never saw the start of the frame: it was held for its last byte")?
            .context("the gateway side gave up")?;
        self.write(rest).await
    }

    /// The next client packet, `None` at a clean end of stream.
    async fn recv(&mut self) -> Result<Option<Packet>> {
        let mut header = [0u8; 6];
        if !read_exact_or_eof(&mut self.stream, &mut header).await? {
            return Ok(None);
        }
        self.received.extend_from_slice(&header);
        let (size, opcode) = match &mut self.crypto {
            Some(crypto) => {
                let h = crypto.decrypt_client_header(header);
                (usize::from(h.size), h.opcode)
            }
            None => (
                usize::from(u16::from_be_bytes([header[0], header[1]])),
                u32::from_le_bytes([header[2], header[3], header[4], header[5]]),
            ),
        };
        // AzerothCore's own sanity check: a garbled header fails here.
        ensure!(
            (4..10240).contains(&size),
            "worldserver got a client header with size {size} (opcode 0x{opcode:X}, raw {}): \
             the client-to-server keystream is out of step",
            hex::encode(header)
        );
        let mut body = vec![0u8; size - 4];
        if !body.is_empty() && !read_exact_or_eof(&mut self.stream, &mut body).await? {
            bail!("stream ended before the body of 0x{opcode:X}");
        }
        self.received.extend_from_slice(&body);
        Ok(Some(Packet::new(opcode, body)))
    }

    /// The next client packet, which must exist.
    async fn expect(&mut self) -> Result<Packet> {
        self.recv()
            .await?
            .context("worldserver: the stream ended, a packet was expected")
    }
}

/// The scripted gateway's end of its connection: client headers out, server headers
/// in, encrypted with `wow_srp` once `crypto` is set. Records every byte.
struct GatewayEnd {
    stream: TcpStream,
    crypto: Option<ClientCrypto>,
    sent: Vec<u8>,
    received: Vec<u8>,
}

impl GatewayEnd {
    async fn connect(addr: SocketAddr) -> Result<GatewayEnd> {
        let stream = timeout(STEP, TcpStream::connect(addr))
            .await
            .context("timed out connecting to the sidecar")??;
        Ok(GatewayEnd {
            stream,
            crypto: None,
            sent: Vec::new(),
            received: Vec::new(),
        })
    }

    fn encode(&mut self, packet: &Packet) -> Result<Vec<u8>> {
        let size = u16::try_from(packet.body.len() + 4)?;
        let mut bytes = match &mut self.crypto {
            Some(crypto) => crypto.encrypt_client_header(size, packet.opcode).to_vec(),
            None => {
                let mut header = size.to_be_bytes().to_vec();
                header.extend_from_slice(&packet.opcode.to_le_bytes());
                header
            }
        };
        bytes.extend_from_slice(&packet.body);
        Ok(bytes)
    }

    async fn send(&mut self, packet: &Packet) -> Result<()> {
        self.send_all(std::slice::from_ref(packet)).await
    }

    /// Sends `packets` in one write, so the sidecar sees them back to back.
    async fn send_all(&mut self, packets: &[Packet]) -> Result<()> {
        let mut bytes = Vec::new();
        for packet in packets {
            bytes.extend(self.encode(packet)?);
        }
        timeout(STEP, self.stream.write_all(&bytes))
            .await
            .context("timed out writing")??;
        self.sent.extend_from_slice(&bytes);
        Ok(())
    }

    /// Sends the plain `CMSG_AUTH_SESSION`, turns header encryption on and sends
    /// `pipelined` encrypted, all in one write: the sidecar finds encrypted headers
    /// already buffered behind the plain one.
    async fn send_auth(
        &mut self,
        account: &str,
        crypto: ClientCrypto,
        pipelined: &[Packet],
    ) -> Result<()> {
        ensure!(self.crypto.is_none(), "the auth session goes out plain");
        let mut bytes = self.encode(&auth_session(account))?;
        self.crypto = Some(crypto);
        for packet in pipelined {
            bytes.extend(self.encode(packet)?);
        }
        timeout(STEP, self.stream.write_all(&bytes))
            .await
            .context("timed out writing")??;
        self.sent.extend_from_slice(&bytes);
        Ok(())
    }

    /// The next server packet, `None` at a clean end of stream.
    async fn recv(&mut self) -> Result<Option<Packet>> {
        let mut first = [0u8; 4];
        if !read_exact_or_eof(&mut self.stream, &mut first).await? {
            return Ok(None);
        }
        self.received.extend_from_slice(&first);
        let mut extra = [0u8; 1];
        let (size, opcode) = match &mut self.crypto {
            Some(crypto) => {
                let header = match crypto.attempt_decrypt_server_header(first) {
                    WrathServerAttempt::Header(h) => h,
                    WrathServerAttempt::AdditionalByteRequired => {
                        if !read_exact_or_eof(&mut self.stream, &mut extra).await? {
                            bail!("stream ended inside a large server header");
                        }
                        self.received.push(extra[0]);
                        crypto.decrypt_large_server_header(extra[0])
                    }
                };
                (header.size as usize, header.opcode)
            }
            None if first[0] & 0x80 != 0 => {
                if !read_exact_or_eof(&mut self.stream, &mut extra).await? {
                    bail!("stream ended inside a large server header");
                }
                self.received.push(extra[0]);
                let size = usize::from(first[0] & 0x7F) << 16
                    | usize::from(first[1]) << 8
                    | usize::from(first[2]);
                (size, u16::from_le_bytes([first[3], extra[0]]))
            }
            None => (
                usize::from(u16::from_be_bytes([first[0], first[1]])),
                u16::from_le_bytes([first[2], first[3]]),
            ),
        };
        // Nothing the scripts send is larger than this: a garbled header fails here.
        ensure!(
            (2..=0x10_0000).contains(&size),
            "gateway got a server header with size {size} (opcode 0x{opcode:X}, raw {}): \
             the server-to-client keystream is out of step",
            hex::encode(first)
        );
        let mut body = vec![0u8; size - 2];
        if !body.is_empty() && !read_exact_or_eof(&mut self.stream, &mut body).await? {
            bail!("stream ended before the body of 0x{opcode:X}");
        }
        self.received.extend_from_slice(&body);
        Ok(Some(Packet::new(opcode, body)))
    }

    /// The next server packet, which must exist.
    async fn expect(&mut self) -> Result<Packet> {
        self.recv()
            .await?
            .context("gateway: the stream ended, a packet was expected")
    }

    /// The next `n` server packets.
    async fn expect_n(&mut self, n: usize) -> Result<Vec<Packet>> {
        let mut packets = Vec::with_capacity(n);
        for _ in 0..n {
            packets.push(self.expect().await?);
        }
        Ok(packets)
    }

    /// Half-closes the sending side, as a gateway whose player left.
    async fn finish(&mut self) -> Result<()> {
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Reads until the sidecar closes the stream; every packet on the way.
    async fn recv_to_end(&mut self) -> Result<Vec<Packet>> {
        let mut rest = Vec::new();
        while let Some(packet) = self.recv().await? {
            rest.push(packet);
        }
        Ok(rest)
    }
}

/// A matching `wow_srp` client and server for `session_key`, built the way a real
/// login builds them.
fn crypto_pair(account: &str, session_key: [u8; SESSION_KEY_LEN]) -> (ClientCrypto, ServerCrypto) {
    let user = NormalizedString::new(account).expect("a valid account name");
    let client_seed = ProofSeed::new();
    let server_seed = ProofSeed::new();
    let client_seed_value = client_seed.seed();
    let (proof, client) =
        client_seed.into_client_header_crypto(&user, session_key, server_seed.seed());
    let server = server_seed
        .into_server_header_crypto(&user, session_key, proof, client_seed_value)
        .expect("the proof of the same session key matches");
    (client, server)
}

fn session_key(seed: u8) -> [u8; SESSION_KEY_LEN] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(73).wrapping_add(seed))
}

fn auth_challenge() -> Packet {
    let challenge = SmsgAuthChallenge {
        one: 1,
        server_seed: Bytes([0xDE, 0xAD, 0xBE, 0xEF]),
        random: Bytes(std::array::from_fn(|i| i as u8)),
    };
    Packet::new(Opcode::SMSG_AUTH_CHALLENGE.0, challenge.to_body())
}

fn auth_session(account: &str) -> Packet {
    let auth = tc9_testkit::frames::auth_session(account);
    Packet::new(Opcode::CMSG_AUTH_SESSION.0, auth.to_body())
}

fn ping(seq: u32) -> Packet {
    let mut body = seq.to_le_bytes().to_vec();
    body.extend_from_slice(&25u32.to_le_bytes());
    Packet::new(Opcode::CMSG_PING.0, body)
}

fn pong(seq: u32) -> Packet {
    Packet::new(SMSG_PONG, seq.to_le_bytes())
}

fn player_login(guid: u32) -> Packet {
    let login = CmsgPlayerLogin {
        guid: Guid::player(guid),
    };
    Packet::new(Opcode::CMSG_PLAYER_LOGIN.0, login.to_body())
}

fn login_verify_world() -> Packet {
    let verify = SmsgLoginVerifyWorld {
        map: 571,
        x: 5804.1,
        y: 624.7,
        z: 647.8,
        orientation: 1.6,
    };
    Packet::new(Opcode::SMSG_LOGIN_VERIFY_WORLD.0, verify.to_body())
}

fn petition_sign(petition: u32) -> Packet {
    let mut body = Guid::item(petition).0.to_le_bytes().to_vec();
    body.push(1);
    Packet::new(Opcode::CMSG_PETITION_SIGN.0, body)
}

fn petition_show_signatures(petition: u32) -> Packet {
    Packet::new(
        Opcode::CMSG_PETITION_SHOW_SIGNATURES.0,
        Guid::item(petition).0.to_le_bytes(),
    )
}

/// The signer the stub handler reports in its `SMSG_PETITION_SIGN_RESULTS`.
const STUB_SIGNER: u32 = 77;

/// The `SMSG_PETITION_SIGN_RESULTS` body the stub handler answers a sign with:
/// petition guid (echoed), signer guid, result `PETITION_SIGN_OK`.
fn sign_results_body(sign_body: &[u8]) -> Vec<u8> {
    let mut body = sign_body.get(..8).unwrap_or(&[0; 8]).to_vec();
    body.extend_from_slice(&Guid::player(STUB_SIGNER).0.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body
}

fn sign_results(petition: u32) -> Packet {
    Packet::new(
        Opcode::SMSG_PETITION_SIGN_RESULTS.0,
        sign_results_body(&petition_sign(petition).body),
    )
}

// ---------------------------------------------------------------------------------
// Database and sidecar fixtures
// ---------------------------------------------------------------------------------

/// A scripted worldserver listening on a port of its own.
async fn worldserver_listener() -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    Ok((listener, addr))
}

async fn accept(listener: &TcpListener) -> Result<WorldEnd> {
    let (stream, _) = timeout(STEP, listener.accept())
        .await
        .context("the sidecar never connected to the worldserver")??;
    stream.set_nodelay(true)?;
    Ok(WorldEnd::new(stream))
}

/// Awaits a script task, failing the test with the script's own error.
async fn join<T>(task: JoinHandle<Result<T>>, who: &str) -> Result<T> {
    task.await
        .with_context(|| format!("the {who} script panicked"))?
        .with_context(|| format!("the {who} script failed"))
}

/// Intercepts two client petition opcodes: answers `CMSG_PETITION_SIGN` itself and
/// drops `CMSG_PETITION_SHOW_SIGNATURES`. Records every frame it is asked about.
#[derive(Clone, Default)]
struct CharterStub {
    handled: Arc<Mutex<Vec<Packet>>>,
}

impl Handler for CharterStub {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        vec![
            Opcode::CMSG_PETITION_SIGN,
            Opcode::CMSG_PETITION_SHOW_SIGNATURES,
        ]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        origin == Origin::Client
            && (opcode == Opcode::CMSG_PETITION_SIGN
                || opcode == Opcode::CMSG_PETITION_SHOW_SIGNATURES)
    }

    async fn handle(&self, _session: &SessionInfo, frame: &Frame) -> Decision {
        lock(&self.handled).push(Packet::new(frame.opcode().0, frame.body()));
        if frame.opcode() == Opcode::CMSG_PETITION_SIGN {
            let answer = Frame::new(
                Origin::Server,
                Opcode::SMSG_PETITION_SIGN_RESULTS,
                &sign_results_body(frame.body()),
            )
            .expect("a small server frame");
            Decision::Answer(vec![answer])
        } else {
            Decision::Drop
        }
    }
}

/// A database named after `name` with `CRYPT_ACCOUNT`'s session key (from `seed`),
/// and the two ends' header crypto for that key.
async fn keyed_account(name: &str, seed: u8) -> Result<(MariaDb, ClientCrypto, ServerCrypto)> {
    let db = MariaDb::create(name).await?;
    let key = session_key(seed);
    db.exec(
        "INSERT INTO account (id, username, session_key) VALUES (?, ?, ?)",
        (1u32, CRYPT_ACCOUNT, key.to_vec()),
    )
    .await?;
    let (client_crypto, server_crypto) = crypto_pair(CRYPT_ACCOUNT, key);
    Ok((db, client_crypto, server_crypto))
}

fn crypt_config(db: &MariaDb, upstream: String) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("an address"),
        shutdown_grace_secs: 2,
        upstream,
        link_mode: LinkMode::WotlkCrypt,
        auth_db_url: db.url(),
        characters_db_url: db.url(),
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------
// wotlk-crypt with a session key: inject and drop without desynchronising
// ---------------------------------------------------------------------------------

const CRYPT_ACCOUNT: &str = "TESTPLAYER";

/// What the scripted worldserver sends right after `SMSG_AUTH_RESPONSE`: a small
/// frame, one with the largest small header, two with the large (5-byte) header and
/// an empty one.
fn first_server_burst() -> Vec<Packet> {
    vec![
        Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY),
        pong(0),
        Packet::new(SMSG_ACCOUNT_DATA_TIMES, pattern(1, 41)),
        // size field 0x7FFF: the largest 4-byte header.
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(2, 0x7FFD)),
        // size field 0x8000: the smallest 5-byte header.
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(3, 0x7FFE)),
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(4, 0x9000)),
        Packet::new(SMSG_TIME_SYNC_REQ, Vec::new()),
    ]
}

/// Sent by the worldserver when `CMSG_NAME_QUERY` arrives (so after the first
/// injected answer has been queued toward the gateway).
fn server_reply_to_name_query() -> Vec<Packet> {
    vec![Packet::new(
        Opcode::SMSG_NAME_QUERY_RESPONSE.0,
        pattern(5, 30),
    )]
}

/// Sent by the worldserver when `CMSG_PLAYER_LOGIN` arrives.
fn server_reply_to_login() -> Vec<Packet> {
    vec![
        login_verify_world(),
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(6, 0x1_2345)),
        Packet::new(SMSG_TIME_SYNC_REQ, 1u32.to_le_bytes()),
    ]
}

/// Encrypted frames the gateway sends in the same write as its plain
/// `CMSG_AUTH_SESSION`, before the worldserver has answered.
fn pipelined_with_auth() -> Vec<Packet> {
    vec![ping(0), Packet::new(CMSG_MESSAGECHAT, pattern(10, 100))]
}

/// The gateway's first encrypted batch: one frame the sidecar drops and one it
/// answers between frames it forwards.
fn client_batch_one() -> Vec<Packet> {
    vec![
        ping(1),
        petition_show_signatures(500),
        petition_sign(500),
        Packet::new(Opcode::CMSG_NAME_QUERY.0, Guid::player(12).0.to_le_bytes()),
    ]
}

/// The second batch: injections and drops back to back, then the login.
fn client_batch_two() -> Vec<Packet> {
    vec![
        petition_sign(501),
        petition_show_signatures(501),
        petition_show_signatures(502),
        Packet::new(CMSG_MESSAGECHAT, pattern(7, 8000)),
        petition_sign(502),
        ping(2),
        player_login(42),
    ]
}

fn is_intercepted(packet: &Packet) -> bool {
    packet.opcode == Opcode::CMSG_PETITION_SIGN.0
        || packet.opcode == Opcode::CMSG_PETITION_SHOW_SIGNATURES.0
}

/// The scripted stock worldserver of the crypt test; returns the client packets it
/// received after `CMSG_AUTH_SESSION`.
async fn crypt_worldserver(
    listener: TcpListener,
    mut crypto: Option<ServerCrypto>,
) -> Result<Vec<Packet>> {
    let mut ws = accept(&listener).await?;
    let challenge = auth_challenge();
    ws.send(challenge.opcode as u16, &challenge.body).await?;
    let auth = ws.expect().await?;
    ensure!(
        auth == auth_session(CRYPT_ACCOUNT),
        "worldserver: expected the plain CMSG_AUTH_SESSION, got {auth:?}"
    );
    ws.crypto = crypto.take();
    for packet in first_server_burst() {
        ws.send(packet.opcode as u16, &packet.body).await?;
    }
    let mut received = Vec::new();
    while let Some(packet) = ws.recv().await? {
        let replies = match packet.opcode {
            op if op == Opcode::CMSG_NAME_QUERY.0 => server_reply_to_name_query(),
            op if op == Opcode::CMSG_PLAYER_LOGIN.0 => server_reply_to_login(),
            _ => Vec::new(),
        };
        received.push(packet);
        for reply in replies {
            ws.send(reply.opcode as u16, &reply.body).await?;
        }
    }
    Ok(received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypt_session_with_inject_and_drop() -> Result<()> {
    timeout(WHOLE_TEST, crypt_session_with_inject_and_drop_body(0))
        .await
        .context("the test timed out")?
}

/// The auth database drops the sidecar's first two connections (a restart at the
/// moment of the login): the key lookup is retried and the session still runs
/// encrypted, with its charters intercepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_key_lookups_are_retried() -> Result<()> {
    timeout(WHOLE_TEST, crypt_session_with_inject_and_drop_body(2))
        .await
        .context("the test timed out")?
}

/// A relay to MariaDB that closes its first `refused` connections at once and forwards
/// One encrypted session with injected answers and dropped frames; the auth database
/// is reached through a relay that refuses its first `refused` connections.
async fn crypt_session_with_inject_and_drop_body(refused: u32) -> Result<()> {
    let (db, client_crypto, server_crypto) = keyed_account("inject", 3).await?;

    let (listener, ws_addr) = worldserver_listener().await?;
    let handler = CharterStub::default();
    let handled = Arc::clone(&handler.handled);
    let mut config = crypt_config(&db, ws_addr);
    let relay = Relay::start(MARIADB_ADDR).await?;
    relay.refuse_next(refused);
    config.auth_db_url = format!("mysql://root@{}/{}", relay.addr, db.name);
    let sidecar = start_sidecar_with(config, handler).await?;
    let worldserver = tokio::spawn(crypt_worldserver(listener, Some(server_crypto)));

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    let challenge = gw.expect().await?;
    assert_eq!(challenge, auth_challenge(), "the plain challenge");
    gw.send_auth(CRYPT_ACCOUNT, client_crypto, &pipelined_with_auth())
        .await?;

    let burst = first_server_burst();
    let got = gw.expect_n(burst.len()).await?;
    assert_eq!(got, burst, "the encrypted server frames after the auth");

    gw.send_all(&client_batch_one()).await?;
    let mut expected = vec![sign_results(500)];
    expected.extend(server_reply_to_name_query());
    let got = gw.expect_n(expected.len()).await?;
    assert_eq!(
        got, expected,
        "the injected answer, then the worldserver's reply to the frame after it"
    );

    gw.send_all(&client_batch_two()).await?;
    let mut expected = vec![sign_results(501), sign_results(502)];
    expected.extend(server_reply_to_login());
    let got = gw.expect_n(expected.len()).await?;
    assert_eq!(
        got, expected,
        "both injected answers, then the worldserver's reply to the login"
    );

    gw.finish().await?;
    let to_worldserver = join(worldserver, "worldserver").await?;
    let rest = gw.recv_to_end().await?;
    assert!(
        rest.is_empty(),
        "nothing more reaches the gateway: {rest:?}"
    );

    let sent: Vec<Packet> = pipelined_with_auth()
        .into_iter()
        .chain(client_batch_one())
        .chain(client_batch_two())
        .collect();
    let forwarded: Vec<Packet> = sent
        .iter()
        .filter(|p| !is_intercepted(p))
        .cloned()
        .collect();
    assert_eq!(
        to_worldserver, forwarded,
        "the worldserver decrypts exactly the frames that were neither dropped nor answered"
    );
    let intercepted: Vec<Packet> = sent.into_iter().filter(is_intercepted).collect();
    assert_eq!(
        *lock(&handled),
        intercepted,
        "the handler saw every intercepted frame, decrypted, in order"
    );
    assert!(
        relay.accepted() > u64::from(refused),
        "the key came through the relay after {refused} refused connections"
    );

    sidecar.stop().await?;
    drop(db);
    Ok(())
}

// ---------------------------------------------------------------------------------
// wotlk-crypt without a session key: opaque copy
// ---------------------------------------------------------------------------------

/// One session through a sidecar that cannot find `account`'s session key: both peers
/// encrypt with a key of their own and the sidecar copies the bytes.
async fn opaque_session(
    sidecar_addr: SocketAddr,
    listener: Arc<TcpListener>,
    account: &str,
) -> Result<()> {
    let (client_crypto, server_crypto) = crypto_pair(account, session_key(99));
    let account_owned = account.to_owned();
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        let auth = ws.expect().await?;
        ensure!(
            auth == auth_session(&account_owned),
            "worldserver: expected the plain CMSG_AUTH_SESSION, got {auth:?}"
        );
        ws.crypto = Some(server_crypto);
        ws.send(Opcode::SMSG_AUTH_RESPONSE.0 as u16, &AUTH_OK_BODY)
            .await?;
        ws.send(SMSG_COMPRESSED_UPDATE_OBJECT, &pattern(8, 0x9000))
            .await?;
        let mut received = Vec::new();
        while let Some(packet) = ws.recv().await? {
            let login = packet.opcode == Opcode::CMSG_PLAYER_LOGIN.0;
            received.push(packet);
            if login {
                let verify = login_verify_world();
                ws.send(verify.opcode as u16, &verify.body).await?;
            }
        }
        anyhow::Ok((received, ws.received, ws.sent))
    });

    let mut gw = GatewayEnd::connect(sidecar_addr).await?;
    assert_eq!(gw.expect().await?, auth_challenge(), "the plain challenge");
    // Encrypted frames right behind the plain auth: the sidecar must copy the bytes it
    // has already buffered too.
    let pipelined = vec![ping(0), petition_sign(599)];
    gw.send_auth(account, client_crypto, &pipelined).await?;
    let got = gw.expect_n(2).await?;
    assert_eq!(
        got,
        vec![
            Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY),
            Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(8, 0x9000)),
        ],
        "{account}: the worldserver's encrypted frames arrive intact"
    );
    let client_frames = vec![
        ping(1),
        petition_sign(600),
        petition_show_signatures(600),
        Packet::new(CMSG_MESSAGECHAT, pattern(9, 3000)),
        player_login(42),
    ];
    gw.send_all(&client_frames).await?;
    assert_eq!(
        gw.expect().await?,
        login_verify_world(),
        "{account}: no injected answer, only the worldserver's reply"
    );
    gw.finish().await?;
    let (received, ws_received, ws_sent) = join(worldserver, "worldserver").await?;
    let rest = gw.recv_to_end().await?;
    assert!(
        rest.is_empty(),
        "{account}: nothing more reaches the gateway: {rest:?}"
    );
    let all_frames: Vec<Packet> = pipelined.into_iter().chain(client_frames).collect();
    assert_eq!(
        received, all_frames,
        "{account}: intercepted opcodes reach the worldserver unchanged"
    );
    assert!(
        ws_received == gw.sent,
        "{account}: the worldserver receives the gateway's bytes unchanged \
         ({} bytes sent, {} received)",
        gw.sent.len(),
        ws_received.len()
    );
    assert!(
        gw.received == ws_sent,
        "{account}: the gateway receives the worldserver's bytes unchanged \
         ({} bytes sent, {} received)",
        ws_sent.len(),
        gw.received.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_session_key_falls_back_to_opaque() -> Result<()> {
    timeout(WHOLE_TEST, missing_session_key_falls_back_to_opaque_body())
        .await
        .context("the test timed out")?
}

async fn missing_session_key_falls_back_to_opaque_body() -> Result<()> {
    let db = MariaDb::create("opaque").await?;
    // An account without a key; the other account of the test has no row at all.
    db.exec(
        "INSERT INTO account (id, username, session_key) VALUES (?, ?, NULL)",
        (2u32, "NOKEY"),
    )
    .await?;
    let (listener, ws_addr) = worldserver_listener().await?;
    let listener = Arc::new(listener);
    let handler = CharterStub::default();
    let handled = Arc::clone(&handler.handled);
    let sidecar = start_sidecar_with(crypt_config(&db, ws_addr), handler).await?;

    opaque_session(sidecar.addr(), Arc::clone(&listener), "NOKEY").await?;
    opaque_session(sidecar.addr(), listener, "GHOST").await?;

    assert!(
        lock(&handled).is_empty(),
        "the handler is never asked in an opaque session: {:?}",
        lock(&handled)
    );
    sidecar.stop().await?;
    drop(db);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Plain mode: identity from the session opcodes and the characters database
// ---------------------------------------------------------------------------------

/// What the probe saw of a session: the proxy's identity facts and the charter's
/// character, looked up from the characters DB at login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Identity {
    account_name: Option<String>,
    character_guid: Option<u32>,
    character: Option<Player>,
}

/// Answers `CMSG_PING` itself with `SMSG_PONG` and records what it knows of the
/// session at that moment: a probe the gateway can wait on. Logins and logouts go to
/// the charter it wraps, which looks the character up.
struct IdentityProbe {
    seen: Arc<Mutex<Vec<Identity>>>,
    charter: CharterHandler<Db, Bus>,
}

impl Handler for IdentityProbe {
    type Session = CharterSession;

    fn watched(&self) -> Vec<Opcode> {
        vec![Opcode::CMSG_PING]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        origin == Origin::Client && opcode == Opcode::CMSG_PING
    }

    async fn handle(&self, session: &SessionInfo<CharterSession>, frame: &Frame) -> Decision {
        let facts = session.identity();
        lock(&self.seen).push(Identity {
            account_name: facts.account_name,
            character_guid: facts.character_guid,
            character: session.state().player(),
        });
        let seq = frame.body().get(..4).unwrap_or(&[0; 4]);
        let pong =
            Frame::new(Origin::Server, Opcode::SMSG_PONG, seq).expect("a small server frame");
        Decision::Answer(vec![pong])
    }

    async fn session_event(&self, session: &Arc<SessionInfo<CharterSession>>, event: SessionEvent) {
        self.charter.session_event(session, event).await;
    }
}

/// Sends a probe and returns the identity the handler saw for it.
async fn probe(gw: &mut GatewayEnd, seen: &Mutex<Vec<Identity>>, seq: u32) -> Result<Identity> {
    gw.send(&ping(seq)).await?;
    let answer = gw.expect().await?;
    ensure!(
        answer == pong(seq),
        "expected the probe's answer, got {answer:?}"
    );
    lock(seen)
        .last()
        .cloned()
        .context("the handler recorded nothing")
}

/// Probes until the character looked up in the background is there.
async fn probe_until_character(
    gw: &mut GatewayEnd,
    seen: &Mutex<Vec<Identity>>,
    seq: &mut u32,
) -> Result<Identity> {
    let mut last = Identity::default();
    for _ in 0..100 {
        *seq += 1;
        last = probe(gw, seen, *seq).await?;
        if last.character.is_some() {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the character never appeared; last identity {last:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_looked_up_from_characters_db() -> Result<()> {
    timeout(WHOLE_TEST, identity_is_looked_up_from_characters_db_body())
        .await
        .context("the test timed out")?
}

async fn identity_is_looked_up_from_characters_db_body() -> Result<()> {
    const ACCOUNT: &str = "ALICEACC";
    let db = MariaDb::create("identity").await?;
    let insert =
        "INSERT INTO characters (guid, account, name, race, class, gender, level, online) \
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    db.exec(insert, (42u32, 7u32, "Alice", 1u8, 8u8, 1u8, 80u8, 0u8))
        .await?;
    db.exec(insert, (43u32, 7u32, "Bob", 2u8, 1u8, 0u8, 12u8, 0u8))
        .await?;
    db.exec(
        "INSERT INTO guild_member (guildid, guid, `rank`, pnote, offnote) VALUES (?, ?, ?, ?, ?)",
        (9u32, 42u32, 0u8, "", ""),
    )
    .await?;

    let (listener, ws_addr) = worldserver_listener().await?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        upstream: ws_addr,
        link_mode: LinkMode::Plain,
        characters_db_url: db.url(),
        shutdown_grace_secs: 2,
        ..Config::default()
    };
    let handler = IdentityProbe {
        seen: Arc::default(),
        charter: CharterHandler::new(Db::new(&db.url())?, None, config.charter_settings()),
    };
    let seen = Arc::clone(&handler.seen);
    let sidecar = start_sidecar_with(config, handler).await?;

    // A plain worldserver: verifies logins, completes logouts, records the rest.
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        let mut received = Vec::new();
        while let Some(packet) = ws.recv().await? {
            let opcode = packet.opcode;
            received.push(packet);
            if opcode == Opcode::CMSG_PLAYER_LOGIN.0 {
                let verify = login_verify_world();
                ws.send(verify.opcode as u16, &verify.body).await?;
            } else if opcode == Opcode::CMSG_LOGOUT_REQUEST.0 {
                ws.send(Opcode::SMSG_LOGOUT_COMPLETE.0 as u16, &[]).await?;
            }
        }
        anyhow::Ok(received)
    });

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    assert_eq!(gw.expect().await?, auth_challenge(), "the plain challenge");
    gw.send(&auth_session(ACCOUNT)).await?;
    let mut seq = 0;

    seq += 1;
    let identity = probe(&mut gw, &seen, seq).await?;
    assert_eq!(
        identity,
        Identity {
            account_name: Some(ACCOUNT.to_owned()),
            character_guid: None,
            character: None,
        },
        "after CMSG_AUTH_SESSION: the account only"
    );

    gw.send(&player_login(42)).await?;
    assert_eq!(gw.expect().await?, login_verify_world());
    let identity = probe_until_character(&mut gw, &seen, &mut seq).await?;
    assert_eq!(
        identity,
        Identity {
            account_name: Some(ACCOUNT.to_owned()),
            character_guid: Some(42),
            character: Some(Player {
                guid: 42,
                account: 7,
                name: "Alice".to_owned(),
                race: 1,
                class: 8,
                level: 80,
                guild_id: Some(9),
            }),
        },
        "after SMSG_LOGIN_VERIFY_WORLD: the character with its guild"
    );

    gw.send(&Packet::new(Opcode::CMSG_LOGOUT_REQUEST.0, Vec::new()))
        .await?;
    assert_eq!(
        gw.expect().await?,
        Packet::new(Opcode::SMSG_LOGOUT_COMPLETE.0, Vec::new())
    );
    seq += 1;
    let identity = probe(&mut gw, &seen, seq).await?;
    assert_eq!(
        identity,
        Identity {
            account_name: Some(ACCOUNT.to_owned()),
            character_guid: None,
            character: None,
        },
        "after SMSG_LOGOUT_COMPLETE: no character"
    );

    // A second character of the account, in no guild.
    gw.send(&player_login(43)).await?;
    assert_eq!(gw.expect().await?, login_verify_world());
    let identity = probe_until_character(&mut gw, &seen, &mut seq).await?;
    assert_eq!(
        identity.character,
        Some(Player {
            guid: 43,
            account: 7,
            name: "Bob".to_owned(),
            race: 2,
            class: 1,
            level: 12,
            guild_id: None,
        }),
        "the next login's character, without a guild"
    );
    assert_eq!(identity.character_guid, Some(43));

    gw.finish().await?;
    let received = join(worldserver, "worldserver").await?;
    let rest = gw.recv_to_end().await?;
    assert!(
        rest.is_empty(),
        "nothing more reaches the gateway: {rest:?}"
    );
    assert_eq!(
        received,
        vec![
            auth_session(ACCOUNT),
            player_login(42),
            Packet::new(Opcode::CMSG_LOGOUT_REQUEST.0, Vec::new()),
            player_login(43),
        ],
        "the probes are answered by the handler, everything else is forwarded"
    );

    sidecar.stop().await?;
    drop(db);
    Ok(())
}

// ---------------------------------------------------------------------------------
// An answer injected before the worldserver's first encrypted frame
// ---------------------------------------------------------------------------------

/// A gateway that does not wait for `SMSG_AUTH_RESPONSE` before sending an
/// intercepted opcode: the sidecar's answer must already be encrypted, because the
/// gateway decrypts every server header after its `CMSG_AUTH_SESSION`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_before_first_server_frame_is_encrypted() -> Result<()> {
    timeout(
        WHOLE_TEST,
        answer_before_first_server_frame_is_encrypted_body(),
    )
    .await
    .context("the test timed out")?
}

async fn answer_before_first_server_frame_is_encrypted_body() -> Result<()> {
    let (db, client_crypto, server_crypto) = keyed_account("early", 5).await?;
    let (listener, ws_addr) = worldserver_listener().await?;
    let sidecar = start_sidecar_with(crypt_config(&db, ws_addr), CharterStub::default()).await?;
    let (answered, answer_seen) = oneshot::channel::<()>();
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        ws.expect().await?;
        ws.crypto = Some(server_crypto);
        // Only once the gateway has its injected answer (or gave up).
        let _ = answer_seen.await;
        ws.send(Opcode::SMSG_AUTH_RESPONSE.0 as u16, &AUTH_OK_BODY)
            .await?;
        let mut received = Vec::new();
        while let Some(packet) = ws.recv().await? {
            received.push(packet);
        }
        anyhow::Ok(received)
    });

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    assert_eq!(gw.expect().await?, auth_challenge());
    gw.send_auth(CRYPT_ACCOUNT, client_crypto, &[petition_sign(700), ping(1)])
        .await?;
    let first = gw.expect().await;
    drop(answered);
    assert_eq!(first?, sign_results(700), "the injected answer, encrypted");
    assert_eq!(
        gw.expect().await?,
        Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY)
    );
    gw.finish().await?;
    assert_eq!(join(worldserver, "worldserver").await?, vec![ping(1)]);
    sidecar.stop().await?;
    drop(db);
    Ok(())
}

// ---------------------------------------------------------------------------------
// Large frames stream through
// ---------------------------------------------------------------------------------

/// A 40 KiB server frame nobody watches goes on as it arrives: all but its last KiB
/// reaches the gateway before the worldserver sends that KiB, and in `wotlk-crypt`
/// mode the frames after it still decrypt (the header cipher applied per frame).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_stream_through() -> Result<()> {
    for crypt in [false, true] {
        timeout(WHOLE_TEST, large_frame_streamed_body(crypt))
            .await
            .context("the test timed out")??;
    }
    Ok(())
}

async fn large_frame_streamed_body(crypt: bool) -> Result<()> {
    const HELD: usize = 1024;
    let (db, client_crypto, server_crypto) = keyed_account("stream", 6).await?;
    let (listener, ws_addr) = worldserver_listener().await?;
    let mut config = crypt_config(&db, ws_addr);
    if !crypt {
        config.link_mode = LinkMode::Plain;
    }
    let sidecar = start_sidecar_with(config, CharterStub::default()).await?;
    let large = Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(11, 40 * 1024));
    let (seen, start_seen) = oneshot::channel::<()>();
    let sent = large.clone();
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        ws.expect().await?;
        if crypt {
            ws.crypto = Some(server_crypto);
        }
        ws.send(Opcode::SMSG_AUTH_RESPONSE.0 as u16, &AUTH_OK_BODY)
            .await?;
        ws.send_split(sent.opcode as u16, &sent.body, HELD, start_seen)
            .await?;
        ws.send(SMSG_PONG, &7u32.to_le_bytes()).await?;
        while ws.recv().await?.is_some() {}
        anyhow::Ok(())
    });

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    assert_eq!(gw.expect().await?, auth_challenge());
    if crypt {
        gw.send_auth(CRYPT_ACCOUNT, client_crypto, &[]).await?;
    } else {
        let auth = gw.encode(&auth_session(CRYPT_ACCOUNT))?;
        timeout(STEP, gw.stream.write_all(&auth)).await??;
    }
    assert_eq!(
        gw.expect().await?,
        Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY)
    );
    // The 5-byte large header and the body, but for the bytes still held back.
    let before_held = 5 + large.body.len() - HELD;
    let mut peeked = vec![0u8; before_held];
    let arrived = timeout(STEP, async {
        loop {
            if gw.stream.peek(&mut peeked).await? >= before_held {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    let streamed = arrived.is_ok();
    let _ = seen.send(());
    ensure!(
        streamed,
        "crypt {crypt}: the frame's first {before_held} bytes did not arrive before its last {HELD}"
    );
    assert_eq!(gw.expect().await?, large, "crypt {crypt}: the whole frame");
    assert_eq!(
        gw.expect().await?,
        pong(7),
        "crypt {crypt}: the frame after it"
    );
    gw.finish().await?;
    join(worldserver, "worldserver").await?;
    sidecar.stop().await?;
    drop(db);
    Ok(())
}
