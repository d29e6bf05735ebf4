//! tc9-sidecar: a TCP sidecar between the ToCloud9 gateway and one AzerothCore
//! worldserver. It decodes guild and petition opcodes and resolves cross-worldserver
//! charter work; everything else passes through byte for byte.
//!
//! Data flows one way: socket -> [frame](tc9_codec::framing) -> decoded message ->
//! [decision](handler::Decision) -> frame -> socket.
//!
//! - [`config`]: the TOML file, `TC9_*` variables and flags.
//! - [`server`]: the accept loop and graceful stop.
//! - [`session`]: one gateway connection and its worldserver connection.
//! - [`handler`]: the seam where the charter resolver decides about frames.
//! - [`resolver`]: the charter rules, as plain functions.
//! - [`store`]: AzerothCore's MySQL databases.
//! - [`inspect`]: human-readable packets for the CLI.

pub mod admin;
pub mod backend;
pub mod bus;
pub mod capture;
pub mod charter;
pub mod config;
pub mod demo;
pub mod handler;
pub mod inspect;
pub mod memory;
pub mod metrics;
pub mod replay;
pub mod resolver;
pub mod server;
pub mod session;
pub mod store;
