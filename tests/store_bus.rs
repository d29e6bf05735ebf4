//! The store against a real MariaDB with AzerothCore's tables, and the bus against a
//! real PostgreSQL: reads, the signing transaction under concurrency, presence,
//! the outbox and its wake-ups.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tc9_charter::{
    Deliverer, Directory, EventKind, Notice, Petition, Rules, Settle, SignVerdict, Wakeup,
};
use tc9_sidecar::backends::mysql::Db;
use tc9_sidecar::backends::postgres::Bus;
use tc9_testkit::db::player;
use tc9_testkit::{MariaDb, PgDb};
use tokio::sync::Barrier;

#[tokio::test]
async fn reads_petitions_signatures_and_guilds() {
    let db = MariaDb::create("store_reads").await.unwrap();
    db.character(1, 1, "Owner", 1).await.unwrap();
    db.exec(
        "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) VALUES (1, 500, 42, 'Crossrealm', 9)",
        (),
    )
    .await
    .unwrap();
    db.exec(
        "INSERT INTO petition_sign (ownerguid, petitionguid, petition_id, playerguid, player_account, type) \
         VALUES (1, 500, 42, 7, 70, 9), (1, 500, 42, 3, 30, 9)",
        (),
    )
    .await
    .unwrap();
    db.exec("INSERT INTO guild (guildid, name, EmblemStyle, EmblemColor, BorderStyle, BorderColor, BackgroundColor) VALUES (8, 'Knights', 1, 2, 3, 4, 5)", ())
    .await
    .unwrap();
    db.exec(
        "INSERT INTO guild_rank (guildid, rid, rname) VALUES (8, 0, 'Master'), (8, 2, 'Member')",
        (),
    )
    .await
    .unwrap();
    let store = Db::new(&db.url()).unwrap();

    let petition = store.petition(500).await.unwrap().unwrap();
    assert_eq!(
        (
            petition.petition_id,
            petition.owner_guid,
            petition.name.as_str(),
            petition.kind
        ),
        (42, 1, "Crossrealm", 9)
    );
    assert!(store.petition(501).await.unwrap().is_none());
    let signatures = store.signatures(42).await.unwrap();
    assert_eq!(
        signatures
            .iter()
            .map(|s| (s.player_guid, s.account))
            .collect::<Vec<_>>(),
        vec![(3, 30), (7, 70)],
        "ordered by player guid, as AzerothCore's signature map"
    );
    let guild = store.guild(8).await.unwrap().unwrap();
    assert_eq!(guild.name, "Knights");
    assert_eq!(guild.emblem, [1, 2, 3, 4, 5]);
    assert_eq!(
        guild.ranks,
        vec![(0, "Master".to_owned()), (2, "Member".to_owned())]
    );
    assert!(store.guild(9).await.unwrap().is_none());
    let owner = store.character(1).await.unwrap().unwrap();
    assert_eq!(
        (owner.name.as_str(), owner.account, owner.guild_id),
        ("Owner", 1, None)
    );
    store.close().await;
}

