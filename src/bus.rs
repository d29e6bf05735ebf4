//! The realm's coordination database (PostgreSQL), shared by every sidecar.
//!
//! One schema per realm (`tc9_realm_<id>`), created on start, idempotently and
//! versioned, holds:
//! - `sidecars`: each sidecar's heartbeat;
//! - `online`: which character plays behind which sidecar, refreshed by the owning
//!   sidecar's heartbeat and ignored once that heartbeat is older than the expiry;
//! - `outbox`: durable events addressed to one sidecar (and usually one character
//!   behind it). A `NOTIFY` on the target's channel wakes it; a sidecar also polls, so
//!   a missed notification or a restart only delays delivery. An event is marked
//!   delivered after it has been applied; applying is idempotent by event id.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use tracing::{debug, warn};

/// The schema version this build creates and expects.
pub const SCHEMA_VERSION: i32 = 1;

/// A coordination database failure.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A query or connection failed.
    #[error("bus: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No pooled connection could be had.
    #[error("bus pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The URL is not usable.
    #[error("bus configuration: {0}")]
    Config(String),
    /// The schema was made by a newer sidecar.
    #[error("bus schema {schema} is at version {found}, this sidecar knows {SCHEMA_VERSION}")]
    Version {
        /// The schema.
        schema: String,
        /// Its version.
        found: i32,
    },
}

/// The operations the bus times, as metric labels.
pub const OPERATIONS: &[&str] = &[
    "heartbeat",
    "set_online",
    "set_offline",
    "locate",
    "live_sidecars",
    "publish",
    "pending",
    "mark_delivered",
    "expire",
    "backlog",
    "listen",
];

/// Runs `operation`, recording its time and failure under `name`.
async fn timed<T>(
    name: &'static str,
    operation: impl std::future::Future<Output = Result<T, BusError>>,
) -> Result<T, BusError> {
    let started = std::time::Instant::now();
    let result = operation.await;
    metrics::histogram!(crate::metrics::BUS_QUERY_SECONDS, "op" => name)
        .record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(crate::metrics::BUS_ERRORS_TOTAL, "op" => name).increment(1);
    }
    result
}

/// One outbox event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique, increasing id.
    pub id: i64,
    /// The character the event is for, if any.
    pub character: Option<u32>,
    /// What the event is (`packets`, `guild_created`, ...).
    pub kind: String,
    /// Kind-specific bytes.
    pub payload: Vec<u8>,
}

/// A sidecar's handle on the realm's coordination database.
#[derive(Clone)]
pub struct Bus {
    pool: Pool,
    url: String,
    schema: String,
    realm: u32,
    sidecar: String,
    expiry: Duration,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("schema", &self.schema)
            .field("sidecar", &self.sidecar)
            .finish()
    }
}

