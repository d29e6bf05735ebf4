//! One gateway connection: its worldserver connection, the frames both ways, and who
//! is playing behind it.
//!
//! ```text
//!  gateway ──read──▶ [client reader] ──queue──▶ [upstream writer] ──▶ worldserver
//!  gateway ◀──────── [gateway writer] ◀──queue── [server reader] ◀──read── worldserver
//! ```
//!
//! Each reader frames its socket, lets the [`Handler`] decide about intercepted
//! opcodes and puts frames on the bounded queue of a writer: onward, or back to the
//! side that sent them. Writers only write, so a slow peer fills its writer's queue,
//! which stops the reader feeding it: backpressure without unbounded buffers, and no
//! cycle that could deadlock. Frames nobody rewrites leave as the bytes that arrived.
//!
//! In `wotlk-crypt` mode each of the four legs keeps its own header keystream, so
//! frames can be injected or dropped without desynchronising either peer. When the
//! session key cannot be found, both readers fall back to copying opaque bytes.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::messages::{CmsgAuthSession, CmsgPlayerLogin};
use tc9_codec::{Frame, FrameCodec, FrameError, HeaderCipher, Message, Opcode, Origin};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::capture::Recorder;
use crate::config::LinkMode;
use crate::handler::{Decision, Handler, SessionEvent};
use crate::metrics as m;
use crate::server::Shared;
use crate::store::Character;

/// Initial read buffer per socket; grows for large frames.
const READ_BUFFER: usize = 2 * 1024;
/// Bytes a writer gathers from its queue before writing them out.
const WRITE_BATCH: usize = 64 * 1024;
/// Buffers grown past this by large frames are released once drained.
const SHRINK_ABOVE: usize = 16 * 1024;

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
    /// A session with no identity yet, whose gateway writer reads `to_gateway`.
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

/// What a reader hands to a writer.
#[derive(Debug)]
enum Outbound {
    /// A frame, header encrypted by the writer when its cipher is on.
    Frame(Frame),
    /// Opaque bytes, written as they are.
    Raw(Bytes),
    /// Encrypt the headers of every later frame.
    StartCipher(Box<HeaderCipher>),
    /// The source side finished sending: flush and half-close.
    Shutdown,
    /// The source side reset: reset this side too.
    Reset,
}

/// A change the client reader asks of the server reader's decoder (crypt mode).
#[derive(Debug)]
enum Switch {
    /// Decrypt headers from the next frame on.
    Cipher(Box<[u8; SESSION_KEY_LEN]>),
    /// Stop framing: copy bytes.
    Opaque,
}

type SwitchSlot = Arc<Mutex<Option<Switch>>>;

/// What a session decoder yields.
#[derive(Debug)]
enum Inbound {
    Frame(Frame),
    /// The session went opaque: copy the rest as bytes.
    Opaque,
    /// The peer closed in the middle of a frame: these bytes are all that is left.
    Tail(Bytes),
}

/// The frame codec plus the crypt-mode switch of the worldserver side.
#[derive(Debug)]
struct SessionDecoder {
    codec: FrameCodec,
    switch: Option<SwitchSlot>,
    /// The worldserver's `SMSG_AUTH_CHALLENGE` (always plain) has been read.
    seen_challenge: bool,
}

impl SessionDecoder {
    fn new(codec: FrameCodec, switch: Option<SwitchSlot>) -> Self {
        SessionDecoder {
            codec,
            switch,
            seen_challenge: false,
        }
    }
}

impl Decoder for SessionDecoder {
    type Item = Inbound;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, FrameError> {
        if let (Some(slot), true) = (&self.switch, self.seen_challenge) {
            // The switch is set before CMSG_AUTH_SESSION goes upstream, and after its
            // plain challenge the worldserver sends nothing until it has read that
            // packet: whatever is buffered from here on starts an encrypted frame.
            let pending = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            match pending {
                Some(Switch::Cipher(key)) => {
                    self.codec
                        .set_cipher(Some(HeaderCipher::server_to_client(&key)));
                    self.switch = None;
                }
                Some(Switch::Opaque) => {
                    self.switch = None;
                    return Ok(Some(Inbound::Opaque));
                }
                None => {}
            }
        }
        let frame = self.codec.decode(src)?;
        if let Some(frame) = &frame {
            if frame.opcode() == Opcode::SMSG_AUTH_CHALLENGE {
                self.seen_challenge = true;
            }
        }
        Ok(frame.map(Inbound::Frame))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, FrameError> {
        match self.decode(src)? {
            Some(inbound) => Ok(Some(inbound)),
            None if src.is_empty() => Ok(None),
            None => Ok(Some(Inbound::Tail(src.split().freeze()))),
        }
    }
}

/// What a reader does after a frame.
enum Flow {
    /// Read the next frame.
    Continue,
    /// Copy the rest of this direction as opaque bytes.
    Opaque,
    /// The session is over.
    Stop,
}

impl From<bool> for Flow {
    /// `true` (queued) continues, `false` (session over) stops.
    fn from(sent: bool) -> Self {
        if sent {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }
}

/// How a reader ended.
enum ReadEnd {
    /// The peer closed its sending side.
    Eof,
    /// The peer reset, or the stream broke.
    Broken,
    /// The session was cancelled.
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
    let (to_upstream, upstream_queue) = mpsc::channel(queue);
    let (to_gateway, gateway_queue) = mpsc::channel(queue);
    let info = Arc::new(SessionInfo::new(id, peer, to_gateway.clone()));
    let crypt = shared.config.link_mode == LinkMode::WotlkCrypt;
    let switch: Option<SwitchSlot> = crypt.then(SwitchSlot::default);

