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
use tc9_charter::BackendError;
use tokio_postgres::NoTls;

use super::metrics::{timed, BUS};

mod directory;
mod schema;

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
    "take_turn_in_lease",
    "release_turn_in_lease",
];

/// Runs the bus operation `name`, timed, with its error as the charter's.
async fn op<T>(
    name: &'static str,
    operation: impl std::future::Future<Output = Result<T, BusError>>,
) -> Result<T, BackendError> {
    timed(BUS, name, operation).await.map_err(BackendError::bus)
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
        bus.beat().await?;
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
}
