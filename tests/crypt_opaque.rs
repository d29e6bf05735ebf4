//! `wotlk-crypt` mode without a usable session key: the session after
//! `CMSG_AUTH_SESSION` is copied byte for byte and the handler is never asked. A
//! scripted gateway and worldserver, a real MariaDB (`mysql://root@127.0.0.1:3306`)
//! that has no key for the account.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use tc9_codec::Opcode;
use tc9_testkit::scripted::*;
use tc9_testkit::{lock, start_sidecar_with, within, MariaDb};
use tokio::net::TcpListener;

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(60);

// Opcodes the scripts use without the sidecar caring about them. Server opcodes are
// 16-bit in the header.
const SMSG_COMPRESSED_UPDATE_OBJECT: u16 = 0x1F6;
const CMSG_MESSAGECHAT: u32 = 0x095;

// ---------------------------------------------------------------------------------
// wotlk-crypt without a session key: opaque copy
// ---------------------------------------------------------------------------------

/// One session through a sidecar that cannot find `account`'s session key: both peers
/// encrypt with a key of their own and the sidecar copies the bytes.
async fn opaque_session(
    sidecar_addr: SocketAddr,
    listener: Arc<TcpListener>,
    account: &str,
) -> Result<()> {
    let (client_crypto, server_crypto) = crypto_pair(account, session_key(99));
    let account_owned = account.to_owned();
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        let auth = ws.expect().await?;
        ensure!(
            auth == auth_session(&account_owned),
            "worldserver: expected the plain CMSG_AUTH_SESSION, got {auth:?}"
        );
        ws.crypto = Some(server_crypto);
        ws.send(Opcode::SMSG_AUTH_RESPONSE.0 as u16, &AUTH_OK_BODY)
            .await?;
        ws.send(SMSG_COMPRESSED_UPDATE_OBJECT, &pattern(8, 0x9000))
            .await?;
        let mut received = Vec::new();
        while let Some(packet) = ws.recv().await? {
            let login = packet.opcode == Opcode::CMSG_PLAYER_LOGIN.0;
            received.push(packet);
            if login {
                let verify = login_verify_world();
                ws.send(verify.opcode as u16, &verify.body).await?;
            }
        }
        anyhow::Ok((received, ws.received, ws.sent))
    });

    let mut gw = GatewayEnd::connect(sidecar_addr).await?;
    assert_eq!(gw.expect().await?, auth_challenge(), "the plain challenge");
    // Encrypted frames right behind the plain auth: the sidecar must copy the bytes it
    // has already buffered too.
    let pipelined = vec![ping(0), petition_sign(599)];
    gw.send_auth(account, client_crypto, &pipelined).await?;
    let got = gw.expect_n(2).await?;
    assert_eq!(
        got,
        vec![
            Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY),
            Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(8, 0x9000)),
        ],
        "{account}: the worldserver's encrypted frames arrive intact"
    );
    let client_frames = vec![
        ping(1),
        petition_sign(600),
        petition_show_signatures(600),
        Packet::new(CMSG_MESSAGECHAT, pattern(9, 3000)),
        player_login(42),
    ];
    gw.send_all(&client_frames).await?;
    assert_eq!(
        gw.expect().await?,
        login_verify_world(),
        "{account}: no injected answer, only the worldserver's reply"
    );
    gw.finish().await?;
    let (received, ws_received, ws_sent) = join(worldserver, "worldserver").await?;
    let rest = gw.recv_to_end().await?;
    assert!(
        rest.is_empty(),
        "{account}: nothing more reaches the gateway: {rest:?}"
    );
    let all_frames: Vec<Packet> = pipelined.into_iter().chain(client_frames).collect();
    assert_eq!(
        received, all_frames,
        "{account}: intercepted opcodes reach the worldserver unchanged"
    );
    assert!(
        ws_received == gw.sent,
        "{account}: the worldserver receives the gateway's bytes unchanged \
         ({} bytes sent, {} received)",
        gw.sent.len(),
        ws_received.len()
    );
    assert!(
        gw.received == ws_sent,
        "{account}: the gateway receives the worldserver's bytes unchanged \
         ({} bytes sent, {} received)",
        ws_sent.len(),
        gw.received.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_session_key_falls_back_to_opaque() -> Result<()> {
    within(
        WHOLE_TEST,
        "missing session key falls back to opaque",
        missing_session_key_falls_back_to_opaque_body(),
    )
    .await
}

async fn missing_session_key_falls_back_to_opaque_body() -> Result<()> {
    let db = MariaDb::create("opaque").await?;
    // An account without a key; the other account of the test has no row at all.
    db.account(2, "NOKEY", None).await?;
    let (listener, ws_addr) = worldserver_listener().await?;
    let listener = Arc::new(listener);
    let handler = CharterStub::default();
    let handled = Arc::clone(&handler.handled);
    let sidecar = start_sidecar_with(crypt_config(&db, ws_addr), handler).await?;

    opaque_session(sidecar.addr(), Arc::clone(&listener), "NOKEY").await?;
    opaque_session(sidecar.addr(), listener, "GHOST").await?;

    assert!(
        lock(&handled).is_empty(),
        "the handler is never asked in an opaque session: {:?}",
        lock(&handled)
    );
    sidecar.stop().await?;
    drop(db);
    Ok(())
}
