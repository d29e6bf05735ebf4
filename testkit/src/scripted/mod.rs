//! Scripted peers that frame packets themselves, plain or with `wow_srp`'s wrath
//! header crypto (independent of the sidecar's codec, so a keystream out of step
//! shows as a garbled header), and the packets and fixtures their tests share.

use std::fmt;

use anyhow::{bail, Context, Result};
use tc9_codec::Opcode;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::STEP;

mod ends;
mod packets;
mod stub;

pub use ends::{End, GatewayEnd, WorldEnd};
pub use packets::*;
pub use stub::*;

/// One packet as a peer saw it: opcode and body (the size is implied by the body).
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    /// The opcode.
    pub opcode: u32,
    /// The body.
    pub body: Vec<u8>,
}

impl Packet {
    /// A packet of `opcode` carrying `body`.
    pub fn new(opcode: impl Into<u32>, body: impl Into<Vec<u8>>) -> Packet {
        Packet {
            opcode: opcode.into(),
            body: body.into(),
        }
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Opcode(self.opcode).name().unwrap_or("?");
        let shown = self.body.len().min(24);
        write!(
            f,
            "{name} (0x{:03X}) [{} bytes: {}{}]",
            self.opcode,
            self.body.len(),
            hex::encode(&self.body[..shown]),
            if shown < self.body.len() { "…" } else { "" }
        )
    }
}

/// Fills `buf` from `stream`; `false` when the stream ended before its first byte.
pub async fn read_exact_or_eof(stream: &mut TcpStream, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = timeout(STEP, stream.read(&mut buf[filled..]))
            .await
            .context("timed out reading")??;
        if n == 0 {
            if filled == 0 {
                return Ok(false);
            }
            bail!("stream ended {filled} bytes into a {}-byte read", buf.len());
        }
        filled += n;
    }
    Ok(true)
}

/// A pattern body of `len` bytes, different per `seed`.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A scripted worldserver listening on a port of its own.
pub async fn worldserver_listener() -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    Ok((listener, addr))
}

/// The next connection the sidecar makes to `listener`, as the worldserver's end.
pub async fn accept(listener: &TcpListener) -> Result<WorldEnd> {
    let (stream, _) = timeout(STEP, listener.accept())
        .await
        .context("the sidecar never connected to the worldserver")??;
    stream.set_nodelay(true)?;
    Ok(WorldEnd::new(stream))
}

/// Awaits a script task, failing the test with the script's own error.
pub async fn join<T>(task: JoinHandle<Result<T>>, who: &str) -> Result<T> {
    task.await
        .with_context(|| format!("the {who} script panicked"))?
        .with_context(|| format!("the {who} script failed"))
}
