//! Defects found while writing the tests above, now fixed: a crashed sidecar's stale
//! presence, an outbox blocked by waiting events, guild answers after guild events.

use super::*;

/// A sidecar that crashed leaves its characters' presence rows behind; the next
/// process with the same id must not keep them alive with its heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_presence_of_a_crashed_sidecar_expires() -> Result<()> {
    within(WHOLE_TEST, "stale presence", stale_presence()).await
}

async fn stale_presence() -> Result<()> {
    let realm = Realm::create("stale").await?;
    realm.mysql.character(3, 3, "Ghost", 1).await?;
    let a = realm.sidecar("A", 1).await?;
    // B crashed while 3 played behind it: no LeftWorld ever withdrew the row.
    let pg = realm.pg.client().await?;
    pg.execute(
        &format!("INSERT INTO {SCHEMA}.online (character_guid, sidecar_id) VALUES (3, 'B')"),
        &[],
    )
    .await?;
    realm.wait_located(3, "B").await?;
    // B comes back; 3 does not.
    let b = realm.sidecar("B", 1).await?;
    tokio::time::sleep(Duration::from_secs(PRESENCE_EXPIRY_SECS + 2)).await;
    let at = bus(&a)?.locate(3).await?;
    assert_eq!(
        at, None,
        "character 3 never entered the world through the new B, yet it is located there"
    );
    a.stop().await?;
    b.stop().await?;
    Ok(())
}

/// Events that wait for an absent character must not hide newer events of the same
/// sidecar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_events_do_not_block_newer_ones() -> Result<()> {
    within(WHOLE_TEST, "blocked outbox", blocked_outbox()).await
}

async fn blocked_outbox() -> Result<()> {
    const CHARTER: u32 = 800;
    let realm = Realm::create("hol").await?;
    let Pair {
        a,
        b,
        mut owner,
        mut target,
    } = realm.pair(CHARTER, "Backlog", 1).await?;
    // Events for a character that left B between `locate` and delivery (or that a
    // crashed B still appears to hold): they wait for it until event_ttl.
    let payload = server_frame(&MsgPetitionDeclineServer {
        decliner: Guid::player(9),
    });
    for _ in 0..256 {
        bus(&a)?
            .publish("B", Some(999), &EventKind::Packets, payload.as_bytes())
            .await?;
    }
    owner.send(&offer(CHARTER, 2)).await?;
    let shown = target.recv(Duration::from_secs(5)).await?;
    let shown = shown.context("the offer to a character online behind B never arrived")?;
    assert_eq!(shown.opcode(), Opcode::SMSG_PETITION_SHOW_SIGNATURES);
    drop((owner, target));
    a.stop().await?;
    b.stop().await?;
    Ok(())
}

/// Cached guild answers follow guild changes made through any worldserver: the
/// leader saves a new tabard on A (AzerothCore writes it to the database and tells the
/// guild with GE_TABARDCHANGE); B's next answer shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guild_answers_follow_guild_events() -> Result<()> {
    within(WHOLE_TEST, "guild changes", guild_changes()).await
}

async fn guild_changes() -> Result<()> {
    const GUILD: u32 = 42;
    let realm = Realm::create("guild").await?;
    let db = &realm.mysql;
    db.character(2, 2, "Asker", 1).await?;
    db.character(3, 3, "Leader", 1).await?;
    db.exec(
        "INSERT INTO guild (guildid, name, leaderguid, EmblemStyle) VALUES (?, 'Knights', 3, 1)",
        (GUILD,),
    )
    .await?;
    db.exec(
        "INSERT INTO guild_rank (guildid, rid, rname) VALUES (?, 0, 'Master')",
        (GUILD,),
    )
    .await?;
    db.exec(
        "INSERT INTO guild_member (guildid, guid, `rank`) VALUES (?, 3, 0)",
        (GUILD,),
    )
    .await?;
    let a = realm.sidecar("A", 1).await?;
    let b = realm.sidecar("B", 1).await?;
    let mut leader = Gateway::logged_in(a.addr(), "leader 3 @A", 3).await?;
    let mut asker = Gateway::logged_in(b.addr(), "asker 2 @B", 2).await?;
    asker.send(&CmsgGuildQuery { guild_id: GUILD }).await?;
    let (first, _) = asker
        .expect_framed::<SmsgGuildQueryResponse>("first query")
        .await?;
    assert_eq!(first.emblem.emblem_style, 1);

    // The leader's worldserver saves the tabard and a rank name.
    db.exec(
        "UPDATE guild SET EmblemStyle = 9 WHERE guildid = ?",
        (GUILD,),
    )
    .await?;
    db.exec(
        "UPDATE guild_rank SET rname = 'Commander' WHERE guildid = ? AND rid = 0",
        (GUILD,),
    )
    .await?;
    leader
        .send(&MsgSaveGuildEmblemClient {
            vendor: Guid(0xF130_0000_0000_0001),
            emblem: GuildEmblem {
                emblem_style: 9,
                ..GuildEmblem::default()
            },
        })
        .await?;
    leader
        .expect_framed::<SmsgGuildEvent>("the tabard event")
        .await?;

    let deadline = Instant::now() + STEP;
    let second = loop {
        asker.send(&CmsgGuildQuery { guild_id: GUILD }).await?;
        let (answer, _) = asker
            .expect_framed::<SmsgGuildQueryResponse>("a later query")
            .await?;
        if answer.emblem.emblem_style == 9 {
            break answer;
        }
        ensure!(Instant::now() < deadline, "B still answers the old tabard");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(second.rank_names[0], "Commander", "the renamed rank");
    drop((leader, asker));
    b.stop().await?;
    a.stop().await?;
    Ok(())
}
