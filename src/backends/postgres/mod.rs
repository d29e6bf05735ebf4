//! The realm's coordination database (PostgreSQL), shared by every sidecar.
//!
//! One schema per realm (`tc9_realm_<id>`), created on start, idempotently and
//! versioned, holds:
//! - `sidecars`: each sidecar's heartbeat;
//! - `online`: which character plays behind which sidecar, refreshed by the owning
//!   sidecar's heartbeat and ignored once that heartbeat is older than the expiry;
//! - `outbox`: durable events addressed to one sidecar (guild changes; what a
//!   character must be told is a notice in the characters database instead). A
//!   `NOTIFY` on the target's channel wakes it, and names a character when a notice
//!   waits for it, carrying the notice itself when it is small, so the woken sidecar
//!   claims it by id (or, when it was claimed for that sidecar as it was recorded,
//!   writes it at once) without reading it; a sidecar also polls, so a
//!   missed notification or a restart only delays delivery. Applying an event is
//!   idempotent.
//!
//! The handle connects lazily: the first heartbeat that reaches the database creates
//! the schema, and calls made while it is down fail (the charter fails open) until
//! it answers again.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tc9_charter::BackendError;
use tokio_postgres::NoTls;

use super::metrics::{timed, BUS};

mod directory;
mod schema;
mod wake;

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
    "wake",
    "announce",
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
    config: tokio_postgres::Config,
    /// The schema exists and this sidecar's earlier presence was forgotten.
    set_up: std::sync::Arc<tokio::sync::OnceCell<()>>,
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
    /// A handle on the bus at `url`, connecting lazily: the first heartbeat that
    /// reaches the database creates the realm's schema if needed and registers this
    /// sidecar, and every later one repairs whatever an outage lost. Presence older
    /// than `expiry` counts as offline. Only a bad URL is an error here.
    pub fn new(url: &str, realm: u32, sidecar: &str, expiry: Duration) -> Result<Bus, BusError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| BusError::Config(e.to_string()))?;
        // A blackholed database fails calls in seconds instead of holding them.
        config
            .connect_timeout(Duration::from_secs(3))
            .tcp_user_timeout(Duration::from_secs(5))
            .keepalives_idle(Duration::from_secs(10));
        let manager = Manager::from_config(
            config.clone(),
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
        Ok(Bus {
            pool,
            config,
            set_up: Default::default(),
            schema: format!("tc9_realm_{realm}"),
            realm,
            sidecar: sidecar.to_owned(),
            expiry,
        })
    }

    /// [`Bus::new`], then set up at once: an unreachable database is an error.
    pub async fn connect(
        url: &str,
        realm: u32,
        sidecar: &str,
        expiry: Duration,
    ) -> Result<Bus, BusError> {
        let bus = Bus::new(url, realm, sidecar, expiry)?;
        bus.register().await?;
        Ok(bus)
    }

    /// Sets the bus up now and registers this sidecar (what the first heartbeat
    /// does otherwise).
    pub async fn register(&self) -> Result<(), BusError> {
        self.beat().await
    }

    /// Creates the schema and forgets this sidecar's earlier presence, once.
    async fn set_up(&self) -> Result<(), BusError> {
        self.set_up
            .get_or_try_init(|| async {
                self.migrate().await?;
                self.forget_presence().await
            })
            .await?;
        Ok(())
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
