//! What wakes a pump: its inbox, its socket, its first-frame limit, its session's end.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio_util::sync::WaitForCancellationFuture;

use super::Pump;
use crate::handler::Handler;
use crate::session::Outbound;

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

/// The waker a pump's inbox and cancellation are polled with: it marks that one of
/// them fired, so they are polled again only after such a wake, not on every poll.
#[derive(Debug)]
pub(crate) struct Side {
    flag: Arc<SideFlag>,
    waker: Waker,
}

/// Whether the inbox or the cancellation woke the task since they were last polled.
#[derive(Debug)]
struct SideFlag {
    fired: AtomicBool,
    task: Waker,
}

impl Wake for SideFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl Side {
    /// A side waker that wakes what `task` wakes, marked fired so that the first
    /// poll polls both.
    fn new(task: &Waker) -> Side {
        let flag = Arc::new(SideFlag {
            fired: AtomicBool::new(true),
            task: task.clone(),
        });
        let waker = Waker::from(Arc::clone(&flag));
        Side { flag, waker }
    }

    /// Marks the inbox as to be polled again: something else polled it, with another
    /// waker, or it may hold more.
    pub(crate) fn fire(&self) {
        self.flag.fired.store(true, Ordering::Release);
    }
}

impl<H: Handler> Pump<H> {
    /// The next thing for this pump to do, in this order: an item in its inbox, the
    /// session cancelled, bytes read, the first frame's time up. Cheaper than
    /// `select!` on the path every frame takes: the inbox and the cancellation are
    /// polled only after they woke the task (see [`Side`]), and a pump holding no
    /// bytes reads into a buffer taken from its thread's spares for that read.
    pub(super) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        cancelled: Pin<&mut WaitForCancellationFuture<'_>>,
    ) -> Poll<Event> {
        let side = match &mut self.side {
            Some(side) if side.flag.task.will_wake(cx.waker()) => side,
            other => other.insert(Side::new(cx.waker())),
        };
        if side.flag.fired.swap(false, Ordering::AcqRel) {
            let mut side_cx = Context::from_waker(&side.waker);
            // Nothing goes between the bytes of a frame passing through: the inbox
            // waits for its last byte (and is polled again then).
            let mid_frame = self.streaming > 0;
            if self.inbox_open && !mid_frame {
                if let Poll::Ready(item) = self.inbox.poll_recv(&mut side_cx) {
                    side.fire();
                    return Poll::Ready(Event::Inbox(item));
                }
            }
            if cancelled.poll(&mut side_cx).is_ready() {
                return Poll::Ready(Event::Cancelled);
            }
            if mid_frame {
                side.fire();
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
        Poll::Pending
    }

    /// Reads into the buffer: more of a frame already begun, or into a spare taken
    /// for this read and given back if nothing came. Just drained, the socket is
    /// most likely not readable: its readiness is polled first, so waiting takes no
    /// buffer; once that wait is registered, the next poll (after the wake) reads at
    /// once, so a frame costs one readiness check, not two. Through `AsyncRead`, not
    /// `try_read`: a short read clears the socket's readiness, so the next wait goes
    /// to the poller instead of costing a read that finds nothing.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.is_empty() && !self.read_waiting {
            let stream: &TcpStream = self.src.as_ref();
            match stream.poll_read_ready(cx) {
                Poll::Pending => {
                    self.read_waiting = true;
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
        }
        let src = &mut self.src;
        let (read, n) = self.buf.read_with(|into| {
            let read = Pin::new(src).poll_read(cx, into);
            (read, into.filled().len())
        });
        self.read_waiting = read.is_pending();
        match read {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(e)) => {
                self.buf.give_back();
                Poll::Ready(Err(e))
            }
            Poll::Pending => {
                self.buf.give_back();
                Poll::Pending
            }
        }
    }
}
