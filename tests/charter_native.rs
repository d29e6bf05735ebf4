//! Charters the worldserver itself wrote, on AzerothCore's own tables
//! (`../shared/azerothcore/sql`; skipped where that folder is absent).
//!
//! The pinned worldserver relates signatures to their petition by `petition_id` and
//! writes them with `petitionguid` and `type` 0 (`CharacterDatabase.cpp`,
//! `CHAR_INS_PETITION_SIGNATURE`). A sidecar in front of it must show, count and cap
//! those rows like its own: the list shows all of them, an alt of a native signer
//! is refused as the same account, and the ninth signature is the last.

use std::time::Duration;

use anyhow::{ensure, Result};
use tc9_codec::messages::petition::{sign_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{
    CmsgPetitionQuery, CmsgPetitionShowSignatures, CmsgPetitionSign, SmsgPetitionQueryResponse,
    SmsgPetitionShowSignatures, SmsgPetitionSignResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::Opcode;
use tc9_sidecar::config::Config;
use tc9_testkit::{start_sidecar, test_config, within, Gateway, MariaDb, World, SILENCE};

/// The charter item and its petition id (they differ, as on a real realm).
const CHARTER: u32 = 900;
const PETITION_ID: u32 = 77;
const OWNER: u32 = 1;
/// Characters 11..=18 signed natively, with accounts 111..=118.
const NATIVE: std::ops::RangeInclusive<u32> = 11..=18;
/// An alt of native signer 13 (same account).
const ALT: u32 = 30;
const FRESH: u32 = 31;
const LATE: u32 = 32;

fn sign() -> CmsgPetitionSign {
    CmsgPetitionSign {
        petition: Guid::item(CHARTER),
        unk: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_signatures_are_shown_counted_and_capped() -> Result<()> {
    within(Duration::from_secs(60), "native rows", native_rows()).await
}

async fn native_rows() -> Result<()> {
    let Some(db) = MariaDb::azerothcore("native").await? else {
        return Ok(());
    };
    db.character(OWNER, 1, "Owner", 1).await?;
    for guid in NATIVE {
        db.character(guid, 100 + guid, &format!("Native{guid}"), 1)
            .await?;
    }
    db.character(ALT, 113, "Alt", 1).await?;
    db.character(FRESH, 131, "Fresh", 1).await?;
    db.character(LATE, 132, "Late", 1).await?;
    db.petition(OWNER, CHARTER, PETITION_ID, "Natives").await?;
    for guid in NATIVE {
        db.native_signature(OWNER, PETITION_ID, guid, 100 + guid)
            .await?;
    }

    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        characters_db_url: db.url(),
        ..test_config("A", world.addr)
    })
    .await?;

    let mut fresh = Gateway::logged_in(sidecar.addr(), "fresh", FRESH).await?;
    fresh
        .send(&CmsgPetitionShowSignatures {
            petition: Guid::item(CHARTER),
        })
        .await?;
    let shown = fresh
        .expect::<SmsgPetitionShowSignatures>("the charter's signatures")
        .await?;
    let players: Vec<Guid> = shown.signatures.iter().map(|s| s.player).collect();
    ensure!(
        players == NATIVE.map(Guid::player).collect::<Vec<_>>(),
        "every natively written signature is shown: {players:?}"
    );
    ensure!(shown.petition_id == PETITION_ID, "{shown:?}");

    let mut alt = Gateway::logged_in(sidecar.addr(), "alt", ALT).await?;
    alt.send(&sign()).await?;
    let refused = alt
        .expect::<SmsgPetitionSignResults>("the alt's signature")
        .await?;
    ensure!(
        refused.result == sign_result::ALREADY_SIGNED,
        "an alt of a native signer is the same account: {refused:?}"
    );
    ensure!(db.signatures_by_id(PETITION_ID).await?.len() == 8);

    fresh.send(&sign()).await?;
    let signed = fresh
        .expect::<SmsgPetitionSignResults>("the ninth signature")
        .await?;
    ensure!(signed.result == sign_result::OK, "{signed:?}");
    let rows = db.signatures_by_id(PETITION_ID).await?;
    ensure!(rows.len() == 9, "nine rows: {rows:?}");
    ensure!(
        rows.contains(&(OWNER, CHARTER, PETITION_ID, FRESH, 131, GUILD_CHARTER_TYPE)),
        "the sidecar's row carries petitionguid, petition_id and type: {rows:?}"
    );

    let mut late = Gateway::logged_in(sidecar.addr(), "late", LATE).await?;
    late.send(&sign()).await?;
    late.expect_silence(SILENCE, "a charter with nine signatures takes no tenth")
        .await?;
    ensure!(db.signatures_by_id(PETITION_ID).await?.len() == 9);

    late.send(&CmsgPetitionQuery {
        petition_id: PETITION_ID,
        petition: Guid::item(CHARTER),
    })
    .await?;
    let query = late
        .expect::<SmsgPetitionQueryResponse>("the charter query")
        .await?;
    ensure!(query.petition_id == PETITION_ID, "{query:?}");

    world.assert_never_saw(
        &[
            Opcode::CMSG_PETITION_SIGN,
            Opcode::CMSG_PETITION_SHOW_SIGNATURES,
            Opcode::CMSG_PETITION_QUERY,
        ],
        "the worldserver",
    )?;
    sidecar.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guild_joined_after_login_counts() -> Result<()> {
    within(
        Duration::from_secs(60),
        "joined after login",
        joined_after_login(),
    )
    .await
}

/// A character that joins a guild while it plays can no longer sign, nor be shown a
/// guild charter: the rules read membership when they decide, not at login.
async fn joined_after_login() -> Result<()> {
    let Some(db) = MariaDb::azerothcore("joined").await? else {
        return Ok(());
    };
    db.character(OWNER, 1, "Owner", 1).await?;
    db.character(FRESH, 131, "Fresh", 1).await?;
    db.petition(OWNER, CHARTER, PETITION_ID, "Natives").await?;
    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        characters_db_url: db.url(),
        ..test_config("A", world.addr)
    })
    .await?;
    let mut fresh = Gateway::logged_in(sidecar.addr(), "fresh", FRESH).await?;
    // The character row the sidecar reads at login is there (no guild) ...
    fresh.fence().await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ... then the character joins a guild made on another worldserver.
    db.exec(
        "INSERT INTO guild (guildid, name, leaderguid, info, motd) VALUES (5, 'Elsewhere', 99, '', '')",
        (),
    )
    .await?;
    db.guild_member(5, FRESH).await?;

    fresh.send(&sign()).await?;
    let refused = fresh
        .expect::<tc9_codec::messages::SmsgGuildCommandResult>("a guild member's signature")
        .await?;
    ensure!(
        refused.error == tc9_codec::messages::GuildCommandError::AlreadyInGuildS,
        "{refused:?}"
    );
    ensure!(db.signatures_by_id(PETITION_ID).await?.is_empty());
    fresh
        .send(&CmsgPetitionShowSignatures {
            petition: Guid::item(CHARTER),
        })
        .await?;
    fresh
        .expect_silence(SILENCE, "a guild charter is shown to nobody in a guild")
        .await?;
    sidecar.stop().await
}
