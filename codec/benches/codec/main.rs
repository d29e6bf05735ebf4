//! Codec throughput: frames framed per second and petition/guild messages decoded
//! and encoded per second, ours next to `wow_world_messages` (wrath) on the same bytes.
//!
//! Run with `cargo bench -p tc9-codec --bench codec` (about a minute and a half).
//! Criterion's groups come first (detailed statistics, short measurement windows);
//! a summary table follows, measured with plain timed loops:
//!
//! - `framing/*`: a realistic stream of 1,000 frames per direction, decoded with
//!   [`FrameCodec`] from one buffer and encoded into one, with plain headers and with
//!   the ARC4 [`HeaderCipher`]. Client frames: 97 % 10..200-byte bodies, 2 %
//!   200..1,024, 1 % 1..4 KiB. Server frames: 97 % 10..200, 3 % 4..40 KiB (those
//!   above 32 KiB carry the 3-byte large header).
//! - `messages/*`: for each message, ours (`M::decode(body)` / `to_body()`) and the
//!   crate's (`Message::read_body` / `write_into_vec`, the only readers the crate has
//!   without its `sync`/`tokio` features) on the very same body bytes. For
//!   `SMSG_GUILD_QUERY_RESPONSE` those bytes are AzerothCore's, with the rank count
//!   the crate does not model at the end; the crate stops reading before it.
//!
//! `TC9_CODEC_TABLE_MS` sets the time per cell of the summary table (default 250).

mod messages;

use messages::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput};
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::messages::*;
use tc9_codec::sample::SampleRng;
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, FrameCodec, HeaderCipher, Message, Opcode, Origin};
use tokio_util::codec::{Decoder, Encoder};
use wow_world_messages::wrath as w;
use wow_world_messages::Guid as WowGuid;

/// Frames per framing stream.
const STREAM_FRAMES: usize = 1000;
/// The session key both ends of the ciphered streams use.
const KEY: [u8; SESSION_KEY_LEN] = {
    let mut key = [0u8; SESSION_KEY_LEN];
    let mut i = 0;
    while i < SESSION_KEY_LEN {
        key[i] = (i as u8).wrapping_mul(73).wrapping_add(5);
        i += 1;
    }
    key
};

// ---------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------

/// A body length drawn from the realistic mix of `origin`.
fn body_len(origin: Origin, rng: &mut SampleRng) -> usize {
    let roll = rng.below(100);
    let range = match (origin, roll) {
        (Origin::Client, 0) => 1024..4096,
        (Origin::Client, 1..=2) => 200..1024,
        (Origin::Server, 0..=2) => 4096..40 * 1024,
        _ => 10..200,
    };
    range.start + rng.below((range.end - range.start) as u64) as usize
}

/// A stream of [`STREAM_FRAMES`] frames sent by `origin`, with common opcodes.
fn stream(origin: Origin, seed: u64) -> Vec<Frame> {
    const OPCODES: [u32; 6] = [0x0B5, 0x0DA, 0x1DC, 0x1F6, 0x0A9, 0x2B4];
    let mut rng = SampleRng::new(seed);
    (0..STREAM_FRAMES)
        .map(|i| {
            let len = body_len(origin, &mut rng);
            let body: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            let opcode = Opcode(OPCODES[rng.below(OPCODES.len() as u64) as usize]);
            Frame::new(origin, opcode, &body).expect("the mix fits the header")
        })
        .collect()
}

fn cipher(origin: Origin) -> HeaderCipher {
    match origin {
        Origin::Client => HeaderCipher::client_to_server(&KEY),
        Origin::Server => HeaderCipher::server_to_client(&KEY),
    }
}

fn codec(origin: Origin, encrypted: bool) -> FrameCodec {
    let mut codec = FrameCodec::new(origin, origin.max_size_field());
    if encrypted {
        codec.set_cipher(Some(cipher(origin)));
    }
    codec
}

/// The wire bytes of `frames`, headers encrypted with a fresh keystream if asked.
fn wire(frames: &[Frame], encrypted: bool) -> BytesMut {
    let origin = frames[0].origin();
    let mut out = BytesMut::with_capacity(frames.iter().map(Frame::len).sum());
    let mut writer = codec(origin, encrypted);
    for frame in frames {
        writer.encode(frame, &mut out).expect("encodable");
    }
    out
}

/// Decodes every frame of `buf`; returns how many there were.
fn decode_all(codec: &mut FrameCodec, buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(frame) = codec.decode(buf).expect("well-formed stream") {
        black_box(&frame);
        n += 1;
    }
    n
}

/// Encodes every frame into `dst` (cleared first).
fn encode_all(codec: &mut FrameCodec, frames: &[Frame], dst: &mut BytesMut) {
    dst.clear();
    for frame in frames {
        codec.encode(frame, dst).expect("encodable");
    }
    black_box(&dst);
}