    let client_reader = FramedRead::with_capacity(
        gateway_read,
        SessionDecoder::new(
            FrameCodec::new(Origin::Client, shared.config.max_client_frame),
            None,
        ),
        READ_BUFFER,
    );
    let server_reader = FramedRead::with_capacity(
        upstream_read,
        SessionDecoder::new(
            FrameCodec::new(Origin::Server, shared.config.max_server_frame),
            switch.clone(),
        ),
        READ_BUFFER,
    );

    let recorder = (!shared.config.capture_dir.is_empty()).then(|| {
        Recorder::start(
            std::path::Path::new(&shared.config.capture_dir),
            &shared.config.sidecar_id,
            id,
            &peer.to_string(),
            if crypt { "wotlk-crypt" } else { "plain" },
        )
    });
    let client_side = Reader {
        shared: &shared,
        recorder: recorder.clone(),
        info: &info,
        origin: Origin::Client,
        onward: to_upstream.clone(),
        back: to_gateway.clone(),
        switch,
        cancel: &session_cancel,
    };
    let server_side = Reader {
        shared: &shared,
        recorder,
        info: &info,
        origin: Origin::Server,
        onward: to_gateway,
        back: to_upstream,
        switch: None,
        cancel: &session_cancel,
    };
    tokio::join!(
        client_side.run(client_reader),
        server_side.run(server_reader),
        write_side(
            upstream_write,
            upstream_queue,
            FrameCodec::new(Origin::Client, 0xFFFF),
            &session_cancel
        ),
        write_side(
            gateway_write,
            gateway_queue,
            FrameCodec::server(),
            &session_cancel
        ),
    );
    let left = info.lock().character_guid.take();
    if let Some(character) = left {
        shared
            .handler
            .session_event(&info, SessionEvent::LeftWorld { character })
            .await;
    }
}

/// One direction's reader and where its frames go.
struct Reader<'a, H: Handler> {
    shared: &'a Shared<H>,
    /// Where frames are captured, when capturing.
    recorder: Option<Recorder>,
    info: &'a Arc<SessionInfo>,
    origin: Origin,
    /// Toward the other peer.
    onward: mpsc::Sender<Outbound>,
    /// Back toward the peer this reader reads.
    back: mpsc::Sender<Outbound>,
    /// The server reader's switch, set by the client reader in crypt mode.
    switch: Option<SwitchSlot>,
    cancel: &'a CancellationToken,
}

impl<H: Handler> Reader<'_, H> {
    async fn run<R>(self, mut reader: FramedRead<R, SessionDecoder>)
    where
        R: AsyncRead + Unpin,
    {
        let counters = m::FrameCounters::new(self.origin == Origin::Client);
        let end = loop {
            let next = tokio::select! {
                next = reader.next() => next,
                _ = self.cancel.cancelled() => break ReadEnd::Cancelled,
            };
            match next {
                None => break ReadEnd::Eof,
                Some(Ok(Inbound::Frame(frame))) => {
                    shrink_read_buffer(&mut reader);
                    counters.count(frame.opcode(), frame.len());
                    if let Some(recorder) = &self.recorder {
                        recorder.record(self.origin, &frame);
                    }
                    match self.on_frame(frame, &mut reader).await {
                        Flow::Continue => {}
                        Flow::Opaque => break self.copy_opaque(reader).await,
                        Flow::Stop => break ReadEnd::Cancelled,
                    }
                }
                Some(Ok(Inbound::Opaque)) => break self.copy_opaque(reader).await,
                Some(Ok(Inbound::Tail(bytes))) => {
                    // A partial frame before the peer closed: forward what came, in
                    // plain mode (an encrypted header was decrypted in place).
                    if reader.decoder().codec.is_encrypted() {
                        break ReadEnd::Broken;
                    }
                    metrics::counter!(m::MALFORMED_FRAMES_TOTAL, "direction" => direction(self.origin))
                        .increment(1);
                    if !self.send(&self.onward, Outbound::Raw(bytes)).await {
                        break ReadEnd::Cancelled;
                    }
                }
                Some(Err(FrameError::Io(e))) => {
                    debug!(side = %self.origin, error = %e, "read failed");
                    break ReadEnd::Broken;
                }
                Some(Err(e)) => {
                    metrics::counter!(m::MALFORMED_FRAMES_TOTAL, "direction" => direction(self.origin))
                        .increment(1);
                    if reader.decoder().codec.is_encrypted() {
                        warn!(side = %self.origin, error = %e, "unframeable encrypted stream; resetting the session");
                        break ReadEnd::Broken;
                    }
                    warn!(side = %self.origin, error = %e, "unframeable stream; copying the rest of this direction as bytes");
                    break self.copy_opaque(reader).await;
                }
            }
        };
        match end {
            ReadEnd::Eof => {
                let _ = self.onward.send(Outbound::Shutdown).await;
            }
            ReadEnd::Broken => {
                let _ = self.onward.try_send(Outbound::Reset);
                self.cancel.cancel();
            }
            ReadEnd::Cancelled => {}
        }
    }

