//! Plain mode: the session's identity (account, character, guild) is learnt from the
//! session opcodes and the characters database (`mysql://root@127.0.0.1:3306`), and
//! the charter's per-session state follows it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use tc9_charter::{CharterHandler, CharterSession, Player};
use tc9_codec::{Frame, Opcode, Origin};
use tc9_proxy::{Decision, Handler, SessionEvent, SessionInfo};
use tc9_sidecar::backends::mysql::Db;
use tc9_sidecar::backends::postgres::Bus;
use tc9_sidecar::config::{Config, LinkMode};
use tc9_testkit::db::CHARACTER_COLUMNS;
use tc9_testkit::scripted::*;
use tc9_testkit::{lock, start_sidecar_with, within, MariaDb};

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------
// Plain mode: identity from the session opcodes and the characters database
// ---------------------------------------------------------------------------------

/// What the probe saw of a session: the proxy's identity facts and the charter's
/// character, looked up from the characters DB at login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Identity {
    account_name: Option<String>,
    character_guid: Option<u32>,
    character: Option<Player>,
}

/// Answers `CMSG_PING` itself with `SMSG_PONG` and records what it knows of the
/// session at that moment: a probe the gateway can wait on. Logins and logouts go to
/// the charter it wraps, which looks the character up.
struct IdentityProbe {
    seen: Arc<Mutex<Vec<Identity>>>,
    charter: CharterHandler<Db, Bus>,
}

impl Handler for IdentityProbe {
    type Session = CharterSession;

    fn watched(&self) -> Vec<Opcode> {
        vec![Opcode::CMSG_PING]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        origin == Origin::Client && opcode == Opcode::CMSG_PING
    }

    async fn handle(&self, session: &SessionInfo<CharterSession>, frame: &Frame) -> Decision {
        let facts = session.identity();
        lock(&self.seen).push(Identity {
            account_name: facts.account_name,
            character_guid: facts.character_guid,
            character: session.state().player(),
        });
        let seq = frame.body().get(..4).unwrap_or(&[0; 4]);
        let pong =
            Frame::new(Origin::Server, Opcode::SMSG_PONG, seq).expect("a small server frame");
        Decision::Answer(vec![pong])
    }

    async fn session_event(&self, session: &Arc<SessionInfo<CharterSession>>, event: SessionEvent) {
        self.charter.session_event(session, event).await;
    }
}

/// Sends a probe and returns the identity the handler saw for it.
async fn probe(gw: &mut GatewayEnd, seen: &Mutex<Vec<Identity>>, seq: u32) -> Result<Identity> {
    gw.send(&ping(seq)).await?;
    let answer = gw.expect().await?;
    ensure!(
        answer == pong(seq),
        "expected the probe's answer, got {answer:?}"
    );
    lock(seen)
        .last()
        .cloned()
        .context("the handler recorded nothing")
}

