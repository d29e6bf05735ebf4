//! Notifications that are never lost: a committed signature's notice to the
//! charter's owner is recorded with the signature (in the characters database),
//! reaches the owner exactly once wherever the owner is next online, and is marked
//! delivered only once written to the owner's socket. Real MariaDB and PostgreSQL;
//! every outage is made by a relay the test owns.
//!
//! - `signatures_reach_their_owner_through_bus_outages`: PostgreSQL refused and
//!   blackholed on either side while signers sign: every signer answered at once,
//!   the owner told each signature once.
//! - `committed_signatures_survive_a_crash_and_a_move`: the signer's sidecar (a
//!   process) is killed with SIGKILL right after the answer; the owner, moving to
//!   another sidecar, is told everything once.
//! - `a_stuck_client_delays_nobody`: a character that stops reading, with 80
//!   notices waiting, delays no other character's delivery on the same sidecar; its
//!   own notices stay undelivered until it reads again.
//! - `a_poisoned_notice_blocks_nothing`: an undecodable row is set aside and counted.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use tc9_charter::{CLAIM_HOLD, HELD_HOLD};
use tc9_codec::messages::petition::sign_result;
use tc9_codec::messages::{CmsgPetitionSign, MsgPetitionDeclineClient, SmsgPetitionSignResults};
use tc9_codec::wire::Guid;
use tc9_codec::Opcode;
use tc9_testkit::db::wait_located;
use tc9_testkit::{
    client, eventually, http_get, metric_sum, within, BusRealm, Cut, Gateway, MariaDb, Relay,
    World, CHARTER, POSTGRES_ADDR, STEP,
};
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(60);
/// A signer's answer with the bus down may take this long at most: it never waits
/// on the bus (the resolve timeout is 500 ms).
const ANSWER_BOUND: Duration = Duration::from_millis(400);

fn sign(charter: u32) -> CmsgPetitionSign {
    CmsgPetitionSign {
        petition: Guid::item(charter),
        unk: 1,
    }
}

/// Waits until every metric of `expected` reads its value (gauges follow a poll).
async fn gauges_read(metrics: std::net::SocketAddr, expected: &[(&str, f64)]) -> Result<()> {
    eventually("the backlog gauges", STEP, || async move {
        let (_, text) = http_get(metrics, "/metrics").await?;
        Ok(expected
            .iter()
            .all(|(name, value)| metric_sum(&text, name, &[]) == *value)
            .then_some(()))
    })
    .await
}

/// Character 1's notices not delivered yet.
async fn waiting(db: &MariaDb) -> Result<usize> {
    Ok(db
        .notices()
        .await?
        .iter()
        .filter(|n| n.0 == 1 && !n.1)
        .count())
}

