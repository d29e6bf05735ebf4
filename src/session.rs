//! One gateway connection: its worldserver connection, the frames both ways, and who
//! is playing behind it.
//!
//! ```text
//!  gateway ──read──▶ [client pump] ──write──▶ worldserver
//!                       │    ▲
//!               answers │    │ answers
//!                       ▼    │
//!  gateway ◀──write── [server pump] ◀──read── worldserver
//! ```
//!
//! Each direction is one pump, a task of its own: it reads a chunk from its peer,
//! walks the frames in it where they lie (headers decrypted and re-encrypted in
//! place in `wotlk-crypt` mode) and writes the chunk onward in one write, the way a
//! plain relay copies bytes. Frames the [`Handler`] intercepts, and the few session
//! opcodes the sidecar watches, leave that path: the bytes before them are written,
//! the frame is decided, and what the decision sends onward is written in its place.
//! Answers for the peer a pump reads go to the other pump's bounded inbox, as do
//! frames other sessions deliver. A pump writes before it reads again, so a slow
//! peer stops the pump feeding it (backpressure without unbounded buffers); a pump
//! waiting for room in the other's inbox keeps serving its own, so the two cannot
//! deadlock. Frames nobody rewrites leave as the bytes that arrived.
//!
//! In `wotlk-crypt` mode each of the four legs keeps its own header keystream, so
//! frames can be injected or dropped without desynchronising either peer. When the
//! session key cannot be found, both pumps fall back to copying opaque bytes.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::messages::{CmsgAuthSession, CmsgPlayerLogin};
use tc9_codec::{Frame, FrameCodec, FrameError, HeaderCipher, Message, Opcode, Origin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::capture::Recorder;
use crate::config::LinkMode;
use crate::handler::{Decision, Handler, SessionEvent};
use crate::metrics as m;
use crate::server::Shared;
use crate::store::Character;

/// Room a pump keeps in its read buffer for the next read (the buffer grows further
/// for a frame that needs it). Like a relay's copy buffer, it stays allocated while
/// the session waits.
const READ_CHUNK: usize = 8 * 1024;
/// Drained read buffers up to this size are kept for the next read; larger ones,
/// grown by large frames, are released so idle sessions stay small.
const KEEP_BUFFER: usize = READ_CHUNK;

/// Session-key lookups tried before a `wotlk-crypt` session falls back to opaque
/// bytes: a database hiccup at login should not cost the session its charters.
const KEY_ATTEMPTS: u32 = 3;
/// Wait before the second lookup, doubled before each further one.
const KEY_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// Who is playing behind a session, as far as the sidecar has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Account name from `CMSG_AUTH_SESSION`.
    pub account_name: Option<String>,
    /// Character guid (low part) from `CMSG_PLAYER_LOGIN`.
    pub character_guid: Option<u32>,
    /// The character's row, looked up once per login when a characters DB is set.
    pub character: Option<Character>,
}

/// What handlers may know about a session.
#[derive(Debug)]
pub struct SessionInfo {
    /// Sequence number of the session in this sidecar.
    pub id: u64,
    /// The gateway's address.
    pub peer: SocketAddr,
    identity: Mutex<Identity>,
    to_gateway: mpsc::Sender<Outbound>,
}

