//! The seam between the proxy and whatever decides about watched frames.
//!
//! The session asks [`Handler::intercepts`] for every frame (a cheap opcode check);
//! intercepted frames go to [`Handler::handle`], which returns a [`Decision`].
//! Everything else is forwarded as its original bytes without being decoded.

use std::future::Future;
use std::sync::Arc;

use tc9_codec::{Frame, Opcode, Origin};
use tokio_util::sync::CancellationToken;

use crate::session::SessionInfo;

/// What happens to one intercepted frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward the original bytes onward.
    Forward,
    /// Send these frames onward instead of the original (none: dropped onward).
    Rewrite(Vec<Frame>),
    /// Send these frames back to the side that sent the original, and nothing onward.
    Answer(Vec<Frame>),
    /// Forward nothing.
    Drop,
    /// The handler could not decide (a database down, a malformed body): forward the
    /// original, as the worldserver would see it without a sidecar.
    FailOpen(String),
    /// End the session, as the worldserver kicks a session that floods it.
    Close(String),
}

/// The kind of a [`Decision`], as logs and metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// [`Decision::Forward`].
    Forwarded,
    /// [`Decision::Rewrite`].
    Rewritten,
    /// [`Decision::Answer`].
    Answered,
    /// [`Decision::Drop`].
    Dropped,
    /// [`Decision::FailOpen`].
    FailedOpen,
    /// [`Decision::Close`].
    Closed,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 6] = [
        Outcome::Forwarded,
        Outcome::Rewritten,
        Outcome::Answered,
        Outcome::Dropped,
        Outcome::FailedOpen,
        Outcome::Closed,
    ];

    /// The label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Rewritten => "rewritten",
            Outcome::Answered => "answered",
            Outcome::Dropped => "dropped",
            Outcome::FailedOpen => "failed_open",
            Outcome::Closed => "closed",
        }
    }
}

impl Decision {
    /// The decision's kind.
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::Forward => Outcome::Forwarded,
            Decision::Rewrite(_) => Outcome::Rewritten,
            Decision::Answer(_) => Outcome::Answered,
            Decision::Drop => Outcome::Dropped,
            Decision::FailOpen(_) => Outcome::FailedOpen,
            Decision::Close(_) => Outcome::Closed,
        }
    }
}

/// A change in who plays behind a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The character entered the world through this session.
    EnteredWorld {
        /// `characters.guid`.
        character: u32,
    },
    /// The character logged out, or the session ended.
    LeftWorld {
        /// `characters.guid`.
        character: u32,
    },
}

/// Decides what happens to intercepted frames.
pub trait Handler: Send + Sync + 'static {
    /// What the handler keeps per session; created with the session, dropped with it.
    type Session: Default + Send + Sync + 'static;

    /// The opcodes this handler may intercept, labelled by name in the metrics.
    fn watched(&self) -> Vec<Opcode>;

    /// Whether frames of `opcode` sent by `origin` go to [`Handler::handle`].
    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool;

    /// Decides the fate of one intercepted frame of the session `session`.
    fn handle(
        &self,
        session: &SessionInfo<Self::Session>,
        frame: &Frame,
    ) -> impl Future<Output = Decision> + Send;

    /// Learns that a character entered or left the world through `session`.
    fn session_event(
        &self,
        session: &Arc<SessionInfo<Self::Session>>,
        event: SessionEvent,
    ) -> impl Future<Output = ()> + Send {
        let _ = (session, event);
        async {}
    }

    /// Starts the handler's background work, which stops with `cancel`.
    fn start(&self, cancel: CancellationToken) {
        let _ = cancel;
    }
}

/// A handler that intercepts nothing: the sidecar is a pure pass-through.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl Handler for PassThrough {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        Vec::new()
    }

    fn intercepts(&self, _origin: Origin, _opcode: Opcode) -> bool {
        false
    }

    async fn handle(&self, _session: &SessionInfo, _frame: &Frame) -> Decision {
        Decision::Forward
    }
}
