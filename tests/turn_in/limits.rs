//! Where turn-ins stop: what the realm refuses, charters that stay native without the
//! module, and turn-ins and purchases at the same moment.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_ins_the_realm_refuses() -> Result<()> {
    within(WHOLE_TEST, "refusals", refusals()).await
}

/// Charters with their nine signatures in the database, turned in where the realm
/// says no: the sidecar answers with AzerothCore's codes; the worldserver never sees
/// the turn-in.
async fn refusals() -> Result<()> {
    let Some((db, pg)) = databases("refusals").await? else {
        return Ok(());
    };
    characters(&db, [1, 2, 3]).await?;
    characters(&db, 100..=124).await?;
    // AzerothCore keys petition_sign on (petitionguid, playerguid) and writes
    // petitionguid 0: a player signs one charter natively, so each has its own signers.
    for (owner, item, id, name, first, signers) in [
        (1, 9001, 501, "Guilded Owner", 100, 9u32),
        (2, 9002, 502, "Taken Name", 110, 9),
        (3, 9003, 503, "Few Friends", 120, 5),
    ] {
        db.petition(owner, item, id, name).await?;
        for signer in first..first + signers {
            db.native_signature(owner, id, signer, signer).await?;
        }
    }
    let realm = ModelRealm::start(db, pg, true).await?;
    // Made on another worldserver after these started: a guild with owner 1 in it,
    // and one called "Taken Name".
    realm
        .db
        .exec("INSERT INTO guild (guildid, name, leaderguid, info, motd) VALUES (70, 'Elsewhere', 1, '', '')", ())
        .await?;
    realm.db.guild_member(70, 1).await?;
    realm
        .db
        .exec("INSERT INTO guild (guildid, name, leaderguid, info, motd) VALUES (71, 'Taken Name', 99, '', '')", ())
        .await?;

    let mut guilded = realm.log_in(0, 1).await?;
    guilded.send(&turn_in(9001)).await?;
    expect_turn_in_result(
        &mut guilded,
        "an owner in a guild made elsewhere",
        turn_in_result::ALREADY_IN_GUILD,
    )
    .await?;

    let mut taken = realm.log_in(1, 2).await?;
    taken.send(&turn_in(9002)).await?;
    let refused = taken
        .expect::<SmsgGuildCommandResult>("a name taken on another worldserver")
        .await?;
    ensure!(
        (refused.command, refused.error, refused.name.as_str())
            == (
                GuildCommand::Create,
                GuildCommandError::NameExistsS,
                "Taken Name"
            ),
        "{refused:?}"
    );

    let mut few = realm.log_in(2, 3).await?;
    few.send(&turn_in(9003)).await?;
    expect_turn_in_result(
        &mut few,
        "five signatures of nine",
        turn_in_result::NEED_MORE_SIGNATURES,
    )
    .await?;

    for (n, world) in realm.worlds.iter().enumerate() {
        ensure!(
            world.received(Opcode::CMSG_TURN_IN_PETITION) == 0,
            "worldserver {} saw a turn-in the sidecar answered",
            IDS[n]
        );
    }
    ensure!(guild(&realm.db, "Guilded Owner").await.is_err());
    realm.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_module_charters_stay_native() -> Result<()> {
    within(WHOLE_TEST, "module off", module_off()).await
}

/// No module: a charter signed on one worldserver turns in natively; a signer on
/// another worldserver is answered as AzerothCore alone would answer (nothing).
async fn module_off() -> Result<()> {
    const NAME: &str = "Home Grown";
    let Some((db, pg)) = databases("module_off").await? else {
        return Ok(());
    };
    characters(&db, 1..=11).await?;
    let realm = ModelRealm::start(db, pg, false).await?;
    let mut owner = realm.log_in(0, 1).await?;
    let (item, id) = realm.buy(&mut owner, 1, NAME).await?;

    let mut elsewhere = realm.log_in(1, 11).await?;
    elsewhere
        .send(&CmsgPetitionSign {
            petition: Guid::item(item),
            unk: 1,
        })
        .await?;
    elsewhere
        .expect_silence(SILENCE, "B's worldserver never loaded A's new charter")
        .await?;
    ensure!(
        realm.worlds[1].received(Opcode::CMSG_PETITION_SIGN) == 1,
        "the sign went to B's worldserver"
    );

    let mut signers = Vec::new();
    for signer in 2..=10u32 {
        let mut gateway = realm.log_in(0, signer).await?;
        offer_and_sign(&mut owner, 1, &mut gateway, signer, item).await?;
        signers.push(gateway);
    }
    let rows = realm.db.signatures_by_id(id).await?;
    ensure!(
        rows.len() == 9 && rows.iter().all(|r| r.1 == 0),
        "nine native rows (petitionguid 0): {rows:?}"
    );
    ensure!(realm.worlds[0].received(Opcode::CMSG_PETITION_SIGN) == 9);
    owner.send(&turn_in(item)).await?;
    expect_created(&mut owner, NAME).await?;
    ensure!(guild(&realm.db, NAME).await?.2 == 10);
    realm.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_turn_ins_and_purchases_stay_apart() -> Result<()> {
    within(WHOLE_TEST, "simultaneous", simultaneous()).await
}

/// Two charters with nine signatures each turned in at the same moment on A and B:
/// two whole guilds with distinct ids. Then two charters bought at the same moment
/// on A and B: distinct petition ids.
async fn simultaneous() -> Result<()> {
    let Some((db, pg)) = databases("simultaneous").await? else {
        return Ok(());
    };
    characters(&db, [1, 2, 3, 4]).await?;
    characters(&db, 100..=117).await?;
    for (owner, item, id, name, first) in [
        (1, 9101, 601, "First Light", 100),
        (2, 9102, 602, "Second Sun", 109),
    ] {
        db.petition(owner, item, id, name).await?;
        for signer in first..first + 9 {
            db.native_signature(owner, id, signer, signer).await?;
        }
    }
    let realm = ModelRealm::start(db, pg, true).await?;
    let mut first = realm.log_in(0, 1).await?;
    let mut second = realm.log_in(1, 2).await?;
    first.send(&turn_in(9101)).await?;
    second.send(&turn_in(9102)).await?;
    let (a, b) = tokio::join!(
        expect_created(&mut first, "First Light"),
        expect_created(&mut second, "Second Sun")
    );
    a?;
    b?;
    let (first_id, _, first_members) = guild(&realm.db, "First Light").await?;
    let (second_id, _, second_members) = guild(&realm.db, "Second Sun").await?;
    ensure!(
        first_id != second_id,
        "two guilds, two ids: {first_id} and {second_id}"
    );
    ensure!((first_members, second_members) == (10, 10));

    let mut buyer_a = realm.log_in(0, 3).await?;
    let mut buyer_b = realm.log_in(1, 4).await?;
    let buy = |name: &str| CmsgPetitionBuy {
        name: name.to_owned(),
        index: 1,
        ..CmsgPetitionBuy::default()
    };
    buyer_a.send(&buy("Bought On A")).await?;
    buyer_b.send(&buy("Bought On B")).await?;
    let (charter_a, charter_b) = (buy_seen(&realm, 3).await?, buy_seen(&realm, 4).await?);
    ensure!(
        charter_a != charter_b,
        "distinct petition ids: {charter_a} and {charter_b}"
    );
    realm.stop().await
}

/// The petition id of `owner`'s guild charter, once it is in the database.
async fn buy_seen(realm: &ModelRealm, owner: u32) -> Result<u32> {
    let pool = realm.db.pool.clone();
    eventually(&format!("{owner}'s charter"), STEP, || {
        let pool = pool.clone();
        async move {
            let mut conn = pool.get_conn().await?;
            let id: Option<u32> = conn
                .exec_first(
                    "SELECT petition_id FROM petition WHERE ownerguid = ? AND type = 9",
                    (owner,),
                )
                .await?;
            Ok(id)
        }
    })
    .await
}