/// A fresh decoder and the wire bytes it expects (setup, not measured).
fn decode_setup(frames: &[Frame], encrypted: bool) -> (FrameCodec, BytesMut) {
    (
        codec(frames[0].origin(), encrypted),
        wire(frames, encrypted),
    )
}

fn framing(c: &mut Criterion, streams: &[(Origin, Vec<Frame>)]) {
    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Elements(STREAM_FRAMES as u64));
    for (origin, frames) in streams {
        for encrypted in [false, true] {
            let mode = if encrypted { "cipher" } else { "plain" };
            group.bench_function(format!("decode {origin} {mode}"), |b| {
                b.iter_batched(
                    || decode_setup(frames, encrypted),
                    |(mut codec, mut buf)| {
                        assert_eq!(decode_all(&mut codec, &mut buf), STREAM_FRAMES)
                    },
                    BatchSize::LargeInput,
                )
            });
            let mut writer = codec(*origin, encrypted);
            let mut dst = BytesMut::with_capacity(frames.iter().map(Frame::len).sum());
            group.bench_function(format!("encode {origin} {mode}"), |b| {
                b.iter(|| encode_all(&mut writer, frames, &mut dst))
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------------
// Summary table
// ---------------------------------------------------------------------------------

fn millions(rate: f64) -> String {
    format!("{:.2} M/s", rate / 1e6)
}

fn table(streams: &[(Origin, Vec<Frame>)], pairs: &[Box<dyn Bench>], cell: Duration) {
    println!();
    println!("== tc9-codec summary (timed loops of {cell:?} per cell; criterion above has the statistics)");
    println!();
    println!(
        "{:<30} {:>14} {:>12} {:>14} {:>12}",
        "framing (1,000-frame mix)", "decode frames", "decode MB/s", "encode frames", "encode MB/s"
    );
    for (origin, frames) in streams {
        let bytes: usize = frames.iter().map(Frame::len).sum();
        for encrypted in [false, true] {
            let mode = if encrypted { "cipher" } else { "plain" };
            // Decoding needs fresh bytes (and a fresh keystream) per pass: time only
            // the decoding, as criterion's iter_batched does.
            let mut spent = Duration::ZERO;
            let mut passes = 0u64;
            while spent < cell {
                let (mut codec, mut buf) = decode_setup(frames, encrypted);
                let started = Instant::now();
                decode_all(&mut codec, &mut buf);
                spent += started.elapsed();
                passes += 1;
            }
            let decode = passes as f64 / spent.as_secs_f64();
            let mut writer = codec(*origin, encrypted);
            let mut dst = BytesMut::with_capacity(bytes);
            let encode = rate(cell, 1, || encode_all(&mut writer, frames, &mut dst));
            println!(
                "{:<30} {:>14} {:>12.0} {:>14} {:>12.0}",
                format!(
                    "{origin} {mode} ({:.0} B/frame)",
                    bytes as f64 / frames.len() as f64
                ),
                millions(decode * frames.len() as f64),
                decode * bytes as f64 / 1e6,
                millions(encode * frames.len() as f64),
                encode * bytes as f64 / 1e6,
            );
        }
    }
    println!();
    println!(
        "{:<46} {:>5} {:>11} {:>11} {:>6} {:>11} {:>11} {:>6}",
        "message (same body bytes)",
        "bytes",
        "dec ours",
        "dec wwm",
        "ratio",
        "enc ours",
        "enc wwm",
        "ratio"
    );
    for pair in pairs {
        let [dec_ours, dec_theirs, enc_ours, enc_theirs] = pair.rates(cell);
        println!(
            "{:<46} {:>5} {:>11} {:>11} {:>5.2}x {:>11} {:>11} {:>5.2}x",
            pair.name(),
            pair.body_len(),
            millions(dec_ours),
            millions(dec_theirs),
            dec_ours / dec_theirs,
            millions(enc_ours),
            millions(enc_theirs),
            enc_ours / enc_theirs,
        );
    }
    println!();
    println!("ratio = ours / wow_world_messages (wwm) messages per second, each the best of 5 windows taken in turn; above 1 means ours is faster.");
}

fn main() {
    let streams = vec![
        (Origin::Client, stream(Origin::Client, 1)),
        (Origin::Server, stream(Origin::Server, 2)),
    ];
    let pairs = pairs();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .configure_from_args();
    framing(&mut c, &streams);
    for pair in &pairs {
        pair.criterion(&mut c);
    }
    c.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: criterion then only
    // checks each benchmark once, and the table is skipped too.
    if std::env::args().any(|a| a == "--bench") {
        let cell = std::env::var("TC9_CODEC_TABLE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_millis(250));
        table(&streams, &pairs, cell);
    }
}