    /// Queues `item` on `queue`; false when the session is over.
    async fn send(&self, queue: &mpsc::Sender<Outbound>, item: Outbound) -> bool {
        tokio::select! {
            sent = queue.send(item) => sent.is_ok(),
            _ = self.cancel.cancelled() => false,
        }
    }

    /// Handles one frame.
    async fn on_frame<R>(&self, frame: Frame, reader: &mut FramedRead<R, SessionDecoder>) -> Flow {
        let event = self.observe(&frame);
        let flow = self.dispatch(frame, reader).await;
        // After the frame is queued: a character is announced only once its
        // SMSG_LOGIN_VERIFY_WORLD is on its way to the client.
        if let Some(event) = event {
            self.shared.handler.session_event(self.info, event).await;
        }
        flow
    }

    /// Sends one frame where the handler decides.
    async fn dispatch<R>(&self, frame: Frame, reader: &mut FramedRead<R, SessionDecoder>) -> Flow {
        let opcode = frame.opcode();
        if self.origin == Origin::Client && opcode == Opcode::CMSG_AUTH_SESSION {
            if let Some(slot) = &self.switch {
                return self.start_crypt(slot, frame, reader).await;
            }
        }
        if !self.shared.handler.intercepts(self.origin, opcode) {
            return self.send(&self.onward, Outbound::Frame(frame)).await.into();
        }
        let decision = self.shared.handler.handle(self.info, &frame).await;
        metrics::counter!(
            m::DECISIONS_TOTAL,
            "opcode" => m::opcode_label(opcode),
            "outcome" => decision.outcome()
        )
        .increment(1);
        let (queue, frames) = match decision {
            Decision::Forward => (&self.onward, vec![frame]),
            Decision::FailOpen(reason) => {
                info!(%opcode, %reason, "failing open: forwarding the original");
                (&self.onward, vec![frame])
            }
            Decision::Rewrite(frames) => (&self.onward, frames),
            Decision::Answer(frames) => (&self.back, frames),
            Decision::Drop => (&self.onward, Vec::new()),
        };
        for f in frames {
            if !self.send(queue, Outbound::Frame(f)).await {
                return Flow::Stop;
            }
        }
        Flow::Continue
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
        let info = Arc::clone(self.info);
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

    /// `CMSG_AUTH_SESSION` in crypt mode: find the session key and switch all four legs
    /// to encrypted headers, or the whole session to opaque bytes.
    async fn start_crypt<R>(
        &self,
        slot: &SwitchSlot,
        frame: Frame,
        reader: &mut FramedRead<R, SessionDecoder>,
    ) -> Flow {
        let account = self.info.lock().account_name.clone();
        let key = match (&self.shared.auth, account) {
            (Some(db), Some(account)) => match db.session_key(&account).await {
                Ok(key) => key,
                Err(e) => {
                    warn!(error = %e, "session key lookup failed");
                    None
                }
            },
            _ => None,
        };
        let found = if key.is_some() { "found" } else { "missing" };
        metrics::counter!(m::CRYPT_KEY_LOOKUPS_TOTAL, "result" => found).increment(1);
        match key {
            Some(key) => {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Switch::Cipher(Box::new(key)));
                reader
                    .decoder_mut()
                    .codec
                    .set_cipher(Some(HeaderCipher::client_to_server(&key)));
                // The gateway decrypts every server header after its CMSG_AUTH_SESSION,
                // answers injected by the sidecar included: its writer encrypts from now.
                // The only plain server frame, SMSG_AUTH_CHALLENGE, is queued already.
                let upstream_cipher = Box::new(HeaderCipher::client_to_server(&key));
                let gateway_cipher = Box::new(HeaderCipher::server_to_client(&key));
                (self
                    .send(&self.back, Outbound::StartCipher(gateway_cipher))
                    .await
                    && self.send(&self.onward, Outbound::Frame(frame)).await
                    && self
                        .send(&self.onward, Outbound::StartCipher(upstream_cipher))
                        .await)
                    .into()
            }
            None => {
                metrics::counter!(m::CRYPT_FALLBACKS_TOTAL).increment(1);
                warn!("no session key; copying this session as opaque bytes");
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Switch::Opaque);
                if self.send(&self.onward, Outbound::Frame(frame)).await {
                    Flow::Opaque
                } else {
                    Flow::Stop
                }
            }
        }
    }

    /// Copies everything the reader has left, buffered bytes first, as opaque bytes.
    async fn copy_opaque<R>(&self, reader: FramedRead<R, SessionDecoder>) -> ReadEnd
    where
        R: AsyncRead + Unpin,
    {
        let parts = reader.into_parts();
        let mut io = parts.io;
        let buffered = parts.read_buf;
        if !buffered.is_empty()
            && !self
                .send(&self.onward, Outbound::Raw(buffered.freeze()))
                .await
        {
            return ReadEnd::Cancelled;
        }
        loop {
            let mut buf = BytesMut::with_capacity(16 * 1024);
            let read = tokio::select! {
                read = io.read_buf(&mut buf) => read,
                _ = self.cancel.cancelled() => return ReadEnd::Cancelled,
            };
            match read {
                Ok(0) => return ReadEnd::Eof,
                Ok(_) => {
                    if !self.send(&self.onward, Outbound::Raw(buf.freeze())).await {
                        return ReadEnd::Cancelled;
                    }
                }
                Err(_) => return ReadEnd::Broken,
            }
        }
    }
}

