//! tc9-charter: cross-worldserver guild charter work, as a proxy
//! [`Handler`](tc9_proxy::Handler).
//!
//! - [`rules`]: AzerothCore's charter rules as plain functions over plain data.
//! - [`ports`]: what the charter needs from a realm ([`CharterStore`],
//!   [`Directory`]), in its own types; the sidecar's backends implement them.
//! - [`cmd`]: one command per watched opcode.
//! - [`CharterHandler`]: the handler that runs them, fails open, and consumes this
//!   sidecar's outbox in the background.
//! - [`metrics`]: charter operations and the outbox, with typed labels.

pub mod cmd;
mod deliverer;
mod guilds;
mod handler;
pub mod limits;
pub mod metrics;
mod outbox;
pub mod ports;
mod presence;
pub mod rules;
mod upkeep;
mod whereabouts;

pub use guilds::{GUILD_BROADCAST_GAP, GUILD_CACHE_TTL, GUILD_UNKNOWN_TTL};
pub use handler::{CharterHandler, CharterSettings};
pub use outbox::{
    decode_frames, encode_frames, owner_notice, PayloadError, CLAIM_HOLD, DELIVERY_WAIT, HELD_HOLD,
};
pub use ports::{
    Announcer, BackendError, CharterStore, Deliverer, Directory, Event, EventKind, GuildCreated,
    Listener, Notice, NoticeBacklog, Roster, Settle, Signed, Wakeup,
};
pub use presence::{CharterSession, Session};
pub use rules::{CharterKey, Guild, Petition, Player, Rules, SignVerdict, Signature};

use tc9_opcodes::Opcode;

/// Every opcode the charter may intercept, client ones first.
pub fn watched() -> impl Iterator<Item = Opcode> {
    cmd::CLIENT_OPCODES
        .iter()
        .chain(cmd::SERVER_OPCODES)
        .copied()
}
