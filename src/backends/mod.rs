//! The adapters that implement the charter's ports and the proxy's key source:
//!
//! - [`mysql`]: AzerothCore's characters and auth databases.
//! - [`postgres`]: the realm's directory and outbox shared by its sidecars.
//! - [`memory`]: in-process tables, directory and outbox (demo, replay, a
//!   single-worldserver realm).
//! - [`nats`]: ToCloud9's NATS guild events for guilds made from charters.
//! - [`metrics`]: query timings and failures of the first two.

pub mod memory;
pub mod metrics;
pub mod mysql;
pub mod nats;
pub mod postgres;
