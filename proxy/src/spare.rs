//! Read buffers not in use, per worker thread: a pump takes one only to read and
//! gives it back once drained, so an idle session holds none.

use std::cell::RefCell;

use bytes::BytesMut;

use crate::pump::READ_CHUNK;

/// Spares kept per thread; more are freed.
const KEEP: usize = 64;

thread_local! {
    static SPARES: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for a read.
pub(crate) fn take() -> BytesMut {
    SPARES
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| BytesMut::with_capacity(READ_CHUNK))
}

/// Keeps a drained buffer for the next read, unless it grew for a large frame
/// or enough are kept.
pub(crate) fn give_back(mut buf: BytesMut) {
    buf.clear();
    // Takes back the whole allocation once the frames split off it are gone.
    buf.reserve(READ_CHUNK);
    if buf.capacity() <= 2 * READ_CHUNK {
        SPARES.with_borrow_mut(|spares| {
            if spares.len() < KEEP {
                spares.push(buf);
            }
        });
    }
}
