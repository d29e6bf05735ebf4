//! World packet framing: headers in, [`Frame`]s out, and back.
//!
//! ```text
//! client -> server: | size u16 BE | opcode u32 LE | body |   size = 4 + body
//! server -> client: | size u16 BE | opcode u16 LE | body |   size = 2 + body
//!          or, when size > 0x7FFF:
//!                   | 0x80|size>>16, size u16 BE | opcode u16 LE | body |
//! ```
//!
//! A [`Frame`] keeps the bytes it was read from (header in plain text), so forwarding
//! a frame that was not rewritten writes back exactly what arrived. With a
//! [`HeaderCipher`](crate::crypt::HeaderCipher) set, the decoder decrypts each header once, in place, as its bytes
//! arrive, and the encoder encrypts the header it writes.

use std::fmt;
use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use tc9_opcodes::Opcode;
use tokio_util::codec::Decoder;

use crate::messages::Message;

mod codec;
mod follow;

pub use codec::{FrameCodec, FrameHead};

/// Largest size field the worldserver accepts from a client, plus one
/// (AzerothCore: `4 <= size < 10240`).
pub const DEFAULT_MAX_CLIENT_SIZE: usize = 10240;
/// Largest size field of a client header.
pub const MAX_CLIENT_SIZE_FIELD: usize = u16::MAX as usize;
/// Largest size field a large (3-byte) server header can carry.
pub const MAX_SERVER_SIZE_FIELD: usize = 0x7F_FFFF;
/// Size fields above this need the large server header.
pub const LARGE_HEADER_THRESHOLD: usize = 0x7FFF;

/// Which side sent a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Sent by the client (the gateway): client header.
    Client,
    /// Sent by the worldserver: server header.
    Server,
}

impl Origin {
    /// Bytes the opcode takes in this side's header.
    pub fn opcode_len(self) -> usize {
        match self {
            Origin::Client => 4,
            Origin::Server => 2,
        }
    }

    /// The largest size field this side's header can carry.
    pub fn max_size_field(self) -> usize {
        match self {
            Origin::Client => MAX_CLIENT_SIZE_FIELD,
            Origin::Server => MAX_SERVER_SIZE_FIELD,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Client => "client",
            Origin::Server => "server",
        })
    }
}

/// A framing failure. After one, the stream cannot be resynchronised.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The header announces more than the configured limit.
    #[error("{origin} header announces {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Who sent it.
        origin: Origin,
        /// The size field.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The header announces fewer bytes than its own opcode.
    #[error("{origin} header announces {size} bytes, fewer than its opcode")]
    TooSmall {
        /// Who sent it.
        origin: Origin,
        /// The size field.
        size: usize,
    },
    /// A body too large for the header format.
    #[error("a {len}-byte body does not fit a {origin} header")]
    BodyTooLarge {
        /// Who would send it.
        origin: Origin,
        /// The body length.
        len: usize,
    },
    /// An opcode that does not fit the 16-bit server header.
    #[error("opcode {0} does not fit a server header")]
    OpcodeOutOfRange(Opcode),
    /// A frame handed to the codec of the other direction.
    #[error("a {frame} frame cannot be written by a {codec} codec")]
    WrongOrigin {
        /// The frame's origin.
        frame: Origin,
        /// The codec's origin.
        codec: Origin,
    },
    /// A writer that follows a reader's keystream was asked to read, or to write
    /// without the reader ([`FrameCodec::detach`] it first).
    #[error("the codec follows a reader's keystream it was not given")]
    KeystreamFollows,
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One world packet: header and body, as bytes, with its opcode decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    origin: Origin,
    opcode: Opcode,
    header_len: usize,
    bytes: Bytes,
}

