//! The one place a sidecar is wired: [`Sidecar::build`] turns a [`Config`] into a
//! running sidecar (backends, charter handler, proxy, endpoints). `main`, the demo,
//! replay, every test and every bench start sidecars through it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tc9_charter::{CharterHandler, CharterStore, Directory};
use tc9_proxy::{Handler, KeySource, PassThrough, Server};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{self, Probe, Readiness};
use crate::backends::memory::{MemoryRealm, MemoryStore, World};
use crate::backends::mysql::{check, Consequence, Db, Outcome, Schema};
use crate::backends::nats::Nats;
use crate::backends::postgres::Bus;
use crate::config::{Backend, Config};

/// The schema preflight at start: a schema the sidecar would write wrong rows into
/// stops it; anything else it lacks is logged (those features fail open).
async fn schema_at_start(db: &Db) -> anyhow::Result<()> {
    match check(db, Schema::Characters).await {
        Outcome::Checked(findings) => {
            let refused: Vec<String> = findings
                .iter()
                .filter(|f| f.consequence == Consequence::RefuseToStart)
                .map(ToString::to_string)
                .collect();
            if !refused.is_empty() {
                anyhow::bail!(
                    "characters_db_url: {} (see `tc9-sidecar check-db`)",
                    refused.join("; ")
                );
            }
            for finding in findings {
                warn!(%finding, "characters database schema");
            }
        }
        Outcome::Unreachable(e) => {
            warn!(error = %e, "characters database schema not checked at start")
        }
        Outcome::Skipped => {}
    }
    Ok(())
}

/// How long the start waits for the bus before going on without it.
const BUS_START_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The databases a configuration names; pools connect lazily, the bus at once.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    /// The characters database, if configured.
    pub characters: Option<Db>,
    /// The auth database, if configured.
    pub auth: Option<Db>,
    /// The realm's bus, if configured (with a characters database). It connects
    /// lazily and repairs itself; `/health/ready` says while it is down.
    pub bus: Option<Bus>,
    /// ToCloud9's NATS, if configured (`nats_url`): guild creations are announced.
    pub nats: Option<Nats>,
}

impl Backends {
    /// Opens what `config` names. A bus that cannot be reached is tried again in
    /// the background, with backoff (logged; `/health/ready` names it meanwhile);
    /// a bad URL is an error.
    pub async fn connect(config: &Config) -> anyhow::Result<Backends> {
        let pool = |key: &str, url: &str| -> anyhow::Result<Option<Db>> {
            if url.is_empty() {
                return Ok(None);
            }
            Db::new(url).map(Some).with_context(|| key.to_owned())
        };
        let characters = pool("characters_db_url", &config.characters_db_url)?;
        if let Some(db) = &characters {
            schema_at_start(db).await?;
        }
        let auth = pool("auth_db_url", &config.auth_db_url)?;
        let bus = if config.bus_url.is_empty() || characters.is_none() {
            None
        } else {
            let bus = Bus::new(
                &config.bus_url,
                config.realm_id,
                &config.sidecar_id,
                config.presence_expiry(),
            )
            .context("bus_url")?;
            let registered = tokio::time::timeout(BUS_START_WAIT, bus.register()).await;
            match registered {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!(error = %e, "bus unavailable at start; retrying in the background")
                }
                Err(_) => warn!("bus did not answer at start; retrying in the background"),
            }
            Some(bus)
        };
        let nats = if config.nats_url.is_empty() {
            None
        } else {
            let nats = Nats::connect(&config.nats_url, config.realm_id, &config.sidecar_id)
                .await
                .context("nats_url")?;
            Some(nats)
        };
        Ok(Backends {
            characters,
            auth,
            bus,
            nats,
        })
    }

    /// Has `handler` announce guild creations through NATS, if configured.
    fn announce_through<S: CharterStore, D: Directory>(&self, handler: &CharterHandler<S, D>) {
        if let Some(nats) = &self.nats {
            handler.announce_to(Arc::new(nats.clone()));
        }
    }

    /// The readiness probes: upstream, then each configured database.
    fn probes(&self, upstream: &str) -> Vec<Probe> {
        let mut probes = vec![Probe::upstream(upstream)];
        for (name, db) in [("characters_db", &self.characters), ("auth_db", &self.auth)] {
            if let Some(db) = db.clone() {
                let schema = match name {
                    "characters_db" => Schema::Characters,
                    _ => Schema::Auth,
                };
                probes.push(Probe::new(name, move || {
                    let db = db.clone();
                    async move {
                        db.ping().await.map_err(|e| e.to_string())?;
                        match check(&db, schema).await {
                            Outcome::Checked(findings) if !findings.is_empty() => Err(findings
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")),
                            _ => Ok(()),
                        }
                    }
                }));
            }
        }
        if let Some(bus) = self.bus.clone() {
            probes.push(Probe::new("bus", move || {
                let bus = bus.clone();
                async move {
                    bus.ping().await.map_err(|e| {
                        format!("{e}; cross-worldserver resolution fails open until it is back")
                    })
                }
            }));
        }
        probes
    }

    /// Closes the pools.
    async fn close(self) {
        for db in [self.characters, self.auth].into_iter().flatten() {
            db.close().await;
        }
    }
}

