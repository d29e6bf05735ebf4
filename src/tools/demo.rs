//! `tc9-sidecar demo`: a realm of two worldservers in one process, with no database.
//!
//! Two sidecars with in-memory backends sit in front of two scripted worldservers. A
//! player on worldserver A offers a guild charter to a player on worldserver B, who
//! signs it; every packet a player sends or receives is printed decoded.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use tc9_codec::messages::petition::sign_result;
use tc9_codec::messages::{
    CmsgOfferPetition, CmsgPetitionSign, CmsgPlayerLogin, SmsgLoginVerifyWorld,
    SmsgPetitionShowSignatures, SmsgPetitionSignResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{decode_frame, Frame, FrameCodec, Message, Opcode, Origin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;

use crate::app::Sidecar;
use crate::backends::memory::{MemoryRealm, MemoryStore, World};
use crate::config::Config;

/// The demo's world: two Alliance players and a charter bought on worldserver A.
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

[[petition]]
guid = 500
owner = 1
name = "Silver Hand"
"#;

/// How long any step may take.
const STEP: Duration = Duration::from_secs(5);

/// Opcodes a scripted worldserver received.
type Seen = Arc<Mutex<Vec<Opcode>>>;

/// A worldserver that logs characters in, records what it receives and otherwise
/// listens.
async fn worldserver(seen: Seen) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut codec = FrameCodec::client();
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(frame)) = codec.decode(&mut buf) {
                        seen.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(frame.opcode());
                        if frame.opcode() == Opcode::CMSG_PLAYER_LOGIN {
                            let Ok(welcome) = Frame::from_message(
                                Origin::Server,
                                &SmsgLoginVerifyWorld::default(),
                            ) else {
                                return;
                            };
                            if stream.write_all(welcome.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                    match stream.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// A player's client behind the gateway, logging what it sends and receives.
struct Player {
    name: &'static str,
    stream: TcpStream,
    buf: BytesMut,
    codec: FrameCodec,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Player {
    async fn connect(
        name: &'static str,
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
    let seen = Seen::default();
    let mut running = Vec::new();
    for id in ["A", "B"] {
        let config = Config {
            listen: "127.0.0.1:0".parse()?,
            upstream: worldserver(Arc::clone(&seen)).await?.to_string(),
            sidecar_id: id.to_owned(),
            bus_poll_ms: 50,
            shutdown_grace_secs: 0,
            worldserver_module: true,
            ..Config::default()
        };
        running.push(Sidecar::in_memory(&config, &store, &realm).await?);
    }
    let sidecars: Vec<_> = running.iter().map(Sidecar::addr).collect();
    writeln!(
        out,
        "tc9-sidecar demo: two worldservers, a sidecar in front of each, no database"
    )?;
    writeln!(out, "  sidecar A on {} -> worldserver A", sidecars[0])?;
    writeln!(out, "  sidecar B on {} -> worldserver B", sidecars[1])?;
    writeln!(
        out,
        "  Anduin plays on A and owns the guild charter \"Silver Hand\"; Jaina plays on B"
    )?;
    writeln!(out)?;

    let log = Arc::new(Mutex::new(Vec::new()));
    let result = async {
        let mut anduin = Player::connect("Anduin@A", sidecars[0], &log).await?;
        let mut jaina = Player::connect("Jaina@B", sidecars[1], &log).await?;
        for (player, guid) in [(&mut anduin, 1), (&mut jaina, 2)] {
            player
                .send(&CmsgPlayerLogin {
                    guid: Guid::player(guid),
                })
                .await?;
            player.receive::<SmsgLoginVerifyWorld>().await?;
        }
        // Presence reaches the directory once the login is forwarded.
        tokio::time::sleep(Duration::from_millis(100)).await;

        anduin
            .send(&CmsgOfferPetition {
                unk: 0,
                petition: Guid::item(500),
                target: Guid::player(2),
            })
            .await?;
        let shown = jaina.receive::<SmsgPetitionShowSignatures>().await?;
        if shown.owner != Guid::player(1) || shown.petition != Guid::item(500) {
            bail!("Jaina was shown the wrong charter: {shown:?}");
        }

        jaina
            .send(&CmsgPetitionSign {
                petition: Guid::item(500),
                unk: 1,
            })
            .await?;
        let signer_sees = jaina.receive::<SmsgPetitionSignResults>().await?;
        let owner_sees = anduin.receive::<SmsgPetitionSignResults>().await?;
        for seen in [signer_sees, owner_sees] {
            if seen.result != sign_result::OK || seen.signer != Guid::player(2) {
                bail!("unexpected signature result: {seen:?}");
            }
        }
        let resolved = [Opcode::CMSG_OFFER_PETITION, Opcode::CMSG_PETITION_SIGN];
        let leaked: Vec<Opcode> = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .filter(|op| resolved.contains(op))
            .collect();
        if !leaked.is_empty() {
            bail!("a worldserver received {leaked:?}, which the sidecars should resolve");
        }
        anyhow::Ok(store.signatures_now(500))
    }
    .await;
    for sidecar in running {
        sidecar.stop().await?;
    }
    out.write_all(&log.lock().unwrap_or_else(|e| e.into_inner()))?;
    let rows = result?;
    writeln!(out)?;
    writeln!(
        out,
        "The charter now has {} signature(s): {}. The worldservers never saw the offer or the signature;",
        rows.len(),
        rows.iter()
            .map(|s| format!("player {} (account {})", s.player_guid, s.account))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "the sidecars resolved them across worldservers. Demo complete."
    )?;
    Ok(())
}
