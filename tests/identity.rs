//! Identity is what the worldserver confirmed: a session's character is the one whose
//! `CMSG_PLAYER_LOGIN` the worldserver answered with `SMSG_LOGIN_VERIFY_WORLD`, and
//! a later login within the session never switches it. Presence belongs to the
//! session that announced it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bytes::BytesMut;
use tc9_codec::messages::{CmsgPlayerLogin, SmsgLoginVerifyWorld};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, FrameCodec, Message, Opcode, Origin};
use tc9_proxy::{Decision, Handler, SessionInfo};
use tc9_sidecar::config::Config;
use tc9_testkit::db::located;
use tc9_testkit::{
    client, client_frame, lock, read_frame, server, start_sidecar, start_sidecar_with, test_config,
    Gateway, MariaDb, PgDb, World, STEP,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::Decoder;

/// `SMSG_CHARACTER_LOGIN_FAILED`.
const LOGIN_FAILED: Opcode = Opcode(0x041);
/// The character the worldserver refuses.
const REFUSED: u32 = 99;

/// Answers `CMSG_PING` with `SMSG_PONG` and records the session's character then.
#[derive(Default, Clone)]
struct Probe {
    seen: Arc<Mutex<Vec<Option<u32>>>>,
}

impl Handler for Probe {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        vec![Opcode::CMSG_PING]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        origin == Origin::Client && opcode == Opcode::CMSG_PING
    }

    async fn handle(&self, session: &SessionInfo, frame: &Frame) -> Decision {
        lock(&self.seen).push(session.identity().character_guid);
        Decision::Answer(vec![server(Opcode::SMSG_PONG, frame.body())])
    }
}

/// A worldserver that refuses character [`REFUSED`] and lets every other login in.
async fn worldserver() -> Result<std::net::SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut codec = FrameCodec::client();
                let mut buf = BytesMut::new();
                loop {
                    while let Ok(Some(frame)) = codec.decode(&mut buf) {
                        let Ok(login) = CmsgPlayerLogin::decode(frame.body()) else {
                            continue;
                        };
                        let reply = if login.guid.low() == REFUSED {
                            server(LOGIN_FAILED, &[0])
                        } else {
                            Frame::from_message(Origin::Server, &SmsgLoginVerifyWorld::default())
                                .expect("a frame")
                        };
                        if frame.opcode() == Opcode::CMSG_PLAYER_LOGIN
                            && stream.write_all(reply.as_bytes()).await.is_err()
                        {
                            return;
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

fn login(guid: u32) -> Frame {
    client_frame(&CmsgPlayerLogin {
        guid: Guid::player(guid),
    })
}

/// Sends `frames` in one write, then a ping; the character the probe saw for it.
async fn character_seen(
    gw: &mut TcpStream,
    seen: &Probe,
    frames: &[Frame],
    seq: u8,
) -> Result<Option<u32>> {
    let ping = client(Opcode::CMSG_PING, &[seq, 0, 0, 0]);
    let bytes: Vec<u8> = frames
        .iter()
        .chain([&ping])
        .flat_map(|f| f.as_bytes().to_vec())
        .collect();
    gw.write_all(&bytes).await?;
    loop {
        let frame = timeout(STEP, read_frame(gw, Origin::Server))
            .await
            .context("no answer")??
            .context("closed")?;
        if frame.opcode() == Opcode::SMSG_PONG && frame.body() == [seq, 0, 0, 0] {
            break;
        }
    }
    Ok(*lock(&seen.seen).last().context("the probe saw nothing")?)
}

/// Waits for the worldserver's answer to a login.
async fn answered(gw: &mut TcpStream, opcode: Opcode) -> Result<()> {
    loop {
        let frame = timeout(STEP, read_frame(gw, Origin::Server))
            .await
            .context("no answer")??
            .context("closed")?;
        if frame.opcode() == opcode {
            return Ok(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worldserver_confirms_the_identity() -> Result<()> {
    let probe = Probe::default();
    let sidecar = start_sidecar_with(test_config("A", worldserver().await?), probe.clone()).await?;
    let mut gw = TcpStream::connect(sidecar.addr()).await?;

    // A login the worldserver refuses binds nothing.
    gw.write_all(login(REFUSED).as_bytes()).await?;
    answered(&mut gw, LOGIN_FAILED).await?;
    ensure!(
        character_seen(&mut gw, &probe, &[], 1).await?.is_none(),
        "a refused login binds nothing"
    );

    // A frame sent with the login, before the worldserver answered: no character yet.
    ensure!(
        character_seen(&mut gw, &probe, &[login(2)], 2)
            .await?
            .is_none(),
        "nothing is bound before SMSG_LOGIN_VERIFY_WORLD"
    );
    answered(&mut gw, Opcode::SMSG_LOGIN_VERIFY_WORLD).await?;
    ensure!(character_seen(&mut gw, &probe, &[], 3).await? == Some(2));

    // A second login within the session does not switch it.
    ensure!(
        character_seen(&mut gw, &probe, &[login(5)], 4).await? == Some(2),
        "a later CMSG_PLAYER_LOGIN is not an identity"
    );
    answered(&mut gw, Opcode::SMSG_LOGIN_VERIFY_WORLD).await?;
    ensure!(character_seen(&mut gw, &probe, &[], 5).await? == Some(2));

    // Two logins in one write: the first is the one answered.
    let mut other = TcpStream::connect(sidecar.addr()).await?;
    let both: Vec<u8> = [login(2), login(5)]
        .iter()
        .flat_map(|f| f.as_bytes().to_vec())
        .collect();
    other.write_all(&both).await?;
    answered(&mut other, Opcode::SMSG_LOGIN_VERIFY_WORLD).await?;
    answered(&mut other, Opcode::SMSG_LOGIN_VERIFY_WORLD).await?;
    ensure!(character_seen(&mut other, &probe, &[], 6).await? == Some(2));
    sidecar.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_belongs_to_the_session_that_claimed_it() -> Result<()> {
    let db = MariaDb::create("presence").await?;
    let pg = PgDb::create("presence").await?;
    db.character(7, 7, "Twice", 1).await?;
    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        characters_db_url: db.url(),
        bus_url: pg.url(),
        ..test_config("A", world.addr)
    })
    .await?;
    let observer = pg.client().await?;
    let first = Gateway::logged_in(sidecar.addr(), "first", 7).await?;
    let mut second = Gateway::logged_in(sidecar.addr(), "second", 7).await?;
    tc9_testkit::db::wait_located(&observer, 7, "A").await?;
    // The first session of the character ends; the newer one still plays.
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.fence().await?;
    ensure!(
        located(&observer, 7).await?.as_deref() == Some("A"),
        "the live session's presence stays"
    );
    drop(second);
    tc9_testkit::eventually("the last session's end withdraws it", STEP, || {
        let observer = &observer;
        async move { Ok(located(observer, 7).await?.is_none().then_some(())) }
    })
    .await?;
    sidecar.stop().await
}