/// Signs and returns the answer and how long it took.
async fn signed(signer: &mut Gateway, charter: u32) -> Result<(SmsgPetitionSignResults, Duration)> {
    let started = Instant::now();
    signer.send(&sign(charter)).await?;
    let answer = signer
        .expect::<SmsgPetitionSignResults>("the signer's answer")
        .await?;
    Ok((answer, started.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_reach_their_owner_through_bus_outages() -> Result<()> {
    within(WHOLE_TEST, "bus outages", bus_outages()).await
}

async fn bus_outages() -> Result<()> {
    let realm = BusRealm::create("notice_bus").await?;
    let (relay_a, relay_b) = (
        Relay::start(POSTGRES_ADDR).await?,
        Relay::start(POSTGRES_ADDR).await?,
    );
    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let a = realm
        .sidecar("A", &world_a, &relay_a.addr.to_string())
        .await?;
    let b = realm
        .sidecar("B", &world_b, &relay_b.addr.to_string())
        .await?;
    let mut owner = Gateway::logged_in(b.addr(), "owner 1 @B", 1).await?;
    let mut signers = Vec::new();
    for guid in 2..=5 {
        signers.push(Gateway::logged_in(a.addr(), &format!("signer {guid} @A"), guid).await?);
    }
    wait_located(&realm.observer, 1, "B").await?;

    // (phase, A's bus, B's bus): each signer signs under one of them.
    let phases = [
        ("B's bus refused", None, Some(Cut::Refuse)),
        ("both buses down", Some(Cut::Blackhole), Some(Cut::Refuse)),
        (
            "A refused, B blackholed",
            Some(Cut::Refuse),
            Some(Cut::Blackhole),
        ),
        ("both back", None, None),
    ];
    for ((phase, cut_a, cut_b), signer) in phases.into_iter().zip(&mut signers) {
        relay_a.restore();
        relay_b.restore();
        for (relay, cut) in [(&relay_a, cut_a), (&relay_b, cut_b)] {
            if let Some(cut) = cut {
                relay.cut(cut).await?;
            }
        }
        let (answer, took) = signed(signer, CHARTER).await?;
        ensure!(answer.result == sign_result::OK, "{phase}: {answer:?}");
        ensure!(took < ANSWER_BOUND, "{phase}: the signer waited {took:?}");
        let started = Instant::now();
        let told = owner.expect::<SmsgPetitionSignResults>(phase).await?;
        ensure!(told == answer, "{phase}: the owner was told {told:?}");
        eprintln!(
            "{phase}: signer answered in {took:?}, owner told {:?} later",
            started.elapsed()
        );
    }
    relay_a.restore();
    relay_b.restore();
    // Exactly once: nothing more over several polls.
    let extra = owner.drain(Duration::from_secs(1)).await?;
    ensure!(extra.is_empty(), "told again: {extra:?}");
    ensure!(realm.db.signers(CHARTER).await? == [2, 3, 4, 5]);
    ensure!(
        realm.db.notices().await? == vec![(1, true); 4],
        "every notice marked delivered"
    );
    ensure!(
        world_a.count(Opcode::CMSG_PETITION_SIGN) == 0,
        "a committed sign was also forwarded"
    );
    drop((owner, signers));
    a.stop().await?;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_signatures_survive_a_crash_and_a_move() -> Result<()> {
    within(WHOLE_TEST, "crash and move", crash_and_move()).await
}

async fn crash_and_move() -> Result<()> {
    let realm = BusRealm::create("notice_crash").await?;
    let (world_a, world_b, world_c) = (
        World::start().await?,
        World::start().await?,
        World::start().await?,
    );
    let pg = POSTGRES_ADDR.to_owned();
    let a = realm
        .process(env!("CARGO_BIN_EXE_tc9-sidecar"), "A", &world_a, &pg, 150)
        .await?;
    let b = realm.sidecar("B", &world_b, &pg).await?;
    let c = realm.sidecar("C", &world_c, &pg).await?;
    let mut owner = Gateway::logged_in(b.addr(), "owner 1 @B", 1).await?;
    let mut signer = Gateway::logged_in(a.addr, "signer 2 @A", 2).await?;
    wait_located(&realm.observer, 1, "B").await?;

    // The answer means the commit: its notice is already recorded. A dies at once.
    let (answer, _) = signed(&mut signer, CHARTER).await?;
    ensure!(answer.result == sign_result::OK, "{answer:?}");
    let recorded = realm.db.notices().await?;
    a.kill().await?;
    ensure!(
        recorded.len() == 1 && recorded[0].0 == 1,
        "the notice came with the commit: {recorded:?}"
    );
    let told = owner
        .expect::<SmsgPetitionSignResults>("after A's crash")
        .await?;
    ensure!(told == answer, "{told:?}");

    // The owner leaves; two signatures through C while the owner is offline.
    drop(owner);
    let mut late = Vec::new();
    for guid in [3, 4] {
        let mut signer = Gateway::logged_in(c.addr(), &format!("signer {guid} @C"), guid).await?;
        late.push(signed(&mut signer, CHARTER).await?.0);
    }
    // The owner comes back through C, another sidecar: told each once.
    let mut owner = Gateway::logged_in(c.addr(), "owner 1 @C", 1).await?;
    for (n, expected) in late.iter().enumerate() {
        let told = owner
            .expect::<SmsgPetitionSignResults>(&format!("late signature {n}"))
            .await?;
        ensure!(&told == expected, "{told:?}");
    }
    let extra = owner.drain(Duration::from_secs(1)).await?;
    ensure!(extra.is_empty(), "told again: {extra:?}");
    ensure!(realm.db.notices().await? == vec![(1, true); 3]);
    ensure!(realm.db.signers(CHARTER).await? == [2, 3, 4]);
    drop(owner);
    b.stop().await?;
    c.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_held_for_a_dead_sidecar_reaches_the_owner_elsewhere() -> Result<()> {
    within(WHOLE_TEST, "dead deliverer", dead_deliverer()).await
}

/// The owner plays behind B, so A claims the notice for B as it records it; B never
/// hears (its bus is cut, its poll far off) and dies. The owner comes back through
/// C, which may claim the notice once a held notice's short hold ends, well before
/// a delivery claim's would.
async fn dead_deliverer() -> Result<()> {
    let realm = BusRealm::create("notice_dead").await?;
    let relay_b = Relay::start(POSTGRES_ADDR).await?;
    let (world_a, world_b, world_c) = (
        World::start().await?,
        World::start().await?,
        World::start().await?,
    );
    let pg = POSTGRES_ADDR.to_owned();
    let a = realm.sidecar("A", &world_a, &pg).await?;
    let bus_b = relay_b.addr.to_string();
    let b = realm
        .process(
            env!("CARGO_BIN_EXE_tc9-sidecar"),
            "B",
            &world_b,
            &bus_b,
            60_000,
        )
        .await?;
    let c = realm.sidecar("C", &world_c, &pg).await?;
    let owner = Gateway::logged_in(b.addr, "owner 1 @B", 1).await?;
    let mut signer = Gateway::logged_in(a.addr(), "signer 2 @A", 2).await?;
    wait_located(&realm.observer, 1, "B").await?;

    relay_b.cut(Cut::Blackhole).await?;
    let (answer, _) = signed(&mut signer, CHARTER).await?;
    ensure!(answer.result == sign_result::OK, "{answer:?}");
    b.kill().await?;
    drop(owner);
    let started = Instant::now();
    let mut owner = Gateway::logged_in(c.addr(), "owner 1 @C", 1).await?;
    let told = owner.expect::<SmsgPetitionSignResults>("through C").await?;
    let waited = started.elapsed();
    ensure!(told == answer, "{told:?}");
    ensure!(
        waited < CLAIM_HOLD,
        "held back {waited:?}; a held notice is held for {HELD_HOLD:?}"
    );
    let extra = owner.drain(Duration::from_secs(1)).await?;
    ensure!(extra.is_empty(), "told again: {extra:?}");
    ensure!(realm.db.notices().await? == vec![(1, true)]);
    drop((owner, signer));
    a.stop().await?;
    c.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_delays_nobody() -> Result<()> {
    within(WHOLE_TEST, "stuck client", stuck_client()).await
}

async fn stuck_client() -> Result<()> {
    const DECLINES: usize = 80;
    /// Another character's delivery next to the stuck one may take this long.
    const BYSTANDER_BOUND: Duration = Duration::from_millis(750);
    let realm = BusRealm::create("notice_stuck").await?;
    realm.db.petition(5, 601, 601, "Bystander").await?;
    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let pg = POSTGRES_ADDR.to_owned();
    let a = realm.sidecar("A", &world_a, &pg).await?;
    let b = realm.sidecar("B", &world_b, &pg).await?;
    let stuck = Gateway::logged_in(b.addr(), "stuck owner 1 @B", 1).await?;
    let mut bystander = Gateway::logged_in(b.addr(), "owner 5 @B", 5).await?;
    let mut decliner = Gateway::logged_in(a.addr(), "decliner 2 @A", 2).await?;
    let mut signer = Gateway::logged_in(a.addr(), "signer 3 @A", 3).await?;
    wait_located(&realm.observer, 1, "B").await?;
    wait_located(&realm.observer, 5, "B").await?;

    // Owner 1 stops reading while its worldserver echoes a flood back at it.
    let (_reader, mut writer) = stuck.into_parts();
    let flood = client(Opcode::CMSG_GUILD_ROSTER, &[0x5A; 4000]);
    while timeout(
        Duration::from_millis(500),
        writer.write_all(flood.as_bytes()),
    )
    .await
    .is_ok()
    {}
    for _ in 0..DECLINES {
        decliner
            .send(&MsgPetitionDeclineClient {
                petition: Guid::item(CHARTER),
            })
            .await?;
    }
    ensure!(decliner.fence().await?.is_empty());
    let (answer, _) = signed(&mut signer, 601).await?;
    let started = Instant::now();
    let told = bystander
        .expect::<SmsgPetitionSignResults>("next to a stuck client")
        .await?;
    let delay = started.elapsed();
    eprintln!("a bystander was told in {delay:?} next to a stuck client with {DECLINES} notices");
    ensure!(
        told == answer && delay < BYSTANDER_BOUND,
        "{told:?} after {delay:?}"
    );

    // The stuck owner's notices are waiting, not delivered, and the gauge says so.
    ensure!(
        waiting(&realm.db).await? == DECLINES,
        "the stuck owner's notices stay undelivered"
    );
    let metrics = b.metrics_addr().context("metrics")?;
    gauges_read(metrics, &[("tc9_sidecar_outbox_pending", DECLINES as f64)]).await?;

    // It leaves and comes back reading: every notice once, in order.
    drop((_reader, writer));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut owner = Gateway::logged_in(b.addr(), "owner 1 @B again", 1).await?;
    for n in 0..DECLINES {
        let frame = owner
            .recv(STEP)
            .await?
            .with_context(|| format!("decline {n}"))?;
        ensure!(frame.opcode() == Opcode::MSG_PETITION_DECLINE, "{frame:?}");
    }
    let extra = owner.drain(Duration::from_secs(1)).await?;
    ensure!(extra.is_empty(), "delivered twice: {extra:?}");
    ensure!(waiting(&realm.db).await? == 0);
    drop((owner, bystander, decliner, signer));
    a.stop().await?;
    b.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_notice_blocks_nothing() -> Result<()> {
    within(WHOLE_TEST, "poisoned", poisoned()).await
}

async fn poisoned() -> Result<()> {
    let realm = BusRealm::create("notice_poison").await?;
    let world = World::start().await?;
    let b = realm.sidecar("B", &world, POSTGRES_ADDR).await?;
    let mut signer = Gateway::logged_in(b.addr(), "signer 2 @B", 2).await?;
    // The first sign creates the notice table; its notice waits for the offline owner.
    let (first, _) = signed(&mut signer, CHARTER).await?;
    for garbage in [
        &b"\x00\x05\xff"[..],
        &[0u8; 0][..],
        &[0x00, 0x02, 0x4A, 0x01, 0x99, 0x99][..],
    ] {
        realm
            .db
            .exec(
                "INSERT INTO tc9_sidecar_notice (character_guid, payload) VALUES (1, ?)",
                (garbage.to_vec(),),
            )
            .await?;
    }
    let mut signer = Gateway::logged_in(b.addr(), "signer 3 @B", 3).await?;
    let (second, _) = signed(&mut signer, CHARTER).await?;
    let mut owner = Gateway::logged_in(b.addr(), "owner 1 @B", 1).await?;
    for expected in [first, second] {
        let told = owner
            .expect::<SmsgPetitionSignResults>("past the poisoned rows")
            .await?;
        ensure!(told == expected, "{told:?}");
    }
    ensure!(owner.drain(Duration::from_millis(500)).await?.is_empty());
    let metrics = b.metrics_addr().context("metrics")?;
    let expected = [
        ("tc9_sidecar_notices_set_aside_total", 3.0),
        ("tc9_sidecar_notices_set_aside", 3.0),
        ("tc9_sidecar_outbox_pending", 0.0),
    ];
    gauges_read(metrics, &expected).await?;
    drop((owner, signer));
    b.stop().await
}
