//! A scripted ToCloud9 gateway connection: one player session, plain frames.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures::StreamExt;
use tc9_codec::messages::{CmsgPlayerLogin, SmsgLoginVerifyWorld};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, FrameCodec, Message, Opcode};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::FramedRead;

use crate::{client, client_frame, server, STEP};

/// One gateway session toward a sidecar.
pub struct Gateway {
    /// Who this is, in failure messages.
    pub who: String,
    reader: FramedRead<OwnedReadHalf, FrameCodec>,
    writer: OwnedWriteHalf,
    /// Frames read while waiting for something else, handed out first.
    early: VecDeque<Frame>,
    /// Frames that arrived before this session's `SMSG_LOGIN_VERIFY_WORLD`.
    pub before_login: usize,
}

impl Gateway {
    /// Connects to the sidecar at `addr`.
    pub async fn connect(addr: SocketAddr, who: &str) -> Result<Gateway> {
        let stream = timeout(STEP, TcpStream::connect(addr))
            .await
            .with_context(|| format!("{who}: connect timed out"))??;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        Ok(Gateway {
            who: who.to_owned(),
            reader: FramedRead::new(read, FrameCodec::server()),
            writer,
            early: VecDeque::new(),
            before_login: 0,
        })
    }

    /// Connects and logs `guid` in.
    pub async fn logged_in(addr: SocketAddr, who: &str, guid: u32) -> Result<Gateway> {
        let mut gateway = Gateway::connect(addr, who).await?;
        gateway.log_in(guid).await?;
        Ok(gateway)
    }

    /// The session's two halves: the frames arriving, and the socket to write to
    /// (frames already buffered are dropped).
    pub fn into_parts(self) -> (FramedRead<OwnedReadHalf, FrameCodec>, OwnedWriteHalf) {
        (self.reader, self.writer)
    }

    /// Sends one frame.
    pub async fn send_frame(&mut self, frame: &Frame) -> Result<()> {
        timeout(STEP, self.writer.write_all(frame.as_bytes()))
            .await
            .with_context(|| format!("{}: write timed out", self.who))?
            .with_context(|| format!("{}: write failed", self.who))
    }

    /// Sends `message` in a client frame.
    pub async fn send<M: Message>(&mut self, message: &M) -> Result<()> {
        self.send_frame(&client_frame(message)).await
    }

    /// The next frame off the socket; `None` if none came within `limit`.
    pub async fn read(&mut self, limit: Duration) -> Result<Option<Frame>> {
        match timeout(limit, self.reader.next()).await {
            Err(_) => Ok(None),
            Ok(None) => bail!("{}: the sidecar closed the connection", self.who),
            Ok(Some(Err(e))) => bail!("{}: unreadable frame: {e}", self.who),
            Ok(Some(Ok(frame))) => Ok(Some(frame)),
        }
    }

    /// The next frame, buffered ones first; `None` if none came within `limit`.
    pub async fn recv(&mut self, limit: Duration) -> Result<Option<Frame>> {
        match self.early.pop_front() {
            Some(frame) => Ok(Some(frame)),
            None => self.read(limit).await,
        }
    }

    /// The next frame, which must carry an `M`; returns it decoded and as sent.
    pub async fn expect_framed<M: Message>(&mut self, what: &str) -> Result<(M, Frame)> {
        let frame = self
            .recv(STEP)
            .await?
            .with_context(|| format!("{}: no {} within {STEP:?}: {what}", self.who, M::OPCODE))?;
        ensure!(
            frame.opcode() == M::OPCODE,
            "{}: {what}: expected {}, got {:?}",
            self.who,
            M::OPCODE,
            frame
        );
        let message = M::decode(frame.body())
            .with_context(|| format!("{}: {what}: undecodable {}", self.who, M::OPCODE))?;
        Ok((message, frame))
    }

    /// The next frame, which must carry an `M`.
    pub async fn expect<M: Message>(&mut self, what: &str) -> Result<M> {
        Ok(self.expect_framed(what).await?.0)
    }

    /// Sends `CMSG_PLAYER_LOGIN` and waits for `SMSG_LOGIN_VERIFY_WORLD`; frames that
    /// come first are kept for later reads.
    pub async fn log_in(&mut self, guid: u32) -> Result<()> {
        self.send(&CmsgPlayerLogin {
            guid: Guid::player(guid),
        })
        .await?;
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self
                .read(left)
                .await?
                .with_context(|| format!("{}: no SMSG_LOGIN_VERIFY_WORLD", self.who))?;
            if frame.opcode() == Opcode::SMSG_LOGIN_VERIFY_WORLD {
                SmsgLoginVerifyWorld::decode(frame.body())?;
                return Ok(());
            }
            self.before_login += 1;
            self.early.push_back(frame);
        }
    }

    /// The ordering fence: sends a ping and reads up to its pong. Returns the frames
    /// that came before the pong (none of them is lost: they are what the sidecar
    /// sent this session meanwhile). Once this returns, the worldserver has received
    /// every frame this gateway sent before, unless the sidecar kept it back.
    pub async fn fence(&mut self) -> Result<Vec<Frame>> {
        static SEQ: AtomicU32 = AtomicU32::new(1);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let mut body = seq.to_le_bytes().to_vec();
        body.extend_from_slice(&0u32.to_le_bytes());
        self.send_frame(&client(Opcode::CMSG_PING, &body)).await?;
        let mut before = Vec::new();
        loop {
            let frame = self
                .recv(STEP)
                .await?
                .with_context(|| format!("{}: no SMSG_PONG for ping {seq}", self.who))?;
            if frame.opcode() == Opcode::SMSG_PONG && frame.body() == seq.to_le_bytes() {
                return Ok(before);
            }
            before.push(frame);
        }
    }

    /// Nothing arrives for `quiet`, and nothing is queued before a fence either.
    pub async fn expect_silence(&mut self, quiet: Duration, what: &str) -> Result<()> {
        if let Some(frame) = self.recv(quiet).await? {
            bail!("{}: {what}: expected silence, got {frame:?}", self.who);
        }
        let before = self.fence().await?;
        ensure!(
            before.is_empty(),
            "{}: {what}: expected silence, got {before:?}",
            self.who
        );
        Ok(())
    }

    /// A pass-through round: a frame the worldserver echoes comes back intact.
    pub async fn echo(&mut self, body: &[u8]) -> Result<()> {
        self.send_frame(&client(Opcode::CMSG_GUILD_ROSTER, body))
            .await?;
        let want = server(Opcode::SMSG_GUILD_ROSTER, body);
        let got = self
            .recv(STEP)
            .await?
            .with_context(|| format!("{}: no echo", self.who))?;
        ensure!(
            got.as_bytes() == want.as_bytes(),
            "{}: echo {got:?}, want {want:?}",
            self.who
        );
        Ok(())
    }

    /// Collects every frame that arrives within `quiet` of the previous one, then
    /// those a fence finds queued.
    pub async fn drain(&mut self, quiet: Duration) -> Result<Vec<Frame>> {
        let mut frames = Vec::new();
        while let Some(frame) = self.recv(quiet).await? {
            frames.push(frame);
        }
        frames.extend(self.fence().await?);
        Ok(frames)
    }
}
