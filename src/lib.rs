//! tc9-sidecar: a TCP sidecar between the ToCloud9 gateway and one AzerothCore
//! worldserver. It decodes guild and petition opcodes and resolves cross-worldserver
//! charter work; everything else passes through byte for byte.
//!
//! The layers, each a crate, depend one way: `tc9-opcodes` <- `tc9-codec` <-
//! [`tc9-proxy`](tc9_proxy) (frames, sessions, the decision seam; no database) <-
//! [`tc9-charter`](tc9_charter) (the rules, their ports, the handler) <- this crate:
//!
//! - [`config`]: the TOML file, `TC9_*` variables and flags.
//! - [`backends`]: MySQL, PostgreSQL and in-memory adapters of the charter's ports.
//! - [`app`]: [`Sidecar::build`](app::Sidecar::build), the one place a sidecar is wired.
//! - [`admin`]: `/metrics` and the health endpoints.
//! - [`tools`]: the demo, replay and decode commands.

pub mod admin;
pub mod app;
pub mod backends;
pub mod config;
pub mod tools;

pub use app::Sidecar;
