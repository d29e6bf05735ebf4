//! WotLK 3.3.5a world protocol for the tc9 sidecar.
//!
//! - [`framing`]: headers to [`Frame`]s and back, byte-exact, with the large server
//!   header and an optional [`HeaderCipher`] per leg.
//! - [`messages`]: one type per guild, guild bank, petition and session message body,
//!   read with nom and written back, plus the [`ClientMessage`] / [`ServerMessage`]
//!   dispatch by opcode.
//! - [`wire`]: the field primitives both are built from.
//!
//! ```
//! use tc9_codec::{decode_frame, Decoded, Frame, Origin};
//! use tc9_codec::messages::{CmsgPetitionSign, ClientMessage};
//! use tc9_codec::wire::Guid;
//!
//! let sign = CmsgPetitionSign { petition: Guid::item(7), unk: 1 };
//! let frame = Frame::from_message(Origin::Client, &sign).unwrap();
//! assert_eq!(frame.as_bytes().len(), 6 + 9);
//! match decode_frame(&frame) {
//!     Some(Ok(Decoded::Client(ClientMessage::CmsgPetitionSign(m)))) => assert_eq!(m, sign),
//!     other => panic!("{other:?}"),
//! }
//! ```

pub mod crypt;
pub mod framing;
pub mod messages;
#[cfg(any(test, feature = "sample"))]
pub mod sample;
pub mod wire;

pub use crypt::HeaderCipher;
pub use framing::{Frame, FrameCodec, FrameError, FrameHead, Origin};
pub use messages::{ClientMessage, DecodeError, Message, ServerMessage};
pub use tc9_opcodes::Opcode;

/// A frame's body decoded by its origin and opcode.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A client-to-server message.
    Client(ClientMessage),
    /// A server-to-client message.
    Server(ServerMessage),
}

impl Decoded {
    /// The message's fields, one `name = value` per line.
    pub fn fields(&self) -> wire::Fields {
        match self {
            Decoded::Client(m) => m.fields(),
            Decoded::Server(m) => m.fields(),
        }
    }
}

/// Decodes a frame's body; `None` when its opcode is not modelled for its origin.
pub fn decode_frame(frame: &Frame) -> Option<Result<Decoded, DecodeError>> {
    match frame.origin() {
        Origin::Client => {
            ClientMessage::decode(frame.opcode(), frame.body()).map(|r| r.map(Decoded::Client))
        }
        Origin::Server => {
            ServerMessage::decode(frame.opcode(), frame.body()).map(|r| r.map(Decoded::Server))
        }
    }
}
