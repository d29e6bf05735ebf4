//! Wire helpers shared by the scripted ends.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Plain,
    Crypt,
}

impl Link {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Link::Plain => "plain",
            Link::Crypt => "wotlk-crypt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Direct,
    Relay,
    Sidecar,
}

impl Target {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Relay => "relay",
            Target::Sidecar => "sidecar",
        }
    }
}

pub(crate) fn account(i: usize) -> String {
    format!("BENCH{i}")
}

pub(crate) fn session_key(i: usize) -> [u8; SESSION_KEY_LEN] {
    std::array::from_fn(|j| {
        (j as u8).wrapping_mul(73) ^ (i as u8) ^ ((i >> 8) as u8).rotate_left(3)
    })
}

pub(crate) fn auth_session(i: usize) -> Vec<u8> {
    tc9_testkit::frames::auth_session(&account(i)).to_body()
}

/// Appends a client frame; the header is encrypted when `cipher` is set.
pub(crate) fn put_client_frame(
    out: &mut Vec<u8>,
    cipher: &mut Option<HeaderCipher>,
    opcode: u32,
    body: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(&opcode.to_le_bytes());
    if let Some(cipher) = cipher {
        cipher.apply(&mut out[start..]);
    }
    out.extend_from_slice(body);
}

/// Appends a server frame header for a `body_len`-byte body (3-byte size when large).
pub(crate) fn put_server_header(
    out: &mut BytesMut,
    cipher: &mut Option<HeaderCipher>,
    opcode: u16,
    body_len: usize,
) {
    let start = out.len();
    let size = body_len + 2;
    if size > 0x7FFF {
        out.extend_from_slice(&[0x80 | (size >> 16) as u8]);
    }
    out.extend_from_slice(&(size as u16).to_be_bytes());
    out.extend_from_slice(&opcode.to_le_bytes());
    if let Some(cipher) = cipher {
        cipher.apply(&mut out[start..]);
    }
}

/// A request body: answer length, send time, kind, padding, filler.
pub(crate) fn put_request(
    out: &mut Vec<u8>,
    cipher: &mut Option<HeaderCipher>,
    len: usize,
    answer: usize,
    kind: u8,
    sent: u64,
) {
    let mut head = [0u8; HEAD];
    head[..4].copy_from_slice(&(answer as u32).to_le_bytes());
    head[4..12].copy_from_slice(&sent.to_le_bytes());
    head[12] = kind;
    let start = out.len();
    out.extend_from_slice(&((len + 4) as u16).to_be_bytes());
    out.extend_from_slice(&REQUEST_OPCODE.to_le_bytes());
    if let Some(cipher) = cipher {
        cipher.apply(&mut out[start..]);
    }
    out.extend_from_slice(&head);
    out.extend_from_slice(&FILLER[..len - HEAD]);
}

/// Body lengths of one request and its answer, from the realistic mix.
pub(crate) fn draw_sizes(rng: &mut SampleRng) -> (usize, usize) {
    let pick =
        |rng: &mut SampleRng, lo: usize, hi: usize| lo + rng.below((hi - lo) as u64) as usize;
    let request = match rng.below(100) {
        0 => pick(rng, 1024, 4096),
        1..=2 => pick(rng, 200, 1024),
        _ => pick(rng, HEAD, 200),
    };
    let answer = if rng.below(100) < 3 {
        pick(rng, 4096, MAX_BODY)
    } else {
        request
    };
    (request, answer)
}

/// A latency in ns, saturated to what a sample holds.
pub(crate) fn nanos(ns: u64) -> u32 {
    ns.min(u64::from(u32::MAX)) as u32
}

pub(crate) fn u64_at(body: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&body[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads from `io` until `codec` yields a frame.
pub(crate) async fn read_frame(
    io: &mut TcpStream,
    codec: &mut FrameCodec,
    buf: &mut BytesMut,
) -> Result<Frame> {
    loop {
        if let Some(frame) = codec.decode(buf)? {
            return Ok(frame);
        }
        if io.read_buf(buf).await? == 0 {
            bail!("the stream ended during the handshake");
        }
    }
}
