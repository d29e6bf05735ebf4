//! A model of the AzerothCore worldserver ToCloud9 pins (walkline/azerothcore-wotlk
//! at `dbfeb1d45`), for the tests and the demo: no worldserver can run without client
//! data.
//!
//! It speaks the cluster link (plain headers: `CMSG_PLAYER_LOGIN` answered with
//! `SMSG_LOGIN_VERIFY_WORLD`, `CMSG_PING` with `SMSG_PONG`), loads petitions,
//! signatures, guilds and characters from its [`WorldDb`] at start and keeps them in
//! [`Memory`], and runs the native charter handlers (`handlers`) in AzerothCore's
//! order with its result codes, writing rows as the pinned worldserver does. With
//! [`ModelConfig::module`], `mod-tc9-sidecar`'s rules (`module`) run right before
//! the handlers, as its `CanPacketReceive` does.

pub mod db;
mod handlers;
pub mod memdb;
mod module;
pub mod mysql;
mod state;
mod turn_in;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use tc9_codec::messages::{CmsgPlayerLogin, SmsgLoginVerifyWorld};
use tc9_codec::{Frame, FrameCodec, Message, Opcode, Origin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;
use tracing::warn;

pub use db::{CharacterRow, DbError, Loaded, NewGuild, PetitionRow, WorldDb};
pub use state::Memory;

/// How a modelled worldserver is configured (`worldserver.conf` and the module's).
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// `mod-tc9-sidecar` is installed and enabled.
    pub module: bool,
    /// `MinPetitionSigns`.
    pub min_petition_signs: u32,
    /// `AllowTwoSide.Interaction.Guild`.
    pub two_side_guild: bool,
    /// ToCloud9 cluster mode: guild membership is reset at every login
    /// (`CharacterHandler.cpp:854-883`).
    pub cluster: bool,
    /// The first item guid this process hands out (per-process counters, as in
    /// AzerothCore; distinct per model so that charters of two models never share an
    /// item guid).
    pub first_item: u32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            module: false,
            min_petition_signs: 9,
            two_side_guild: false,
            cluster: true,
            first_item: 1_000_000,
        }
    }
}

/// A player in the world on this worldserver.
#[derive(Debug, Clone)]
struct Player {
    guid: u32,
    account: u32,
    name: String,
    race: u8,
    /// `GetGuildId()`: 0 in cluster mode until a guild is made here.
    guild: u32,
}

/// What every session of a modelled worldserver shares.
struct Core<D> {
    db: D,
    config: ModelConfig,
    memory: Mutex<Memory>,
    /// Connected players, by guid: their session's outgoing frames.
    online: Mutex<HashMap<u32, mpsc::UnboundedSender<Frame>>>,
    /// Client frames received, by opcode.
    received: Mutex<HashMap<Opcode, usize>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<D: WorldDb> Core<D> {
    /// Sends `frame` to `player` if it is connected here (`FindConnectedPlayer`).
    fn send_to(&self, player: u32, frame: Frame) -> bool {
        lock(&self.online)
            .get(&player)
            .is_some_and(|tx| tx.send(frame).is_ok())
    }
}

/// A running model worldserver.
pub struct ModelWorldserver {
    addr: SocketAddr,
    task: JoinHandle<()>,
    memory: Arc<dyn Fn() -> MemoryView + Send + Sync>,
    received: Arc<dyn Fn(Opcode) -> usize + Send + Sync>,
}

/// A copy of what a model holds in memory, for tests.
#[derive(Debug, Clone, Default)]
pub struct MemoryView {
    /// Petitions by charter item.
    pub petitions: HashMap<u32, PetitionRow>,
    /// Signature counts by charter item.
    pub signatures: HashMap<u32, usize>,
    /// Guild names by id.
    pub guilds: HashMap<u32, String>,
}

impl ModelWorldserver {
    /// Loads the model's memory from `db` and starts listening on an ephemeral port.
    pub async fn start<D: WorldDb>(db: D, config: ModelConfig) -> anyhow::Result<Self> {
        let loaded = db.load().await.map_err(anyhow::Error::from_boxed)?;
        let memory = Memory::load(loaded, config.first_item);
        let core = Arc::new(Core {
            db,
            config,
            memory: Mutex::new(memory),
            online: Mutex::new(HashMap::new()),
            received: Mutex::new(HashMap::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Arc::clone(&core);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(Arc::clone(&served), stream));
            }
        });
        let viewed = Arc::clone(&core);
        let memory = Arc::new(move || {
            let m = lock(&viewed.memory);
            MemoryView {
                petitions: m.petitions.clone(),
                signatures: m.signatures.iter().map(|(k, v)| (*k, v.len())).collect(),
                guilds: m.guilds.clone(),
            }
        });
        let counted = Arc::clone(&core);
        let received =
            Arc::new(move |opcode| lock(&counted.received).get(&opcode).copied().unwrap_or(0));
        Ok(ModelWorldserver {
            addr,
            task,
            memory,
            received,
        })
    }

    /// Where a sidecar connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many client frames of `opcode` the worldserver received.
    pub fn received(&self, opcode: Opcode) -> usize {
        (self.received)(opcode)
    }

    /// What the worldserver holds in memory now.
    pub fn memory(&self) -> MemoryView {
        (self.memory)()
    }
}

impl Drop for ModelWorldserver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One sidecar connection: a player session.
async fn session<D: WorldDb>(core: Arc<Core<D>>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write.write_all(frame.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut codec = FrameCodec::client();
    let mut buf = BytesMut::new();
    let mut player: Option<Player> = None;
    'session: loop {
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => break 'session,
            };
            *lock(&core.received).entry(frame.opcode()).or_default() += 1;
            let replies = match (frame.opcode(), player.as_mut()) {
                (Opcode::CMSG_PLAYER_LOGIN, _) => {
                    player = log_in(&core, &frame).await;
                    if let Some(p) = &player {
                        lock(&core.online).insert(p.guid, tx.clone());
                    }
                    vec![Frame::from_message(
                        Origin::Server,
                        &SmsgLoginVerifyWorld::default(),
                    )]
                    .into_iter()
                    .flatten()
                    .collect()
                }
                (Opcode::CMSG_PING, _) => frame
                    .body()
                    .get(..4)
                    .and_then(|seq| Frame::new(Origin::Server, Opcode::SMSG_PONG, seq).ok())
                    .into_iter()
                    .collect(),
                (_, Some(p)) => match handlers::handle(&core, p, &frame).await {
                    Ok(replies) => replies,
                    Err(e) => {
                        warn!(opcode = %frame.opcode(), error = %e, "model worldserver: handler failed");
                        Vec::new()
                    }
                },
                (_, None) => Vec::new(),
            };
            for reply in replies {
                if tx.send(reply).is_err() {
                    break 'session;
                }
            }
        }
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if let Some(p) = player {
        lock(&core.online).remove(&p.guid);
    }
    drop(tx);
    let _ = writer.await;
}

/// `HandlePlayerLoginOpcode`: the character from the database; in cluster mode its
/// guild is reset (`CharacterHandler.cpp:854-883`).
async fn log_in<D: WorldDb>(core: &Core<D>, frame: &Frame) -> Option<Player> {
    let login = CmsgPlayerLogin::decode(frame.body()).ok()?;
    let row = core.db.character(login.guid.low()).await.ok()??;
    let guild = if core.config.cluster { 0 } else { row.guild };
    Some(Player {
        guid: row.guid,
        account: row.account,
        name: row.name,
        race: row.race,
        guild,
    })
}
