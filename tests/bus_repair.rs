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
        let (_, text) = http_get(metrics, "/metrics").await?;
        let (status, bus_down) = readiness(metrics).await?;
        Ok(
            (metric_sum(&text, "tc9_sidecar_bus_up", &[]) == 1.0 && status == 200 && !bus_down)
                .then_some(()),
        )
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
