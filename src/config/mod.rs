//! Sidecar configuration: a TOML file, overridden by `TC9_*` environment variables,
//! overridden by command-line flags. `config/sidecar.example.toml` documents every key.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tc9_charter::limits::{Limit, LimitPolicy, Limits};
use tc9_charter::{CharterSettings, Rules};
use tc9_proxy::capture::CaptureFormat;
use tc9_proxy::ProxyConfig;

pub use tc9_proxy::LinkMode;

/// Where the charter resolver reads the realm from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// AzerothCore's MySQL databases and, with `bus_url`, PostgreSQL.
    #[default]
    Mysql,
    /// In-process tables seeded from `world_file`, for a single-worldserver realm.
    Memory,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the fields of the spans it happened in (the
    /// session's sidecar, session number, peer, account and character).
    Json,
}

/// Everything a sidecar needs to run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the gateway connects.
    pub listen: SocketAddr,
    /// The worldserver this sidecar fronts.
    pub upstream: String,
    /// Where `/metrics` and the health endpoints are served; empty for none.
    pub metrics: String,
    /// This sidecar's id, unique in the realm.
    pub sidecar_id: String,
    /// The realm this sidecar belongs to.
    pub realm_id: u32,
    /// Header mode of the links.
    pub link_mode: LinkMode,
    /// Where the charter resolver reads the realm from.
    pub backend: Backend,
    /// With `backend = "memory"`: a TOML world file seeding the tables (see `memory`).
    pub world_file: String,
    /// A directory to write one capture file per session to; empty for none.
    pub capture_dir: String,
    /// `tc9cap` (the sidecar's format) or `pkt` (WowPacketParser's PKT 3.1).
    pub capture_format: CaptureFormat,
    /// AzerothCore characters database (`mysql://user:pass@host:port/db`); empty for none.
    pub characters_db_url: String,
    /// AzerothCore auth database, for session keys in `wotlk-crypt` mode; empty for none.
    pub auth_db_url: String,
    /// PostgreSQL database shared by the realm's sidecars; empty for none.
    pub bus_url: String,
    /// ToCloud9's NATS (`nats://host:4222`): guilds made from charters are announced
    /// as `guild.created` and `guild.member.added`; empty for none.
    pub nats_url: String,
    /// Largest client header size field accepted.
    pub max_client_frame: usize,
    /// Largest server header size field accepted.
    pub max_server_frame: usize,
    /// Attempts to connect to the worldserver per session.
    pub connect_attempts: u32,
    /// Delay before the second attempt, doubled for each further one, in milliseconds.
    pub connect_backoff_ms: u64,
    /// Injected frames (answers, deliveries from other sessions) queued toward each
    /// side of a session before their sender waits.
    pub session_queue: usize,
    /// Seconds sessions may run on after SIGTERM before they are closed.
    pub shutdown_grace_secs: u64,
    /// Most gateway connections at once (0: only the descriptor limit bounds them);
    /// one more is closed at once and counted.
    pub max_sessions: usize,
    /// Descriptors of `RLIMIT_NOFILE` kept for `/metrics`, `/health`, the database
    /// pools and the bus; sessions (two descriptors each) get the rest.
    pub fd_reserve: usize,
    /// Milliseconds a connection may take to send its first whole frame before it
    /// is closed (0: no limit).
    pub first_frame_timeout_ms: u64,
    /// Log filter (`info`, `tc9_sidecar=debug`, ...); `RUST_LOG` wins when set.
    pub log_level: String,
    /// `text` or `json` (one object per line, span fields included).
    pub log_format: LogFormat,
    /// Worldserver `AllowTwoSide.Interaction.Guild`: both factions share charters.
    pub two_side_guild: bool,
    /// Worldserver `MinPetitionSigns`: signatures a guild charter needs (0..=9).
    pub min_petition_signs: u32,
    /// Seconds after which a sidecar's or a character's presence counts as gone.
    pub presence_expiry_secs: u64,
    /// Milliseconds between polls for notices and bus events (NOTIFY wakes sooner).
    pub bus_poll_ms: u64,
    /// Seconds an undelivered event waits for its character before it is given up;
    /// events older than this are deleted from the outbox, delivered or not.
    pub event_ttl_secs: u64,
    /// Milliseconds one charter resolution may take before its packet fails open.
    pub resolve_timeout_ms: u64,
    /// The worldserver runs `mod-tc9-sidecar` (its native turn-in counts the
    /// database's signatures): the sidecar records guild-charter signatures itself.
    /// Without it (the default) signing stays native, so charters turn in as they
    /// would with AzerothCore alone.
    pub worldserver_module: bool,
    /// Seconds the realm's guild-creation lease lasts when a worldserver never
    /// answers a turn-in.
    pub turn_in_lease_secs: u64,
    /// Per-session limits overriding the defaults, by opcode name:
    /// `"PER_SECOND:kick"` or `"PER_SECOND:drop"` (`CMSG_PETITION_SIGN = "10:kick"`).
    pub limits: std::collections::BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9085)),
            upstream: "127.0.0.1:8085".to_owned(),
            metrics: String::new(),
            sidecar_id: "sidecar-1".to_owned(),
            realm_id: 1,
            link_mode: LinkMode::Plain,
            backend: Backend::Mysql,
            world_file: String::new(),
            capture_dir: String::new(),
            capture_format: CaptureFormat::Tc9cap,
            characters_db_url: String::new(),
            auth_db_url: String::new(),
            bus_url: String::new(),
            nats_url: String::new(),
            max_client_frame: tc9_codec::framing::DEFAULT_MAX_CLIENT_SIZE - 1,
            max_server_frame: tc9_codec::framing::MAX_SERVER_SIZE_FIELD,
            connect_attempts: 3,
            connect_backoff_ms: 100,
            session_queue: 64,
            shutdown_grace_secs: 10,
            max_sessions: 0,
            fd_reserve: 128,
            first_frame_timeout_ms: 15_000,
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            two_side_guild: false,
            min_petition_signs: 9,
            presence_expiry_secs: 30,
            bus_poll_ms: 1000,
            event_ttl_secs: 600,
            resolve_timeout_ms: 3000,
            worldserver_module: false,
            turn_in_lease_secs: 5,
            limits: Default::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a bad key or value; the message names the
    /// key and the line.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's account, with line, column and key.
        message: String,
    },
    /// A value is out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Checks values the types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if self.upstream.trim().is_empty() {
            return invalid("upstream", "must name the worldserver (host:port)");
        }
        if self.sidecar_id.trim().is_empty() {
            return invalid("sidecar_id", "must not be empty");
        }
        if self.max_client_frame < 4 || self.max_client_frame > 0xFFFF {
            return invalid("max_client_frame", "must be within 4..=65535");
        }
        if self.max_server_frame < 2 || self.max_server_frame > 0x7F_FFFF {
            return invalid("max_server_frame", "must be within 2..=8388607");
        }
        if self.connect_attempts == 0 {
            return invalid("connect_attempts", "must be at least 1");
        }
        if self.min_petition_signs > 9 {
            return invalid("min_petition_signs", "must be within 0..=9");
        }
        if self.presence_expiry_secs < 3 {
            return invalid("presence_expiry_secs", "must be at least 3");
        }
        if self.resolve_timeout_ms == 0 {
            return invalid("resolve_timeout_ms", "must be at least 1");
        }
        if let Err(message) = self.limits() {
            return invalid("limits", &message);
        }
        if self.turn_in_lease_secs == 0 {
            return invalid("turn_in_lease_secs", "must be at least 1");
        }
        if self.bus_poll_ms == 0 {
            return invalid("bus_poll_ms", "must be at least 1");
        }
        if !self.bus_url.is_empty() && self.bus_url.parse::<tokio_postgres::Config>().is_err() {
            return invalid("bus_url", "is not a postgres:// URL");
        }
        if self.session_queue == 0 {
            return invalid("session_queue", "must be at least 1");
        }
        for (key, url) in [
            ("characters_db_url", &self.characters_db_url),
            ("auth_db_url", &self.auth_db_url),
        ] {
            if !url.is_empty() && mysql_async::Opts::from_url(url).is_err() {
                return invalid(key, "is not a mysql:// URL");
            }
        }
        if self.link_mode == LinkMode::WotlkCrypt && self.auth_db_url.is_empty() {
            return invalid(
                "auth_db_url",
                "is required in wotlk-crypt mode (session keys live in the auth database)",
            );
        }
        Ok(())
    }

    /// The proxy's part of the configuration.
    pub fn proxy(&self) -> ProxyConfig {
        ProxyConfig {
            listen: self.listen,
            upstream: self.upstream.clone(),
            sidecar_id: self.sidecar_id.clone(),
            link_mode: self.link_mode,
            capture_dir: self.capture_dir.clone(),
            capture_format: self.capture_format,
            max_client_frame: self.max_client_frame,
            max_server_frame: self.max_server_frame,
            connect_attempts: self.connect_attempts,
            connect_backoff: Duration::from_millis(self.connect_backoff_ms),
            session_queue: self.session_queue,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            max_sessions: self.max_sessions,
            fd_reserve: self.fd_reserve,
            first_frame_timeout: Duration::from_millis(self.first_frame_timeout_ms),
        }
    }

    /// The charter's settings.
    pub fn charter_settings(&self) -> CharterSettings {
        CharterSettings {
            sidecar_id: self.sidecar_id.clone(),
            rules: Rules {
                two_side_guild: self.two_side_guild,
                min_signatures: self.min_petition_signs,
            },
            poll: Duration::from_millis(self.bus_poll_ms),
            heartbeat: Duration::from_secs(self.presence_expiry_secs / 3),
            event_ttl: Duration::from_secs(self.event_ttl_secs),
            timeout: Duration::from_millis(self.resolve_timeout_ms),
            module: self.worldserver_module,
            turn_in_lease: Duration::from_secs(self.turn_in_lease_secs),
            limits: self.limits().unwrap_or_default(),
        }
    }

    /// The default limits with `limits`' overrides.
    fn limits(&self) -> Result<Limits, String> {
        let mut limits = Limits::default();
        for (name, value) in &self.limits {
            let opcode = tc9_opcodes::TABLE
                .iter()
                .find(|row| row.opcode.name() == Some(name.as_str()))
                .map(|row| row.opcode)
                .filter(|o| limits.0.contains_key(o))
                .ok_or_else(|| format!("{name} is not an opcode the sidecar limits"))?;
            let (count, policy) = value
                .split_once(':')
                .ok_or_else(|| format!("{name} = {value:?}: expected \"PER_SECOND:kick|drop\""))?;
            let per_second = count
                .parse()
                .map_err(|_| format!("{name} = {value:?}: {count:?} is not a count"))?;
            let policy = match policy {
                "kick" => LimitPolicy::Kick,
                "drop" => LimitPolicy::Drop,
                other => return Err(format!("{name} = {value:?}: {other:?} is not kick or drop")),
            };
            limits.0.insert(opcode, Limit { per_second, policy });
        }
        Ok(limits)
    }

    /// How long presence stays valid without a heartbeat.
    pub fn presence_expiry(&self) -> Duration {
        Duration::from_secs(self.presence_expiry_secs)
    }
}

mod load;
#[cfg(test)]
mod tests;