/// Releases a read buffer that large frames grew, keeping the bytes it holds.
fn shrink_read_buffer<R>(reader: &mut FramedRead<R, SessionDecoder>) {
    let buffer = reader.read_buffer_mut();
    if buffer.capacity() > SHRINK_ABOVE && buffer.len() <= READ_BUFFER {
        let mut smaller = BytesMut::with_capacity(READ_BUFFER);
        smaller.extend_from_slice(buffer);
        *buffer = smaller;
    }
}

/// The metrics label of a direction.
fn direction(origin: Origin) -> &'static str {
    m::direction_label(origin == Origin::Client)
}

/// Writes what the queue brings, batching what is already queued into one write.
async fn write_side<W>(
    mut io: W,
    mut queue: mpsc::Receiver<Outbound>,
    mut codec: FrameCodec,
    cancel: &CancellationToken,
) where
    W: AsyncWrite + Unpin + SetLinger,
{
    let mut buf = BytesMut::new();
    loop {
        let first = tokio::select! {
            // A reset queued just before the session was cancelled must still go out.
            biased;
            item = queue.recv() => item,
            _ = cancel.cancelled() => return,
        };
        // Every reader is gone: nothing more will come.
        let Some(first) = first else {
            let _ = io.shutdown().await;
            return;
        };
        let mut end = None;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Outbound::Frame(frame) => {
                    if let Err(e) = tokio_util::codec::Encoder::encode(&mut codec, &frame, &mut buf)
                    {
                        warn!(error = %e, "dropping a frame the writer cannot encode");
                    }
                }
                Outbound::Raw(bytes) => buf.extend_from_slice(&bytes),
                Outbound::StartCipher(cipher) => codec.set_cipher(Some(*cipher)),
                Outbound::Shutdown => end = Some(Outbound::Shutdown),
                Outbound::Reset => end = Some(Outbound::Reset),
            }
            if end.is_none() && buf.len() < WRITE_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !buf.is_empty() {
            let written = tokio::select! {
                written = io.write_all(&buf) => written,
                _ = cancel.cancelled() => return,
            };
            if written.is_err() {
                cancel.cancel();
                return;
            }
            buf.clear();
            // Give back what a burst of large frames grew, so idle sessions stay small.
            if buf.capacity() > SHRINK_ABOVE {
                buf = BytesMut::new();
            }
        }
        match end {
            Some(Outbound::Reset) => {
                io.close_with_reset();
                return;
            }
            Some(_) => {
                let _ = io.shutdown().await;
                return;
            }
            None => {}
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
