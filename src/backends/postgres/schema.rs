//! The realm schema (`tc9_realm_<id>`): created on start, idempotently and
//! versioned.

use super::{ident, Bus, BusError, SCHEMA_VERSION};

impl Bus {
    /// Creates the schema (version [`SCHEMA_VERSION`]) if it is not there.
    pub(super) async fn migrate(&self) -> Result<(), BusError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One sidecar at a time creates the schema.
        tx.execute("SELECT pg_advisory_xact_lock(9085001)", &[])
            .await?;
        let s = ident(&self.schema);
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value integer NOT NULL);
             CREATE TABLE IF NOT EXISTS {s}.sidecars (
                 sidecar_id text PRIMARY KEY,
                 heartbeat_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {s}.online (
                 character_guid bigint PRIMARY KEY,
                 sidecar_id text NOT NULL,
                 heartbeat_at timestamptz NOT NULL DEFAULT now());
             CREATE TABLE IF NOT EXISTS {s}.outbox (
                 id bigserial PRIMARY KEY,
                 target_sidecar text NOT NULL,
                 character_guid bigint,
                 kind text NOT NULL,
                 payload bytea NOT NULL,
                 created_at timestamptz NOT NULL DEFAULT now(),
                 delivered_at timestamptz);
             CREATE TABLE IF NOT EXISTS {s}.turn_in_lease (
                 id integer PRIMARY KEY,
                 holder text NOT NULL,
                 expires_at timestamptz NOT NULL);
             CREATE INDEX IF NOT EXISTS outbox_pending
                 ON {s}.outbox (target_sidecar, id) WHERE delivered_at IS NULL;"
        ))
        .await?;
        let row = tx
            .query_opt(
                &format!("SELECT value FROM {s}.meta WHERE key = 'version'"),
                &[],
            )
            .await?;
        match row.map(|r| r.get::<_, i32>(0)) {
            None => {
                tx.execute(
                    &format!("INSERT INTO {s}.meta (key, value) VALUES ('version', $1)"),
                    &[&SCHEMA_VERSION],
                )
                .await?;
            }
            Some(found) if found > SCHEMA_VERSION => {
                return Err(BusError::Version {
                    schema: self.schema.clone(),
                    found,
                })
            }
            Some(_) => {}
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops presence left by an earlier process with this sidecar's id: a sidecar
    /// that starts has no players yet.
    pub(super) async fn forget_presence(&self) -> Result<(), BusError> {
        let client = self.pool.get().await?;
        let s = ident(&self.schema);
        client
            .execute(
                &format!("DELETE FROM {s}.online WHERE sidecar_id = $1"),
                &[&self.sidecar],
            )
            .await?;
        Ok(())
    }

    /// Refreshes this sidecar's heartbeat and that of every character behind it.
    pub(super) async fn beat(&self) -> Result<(), BusError> {
        self.set_up().await?;
        let client = self.pool.get().await?;
        let s = ident(&self.schema);
        client
            .execute(
                &format!(
                    "INSERT INTO {s}.sidecars (sidecar_id) VALUES ($1)
                     ON CONFLICT (sidecar_id) DO UPDATE SET heartbeat_at = now()"
                ),
                &[&self.sidecar],
            )
            .await?;
        client
            .execute(
                &format!("UPDATE {s}.online SET heartbeat_at = now() WHERE sidecar_id = $1"),
                &[&self.sidecar],
            )
            .await?;
        Ok(())
    }
}