/// Probes until the character looked up in the background is there.
async fn probe_until_character(
    gw: &mut GatewayEnd,
    seen: &Mutex<Vec<Identity>>,
    seq: &mut u32,
) -> Result<Identity> {
    let mut last = Identity::default();
    for _ in 0..100 {
        *seq += 1;
        last = probe(gw, seen, *seq).await?;
        if last.character.is_some() {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the character never appeared; last identity {last:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_looked_up_from_characters_db() -> Result<()> {
    within(
        WHOLE_TEST,
        "identity is looked up from characters db",
        identity_is_looked_up_from_characters_db_body(),
    )
    .await
}

/// The account the test logs in with.
const ACCOUNT: &str = "ALICEACC";

/// What the session knows with the account logged in and no character in the world.
fn account_only() -> Identity {
    Identity {
        account_name: Some(ACCOUNT.to_owned()),
        character_guid: None,
        character: None,
    }
}

async fn identity_is_looked_up_from_characters_db_body() -> Result<()> {
    let db = MariaDb::create("identity").await?;
    let insert = format!(
        "INSERT INTO characters {CHARACTER_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', 0)"
    );
    db.exec(&insert, (42u32, 7u32, "Alice", 1u8, 8u8, 1u8, 80u8, 0u8))
        .await?;
    db.exec(&insert, (43u32, 7u32, "Bob", 2u8, 1u8, 0u8, 12u8, 0u8))
        .await?;
    db.exec(
        "INSERT INTO guild_member (guildid, guid, `rank`, pnote, offnote) VALUES (?, ?, ?, ?, ?)",
        (9u32, 42u32, 0u8, "", ""),
    )
    .await?;

    let (listener, ws_addr) = worldserver_listener().await?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        upstream: ws_addr,
        link_mode: LinkMode::Plain,
        characters_db_url: db.url(),
        shutdown_grace_secs: 2,
        ..Config::default()
    };
    let handler = IdentityProbe {
        seen: Arc::default(),
        charter: CharterHandler::new(Db::new(&db.url())?, None, config.charter_settings()),
    };
    let seen = Arc::clone(&handler.seen);
    let sidecar = start_sidecar_with(config, handler).await?;

    // A plain worldserver: verifies logins, completes logouts, records the rest.
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        let mut received = Vec::new();
        while let Some(packet) = ws.recv().await? {
            let opcode = packet.opcode;
            received.push(packet);
            if opcode == Opcode::CMSG_PLAYER_LOGIN.0 {
                let verify = login_verify_world();
                ws.send(verify.opcode as u16, &verify.body).await?;
            } else if opcode == Opcode::CMSG_LOGOUT_REQUEST.0 {
                ws.send(Opcode::SMSG_LOGOUT_COMPLETE.0 as u16, &[]).await?;
            }
        }
        anyhow::Ok(received)
    });

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    assert_eq!(gw.expect().await?, auth_challenge(), "the plain challenge");
    gw.send(&auth_session(ACCOUNT)).await?;
    let mut seq = 0;

    seq += 1;
    let identity = probe(&mut gw, &seen, seq).await?;
    assert_eq!(
        identity,
        account_only(),
        "after CMSG_AUTH_SESSION: the account only"
    );

    gw.send(&player_login(42)).await?;
    assert_eq!(gw.expect().await?, login_verify_world());
    let identity = probe_until_character(&mut gw, &seen, &mut seq).await?;
    assert_eq!(
        identity,
        Identity {
            account_name: Some(ACCOUNT.to_owned()),
            character_guid: Some(42),
            character: Some(Player {
                guid: 42,
                account: 7,
                name: "Alice".to_owned(),
                race: 1,
                class: 8,
                level: 80,
                guild_id: Some(9),
            }),
        },
        "after SMSG_LOGIN_VERIFY_WORLD: the character with its guild"
    );

    gw.send(&Packet::new(Opcode::CMSG_LOGOUT_REQUEST.0, Vec::new()))
        .await?;
    assert_eq!(
        gw.expect().await?,
        Packet::new(Opcode::SMSG_LOGOUT_COMPLETE.0, Vec::new())
    );
    seq += 1;
    let identity = probe(&mut gw, &seen, seq).await?;
    assert_eq!(
        identity,
        account_only(),
        "after SMSG_LOGOUT_COMPLETE: no character"
    );

    // A second character of the account, in no guild.
    gw.send(&player_login(43)).await?;
    assert_eq!(gw.expect().await?, login_verify_world());
    let identity = probe_until_character(&mut gw, &seen, &mut seq).await?;
    assert_eq!(
        identity.character,
        Some(Player {
            guid: 43,
            account: 7,
            name: "Bob".to_owned(),
            race: 2,
            class: 1,
            level: 12,
            guild_id: None,
        }),
        "the next login's character, without a guild"
    );
    assert_eq!(identity.character_guid, Some(43));

    gw.finish().await?;
    let received = join(worldserver, "worldserver").await?;
    let rest = gw.recv_to_end().await?;
    assert!(
        rest.is_empty(),
        "nothing more reaches the gateway: {rest:?}"
    );
    assert_eq!(
        received,
        vec![
            auth_session(ACCOUNT),
            player_login(42),
            Packet::new(Opcode::CMSG_LOGOUT_REQUEST.0, Vec::new()),
            player_login(43),
        ],
        "the probes are answered by the handler, everything else is forwarded"
    );

    sidecar.stop().await?;
    drop(db);
    Ok(())
}
