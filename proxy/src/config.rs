//! What the proxy needs to know to run; the sidecar's configuration derives it.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How headers travel between the gateway, the sidecar and the worldserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    /// ToCloud9 cluster mode: headers are never encrypted.
    #[default]
    Plain,
    /// Stock AzerothCore: headers are encrypted after `CMSG_AUTH_SESSION`.
    WotlkCrypt,
}

impl LinkMode {
    /// The name used in configuration files and capture metadata.
    pub fn name(self) -> &'static str {
        match self {
            LinkMode::Plain => "plain",
            LinkMode::WotlkCrypt => "wotlk-crypt",
        }
    }
}

/// The proxy's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Where the gateway connects.
    pub listen: SocketAddr,
    /// The worldserver this proxy fronts.
    pub upstream: String,
    /// This sidecar's id, for logs and captures.
    pub sidecar_id: String,
    /// Header mode of the links.
    pub link_mode: LinkMode,
    /// A directory to write one capture file per session to; empty for none.
    pub capture_dir: String,
    /// The captures' file format.
    pub capture_format: crate::capture::CaptureFormat,
    /// Largest client header size field accepted.
    pub max_client_frame: usize,
    /// Largest server header size field accepted.
    pub max_server_frame: usize,
    /// Attempts to connect to the worldserver per session.
    pub connect_attempts: u32,
    /// Delay before the second attempt, doubled for each further one.
    pub connect_backoff: Duration,
    /// Injected frames queued toward each side of a session before their sender
    /// waits.
    pub session_queue: usize,
    /// How long sessions may run on after the stop before they are closed.
    pub shutdown_grace: Duration,
    /// Most sessions at once; 0 for no limit but the descriptors'.
    pub max_sessions: usize,
    /// Descriptors kept for everything but sessions (endpoints, database pools,
    /// the bus, logs); sessions (two each) get the rest of `RLIMIT_NOFILE`.
    pub fd_reserve: usize,
    /// How long a connection may take to send its first whole frame.
    pub first_frame_timeout: Duration,
}

impl ProxyConfig {
    /// The most sessions at once: `max_sessions`, and what the descriptor limit
    /// `nofile` leaves after the reserve (each session holds two descriptors).
    pub fn session_cap(&self, nofile: Option<u64>) -> usize {
        let by_descriptors = nofile.map_or(usize::MAX, |limit| {
            (usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .saturating_sub(self.fd_reserve)
                / 2)
            .max(1)
        });
        match self.max_sessions {
            0 => by_descriptors,
            cap => cap.min(by_descriptors),
        }
    }

    /// Delay before connection attempt `attempt` (0-based) to the worldserver.
    pub fn connect_backoff(&self, attempt: u32) -> Duration {
        self.connect_backoff.saturating_mul(1 << attempt.min(16)) / 2
    }
}
