//! Rows the sidecar does not expect never panic: text that is not UTF-8 is read
//! lossily, a column of another type fails that packet open, and the session lives;
//! a table gone from under the signing transaction leaves no transaction open.

use std::time::Duration;

use anyhow::{ensure, Result};
use tc9_charter::{Deliverer, Rules, SignVerdict};
use tc9_codec::messages::{CmsgPetitionQuery, CmsgPetitionSign, SmsgPetitionQueryResponse};
use tc9_codec::wire::Guid;
use tc9_codec::Opcode;
use tc9_sidecar::backends::mysql::Db;
use tc9_sidecar::config::Config;
use tc9_testkit::db::player;
use tc9_testkit::{start_sidecar, test_config, within, Gateway, MariaDb, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_rows_leave_the_session_alive() -> Result<()> {
    within(Duration::from_secs(60), "odd rows", odd_rows()).await
}

async fn odd_rows() -> Result<()> {
    let db = MariaDb::create("odd_rows").await?;
    db.character(1, 1, "Owner", 1).await?;
    db.character(2, 2, "Signer", 1).await?;
    // A realm whose charter names are bytes, one of them not UTF-8.
    db.exec(
        "ALTER TABLE petition MODIFY name VARBINARY(24) NOT NULL",
        (),
    )
    .await?;
    db.exec(
        "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) \
         VALUES (1, 500, 500, X'4261FF64', 9)",
        (),
    )
    .await?;
    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        characters_db_url: db.url(),
        ..test_config("A", world.addr)
    })
    .await?;
    let mut signer = Gateway::logged_in(sidecar.addr(), "signer", 2).await?;

    signer
        .send(&CmsgPetitionQuery {
            petition_id: 500,
            petition: Guid::item(500),
        })
        .await?;
    let answer = signer
        .expect::<SmsgPetitionQueryResponse>("a charter whose name is not UTF-8")
        .await?;
    ensure!(
        answer.name == "Ba\u{FFFD}d",
        "read lossily: {:?}",
        answer.name
    );

    // A realm whose characters' race is text: the signer cannot be judged, the sign
    // goes to the worldserver as it came.
    db.exec("ALTER TABLE characters MODIFY race VARCHAR(8) NOT NULL", ())
        .await?;
    db.exec("UPDATE characters SET race = 'x' WHERE guid = 2", ())
        .await?;
    let mut relogged = Gateway::logged_in(sidecar.addr(), "relogged", 2).await?;
    relogged.fence().await?;
    world
        .expect_forwarded(
            &mut relogged,
            &tc9_testkit::client_frame(&CmsgPetitionSign {
                petition: Guid::item(500),
                unk: 1,
            }),
            Duration::from_secs(3),
        )
        .await?;
    // Both sessions go on.
    relogged.echo(b"after a row of the wrong type").await?;
    signer.echo(b"after a name that is not UTF-8").await?;
    ensure!(world.count(Opcode::CMSG_PETITION_QUERY) == 0);
    ensure!(sidecar.is_running(), "the sidecar goes on");
    sidecar.stop().await
}

/// A signing transaction that fails after it took the charter's row lock (here a
/// table it reads is gone) leaves no transaction open on its pooled connection: the
/// next signer of that charter, on another sidecar, is not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_signing_transaction_is_rolled_back() {
    use mysql_async::prelude::Queryable;
    let db = MariaDb::create("store_rollback").await.unwrap();
    db.character(1, 1, "Owner", 1).await.unwrap();
    db.petition(1, 500, 42, "Rolled").await.unwrap();
    let store = Db::new(&db.url()).unwrap();
    let other = Db::new(&db.url()).unwrap();
    let rules = Rules::default();
    let seen = store.petition(500).await.unwrap().expect("the charter");
    db.exec("RENAME TABLE guild_member TO guild_member_gone", ())
        .await
        .unwrap();
    let failed = store
        .sign(
            seen.key(),
            &player(2, 20),
            false,
            &rules,
            &Deliverer::default(),
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    db.exec("RENAME TABLE guild_member_gone TO guild_member", ())
        .await
        .unwrap();
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        other.sign(
            seen.key(),
            &player(3, 30),
            false,
            &rules,
            &Deliverer::default(),
        ),
    )
    .await
    .expect("the next signer is not held up by an open transaction")
    .unwrap()
    .unwrap();
    assert!(matches!(next.verdict, SignVerdict::Record(_)), "{next:?}");
    let mut conn = db.pool.get_conn().await.unwrap();
    let open: Option<u64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.innodb_trx t \
             JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id \
             WHERE p.db = DATABASE()",
        )
        .await
        .unwrap();
    assert_eq!(open, Some(0), "no transaction is left open");
    assert_eq!(db.signers(500).await.unwrap(), vec![3]);
    drop(conn);
    store.close().await;
    other.close().await;
}
