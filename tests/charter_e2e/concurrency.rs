//! Concurrent signers behind both sidecars never exceed the charter's nine signatures.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signers_never_exceed_nine() -> Result<()> {
    within(WHOLE_TEST, "concurrent signers", concurrent_signers()).await
}

/// The account of signer `guid` (100..=119): its own, except three pairs that share
/// one (one pair behind each sidecar, one split across them).
fn signer_account(guid: u32) -> u32 {
    match guid {
        101 => 1100,
        111 => 1110,
        115 => 1105,
        _ => 1000 + guid,
    }
}

/// A signer's character, its gateway, and the frames it was answered.
type SignerOutcome = (u32, Gateway, Vec<Frame>);

async fn concurrent_signers() -> Result<()> {
    const ROUNDS: u32 = 3;
    let realm = Realm::create("race").await?;
    let db = &realm.mysql;
    let signers: Vec<u32> = (100..120).collect();
    for &guid in &signers {
        db.character(guid, signer_account(guid), &format!("Signer{guid}"), 1)
            .await?;
    }
    for round in 1..=ROUNDS {
        let owner = 200 + round;
        let charter = 600 + round;
        db.character(owner, 2000 + round, &format!("Owner{round}"), 1)
            .await?;
        db.petition(owner, charter, charter, &format!("Race {round}"))
            .await?;
        for i in 0..6 {
            let player = 900 + round * 10 + i;
            db.signature(owner, charter, player, 9000 + player).await?;
        }
    }

    let a = realm.sidecar("A", 1).await?;
    let b = realm.sidecar("B", 1).await?;
    let mut gateways = Vec::new();
    for &guid in &signers {
        let (sidecar, name) = if guid < 110 { (&a, "A") } else { (&b, "B") };
        let gateway =
            Gateway::logged_in(sidecar.addr(), &format!("signer {guid} @{name}"), guid).await?;
        gateways.push((guid, gateway));
    }
    for &guid in &signers {
        realm
            .wait_located(guid, if guid < 110 { "A" } else { "B" })
            .await?;
    }

    for round in 1..=ROUNDS {
        let charter = 600 + round;
        let barrier = Arc::new(Barrier::new(gateways.len()));
        let tasks: Vec<JoinHandle<Result<SignerOutcome>>> = gateways
            .drain(..)
            .map(|(guid, mut gateway)| {
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    gateway.send(&sign(charter)).await?;
                    // Answers come at once; refusals of a full charter never come.
                    let mut answers = Vec::new();
                    while let Some(frame) = gateway.recv(Duration::from_secs(2)).await? {
                        answers.push(frame);
                    }
                    answers.extend(gateway.fence().await?);
                    Ok((guid, gateway, answers))
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            let (guid, gateway, answers) = task.await.context("a signer panicked")??;
            ensure!(answers.len() <= 1, "signer {guid}: {answers:?}");
            for frame in &answers {
                ensure!(
                    frame.opcode() == Opcode::SMSG_PETITION_SIGN_RESULTS,
                    "signer {guid}: unexpected {frame:?}"
                );
                let result = SmsgPetitionSignResults::decode(frame.body())?;
                assert_eq!(result.petition, Guid::item(charter));
                assert_eq!(result.signer, Guid::player(guid));
                match result.result {
                    sign_result::OK => ok += 1,
                    sign_result::ALREADY_SIGNED => {}
                    other => bail!("signer {guid}: result {other}"),
                }
            }
            gateways.push((guid, gateway));
        }
        let rows = db.signatures(charter).await?;
        assert_eq!(rows.len(), 9, "round {round}: exactly 9 rows: {rows:?}");
        let accounts: HashSet<u32> = rows.iter().map(|row| row.4).collect();
        assert_eq!(
            accounts.len(),
            rows.len(),
            "round {round}: an account signed twice: {rows:?}"
        );
        let added: Vec<&SignRow> = rows.iter().filter(|row| row.3 < 900).collect();
        assert_eq!(added.len(), 3, "round {round}: {rows:?}");
        for row in &added {
            assert_eq!(
                *row,
                &sign_row(200 + round, charter, row.3, signer_account(row.3))
            );
        }
        assert_eq!(ok, added.len(), "round {round}: one OK per row added");
    }
    realm
        .world_a
        .assert_never_saw(&[Opcode::CMSG_PETITION_SIGN], "worldserver A")?;
    realm
        .world_b
        .assert_never_saw(&[Opcode::CMSG_PETITION_SIGN], "worldserver B")?;

    drop(gateways);
    a.stop().await?;
    b.stop().await?;
    Ok(())
}
