//! Per-session limits on what the sidecar answers: above AzerothCore's per-second
//! policy a flooding session is kicked (sign, query) or its packets dropped (show
//! signatures); a bystander on the same sidecar is answered as usual.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Result};
use tc9_codec::messages::{
    CmsgPetitionQuery, CmsgPetitionShowSignatures, CmsgPetitionSign, SmsgPetitionQueryResponse,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Opcode};
use tc9_sidecar::config::Config;
use tc9_testkit::{client_frame, start_sidecar, test_config, within, Gateway, MariaDb, World};

/// Waits for the start of the next wall-clock second: AzerothCore counts per second.
async fn next_second() {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - into) + 20)).await;
}

/// Sends `frame` `n` times in one write.
async fn flood(gateway: &mut Gateway, frame: &Frame, n: usize) -> Result<()> {
    for _ in 0..n {
        gateway.send_frame(frame).await?;
    }
    Ok(())
}

/// Frames `gateway` receives until it is closed (`true`) or quiet for 500 ms.
async fn answers(gateway: &mut Gateway) -> Result<(Vec<Frame>, bool)> {
    let mut frames = Vec::new();
    loop {
        match gateway.recv(Duration::from_millis(500)).await {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return Ok((frames, false)),
            Err(_) => return Ok((frames, true)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_limited_per_session() -> Result<()> {
    within(Duration::from_secs(60), "limited", limited()).await
}

async fn limited() -> Result<()> {
    let db = MariaDb::create("limits").await?;
    for guid in 1..=5 {
        db.character(guid, guid, &format!("Char{guid}"), 1).await?;
    }
    db.petition(1, 500, 500, "Floodgate").await?;
    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        characters_db_url: db.url(),
        ..test_config("A", world.addr)
    })
    .await?;
    let query = client_frame(&CmsgPetitionQuery {
        petition_id: 500,
        petition: Guid::item(500),
    });
    let mut bystander = Gateway::logged_in(sidecar.addr(), "bystander", 5).await?;

    // Queries: ten answered, then the session is kicked.
    let mut flooder = Gateway::logged_in(sidecar.addr(), "query flooder", 2).await?;
    next_second().await;
    flood(&mut flooder, &query, 40).await?;
    let started = Instant::now();
    bystander.send_frame(&query).await?;
    bystander
        .expect::<SmsgPetitionQueryResponse>("the bystander's query during the flood")
        .await?;
    let bystander_took = started.elapsed();
    let (frames, closed) = answers(&mut flooder).await?;
    ensure!(
        frames.len() == 10 && closed,
        "{} answers, closed {closed}",
        frames.len()
    );
    eprintln!(
        "query flood: 10 answered, then kicked; a bystander's answer took {bystander_took:?}"
    );
    ensure!(world.count(Opcode::CMSG_PETITION_QUERY) == 0);

    // Signatures: ten answered (one recorded), then kicked.
    let mut signer = Gateway::logged_in(sidecar.addr(), "sign flooder", 3).await?;
    let sign = client_frame(&CmsgPetitionSign {
        petition: Guid::item(500),
        unk: 1,
    });
    next_second().await;
    flood(&mut signer, &sign, 40).await?;
    let (frames, closed) = answers(&mut signer).await?;
    ensure!(
        frames.len() == 10 && closed,
        "{} answers, closed {closed}",
        frames.len()
    );
    ensure!(db.signers(500).await? == [3], "one signature row");

    // Show signatures: ten answered, the rest dropped, the session goes on.
    let mut viewer = Gateway::logged_in(sidecar.addr(), "show flooder", 4).await?;
    let show = client_frame(&CmsgPetitionShowSignatures {
        petition: Guid::item(500),
    });
    next_second().await;
    flood(&mut viewer, &show, 40).await?;
    let (frames, closed) = answers(&mut viewer).await?;
    ensure!(
        frames.len() == 10 && !closed,
        "{} answers, closed {closed}",
        frames.len()
    );
    viewer.echo(b"still here").await?;

    bystander.echo(b"unaffected").await?;
    sidecar.stop().await
}