/// A running sidecar; dropping it begins a graceful stop.
pub struct Sidecar {
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    stop: CancellationToken,
    backends: Backends,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sidecar {
    /// Builds and starts the sidecar `config` describes: the charter over MySQL (and
    /// PostgreSQL) when a characters database is configured, over in-process tables
    /// with `backend = "memory"`, a pure pass-through otherwise.
    pub async fn build(config: &Config) -> anyhow::Result<Sidecar> {
        let backends = Backends::connect(config).await?;
        if config.backend == Backend::Memory {
            let world = if config.world_file.is_empty() {
                World::default()
            } else {
                World::from_file(Path::new(&config.world_file)).map_err(anyhow::Error::msg)?
            };
            info!(
                characters = world.character.len(),
                petitions = world.petition.len(),
                "in-memory realm: charters resolve on this worldserver"
            );
            let realm = MemoryRealm::new();
            let bus = realm.join(&config.sidecar_id);
            let handler = charter(config, MemoryStore::from_world(&world), bus);
            backends.announce_through(&handler);
            return Self::start(config, handler, backends).await;
        }
        match backends.characters.clone() {
            Some(store) => {
                if backends.bus.is_none() {
                    info!("no bus: charters resolve on this worldserver only");
                }
                let handler =
                    CharterHandler::new(store, backends.bus.clone(), config.charter_settings());
                backends.announce_through(&handler);
                Self::start(config, handler, backends).await
            }
            None => {
                info!("no characters database configured: charter resolution is off, sessions pass through");
                Self::start(config, PassThrough, backends).await
            }
        }
    }

    /// A sidecar resolving charters over in-process tables shared with the other
    /// sidecars of this process (the demo, replays, tests).
    pub async fn in_memory(
        config: &Config,
        store: &MemoryStore,
        realm: &MemoryRealm,
    ) -> anyhow::Result<Sidecar> {
        Self::with_handler(
            config,
            charter(config, store.clone(), realm.join(&config.sidecar_id)),
        )
        .await
    }

    /// A sidecar whose intercepted frames `handler` decides; the databases named in
    /// `config` still serve session keys and readiness.
    pub async fn with_handler<H: Handler>(config: &Config, handler: H) -> anyhow::Result<Sidecar> {
        let backends = Backends::connect(config).await?;
        Self::start(config, handler, backends).await
    }

    /// Wires and starts a sidecar: endpoints, the handler's background work, the
    /// proxy. A stop ends the background work at once (outbox events wait durably
    /// for the next start) and gives the sessions their grace period; then the
    /// endpoints close and the pools with them.
    async fn start<H: Handler>(
        config: &Config,
        handler: H,
        backends: Backends,
    ) -> anyhow::Result<Sidecar> {
        let stop = CancellationToken::new();
        let endpoints = CancellationToken::new();
        let mode = module_mode(config);
        info!(worldserver_module = mode, "worldserver module: {mode}");
        let metrics = if config.metrics.is_empty() {
            None
        } else {
            let handle = admin::install_recorder(&config.sidecar_id, config.realm_id)
                .map_err(anyhow::Error::msg)?;
            metrics::gauge!(tc9_charter::metrics::WORLDSERVER_MODULE)
                .set(f64::from(u8::from(config.worldserver_module)));
            let readiness = Readiness::new(backends.probes(&config.upstream))
                .with_fact("worldserver_module", mode);
            Some(admin::serve(&config.metrics, handle, readiness, endpoints.clone()).await?)
        };
        let keys = backends
            .auth
            .clone()
            .map(|db| Arc::new(db) as Arc<dyn KeySource>);
        let server = Server::bind(config.proxy(), handler, keys)
            .await
            .with_context(|| format!("listen {}", config.listen))?;
        server.handler().start(stop.child_token());
        let addr = server.local_addr()?;
        let stopped = stop.clone();
        let pools = backends.clone();
        let task = tokio::spawn(async move {
            let result = server.run(stopped.cancelled_owned()).await;
            endpoints.cancel();
            pools.close().await;
            result
        });
        Ok(Sidecar {
            addr,
            metrics,
            stop,
            backends,
            task: Some(task),
        })
    }

    /// Where the gateway connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` and the health endpoints answer, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
    }

    /// The realm bus this sidecar uses, if any.
    pub fn bus(&self) -> Option<&Bus> {
        self.backends.bus.as_ref()
    }

    /// Stops the background work and accepting; open sessions get the grace period.
    pub fn begin_stop(&self) {
        self.stop.cancel();
    }

    /// Stops as on SIGTERM and waits until every session and pool is closed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.begin_stop();
        self.stopped().await
    }

    /// Waits until the sidecar has stopped (see [`Sidecar::begin_stop`]).
    pub async fn stopped(mut self) -> anyhow::Result<()> {
        match self.task.take() {
            Some(task) => Ok(task.await.context("the sidecar panicked")??),
            None => Ok(()),
        }
    }

    /// Whether the proxy still runs (it has not returned or panicked).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How the sidecar treats the worldserver's turn-in, as logs and `/health/ready`
/// name it.
fn module_mode(config: &Config) -> &'static str {
    if config.worldserver_module {
        "on (signatures recorded by the sidecar, turn-in synced by mod-tc9-sidecar)"
    } else {
        "off (guild charters signed natively)"
    }
}

/// The charter over `store` and `bus` with `config`'s settings.
pub fn charter<S: CharterStore, D: Directory>(
    config: &Config,
    store: S,
    bus: D,
) -> CharterHandler<S, D> {
    CharterHandler::new(store, Some(bus), config.charter_settings())
}

/// Runs the sidecar `config` describes until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let sidecar = Sidecar::build(&config).await?;
    tc9_proxy::shutdown_signal().await;
    sidecar.stop().await
}
