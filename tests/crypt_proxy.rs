//! The sidecar in-process between a scripted gateway and a scripted worldserver in
//! `wotlk-crypt` mode, with a real MariaDB behind it (`mysql://root@127.0.0.1:3306`):
//! the sidecar finds the session key in the auth database and keeps its four header
//! keystreams in step while it drops client frames and answers others itself; both
//! peers use `wow_srp`'s independent wrath header crypto, so any desynchronisation
//! shows up as a garbled header.
//!
//! Every test creates its own database and drops it when it ends, passed or failed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use tc9_codec::wire::Guid;
use tc9_codec::Opcode;
use tc9_testkit::scripted::*;
use tc9_testkit::{lock, start_sidecar_with, within, Relay, MARIADB_ADDR};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use wow_srp::wrath_header::ServerCrypto;

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(60);

// Opcodes the scripts use without the sidecar caring about them. Server opcodes are
// 16-bit in the header.
const SMSG_ACCOUNT_DATA_TIMES: u16 = 0x209;
const SMSG_COMPRESSED_UPDATE_OBJECT: u16 = 0x1F6;
const SMSG_TIME_SYNC_REQ: u16 = 0x390;
const CMSG_MESSAGECHAT: u32 = 0x095;

// ---------------------------------------------------------------------------------
// wotlk-crypt with a session key: inject and drop without desynchronising
// ---------------------------------------------------------------------------------

/// What the scripted worldserver sends right after `SMSG_AUTH_RESPONSE`: a small
/// frame, one with the largest small header, two with the large (5-byte) header and
/// an empty one.
fn first_server_burst() -> Vec<Packet> {
    vec![
        Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY),
        pong(0),
        Packet::new(SMSG_ACCOUNT_DATA_TIMES, pattern(1, 41)),
        // size field 0x7FFF: the largest 4-byte header.
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(2, 0x7FFD)),
        // size field 0x8000: the smallest 5-byte header.
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(3, 0x7FFE)),
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(4, 0x9000)),
        Packet::new(SMSG_TIME_SYNC_REQ, Vec::new()),
    ]
}

/// Sent by the worldserver when `CMSG_NAME_QUERY` arrives (so after the first
/// injected answer has been queued toward the gateway).
fn server_reply_to_name_query() -> Vec<Packet> {
    vec![Packet::new(
        Opcode::SMSG_NAME_QUERY_RESPONSE.0,
        pattern(5, 30),
    )]
}

/// Sent by the worldserver when `CMSG_PLAYER_LOGIN` arrives.
fn server_reply_to_login() -> Vec<Packet> {
    vec![
        login_verify_world(),
        Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(6, 0x1_2345)),
        Packet::new(SMSG_TIME_SYNC_REQ, 1u32.to_le_bytes()),
    ]
}

/// Encrypted frames the gateway sends in the same write as its plain
/// `CMSG_AUTH_SESSION`, before the worldserver has answered.
fn pipelined_with_auth() -> Vec<Packet> {
    vec![ping(0), Packet::new(CMSG_MESSAGECHAT, pattern(10, 100))]
}

/// The gateway's first encrypted batch: one frame the sidecar drops and one it
/// answers between frames it forwards.
fn client_batch_one() -> Vec<Packet> {
    vec![
        ping(1),
        petition_show_signatures(500),
        petition_sign(500),
        Packet::new(Opcode::CMSG_NAME_QUERY.0, Guid::player(12).0.to_le_bytes()),
    ]
}

/// The second batch: injections and drops back to back, then the login.
fn client_batch_two() -> Vec<Packet> {
    vec![
        petition_sign(501),
        petition_show_signatures(501),
        petition_show_signatures(502),
        Packet::new(CMSG_MESSAGECHAT, pattern(7, 8000)),
        petition_sign(502),
        ping(2),
        player_login(42),
    ]
}

fn is_intercepted(packet: &Packet) -> bool {
    packet.opcode == Opcode::CMSG_PETITION_SIGN.0
        || packet.opcode == Opcode::CMSG_PETITION_SHOW_SIGNATURES.0
}

