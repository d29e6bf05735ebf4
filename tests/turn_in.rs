//! From charter to guild across worldservers: three sidecars in front of three
//! models of the pinned AzerothCore worldserver (`tc9_sidecar::tools::worldserver`),
//! on AzerothCore's own tables (`../shared/azerothcore/sql`; skipped where absent)
//! and a real PostgreSQL bus.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use mysql_async::prelude::*;
use tc9_codec::messages::petition::turn_in_result;
use tc9_codec::messages::{
    CmsgGuildQuery, CmsgPetitionBuy, CmsgPetitionSign, GuildCommand, GuildCommandError,
    SmsgGuildCommandResult, SmsgGuildQueryResponse, SmsgTurnInPetitionResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::Opcode;
use tc9_sidecar::config::Config;
use tc9_sidecar::tools::worldserver::mysql::MysqlWorldDb;
use tc9_sidecar::tools::worldserver::{ModelConfig, ModelWorldserver};
use tc9_sidecar::Sidecar;
use tc9_testkit::model::{
    characters, databases, expect_created, offer_and_sign, turn_in, ModelRealm, IDS,
};
use tc9_testkit::{
    eventually, http_get, metric_sum, start_sidecar, test_config, Gateway, MariaDb, SILENCE, STEP,
};
use tokio::time::timeout;

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(90);

/// The guild called `name`: id, rank count, member count.
async fn guild(db: &MariaDb, name: &str) -> Result<(u32, usize, usize)> {
    let mut conn = db.pool.get_conn().await?;
    let id: u32 = conn
        .exec_first("SELECT guildid FROM guild WHERE name = ?", (name,))
        .await?
        .with_context(|| format!("no guild called {name}"))?;
    let ranks: Vec<u8> = conn
        .exec("SELECT rid FROM guild_rank WHERE guildid = ?", (id,))
        .await?;
    let members: Vec<u32> = conn
        .exec("SELECT guid FROM guild_member WHERE guildid = ?", (id,))
        .await?;
    Ok((id, ranks.len(), members.len()))
}

/// Rows left of petition `id`: `(petition, petition_sign)`.
async fn petition_rows(db: &MariaDb, id: u32) -> Result<(usize, usize)> {
    let mut conn = db.pool.get_conn().await?;
    let petitions: Vec<u32> = conn
        .exec(
            "SELECT petition_id FROM petition WHERE petition_id = ?",
            (id,),
        )
        .await?;
    let signs: Vec<u32> = conn
        .exec(
            "SELECT playerguid FROM petition_sign WHERE petition_id = ?",
            (id,),
        )
        .await?;
    Ok((petitions.len(), signs.len()))
}

/// One series of sidecar A's metrics.
async fn metric(sidecar: &Sidecar, series: (&str, &[&str])) -> Result<f64> {
    let addr = sidecar.metrics_addr().context("sidecar A serves metrics")?;
    let (_, text) = http_get(addr, "/metrics").await?;
    let (name, labels) = series;
    Ok(metric_sum(&text, name, labels))
}

/// Turn-ins the worldserver answered with OK.
const TURN_INS_OK: (&str, &[&str]) = (
    "tc9_sidecar_turn_ins_total",
    &["by=\"worldserver\"", "result=\"ok\""],
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_life_of_a_charter() -> Result<()> {
    timeout(WHOLE_TEST, whole_life())
        .await
        .context("the test took too long")?
}

/// A charter bought on A, offered to and signed by nine players over A, B and C,
/// turned in on A; the guild is whole and C's sidecar answers for it.
async fn whole_life() -> Result<()> {
    const OWNER: u32 = 1;
    const NAME: &str = "Three Worlds";
    let Some((db, pg)) = databases("whole_life").await? else {
        return Ok(());
    };
    characters(&db, 1..=10).await?;
    let realm = ModelRealm::start(db, pg, true).await?;
    let ok_before = metric(&realm.sidecars[0], TURN_INS_OK).await?;
    let mut owner = realm.log_in(0, OWNER).await?;
    let (item, id) = realm.buy(&mut owner, OWNER, NAME).await?;
    for signer in 2..=10u32 {
        let at = ((signer - 2) / 3) as usize;
        let mut gateway = realm.log_in(at, signer).await?;
        offer_and_sign(&mut owner, OWNER, &mut gateway, signer, item).await?;
    }
    ensure!(realm.db.signatures_by_id(id).await?.len() == 9);

    owner.send(&turn_in(item)).await?;
    expect_created(&mut owner, NAME).await?;
    let (guild_id, ranks, members) = guild(&realm.db, NAME).await?;
    ensure!(
        (ranks, members) == (5, 10),
        "ranks {ranks}, members {members}"
    );
    ensure!(
        petition_rows(&realm.db, id).await? == (0, 0),
        "the petition's rows are gone"
    );

    let mut on_c = realm.log_in(2, 10).await?;
    on_c.send(&CmsgGuildQuery { guild_id }).await?;
    let answer = on_c
        .expect::<SmsgGuildQueryResponse>("C's sidecar answers for a guild made on A")
        .await?;
    ensure!(
        answer.name == NAME && answer.rank_names[0] == "Guild Master",
        "{answer:?}"
    );

    let ok_after = metric(&realm.sidecars[0], TURN_INS_OK).await?;
    for result in [
        "ok",
        "already_in_guild",
        "name_taken",
        "need_more_signatures",
        "other",
    ] {
        for by in ["sidecar", "worldserver"] {
            let labels = [format!("by=\"{by}\""), format!("result=\"{result}\"")];
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let count = metric(&realm.sidecars[0], ("tc9_sidecar_turn_ins_total", &labels)).await?;
            eprintln!("tc9_sidecar_turn_ins_total by={by} result={result}: {count}");
        }
    }
    ensure!(
        ok_after >= ok_before + 1.0,
        "the successful turn-in is counted"
    );
    realm.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charter_signed_through_one_sidecar_turns_in() -> Result<()> {
    timeout(WHOLE_TEST, one_worldserver(true))
        .await
        .context("the test took too long")??;
    // Without the module the worldserver counts the signatures it loaded at start,
    // as on today's main: the sidecar-made signatures do not count.
    timeout(WHOLE_TEST, one_worldserver(false))
        .await
        .context("the test took too long")?
}

/// Everyone plays on A; the sidecar records the signatures (it is told the module
/// runs) and the worldserver runs the module or not.
async fn one_worldserver(worldserver_module: bool) -> Result<()> {
    const NAME: &str = "One World";
    let Some((db, pg)) = databases("one_world").await? else {
        return Ok(());
    };
    characters(&db, 1..=10).await?;
    let mut realm = ModelRealm::start(db, pg, true).await?;
    if !worldserver_module {
        // Today's main: the sidecar signs, the worldserver has no module.
        let old = realm.sidecars.remove(0);
        old.stop().await?;
        realm.worlds[0] = ModelWorldserver::start(
            MysqlWorldDb::new(&realm.db.url()).map_err(anyhow::Error::from_boxed)?,
            ModelConfig {
                module: false,
                ..ModelConfig::default()
            },
        )
        .await?;
        let replacement = start_sidecar(Config {
            characters_db_url: realm.db.url(),
            bus_url: realm.pg.url(),
            presence_expiry_secs: 6,
            bus_poll_ms: 150,
            ..test_config("A", realm.worlds[0].addr())
        })
        .await?;
        realm.sidecars.insert(0, replacement);
    }
    let mut owner = realm.log_in(0, 1).await?;
    let (item, id) = realm.buy(&mut owner, 1, NAME).await?;
    let mut signers = Vec::new();
    for signer in 2..=10u32 {
        let mut gateway = Gateway::logged_in(
            realm.sidecars[0].addr(),
            &format!("signer {signer}"),
            signer,
        )
        .await?;
        offer_and_sign(&mut owner, 1, &mut gateway, signer, item).await?;
        signers.push(gateway);
    }
    ensure!(realm.db.signatures_by_id(id).await?.len() == 9);
    owner.send(&turn_in(item)).await?;
    if worldserver_module {
        expect_created(&mut owner, NAME).await?;
        ensure!(guild(&realm.db, NAME).await?.2 == 10);
    } else {
        let refused = owner
            .expect::<SmsgTurnInPetitionResults>("the worldserver's own count")
            .await?;
        ensure!(
            refused.result == turn_in_result::NEED_MORE_SIGNATURES,
            "without the module: {refused:?}"
        );
    }
    realm.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_ins_the_realm_refuses() -> Result<()> {
    timeout(WHOLE_TEST, refusals())
        .await
        .context("the test took too long")?
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
    let refused = guilded
        .expect::<SmsgTurnInPetitionResults>("an owner in a guild made elsewhere")
        .await?;
    ensure!(
        refused.result == turn_in_result::ALREADY_IN_GUILD,
        "{refused:?}"
    );

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
    let refused = few
        .expect::<SmsgTurnInPetitionResults>("five signatures of nine")
        .await?;
    ensure!(
        refused.result == turn_in_result::NEED_MORE_SIGNATURES,
        "{refused:?}"
    );

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
    timeout(WHOLE_TEST, module_off())
        .await
        .context("the test took too long")?
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
    timeout(WHOLE_TEST, simultaneous())
        .await
        .context("the test took too long")?
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
