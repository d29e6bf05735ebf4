//! The whole charter flow across two sidecars: offer, sign and its refusals, decline,
//! charter and guild queries, with the rows and packets each must produce.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_server_charter_flow() -> Result<()> {
    within(WHOLE_TEST, "charter flow", charter_flow()).await
}

async fn charter_flow() -> Result<()> {
    const CHARTER: u32 = 500;
    let realm = Realm::create("flow").await?;
    let db = &realm.mysql;
    for (guid, account, name, race) in [
        (1, 1, "Owner", 1),
        (2, 2, "Signer", 1),
        (3, 2, "Alt", 1),
        (4, 4, "Member", 1),
        (5, 5, "Horde", 2),
        (6, 6, "Tenth", 1),
        (20, 20, "Early", 1),
    ] {
        db.character(guid, account, name, race).await?;
    }
    db.exec(
        "INSERT INTO guild (guildid, name, leaderguid) VALUES (7, 'Old Guard', 4)",
        (),
    )
    .await?;
    db.exec(
        "INSERT INTO guild_member (guildid, guid, `rank`) VALUES (7, 4, 0)",
        (),
    )
    .await?;
    db.petition(1, CHARTER, CHARTER, "Crossrealm").await?;
    // One signature made earlier, so the offer shows a non-empty list.
    db.signature(1, CHARTER, 20, 20).await?;

    let a = realm.sidecar("A", 1).await?;
    let b = realm.sidecar("B", 1).await?;
    let mut owner = Gateway::logged_in(a.addr(), "owner 1 @A", 1).await?;
    let mut signer = Gateway::logged_in(b.addr(), "signer 2 @B", 2).await?;
    realm.wait_located(1, "A").await?;
    realm.wait_located(2, "B").await?;

    // -- The owner on A offers the charter to 2, who plays behind B.
    owner.send(&offer(CHARTER, 2)).await?;
    let (shown, _) = signer
        .expect_framed::<SmsgPetitionShowSignatures>("the offer reaches the target through B")
        .await?;
    assert_eq!(shown.petition, Guid::item(CHARTER));
    assert_eq!(
        shown.owner,
        Guid::player(1),
        "the offerer is in the owner slot"
    );
    assert_eq!(shown.petition_id, CHARTER);
    let in_db: Vec<PetitionSignature> = db
        .signatures(CHARTER)
        .await?
        .into_iter()
        .map(|row| PetitionSignature {
            player: Guid::player(row.3),
            unk: 0,
        })
        .collect();
    assert_eq!(shown.signatures, in_db, "the signatures in the database");
    assert_eq!(in_db.len(), 1);
    let stray = owner.fence().await?;
    assert!(
        stray.is_empty(),
        "the offerer is answered nothing: {stray:?}"
    );
    realm
        .world_a
        .assert_never_saw(&[Opcode::CMSG_OFFER_PETITION], "worldserver A")?;

    // -- 2 signs on B: a row, OK to the signer and to the owner on A.
    signer.send(&sign(CHARTER)).await?;
    let (signed, signer_copy) = signer
        .expect_framed::<SmsgPetitionSignResults>("the signer's result")
        .await?;
    assert_eq!(
        signed,
        SmsgPetitionSignResults {
            petition: Guid::item(CHARTER),
            signer: Guid::player(2),
            result: sign_result::OK,
        }
    );
    assert_eq!(
        db.signatures(CHARTER).await?,
        vec![sign_row(1, CHARTER, 2, 2), sign_row(1, CHARTER, 20, 20)],
        "the new row names owner, petition guid, petition id, player, account and type"
    );
    let (told, owner_copy) = owner
        .expect_framed::<SmsgPetitionSignResults>("the owner hears of the signature")
        .await?;
    assert_eq!(told, signed);
    assert_eq!(owner_copy.as_bytes(), signer_copy.as_bytes());
    assert!(signer.fence().await?.is_empty());
    assert!(owner.fence().await?.is_empty());

    // -- B claimed that notice for A as it recorded it; A wrote it without a claim
    // of its own and settled it. A wake-up bringing it again writes nothing: the
    // owner's next frame is the next signature's.
    let (id, payload, claimed_by) = tc9_testkit::wait::eventually(
        "A to settle the owner's notice",
        Duration::from_secs(5),
        || async {
            let row: Option<(i64, Vec<u8>, String)> = db
                .pool
                .get_conn()
                .await?
                .query_first(
                    "SELECT id, payload, claimed_by FROM tc9_sidecar_notice \
                     WHERE character_guid = 1 AND delivered IS NOT NULL ORDER BY id DESC LIMIT 1",
                )
                .await?;
            Ok(row)
        },
    )
    .await?;
    assert_eq!(claimed_by, "A");
    let again = tc9_charter::Notice {
        id,
        character: 1,
        payload,
    };
    bus(&b)?.wake("A", 1, Some(&again), true).await?;

    // -- 3, a second character of account 2, signs on B: already signed.
    let mut alt = Gateway::logged_in(b.addr(), "alt 3 @B", 3).await?;
    alt.send(&sign(CHARTER)).await?;
    let (again, alt_copy) = alt
        .expect_framed::<SmsgPetitionSignResults>("the account signed already")
        .await?;
    assert_eq!(
        again,
        SmsgPetitionSignResults {
            petition: Guid::item(CHARTER),
            signer: Guid::player(3),
            result: sign_result::ALREADY_SIGNED,
        }
    );
    let (told, owner_copy) = owner
        .expect_framed::<SmsgPetitionSignResults>("the owner hears of the refusal")
        .await?;
    assert_eq!(told, again);
    assert_eq!(owner_copy.as_bytes(), alt_copy.as_bytes());
    assert_eq!(db.signatures(CHARTER).await?.len(), 2, "no new row");
    assert!(alt.fence().await?.is_empty());

    // -- 4, in a guild, signs on B: refused by name, no row.
    let mut member = Gateway::logged_in(b.addr(), "member 4 @B", 4).await?;
    member.send(&sign(CHARTER)).await?;
    let (refused, _) = member
        .expect_framed::<SmsgGuildCommandResult>("a guild member cannot sign")
        .await?;
    assert_eq!(
        refused,
        SmsgGuildCommandResult {
            command: GuildCommand::Invite,
            name: "Member".into(),
            error: GuildCommandError::AlreadyInGuildS,
        }
    );
    assert!(member.fence().await?.is_empty());

    // -- 5, of the other faction, signs on B: not allied, no row.
    let mut horde = Gateway::logged_in(b.addr(), "horde 5 @B", 5).await?;
    horde.send(&sign(CHARTER)).await?;
    let (refused, _) = horde
        .expect_framed::<SmsgGuildCommandResult>("the other faction cannot sign")
        .await?;
    assert_eq!(
        refused,
        SmsgGuildCommandResult {
            command: GuildCommand::Create,
            name: String::new(),
            error: GuildCommandError::NotAllied,
        }
    );
    assert!(horde.fence().await?.is_empty());
    assert_eq!(db.signatures(CHARTER).await?.len(), 2, "no new row");

    // -- The owner signs the own charter on A: nothing at all.
    owner.send(&sign(CHARTER)).await?;
    owner
        .expect_silence(SILENCE, "signing one's own charter is ignored")
        .await?;
    assert_eq!(db.signatures(CHARTER).await?.len(), 2, "no new row");

    // -- Fill the charter to 9; a 10th account is refused silently.
    for n in 30..37 {
        db.signature(1, CHARTER, n, n).await?;
    }
    assert_eq!(db.signatures(CHARTER).await?.len(), 9);
    let mut tenth = Gateway::logged_in(b.addr(), "tenth 6 @B", 6).await?;
    tenth.send(&sign(CHARTER)).await?;
    tenth
        .expect_silence(SILENCE, "a full charter takes no signature")
        .await?;
    let rows = db.signatures(CHARTER).await?;
    assert_eq!(rows.len(), 9, "the charter holds at most 9: {rows:?}");
    assert!(rows.iter().all(|row| row.3 != 6), "{rows:?}");

    // The owner heard of none of the refusals after ALREADY_SIGNED.
    assert!(owner.fence().await?.is_empty());

    // -- 2 declines on B: the owner on A is told who declined.
    signer
        .send(&MsgPetitionDeclineClient {
            petition: Guid::item(CHARTER),
        })
        .await?;
    let (declined, frame) = owner
        .expect_framed::<MsgPetitionDeclineServer>("the owner hears of the decline")
        .await?;
    assert_eq!(declined.decliner, Guid::player(2));
    assert_eq!(
        frame.body(),
        2u64.to_le_bytes(),
        "server body: u64 decliner"
    );
    assert!(
        signer.fence().await?.is_empty(),
        "the decliner is answered nothing"
    );

    // -- 2 queries the charter on B: answered from the database.
    signer
        .send(&CmsgPetitionQuery {
            petition_id: CHARTER,
            petition: Guid::item(CHARTER),
        })
        .await?;
    let (query, _) = signer
        .expect_framed::<SmsgPetitionQueryResponse>("the charter query")
        .await?;
    assert_eq!(query.petition_id, CHARTER);
    assert_eq!(query.owner, Guid::player(1));
    assert_eq!(query.name, "Crossrealm");
    assert_eq!((query.min_signatures, query.max_signatures), (9, 9));
    assert_eq!(query.is_arena, 0);
    assert_eq!(
        query,
        SmsgPetitionQueryResponse::for_charter(
            CHARTER,
            Guid::player(1),
            "Crossrealm".into(),
            GUILD_CHARTER_TYPE,
            9
        )
    );
    assert!(signer.fence().await?.is_empty());

    // -- A guild created after both sidecars started: unknown first (the
    // worldserver gets the query), then answered from the database.
    const LATE: u32 = 42;
    signer.send(&CmsgGuildQuery { guild_id: LATE }).await?;
    let stray = signer.fence().await?;
    assert!(
        stray.is_empty(),
        "an unknown guild is left to the worldserver: {stray:?}"
    );
    assert_eq!(realm.world_b.count(Opcode::CMSG_GUILD_QUERY), 1);
    db.exec(
        "INSERT INTO guild (guildid, name, leaderguid, EmblemStyle, EmblemColor, \
         BorderStyle, BorderColor, BackgroundColor) VALUES (?, 'Late Company', 2, 11, 12, 3, 14, 15)",
        (LATE,),
    )
    .await?;
    for (rid, rname) in [(0u8, "Guild Master"), (1, "Officer"), (4, "Initiate")] {
        db.exec(
            "INSERT INTO guild_rank (guildid, rid, rname, rights) VALUES (?, ?, ?, 0)",
            (LATE, rid, rname),
        )
        .await?;
    }
    // Made behind every sidecar's back: the id is remembered as unknown for a while.
    tokio::time::sleep(tc9_charter::GUILD_UNKNOWN_TTL + Duration::from_millis(100)).await;
    signer.send(&CmsgGuildQuery { guild_id: LATE }).await?;
    let (guild, _) = signer
        .expect_framed::<SmsgGuildQueryResponse>("the guild query")
        .await?;
    let mut ranks: [String; 10] = Default::default();
    ranks[0] = "Guild Master".into();
    ranks[1] = "Officer".into();
    ranks[4] = "Initiate".into();
    assert_eq!(
        guild,
        SmsgGuildQueryResponse {
            guild_id: LATE,
            name: "Late Company".into(),
            rank_names: ranks,
            emblem: GuildEmblem {
                emblem_style: 11,
                emblem_color: 12,
                border_style: 3,
                border_color: 14,
                background_color: 15,
            },
            rank_count: 3,
        }
    );
    assert!(signer.fence().await?.is_empty());
    assert_eq!(
        realm.world_b.count(Opcode::CMSG_GUILD_QUERY),
        1,
        "the answered query never reached the worldserver"
    );

    // Every fence above has passed: no resolved opcode ever reached a worldserver.
    realm.world_a.assert_never_saw(&RESOLVED, "worldserver A")?;
    realm.world_b.assert_never_saw(&RESOLVED, "worldserver B")?;
    // The sessions' other traffic (logins, pings) did pass through.
    assert_eq!(realm.world_a.count(Opcode::CMSG_PLAYER_LOGIN), 1);
    assert_eq!(realm.world_b.count(Opcode::CMSG_PLAYER_LOGIN), 5);

    drop((owner, signer, alt, member, horde, tenth));
    a.stop().await?;
    b.stop().await?;
    Ok(())
}
