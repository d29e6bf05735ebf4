//! One direction of a session: reads its peer, writes the other side.
//!
//! A pump reads a chunk, walks the frames in it where they lie (headers decrypted
//! and sealed again in place in `wotlk-crypt` mode) and writes the chunk onward in
//! one write, the way a plain relay copies bytes. A frame nobody watches is not held
//! for its last byte: once its header is in, what has come of it goes on, and the
//! rest follows as it arrives (when capturing, frames are held whole for the
//! recorder). Frames the [`Handler`] intercepts,
//! and the session opcodes, leave that path (see `watch`): the bytes before them are
//! written, the frame is decided, and what the decision sends onward is written in
//! its place. A pump writes before it reads again, so a slow peer stops the pump
//! feeding it (backpressure without unbounded buffers); a pump waiting for room in
//! the other's inbox keeps serving its own, so the two cannot deadlock.

use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tc9_codec::{Frame, FrameCodec, FrameError, FrameHead, Opcode, Origin};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::capture::Recorder;
use crate::chunk::{Chunk, READ_CHUNK};
use crate::crypt::Link;
use crate::handler::Handler;
use crate::metrics as m;
use crate::server::Shared;
use crate::session::{Outbound, SessionInfo};
use crate::watch::is_session_opcode;

mod event;
mod write;

use event::{Event, Side};

use write::SetLinger;

