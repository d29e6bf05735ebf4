//! Frames for scripted peers: building them, reading them off a stream, writing
//! streams in pieces, and comparing streams.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tc9_codec::messages::CmsgAuthSession;
use tc9_codec::sample::SampleRng;
use tc9_codec::wire::{Bytes, Rest};
use tc9_codec::{Frame, Message, Opcode, Origin};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::STEP;

/// A client frame of `opcode` with `body`.
pub fn client(opcode: Opcode, body: &[u8]) -> Frame {
    Frame::new(Origin::Client, opcode, body).expect("a client frame")
}

/// A server frame of `opcode` with `body`.
pub fn server(opcode: Opcode, body: &[u8]) -> Frame {
    Frame::new(Origin::Server, opcode, body).expect("a server frame")
}

/// A client frame carrying `message`.
pub fn client_frame<M: Message>(message: &M) -> Frame {
    Frame::from_message(Origin::Client, message).expect("a client frame")
}

/// A server frame carrying `message`.
pub fn server_frame<M: Message>(message: &M) -> Frame {
    Frame::from_message(Origin::Server, message).expect("a server frame")
}

/// A build-12340 `CMSG_AUTH_SESSION` of `account` with fixed seed, digest and a
/// short addon blob, as the gateway replays it.
pub fn auth_session(account: &str) -> CmsgAuthSession {
    CmsgAuthSession {
        build: 12340,
        login_server_id: 0,
        account: account.to_owned(),
        login_server_type: 0,
        client_seed: Bytes([1, 2, 3, 4]),
        region_id: 0,
        battlegroup_id: 0,
        realm_id: 1,
        dos_response: 3,
        digest: Bytes([0x5A; 20]),
        addons: Rest(vec![0x9E, 0x02, 0, 0, 0x78, 0x9C, 0x75]),
    }
}

/// Reads one frame with `origin`'s header; `None` on a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    origin: Origin,
) -> std::io::Result<Option<Frame>> {
    let mut first = [0u8; 1];
    if r.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let size_len = if origin == Origin::Server && first[0] & 0x80 != 0 {
        3
    } else {
        2
    };
    let mut bytes = vec![first[0]; size_len];
    r.read_exact(&mut bytes[1..]).await?;
    let size = match size_len {
        3 => {
            usize::from(bytes[0] & 0x7F) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2])
        }
        _ => usize::from(bytes[0]) << 8 | usize::from(bytes[1]),
    };
    bytes.resize(size_len + size, 0);
    r.read_exact(&mut bytes[size_len..]).await?;
    Frame::parse(origin, &bytes)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Reads one frame within [`STEP`] and checks it is exactly `want`.
pub async fn expect_frame<R: AsyncRead + Unpin>(r: &mut R, want: &Frame, what: &str) -> Result<()> {
    let got = timeout(STEP, read_frame(r, want.origin()))
        .await
        .with_context(|| format!("{what}: no frame within {STEP:?}"))?
        .with_context(|| format!("{what}: read failed"))?
        .with_context(|| format!("{what}: EOF instead of {want:?}"))?;
    ensure!(
        got.as_bytes() == want.as_bytes(),
        "{what}: got {got:?}, want {want:?}"
    );
    Ok(())
}

/// Where two byte streams first differ, with 16 bytes of each from there; `None` when
/// they are identical (megabyte streams are reported by their first difference only).
pub fn stream_difference(got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Some(format!(
        "streams differ at byte {at} (got {} bytes, want {}): got {:02x?} want {:02x?}",
        got.len(),
        want.len(),
        &got[at..(at + 16).min(got.len())],
        &want[at..(at + 16).min(want.len())],
    ))
}

/// Fails unless two byte streams are identical, reporting the first difference.
pub fn ensure_same_stream(what: &str, got: &[u8], want: &[u8]) -> Result<()> {
    match stream_difference(got, want) {
        Some(difference) => bail!("{what}: {difference}"),
        None => Ok(()),
    }
}

/// Writes `bytes` in seeded random-sized chunks of at most `max_chunk` bytes, now
/// and then only a few bytes, so headers get split too.
pub async fn write_chunked<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    seed: u64,
    max_chunk: usize,
) -> Result<()> {
    let mut rng = SampleRng::new(seed);
    let mut at = 0;
    while at < bytes.len() {
        let n = if rng.index(4) == 0 {
            1 + rng.index(7)
        } else {
            1 + rng.index(max_chunk)
        };
        let n = n.min(bytes.len() - at);
        timeout(STEP, w.write_all(&bytes[at..at + n]))
            .await
            .context("chunk write timed out")??;
        at += n;
    }
    Ok(())
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A clean EOF (FIN).
    Eof,
    /// A read error, such as a reset.
    Error,
}

/// Reads until the connection ends (EOF or an error such as a reset), for at most
/// `limit`; returns the bytes read before the end and how it ended.
pub async fn read_to_close<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: Duration,
    what: &str,
) -> Result<(Vec<u8>, Ending)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, r.read(&mut buf)).await {
            Err(_) => bail!(
                "{what}: still open after {limit:?} ({} bytes read)",
                got.len()
            ),
            Ok(Ok(0)) => return Ok((got, Ending::Eof)),
            Ok(Err(_)) => return Ok((got, Ending::Error)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}
