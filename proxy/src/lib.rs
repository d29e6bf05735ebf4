//! tc9-proxy: the transparent half of the sidecar. It knows frames, sessions and a
//! decision seam, and no database.
//!
//! Data flows one way: socket -> [frame](tc9_codec::framing) -> [`Handler`] ->
//! [`Decision`] -> frame -> socket. Frames no handler watches pass through as the
//! bytes that arrived.
//!
//! - [`server`]: the accept loop and graceful stop.
//! - [`session`]: one gateway connection, its worldserver connection and the facts a
//!   handler may see about it ([`SessionInfo`]).
//! - `pump`: one direction of a session, forwarding frames where they lie.
//! - [`crypt`]: the `wotlk-crypt` header-cipher switch and the [`KeySource`] it asks.
//! - [`handler`]: the seam: [`Handler`], [`Decision`], [`SessionEvent`].
//! - [`capture`]: session capture files.
//! - [`metrics`]: session, frame, decision and crypt metrics.

pub mod capture;
mod chunk;
pub mod config;
pub mod crypt;
pub mod handler;
pub mod metrics;
mod pump;
pub mod server;
pub mod session;
mod watch;

pub use config::{LinkMode, ProxyConfig};
pub use crypt::{KeyError, KeySource, SessionKey};
pub use handler::{Decision, Handler, Outcome, PassThrough, SessionEvent};
pub use server::{shutdown_signal, Server};
pub use session::{Identity, SessionInfo};
