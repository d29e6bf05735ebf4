//! Every message parser of both directions over arbitrary bodies: no panic, and a body
//! that decodes re-encodes to a prefix of itself (trailing bytes are not modelled).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tc9_codec::{ClientMessage, Opcode, ServerMessage};

fuzz_target!(|body: &[u8]| {
    for &opcode in ClientMessage::OPCODES {
        if let Some(Ok(message)) = ClientMessage::decode(opcode, body) {
            assert!(body.starts_with(&message.to_body()), "{opcode}");
            let _ = message.fields();
        }
    }
    for &opcode in ServerMessage::OPCODES {
        if let Some(Ok(message)) = ServerMessage::decode(opcode, body) {
            // A packed guid may flag zero bytes: valid, not canonical.
            if opcode != Opcode::SMSG_NAME_QUERY_RESPONSE {
                assert!(body.starts_with(&message.to_body()), "{opcode}");
            }
            let _ = message.fields();
        }
    }
});