#[tokio::test]
async fn signing_writes_native_rows() {
    use mysql_async::prelude::Queryable;
    let db = MariaDb::create("store_sign").await.unwrap();
    db.character(1, 1, "Owner", 1).await.unwrap();
    db.exec(
        "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) VALUES (1, 500, 42, 'Crossrealm', 9)",
        (),
    )
    .await
    .unwrap();
    let store = Db::new(&db.url()).unwrap();
    let rules = Rules::default();

    let seen = store.petition(500).await.unwrap().expect("the charter");
    let signed = store
        .sign(
            seen.key(),
            &player(2, 20),
            false,
            &rules,
            &Deliverer::default(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(signed.verdict, SignVerdict::Record(_)),
        "{signed:?}"
    );
    let first = signed.notice.expect("the owner's notice");
    assert_eq!(first.character, 1);
    assert_eq!(signed.held_for, None);
    // The owner's sidecar, found before the notice is recorded, holds it from the
    // start.
    let deliverer = Deliverer::default();
    deliverer.found(Some("A".to_owned()));
    let signed = store
        .sign(seen.key(), &player(3, 20), false, &rules, &deliverer)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(signed.verdict, SignVerdict::AlreadySigned(_)),
        "{signed:?}"
    );
    assert_eq!(signed.held_for.as_deref(), Some("A"));
    let second = signed.notice.expect("the owner's notice");
    assert!(second.id > first.id);
    let held: Option<i64> = db
        .pool
        .get_conn()
        .await
        .unwrap()
        .exec_first(
            "SELECT TIMESTAMPDIFF(MICROSECOND, created, claimed_until) FROM tc9_sidecar_notice \
             WHERE id = ? AND claimed_by = 'A'",
            (second.id,),
        )
        .await
        .unwrap();
    assert_eq!(held, Some(tc9_charter::HELD_HOLD.as_micros() as i64));
    let hold = Duration::from_secs(10);
    assert!(!store.claim_one(second.id, "B", hold).await.unwrap());
    // A notice claimed by its id is held as a claim by character holds it: B cannot
    // take A's, A can renew its own, a delivered one is nobody's.
    assert!(store.claim_one(second.id, "A", hold).await.unwrap());
    assert!(!store.claim_one(second.id, "B", hold).await.unwrap());
    assert!(store.claim_one(second.id, "A", hold).await.unwrap());
    assert_eq!(
        store.claim(&[1], "B", hold).await.unwrap(),
        vec![first.clone()]
    );
    assert_eq!(
        store.claim(&[1], "A", hold).await.unwrap(),
        vec![second.clone()]
    );
    store
        .settle(second.id, "A", Settle::Delivered)
        .await
        .unwrap();
    assert!(!store.claim_one(second.id, "A", hold).await.unwrap());
    assert!(!store.claim_one(second.id + 100, "A", hold).await.unwrap());
    // A charter that is no longer the owner's is not signed.
    let gone = Petition {
        petition_guid: 999,
        ..seen.clone()
    };
    assert!(store
        .sign(
            gone.key(),
            &player(2, 20),
            false,
            &rules,
            &Deliverer::default()
        )
        .await
        .unwrap()
        .is_none());

    let mut conn = db.pool.get_conn().await.unwrap();
    let rows: Vec<(u32, u32, u32, u32, u32, u8)> = conn
        .query("SELECT ownerguid, petitionguid, petition_id, playerguid, player_account, type FROM petition_sign")
        .await
        .unwrap();
    assert_eq!(rows, vec![(1, 500, 42, 2, 20, 9)]);
    drop(conn);
    store.close().await;
}

/// Twenty signers on two pools (two sidecars) race for the last three slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_signers_never_exceed_nine_or_repeat_an_account() {
    let db = MariaDb::create("store_race").await.unwrap();
    db.character(1, 1, "Owner", 1).await.unwrap();
    let sidecars = [Db::new(&db.url()).unwrap(), Db::new(&db.url()).unwrap()];
    for round in 0..3u32 {
        let petition = 600 + round;
        db.character(10 + round, 10 + round, "Founder", 1)
            .await
            .unwrap();
        db.exec(
            "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) VALUES (?, ?, ?, 'Race', 9)",
            (10 + round, petition, petition),
        )
    .await
    .unwrap();
        for i in 0..6u32 {
            db.exec(
                "INSERT INTO petition_sign (ownerguid, petitionguid, petition_id, playerguid, player_account, type) VALUES (?, ?, ?, ?, ?, 9)",
                (10 + round, petition, petition, 100 + i, 100 + i),
            )
    .await
    .unwrap();
        }
        let barrier = Arc::new(Barrier::new(20));
        let mut tasks = Vec::new();
        for i in 0..20u32 {
            let store = sidecars[i as usize % 2].clone();
            let barrier = Arc::clone(&barrier);
            // Signers 1000..1020; pairs (0,1), (2,3) share an account.
            let account = if i < 4 { 5000 + i / 2 } else { 5000 + i };
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let seen = store.petition(petition).await.unwrap().unwrap();
                store
                    .sign(
                        seen.key(),
                        &player(1000 + i, account),
                        false,
                        &Rules::default(),
                        &Deliverer::default(),
                    )
                    .await
                    .unwrap()
                    .unwrap()
                    .verdict
            }));
        }
        let mut recorded = 0;
        for task in tasks {
            if let SignVerdict::Record(_) = task.await.unwrap() {
                recorded += 1;
            }
        }
        let mut conn = db.pool.get_conn().await.unwrap();
        use mysql_async::prelude::Queryable;
        let accounts: Vec<u32> = conn
            .exec(
                "SELECT player_account FROM petition_sign WHERE petitionguid = ?",
                (petition,),
            )
            .await
            .unwrap();
        assert_eq!(accounts.len(), 9, "round {round}");
        assert_eq!(
            accounts.iter().collect::<HashSet<_>>().len(),
            9,
            "round {round}"
        );
        assert_eq!(recorded, 3, "round {round}");
    }
    for store in sidecars {
        store.close().await;
    }
}

