//! Property tests over every modelled message type, both directions:
//! `decode(encode(m)) == m` and `encode(decode(x)) == x`, bare and inside a frame, and
//! `wire_len` is the length `to_body` writes.

use proptest::prelude::*;
use tc9_codec::sample::SampleRng;
use tc9_codec::{decode_frame, ClientMessage, Decoded, Frame, Origin, ServerMessage};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn client_messages_round_trip(seed in any::<u64>()) {
        let mut rng = SampleRng::new(seed);
        for &opcode in ClientMessage::OPCODES {
            let message = ClientMessage::sample(opcode, &mut rng).expect("modelled opcode");
            let body = message.to_body();
            prop_assert_eq!(message.wire_len(), body.len(), "{}", opcode);
            let decoded = ClientMessage::decode(opcode, &body).expect("modelled opcode");
            prop_assert_eq!(decoded.as_ref(), Ok(&message), "{}", opcode);
            prop_assert_eq!(&decoded.unwrap().to_body(), &body, "{}", opcode);

            let frame = Frame::new(Origin::Client, opcode, &body).unwrap();
            let reread = Frame::parse(Origin::Client, frame.as_bytes()).unwrap();
            prop_assert_eq!(&reread, &frame);
            prop_assert_eq!(decode_frame(&reread), Some(Ok(Decoded::Client(message))));
        }
    }

    #[test]
    fn server_messages_round_trip(seed in any::<u64>()) {
        let mut rng = SampleRng::new(seed);
        for &opcode in ServerMessage::OPCODES {
            let message = ServerMessage::sample(opcode, &mut rng).expect("modelled opcode");
            let body = message.to_body();
            prop_assert_eq!(message.wire_len(), body.len(), "{}", opcode);
            let decoded = ServerMessage::decode(opcode, &body).expect("modelled opcode");
            prop_assert_eq!(decoded.as_ref(), Ok(&message), "{}", opcode);
            prop_assert_eq!(&decoded.unwrap().to_body(), &body, "{}", opcode);

            let frame = Frame::new(Origin::Server, opcode, &body).unwrap();
            let reread = Frame::parse(Origin::Server, frame.as_bytes()).unwrap();
            prop_assert_eq!(&reread, &frame);
            prop_assert_eq!(decode_frame(&reread), Some(Ok(Decoded::Server(message))));
        }
    }

    /// Extra bytes after a body are tolerated and leave the decoded value unchanged.
    #[test]
    fn trailing_bytes_are_ignored(seed in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 1..16)) {
        let mut rng = SampleRng::new(seed);
        for &opcode in ServerMessage::OPCODES {
            let message = ServerMessage::sample(opcode, &mut rng).unwrap();
            let mut body = message.to_body();
            let modelled_len = body.len();
            body.extend_from_slice(&tail);
            let decoded = ServerMessage::decode(opcode, &body).unwrap().unwrap();
            // Bodies that end in an opaque tail absorb the extra bytes into it.
            prop_assert_eq!(&decoded.to_body()[..modelled_len], &body[..modelled_len]);
        }
    }
}
