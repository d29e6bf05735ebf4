//! The two scripted ends: the worldserver's and the gateway's.

use std::net::SocketAddr;

use anyhow::{bail, ensure, Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;
use wow_srp::wrath_header::{ClientCrypto, ServerCrypto, WrathServerAttempt};

use super::{auth_session, read_exact_or_eof, Packet};
use crate::STEP;

/// One end of a scripted connection: its header crypto `C` once the session is keyed,
/// and every byte it wrote and read, for byte-exact comparison.
pub struct End<C> {
    /// The connection.
    pub stream: TcpStream,
    /// Header crypto, once the session is keyed.
    pub crypto: Option<C>,
    /// Every byte written.
    pub sent: Vec<u8>,
    /// Every byte read.
    pub received: Vec<u8>,
}

/// The scripted worldserver's end: server headers out, client headers in, encrypted
/// with `wow_srp` once `crypto` is set.
pub type WorldEnd = End<ServerCrypto>;

/// The scripted gateway's end: client headers out, server headers in, encrypted with
/// `wow_srp` once `crypto` is set.
pub type GatewayEnd = End<ClientCrypto>;

impl<C> End<C> {
    /// The end of `stream`, plain until `crypto` is set.
    pub fn new(stream: TcpStream) -> End<C> {
        End {
            stream,
            crypto: None,
            sent: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Writes `bytes` as they are.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        timeout(STEP, self.stream.write_all(bytes))
            .await
            .context("timed out writing")??;
        self.sent.extend_from_slice(bytes);
        Ok(())
    }

    /// Fills `buf` and records it; `false` at a clean end of stream before its first
    /// byte.
    async fn read(&mut self, buf: &mut [u8]) -> Result<bool> {
        read_recorded(&mut self.stream, &mut self.received, buf).await
    }

    /// The `len`-byte body of a frame of `opcode`.
    async fn body(&mut self, len: usize, opcode: u32) -> Result<Vec<u8>> {
        let mut body = vec![0u8; len];
        if !body.is_empty() && !self.read(&mut body).await? {
            bail!("stream ended before the body of 0x{opcode:X}");
        }
        Ok(body)
    }
}

impl WorldEnd {
    /// A server frame's bytes, its header encrypted once `crypto` is set.
    pub fn encode(&mut self, opcode: u16, body: &[u8]) -> Result<Vec<u8>> {
        let size = u32::try_from(body.len() + 2)?;
        let mut bytes = match &mut self.crypto {
            Some(crypto) => crypto.encrypt_server_header(size, opcode).to_vec(),
            None if size > 0x7FFF => {
                let mut header = size.to_be_bytes()[1..].to_vec();
                header[0] |= 0x80;
                header.extend_from_slice(&opcode.to_le_bytes());
                header
            }
            None => {
                let mut header = u16::try_from(size)?.to_be_bytes().to_vec();
                header.extend_from_slice(&opcode.to_le_bytes());
                header
            }
        };
        bytes.extend_from_slice(body);
        Ok(bytes)
    }

    /// Sends one server frame.
    pub async fn send(&mut self, opcode: u16, body: &[u8]) -> Result<()> {
        let bytes = self.encode(opcode, body)?;
        self.write(&bytes).await
    }

    /// Sends one frame in two writes: everything but its last `held` bytes, then,
    /// once `seen` fires, those.
    pub async fn send_split(
        &mut self,
        opcode: u16,
        body: &[u8],
        held: usize,
        seen: oneshot::Receiver<()>,
    ) -> Result<()> {
        let bytes = self.encode(opcode, body)?;
        let (start, rest) = bytes.split_at(bytes.len() - held);
        self.write(start).await?;
        timeout(STEP, seen)
            .await
            .context("the gateway never saw the start of the frame: it was held for its last byte")?
            .context("the gateway side gave up")?;
        self.write(rest).await
    }

    /// The next client packet, `None` at a clean end of stream.
    pub async fn recv(&mut self) -> Result<Option<Packet>> {
        let mut header = [0u8; 6];
        if !self.read(&mut header).await? {
            return Ok(None);
        }
        let (size, opcode) = match &mut self.crypto {
            Some(crypto) => {
                let h = crypto.decrypt_client_header(header);
                (usize::from(h.size), h.opcode)
            }
            None => (
                usize::from(u16::from_be_bytes([header[0], header[1]])),
                u32::from_le_bytes([header[2], header[3], header[4], header[5]]),
            ),
        };
        // AzerothCore's own sanity check: a garbled header fails here.
        ensure!(
            (4..10240).contains(&size),
            "worldserver got a client header with size {size} (opcode 0x{opcode:X}, raw {}): \
             the client-to-server keystream is out of step",
            hex::encode(header)
        );
        let body = self.body(size - 4, opcode).await?;
        Ok(Some(Packet::new(opcode, body)))
    }

    /// The next client packet, which must exist.
    pub async fn expect(&mut self) -> Result<Packet> {
        self.recv()
            .await?
            .context("worldserver: the stream ended, a packet was expected")
    }
}

impl GatewayEnd {
    /// Connects to the sidecar at `addr`, plain until `crypto` is set.
    pub async fn connect(addr: SocketAddr) -> Result<GatewayEnd> {
        let stream = timeout(STEP, TcpStream::connect(addr))
            .await
            .context("timed out connecting to the sidecar")??;
        Ok(GatewayEnd::new(stream))
    }

    /// A client frame's bytes, its header encrypted once `crypto` is set.
    pub fn encode(&mut self, packet: &Packet) -> Result<Vec<u8>> {
        let size = u16::try_from(packet.body.len() + 4)?;
        let mut bytes = match &mut self.crypto {
            Some(crypto) => crypto.encrypt_client_header(size, packet.opcode).to_vec(),
            None => {
                let mut header = size.to_be_bytes().to_vec();
                header.extend_from_slice(&packet.opcode.to_le_bytes());
                header
            }
        };
        bytes.extend_from_slice(&packet.body);
        Ok(bytes)
    }

    /// Sends one client frame.
    pub async fn send(&mut self, packet: &Packet) -> Result<()> {
        self.send_all(std::slice::from_ref(packet)).await
    }

    /// Sends `packets` in one write, so the sidecar sees them back to back.
    pub async fn send_all(&mut self, packets: &[Packet]) -> Result<()> {
        let mut bytes = Vec::new();
        for packet in packets {
            bytes.extend(self.encode(packet)?);
        }
        self.write(&bytes).await
    }

    /// Sends the plain `CMSG_AUTH_SESSION`, turns header encryption on and sends
    /// `pipelined` encrypted, all in one write: the sidecar finds encrypted headers
    /// already buffered behind the plain one.
    pub async fn send_auth(
        &mut self,
        account: &str,
        crypto: ClientCrypto,
        pipelined: &[Packet],
    ) -> Result<()> {
        ensure!(self.crypto.is_none(), "the auth session goes out plain");
        let mut bytes = self.encode(&auth_session(account))?;
        self.crypto = Some(crypto);
        for packet in pipelined {
            bytes.extend(self.encode(packet)?);
        }
        self.write(&bytes).await
    }

    /// The next server packet, `None` at a clean end of stream.
    pub async fn recv(&mut self) -> Result<Option<Packet>> {
        let mut first = [0u8; 4];
        if !self.read(&mut first).await? {
            return Ok(None);
        }
        let mut extra = [0u8; 1];
        let (size, opcode) = match &mut self.crypto {
            Some(crypto) => {
                let header = match crypto.attempt_decrypt_server_header(first) {
                    WrathServerAttempt::Header(h) => h,
                    WrathServerAttempt::AdditionalByteRequired => {
                        // The fields, not `self`: `crypto` is borrowed here.
                        let (stream, received) = (&mut self.stream, &mut self.received);
                        if !read_recorded(stream, received, &mut extra).await? {
                            bail!("stream ended inside a large server header");
                        }
                        crypto.decrypt_large_server_header(extra[0])
                    }
                };
                (header.size as usize, header.opcode)
            }
            None if first[0] & 0x80 != 0 => {
                if !self.read(&mut extra).await? {
                    bail!("stream ended inside a large server header");
                }
                let size = usize::from(first[0] & 0x7F) << 16
                    | usize::from(first[1]) << 8
                    | usize::from(first[2]);
                (size, u16::from_le_bytes([first[3], extra[0]]))
            }
            None => (
                usize::from(u16::from_be_bytes([first[0], first[1]])),
                u16::from_le_bytes([first[2], first[3]]),
            ),
        };
        // Nothing the scripts send is larger than this: a garbled header fails here.
        ensure!(
            (2..=0x10_0000).contains(&size),
            "gateway got a server header with size {size} (opcode 0x{opcode:X}, raw {}): \
             the server-to-client keystream is out of step",
            hex::encode(first)
        );
        let body = self.body(size - 2, opcode.into()).await?;
        Ok(Some(Packet::new(opcode, body)))
    }

    /// The next server packet, which must exist.
    pub async fn expect(&mut self) -> Result<Packet> {
        self.recv()
            .await?
            .context("gateway: the stream ended, a packet was expected")
    }

    /// The next `n` server packets.
    pub async fn expect_n(&mut self, n: usize) -> Result<Vec<Packet>> {
        let mut packets = Vec::with_capacity(n);
        for _ in 0..n {
            packets.push(self.expect().await?);
        }
        Ok(packets)
    }

    /// Half-closes the sending side, as a gateway whose player left.
    pub async fn finish(&mut self) -> Result<()> {
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Reads until the sidecar closes the stream; every packet on the way.
    pub async fn recv_to_end(&mut self) -> Result<Vec<Packet>> {
        let mut rest = Vec::new();
        while let Some(packet) = self.recv().await? {
            rest.push(packet);
        }
        Ok(rest)
    }
}

/// Fills `buf` from `stream` and records it in `received`; `false` at a clean end of
/// stream before its first byte.
async fn read_recorded(
    stream: &mut TcpStream,
    received: &mut Vec<u8>,
    buf: &mut [u8],
) -> Result<bool> {
    let read = read_exact_or_eof(stream, buf).await?;
    if read {
        received.extend_from_slice(buf);
    }
    Ok(read)
}
