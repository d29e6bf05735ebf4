//! tc9-testkit: what the integration tests and benches share, written once.
//!
//! - [`db`]: a MariaDB database with AzerothCore's tables and a PostgreSQL
//!   database, each of its own per test and dropped after it.
//! - [`world`]: a scripted worldserver; [`gateway`]: a scripted ToCloud9 gateway.
//! - [`relay`]: a TCP relay a fault test breaks instead of a shared server.
//! - [`model`]: a realm of model worldservers with their sidecars, and a charter's
//!   steps.
//! - [`process`]: the sidecar binary as a process, for `kill -9`; [`realm`]: a
//!   characters database and a bus with sidecars configured for them.
//! - [`sidecar`]: sidecars started through [`tc9_sidecar::Sidecar`]; [`scripted`]: peers
//!   that frame packets themselves, plain or with `wow_srp`'s header crypto.
//! - [`http`]: GET from the admin endpoints, sums of metrics; [`wait`]: [`within`] and [`eventually`];
//!   [`frames`]: frame builders, readers and stream comparison; [`vectors`]: the
//!   real packets of `../shared/vectors`.

pub mod db;
pub mod frames;
pub mod gateway;
pub mod http;
pub mod model;
pub mod process;
pub mod realm;
pub mod relay;
pub mod scripted;
pub mod sidecar;
pub mod vectors;
pub mod wait;
pub mod world;

pub use db::{MariaDb, PgDb, SignRow};
pub use frames::{client, client_frame, read_frame, server, server_frame, stream_difference};
pub use gateway::Gateway;
pub use http::{http_get, metric_sum};
pub use process::SidecarProcess;
pub use realm::{BusRealm, CHARTER};
pub use relay::{Cut, Relay};
pub use sidecar::{start_sidecar, start_sidecar_with, test_config};
pub use wait::{eventually, lock, within};
pub use world::World;

use std::time::Duration;

/// How long any single network step may take before a test fails.
pub const STEP: Duration = Duration::from_secs(10);
/// How long "nothing is answered" is watched.
pub const SILENCE: Duration = Duration::from_millis(500);
/// The MariaDB server, without a database.
pub const MARIADB: &str = "mysql://root@127.0.0.1:3306";
/// The MariaDB server's address, for relays.
pub const MARIADB_ADDR: &str = "127.0.0.1:3306";
/// The PostgreSQL server's maintenance database.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The PostgreSQL server's address, for relays.
pub const POSTGRES_ADDR: &str = "127.0.0.1:5432";

/// Whether `connect` failed because the other end accepted and closed the
/// connection before `connect` returned: a reset, or `EPIPE` where its FIN came
/// before the reset (Linux's `tcp_reset` in CLOSE_WAIT).
pub fn closed_at_connect(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}

/// A `/proc/self/status` field of this process in KiB (`VmRSS:`, `VmHWM:`, ...);
/// 0 where it cannot be read.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
