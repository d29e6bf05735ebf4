//! The accept loop: one [`session`](crate::session) per gateway connection, and a
//! graceful stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::handler::Handler;
use crate::session;
use crate::store::Db;

/// What every session of a sidecar shares.
#[derive(Debug)]
pub struct Shared<H> {
    /// The configuration.
    pub config: Config,
    /// Decides about intercepted frames.
    pub handler: H,
    /// The characters database, if configured.
    pub characters: Option<Db>,
    /// The auth database, if configured.
    pub auth: Option<Db>,
}

/// A bound sidecar, ready to run.
pub struct Server<H> {
    listener: TcpListener,
    shared: Arc<Shared<H>>,
}

/// Opens a pool for a non-empty URL.
fn pool(url: &str) -> io::Result<Option<Db>> {
    if url.is_empty() {
        return Ok(None);
    }
    Db::new(url)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

/// The AzerothCore databases a sidecar reads; pools connect lazily.
#[derive(Debug, Clone, Default)]
pub struct Databases {
    /// The characters database, if configured.
    pub characters: Option<Db>,
    /// The auth database, if configured.
    pub auth: Option<Db>,
}

impl Databases {
    /// Pools for the configured URLs.
    pub fn from_config(config: &Config) -> io::Result<Databases> {
        Ok(Databases {
            characters: pool(&config.characters_db_url)?,
            auth: pool(&config.auth_db_url)?,
        })
    }
}

impl<H: Handler> Server<H> {
    /// Binds the listen address, with pools for the configured databases.
    pub async fn bind(config: Config, handler: H) -> io::Result<Server<H>> {
        let databases = Databases::from_config(&config)?;
        Self::bind_with(config, databases, handler).await
    }

    /// Binds the listen address, sharing `databases` with the handler.
    pub async fn bind_with(
        config: Config,
        databases: Databases,
        handler: H,
    ) -> io::Result<Server<H>> {
        let listener = TcpListener::bind(config.listen).await?;
        let Databases { characters, auth } = databases;
        if characters.is_none() {
            info!("no characters database configured: identity lookup and charter resolution are off, sessions pass through");
        }
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                config,
                handler,
                characters,
                auth,
            }),
        })
    }

    /// The address the gateway should connect to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts gateway connections until `shutdown` completes, then lets open sessions
    /// finish for the grace period and closes the rest.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server { listener, shared } = self;
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let ids = AtomicU64::new(1);
        info!(listen = %listener.local_addr()?, upstream = %shared.config.upstream, mode = ?shared.config.link_mode, "sidecar listening");
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = &mut shutdown => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    tracker.spawn(session::run(
                        Arc::clone(&shared),
                        stream,
                        peer,
                        id,
                        cancel.child_token(),
                    ));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        tracker.close();
        let grace = shared.config.shutdown_grace();
        info!(
            open_sessions = tracker.len(),
            grace_secs = grace.as_secs(),
            "stopped accepting; waiting for sessions"
        );
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            info!(
                open_sessions = tracker.len(),
                "grace period over; closing sessions"
            );
            cancel.cancel();
            tracker.wait().await;
        }
        for db in [&shared.characters, &shared.auth].into_iter().flatten() {
            db.clone().close().await;
        }
        info!("sidecar stopped");
        Ok(())
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
