//! One gateway connection: its worldserver connection, the two pumps between them,
//! and what a handler may know about who plays behind it.
//!
//! ```text
//!  gateway ──read──▶ [client pump] ──write──▶ worldserver
//!                       │    ▲
//!               answers │    │ answers
//!                       ▼    │
//!  gateway ◀──write── [server pump] ◀──read── worldserver
//! ```
//!
//! Each direction is one pump, a task of its own (see `pump`). Answers for the peer a
//! pump reads go to the other pump's bounded inbox, as do frames other sessions
//! deliver through [`SessionInfo::deliver`].

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tc9_codec::{Frame, FrameCodec, Origin};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn, Instrument};

use crate::capture::Recorder;
use crate::config::LinkMode;
use crate::crypt::{Link, Switch};
use crate::handler::{Handler, SessionEvent};
use crate::metrics as m;
use crate::pump::Pump;
use crate::server::Shared;

/// Who is playing behind a session, as far as the proxy has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Account name from `CMSG_AUTH_SESSION`.
    pub account_name: Option<String>,
    /// The character the worldserver let into the world (`SMSG_LOGIN_VERIFY_WORLD`
    /// answering this session's `CMSG_PLAYER_LOGIN`); `None` before that and after
    /// `SMSG_LOGOUT_COMPLETE`.
    pub character_guid: Option<u32>,
    /// The `CMSG_PLAYER_LOGIN` waiting for the worldserver's answer.
    pub(crate) pending_login: Option<u32>,
}

/// What a handler may know about a session, and the handler's own state `S` for it.
#[derive(Debug)]
pub struct SessionInfo<S = ()> {
    /// Sequence number of the session in this sidecar.
    pub id: u64,
    /// The gateway's address.
    pub peer: SocketAddr,
    identity: Mutex<Identity>,
    to_gateway: mpsc::Sender<Outbound>,
    state: S,
}

impl<S: Default> SessionInfo<S> {
    /// A session with no identity yet, whose gateway-side pump reads `to_gateway`.
    fn new(id: u64, peer: SocketAddr, to_gateway: mpsc::Sender<Outbound>) -> Self {
        SessionInfo {
            id,
            peer,
            identity: Mutex::new(Identity::default()),
            to_gateway,
            state: S::default(),
        }
    }
}

