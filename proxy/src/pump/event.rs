//! What wakes a pump: its inbox, its socket, its first-frame limit, its session's end.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::net::TcpStream;
use tokio_util::sync::WaitForCancellationFuture;

use super::Pump;
use crate::handler::Handler;
use crate::session::Outbound;
use crate::spare;

/// What woke a pump, as [`Pump::poll_event`] found it.
pub(super) enum Event {
    /// An item of the inbox, or `None` once it is closed.
    Inbox(Option<Outbound>),
    /// A read into the buffer.
    Read(io::Result<usize>),
    /// No whole frame within the first-frame limit.
    FirstFrameLate,
    /// The session was cancelled.
    Cancelled,
}

impl<H: Handler> Pump<H> {
    /// The next thing for this pump to do, in this order: an item in its inbox, bytes
    /// read, the first frame's time up, the session cancelled. Cheaper than
    /// `select!` on the path every frame takes: the inbox and the cancellation are
    /// polled only when they may have changed (their wakers stay registered until
    /// they fire), and an idle pump reads only once the socket is readable, into a
    /// buffer taken from its thread's spares.
    pub(super) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
    ) -> Poll<Event> {
        if self.inbox_open
            && !(self.inbox_armed && self.inbox.is_empty() && !self.inbox.is_closed())
        {
            match self.inbox.poll_recv(cx) {
                Poll::Ready(item) => {
                    self.inbox_armed = false;
                    return Poll::Ready(Event::Inbox(item));
                }
                Poll::Pending => self.inbox_armed = true,
            }
        }
        if let Poll::Ready(read) = self.poll_read(cx) {
            return Poll::Ready(Event::Read(read));
        }
        if let Some(timer) = &mut self.first_frame {
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::FirstFrameLate);
            }
        }
        if !self.cancel_armed || self.cancel.is_cancelled() {
            self.cancel_armed = true;
            if cancelled.poll(cx).is_ready() {
                return Poll::Ready(Event::Cancelled);
            }
        }
        Poll::Pending
    }

    /// Reads into the buffer: more of a frame already begun, or, holding no buffer,
    /// once the socket is readable, into a spare one. Through `AsyncRead`, not
    /// `try_read`: a short read clears the socket's readiness, so the next wait goes
    /// to the poller instead of costing a read that finds nothing.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.is_empty() {
            let stream: &TcpStream = self.src.as_ref();
            if let Err(e) = ready!(stream.poll_read_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            self.buf = spare::take();
        }
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.src), cx, &mut self.buf);
        if read.is_pending() && self.buf.is_empty() {
            spare::give_back(std::mem::take(&mut self.buf));
        }
        read
    }
}
