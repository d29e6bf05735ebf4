//! `tc9-sidecar demo`: a realm of three worldservers in one process, with no
//! database.
//!
//! Three models of the AzerothCore worldserver (with `mod-tc9-sidecar`) share one
//! in-memory characters database; a sidecar with in-memory backends sits in front of
//! each. Anduin buys a guild charter on worldserver A, offers it to four players on
//! A, B and C, who sign it; he turns it in on A, the guild is created, and Tyrande
//! on C asks for it. Every packet a player sends or receives is printed decoded.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bytes::BytesMut;
use tc9_charter::CharterStore;
use tc9_codec::messages::petition::{sign_result, turn_in_result};
use tc9_codec::messages::{
    CmsgGuildQuery, CmsgOfferPetition, CmsgPetitionBuy, CmsgPetitionSign, CmsgPlayerLogin,
    CmsgTurnInPetition, GuildCommandError, SmsgGuildCommandResult, SmsgGuildQueryResponse,
    SmsgLoginVerifyWorld, SmsgPetitionShowSignatures, SmsgPetitionSignResults,
    SmsgTurnInPetitionResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{decode_frame, Frame, FrameCodec, Message, Opcode, Origin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use crate::app::Sidecar;
use crate::backends::memory::{MemoryRealm, MemoryStore, World};
use crate::config::Config;
use crate::tools::worldserver::{ModelConfig, ModelWorldserver};

/// The demo's realm: five Alliance players; MinPetitionSigns is 4.
const WORLD: &str = r#"
[[character]]
guid = 1
account = 1
name = "Anduin"
race = 1

[[character]]
guid = 2
account = 2
name = "Jaina"
race = 1

[[character]]
guid = 3
account = 3
name = "Varian"
race = 1

[[character]]
guid = 4
account = 4
name = "Tyrande"
race = 4

[[character]]
guid = 5
account = 5
name = "Velen"
race = 11
"#;

/// Signatures a guild charter needs in the demo's realm.
const MIN_SIGNS: u32 = 4;
/// The guild's name.
const GUILD: &str = "Silver Hand";
/// The signers, by guid, with the worldserver each plays on.
const SIGNERS: [(u32, usize); 4] = [(2, 1), (3, 1), (4, 2), (5, 0)];
/// The worldservers.
const IDS: [&str; 3] = ["A", "B", "C"];

/// How long any step may take.
const STEP: Duration = Duration::from_secs(5);

/// A player's client behind the gateway, logging what it sends and receives.
struct Player {
    name: String,
    stream: TcpStream,
    buf: BytesMut,
    codec: FrameCodec,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Player {
    async fn connect(
        name: String,
        sidecar: SocketAddr,
        log: &Arc<Mutex<Vec<u8>>>,
    ) -> anyhow::Result<Player> {
        Ok(Player {
            name,
            stream: TcpStream::connect(sidecar).await?,
            buf: BytesMut::new(),
            codec: FrameCodec::server(),
            log: Arc::clone(log),
        })
    }

    fn print(&mut self, arrow: &str, frame: &Frame) -> anyhow::Result<()> {
        let mut out = self.log.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(
            out,
            "{} {arrow} {} (0x{:03X})",
            self.name,
            frame.opcode(),
            frame.opcode().0
        )?;
        if let Some(Ok(decoded)) = decode_frame(frame) {
            for (field, value) in decoded.fields().0 {
                writeln!(out, "      {field} = {value}")?;
            }
        }
        Ok(())
    }

    async fn send<M: Message>(&mut self, message: &M) -> anyhow::Result<()> {
        let frame = Frame::from_message(Origin::Client, message)?;
        self.print("sends   ", &frame)?;
        self.stream.write_all(frame.as_bytes()).await?;
        Ok(())
    }

    async fn receive<M: Message>(&mut self) -> anyhow::Result<M> {
        let frame = tokio::time::timeout(STEP, async {
            loop {
                if let Some(frame) = self.codec.decode(&mut self.buf)? {
                    return anyhow::Ok(frame);
                }
                if self.stream.read_buf(&mut self.buf).await? == 0 {
                    bail!("the sidecar closed the connection");
                }
            }
        })
        .await
        .with_context(|| format!("{} waited too long for {}", self.name, M::OPCODE))??;
        self.print("receives", &frame)?;
        if frame.opcode() != M::OPCODE {
            bail!(
                "{} expected {} but got {}",
                self.name,
                M::OPCODE,
                frame.opcode()
            );
        }
        Ok(M::decode(frame.body())?)
    }
}

/// Runs the demo, printing to `out`; fails if any packet is not the one expected.
pub async fn run(out: &mut impl Write) -> anyhow::Result<()> {
    let world: World = toml::from_str(WORLD)?;
    let store = MemoryStore::from_world(&world);
    let realm = MemoryRealm::new();
    let mut worlds = Vec::new();
    let mut sidecars = Vec::new();
    for (n, id) in IDS.into_iter().enumerate() {
        let model = ModelWorldserver::start(
            store.clone(),
            ModelConfig {
                module: true,
                min_petition_signs: MIN_SIGNS,
                first_item: 1000 * (n as u32 + 1),
                ..ModelConfig::default()
            },
        )
        .await?;
        let config = Config {
            listen: "127.0.0.1:0".parse()?,
            upstream: model.addr().to_string(),
            sidecar_id: id.to_owned(),
            bus_poll_ms: 50,
            shutdown_grace_secs: 0,
            worldserver_module: true,
            min_petition_signs: MIN_SIGNS,
            ..Config::default()
        };
        sidecars.push(Sidecar::in_memory(&config, &store, &realm).await?);
        worlds.push(model);
    }
    writeln!(
        out,
        "tc9-sidecar demo: three worldservers (AzerothCore models with mod-tc9-sidecar), a sidecar in front of each, no database"
    )?;
    for (id, sidecar) in IDS.iter().zip(&sidecars) {
        writeln!(
            out,
            "  sidecar {id} on {} -> worldserver {id}",
            sidecar.addr()
        )?;
    }
    writeln!(
        out,
        "  Anduin plays on A; Velen on A, Jaina and Varian on B, Tyrande on C; a guild charter needs {MIN_SIGNS} signatures"
    )?;
    writeln!(out)?;

    let log = Arc::new(Mutex::new(Vec::new()));
    let result = story(&store, &sidecars, &log).await;
    for sidecar in sidecars {
        sidecar.stop().await?;
    }
    out.write_all(&log.lock().unwrap_or_else(|e| e.into_inner()))?;
    let guild_id = result?;
    let signs: usize = IDS
        .iter()
        .zip(&worlds)
        .map(|(_, w)| w.received(Opcode::CMSG_PETITION_SIGN))
        .sum();
    let members = store.with_tables(|t| {
        t.characters
            .values()
            .filter(|c| c.guild_id == Some(guild_id))
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    });
    writeln!(out)?;
    writeln!(
        out,
        "The guild {GUILD} (id {guild_id}) has {} members: {}.",
        members.len(),
        {
            let mut names = members;
            names.sort();
            names.join(", ")
        }
    )?;
    writeln!(
        out,
        "The sidecars recorded the signatures across worldservers (the worldservers received {signs} CMSG_PETITION_SIGN);"
    )?;
    writeln!(
        out,
        "worldserver A's native turn-in counted them from the database, and C's sidecar answered for the new guild. Demo complete."
    )?;
    Ok(())
}

/// The story, every packet logged; the new guild's id.
async fn story(
    store: &MemoryStore,
    sidecars: &[Sidecar],
    log: &Arc<Mutex<Vec<u8>>>,
) -> anyhow::Result<u32> {
    let name =
        |guid: u32| ["", "Anduin", "Jaina", "Varian", "Tyrande", "Velen"][guid as usize].to_owned();
    let join = |guid: u32, at: usize| {
        let who = format!("{}@{}", name(guid), IDS[at]);
        let addr = sidecars[at].addr();
        let log = Arc::clone(log);
        async move {
            let mut player = Player::connect(who, addr, &log).await?;
            player
                .send(&CmsgPlayerLogin {
                    guid: Guid::player(guid),
                })
                .await?;
            player.receive::<SmsgLoginVerifyWorld>().await?;
            anyhow::Ok(player)
        }
    };
    let mut anduin = join(1, 0).await?;
    let mut signers = Vec::new();
    for (guid, at) in SIGNERS {
        signers.push((guid, join(guid, at).await?));
    }
    // Presence reaches the directory once the logins are forwarded.
    tokio::time::sleep(Duration::from_millis(100)).await;

    anduin
        .send(&CmsgPetitionBuy {
            name: GUILD.to_owned(),
            index: 1,
            ..CmsgPetitionBuy::default()
        })
        .await?;
    let deadline = Instant::now() + STEP;
    let charter = loop {
        if let Some(charter) = store.charter_of(1).await? {
            break charter;
        }
        ensure!(Instant::now() < deadline, "the charter was never bought");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let item = Guid::item(charter.petition_guid);

    for (guid, signer) in &mut signers {
        anduin
            .send(&CmsgOfferPetition {
                unk: 0,
                petition: item,
                target: Guid::player(*guid),
            })
            .await?;
        let shown = signer.receive::<SmsgPetitionShowSignatures>().await?;
        ensure!(
            shown.petition == item,
            "{} was shown {shown:?}",
            signer.name
        );
        signer
            .send(&CmsgPetitionSign {
                petition: item,
                unk: 1,
            })
            .await?;
        for player in [&mut *signer, &mut anduin] {
            let result = player.receive::<SmsgPetitionSignResults>().await?;
            if result.result != sign_result::OK || result.signer != Guid::player(*guid) {
                bail!("unexpected signature result: {result:?}");
            }
        }
    }

    anduin
        .send(&CmsgTurnInPetition {
            petition: item,
            arena_emblem: None,
        })
        .await?;
    let created = anduin.receive::<SmsgGuildCommandResult>().await?;
    ensure!(created.error == GuildCommandError::Success, "{created:?}");
    let turned = anduin.receive::<SmsgTurnInPetitionResults>().await?;
    ensure!(turned.result == turn_in_result::OK, "{turned:?}");

    let guild_id = store
        .with_tables(|t| t.guilds.values().find(|g| g.name == GUILD).map(|g| g.id))
        .context("the guild is in the database")?;
    let tyrande = &mut signers
        .iter_mut()
        .find(|(guid, _)| *guid == 4)
        .context("Tyrande plays on C")?
        .1;
    tyrande.send(&CmsgGuildQuery { guild_id }).await?;
    let answer = tyrande.receive::<SmsgGuildQueryResponse>().await?;
    ensure!(answer.name == GUILD, "{answer:?}");
    Ok(guild_id)
}
