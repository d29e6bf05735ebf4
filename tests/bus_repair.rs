//! The bus repairs itself: a sidecar whose PostgreSQL is refused at start, or lost
//! later, keeps serving (charter work fails open or goes on without the bus),
//! says on `/health/ready` that the bus is down, and once PostgreSQL answers again
//! reconnects with no restart and announces every character that entered the world
//! meanwhile. The outage is a relay the test owns.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use tc9_codec::messages::{CmsgOfferPetition, SmsgPetitionShowSignatures};
use tc9_codec::wire::Guid;
use tc9_sidecar::Sidecar;
use tc9_testkit::db::{located, wait_located};
use tc9_testkit::{
    eventually, http_get, metric_sum, within, BusRealm, Cut, Gateway, Relay, World, CHARTER,
    POSTGRES_ADDR, STEP,
};

/// How soon after PostgreSQL is back the bus must be repaired (backoff included).
const REPAIR_BOUND: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_recovers_from_outages_at_start_and_later() -> Result<()> {
    within(Duration::from_secs(60), "the repair test", repair()).await
}

/// `/health/ready`'s status, and whether it names the bus as down.
async fn readiness(metrics: SocketAddr) -> Result<(u16, bool)> {
    let (status, text) = http_get(metrics, "/health/ready").await?;
    Ok((
        status,
        text.lines()
            .any(|l| l.contains("bus: ") && !l.contains("bus: ok")),
    ))
}

/// Waits until the bus serves sidecar `metrics` again; how long that took.
async fn repaired(metrics: SocketAddr) -> Result<Duration> {
    let started = Instant::now();
    eventually("the bus repaired", REPAIR_BOUND, || async move {
        let up = bus_up(metrics).await?;
        let (status, bus_down) = readiness(metrics).await?;
        Ok((up && status == 200 && !bus_down).then_some(()))
    })
    .await?;
    Ok(started.elapsed())
}

fn offer(target: u32) -> CmsgOfferPetition {
    CmsgOfferPetition {
        unk: 0,
        petition: Guid::item(CHARTER),
        target: Guid::player(target),
    }
}

async fn repair() -> Result<()> {
    let realm = BusRealm::create("bus_repair").await?;
    let relay = Relay::start(POSTGRES_ADDR).await?;
    relay.cut(Cut::Refuse).await?;
    let (world_a, world_b) = (World::start().await?, World::start().await?);
    let a = realm.sidecar("A", &world_a, POSTGRES_ADDR).await?;
    let started = Instant::now();
    let b = realm
        .sidecar("B", &world_b, &relay.addr.to_string())
        .await?;
    eprintln!("B started in {:?} with its bus refused", started.elapsed());
    let metrics = b.metrics_addr().context("metrics")?;

    // Down at start: B serves, and says what is down.
    let mut target = Gateway::logged_in(b.addr(), "target 2 @B", 2).await?;
    target.echo(b"B passes traffic without its bus").await?;
    let (status, bus_down) = readiness(metrics).await?;
    ensure!(
        status == 503 && bus_down,
        "/health/ready {status}, bus named down: {bus_down}"
    );

    // Back: no restart, the character that entered meanwhile is announced.
    relay.restore();
    let took = repaired(metrics).await?;
    wait_located(&realm.observer, 2, "B").await?;
    eprintln!("bus repaired {took:?} after PostgreSQL came back at start");
    let mut owner = Gateway::logged_in(a.addr(), "owner 1 @A", 1).await?;
    owner.send(&offer(2)).await?;
    let shown = target
        .expect::<SmsgPetitionShowSignatures>("an offer across, after the repair")
        .await?;
    ensure!(shown.petition == Guid::item(CHARTER), "{shown:?}");

    // Lost later: a character entering now is announced once it is back.
    relay.cut(Cut::Refuse).await?;
    let lost = Instant::now();
    eventually("the bus seen down", STEP, || async move {
        let (_, text) = http_get(metrics, "/metrics").await?;
        let (status, bus_down) = readiness(metrics).await?;
        Ok(
            (metric_sum(&text, "tc9_sidecar_bus_up", &[]) == 0.0 && status == 503 && bus_down)
                .then_some(()),
        )
    })
    .await?;
    eprintln!("bus loss seen {:?} after the cut", lost.elapsed());
    let mut late = Gateway::logged_in(b.addr(), "target 3 @B", 3).await?;
    ensure!(located(&realm.observer, 3).await?.is_none());
    relay.restore();
    let took = repaired(metrics).await?;
    wait_located(&realm.observer, 3, "B").await?;
    eprintln!("bus repaired {took:?} after a later outage");
    owner.send(&offer(3)).await?;
    late.expect::<SmsgPetitionShowSignatures>("an offer across, after the second repair")
        .await?;
    let (_, text) = http_get(metrics, "/metrics").await?;
    let announced = metric_sum(&text, "tc9_sidecar_presence_reannounced_total", &[]);
    ensure!(announced >= 2.0, "presence re-announced {announced} times");
    drop((owner, target, late));
    a.stop().await?;
    b.stop().await
}

/// Characters logging in and out while the bus is lost and repaired again and
/// again: the bus is repaired soon after the last outage, and then places behind
/// B exactly the characters in the world there. The repair used to wait out a
/// backoff grown by the outages (the bus still down 5 s after the churn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_churned_through_repairs_matches_the_world() -> Result<()> {
    within(Duration::from_secs(60), "the churn test", churn()).await
}

/// Characters entering the world while the bus is slowed past the time limit and
/// back, again and again: the re-announcement then runs on the connections it
/// has, and every one of them ends up placed behind B. An update that landed
/// between the announcement's look at who is here and its replacing the bus's set
/// used to be undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_during_a_slow_bus_repair_are_all_placed() -> Result<()> {
    within(Duration::from_secs(60), "the slow-bus test", slow_repair()).await
}

