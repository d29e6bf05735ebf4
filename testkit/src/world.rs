//! A scripted worldserver: it answers logins (`SMSG_LOGIN_VERIFY_WORLD`), pings
//! (`SMSG_PONG`, the tests' ordering fence), a saved tabard (the guild event
//! AzerothCore sends), echoes `CMSG_GUILD_ROSTER` as `SMSG_GUILD_ROSTER` (so
//! pass-through shows), and records every client frame it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use futures::StreamExt;
use tc9_codec::messages::guild::event;
use tc9_codec::messages::{SmsgGuildEvent, SmsgLoginVerifyWorld};
use tc9_codec::{Frame, FrameCodec, Opcode, Origin};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use crate::gateway::Gateway;
use crate::{eventually, lock, server, server_frame, STEP};

/// A frame a [`World`] received: connection number (from 1), arrival time, frame.
pub type Logged = (usize, Instant, Frame);

/// A scripted worldserver on an ephemeral port; see the module docs.
pub struct World {
    /// Where the sidecar connects.
    pub addr: SocketAddr,
    /// Every frame received.
    pub log: Arc<Mutex<Vec<Logged>>>,
    task: JoinHandle<()>,
}

impl World {
    /// Starts listening.
    pub async fn start() -> Result<World> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log: Arc<Mutex<Vec<Logged>>> = Arc::default();
        let recorder = Arc::clone(&log);
        let task = tokio::spawn(async move {
            let mut connections = 0;
            while let Ok((stream, _)) = listener.accept().await {
                connections += 1;
                tokio::spawn(serve(stream, connections, Arc::clone(&recorder)));
            }
        });
        Ok(World { addr, log, task })
    }

    /// How many frames of `opcode` this worldserver has received.
    pub fn count(&self, opcode: Opcode) -> usize {
        lock(&self.log)
            .iter()
            .filter(|(_, _, f)| f.opcode() == opcode)
            .count()
    }

    /// The frames of `opcode` received, in order.
    pub fn frames(&self, opcode: Opcode) -> Vec<Frame> {
        lock(&self.log)
            .iter()
            .filter(|(_, _, f)| f.opcode() == opcode)
            .map(|(_, _, f)| f.clone())
            .collect()
    }

    /// Fails if this worldserver received any frame of `opcodes`.
    pub fn assert_never_saw(&self, opcodes: &[Opcode], who: &str) -> Result<()> {
        for opcode in opcodes {
            let n = self.count(*opcode);
            ensure!(n == 0, "{who} received {n} {opcode} frame(s)");
        }
        Ok(())
    }

    /// Waits until the `n`th (1-based) frame of `opcode` has arrived; returns it with
    /// its arrival time.
    pub async fn nth(&self, opcode: Opcode, n: usize, limit: Duration) -> Result<(Instant, Frame)> {
        eventually(
            &format!("{opcode} number {n} at the worldserver"),
            limit,
            || {
                let found = lock(&self.log)
                    .iter()
                    .filter(|(_, _, f)| f.opcode() == opcode)
                    .nth(n - 1)
                    .map(|(_, at, f)| (*at, f.clone()));
                async move { Ok(found) }
            },
        )
        .await
    }

    /// Sends `frame` from `gateway` and checks the worldserver receives it, byte for
    /// byte, within `limit`; returns how long it took.
    pub async fn expect_forwarded(
        &self,
        gateway: &mut Gateway,
        frame: &Frame,
        limit: Duration,
    ) -> Result<Duration> {
        let n = self.count(frame.opcode()) + 1;
        let sent = Instant::now();
        gateway.send_frame(frame).await?;
        let (at, got) = self.nth(frame.opcode(), n, STEP).await?;
        ensure!(
            got.as_bytes() == frame.as_bytes(),
            "{}: forwarded {got:?}, sent {frame:?}",
            gateway.who
        );
        let took = at.saturating_duration_since(sent);
        ensure!(
            took <= limit,
            "{}: {} reached the worldserver after {took:?}, more than {limit:?}",
            gateway.who,
            frame.opcode()
        );
        Ok(took)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer to one client frame, if the script has one.
fn reply(frame: &Frame) -> Option<Frame> {
    match frame.opcode() {
        Opcode::CMSG_PLAYER_LOGIN => Some(server_frame(&SmsgLoginVerifyWorld {
            map: 0,
            x: -8949.95,
            y: -132.49,
            z: 83.53,
            orientation: 0.0,
        })),
        Opcode::CMSG_PING => frame
            .body()
            .get(..4)
            .and_then(|seq| Frame::new(Origin::Server, Opcode::SMSG_PONG, seq).ok()),
        // A saved tabard: AzerothCore tells the guild with GE_TABARDCHANGE.
        Opcode::MSG_SAVE_GUILD_EMBLEM => Some(server_frame(&SmsgGuildEvent {
            event: event::TABARD_CHANGED,
            params: Vec::new(),
            guid: None,
        })),
        Opcode::CMSG_GUILD_ROSTER => Some(server(Opcode::SMSG_GUILD_ROSTER, frame.body())),
        _ => None,
    }
}

/// One sidecar connection.
async fn serve(stream: TcpStream, connection: usize, log: Arc<Mutex<Vec<Logged>>>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut frames = FramedRead::new(read, FrameCodec::client());
    while let Some(Ok(frame)) = frames.next().await {
        lock(&log).push((connection, Instant::now(), frame.clone()));
        if let Some(reply) = reply(&frame) {
            if write.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
    }
}