#[tokio::test]
async fn bus_presence_outbox_and_wake_ups() {
    let pg = PgDb::create("bus").await.unwrap();
    let expiry = Duration::from_secs(3);
    let a = Bus::connect(&pg.url(), 7, "A", expiry).await.unwrap();
    // A second connect (another sidecar) finds the schema there.
    let b = Bus::connect(&pg.url(), 7, "B", expiry).await.unwrap();
    assert_eq!(a.live_sidecars().await.unwrap(), vec!["A", "B"]);

    b.set_online(42).await.unwrap();
    assert_eq!(a.locate(42).await.unwrap().as_deref(), Some("B"));
    assert_eq!(a.locate(43).await.unwrap(), None);

    let mut listener = b.listen().await.unwrap();
    let id = a
        .publish("B", Some(42), &EventKind::Packets, b"\x00\x02\x01\x02")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), listener.notified())
        .await
        .expect("NOTIFY wakes the target")
        .expect("listener alive");
    assert!(
        b.pending(&[], 10).await.unwrap().is_empty(),
        "events wait for their character"
    );
    let pending = b.pending(&[42], 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(pending[0].character, Some(42));
    assert_eq!(pending[0].payload, b"\x00\x02\x01\x02");
    assert!(
        a.pending(&[42], 10).await.unwrap().is_empty(),
        "addressed to B only"
    );
    assert!(b.mark_delivered(id).await.unwrap());
    assert!(!b.mark_delivered(id).await.unwrap(), "delivered once");
    assert!(b.pending(&[42], 10).await.unwrap().is_empty());

    // A notice's wake-up carries it, to a sidecar whose id needs quoting too.
    let odd = r"O'Neil\2";
    let c = Bus::connect(&pg.url(), 7, odd, expiry).await.unwrap();
    let mut listener = c.listen().await.unwrap();
    let notice = Notice {
        id: 9,
        character: 42,
        payload: vec![0, 22, 0xBF, 1],
    };
    a.wake(odd, 42, Some(&notice), true).await.unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(5), listener.notified())
        .await
        .expect("NOTIFY wakes the target")
        .expect("listener alive");
    assert_eq!(
        woken,
        Wakeup::Notice {
            character: 42,
            ready: Some(notice),
            held: true,
        }
    );

    // Presence expires without heartbeats, and comes back with one.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(a.locate(42).await.unwrap(), None);
    b.heartbeat().await.unwrap();
    assert_eq!(a.locate(42).await.unwrap().as_deref(), Some("B"));
    b.set_offline(42).await.unwrap();
    assert_eq!(a.locate(42).await.unwrap(), None);

    // The outbox stays bounded: events older than the TTL leave it, delivered or not,
    // and the ones never delivered are counted as given up.
    let waiting = a
        .publish("B", Some(43), &EventKind::Packets, b"")
        .await
        .unwrap();
    let to_a = b
        .publish("A", Some(44), &EventKind::Packets, b"")
        .await
        .unwrap();
    let pg_client = pg.client().await.unwrap();
    let outbox = || async {
        pg_client
            .query("SELECT id FROM tc9_realm_7.outbox ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, i64>(0))
            .collect::<Vec<i64>>()
    };
    assert_eq!(outbox().await, vec![id, waiting, to_a]);
    assert_eq!(b.expire(Duration::from_secs(2)).await.unwrap(), 0);
    assert_eq!(
        outbox().await,
        vec![waiting, to_a],
        "old delivered event gone"
    );
    assert_eq!(b.expire(Duration::ZERO).await.unwrap(), 1, "one given up");
    assert_eq!(outbox().await, vec![to_a], "only B's own events go");
    assert_eq!(b.backlog().await.unwrap().0, 0);
}
