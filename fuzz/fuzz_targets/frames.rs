//! Both frame decoders, plain and with a header cipher, over arbitrary streams fed in
//! arbitrary chunks: no panic, and in plain mode the frames read are exactly the
//! bytes consumed.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tc9_codec::{FrameCodec, HeaderCipher, Origin};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control % 61) + 1;
    for origin in [Origin::Client, Origin::Server] {
        for encrypted in [false, true] {
            let mut codec = FrameCodec::new(origin, origin.max_size_field());
            if encrypted {
                codec.set_cipher(Some(HeaderCipher::server_to_client(&[control; 40])));
            }
            let mut buf = BytesMut::new();
            let mut read = Vec::new();
            let mut failed = false;
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match codec.decode(&mut buf) {
                        Ok(Some(frame)) => read.extend_from_slice(frame.as_bytes()),
                        Ok(None) => break,
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    break;
                }
            }
            if !encrypted {
                assert!(stream.starts_with(&read));
            }
        }
    }
});