/// How long a delivery may wait for room in a session's gateway queue.
const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl SessionInfo {
    /// A session with no identity yet, whose gateway-side pump reads `to_gateway`.
    fn new(id: u64, peer: SocketAddr, to_gateway: mpsc::Sender<Outbound>) -> Self {
        SessionInfo {
            id,
            peer,
            identity: Mutex::new(Identity::default()),
            to_gateway,
        }
    }

    /// Queues server frames toward this session's gateway, in order, after whatever is
    /// queued already; false if the session has ended or its queue stayed full.
    pub async fn send_to_gateway(&self, frames: Vec<Frame>) -> bool {
        for frame in frames {
            if self
                .to_gateway
                .send_timeout(Outbound::Frame(frame), DELIVERY_WAIT)
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }

    /// A snapshot of the session's identity.
    pub fn identity(&self) -> Identity {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Identity> {
        // A panic elsewhere cannot leave an Identity half-written: use it as is.
        self.identity.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one pump hands to the other, through its inbox.
#[derive(Debug)]
enum Outbound {
    /// A frame to write, header encrypted when the pump's writing cipher is on.
    Frame(Frame),
    /// How the server pump handles what follows `SMSG_AUTH_CHALLENGE` (crypt mode).
    Switch(Switch),
}

/// The server pump's change of mode once `CMSG_AUTH_SESSION` was seen (crypt mode).
#[derive(Debug)]
enum Switch {
    /// The session key was found: decrypt the worldserver's headers and encrypt the
    /// gateway's.
    Crypt(Box<Ciphers>),
    /// No session key: copy the rest as opaque bytes.
    Opaque,
}

/// The two keystreams of the server pump.
#[derive(Debug)]
struct Ciphers {
    /// Decrypts the headers the worldserver sends.
    read: HeaderCipher,
    /// Encrypts the headers written to the gateway.
    write: HeaderCipher,
}

/// What a pump does after a frame.
enum Flow {
    /// Go on with the next frame.
    Continue,
    /// Copy the rest of this direction as opaque bytes.
    Opaque,
    /// The session is over.
    Stop,
}

impl From<bool> for Flow {
    /// `true` (sent) continues, `false` (session over) stops.
    fn from(sent: bool) -> Self {
        if sent {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

/// How a pump ended.
enum End {
    /// The peer closed its sending side.
    Eof,
    /// The peer reset, or the stream broke.
    Broken,
    /// The session was cancelled, or the other side of it is gone.
    Cancelled,
}

/// Connects to the worldserver with bounded retries and backoff.
async fn connect_upstream<H: Handler>(shared: &Shared<H>) -> io::Result<TcpStream> {
    let config = &shared.config;
    let mut last = io::Error::other("no attempt made");
    for attempt in 0..config.connect_attempts {
        if attempt > 0 {
            tokio::time::sleep(config.connect_backoff(attempt)).await;
        }
        match TcpStream::connect(&config.upstream).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                debug!(attempt, error = %e, "worldserver connect failed");
                last = e;
            }
        }
    }
    Err(last)
}

/// Runs one gateway connection to its end. Never panics on network input.
pub async fn run<H: Handler>(
    shared: Arc<Shared<H>>,
    gateway: TcpStream,
    peer: SocketAddr,
    id: u64,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!(
        "session",
        sidecar = %shared.config.sidecar_id,
        session = id,
        %peer,
        account = tracing::field::Empty,
        character = tracing::field::Empty,
    );
    async move {
        let upstream = tokio::select! {
            result = connect_upstream(&shared) => result,
            _ = cancel.cancelled() => return,
        };
        let upstream = match upstream {
            Ok(stream) => stream,
            Err(e) => {
                metrics::counter!(m::UPSTREAM_CONNECT_FAILURES_TOTAL).increment(1);
                warn!(upstream = %shared.config.upstream, error = %e, "worldserver unreachable; closing the gateway connection");
                let mut gateway = gateway;
                let _ = gateway.shutdown().await;
                return;
            }
        };
        let _ = gateway.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        metrics::counter!(m::SESSIONS_TOTAL).increment(1);
        metrics::gauge!(m::SESSIONS_OPEN).increment(1.0);
        debug!("session open");
        proxy(shared, gateway, upstream, id, peer, cancel).await;
        metrics::gauge!(m::SESSIONS_OPEN).decrement(1.0);
        debug!("session closed");
    }
    .instrument(span)
    .await
}

/// Moves frames both ways until both directions have ended.
async fn proxy<H: Handler>(
    shared: Arc<Shared<H>>,
    gateway: TcpStream,
    upstream: TcpStream,
    id: u64,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    let session_cancel = cancel.child_token();
    let (gateway_read, gateway_write) = gateway.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let queue = shared.config.session_queue;
    let (to_upstream, upstream_inbox) = mpsc::channel(queue);
    let (to_gateway, gateway_inbox) = mpsc::channel(queue);
    let info = Arc::new(SessionInfo::new(id, peer, to_gateway.clone()));
    let crypt = shared.config.link_mode == LinkMode::WotlkCrypt;

    let recorder = (!shared.config.capture_dir.is_empty()).then(|| {
        Recorder::start(
            std::path::Path::new(&shared.config.capture_dir),
            &shared.config.sidecar_id,
            id,
            &peer.to_string(),
            if crypt { "wotlk-crypt" } else { "plain" },
        )
    });
    let client = Pump {
        shared: Arc::clone(&shared),
        info: Arc::clone(&info),
        recorder: recorder.clone(),
        counters: m::FrameCounters::new(true),
        origin: Origin::Client,
        src: gateway_read,
        dst: upstream_write,
        decoder: FrameCodec::new(Origin::Client, shared.config.max_client_frame),
        encoder: FrameCodec::new(Origin::Client, 0xFFFF),
        buf: BytesMut::new(),
        inbox: upstream_inbox,
        inbox_open: true,
        back: to_gateway,
        crypt,
        opaque: false,
        seen_challenge: false,
        pending_switch: None,
        cancel: session_cancel.clone(),
    };
    let server = Pump {
        shared: Arc::clone(&shared),
        info: Arc::clone(&info),
        recorder,
        counters: m::FrameCounters::new(false),
        origin: Origin::Server,
        src: upstream_read,
        dst: gateway_write,
        decoder: FrameCodec::new(Origin::Server, shared.config.max_server_frame),
        encoder: FrameCodec::server(),
        buf: BytesMut::new(),
        inbox: gateway_inbox,
        inbox_open: true,
        back: to_upstream,
        crypt,
        opaque: false,
        seen_challenge: false,
        pending_switch: None,
        cancel: session_cancel,
    };
    // One task per direction: a packet wakes only the pump that has work.
    let span = tracing::Span::current();
    let client = tokio::spawn(client.run().instrument(span.clone()));
    let server = tokio::spawn(server.run().instrument(span));
    let _ = tokio::join!(client, server);
    let left = info.lock().character_guid.take();
    if let Some(character) = left {
        shared
            .handler
            .session_event(&info, SessionEvent::LeftWorld { character })
            .await;
    }
}

/// One direction of a session: reads `src`, writes `dst`.
struct Pump<H: Handler> {
    shared: Arc<Shared<H>>,
    info: Arc<SessionInfo>,
    /// Where frames are captured, when capturing.
    recorder: Option<Recorder>,
    counters: m::FrameCounters,
    /// Who sends what this pump reads.
    origin: Origin,
    src: OwnedReadHalf,
    dst: OwnedWriteHalf,
    /// Frames read from `src`, with that leg's keystream.
    decoder: FrameCodec,
    /// Frames written to `dst`, with that leg's keystream.
    encoder: FrameCodec,
    /// Bytes read and not yet written: at most the start of one frame between reads.
    buf: BytesMut,
    /// Frames for `dst` from the other pump and from other sessions.
    inbox: mpsc::Receiver<Outbound>,
    inbox_open: bool,
    /// The other pump's inbox: toward the peer this pump reads.
    back: mpsc::Sender<Outbound>,
    /// The link is in `wotlk-crypt` mode.
    crypt: bool,
    /// Bytes are copied without framing from now on.
    opaque: bool,
    /// The server pump has forwarded `SMSG_AUTH_CHALLENGE`.
    seen_challenge: bool,
    /// A crypt switch received before the challenge, applied after it.
    pending_switch: Option<Switch>,
    cancel: CancellationToken,
}

impl<H: Handler> Pump<H> {
    /// Runs this direction to its end.
    async fn run(mut self) {
        let cancel = self.cancel.clone();
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let end = loop {
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                item = self.inbox.recv(), if self.inbox_open => {
                    if !self.serve_inbox(item).await {
                        break End::Cancelled;
                    }
                }
                read = self.src.read_buf(&mut self.buf) => {
                    if let Err(end) = self.after_read(read).await {
                        break end;
                    }
                }
                _ = &mut cancelled => break End::Cancelled,
            }
        };
        match end {
            End::Eof => {
                // Answers queued before the peer closed still go out before the FIN.
                if let Ok(item) = self.inbox.try_recv() {
                    self.deliver(item).await;
                }
                let _ = self.dst.shutdown().await;
            }
            End::Broken => {
                self.dst.close_with_reset();
                cancel.cancel();
            }
            End::Cancelled => {}
        }
    }

    /// Forwards the whole frames in the buffer after a read of `read` bytes.
    async fn after_read(&mut self, read: io::Result<usize>) -> Result<(), End> {
        match read {
            Ok(0) => return self.read_eof().await,
            Ok(_) => {}
            Err(e) => {
                debug!(side = %self.origin, error = %e, "read failed");
                return Err(End::Broken);
            }
        }
        self.forward_buffered().await?;
        if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER {
            self.buf = BytesMut::new();
        } else if let Some(needed) = self.decoder.pending_len(&self.buf) {
            // The start of a large frame: make room for all of it at once.
            self.buf.reserve(needed.saturating_sub(self.buf.len()));
        }
        Ok(())
    }

    /// The peer closed: forward a partial frame it left (plain mode), then end.
    async fn read_eof(&mut self) -> Result<(), End> {
        if self.buf.is_empty() {
            return Err(End::Eof);
        }
        if !self.opaque && self.decoder.is_encrypted() {
            // Its header was decrypted in place: the bytes cannot go on as they came.
            return Err(End::Broken);
        }
        self.count_malformed();
        let rest = self.buf.split();
        if !self.write_bytes(&rest).await {
            return Err(End::Cancelled);
        }
        Err(End::Eof)
    }

    /// Forwards every whole frame in the buffer, leaving the start of the next one.
    async fn forward_buffered(&mut self) -> Result<(), End> {
        if self.opaque {
            let all = self.buf.split();
            return self.write_all(&all).await;
        }
        let mut tally = m::Tally::default();
        // The bytes before `at` are whole frames ready to go as they lie.
        let mut at = 0;
        let result = loop {
            let head = match self.decoder.next_frame(&mut self.buf[at..]) {
                Ok(Some(head)) => head,
                Ok(None) => break Ok(()),
                Err(e) => {
                    let written = self.unframeable(e, at).await;
                    at = 0;
                    break written;
                }
            };
            let end = at + head.len;
            if let Some(recorder) = &self.recorder {
                recorder.record(self.origin, &self.buf[at..end]);
            }
            if !self.watched(head.opcode) {
                self.counters.tally(&mut tally, head.opcode, head.len);
                self.encoder
                    .seal_header(&mut self.buf[at..at + head.header_len]);
                at = end;
                if head.opcode == Opcode::SMSG_AUTH_CHALLENGE && self.origin == Origin::Server {
                    self.seen_challenge = true;
                    if let Some(switch) = self.pending_switch.take() {
                        self.switch(switch);
                        if self.opaque {
                            // Whatever follows the challenge goes on as bytes.
                            at = self.buf.len();
                            break Ok(());
                        }
                    }
                }
                continue;
            }
            self.counters.count(head.opcode, head.len);
            let before = self.buf.split_to(at);
            at = 0;
            let frame = Frame::from_head(self.origin, head, self.buf.split_to(head.len).freeze());
            if let Err(end) = self.write_all(&before).await {
                break Err(end);
            }
            // Boxed: the handler's future is large and rare, and would otherwise sit
            // in every session's pump state, idle or not.
            match Box::pin(self.on_frame(frame)).await {
                Flow::Continue => {}
                Flow::Opaque => {
                    self.opaque = true;
                    let rest = self.buf.split();
                    break self.write_all(&rest).await;
                }
                Flow::Stop => break Err(End::Cancelled),
            }
        };
        self.counters.add(tally);
        result?;
        let ready = self.buf.split_to(at);
        self.write_all(&ready).await
    }

    /// A framing error in the buffer at `at`: plain streams go opaque from there,
    /// encrypted ones are reset.
    async fn unframeable(&mut self, e: FrameError, at: usize) -> Result<(), End> {
        self.count_malformed();
        if self.decoder.is_encrypted() {
            warn!(side = %self.origin, error = %e, "unframeable encrypted stream; resetting the session");
            let ready = self.buf.split_to(at);
            self.write_all(&ready).await?;
            return Err(End::Broken);
        }
        warn!(side = %self.origin, error = %e, "unframeable stream; copying the rest of this direction as bytes");
        self.opaque = true;
        let all = self.buf.split();
        self.write_all(&all).await
    }

    /// Whether a frame leaves the fast path: intercepted, or a session opcode.
    fn watched(&self, opcode: Opcode) -> bool {
        let session = match self.origin {
            Origin::Client => {
                opcode == Opcode::CMSG_AUTH_SESSION || opcode == Opcode::CMSG_PLAYER_LOGIN
            }
            Origin::Server => {
                opcode == Opcode::SMSG_LOGIN_VERIFY_WORLD || opcode == Opcode::SMSG_LOGOUT_COMPLETE
            }
        };
        session || self.shared.handler.intercepts(self.origin, opcode)
    }

    fn count_malformed(&self) {
        metrics::counter!(m::MALFORMED_FRAMES_TOTAL, "direction" => m::direction_label(self.origin == Origin::Client))
            .increment(1);
    }

    /// Writes `bytes` to `dst`; the session is over if that fails.
    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), End> {
        if self.write_bytes(bytes).await {
            Ok(())
        } else {
            Err(End::Cancelled)
        }
    }

    /// Writes `bytes` to `dst`; false when the session is over (a failed write ends
    /// it).
    async fn write_bytes(&mut self, mut bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        // Most writes fit the socket's send buffer at once: no future needed.
        match self.dst.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                self.cancel.cancel();
                return false;
            }
        }
        if bytes.is_empty() {
            return true;
        }
        let written = tokio::select! {
            biased;
            written = self.dst.write_all(bytes) => written,
            _ = self.cancel.cancelled() => return false,
        };
        if written.is_err() {
            self.cancel.cancel();
            return false;
        }
        true
    }

    /// Writes frames to `dst`, headers sealed by this leg's cipher.
    async fn write_frames(&mut self, frames: impl IntoIterator<Item = Frame>) -> bool {
        let mut out = BytesMut::new();
        for frame in frames {
            if let Err(e) = self.encoder.encode(&frame, &mut out) {
                warn!(error = %e, "dropping a frame the pump cannot encode");
            }
        }
        self.write_bytes(&out).await
    }

    /// Handles one item of the inbox, and whatever else is queued behind it.
    async fn deliver(&mut self, first: Outbound) -> bool {
        let mut frames = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Outbound::Frame(frame) => frames.push(frame),
                Outbound::Switch(switch) => {
                    if !self.write_frames(frames.drain(..)).await {
                        return false;
                    }
                    if self.seen_challenge {
                        self.switch(switch);
                        if self.opaque {
                            let rest = self.buf.split();
                            if !self.write_bytes(&rest).await {
                                return false;
                            }
                        }
                    } else {
                        self.pending_switch = Some(switch);
                    }
                }
            }
            next = self.inbox.try_recv().ok();
        }
        self.write_frames(frames).await
    }

    /// Applies a crypt switch to the frames read from here on.
    fn switch(&mut self, switch: Switch) {
        match switch {
            Switch::Crypt(ciphers) => {
                debug!(side = %self.origin, "headers encrypted from here on");
                let Ciphers { read, write } = *ciphers;
                self.decoder.set_cipher(Some(read));
                self.encoder.set_cipher(Some(write));
            }
            Switch::Opaque => {
                debug!(side = %self.origin, "opaque bytes from here on");
                self.opaque = true;
            }
        }
    }

    /// Handles what one `recv` of the inbox gave: delivers the item, or notes that
    /// the inbox is closed; false when the session is over.
    async fn serve_inbox(&mut self, item: Option<Outbound>) -> bool {
        match item {
            Some(item) => self.deliver(item).await,
            None => {
                self.inbox_open = false;
                true
            }
        }
    }

    /// Queues `item` in the other pump's inbox, serving this pump's own inbox while
    /// that one is full; false when the session is over.
    async fn send_back(&mut self, item: Outbound) -> bool {
        let back = self.back.clone();
        let cancel = self.cancel.clone();
        loop {
            tokio::select! {
                biased;
                permit = back.reserve() => {
                    return match permit {
                        Ok(permit) => {
                            permit.send(item);
                            true
                        }
                        Err(_) => false,
                    };
                }
                own = self.inbox.recv(), if self.inbox_open => {
                    if !self.serve_inbox(own).await {
                        return false;
                    }
                }
                _ = cancel.cancelled() => return false,
            }
        }
    }

    /// Handles one watched frame.
    async fn on_frame(&mut self, frame: Frame) -> Flow {
        let event = self.observe(&frame);
        let flow = self.dispatch(frame).await;
        // After the frame is written: a character is announced only once its
        // SMSG_LOGIN_VERIFY_WORLD is on its way to the client.
        if let Some(event) = event {
            self.shared.handler.session_event(&self.info, event).await;
        }
        flow
    }

    /// Sends one frame where the handler decides.
    async fn dispatch(&mut self, frame: Frame) -> Flow {
        let opcode = frame.opcode();
        if self.origin == Origin::Client && opcode == Opcode::CMSG_AUTH_SESSION && self.crypt {
            return self.start_crypt(frame).await;
        }
        if !self.shared.handler.intercepts(self.origin, opcode) {
            return self.write_frames([frame]).await.into();
        }
        let decision = self.shared.handler.handle(&self.info, &frame).await;
        metrics::counter!(
            m::DECISIONS_TOTAL,
            "opcode" => m::opcode_label(opcode),
            "outcome" => decision.outcome()
        )
        .increment(1);
        match decision {
            Decision::Forward => self.write_frames([frame]).await.into(),
            Decision::FailOpen(reason) => {
                info!(%opcode, %reason, "failing open: forwarding the original");
                self.write_frames([frame]).await.into()
            }
            Decision::Rewrite(frames) => self.write_frames(frames).await.into(),
            Decision::Answer(frames) => {
                for f in frames {
                    if !self.send_back(Outbound::Frame(f)).await {
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            }
            Decision::Drop => Flow::Continue,
        }
    }

    /// Tracks the session's identity from the session opcodes.
    fn observe(&self, frame: &Frame) -> Option<SessionEvent> {
        match (self.origin, frame.opcode()) {
            (Origin::Client, Opcode::CMSG_AUTH_SESSION) => {
                if let Ok(auth) = CmsgAuthSession::decode(frame.body()) {
                    tracing::Span::current().record("account", auth.account.as_str());
                    self.info.lock().account_name = Some(auth.account);
                }
                None
            }
            (Origin::Client, Opcode::CMSG_PLAYER_LOGIN) => {
                if let Ok(login) = CmsgPlayerLogin::decode(frame.body()) {
                    let mut identity = self.info.lock();
                    identity.character_guid = Some(login.guid.low());
                    identity.character = None;
                }
                None
            }
            (Origin::Server, Opcode::SMSG_LOGIN_VERIFY_WORLD) => {
                self.look_up_character();
                let character = self.info.lock().character_guid?;
                Some(SessionEvent::EnteredWorld { character })
            }
            (Origin::Server, Opcode::SMSG_LOGOUT_COMPLETE) => {
                let mut identity = self.info.lock();
                identity.character = None;
                let character = identity.character_guid.take()?;
                Some(SessionEvent::LeftWorld { character })
            }
            _ => None,
        }
    }

    /// Loads the logged-in character from the characters DB, off the frame path.
    fn look_up_character(&self) {
        let Some(db) = self.shared.characters.clone() else {
            return;
        };
        let Some(guid) = self.info.lock().character_guid else {
            return;
        };
        let info = Arc::clone(&self.info);
        let span = tracing::Span::current();
        tokio::spawn(
            async move {
                match db.character(guid).await {
                    Ok(Some(character)) => {
                        tracing::Span::current().record("character", character.name.as_str());
                        let mut identity = info.lock();
                        if identity.character_guid == Some(guid) {
                            identity.character = Some(character);
                        }
                    }
                    Ok(None) => warn!(guid, "logged-in character not found in the characters DB"),
                    Err(e) => warn!(guid, error = %e, "character lookup failed"),
                }
            }
            .instrument(span),
        );
    }

    /// The session key of the account of this session, and the lookup's result label
    /// (`found`, `missing`, or `error` when the auth database failed every attempt).
    async fn session_key(&self) -> (Option<[u8; SESSION_KEY_LEN]>, &'static str) {
        let account = self.info.lock().account_name.clone();
        let (Some(db), Some(account)) = (&self.shared.auth, account) else {
            return (None, "missing");
        };
        let mut wait = KEY_RETRY;
        for attempt in 1..=KEY_ATTEMPTS {
            match db.session_key(&account).await {
                Ok(Some(key)) => return (Some(key), "found"),
                Ok(None) => return (None, "missing"),
                Err(e) if attempt < KEY_ATTEMPTS => {
                    debug!(attempt, error = %e, "session key lookup failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => warn!(attempts = KEY_ATTEMPTS, error = %e, "session key lookup failed"),
            }
        }
        (None, "error")
    }

    /// `CMSG_AUTH_SESSION` in crypt mode: find the session key and switch all four legs
    /// to encrypted headers, or the whole session to opaque bytes.
    async fn start_crypt(&mut self, frame: Frame) -> Flow {
        let (key, result) = self.session_key().await;
        metrics::counter!(m::CRYPT_KEY_LOOKUPS_TOTAL, "result" => result).increment(1);
        match key {
            Some(key) => {
                self.decoder
                    .set_cipher(Some(HeaderCipher::client_to_server(&key)));
                // The worldserver encrypts every header after its SMSG_AUTH_CHALLENGE,
                // and the gateway decrypts every one after its CMSG_AUTH_SESSION,
                // answers injected by the sidecar included.
                let server_side = Box::new(Ciphers {
                    read: HeaderCipher::server_to_client(&key),
                    write: HeaderCipher::server_to_client(&key),
                });
                if !self
                    .send_back(Outbound::Switch(Switch::Crypt(server_side)))
                    .await
                    || !self.write_frames([frame]).await
                {
                    return Flow::Stop;
                }
                self.encoder
                    .set_cipher(Some(HeaderCipher::client_to_server(&key)));
                Flow::Continue
            }
            None => {
                metrics::counter!(m::CRYPT_FALLBACKS_TOTAL).increment(1);
                warn!("no session key; copying this session as opaque bytes");
                if self.send_back(Outbound::Switch(Switch::Opaque)).await
                    && self.write_frames([frame]).await
                {
                    Flow::Opaque
                } else {
                    Flow::Stop
                }
            }
        }
    }
}

/// A write half that can be closed with a reset instead of a FIN.
pub trait SetLinger {
    /// Closes with RST (once the read half is dropped too) instead of FIN.
    fn close_with_reset(self);
}

impl SetLinger for OwnedWriteHalf {
    fn close_with_reset(self) {
        let stream: &TcpStream = self.as_ref();
        let _ = stream.set_zero_linger();
        // No FIN on drop: the socket closes, with RST, when its read half goes.
        self.forget();
    }
}
