//! MariaDB cut in the middle of a session: signs fail open while it is away and resolve
//! again once it is back.

use super::*;

/// A sign the sidecar resolves: `SMSG_PETITION_SIGN_RESULTS` OK for `guid`, nothing
/// to the worldserver.
async fn expect_sign_resolved(
    gateway: &mut Gateway,
    world: &World,
    petition: u32,
    guid: u32,
) -> Result<()> {
    let before = world.count(Opcode::CMSG_PETITION_SIGN);
    gateway.send_frame(&sign(petition)).await?;
    let result = gateway
        .expect::<SmsgPetitionSignResults>("the sign is resolved")
        .await?;
    ensure!(
        result
            == SmsgPetitionSignResults {
                petition: Guid::item(petition),
                signer: Guid::player(guid),
                result: sign_result::OK,
            },
        "{}: {result:?}",
        gateway.who
    );
    let stray = gateway.fence().await?;
    ensure!(stray.is_empty(), "{}: also got {stray:?}", gateway.who);
    ensure!(
        world.count(Opcode::CMSG_PETITION_SIGN) == before,
        "{}: a resolved sign reached the worldserver",
        gateway.who
    );
    Ok(())
}

/// A sign that fails open: the worldserver gets the original within the resolve
/// timeout, the gateway is answered nothing, the session goes on.
async fn expect_sign_failed_open(
    gateway: &mut Gateway,
    world: &World,
    petition: u32,
) -> Result<Duration> {
    let took = world
        .expect_forwarded(gateway, &sign(petition), RESOLVE_TIMEOUT + SLACK)
        .await?;
    gateway
        .expect_silence(SILENCE, "a failed-open sign is not answered")
        .await?;
    Ok(took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cut_mid_session_fails_open() -> Result<()> {
    within(WHOLE_TEST, "mariadb cut", mariadb_cut()).await
}

async fn mariadb_cut() -> Result<()> {
    const CHARTER: u32 = 500;
    let db = MariaDb::create("fault_mysql").await?;
    for (guid, name) in [
        (1, "Owner"),
        (2, "Second"),
        (3, "Third"),
        (4, "Fourth"),
        (5, "Fifth"),
    ] {
        db.character(guid, guid, name, 1).await?;
    }
    db.petition(1, CHARTER, CHARTER, "Relayed").await?;
    let relay = Relay::start(MARIADB_ADDR).await?;
    let world = World::start().await?;
    // prefer_socket=false: else mysql_async moves to MariaDB's Unix socket and
    // around the relay.
    let config = Config {
        characters_db_url: format!(
            "mysql://root@{}/{}?prefer_socket=false",
            relay.addr, db.name
        ),
        ..base_config("F1", world.addr)
    };
    let sidecar = charter_sidecar(config, None).await?;

    let mut second = Gateway::logged_in(sidecar.addr(), "second 2", 2).await?;
    let mut third = Gateway::logged_in(sidecar.addr(), "third 3", 3).await?;
    expect_sign_resolved(&mut third, &world, CHARTER, 3).await?;
    ensure!(relay.accepted() > 0, "the sidecar bypassed the relay");

    // -- Blackhole: the database stops answering in the middle of the sessions.
    relay.cut(Cut::Blackhole).await?;
    let took = expect_sign_failed_open(&mut second, &world, CHARTER).await?;
    eprintln!("blackholed MariaDB: sign failed open after {took:?}");
    ensure!(
        took >= RESOLVE_TIMEOUT - Duration::from_millis(50),
        "failed open after {took:?}, before the resolve timeout: the database cannot have answered"
    );
    second.echo(b"the session stays open").await?;
    // A session opened during the outage passes traffic, and fails open too.
    let mut fourth = Gateway::logged_in(sidecar.addr(), "fourth 4 (during the outage)", 4).await?;
    fourth.echo(&[4; 3000]).await?;
    expect_sign_failed_open(&mut fourth, &world, CHARTER).await?;
    fourth.echo(b"still open").await?;
    third.echo(b"an older session too").await?;
    ensure!(
        db.signers(CHARTER).await? == [3],
        "no signature was written during the outage"
    );

    // -- Restored: resolved again, by the same pools, without a restart.
    relay.restore();
    expect_sign_resolved(&mut second, &world, CHARTER, 2).await?;
    expect_sign_resolved(&mut fourth, &world, CHARTER, 4).await?;

    // -- Refused: connections reset, new ones refused; failing open is quick.
    relay.cut(Cut::Refuse).await?;
    let mut fifth = Gateway::logged_in(sidecar.addr(), "fifth 5 (during the outage)", 5).await?;
    let took = expect_sign_failed_open(&mut fifth, &world, CHARTER).await?;
    eprintln!("refused MariaDB: sign failed open after {took:?}");
    fifth.echo(b"open").await?;
    second.echo(b"open").await?;
    relay.restore();
    expect_sign_resolved(&mut fifth, &world, CHARTER, 5).await?;

    ensure!(
        db.signers(CHARTER).await? == [2, 3, 4, 5],
        "one row per resolved sign"
    );
    ensure!(
        world.count(Opcode::CMSG_PETITION_SIGN) == 3,
        "exactly the three failed-open signs reached the worldserver"
    );
    ensure!(sidecar.is_running(), "the sidecar\'s server task ended");
    drop((second, third, fourth, fifth));
    sidecar.stop().await
}
