//! A PostgreSQL database of its own for each test (a realm bus), and the bus's
//! presence rows as the tests read them.

use anyhow::{Context, Result};
use tokio::time::timeout;

use super::{run_detached, unique_name};
use crate::{POSTGRES, STEP};

/// Fails unless PostgreSQL answers within 3 s.
pub async fn postgres_reachable() -> Result<()> {
    let client = timeout(std::time::Duration::from_secs(3), pg_connect(POSTGRES))
        .await
        .context("PostgreSQL did not answer within 3 s")?
        .with_context(|| format!("PostgreSQL unreachable at {POSTGRES}"))?;
    drop(client);
    Ok(())
}

/// Connects to PostgreSQL; the connection runs on the current runtime.
pub async fn pg_connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = timeout(STEP, tokio_postgres::connect(url, tokio_postgres::NoTls))
        .await
        .context("PostgreSQL connect timed out")??;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A PostgreSQL database of its own (a realm bus) for one test, dropped (with
/// `FORCE`, whoever is still connected) when the guard is.
pub struct PgDb {
    /// The database's name.
    pub name: String,
}

impl PgDb {
    /// Creates the database.
    pub async fn create(tag: &str) -> Result<PgDb> {
        let name = unique_name(tag);
        let admin = pg_connect(POSTGRES).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .context("creating the PostgreSQL test database")?;
        Ok(PgDb { name })
    }

    /// The URL of the database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// A client of the database, for the test's own queries.
    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        pg_connect(&self.url()).await
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let dropped = run_detached(move || async move {
            let admin = pg_connect(POSTGRES).await?;
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .with_context(|| format!("dropping {name}"))
        });
        if let Err(e) = dropped {
            eprintln!("PostgreSQL test database cleanup failed: {e:#}");
        }
    }
}

/// The sidecar a realm-1 bus at `pg` places `character` behind, if any.
pub async fn located(pg: &tokio_postgres::Client, character: u32) -> Result<Option<String>> {
    let row = pg
        .query_opt(
            "SELECT sidecar_id FROM tc9_realm_1.online WHERE character_guid = $1",
            &[&i64::from(character)],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Waits until the bus at `pg` places `character` behind `sidecar`.
pub async fn wait_located(
    pg: &tokio_postgres::Client,
    character: u32,
    sidecar: &str,
) -> Result<()> {
    crate::eventually(
        &format!("character {character} online behind {sidecar}"),
        STEP,
        || async move { Ok((located(pg, character).await?.as_deref() == Some(sidecar)).then_some(())) },
    )
    .await
}
