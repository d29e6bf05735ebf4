//! Framing at the byte level: large server headers, and a 3-packet stream split at
//! every byte offset, plain and with header encryption.

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tc9_codec::{Frame, FrameCodec, HeaderCipher, Opcode, Origin};
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};

const KEY: [u8; 40] = [0x5A; 40];

fn three_server_frames() -> Vec<Frame> {
    vec![
        Frame::new(Origin::Server, Opcode::SMSG_GUILD_EVENT, b"\x02\x01hi\0").unwrap(),
        Frame::new(
            Origin::Server,
            Opcode::SMSG_GUILD_ROSTER,
            &(0..40_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
        )
        .unwrap(),
        Frame::new(Origin::Server, Opcode::SMSG_LOGOUT_COMPLETE, &[]).unwrap(),
    ]
}

fn three_client_frames() -> Vec<Frame> {
    vec![
        Frame::new(Origin::Client, Opcode::CMSG_PETITION_SIGN, &[1; 9]).unwrap(),
        Frame::new(Origin::Client, Opcode(0xBEEF), &[2; 3000]).unwrap(),
        Frame::new(Origin::Client, Opcode::CMSG_LOGOUT_REQUEST, &[]).unwrap(),
    ]
}

fn codec(origin: Origin, encrypted: bool) -> FrameCodec {
    let mut codec = FrameCodec::new(origin, origin.max_size_field());
    if encrypted {
        codec.set_cipher(Some(match origin {
            Origin::Client => HeaderCipher::client_to_server(&KEY),
            Origin::Server => HeaderCipher::server_to_client(&KEY),
        }));
    }
    codec
}

fn encode_all(origin: Origin, encrypted: bool, frames: &[Frame]) -> Vec<u8> {
    let mut codec = codec(origin, encrypted);
    let mut out = BytesMut::new();
    for frame in frames {
        codec.encode(frame, &mut out).unwrap();
    }
    out.to_vec()
}

/// Decodes `stream` delivered as two reads split at `at`.
fn decode_split(origin: Origin, encrypted: bool, stream: &[u8], at: usize) -> Vec<Frame> {
    let mut codec = codec(origin, encrypted);
    let mut buf = BytesMut::from(&stream[..at]);
    let mut frames = Vec::new();
    while let Some(frame) = codec.decode(&mut buf).unwrap() {
        frames.push(frame);
    }
    buf.extend_from_slice(&stream[at..]);
    while let Some(frame) = codec.decode(&mut buf).unwrap() {
        frames.push(frame);
    }
    assert!(buf.is_empty());
    frames
}

#[test]
fn large_server_packet_is_byte_exact() {
    let body: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
    let frame = Frame::new(Origin::Server, Opcode::SMSG_GUILD_BANK_LIST, &body).unwrap();
    let size = 40_002u32;
    assert_eq!(
        frame.header(),
        [
            0x80 | (size >> 16) as u8,
            (size >> 8) as u8,
            size as u8,
            0xE8,
            0x03
        ]
    );
    let wire = encode_all(Origin::Server, false, std::slice::from_ref(&frame));
    assert_eq!(wire.len(), 40_005);
    assert_eq!(&wire[..], &frame.as_bytes()[..]);
    let back = decode_split(Origin::Server, false, &wire, wire.len());
    assert_eq!(back, vec![frame]);
    assert_eq!(back[0].body(), &body[..]);
}

#[test]
fn server_stream_split_at_every_offset() {
    let frames = three_server_frames();
    for encrypted in [false, true] {
        let stream = encode_all(Origin::Server, encrypted, &frames);
        for at in 0..=stream.len() {
            let back = decode_split(Origin::Server, encrypted, &stream, at);
            assert_eq!(back, frames, "split at {at}, encrypted {encrypted}");
        }
    }
}

#[test]
fn client_stream_split_at_every_offset() {
    let frames = three_client_frames();
    for encrypted in [false, true] {
        let stream = encode_all(Origin::Client, encrypted, &frames);
        for at in 0..=stream.len() {
            let back = decode_split(Origin::Client, encrypted, &stream, at);
            assert_eq!(back, frames, "split at {at}, encrypted {encrypted}");
        }
    }
}

/// What a proxy does with [`FrameCodec::next_frame`] and [`FrameCodec::seal_forwarded`]:
/// frames decrypted and re-encrypted where they lie in a buffer that `stream` fills in
/// two reads split at `at`, with the bytes before the next whole frame kept.
fn reseal_split(origin: Origin, stream: &[u8], at: usize, out_key: &[u8; 40]) -> Vec<u8> {
    let mut reading = codec(origin, true);
    let mut writing = FrameCodec::new(origin, origin.max_size_field());
    writing.set_cipher(Some(match origin {
        Origin::Client => HeaderCipher::client_to_server(out_key),
        Origin::Server => HeaderCipher::server_to_client(out_key),
    }));
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in [&stream[..at], &stream[at..]] {
        buf.extend_from_slice(part);
        let mut done = 0;
        while let Some(head) = reading.next_frame(&mut buf[done..]).unwrap() {
            writing
                .seal_forwarded(&reading, &mut buf[done..done + head.header_len])
                .unwrap();
            done += head.len;
        }
        out.extend_from_slice(&buf.split_to(done));
    }
    assert!(buf.is_empty());
    out
}

#[test]
fn headers_resealed_in_place_match_the_encoder() {
    let other_key = [0xC3; 40];
    for (origin, frames) in [
        (Origin::Server, three_server_frames()),
        (Origin::Client, three_client_frames()),
    ] {
        let stream = encode_all(origin, true, &frames);
        let mut expected_codec = FrameCodec::new(origin, origin.max_size_field());
        expected_codec.set_cipher(Some(match origin {
            Origin::Client => HeaderCipher::client_to_server(&other_key),
            Origin::Server => HeaderCipher::server_to_client(&other_key),
        }));
        let mut expected = BytesMut::new();
        for frame in &frames {
            expected_codec.encode(frame, &mut expected).unwrap();
        }
        assert_ne!(&expected[..], &stream[..]);
        // Every offset near a header (the 40 KB body in between by a stride).
        let near_header = |at: &usize| *at < 64 || *at + 64 > stream.len() || at % 61 == 0;
        for at in (0..=stream.len()).filter(near_header) {
            let resealed = reseal_split(origin, &stream, at, &other_key);
            assert!(resealed == expected[..], "{origin} split at {at}");
        }
    }
}

#[test]
fn plain_encoding_is_the_frame_bytes() {
    let frames = three_server_frames();
    let stream = encode_all(Origin::Server, false, &frames);
    let concatenated: Vec<u8> = frames.iter().flat_map(|f| f.as_bytes().to_vec()).collect();
    assert_eq!(stream, concatenated);
}

/// Through real sockets with tokio-util's `Framed*`, trickled one byte at a time.
#[tokio::test]
async fn framed_over_a_socket_pair() {
    let (mut tx, rx) = tokio::io::duplex(1);
    let frames = three_server_frames();
    let wire = encode_all(Origin::Server, true, &frames);
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        tx.write_all(&wire).await.unwrap();
    });
    let read = FramedRead::new(rx, codec(Origin::Server, true));
    let got: Vec<Frame> = read.map(|r| r.unwrap()).collect().await;
    writer.await.unwrap();
    assert_eq!(got, frames);

    let (a, b) = tokio::io::duplex(64);
    let mut sink = FramedWrite::new(a, codec(Origin::Client, true));
    let mut stream = FramedRead::new(b, codec(Origin::Client, true));
    for frame in three_client_frames() {
        let (sent, received) = tokio::join!(sink.send(frame.clone()), stream.next());
        sent.unwrap();
        assert_eq!(received.unwrap().unwrap(), frame);
    }
}
