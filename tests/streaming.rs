//! Large frames the sidecar does not watch stream through, plain and `wotlk-crypt`:
//! their bytes go on as they arrive, the header cipher still applied once per frame.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tc9_codec::Opcode;
use tc9_sidecar::config::LinkMode;
use tc9_testkit::scripted::*;
use tc9_testkit::{start_sidecar_with, within, STEP};
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio::time::timeout;

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(60);

/// `SMSG_PONG`.
const SMSG_PONG: u16 = 0x1DD;
/// `SMSG_COMPRESSED_UPDATE_OBJECT`.
const SMSG_COMPRESSED_UPDATE_OBJECT: u16 = 0x1F6;

// ---------------------------------------------------------------------------------
// Large frames stream through
// ---------------------------------------------------------------------------------

/// A 40 KiB server frame nobody watches goes on as it arrives: all but its last KiB
/// reaches the gateway before the worldserver sends that KiB, and in `wotlk-crypt`
/// mode the frames after it still decrypt (the header cipher applied per frame).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_stream_through() -> Result<()> {
    plain_and_crypt(false).await
}

/// An answer the sidecar decides while a large frame is passing through to the
/// gateway is written after that frame's last byte, never inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_waits_for_the_frame_passing_through() -> Result<()> {
    plain_and_crypt(true).await
}

/// [`large_frame_streamed_body`] in `plain` mode, then in `wotlk-crypt` mode.
async fn plain_and_crypt(answer_mid_frame: bool) -> Result<()> {
    for crypt in [false, true] {
        within(
            WHOLE_TEST,
            "large frame streamed",
            large_frame_streamed_body(crypt, answer_mid_frame),
        )
        .await?;
    }
    Ok(())
}

/// The large frame streamed; with `answer_mid_frame`, the gateway sends a frame the
/// sidecar answers while the frame's last KiB is still held back.
async fn large_frame_streamed_body(crypt: bool, answer_mid_frame: bool) -> Result<()> {
    const HELD: usize = 1024;
    let (db, client_crypto, server_crypto) = keyed_account("stream", CRYPT_ACCOUNT, 6).await?;
    let (listener, ws_addr) = worldserver_listener().await?;
    let mut config = crypt_config(&db, ws_addr);
    if !crypt {
        config.link_mode = LinkMode::Plain;
    }
    let stub = CharterStub::default();
    let handled = stub.handled.clone();
    let sidecar = start_sidecar_with(config, stub).await?;
    let large = Packet::new(SMSG_COMPRESSED_UPDATE_OBJECT, pattern(11, 40 * 1024));
    let (seen, start_seen) = oneshot::channel::<()>();
    let sent = large.clone();
    let worldserver = tokio::spawn(async move {
        let mut ws = accept(&listener).await?;
        let challenge = auth_challenge();
        ws.send(challenge.opcode as u16, &challenge.body).await?;
        ws.expect().await?;
        if crypt {
            ws.crypto = Some(server_crypto);
        }
        ws.send(Opcode::SMSG_AUTH_RESPONSE.0 as u16, &AUTH_OK_BODY)
            .await?;
        ws.send_split(sent.opcode as u16, &sent.body, HELD, start_seen)
            .await?;
        ws.send(SMSG_PONG, &7u32.to_le_bytes()).await?;
        while ws.recv().await?.is_some() {}
        anyhow::Ok(())
    });

    let mut gw = GatewayEnd::connect(sidecar.addr()).await?;
    assert_eq!(gw.expect().await?, auth_challenge());
    if crypt {
        gw.send_auth(CRYPT_ACCOUNT, client_crypto, &[]).await?;
    } else {
        let auth = gw.encode(&auth_session(CRYPT_ACCOUNT))?;
        timeout(STEP, gw.stream.write_all(&auth)).await??;
    }
    assert_eq!(
        gw.expect().await?,
        Packet::new(Opcode::SMSG_AUTH_RESPONSE.0, AUTH_OK_BODY)
    );
    // The 5-byte large header and the body, but for the bytes still held back.
    let before_held = 5 + large.body.len() - HELD;
    let mut peeked = vec![0u8; before_held];
    let arrived = timeout(STEP, async {
        loop {
            if gw.stream.peek(&mut peeked).await? >= before_held {
                return anyhow::Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    let streamed = arrived.is_ok();
    let sign = petition_sign(42);
    if streamed && answer_mid_frame {
        gw.send(&sign).await?;
        timeout(STEP, async {
            while handled.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .context("the sign was not handled")?;
        // Time for the answer to reach the server side's inbox, and to be written
        // if it were not held.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = seen.send(());
    ensure!(
        streamed,
        "crypt {crypt}: the frame's first {before_held} bytes did not arrive before its last {HELD}"
    );
    assert_eq!(gw.expect().await?, large, "crypt {crypt}: the whole frame");
    let mut after = vec![gw.expect().await?];
    let mut expected = vec![pong(7)];
    if answer_mid_frame {
        // The answer and the worldserver's next frame race; both come after it.
        after.push(gw.expect().await?);
        expected.push(Packet::new(
            Opcode::SMSG_PETITION_SIGN_RESULTS.0,
            sign_results_body(&sign.body),
        ));
        after.sort_by_key(|p| p.opcode);
        expected.sort_by_key(|p| p.opcode);
    }
    assert_eq!(after, expected, "crypt {crypt}: the frames after it");
    gw.finish().await?;
    join(worldserver, "worldserver").await?;
    sidecar.stop().await?;
    drop(db);
    Ok(())
}
