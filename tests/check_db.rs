//! Schema preflight: `tc9-sidecar check-db` (and the same check at start-up and on
//! `/health/ready`) against AzerothCore's real tables (passes), the older layout
//! without `petition_id` (named; the sidecar refuses to start), and a database that
//! lacks a table (named; that feature fails open).

use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{ensure, Result};
use tc9_sidecar::config::Config;
use tc9_testkit::{http_get, start_sidecar, test_config, within, MariaDb, World};

/// `check-db` against `db` as both the characters and the auth database.
fn check_db(db: &MariaDb) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_tc9-sidecar"))
        .args([
            "check-db",
            "--characters-db-url",
            &db.url(),
            "--auth-db-url",
            &db.url(),
        ])
        .env_remove("TC9_CHARACTERS_DB_URL")
        .env_remove("TC9_AUTH_DB_URL")
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    eprintln!("check-db exit {status}:\n{text}");
    (status.success(), text)
}

/// AzerothCore's own tables where `../shared` is there, else the test fixture.
async fn tables(tag: &str) -> Result<MariaDb> {
    match MariaDb::azerothcore(tag).await? {
        Some(db) => Ok(db),
        None => MariaDb::create(tag).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azerothcore_tables_pass() -> Result<()> {
    let Some(db) = MariaDb::azerothcore("check_db_real").await? else {
        return Ok(());
    };
    let (ok, text) = check_db(&db);
    ensure!(ok, "{text}");
    for key in ["characters_db_url", "auth_db_url"] {
        ensure!(text.contains(&format!("{key}: ok")), "{text}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layout_without_petition_id_is_named_and_refused() -> Result<()> {
    within(
        Duration::from_secs(60),
        "the old-layout check",
        old_layout(),
    )
    .await
}

async fn old_layout() -> Result<()> {
    let db = tables("check_db_old").await?;
    db.exec(
        "ALTER TABLE petition_sign DROP INDEX idx_petition_id_player, DROP COLUMN petition_id",
        (),
    )
    .await?;
    let (ok, text) = check_db(&db);
    ensure!(!ok, "check-db passed the old layout:\n{text}");
    ensure!(
        text.contains("characters_db_url: column `petition_sign`.`petition_id` is missing: the sidecar refuses to start"),
        "{text}"
    );
    ensure!(
        text.contains("no key on `petition_sign` (petition_id)"),
        "{text}"
    );
    let world = World::start().await?;
    let started = start_sidecar(Config {
        characters_db_url: db.url(),
        ..test_config("old-layout", world.addr)
    })
    .await;
    let error = format!(
        "{:#}",
        started.err().expect("a sidecar started on the old layout")
    );
    ensure!(
        error.contains("`petition_sign`.`petition_id` is missing"),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_named_and_fails_open() -> Result<()> {
    within(
        Duration::from_secs(60),
        "the missing-table check",
        missing_table(),
    )
    .await
}

async fn missing_table() -> Result<()> {
    let db = tables("check_db_missing").await?;
    db.exec("DROP TABLE guild_rank", ()).await?;
    let (ok, text) = check_db(&db);
    ensure!(ok, "a missing guild_rank refuses nothing:\n{text}");
    ensure!(
        text.contains("characters_db_url: table `guild_rank` is missing: guild queries fail open"),
        "{text}"
    );
    // The sidecar starts, and /health/ready names it.
    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        characters_db_url: db.url(),
        metrics: "127.0.0.1:0".into(),
        ..test_config("missing-table", world.addr)
    })
    .await?;
    let metrics = sidecar.metrics_addr().expect("metrics");
    let (status, ready) = http_get(metrics, "/health/ready").await?;
    ensure!(status == 503, "{status}: {ready}");
    ensure!(
        ready.contains("table `guild_rank` is missing: guild queries fail open"),
        "{ready}"
    );
    sidecar.stop().await
}
