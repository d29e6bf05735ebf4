//! A sidecar restart loses no event: those published while it was down are delivered
//! once by the next one.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_sidecar_restart() -> Result<()> {
    within(WHOLE_TEST, "restart", restart()).await
}

async fn restart() -> Result<()> {
    const CHARTER: u32 = 700;
    const OFFERS: usize = 3;
    let realm = Realm::create("restart").await?;
    // B's sessions outlive its outbox consumer for the grace period.
    let Pair {
        a,
        b,
        mut owner,
        mut target,
    } = realm.pair(CHARTER, "Phoenix", 4).await?;
    realm.mysql.signature(1, CHARTER, 20, 20).await?;

    // B goes down: its consumer and heartbeat stop at once, its sessions soon after.
    b.begin_stop();
    // Let a drain that was under way when the token fired finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        bus(&a)?.locate(2).await?.as_deref() == Some("B"),
        "B's presence must still be fresh for this test"
    );
    for _ in 0..OFFERS {
        owner.send(&offer(CHARTER, 2)).await?;
    }
    assert!(owner.fence().await?.is_empty());
    realm
        .world_a
        .assert_never_saw(&[Opcode::CMSG_OFFER_PETITION], "worldserver A")?;
    let waiting = realm.mysql.notices().await?;
    assert_eq!(
        waiting,
        vec![(2, false); OFFERS],
        "the offers wait for character 2"
    );

    // The old B delivered nothing; its sessions end with the grace period.
    b.stopped().await?;
    let mut late = Vec::new();
    loop {
        match target.read(STEP).await {
            Ok(Some(frame)) => late.push(frame),
            Ok(None) => bail!("the old B kept the session open"),
            Err(_) => break,
        }
    }
    assert!(late.is_empty(), "the stopped B delivered {late:?}");
    drop(target);

    // A new B with the same id and worldserver; the target logs in again.
    let b = realm.sidecar("B", 1).await?;
    let mut target = Gateway::logged_in(b.addr(), "target 2 @new B", 2).await?;
    let expected = server_frame(&SmsgPetitionShowSignatures {
        petition: Guid::item(CHARTER),
        owner: Guid::player(1),
        petition_id: CHARTER,
        signatures: vec![PetitionSignature {
            player: Guid::player(20),
            unk: 0,
        }],
    });
    for n in 1..=OFFERS {
        let (_, frame) = target
            .expect_framed::<SmsgPetitionShowSignatures>(&format!("pending offer {n}"))
            .await?;
        assert_eq!(frame.as_bytes(), expected.as_bytes(), "offer {n}");
    }
    // Exactly once: nothing more over several poll periods.
    if let Some(frame) = target.recv(Duration::from_secs(1)).await? {
        bail!("a pending event was delivered twice: {frame:?}");
    }
    assert!(target.fence().await?.is_empty());
    if target.before_login > 0 {
        eprintln!(
            "note: {} pending event(s) reached the gateway before its SMSG_LOGIN_VERIFY_WORLD",
            target.before_login
        );
    }
    assert_eq!(
        realm.mysql.notices().await?,
        vec![(2, true); OFFERS],
        "only the offers were recorded, each marked delivered"
    );

    drop((owner, target));
    a.stop().await?;
    b.stop().await?;
    Ok(())
}
