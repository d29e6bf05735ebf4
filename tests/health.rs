//! `/health/ready` names what is down without the credentials of its address.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tc9_sidecar::config::Config;
use tc9_testkit::{http_get, start_sidecar, test_config, within, World};

/// A password no text the sidecar serves may hold.
const SECRET: &str = "s3cret-Pa55";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_hides_database_credentials() -> Result<()> {
    within(Duration::from_secs(60), "the readiness check", readiness()).await
}

async fn readiness() -> Result<()> {
    let world = World::start().await?;
    // MariaDB refuses this account; nothing listens on port 9 for PostgreSQL.
    let sidecar = start_sidecar(Config {
        characters_db_url: format!("mysql://tc9_nobody:{SECRET}@127.0.0.1:3306/tc9_none"),
        auth_db_url: format!("mysql://tc9_nobody:{SECRET}@127.0.0.1:9/tc9_none"),
        bus_url: format!("postgres://tc9_nobody:{SECRET}@127.0.0.1:9/tc9_none"),
        metrics: "127.0.0.1:0".into(),
        ..test_config("A", world.addr)
    })
    .await?;
    let metrics = sidecar.metrics_addr().context("metrics are configured")?;
    let (status, ready) = http_get(metrics, "/health/ready").await?;
    eprintln!("/health/ready {status}:\n{ready}");
    ensure!(status == 503, "not ready with its databases down: {status}");
    for down in ["characters_db: ", "auth_db: ", "bus: "] {
        ensure!(ready.contains(down), "{down:?} is not named in {ready:?}");
    }
    for (path, text) in [
        ("/health/ready", ready),
        ("/health/live", http_get(metrics, "/health/live").await?.1),
        ("/metrics", http_get(metrics, "/metrics").await?.1),
    ] {
        ensure!(!text.contains(SECRET), "{path} shows the password: {text}");
    }
    sidecar.stop().await
}
