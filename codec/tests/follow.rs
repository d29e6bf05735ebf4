//! A writer that follows its reader's keystream writes exactly what a writer with a
//! keystream of its own would, whatever the proxy does with each frame.

use bytes::BytesMut;
use proptest::prelude::*;
use tc9_codec::{Frame, FrameCodec, HeaderCipher, Opcode, Origin};
use tokio_util::codec::Encoder;

const KEY: [u8; 40] = [0x3C; 40];

/// What the proxy does with a frame it read.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Passes it on unchanged, its header resealed where it lies.
    Forward,
    /// Drops it.
    Drop,
    /// Writes another frame of the same size in its place.
    Rewrite,
    /// Passes it on, then writes one more.
    Add,
}

fn cipher(origin: Origin) -> HeaderCipher {
    match origin {
        Origin::Client => HeaderCipher::client_to_server(&KEY),
        Origin::Server => HeaderCipher::server_to_client(&KEY),
    }
}

fn frame(origin: Origin, seed: u8, len: usize) -> Frame {
    let opcode = Opcode(0x100 + u32::from(seed));
    Frame::new(origin, opcode, &vec![seed; len]).unwrap()
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        6 => Just(Act::Forward),
        1 => Just(Act::Drop),
        1 => Just(Act::Rewrite),
        1 => Just(Act::Add),
    ]
}

proptest! {
    #[test]
    fn a_follower_writes_what_its_own_keystream_would(
        server in any::<bool>(),
        script in proptest::collection::vec((0usize..90, act()), 1..40),
        cut in 1usize..23,
    ) {
        let origin = if server { Origin::Server } else { Origin::Client };
        let sent: Vec<Frame> = script
            .iter()
            .enumerate()
            .map(|(n, (len, _))| frame(origin, n as u8, *len))
            .collect();
        let mut sender = FrameCodec::new(origin, origin.max_size_field());
        sender.set_cipher(Some(cipher(origin)));
        let mut wire = BytesMut::new();
        for f in &sent {
            sender.encode(f, &mut wire).unwrap();
        }

        let mut reader = FrameCodec::new(origin, origin.max_size_field());
        reader.set_cipher(Some(cipher(origin)));
        let mut writer = FrameCodec::new(origin, origin.max_size_field());
        writer.follow(&reader);
        let mut expected_frames = Vec::new();
        let mut out = BytesMut::new();
        let mut buf = BytesMut::new();
        let mut next = 0;
        // Header bytes of the stream read and written so far: the two are in step
        // when these are equal.
        let (mut read_at, mut written_at) = (0, 0);
        // The wire arrives in reads of `cut` bytes: headers split across reads.
        for part in wire.chunks(cut) {
            buf.extend_from_slice(part);
            while let Some(head) = reader.next_frame(&mut buf).unwrap() {
                let mut bytes = buf.split_to(head.len);
                let (_, act) = script[next];
                let replacement = frame(origin, 200, bytes.len() - head.header_len);
                match act {
                    Act::Forward | Act::Add => {
                        let in_step = read_at == written_at;
                        writer.seal_forwarded(&reader, &mut bytes[..head.header_len]).unwrap();
                        // In step, the writer keeps no keystream of its own.
                        prop_assert_eq!(writer.is_following(), in_step);
                        out.extend_from_slice(&bytes);
                        expected_frames.push(sent[next].clone());
                        written_at += head.header_len;
                    }
                    Act::Drop => {}
                    Act::Rewrite => {
                        writer.detach(&reader).unwrap();
                        writer.encode(&replacement, &mut out).unwrap();
                        expected_frames.push(replacement.clone());
                        written_at += replacement.header().len();
                    }
                }
                if let Act::Add = act {
                    writer.detach(&reader).unwrap();
                    writer.encode(&frame(origin, 201, 3), &mut out).unwrap();
                    expected_frames.push(frame(origin, 201, 3));
                    written_at += origin.opcode_len() + 2;
                }
                read_at += head.header_len;
                next += 1;
            }
        }
        prop_assert_eq!(next, sent.len());

        let mut own = FrameCodec::new(origin, origin.max_size_field());
        own.set_cipher(Some(cipher(origin)));
        let mut expected = BytesMut::new();
        for f in &expected_frames {
            own.encode(f, &mut expected).unwrap();
        }
        prop_assert_eq!(&out[..], &expected[..]);
    }
}

#[test]
fn a_follower_cannot_write_alone_or_read() {
    let mut reader = FrameCodec::new(Origin::Server, 0xFFFF);
    reader.set_cipher(Some(cipher(Origin::Server)));
    let mut writer = FrameCodec::new(Origin::Server, 0xFFFF);
    writer.follow(&reader);
    assert!(writer.is_following());
    let mut out = BytesMut::new();
    assert!(writer
        .encode(&frame(Origin::Server, 1, 2), &mut out)
        .is_err());
    assert!(out.is_empty());
    assert!(writer.next_head(&mut [0, 4, 1, 0]).is_err());
    // Another stream's reader cannot stand in for its own.
    let mut stranger = FrameCodec::new(Origin::Server, 0xFFFF);
    stranger.set_cipher(Some(HeaderCipher::server_to_client(&[0x11; 40])));
    assert!(writer.detach(&stranger).is_err());
    writer.detach(&reader).unwrap();
    assert!(!writer.is_following());
    writer
        .encode(&frame(Origin::Server, 1, 2), &mut out)
        .unwrap();
}