/// What a pump does after a frame.
pub(crate) enum Flow {
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

/// One direction of a session: reads `src`, writes `dst`.
pub(crate) struct Pump<H: Handler> {
    pub(crate) shared: Arc<Shared<H>>,
    pub(crate) info: Arc<SessionInfo<H::Session>>,
    /// Where frames are captured, when capturing.
    pub(crate) recorder: Option<Recorder>,
    pub(crate) counters: m::FrameCounters,
    /// Who sends what this pump reads.
    pub(crate) origin: Origin,
    pub(crate) src: OwnedReadHalf,
    pub(crate) dst: OwnedWriteHalf,
    /// Frames read from `src`, with that leg's keystream.
    pub(crate) decoder: FrameCodec,
    /// Frames written to `dst`, with that leg's keystream.
    pub(crate) encoder: FrameCodec,
    /// Bytes read and not yet written: at most the start of one frame between reads.
    pub(crate) buf: Chunk,
    /// The read waker is registered: the next poll reads without checking readiness
    /// first.
    pub(crate) read_waiting: bool,
    /// Bytes still to come of a frame passing through as it arrives.
    pub(crate) streaming: usize,
    /// Frames for `dst` from the other pump and from other sessions.
    pub(crate) inbox: mpsc::Receiver<Outbound>,
    pub(crate) inbox_open: bool,
    /// The waker the inbox and the cancellation are polled with, once polled.
    pub(crate) side: Option<Side>,
    /// The other pump's inbox: toward the peer this pump reads.
    pub(crate) back: mpsc::Sender<Outbound>,
    /// Plain frames, encrypted headers on their way, or opaque bytes.
    pub(crate) link: Link,
    pub(crate) cancel: CancellationToken,
    /// Until the first whole frame (client side only): when the peer is given up.
    pub(crate) first_frame: Option<Pin<Box<Sleep>>>,
}

impl<H: Handler> Pump<H> {
    /// Runs this direction to its end.
    pub(crate) async fn run(mut self) {
        let cancel = self.cancel.clone();
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let end = loop {
            if !self.buf.is_empty() && self.buf.room() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            let event = std::future::poll_fn(|cx| self.poll_event(cx, cancelled.as_mut())).await;
            match event {
                Event::Inbox(item) => {
                    // Boxed: writing queued frames is rare next to reading, and its
                    // future would otherwise sit in every pump, idle or not.
                    if !Box::pin(self.serve_inbox(item)).await {
                        break End::Cancelled;
                    }
                }
                Event::Read(read) => {
                    if let Err(end) = self.after_read(read).await {
                        break end;
                    }
                }
                Event::FirstFrameLate => {
                    metrics::counter!(m::SESSIONS_REFUSED_TOTAL, "reason" => "first_frame")
                        .increment(1);
                    debug!("no whole frame in time; closing");
                    break End::Broken;
                }
                Event::Cancelled => break End::Cancelled,
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
        if self.buf.is_empty() {
            self.buf.give_back();
        } else if let Some(needed) = self.decoder.pending_len(self.buf.bytes()) {
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
        if !self.link.is_opaque() && self.decoder.is_encrypted() {
            // Its header was decrypted in place: the bytes cannot go on as they came.
            return Err(End::Broken);
        }
        self.count_malformed();
        self.write_front(self.buf.len()).await?;
        Err(End::Eof)
    }

    /// Forwards every whole frame in the buffer, leaving the start of the next one.
    async fn forward_buffered(&mut self) -> Result<(), End> {
        if self.link.is_opaque() {
            self.first_frame = None;
            return self.write_front(self.buf.len()).await;
        }
        // The bytes before `at` are ready to go as they lie: the rest of a streamed
        // frame, then whole frames.
        let mut at = self.streaming.min(self.buf.len());
        self.streaming -= at;
        if self.streaming > 0 {
            return self.write_front(at).await;
        }
        let mut tally = m::Tally::default();
        let result = loop {
            if at == self.buf.len() {
                break Ok(());
            }
            // One header read per frame: whole, it is consumed here; incomplete, it
            // may start streaming.
            let head = match self.decoder.next_head(&mut self.buf.bytes_mut()[at..]) {
                Ok(Some(head)) if self.buf.len() - at >= head.len => {
                    self.decoder.stream_frame();
                    if self.first_frame.is_some() {
                        self.first_frame = None;
                    }
                    head
                }
                Ok(Some(head)) => match self.start_streaming(at, head, &mut tally) {
                    Ok(ready) => {
                        at = ready;
                        break Ok(());
                    }
                    Err(e) => break self.unframeable(e, at).await,
                },
                Ok(None) => break Ok(()),
                Err(e) => {
                    let written = self.unframeable(e, at).await;
                    at = 0;
                    break written;
                }
            };
            let end = at + head.len;
            if let Some(recorder) = &self.recorder {
                recorder.record(self.origin, &self.buf.bytes()[at..end]);
            }
            if !self.watched(head.opcode) {
                self.counters.tally(&mut tally, head.opcode, head.len);
                let header = &mut self.buf.bytes_mut()[at..at + head.header_len];
                if let Err(e) = self.encoder.seal_forwarded(&self.decoder, header) {
                    break self.unframeable(e, at).await;
                }
                at = end;
                if head.opcode == Opcode::SMSG_AUTH_CHALLENGE && self.origin == Origin::Server {
                    if let Some(switch) = self.link.challenge_passed() {
                        self.switch(switch);
                        if self.link.is_opaque() {
                            // Whatever follows the challenge goes on as bytes.
                            at = self.buf.len();
                            break Ok(());
                        }
                    }
                }
                continue;
            }
            self.counters.count(head.opcode, head.len);
            if let Err(end) = self.write_front(at).await {
                break Err(end);
            }
            at = 0;
            let frame = Frame::from_head(self.origin, head, self.buf.split_to(head.len));
            // Boxed: the handler's future is large and rare, and would otherwise sit
            // in every session's pump state, idle or not.
            match Box::pin(self.on_frame(frame)).await {
                Flow::Continue => {}
                Flow::Opaque => {
                    self.link = Link::Opaque;
                    break self.write_front(self.buf.len()).await;
                }
                Flow::Stop => break Err(End::Cancelled),
            }
        };
        self.counters.add(tally);
        result?;
        // Without a future on the way when the socket takes it all, as it mostly does.
        let ready = &self.buf.bytes()[..at];
        let taken = write::write_now(&self.dst, &self.cancel, ready).ok_or(End::Cancelled)?;
        let written =
            taken == at || write::write_waiting(&mut self.dst, &self.cancel, &ready[taken..]).await;
        self.buf.advance(at);
        if written {
            Ok(())
        } else {
            Err(End::Cancelled)
        }
    }

    /// Writes the first `at` bytes of the buffer and drops them from it.
    async fn write_front(&mut self, at: usize) -> Result<(), End> {
        let written = write::write_to(&mut self.dst, &self.cancel, &self.buf.bytes()[..at]).await;
        self.buf.advance(at);
        if written {
            Ok(())
        } else {
            Err(End::Cancelled)
        }
    }

    /// The incomplete frame `head` at `at`, if nobody watches it: its
    /// header sealed and what has come of it made ready, the rest to follow as it
    /// arrives. Returns where the bytes ready to go end.
    fn start_streaming(
        &mut self,
        at: usize,
        head: FrameHead,
        tally: &mut m::Tally,
    ) -> Result<usize, FrameError> {
        if self.recorder.is_some() {
            return Ok(at);
        }
        // The challenge decides the crypt switch; it is small and read whole.
        if self.watched(head.opcode) || head.opcode == Opcode::SMSG_AUTH_CHALLENGE {
            return Ok(at);
        }
        let header = &mut self.buf.bytes_mut()[at..at + head.header_len];
        self.encoder.seal_forwarded(&self.decoder, header)?;
        self.decoder.stream_frame();
        self.first_frame = None;
        self.counters.tally(tally, head.opcode, head.len);
        let here = self.buf.len() - at;
        self.streaming = head.len - here;
        Ok(self.buf.len())
    }

    /// A framing error in the buffer at `at`: plain streams go opaque from there,
    /// encrypted ones are reset.
    async fn unframeable(&mut self, e: FrameError, at: usize) -> Result<(), End> {
        self.count_malformed();
        if self.decoder.is_encrypted() {
            warn!(side = %self.origin, error = %e, "unframeable encrypted stream; resetting the session");
            self.write_front(at).await?;
            return Err(End::Broken);
        }
        warn!(side = %self.origin, error = %e, "unframeable stream; copying the rest of this direction as bytes");
        self.link = Link::Opaque;
        self.write_front(self.buf.len()).await
    }

    /// Whether a frame leaves the fast path: intercepted, or a session opcode.
    fn watched(&self, opcode: Opcode) -> bool {
        is_session_opcode(self.origin, opcode)
            || self.shared.handler.intercepts(self.origin, opcode)
    }

    fn count_malformed(&self) {
        m::count_malformed(self.origin);
    }
}
