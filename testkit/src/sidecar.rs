//! Sidecars for tests, started through [`tc9_sidecar::Sidecar`] like the binary's.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tc9_proxy::Handler;
use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;
use tokio::time::timeout;

use crate::STEP;

/// A configuration for sidecar `id` of realm 1 in front of `upstream`: an
/// ephemeral listen port, a 1 s grace period, a 20 ms connect backoff, and a
/// worldserver with `mod-tc9-sidecar` (the sidecar records signatures).
pub fn test_config(id: &str, upstream: SocketAddr) -> Config {
    Config {
        worldserver_module: true,
        listen: "127.0.0.1:0".parse().expect("an address"),
        upstream: upstream.to_string(),
        sidecar_id: id.to_owned(),
        realm_id: 1,
        connect_backoff_ms: 20,
        shutdown_grace_secs: 1,
        ..Config::default()
    }
}

/// Starts the sidecar `config` describes (validated first).
pub async fn start_sidecar(config: Config) -> Result<Sidecar> {
    config.validate()?;
    timeout(STEP, Sidecar::build(&config))
        .await
        .with_context(|| format!("sidecar {}: start timed out", config.sidecar_id))?
        .with_context(|| format!("sidecar {}", config.sidecar_id))
}

/// Starts a sidecar whose intercepted frames `handler` decides.
pub async fn start_sidecar_with<H: Handler>(config: Config, handler: H) -> Result<Sidecar> {
    config.validate()?;
    timeout(STEP, Sidecar::with_handler(&config, handler))
        .await
        .with_context(|| format!("sidecar {}: start timed out", config.sidecar_id))?
        .with_context(|| format!("sidecar {}", config.sidecar_id))
}