impl<S> SessionInfo<S> {
    /// Sends server frames to this session's gateway, in order, after whatever is
    /// queued already; true once they are written to its socket. If its pump has
    /// not taken them within `wait` (a client that does not read, a session that
    /// ended) this gives up and they are never written later, so the caller may
    /// offer them again elsewhere without the client seeing them twice; once taken,
    /// it waits for the write's outcome.
    pub async fn deliver(&self, frames: Vec<Frame>, wait: Duration) -> bool {
        let state = Arc::new(AtomicU8::new(QUEUED));
        let (written, mut ack) = oneshot::channel();
        let item = Outbound::Delivery(Box::new(Delivery {
            frames,
            state: Arc::clone(&state),
            written,
        }));
        if self.to_gateway.send_timeout(item, wait).await.is_err() {
            return false;
        }
        match tokio::time::timeout(wait, &mut ack).await {
            Ok(outcome) => outcome.is_ok(),
            Err(_) => {
                let abandoned = state
                    .compare_exchange(QUEUED, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
                !abandoned && ack.await.is_ok()
            }
        }
    }

    /// A snapshot of the session's identity.
    pub fn identity(&self) -> Identity {
        self.lock().clone()
    }

    /// The handler's state for this session.
    pub fn state(&self) -> &S {
        &self.state
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Identity> {
        // A panic elsewhere cannot leave an Identity half-written: use it as is.
        self.identity.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one pump hands to the other, through its inbox.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A frame to write, header encrypted when the pump's writing cipher is on.
    /// Boxed, as is a delivery, so that an item takes 16 bytes: an idle session's two
    /// queues hold a block of 32 items each.
    Frame(Box<Frame>),
    /// Frames another session delivers, acknowledged once written.
    Delivery(Box<Delivery>),
    /// How the server pump handles what follows `SMSG_AUTH_CHALLENGE` (crypt mode).
    Switch(Switch),
}

/// A delivery still in the queue.
const QUEUED: u8 = 0;
/// A delivery the pump is writing: it will be written or the session ends.
const TAKEN: u8 = 1;
/// A delivery its sender stopped waiting for: never written.
const ABANDONED: u8 = 2;

/// Frames on their way to the gateway for [`SessionInfo::deliver`].
#[derive(Debug)]
pub(crate) struct Delivery {
    frames: Vec<Frame>,
    state: Arc<AtomicU8>,
    written: oneshot::Sender<()>,
}

impl Delivery {
    /// The frames, unless the sender stopped waiting (then nothing is to be written).
    pub(crate) fn take(&mut self) -> Option<Vec<Frame>> {
        self.state
            .compare_exchange(QUEUED, TAKEN, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| std::mem::take(&mut self.frames))
    }

    /// Tells the sender its frames are on the socket.
    pub(crate) fn written(self) {
        let _ = self.written.send(());
    }
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
pub(crate) async fn run<H: Handler>(
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
            result = Box::pin(connect_upstream(&shared)) => result,
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
    let (info, client, server) = spawn_pumps(&shared, gateway, upstream, id, peer, cancel);
    let _ = tokio::join!(client, server);
    let left = info.lock().character_guid.take();
    if let Some(character) = left {
        // Boxed: the handler's future would otherwise sit in every session's task.
        Box::pin(
            shared
                .handler
                .session_event(&info, SessionEvent::LeftWorld { character }),
        )
        .await;
    }
}

/// The session's state and its two pumps, one task per direction (a packet wakes
/// only the pump that has work). Not async: nothing built here stays in the session's
/// own task.
fn spawn_pumps<H: Handler>(
    shared: &Arc<Shared<H>>,
    gateway: TcpStream,
    upstream: TcpStream,
    id: u64,
    peer: SocketAddr,
    cancel: CancellationToken,
) -> (Arc<SessionInfo<H::Session>>, JoinHandle<()>, JoinHandle<()>) {
    let session_cancel = cancel.child_token();
    let (gateway_read, gateway_write) = gateway.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let queue = shared.config.session_queue;
    let (to_upstream, upstream_inbox) = mpsc::channel(queue);
    let (to_gateway, gateway_inbox) = mpsc::channel(queue);
    let info = Arc::new(SessionInfo::<H::Session>::new(id, peer, to_gateway.clone()));
    let config = &shared.config;
    let crypt = config.link_mode == LinkMode::WotlkCrypt;

    let recorder = (!config.capture_dir.is_empty()).then(|| {
        Recorder::start(
            std::path::Path::new(&config.capture_dir),
            config.capture_format,
            &config.sidecar_id,
            id,
            &peer.to_string(),
            config.link_mode.name(),
        )
    });
    let client = Pump {
        shared: Arc::clone(shared),
        info: Arc::clone(&info),
        recorder: recorder.clone(),
        counters: m::FrameCounters::new(Origin::Client, shared.labels.clone()),
        origin: Origin::Client,
        src: gateway_read,
        dst: upstream_write,
        decoder: FrameCodec::new(Origin::Client, config.max_client_frame),
        encoder: FrameCodec::new(Origin::Client, 0xFFFF),
        buf: Default::default(),
        read_waiting: false,
        streaming: 0,
        inbox: upstream_inbox,
        inbox_open: true,
        side: None,
        back: to_gateway,
        link: Link::client(crypt),
        cancel: session_cancel.clone(),
        first_frame: (!config.first_frame_timeout.is_zero())
            .then(|| Box::pin(tokio::time::sleep(config.first_frame_timeout))),
    };
    let server = Pump {
        shared: Arc::clone(shared),
        info: Arc::clone(&info),
        recorder,
        counters: m::FrameCounters::new(Origin::Server, shared.labels.clone()),
        origin: Origin::Server,
        src: upstream_read,
        dst: gateway_write,
        decoder: FrameCodec::new(Origin::Server, config.max_server_frame),
        encoder: FrameCodec::server(),
        buf: Default::default(),
        read_waiting: false,
        streaming: 0,
        inbox: gateway_inbox,
        inbox_open: true,
        side: None,
        back: to_upstream,
        link: Link::server(crypt),
        cancel: session_cancel,
        first_frame: None,
    };
    let span = tracing::Span::current();
    let client = tokio::spawn(client.run().instrument(span.clone()));
    let server = tokio::spawn(server.run().instrument(span));
    (info, client, server)
}