impl Frame {
    /// Builds a frame (header included) for `body`.
    pub fn new(origin: Origin, opcode: Opcode, body: &[u8]) -> Result<Frame, FrameError> {
        let size = origin.opcode_len() + body.len();
        if size > origin.max_size_field() {
            return Err(FrameError::BodyTooLarge {
                origin,
                len: body.len(),
            });
        }
        let mut out = BytesMut::with_capacity(5 + size);
        match origin {
            Origin::Client => {
                out.put_u16(size as u16);
                out.put_u32_le(opcode.0);
            }
            Origin::Server => {
                let op =
                    u16::try_from(opcode.0).map_err(|_| FrameError::OpcodeOutOfRange(opcode))?;
                if size > LARGE_HEADER_THRESHOLD {
                    out.put_u8(0x80 | (size >> 16) as u8);
                }
                out.put_u16(size as u16);
                out.put_u16_le(op);
            }
        }
        let header_len = out.len();
        out.put_slice(body);
        Ok(Frame {
            origin,
            opcode,
            header_len,
            bytes: out.freeze(),
        })
    }

    /// Builds a frame carrying `message`.
    pub fn from_message<M: Message>(origin: Origin, message: &M) -> Result<Frame, FrameError> {
        Frame::new(origin, M::OPCODE, &message.to_body())
    }

    /// Reads exactly one frame from `bytes` (plain-text header); for tools and tests.
    pub fn parse(origin: Origin, bytes: &[u8]) -> Result<Frame, FrameError> {
        let mut codec = FrameCodec::new(origin, origin.max_size_field());
        let mut buf = BytesMut::from(bytes);
        let frame = codec.decode(&mut buf)?;
        match frame {
            Some(frame) if buf.is_empty() => Ok(frame),
            Some(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} bytes follow the frame", buf.len()),
            )
            .into()),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} bytes are not a whole frame", bytes.len()),
            )
            .into()),
        }
    }

    /// Who sent the frame.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        self.opcode
    }

    /// The header bytes (plain text).
    pub fn header(&self) -> &[u8] {
        &self.bytes[..self.header_len]
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    /// Header and body, as read or built.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Header and body, as read or built.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Length of header and body.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a frame always has a header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("origin", &self.origin)
            .field(
                "opcode",
                &format_args!("{} (0x{:X})", self.opcode, self.opcode.0),
            )
            .field("body_len", &self.body().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::Encoder;

    #[test]
    fn client_header_layout() {
        let frame = Frame::new(Origin::Client, Opcode::CMSG_PETITION_SIGN, &[1, 2, 3]).unwrap();
        assert_eq!(frame.header(), [0x00, 0x07, 0xC0, 0x01, 0x00, 0x00]);
        assert_eq!(frame.body(), [1, 2, 3]);
    }

    #[test]
    fn server_header_small_and_large() {
        let small = Frame::new(Origin::Server, Opcode::SMSG_GUILD_EVENT, &[0; 0x7FFD]).unwrap();
        assert_eq!(small.header(), [0x7F, 0xFF, 0x92, 0x00]);
        let large = Frame::new(Origin::Server, Opcode::SMSG_GUILD_EVENT, &[0; 0x7FFE]).unwrap();
        assert_eq!(large.header(), [0x80, 0x80, 0x00, 0x92, 0x00]);
        assert_eq!(
            Frame::parse(Origin::Server, large.as_bytes()).unwrap(),
            large
        );
    }

    #[test]
    fn limits_are_errors() {
        let mut codec = FrameCodec::new(Origin::Client, 100);
        let mut buf = BytesMut::from(&[0x00, 0x65, 0, 0, 0, 0][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100,
                ..
            })
        ));
        let mut buf = BytesMut::from(&[0x00, 0x03, 0, 0, 0, 0][..]);
        assert!(matches!(
            FrameCodec::client().decode(&mut buf),
            Err(FrameError::TooSmall { size: 3, .. })
        ));
        assert!(matches!(
            Frame::new(Origin::Client, Opcode(1), &[0; 65532]),
            Err(FrameError::BodyTooLarge { .. })
        ));
        assert!(matches!(
            Frame::new(Origin::Server, Opcode(0x1_0000), &[]),
            Err(FrameError::OpcodeOutOfRange(_))
        ));
    }

    #[test]
    fn wrong_origin_is_refused() {
        let frame = Frame::new(Origin::Server, Opcode(1), &[]).unwrap();
        let mut dst = BytesMut::new();
        assert!(matches!(
            FrameCodec::client().encode(frame, &mut dst),
            Err(FrameError::WrongOrigin { .. })
        ));
    }
}
