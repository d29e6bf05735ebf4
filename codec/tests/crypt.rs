//! The header cipher against an independent implementation, `wow_srp`'s wrath header
//! crypto: headers one side encrypts, the other decrypts, in both directions, small and
//! large server headers alike.

use bytes::BytesMut;
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::{Frame, FrameCodec, HeaderCipher, Opcode, Origin};
use tokio_util::codec::{Decoder, Encoder};
use wow_srp::normalized_string::NormalizedString;
use wow_srp::wrath_header::{ClientCrypto, ProofSeed, ServerCrypto};

fn session_key() -> [u8; SESSION_KEY_LEN] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
}

/// A matching `wow_srp` client and server, built the way a real login builds them.
fn wow_srp_pair() -> (ClientCrypto, ServerCrypto) {
    let user = NormalizedString::new("PLAYER").unwrap();
    let client_seed = ProofSeed::new();
    let server_seed = ProofSeed::new();
    let client_seed_value = client_seed.seed();
    let (proof, client) =
        client_seed.into_client_header_crypto(&user, session_key(), server_seed.seed());
    let server = server_seed
        .into_server_header_crypto(&user, session_key(), proof, client_seed_value)
        .unwrap();
    (client, server)
}

fn bodies() -> Vec<(u32, Vec<u8>)> {
    vec![
        (Opcode::CMSG_PETITION_SIGN.0, vec![7; 9]),
        (Opcode::CMSG_PING.0, vec![]),
        (0x1234, (0..255).collect()),
        (Opcode::CMSG_GUILD_QUERY.0, vec![1, 0, 0, 0]),
        (Opcode::SMSG_GUILD_EVENT.0, vec![0xAB; 40_000]),
        (Opcode::SMSG_PETITION_SIGN_RESULTS.0, vec![3; 20]),
    ]
}

#[test]
fn client_headers_encrypted_by_wow_srp_decode_with_ours() {
    let (mut client, _) = wow_srp_pair();
    let mut stream = BytesMut::new();
    for (opcode, body) in bodies().iter().filter(|(_, b)| b.len() < 1000) {
        let header = client.encrypt_client_header((body.len() + 4) as u16, *opcode);
        stream.extend_from_slice(&header);
        stream.extend_from_slice(body);
    }
    let mut codec = FrameCodec::new(Origin::Client, 0xFFFF);
    codec.set_cipher(Some(HeaderCipher::client_to_server(&session_key())));
    for (opcode, body) in bodies().iter().filter(|(_, b)| b.len() < 1000) {
        let frame = codec.decode(&mut stream).unwrap().expect("a whole frame");
        assert_eq!(frame.opcode(), Opcode(*opcode));
        assert_eq!(frame.body(), &body[..]);
    }
    assert!(stream.is_empty());
}

#[test]
fn client_headers_encrypted_by_ours_decrypt_with_wow_srp() {
    let (_, mut server) = wow_srp_pair();
    let mut codec = FrameCodec::new(Origin::Client, 0xFFFF);
    codec.set_cipher(Some(HeaderCipher::client_to_server(&session_key())));
    for (opcode, body) in bodies().iter().filter(|(_, b)| b.len() < 1000) {
        let mut out = BytesMut::new();
        let frame = Frame::new(Origin::Client, Opcode(*opcode), body).unwrap();
        codec.encode(&frame, &mut out).unwrap();
        let header = server.decrypt_client_header(out[..6].try_into().unwrap());
        assert_eq!(header.opcode, *opcode);
        assert_eq!(usize::from(header.size), body.len() + 4);
        assert_eq!(&out[6..], &body[..], "bodies are never encrypted");
    }
}

#[test]
fn server_headers_encrypted_by_wow_srp_decode_with_ours() {
    let (_, mut server) = wow_srp_pair();
    let mut stream = BytesMut::new();
    for (opcode, body) in bodies() {
        let header = server.encrypt_server_header((body.len() + 2) as u32, opcode as u16);
        stream.extend_from_slice(header);
        stream.extend_from_slice(&body);
    }
    let mut codec = FrameCodec::server();
    codec.set_cipher(Some(HeaderCipher::server_to_client(&session_key())));
    for (opcode, body) in bodies() {
        let frame = codec.decode(&mut stream).unwrap().expect("a whole frame");
        assert_eq!(frame.opcode(), Opcode(opcode));
        assert_eq!(frame.body(), &body[..]);
        assert_eq!(
            frame.header().len(),
            if body.len() > 0x7FFD { 5 } else { 4 }
        );
    }
    assert!(stream.is_empty());
}

#[test]
fn server_headers_encrypted_by_ours_decrypt_with_wow_srp() {
    let (mut client, _) = wow_srp_pair();
    let mut codec = FrameCodec::server();
    codec.set_cipher(Some(HeaderCipher::server_to_client(&session_key())));
    let mut stream = BytesMut::new();
    for (opcode, body) in bodies() {
        let frame = Frame::new(Origin::Server, Opcode(opcode), &body).unwrap();
        codec.encode(frame, &mut stream).unwrap();
    }
    let mut reader = &stream[..];
    for (opcode, body) in bodies() {
        let header = client.read_and_decrypt_server_header(&mut reader).unwrap();
        assert_eq!(header.opcode, opcode as u16);
        assert_eq!(header.size as usize, body.len() + 2);
        assert_eq!(&reader[..body.len()], &body[..]);
        reader = &reader[body.len()..];
    }
    assert!(reader.is_empty());
}

#[test]
fn cipher_debug_hides_key_material() {
    let cipher = HeaderCipher::client_to_server(&session_key());
    assert_eq!(format!("{cipher:?}"), "HeaderCipher { .. }");
}
