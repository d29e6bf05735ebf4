//! The writing side of a pump: bytes and frames to `dst`, the inbox, crypt switches.

use std::io;

use bytes::BytesMut;
use tc9_codec::Frame;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Pump;
use crate::crypt::Link;
use crate::crypt::Switch;
use crate::handler::Handler;
use crate::session::Outbound;

impl<H: Handler> Pump<H> {
    /// Writes `bytes` to `dst`; false when the session is over (a failed write ends
    /// it).
    pub(super) async fn write_bytes(&mut self, bytes: &[u8]) -> bool {
        write_to(&mut self.dst, &self.cancel, bytes).await
    }

    /// Writes frames to `dst`, headers sealed by this leg's cipher.
    pub(crate) async fn write_frames(&mut self, frames: impl IntoIterator<Item = Frame>) -> bool {
        let mut out = BytesMut::new();
        let mut frames = frames.into_iter().peekable();
        // Frames the reader did not read: the writer needs a keystream of its own
        // (only when there is one to write: an empty batch leaves it following).
        if frames.peek().is_some() {
            if let Err(e) = self.encoder.detach(&self.decoder) {
                warn!(error = %e, "the header keystream is lost; ending the session");
                return false;
            }
        }
        for frame in frames {
            if let Err(e) = self.encoder.encode(&frame, &mut out) {
                warn!(error = %e, "dropping a frame the pump cannot encode");
            }
        }
        self.write_bytes(&out).await
    }

    /// Handles one item of the inbox, and whatever else is queued behind it.
    pub(super) async fn deliver(&mut self, first: Outbound) -> bool {
        let mut frames = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Outbound::Frame(frame) => frames.push(*frame),
                Outbound::Delivery(mut delivery) => {
                    // A deliverer that stopped waiting may offer these elsewhere.
                    if let Some(delivered) = delivery.take() {
                        frames.extend(delivered);
                        if !self.write_frames(frames.drain(..)).await {
                            return false;
                        }
                        delivery.written();
                    }
                }
                Outbound::Switch(switch) => {
                    if !self.write_frames(frames.drain(..)).await {
                        return false;
                    }
                    if let Some(switch) = self.link.switch_arrived(switch) {
                        self.switch(switch);
                        if self.link.is_opaque() && self.write_front(self.buf.len()).await.is_err()
                        {
                            return false;
                        }
                    }
                }
            }
            next = self.inbox.try_recv().ok();
        }
        self.write_frames(frames).await
    }

    /// Applies a crypt switch to the frames read from here on.
    pub(crate) fn switch(&mut self, switch: Switch) {
        match switch {
            Switch::Crypt(cipher) => {
                debug!(side = %self.origin, "headers encrypted from here on");
                self.decoder.set_cipher(Some(*cipher));
                self.encoder.follow(&self.decoder);
                self.link = Link::Framed;
            }
            Switch::Opaque => {
                debug!(side = %self.origin, "opaque bytes from here on");
                self.link = Link::Opaque;
            }
        }
    }

    /// Handles what one `recv` of the inbox gave: delivers the item, or notes that
    /// the inbox is closed; false when the session is over.
    pub(super) async fn serve_inbox(&mut self, item: Option<Outbound>) -> bool {
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
    pub(crate) async fn send_back(&mut self, item: Outbound) -> bool {
        // Its own inbox is polled here with the task's plain waker: poll_event must
        // poll it again, with its own.
        if let Some(side) = &self.side {
            side.fire();
        }
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
}

/// Writes `bytes` to `dst`; false when the session is over (a failed write
/// cancels it).
pub(super) async fn write_to(
    dst: &mut OwnedWriteHalf,
    cancel: &CancellationToken,
    bytes: &[u8],
) -> bool {
    match write_now(dst, cancel, bytes) {
        Some(n) => n == bytes.len() || write_waiting(dst, cancel, &bytes[n..]).await,
        None => false,
    }
}

/// Writes `bytes`, which the socket did not take at once, waiting for room; false
/// when the session is over (a failed write cancels it).
pub(super) async fn write_waiting(
    dst: &mut OwnedWriteHalf,
    cancel: &CancellationToken,
    bytes: &[u8],
) -> bool {
    let written = tokio::select! {
        biased;
        written = dst.write_all(bytes) => written,
        _ = cancel.cancelled() => return false,
    };
    if written.is_err() {
        cancel.cancel();
        return false;
    }
    true
}

/// Writes what the socket takes at once of `bytes`, without waiting (most writes fit
/// its send buffer): how many bytes it took, or `None` if the write failed, which
/// cancels the session.
pub(super) fn write_now(
    dst: &OwnedWriteHalf,
    cancel: &CancellationToken,
    bytes: &[u8],
) -> Option<usize> {
    if bytes.is_empty() {
        return Some(0);
    }
    match dst.try_write(bytes) {
        Ok(n) => Some(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(0),
        Err(_) => {
            cancel.cancel();
            None
        }
    }
}

/// A write half that can be closed with a reset instead of a FIN.
pub(super) trait SetLinger {
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
