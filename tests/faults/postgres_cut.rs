//! PostgreSQL cut and back: no event is lost.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_and_back_loses_no_event() -> Result<()> {
    within(WHOLE_TEST, "postgres cut", postgres_cut()).await
}

async fn postgres_cut() -> Result<()> {
    // 500 of 1 (on A), 501 of 4 (on B), 502 of 2 (on B).
    const ALPHA: u32 = 500;
    const BETA: u32 = 501;
    const GAMMA: u32 = 502;
    let db = MariaDb::create("fault_pg").await?;
    for (guid, name) in [
        (1, "OwnerA"),
        (2, "TargetB"),
        (3, "SignerA"),
        (4, "OwnerB"),
        (5, "TargetA"),
    ] {
        db.character(guid, guid, name, 1).await?;
    }
    db.petition(1, ALPHA, ALPHA, "Alpha").await?;
    db.petition(4, BETA, BETA, "Beta").await?;
    db.petition(2, GAMMA, GAMMA, "Gamma").await?;
    let pg = PgDb::create("fault_pg").await?;
    let observer = pg.client().await?;
    let relay_a = Relay::start(POSTGRES_ADDR).await?;
    let relay_b = Relay::start(POSTGRES_ADDR).await?;
    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let sidecar = |id: &str, world: &World, relay: &Relay| {
        let config = Config {
            characters_db_url: db.url(),
            presence_expiry_secs: 30,
            bus_poll_ms: 150,
            ..base_config(id, world.addr)
        };
        let bus_url = format!("postgres://postgres@{}/{}", relay.addr, pg.name);
        async move { charter_sidecar(config, Some(&bus_url)).await }
    };
    let a = sidecar("A", &world_a, &relay_a).await?;
    let b = sidecar("B", &world_b, &relay_b).await?;
    let mut g1 = Gateway::logged_in(a.addr(), "owner 1 @A", 1).await?;
    let mut g3 = Gateway::logged_in(a.addr(), "signer 3 @A", 3).await?;
    let mut g5 = Gateway::logged_in(a.addr(), "target 5 @A", 5).await?;
    let mut g2 = Gateway::logged_in(b.addr(), "target 2 @B", 2).await?;
    let mut g4 = Gateway::logged_in(b.addr(), "owner 4 @B", 4).await?;
    for (guid, at) in [(1, "A"), (3, "A"), (5, "A"), (2, "B"), (4, "B")] {
        wait_located(&observer, guid, at).await?;
    }
    let shown_alpha = server_frame(&SmsgPetitionShowSignatures {
        petition: Guid::item(ALPHA),
        owner: Guid::player(1),
        petition_id: ALPHA,
        signatures: Vec::new(),
    });

    // Before any cut: an offer crosses through the bus.
    g1.send_frame(&offer(ALPHA, 2)).await?;
    let first = g2.recv(STEP).await?.context("the first offer")?;
    ensure!(first.as_bytes() == shown_alpha.as_bytes(), "{first:?}");
    eventually("the first offer marked delivered", STEP, || async {
        Ok((db.notices().await? == [(2, true)]).then_some(()))
    })
    .await?;

    // -- B's bus is cut: its pool and its LISTEN connection are reset, and stay down.
    relay_b.cut(Cut::Refuse).await?;
    // A's bus is up: A sends two offers to 2 and a sign result to 4, both on B.
    for _ in 0..2 {
        g1.send_frame(&offer(ALPHA, 2)).await?;
    }
    ensure!(
        g1.fence().await?.is_empty(),
        "the offerer is answered nothing"
    );
    g3.send_frame(&sign(BETA)).await?;
    let signed = g3.expect::<SmsgPetitionSignResults>("3 signs 501").await?;
    ensure!(signed.result == sign_result::OK, "{signed:?}");
    ensure!(g3.fence().await?.is_empty());
    // Notices live in the characters database: B delivers them with its bus cut.
    for n in 1..=2 {
        let frame = g2
            .recv(STEP)
            .await?
            .with_context(|| format!("offer {n} with B's bus cut"))?;
        ensure!(frame.as_bytes() == shown_alpha.as_bytes(), "{frame:?}");
    }
    let told = g4
        .expect::<SmsgPetitionSignResults>("the owner hears of the signature")
        .await?;
    ensure!(told == signed, "{told:?}");
    // B cannot locate 5: its cross-server offer fails open, unchanged.
    let took = world_b
        .expect_forwarded(&mut g2, &offer(GAMMA, 5), RESOLVE_TIMEOUT + SLACK)
        .await?;
    eprintln!("B's offer with its bus refused failed open after {took:?}");

    // -- A's bus goes into a blackhole too: A's cross-server offer fails open after
    // the resolve timeout.
    relay_a.cut(Cut::Blackhole).await?;
    let took = world_a
        .expect_forwarded(&mut g1, &offer(ALPHA, 2), RESOLVE_TIMEOUT + SLACK)
        .await?;
    eprintln!("A's offer with its bus blackholed failed open after {took:?}");
    g1.echo(b"A's sessions pass traffic").await?;
    g5.echo(b"A's sessions pass traffic").await?;
    g4.echo(b"B's sessions pass traffic").await?;

    // -- Both come back: nothing is delivered twice, nor the offer that failed open.
    relay_a.restore();
    relay_b.restore();
    let extra = g2.drain(Duration::from_secs(1)).await?;
    ensure!(extra.is_empty(), "delivered again: {extra:?}");
    let extra = g4.drain(SILENCE).await?;
    ensure!(extra.is_empty(), "delivered again: {extra:?}");
    ensure!(db.notices().await? == [(2, true), (2, true), (2, true), (4, true)]);

    // -- Both buses work again, both ways.
    g2.send_frame(&offer(GAMMA, 5)).await?;
    let shown = g5
        .expect::<SmsgPetitionShowSignatures>("B's offer reaches 5 on A")
        .await?;
    ensure!(shown.petition == Guid::item(GAMMA), "{shown:?}");
    g1.send_frame(&offer(ALPHA, 2)).await?;
    let again = g2.recv(STEP).await?.context("an offer after the restore")?;
    ensure!(again.as_bytes() == shown_alpha.as_bytes(), "{again:?}");
    ensure!(g2.drain(SILENCE).await?.is_empty());
    ensure!(g5.drain(SILENCE).await?.is_empty());
    eventually("every notice delivered", STEP, || async {
        let notices = db.notices().await?;
        Ok((notices.len() == 6 && notices.iter().all(|(_, delivered)| *delivered)).then_some(()))
    })
    .await?;
    ensure!(
        world_a.count(Opcode::CMSG_OFFER_PETITION) == 1
            && world_b.count(Opcode::CMSG_OFFER_PETITION) == 1,
        "exactly the two failed-open offers reached a worldserver"
    );
    ensure!(world_a.count(Opcode::CMSG_PETITION_SIGN) == 0);
    ensure!(a.is_running(), "the sidecar\'s server task ended");
    ensure!(b.is_running(), "the sidecar\'s server task ended");
    drop((g1, g2, g3, g4, g5));
    a.stop().await?;
    b.stop().await
}