/// The scripted stock worldserver of the crypt test; returns the client packets it
/// received after `CMSG_AUTH_SESSION`.
async fn crypt_worldserver(
    listener: TcpListener,
    mut crypto: Option<ServerCrypto>,
) -> Result<Vec<Packet>> {
    let mut ws = accept(&listener).await?;
    let challenge = auth_challenge();
    ws.send(challenge.opcode as u16, &challenge.body).await?;
    let auth = ws.expect().await?;
    ensure!(
        auth == auth_session(CRYPT_ACCOUNT),
        "worldserver: expected the plain CMSG_AUTH_SESSION, got {auth:?}"
    );
    ws.crypto = crypto.take();
    for packet in first_server_burst() {
        ws.send(packet.opcode as u16, &packet.body).await?;
    }
    let mut received = Vec::new();
    while let Some(packet) = ws.recv().await? {
        let replies = match packet.opcode {
            op if op == Opcode::CMSG_NAME_QUERY.0 => server_reply_to_name_query(),
            op if op == Opcode::CMSG_PLAYER_LOGIN.0 => server_reply_to_login(),
            _ => Vec::new(),
        };
        received.push(packet);
        for reply in replies {
            ws.send(reply.opcode as u16, &reply.body).await?;
        }
    }
    Ok(received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crypt_session_with_inject_and_drop() -> Result<()> {
    within(
        WHOLE_TEST,
        "crypt session with inject and drop",
        crypt_session_with_inject_and_drop_body(0),
    )
    .await
}

/// The auth database drops the sidecar's first two connections (a restart at the
/// moment of the login): the key lookup is retried and the session still runs
/// encrypted, with its charters intercepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_key_lookups_are_retried() -> Result<()> {
    within(
        WHOLE_TEST,
        "crypt session with inject and drop",
        crypt_session_with_inject_and_drop_body(2),
    )
    .await
}

/// A relay to MariaDB that closes its first `refused` connections at once and forwards
/// One encrypted session with injected answers and dropped frames; the auth database
/// is reached through a relay that refuses its first `refused` connections.
async fn crypt_session_with_inject_and_drop_body(refused: u32) -> Result<()> {
    let (db, client_crypto, server_crypto) = keyed_account("inject", CRYPT_ACCOUNT, 3).await?;

    let (listener, ws_addr) = worldserver_listener().await?;
    let handler = CharterStub::default();
    let handled = Arc::clone(&handler.handled);
    let mut config = crypt_config(&db, ws_addr);
    let relay = Relay::start(MARIADB_ADDR).await?;
    relay.refuse_next(refused);
    config.auth_db_url = format!("mysql://root@{}/{}", relay.addr, db.name);
    let sidecar = start_sidecar_with(config, handler).await?;
    let worldserver = tokio::spawn(crypt_worldserver(listener, Some(server_crypto)));

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    let challenge = gw.expect().await?;
    assert_eq!(challenge, auth_challenge(), "the plain challenge");
    gw.send_auth(CRYPT_ACCOUNT, client_crypto, &pipelined_with_auth())
        .await?;

    let burst = first_server_burst();
    let got = gw.expect_n(burst.len()).await?;
    assert_eq!(got, burst, "the encrypted server frames after the auth");

    gw.send_all(&client_batch_one()).await?;
    let mut expected = vec![sign_results(500)];
    expected.extend(server_reply_to_name_query());
    let got = gw.expect_n(expected.len()).await?;
    assert_eq!(
        got, expected,
        "the injected answer, then the worldserver's reply to the frame after it"
    );

    gw.send_all(&client_batch_two()).await?;
    let mut expected = vec![sign_results(501), sign_results(502)];
    expected.extend(server_reply_to_login());
    let got = gw.expect_n(expected.len()).await?;
    assert_eq!(
        got, expected,
        "both injected answers, then the worldserver's reply to the login"
    );

    gw.finish().await?;
    let to_worldserver = join(worldserver, "worldserver").await?;
    let rest = gw.recv_to_end().await?;
    assert!(
        rest.is_empty(),
        "nothing more reaches the gateway: {rest:?}"
    );

    let sent: Vec<Packet> = pipelined_with_auth()
        .into_iter()
        .chain(client_batch_one())
        .chain(client_batch_two())
        .collect();
    let forwarded: Vec<Packet> = sent
        .iter()
        .filter(|p| !is_intercepted(p))
        .cloned()
        .collect();
    assert_eq!(
        to_worldserver, forwarded,
        "the worldserver decrypts exactly the frames that were neither dropped nor answered"
    );
    let intercepted: Vec<Packet> = sent.into_iter().filter(is_intercepted).collect();
    assert_eq!(
        *lock(&handled),
        intercepted,
        "the handler saw every intercepted frame, decrypted, in order"
    );
    assert!(
        relay.accepted() > u64::from(refused),
        "the key came through the relay after {refused} refused connections"
    );

    sidecar.stop().await?;
    drop(db);
    Ok(())
}

// ---------------------------------------------------------------------------------
// An answer injected before the worldserver's first encrypted frame
// ---------------------------------------------------------------------------------

/// A gateway that does not wait for `SMSG_AUTH_RESPONSE` before sending an
/// intercepted opcode: the sidecar's answer must already be encrypted, because the
/// gateway decrypts every server header after its `CMSG_AUTH_SESSION`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_before_first_server_frame_is_encrypted() -> Result<()> {
    within(
        WHOLE_TEST,
        "answer before first server frame is encrypted",
        answer_before_first_server_frame_is_encrypted_body(),
    )
    .await
}

async fn answer_before_first_server_frame_is_encrypted_body() -> Result<()> {
    let (db, client_crypto, server_crypto) = keyed_account("early", CRYPT_ACCOUNT, 5).await?;
    let (listener, ws_addr) = worldserver_listener().await?;
    let sidecar = start_sidecar_with(crypt_config(&db, ws_addr), CharterStub::default()).await?;
    let (answered, answer_seen) = oneshot::channel::<()>();
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        ws.expect().await?;
        ws.crypto = Some(server_crypto);
        // Only once the gateway has its injected answer (or gave up).
        let _ = answer_seen.await;
        ws.send(Opcode::SMSG_AUTH_RESPONSE.0 as u16, &AUTH_OK_BODY)
            .await?;
        let mut received = Vec::new();
        while let Some(packet) = ws.recv().await? {
            received.push(packet);
        }
        anyhow::Ok(received)
    });

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    assert_eq!(gw.expect().await?, auth_challenge());
    gw.send_auth(CRYPT_ACCOUNT, client_crypto, &[petition_sign(700), ping(1)])
        .await?;
    let first = gw.expect().await;
    drop(answered);
    assert_eq!(first?, sign_results(700), "the injected answer, encrypted");
    assert_eq!(
        gw.expect().await?,
        Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY)
    );
    gw.finish().await?;
    assert_eq!(join(worldserver, "worldserver").await?, vec![ping(1)]);
    sidecar.stop().await?;
    drop(db);
    Ok(())
}
