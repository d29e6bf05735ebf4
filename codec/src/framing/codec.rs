//! [`FrameCodec`]: finding frames in a buffer (headers decrypted in place with a
//! leg's [`HeaderCipher`]) and writing them back.

use bytes::{Bytes, BytesMut};
use tc9_opcodes::Opcode;
use tokio_util::codec::{Decoder, Encoder};

use super::{Frame, FrameError, Origin, DEFAULT_MAX_CLIENT_SIZE, MAX_SERVER_SIZE_FIELD};
use crate::crypt::HeaderCipher;

/// A tokio-util codec for the frames of one direction.
///
/// Use one instance to read a direction and another to write it: each holds the
/// keystream of its own leg, or follows the reader's ([`FrameCodec::follow`]).
#[derive(Debug)]
pub struct FrameCodec {
    origin: Origin,
    max_size: usize,
    pub(super) keys: Keys,
    /// Header bytes of the frame at the front of the buffer already decrypted.
    decrypted: usize,
}

/// A codec's header keystream.
#[derive(Debug)]
pub(super) enum Keys {
    /// Plain headers.
    Off,
    /// A keystream of its own. Boxed: 300 bytes a plain session never needs.
    Own(Box<HeaderCipher>),
    /// A writer in lockstep with a reader of the same stream: no state of its own,
    /// it stands at `at` of the reader's keystream `stream`. (A `u32` fingerprint
    /// keeps the codec at 16 bytes, as many as four of them in every session.)
    Follows {
        /// The reader's stream ([`HeaderCipher::stream_id`]).
        stream: u32,
        /// This writer's position in it.
        at: u64,
    },
}

impl FrameCodec {
    /// A codec for frames sent by `origin`, refusing size fields above `max_size`.
    pub fn new(origin: Origin, max_size: usize) -> Self {
        FrameCodec {
            origin,
            max_size: max_size.min(origin.max_size_field()),
            keys: Keys::Off,
            decrypted: 0,
        }
    }

    /// A codec for client frames with the worldserver's own limit.
    pub fn client() -> Self {
        Self::new(Origin::Client, DEFAULT_MAX_CLIENT_SIZE - 1)
    }

    /// A codec for server frames with no limit below the header's own.
    pub fn server() -> Self {
        Self::new(Origin::Server, MAX_SERVER_SIZE_FIELD)
    }

    /// The origin of the frames this codec handles.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Starts (or stops) header encryption. Takes effect from the next header.
    pub fn set_cipher(&mut self, cipher: Option<HeaderCipher>) {
        self.keys = match cipher {
            Some(cipher) => Keys::Own(Box::new(cipher)),
            None => Keys::Off,
        };
    }

    /// Whether headers are encrypted.
    pub fn is_encrypted(&self) -> bool {
        !matches!(self.keys, Keys::Off)
    }

    /// Decrypts header bytes `[decrypted, upto)` in place.
    #[inline]
    fn decrypt_upto(&mut self, src: &mut [u8], upto: usize) -> Result<(), FrameError> {
        let upto = upto.min(src.len());
        if upto > self.decrypted {
            match &mut self.keys {
                Keys::Own(cipher) => {
                    cipher.open_header(&mut src[self.decrypted..upto], self.decrypted)
                }
                Keys::Off => {}
                Keys::Follows { .. } => return Err(FrameError::KeystreamFollows),
            }
            self.decrypted = upto;
        }
        Ok(())
    }
}

/// Where the frame at the front of a buffer lies, as [`FrameCodec::next_frame`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// The frame's opcode.
    pub opcode: Opcode,
    /// Bytes of the header (2 or 3 size bytes and the opcode).
    pub header_len: usize,
    /// Bytes of header and body together.
    pub len: usize,
}

impl FrameCodec {
    /// Finds the frame at the front of `src` without moving any byte: its header is
    /// decrypted in place (once, as its bytes arrive) and `Some` is returned only when
    /// the whole frame is there. The caller then consumes exactly `len` bytes before
    /// asking again; `None` means the frame is incomplete and `src` may grow.
    ///
    /// This is how a proxy forwards frames as they lie in its read buffer;
    /// [`Decoder::decode`] builds on it.
    #[inline]
    pub fn next_frame(&mut self, src: &mut [u8]) -> Result<Option<FrameHead>, FrameError> {
        match self.next_head(src)? {
            Some(head) if src.len() >= head.len => {
                self.stream_frame();
                Ok(Some(head))
            }
            _ => Ok(None),
        }
    }

