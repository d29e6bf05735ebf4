//! A pump's read buffer. It holds memory only while it holds bytes: taken from its
//! thread's spares for a read, given back once drained, so an idle session holds
//! none.
//!
//! The bytes are `mem[start..]`; reads go straight into the spare capacity after
//! them, and taking or giving back a spare is a pop or push, with no zeroing and no
//! reference counts on the way.

use std::cell::RefCell;

use bytes::Bytes;
use tokio::io::ReadBuf;

/// Room a read gets (the buffer grows further for a frame that needs it).
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// Spares kept per thread; more are freed.
const KEEP: usize = 64;

thread_local! {
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Bytes read and not yet written.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// Its length is where the bytes held end.
    mem: Vec<u8>,
    start: usize,
}

impl Chunk {
    /// Whether no bytes are held.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.mem.len()
    }

    /// How many bytes are held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.mem.len() - self.start
    }

    /// The bytes held.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.mem[self.start..]
    }

    /// The bytes held, to decrypt or seal headers in place.
    #[inline]
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.start..]
    }

    /// Room after the bytes held, before any growing.
    #[inline]
    pub(crate) fn room(&self) -> usize {
        self.mem.capacity() - self.mem.len()
    }

    /// Reads into the room after the bytes held (a spare's, taken if no memory is
    /// held) with `read`, which fills a prefix of the buffer it is given.
    #[inline]
    pub(crate) fn read_with<T>(&mut self, read: impl FnOnce(&mut ReadBuf<'_>) -> T) -> T {
        if self.mem.capacity() == 0 {
            self.mem = SPARES
                .with_borrow_mut(Vec::pop)
                .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK));
        }
        let mut into = ReadBuf::uninit(self.mem.spare_capacity_mut());
        let result = read(&mut into);
        let n = into.filled().len();
        // SAFETY: a `ReadBuf`'s filled part is initialized (the type's invariant), and
        // it is the first `n` bytes of the spare capacity it was made over.
        unsafe { self.mem.set_len(self.mem.len() + n) };
        result
    }

    /// Drops the first `n` bytes held.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.mem.len());
        if self.is_empty() {
            self.start = 0;
            self.mem.clear();
        }
    }

    /// The first `n` bytes held, copied out and dropped from the buffer: for the
    /// rare frame that leaves the pass-through path.
    pub(crate) fn split_to(&mut self, n: usize) -> Bytes {
        let n = n.min(self.len());
        let front = Bytes::copy_from_slice(&self.bytes()[..n]);
        self.advance(n);
        front
    }

    /// Makes room for `additional` more bytes: moves what is held to the front, and
    /// grows the memory if that is not enough.
    pub(crate) fn reserve(&mut self, additional: usize) {
        if self.room() >= additional {
            return;
        }
        if self.start > 0 {
            self.mem.drain(..self.start);
            self.start = 0;
        }
        if self.room() < additional {
            self.mem.reserve(additional.max(READ_CHUNK));
        }
    }

    /// Gives the memory back to the thread's spares once drained (unless it grew for
    /// a large frame, or enough are kept).
    pub(crate) fn give_back(&mut self) {
        if !self.is_empty() || self.mem.capacity() == 0 {
            return;
        }
        let mem = std::mem::take(&mut self.mem);
        if mem.capacity() == READ_CHUNK {
            SPARES.with_borrow_mut(|spares| {
                if spares.len() < KEEP {
                    spares.push(mem);
                }
            });
        }
    }

    /// Whether memory is held (for tests of idle sessions).
    #[cfg(test)]
    fn holds_memory(&self) -> bool {
        self.mem.capacity() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `data` into the chunk as a socket would.
    fn read(chunk: &mut Chunk, data: &[u8]) {
        chunk.read_with(|into| into.put_slice(data));
    }

    #[test]
    fn holds_memory_only_while_it_holds_bytes() {
        let mut chunk = Chunk::default();
        assert!(!chunk.holds_memory());
        read(&mut chunk, b"abcdef");
        assert_eq!(chunk.bytes(), b"abcdef");
        chunk.advance(2);
        assert_eq!(chunk.bytes(), b"cdef");
        chunk.give_back();
        assert!(chunk.holds_memory(), "bytes are still held");
        chunk.advance(4);
        assert!(chunk.is_empty());
        chunk.give_back();
        assert!(!chunk.holds_memory());
        // The spare comes back for the next read, its old bytes unseen.
        read(&mut chunk, b"xy");
        assert_eq!(chunk.bytes(), b"xy");
        assert_eq!(chunk.room(), READ_CHUNK - 2);
    }

    #[test]
    fn reserve_moves_to_the_front_then_grows() {
        let mut chunk = Chunk::default();
        read(&mut chunk, &[7; READ_CHUNK]);
        chunk.advance(READ_CHUNK - 3);
        assert_eq!(chunk.room(), 0);
        chunk.reserve(10);
        assert_eq!(chunk.bytes(), &[7, 7, 7]);
        assert_eq!(chunk.room(), READ_CHUNK - 3);
        chunk.reserve(40 * 1024);
        assert_eq!(chunk.bytes(), &[7, 7, 7]);
        assert!(chunk.room() >= 40 * 1024);
        let front = chunk.split_to(2);
        assert_eq!(&front[..], &[7, 7]);
        chunk.advance(1);
        chunk.give_back();
        // Grown memory is freed, not kept as a spare.
        assert!(!chunk.holds_memory());
    }
}