/// Quotes an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Bus {
    /// Connects, creates the realm's schema if needed and registers this sidecar.
    /// Presence older than `expiry` counts as offline.
    pub async fn connect(
        url: &str,
        realm: u32,
        sidecar: &str,
        expiry: Duration,
    ) -> Result<Bus, BusError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| BusError::Config(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| BusError::Config(e.to_string()))?;
        let bus = Bus {
            pool,
            url: url.to_owned(),
            schema: format!("tc9_realm_{realm}"),
            realm,
            sidecar: sidecar.to_owned(),
            expiry,
        };
        bus.migrate().await?;
        bus.forget_presence().await?;
        bus.heartbeat().await?;
        Ok(bus)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), BusError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// This sidecar's id.
    pub fn sidecar(&self) -> &str {
        &self.sidecar
    }

    /// The NOTIFY channel of `sidecar`.
    fn channel(&self, sidecar: &str) -> String {
        format!("tc9_{}_{}", self.realm, sidecar)
    }

    /// Creates the schema (version [`SCHEMA_VERSION`]) if it is not there.
    async fn migrate(&self) -> Result<(), BusError> {
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
    async fn forget_presence(&self) -> Result<(), BusError> {
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
    pub async fn heartbeat(&self) -> Result<(), BusError> {
        timed("heartbeat", async move {
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
        })
        .await
    }

    /// Records that `character` now plays behind this sidecar.
    pub async fn set_online(&self, character: u32) -> Result<(), BusError> {
        timed("set_online", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            client
                .execute(
                    &format!(
                        "INSERT INTO {s}.online (character_guid, sidecar_id) VALUES ($1, $2)
                         ON CONFLICT (character_guid)
                         DO UPDATE SET sidecar_id = $2, heartbeat_at = now()"
                    ),
                    &[&i64::from(character), &self.sidecar],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Records that `character` left this sidecar (unless it moved to another since).
    pub async fn set_offline(&self, character: u32) -> Result<(), BusError> {
        timed("set_offline", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            client
                .execute(
                    &format!(
                        "DELETE FROM {s}.online WHERE character_guid = $1 AND sidecar_id = $2"
                    ),
                    &[&i64::from(character), &self.sidecar],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// The sidecar `character` plays behind, if its presence is fresh.
    pub async fn locate(&self, character: u32) -> Result<Option<String>, BusError> {
        timed("locate", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            let expiry = self.expiry.as_secs_f64();
            let row = client
                .query_opt(
                    &format!(
                        "SELECT sidecar_id FROM {s}.online
                         WHERE character_guid = $1
                           AND heartbeat_at > now() - make_interval(secs => $2)"
                    ),
                    &[&i64::from(character), &expiry],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// Every sidecar whose heartbeat is fresh, this one included.
    pub async fn live_sidecars(&self) -> Result<Vec<String>, BusError> {
        timed("live_sidecars", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            let rows = client
                .query(
                    &format!(
                        "SELECT sidecar_id FROM {s}.sidecars
                         WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY sidecar_id"
                    ),
                    &[&self.expiry.as_secs_f64()],
                )
                .await?;
            Ok(rows.into_iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Adds an event for `target` and wakes it; returns the event id.
    pub async fn publish(
        &self,
        target: &str,
        character: Option<u32>,
        kind: &str,
        payload: &[u8],
    ) -> Result<i64, BusError> {
        timed("publish", async move {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let s = ident(&self.schema);
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO {s}.outbox (target_sidecar, character_guid, kind, payload)
                         VALUES ($1, $2, $3, $4) RETURNING id"
                    ),
                    &[&target, &character.map(i64::from), &kind, &payload],
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
    pub async fn pending(&self, characters: &[u32], limit: i64) -> Result<Vec<Event>, BusError> {
        let characters: Vec<i64> = characters.iter().map(|&c| i64::from(c)).collect();
        timed("pending", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            let rows = client
                .query(
                    &format!(
                        "SELECT id, character_guid, kind, payload FROM {s}.outbox
                         WHERE target_sidecar = $1 AND delivered_at IS NULL
                           AND (character_guid IS NULL OR character_guid = ANY($3))
                         ORDER BY id LIMIT $2"
                    ),
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
                    kind: r.get(2),
                    payload: r.get(3),
                })
                .collect())
        })
        .await
    }

    /// Marks an event delivered; false if it already was.
    pub async fn mark_delivered(&self, id: i64) -> Result<bool, BusError> {
        timed("mark_delivered", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            let n = client
                .execute(
                    &format!(
                        "UPDATE {s}.outbox SET delivered_at = now()
                         WHERE id = $1 AND delivered_at IS NULL"
                    ),
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
    pub async fn expire(&self, age: Duration) -> Result<u64, BusError> {
        timed("expire", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            let rows = client
                .query(
                    &format!(
                        "DELETE FROM {s}.outbox
                         WHERE target_sidecar = $1
                           AND created_at < now() - make_interval(secs => $2)
                         RETURNING delivered_at IS NULL"
                    ),
                    &[&self.sidecar, &age.as_secs_f64()],
                )
                .await?;
            Ok(rows.iter().filter(|row| row.get::<_, bool>(0)).count() as u64)
        })
        .await
    }

    /// Undelivered events of this sidecar and the age in seconds of the oldest.
    pub async fn backlog(&self) -> Result<(i64, f64), BusError> {
        timed("backlog", async move {
            let client = self.pool.get().await?;
            let s = ident(&self.schema);
            let row = client
                .query_one(
                    &format!(
                        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0)
                         FROM {s}.outbox WHERE target_sidecar = $1 AND delivered_at IS NULL"
                    ),
                    &[&self.sidecar],
                )
                .await?;
            Ok((row.get(0), row.get(1)))
        })
        .await
    }

    /// Opens a dedicated connection listening on this sidecar's channel.
    pub async fn listen(&self) -> Result<Listener, BusError> {
        timed("listen", async move {
            let (client, mut connection) = tokio_postgres::connect(&self.url, NoTls).await?;
            let (wake, woken) = mpsc::channel(1);
            tokio::spawn(async move {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(message) = messages.next().await {
                    match message {
                        Ok(AsyncMessage::Notification(_)) => {
                            // A full channel already holds a wake-up.
                            let _ = wake.try_send(());
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
            Ok(Listener {
                _client: Some(client),
                woken,
            })
        })
        .await
    }
}

/// Wake-ups for this sidecar's outbox: a live `LISTEN` (dropping it closes the
/// connection), or an in-process channel.
pub struct Listener {
    _client: Option<tokio_postgres::Client>,
    woken: mpsc::Receiver<()>,
}

impl Listener {
    /// Wake-ups sent on an in-process channel.
    pub fn from_channel(woken: mpsc::Receiver<()>) -> Listener {
        Listener {
            _client: None,
            woken,
        }
    }

    /// Waits for a notification; `None` once the connection is lost.
    pub async fn notified(&mut self) -> Option<()> {
        self.woken.recv().await
    }
}