    /// The head of the frame at the front of `src` as soon as its header is there,
    /// whole frame or not (the header decrypted in place, once). It does not move past
    /// the frame: wait for [`FrameCodec::next_frame`], or call
    /// [`FrameCodec::stream_frame`] to pass the frame on as its bytes arrive.
    #[inline]
    pub fn next_head(&mut self, src: &mut [u8]) -> Result<Option<FrameHead>, FrameError> {
        if src.is_empty() {
            return Ok(None);
        }
        // Every header has a size field of at least two bytes: decrypt that much at
        // once, and the third size byte of a large header after.
        self.decrypt_upto(src, 2 + self.origin.opcode_len())?;
        let size_len = size_len(self.origin, src[0]);
        let header_len = size_len + self.origin.opcode_len();
        self.decrypt_upto(src, header_len)?;
        if src.len() < header_len {
            return Ok(None);
        }
        let size = size_value(&src[..size_len]);
        if size < self.origin.opcode_len() {
            return Err(FrameError::TooSmall {
                origin: self.origin,
                size,
            });
        }
        if size > self.max_size {
            return Err(FrameError::TooLarge {
                origin: self.origin,
                size,
                max: self.max_size,
            });
        }
        let len = size_len + size;
        let opcode = match self.origin {
            Origin::Client => Opcode(u32::from_le_bytes([
                src[size_len],
                src[size_len + 1],
                src[size_len + 2],
                src[size_len + 3],
            ])),
            Origin::Server => Opcode(u32::from(u16::from_le_bytes([
                src[size_len],
                src[size_len + 1],
            ]))),
        };
        Ok(Some(FrameHead {
            opcode,
            header_len,
            len,
        }))
    }

    /// Moves past the header [`FrameCodec::next_head`] found: the caller passes on the
    /// frame's `len` bytes as they come, and the next call reads the header after them.
    #[inline]
    pub fn stream_frame(&mut self) {
        self.decrypted = 0;
    }
}

impl Frame {
    /// A frame over `bytes`, a plain header of `head.header_len` bytes and its body,
    /// as [`FrameCodec::next_frame`] found them.
    pub fn from_head(origin: Origin, head: FrameHead, bytes: Bytes) -> Frame {
        debug_assert_eq!(bytes.len(), head.len);
        Frame {
            origin,
            opcode: head.opcode,
            header_len: head.header_len,
            bytes,
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.next_frame(src)? {
            Some(head) => Ok(Some(Frame::from_head(
                self.origin,
                head,
                src.split_to(head.len).freeze(),
            ))),
            None => {
                if let Some(needed) = self.pending_len(src) {
                    src.reserve(needed.saturating_sub(src.len()));
                }
                Ok(None)
            }
        }
    }
}

impl FrameCodec {
    /// Total length of the incomplete frame at the front of `src`, once its size field
    /// is there (decrypted by [`FrameCodec::next_frame`]).
    pub fn pending_len(&self, src: &[u8]) -> Option<usize> {
        let size_len = size_len(self.origin, *src.first()?);
        Some(size_len + size_value(src.get(..size_len)?))
    }
}

/// Bytes the size field of a header starting with the plain byte `first` takes: 3
/// for a large server header (high bit set), else 2.
fn size_len(origin: Origin, first: u8) -> usize {
    match origin {
        Origin::Server if first & 0x80 != 0 => 3,
        _ => 2,
    }
}

/// The value of a plain size field of 2 or 3 bytes (the large flag masked off).
fn size_value(field: &[u8]) -> usize {
    match field {
        [high, a, b] => usize::from(high & 0x7F) << 16 | usize::from(*a) << 8 | usize::from(*b),
        [a, b] => usize::from(*a) << 8 | usize::from(*b),
        _ => 0,
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        if frame.origin != self.origin {
            return Err(FrameError::WrongOrigin {
                frame: frame.origin,
                codec: self.origin,
            });
        }
        let start = dst.len();
        dst.extend_from_slice(&frame.bytes);
        match &mut self.keys {
            Keys::Own(cipher) => cipher.apply(&mut dst[start..start + frame.header_len]),
            Keys::Off => {}
            Keys::Follows { .. } => {
                dst.truncate(start);
                return Err(FrameError::KeystreamFollows);
            }
        }
        Ok(())
    }
}
