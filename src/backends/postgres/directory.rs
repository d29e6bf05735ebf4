//! The realm directory and outbox operations of [`Bus`], as the charter's
//! [`Directory`].

use std::time::Duration;

use futures::StreamExt;
use tc9_charter::{BackendError, Directory, Event, EventKind, Listener, Notice};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, Row};
use tracing::{debug, warn};

use super::wake::{notice_wake, woken_for};
use super::{ident, op, Bus, BusError};

impl Directory for Bus {
    /// Refreshes this sidecar's heartbeat and that of every character behind it.
    async fn heartbeat(&self) -> Result<(), BackendError> {
        op("heartbeat", self.beat()).await
    }

    /// Records that `character` now plays behind this sidecar.
    async fn set_online(&self, character: u32) -> Result<(), BackendError> {
        op("set_online", async move {
            self.execute_cached(
                "INSERT INTO {s}.online (character_guid, sidecar_id) VALUES ($1, $2)
                         ON CONFLICT (character_guid)
                         DO UPDATE SET sidecar_id = $2, heartbeat_at = now()",
                &[&i64::from(character), &self.sidecar],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Records that `character` left this sidecar (unless it moved to another since).
    async fn set_offline(&self, character: u32) -> Result<(), BackendError> {
        op("set_offline", async move {
            self.execute_cached(
                "DELETE FROM {s}.online WHERE character_guid = $1 AND sidecar_id = $2",
                &[&i64::from(character), &self.sidecar],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The sidecar `character` plays behind, if its presence is fresh.
    async fn locate(&self, character: u32) -> Result<Option<String>, BackendError> {
        op("locate", async move {
            let expiry = self.expiry.as_secs_f64();
            let row = self
                .rows(
                    "SELECT sidecar_id FROM {s}.online
                         WHERE character_guid = $1
                           AND heartbeat_at > now() - make_interval(secs => $2)",
                    &[&i64::from(character), &expiry],
                )
                .await?
                .into_iter()
                .next();
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// Every sidecar whose heartbeat is fresh, this one included.
    async fn live_sidecars(&self) -> Result<Vec<String>, BackendError> {
        op("live_sidecars", async move {
            let rows = self
                .rows(
                    "SELECT sidecar_id FROM {s}.sidecars
                     WHERE heartbeat_at > now() - make_interval(secs => $1)
                     ORDER BY sidecar_id",
                    &[&self.expiry.as_secs_f64()],
                )
                .await?;
            Ok(rows.into_iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Adds an event for `target` and wakes it; returns the event id.
    async fn publish(
        &self,
        target: &str,
        character: Option<u32>,
        kind: &EventKind,
        payload: &[u8],
    ) -> Result<i64, BackendError> {
        op("publish", async move {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_one(
                    &self.in_schema(
                        "INSERT INTO {s}.outbox (target_sidecar, character_guid, kind, payload)
                         VALUES ($1, $2, $3, $4) RETURNING id",
                    ),
                    &[&target, &character.map(i64::from), &kind.as_str(), &payload],
                )
                .await?;
            let id: i64 = row.get(0);
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&self.channel(target), &id.to_string()],
            )
            .await?;
            tx.commit().await?;
            Ok(id)
        })
        .await
    }

    /// Undelivered events addressed to this sidecar that can be applied now (for no
    /// character, or for one of `characters`), oldest first.
    async fn pending(&self, characters: &[u32], limit: i64) -> Result<Vec<Event>, BackendError> {
        let characters: Vec<i64> = characters.iter().map(|&c| i64::from(c)).collect();
        op("pending", async move {
            let rows = self
                .rows(
                    "SELECT id, character_guid, kind, payload FROM {s}.outbox
                         WHERE target_sidecar = $1 AND delivered_at IS NULL
                           AND (character_guid IS NULL OR character_guid = ANY($3))
                         ORDER BY id LIMIT $2",
                    &[&self.sidecar, &limit, &characters],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(|r| Event {
                    id: r.get(0),
                    character: r
                        .get::<_, Option<i64>>(1)
                        .and_then(|g| u32::try_from(g).ok()),
                    kind: EventKind::parse(r.get(2)),
                    payload: r.get(3),
                })
                .collect())
        })
        .await
    }

    /// Marks an event delivered; false if it already was.
    async fn mark_delivered(&self, id: i64) -> Result<bool, BackendError> {
        op("mark_delivered", async move {
            let n = self
                .execute_cached(
                    "UPDATE {s}.outbox SET delivered_at = now()
                         WHERE id = $1 AND delivered_at IS NULL",
                    &[&id],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    /// Deletes this sidecar's events created more than `age` ago, delivered or not,
    /// so the outbox stays bounded; returns how many of them were never delivered
    /// (given up: their character never came online here).
    async fn expire(&self, age: Duration) -> Result<u64, BackendError> {
        op("expire", async move {
            let rows = self
                .rows(
                    "DELETE FROM {s}.outbox
                         WHERE target_sidecar = $1
                           AND created_at < now() - make_interval(secs => $2)
                         RETURNING delivered_at IS NULL",
                    &[&self.sidecar, &age.as_secs_f64()],
                )
                .await?;
            Ok(rows.iter().filter(|row| row.get::<_, bool>(0)).count() as u64)
        })
        .await
    }

    /// Undelivered events of this sidecar and the age in seconds of the oldest.
    async fn backlog(&self) -> Result<(i64, f64), BackendError> {
        op("backlog", async move {
            let rows = self
                .rows(
                    "SELECT count(*),
                            COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
                     FROM {s}.outbox WHERE target_sidecar = $1 AND delivered_at IS NULL",
                    &[&self.sidecar],
                )
                .await?;
            let Some(row) = rows.first() else {
                return Ok((0, 0.0));
            };
            Ok((row.get(0), row.get(1)))
        })
        .await
    }

    /// Notifies `sidecar`'s channel with the character's wake-up.
    async fn wake(
        &self,
        sidecar: &str,
        character: u32,
        ready: Option<&Notice>,
        held: bool,
    ) -> Result<(), BackendError> {
        op("wake", async move {
            self.execute_cached(
                "SELECT pg_notify($1, $2)",
                &[&self.channel(sidecar), &notice_wake(character, ready, held)],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Replaces this sidecar's presence with `characters`, in one transaction.
    async fn announce(&self, characters: &[u32]) -> Result<(), BackendError> {
        let characters: Vec<i64> = characters.iter().map(|&c| i64::from(c)).collect();
        op("announce", async move {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            tx.execute(
                &self.in_schema(
                    "DELETE FROM {s}.online WHERE sidecar_id = $1 AND NOT character_guid = ANY($2)",
                ),
                &[&self.sidecar, &characters],
            )
            .await?;
            tx.execute(
                &self.in_schema(
                    "INSERT INTO {s}.online (character_guid, sidecar_id)
                     SELECT unnest($2::bigint[]), $1
                     ON CONFLICT (character_guid)
                     DO UPDATE SET sidecar_id = $1, heartbeat_at = now()",
                ),
                &[&self.sidecar, &characters],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Opens a dedicated connection listening on this sidecar's channel.
    async fn listen(&self) -> Result<Listener, BackendError> {
        op("listen", async move {
            let (client, mut connection) = self.config.connect(NoTls).await?;
            let (wake, woken) = mpsc::channel(256);
            tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(AsyncMessage::Notification(n)) => {
                            // A full channel is drained by a poll soon anyway.
                            let _ = wake.try_send(woken_for(n.payload()));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            warn!(error = %e, "bus listen connection lost");
                            break;
                        }
                    }
                }
                debug!("bus listener ended");
            });
            client
                .batch_execute(&format!("LISTEN {}", ident(&self.channel(&self.sidecar))))
                .await?;
            Ok(Listener::new(woken, Some(Box::new(client))))
        })
        .await
    }

    /// The lease is one row (id 1): taken when free, expired, or already ours.
    async fn take_turn_in_lease(&self, holder: &str, ttl: Duration) -> Result<bool, BackendError> {
        op("take_turn_in_lease", async move {
            let row = self
                .rows(
                    "INSERT INTO {s}.turn_in_lease (id, holder, expires_at)
                         VALUES (1, $1, now() + make_interval(secs => $2))
                         ON CONFLICT (id) DO UPDATE
                         SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                         WHERE {s}.turn_in_lease.expires_at < now()
                            OR {s}.turn_in_lease.holder = EXCLUDED.holder
                         RETURNING holder",
                    &[&holder, &ttl.as_secs_f64()],
                )
                .await?
                .into_iter()
                .next();
            Ok(row.is_some())
        })
        .await
    }

    async fn release_turn_in_lease(&self, holder: &str) -> Result<(), BackendError> {
        op("release_turn_in_lease", async move {
            self.execute_cached(
                "DELETE FROM {s}.turn_in_lease WHERE id = 1 AND holder = $1",
                &[&holder],
            )
            .await?;
            Ok(())
        })
        .await
    }
}

impl Bus {
    /// `sql` with each `{s}` naming this realm's schema.
    fn in_schema(&self, sql: &str) -> String {
        sql.replace("{s}", &ident(&self.schema))
    }

    /// The rows of `sql` (see [`Bus::in_schema`]), run as a pooled connection's cached
    /// prepared statement.
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, BusError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&self.in_schema(sql)).await?;
        Ok(client.query(&statement, params).await?)
    }

    /// Runs `sql` like [`Bus::rows`]; the number of rows it changed.
    async fn execute_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, BusError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&self.in_schema(sql)).await?;
        Ok(client.execute(&statement, params).await?)
    }
}