/// Whether sidecar `metrics` has its bus up.
async fn bus_up(metrics: SocketAddr) -> Result<bool> {
    let (_, text) = http_get(metrics, "/metrics").await?;
    Ok(metric_sum(&text, "tc9_sidecar_bus_up", &[]) == 1.0)
}

/// A realm `tag` with sidecar B reaching its bus through a relay, the bus up;
/// B's metrics address.
async fn behind_relay(tag: &str) -> Result<(BusRealm, Relay, World, Sidecar, SocketAddr)> {
    let realm = BusRealm::create(tag).await?;
    let relay = Relay::start(POSTGRES_ADDR).await?;
    let world = World::start().await?;
    let b = realm.sidecar("B", &world, &relay.addr.to_string()).await?;
    let metrics = b.metrics_addr().context("metrics")?;
    repaired(metrics).await?;
    Ok((realm, relay, world, b, metrics))
}

async fn slow_repair() -> Result<()> {
    const ROUNDS: usize = 4;
    let (realm, relay, _world, b, metrics) = behind_relay("bus_slow").await?;
    let (mut inside, mut guid) = (Vec::new(), 1000);
    for _ in 0..ROUNDS {
        // Past the 500 ms time limit: an update and then the heartbeat fail, the
        // connections stay.
        relay.slow(Duration::from_millis(700));
        inside.push(Gateway::logged_in(b.addr(), &format!("{guid}"), guid).await?);
        guid += 1;
        eventually("the bus seen down", STEP, || async move {
            Ok((!bus_up(metrics).await?).then_some(()))
        })
        .await?;
        // Slow but in time: the repair runs while characters keep entering.
        relay.slow(Duration::from_millis(30));
        let mut after = 0;
        while after < 10 {
            inside.push(Gateway::logged_in(b.addr(), &format!("{guid}"), guid).await?);
            guid += 1;
            if bus_up(metrics).await? {
                after += 1;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    relay.slow(Duration::ZERO);
    let want: Vec<u32> = (1000..guid).collect();
    let (_, text) = http_get(metrics, "/metrics").await?;
    let announced = metric_sum(&text, "tc9_sidecar_presence_reannounced_total", &[]);
    eprintln!("{} logins through {announced} re-announcements", want.len());
    ensure!(
        announced >= ROUNDS as f64,
        "re-announced only {announced} times"
    );
    settled(&realm, &want).await?;
    drop(inside);
    b.stop().await
}

/// Waits until the bus places behind B exactly `want` among characters 1000..;
/// else names those lost and those brought back.
async fn settled(realm: &BusRealm, want: &[u32]) -> Result<()> {
    let done = eventually("the bus's presence settled", REPAIR_BOUND, || async move {
        Ok((placed_behind_b(realm).await? == want).then_some(()))
    })
    .await;
    if done.is_err() {
        let placed = placed_behind_b(realm).await?;
        let lost: Vec<_> = want.iter().filter(|c| !placed.contains(c)).collect();
        let extra: Vec<_> = placed.iter().filter(|c| !want.contains(c)).collect();
        anyhow::bail!("in the world but not placed: {lost:?}; placed but gone: {extra:?}");
    }
    Ok(())
}

/// Characters 1000.. in the world behind B, as the bus has them.
async fn placed_behind_b(realm: &BusRealm) -> Result<Vec<u32>> {
    let rows = realm
        .observer
        .query(
            "SELECT character_guid FROM tc9_realm_1.online
             WHERE sidecar_id = 'B' AND character_guid >= 1000 ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u32).collect())
}

async fn churn() -> Result<()> {
    const WORKERS: u32 = 8;
    const EACH: u32 = 5;
    const CHURN: Duration = Duration::from_secs(8);
    let (realm, relay, _world, b, metrics) = behind_relay("bus_churn").await?;
    let addr = b.addr();
    let until = Instant::now() + CHURN;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(async move {
                let mut held: Vec<Option<Gateway>> = (0..EACH).map(|_| None).collect();
                let mut moves = 0u32;
                while Instant::now() < until {
                    for (i, slot) in held.iter_mut().enumerate() {
                        let guid = 1000 + w * EACH + i as u32;
                        *slot = match slot.take() {
                            Some(_left) => None,
                            None => Some(Gateway::logged_in(addr, &format!("{guid}"), guid).await?),
                        };
                        moves += 1;
                    }
                }
                let inside: Vec<u32> = (0..EACH)
                    .filter(|&i| held[i as usize].is_some())
                    .map(|i| 1000 + w * EACH + i)
                    .collect();
                anyhow::Ok((inside, moves, held))
            })
        })
        .collect();
    let mut cuts = 0;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(600)).await;
        relay.cut(Cut::Refuse).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        relay.restore();
        cuts += 1;
    }
    let (mut want, mut moves, mut kept) = (Vec::new(), 0, Vec::new());
    for worker in workers {
        let (inside, n, held) = worker.await??;
        want.extend(inside);
        moves += n;
        kept.push(held);
    }
    want.sort_unstable();
    repaired(metrics).await?;
    let (_, text) = http_get(metrics, "/metrics").await?;
    let announced = metric_sum(&text, "tc9_sidecar_presence_reannounced_total", &[]);
    eprintln!("{moves} logins and logouts, {cuts} cuts, {announced} re-announcements");
    ensure!(
        announced >= 3.0,
        "presence re-announced only {announced} times"
    );
    settled(&realm, &want).await?;
    drop(kept);
    b.stop().await
}
