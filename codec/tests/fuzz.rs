//! Random and mutated bytes through both frame decoders and every message parser:
//! no panic, and whatever decodes re-encodes to the bytes it was read from.
//!
//! The case count is bounded for CI; raise it with `TC9_FUZZ_CASES`.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use tc9_codec::sample::SampleRng;
use tc9_codec::{ClientMessage, FrameCodec, HeaderCipher, Opcode, Origin, ServerMessage};
use tokio_util::codec::Decoder;

fn cases() -> u32 {
    std::env::var("TC9_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096)
}

/// Decodes `body` as every modelled message of its direction; a success must
/// re-encode to a prefix of `body` (trailing bytes are not modelled).
fn check_all_parsers(body: &[u8]) -> Result<(), TestCaseError> {
    for &opcode in ClientMessage::OPCODES {
        if let Some(Ok(m)) = ClientMessage::decode(opcode, body) {
            prop_assert!(body.starts_with(&m.to_body()), "{}", opcode);
        }
    }
    for &opcode in ServerMessage::OPCODES {
        if let Some(Ok(m)) = ServerMessage::decode(opcode, body) {
            // A packed guid may be sent with zero bytes flagged: valid, not canonical.
            if opcode != Opcode::SMSG_NAME_QUERY_RESPONSE {
                prop_assert!(body.starts_with(&m.to_body()), "{}", opcode);
            }
        }
    }
    Ok(())
}

/// Feeds `stream` in `chunks` to `codec`; returns the frames' bytes and whether it failed.
fn feed(codec: &mut FrameCodec, stream: &[u8], chunks: &[usize]) -> (Vec<u8>, bool) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => out.extend_from_slice(frame.as_bytes()),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn parsers_survive_random_bodies(body in vec(any::<u8>(), 0..400)) {
        check_all_parsers(&body)?;
    }

    #[test]
    fn parsers_survive_mutated_bodies(seed in any::<u64>(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), cut in any::<prop::sample::Index>()) {
        let mut rng = SampleRng::new(seed);
        let opcodes: Vec<Opcode> = ClientMessage::OPCODES.iter().chain(ServerMessage::OPCODES).copied().collect();
        let opcode = opcodes[rng.below(opcodes.len() as u64) as usize];
        let mut body = ClientMessage::sample(opcode, &mut rng)
            .map(|m| m.to_body())
            .or_else(|| ServerMessage::sample(opcode, &mut rng).map(|m| m.to_body()))
            .unwrap();
        if !body.is_empty() {
            for (at, byte) in flips {
                let i = at.index(body.len());
                body[i] = byte;
            }
            body.truncate(cut.index(body.len() + 1));
        }
        check_all_parsers(&body)?;
    }

    /// Plain streams: the frames read are exactly the bytes consumed.
    #[test]
    fn frame_decoders_survive_random_streams(stream in vec(any::<u8>(), 0..2048), chunks in vec(1usize..64, 1..8), max in 0usize..0x1_0000) {
        for origin in [Origin::Client, Origin::Server] {
            let mut codec = FrameCodec::new(origin, max);
            let (frames, _failed) = feed(&mut codec, &stream, &chunks);
            prop_assert!(stream.starts_with(&frames));
        }
    }

    #[test]
    fn encrypted_frame_decoders_survive_random_streams(stream in vec(any::<u8>(), 0..2048), chunks in vec(1usize..64, 1..8), key in any::<[u8; 32]>()) {
        let mut session_key = [0u8; 40];
        session_key[..32].copy_from_slice(&key);
        for origin in [Origin::Client, Origin::Server] {
            let mut codec = FrameCodec::new(origin, 0xFFFF);
            codec.set_cipher(Some(HeaderCipher::server_to_client(&session_key)));
            let (frames, _failed) = feed(&mut codec, &stream, &chunks);
            prop_assert!(frames.len() <= stream.len());
        }
    }
}
