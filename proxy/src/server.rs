//! The accept loop: one [`session`] per gateway connection, and a
//! graceful stop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::ProxyConfig;
use crate::crypt::KeySource;
use crate::handler::Handler;
use crate::metrics::{self as m, OpcodeLabels};
use crate::session;

/// What every session of a proxy shares.
pub(crate) struct Shared<H> {
    /// The configuration.
    pub(crate) config: ProxyConfig,
    /// Decides about intercepted frames.
    pub(crate) handler: H,
    /// Session keys for `wotlk-crypt` mode.
    pub(crate) keys: Option<Arc<dyn KeySource>>,
    /// The opcodes counted by name.
    pub(crate) labels: OpcodeLabels,
}

/// A bound proxy, ready to run.
pub struct Server<H> {
    listener: TcpListener,
    shared: Arc<Shared<H>>,
    /// The most sessions at once.
    cap: usize,
}

impl<H: Handler> Server<H> {
    /// Binds the listen address. `keys` serves session keys in `wotlk-crypt` mode;
    /// without it every such session is copied as opaque bytes.
    pub async fn bind(
        config: ProxyConfig,
        handler: H,
        keys: Option<Arc<dyn KeySource>>,
    ) -> io::Result<Server<H>> {
        let listener = TcpListener::bind(config.listen).await?;
        let labels = OpcodeLabels::new(handler.watched());
        let cap = config.session_cap(open_files_limit());
        metrics::gauge!(m::SESSIONS_CAP).set(cap as f64);
        Ok(Server {
            cap,
            listener,
            shared: Arc::new(Shared {
                config,
                handler,
                keys,
                labels,
            }),
        })
    }

    /// The handler deciding this proxy's frames.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// The address the gateway should connect to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts gateway connections until `shutdown` completes, then lets open sessions
    /// finish for the grace period and closes the rest.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            listener,
            shared,
            cap,
        } = self;
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let ids = AtomicU64::new(1);
        let slots = Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS)));
        let mut refused_logged = false;
        info!(listen = %listener.local_addr()?, upstream = %shared.config.upstream, mode = shared.config.link_mode.name(), max_sessions = cap, "sidecar listening");
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = &mut shutdown => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        // At the cap: closed at once, so the descriptor comes back.
                        metrics::counter!(m::SESSIONS_REFUSED_TOTAL, "reason" => "max_sessions")
                            .increment(1);
                        if !refused_logged {
                            refused_logged = true;
                            warn!(
                                max_sessions = cap,
                                "at the session cap; closing new connections (logged once)"
                            );
                        }
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        continue;
                    };
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    let session =
                        session::run(Arc::clone(&shared), stream, peer, id, cancel.child_token());
                    tracker.spawn(async move {
                        session.await;
                        drop(slot);
                    });
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
        let grace = shared.config.shutdown_grace;
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
        info!("sidecar stopped");
        Ok(())
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux);
/// `None` where it cannot be read or is unlimited.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
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
