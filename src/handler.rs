//! The seam between the proxy and the charter resolver.
//!
//! The session asks [`Handler::intercepts`] for every frame (a cheap opcode check);
//! intercepted frames go to [`Handler::handle`], which returns a [`Decision`].
//! Everything else is forwarded as its original bytes without being decoded.

use std::future::Future;
use std::sync::Arc;

use tc9_codec::{Frame, Opcode, Origin};

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
}

impl Decision {
    /// The outcome label used in logs and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Forward => "forwarded",
            Decision::Rewrite(_) => "rewritten",
            Decision::Answer(_) => "answered",
            Decision::Drop => "dropped",
            Decision::FailOpen(_) => "failed_open",
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
    /// Whether frames of `opcode` sent by `origin` go to [`Handler::handle`].
    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool;

    /// Decides the fate of one intercepted frame of the session `session`.
    fn handle(&self, session: &SessionInfo, frame: &Frame)
        -> impl Future<Output = Decision> + Send;

    /// Learns that a character entered or left the world through `session`.
    fn session_event(
        &self,
        session: &Arc<SessionInfo>,
        event: SessionEvent,
    ) -> impl Future<Output = ()> + Send {
        let _ = (session, event);
        async {}
    }
}

/// A handler that intercepts nothing: the sidecar is a pure pass-through.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl Handler for PassThrough {
    fn intercepts(&self, _origin: Origin, _opcode: Opcode) -> bool {
        false
    }

    async fn handle(&self, _session: &SessionInfo, _frame: &Frame) -> Decision {
        Decision::Forward
    }
}
