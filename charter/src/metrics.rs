//! The charter's metrics, with typed labels: an [`Operation`] and the [`OpResult`]s
//! it can have, so no label string is copied between files.

use metrics::{describe_counter, describe_gauge, Unit};

use crate::ports::EventKind;
use crate::watched;

/// Charter operations, by kind and result.
pub const CHARTER_OPERATIONS_TOTAL: &str = "tc9_sidecar_charter_operations_total";
/// Resolutions that failed open, by opcode.
pub const FAILED_OPEN_TOTAL: &str = "tc9_sidecar_failed_open_total";
/// Intercepted bodies that could not be decoded, by opcode.
pub const MALFORMED_BODIES_TOTAL: &str = "tc9_sidecar_malformed_bodies_total";
/// Undelivered notices for characters in the world behind this sidecar.
pub const OUTBOX_PENDING: &str = "tc9_sidecar_outbox_pending";
/// Age of the oldest of those.
pub const OUTBOX_LAG_SECONDS: &str = "tc9_sidecar_outbox_lag_seconds";
/// Notices (`packets`) written to a local session, and bus events applied, by kind.
pub const OUTBOX_DELIVERED_TOTAL: &str = "tc9_sidecar_outbox_delivered_total";
/// The `kind` label of notices.
pub const NOTICE_KIND: &str = "packets";
/// Undelivered notices realm-wide, owners offline included.
pub const NOTICES_WAITING: &str = "tc9_sidecar_notices_waiting";
/// Notices set aside realm-wide (cannot be delivered).
pub const NOTICES_SET_ASIDE: &str = "tc9_sidecar_notices_set_aside";
/// Notices this sidecar set aside.
pub const NOTICES_SET_ASIDE_TOTAL: &str = "tc9_sidecar_notices_set_aside_total";
/// Notices given up at their TTL, their character never online.
pub const NOTICES_EXPIRED_TOTAL: &str = "tc9_sidecar_notices_expired_total";
/// Deliveries not written within the delivery wait (a client that does not read).
pub const DELIVERIES_STALLED_TOTAL: &str = "tc9_sidecar_deliveries_stalled_total";
/// Guild creations announced to ToCloud9 (NATS), by result (`ok`, `failed`).
pub const ANNOUNCED_TOTAL: &str = "tc9_sidecar_guild_announcements_total";
/// 1 while the bus answers heartbeats, else 0 (0 without a bus).
pub const BUS_UP: &str = "tc9_sidecar_bus_up";
/// Times every local character's presence was announced again after a failure.
pub const PRESENCE_REANNOUNCED_TOTAL: &str = "tc9_sidecar_presence_reannounced_total";
/// Turn-ins the worldserver refused while the database held enough signatures.
pub const STALE_TURN_INS_TOTAL: &str = "tc9_sidecar_stale_turn_ins_total";
/// Packets above their per-session limit, by opcode and policy.
pub const LIMITED_TOTAL: &str = "tc9_sidecar_limited_total";
/// Guild-charter turn-ins, by who answered and how they ended.
pub const TURN_INS_TOTAL: &str = "tc9_sidecar_turn_ins_total";
/// 1 when the worldserver runs `mod-tc9-sidecar` (`worldserver_module`), else 0.
pub const WORLDSERVER_MODULE: &str = "tc9_sidecar_worldserver_module";

/// How a guild-charter turn-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnInResult {
    /// The guild was created.
    Ok,
    /// The owner is in a guild.
    AlreadyInGuild,
    /// A guild of the charter's name exists.
    NameTaken,
    /// Too few signatures.
    NeedMoreSignatures,
    /// Any other answer.
    Other,
}

/// Who answered a turn-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// The sidecar, before the worldserver was asked.
    Sidecar,
    /// The worldserver.
    Worldserver,
}

impl TurnInResult {
    /// Every result.
    pub const ALL: [TurnInResult; 5] = [
        TurnInResult::Ok,
        TurnInResult::AlreadyInGuild,
        TurnInResult::NameTaken,
        TurnInResult::NeedMoreSignatures,
        TurnInResult::Other,
    ];

    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            TurnInResult::Ok => "ok",
            TurnInResult::AlreadyInGuild => "already_in_guild",
            TurnInResult::NameTaken => "name_taken",
            TurnInResult::NeedMoreSignatures => "need_more_signatures",
            TurnInResult::Other => "other",
        }
    }
}

impl Answerer {
    /// The `by` label.
    pub fn label(self) -> &'static str {
        match self {
            Answerer::Sidecar => "sidecar",
            Answerer::Worldserver => "worldserver",
        }
    }
}

/// Counts one turn-in.
pub fn count_turn_in(by: Answerer, result: TurnInResult) {
    metrics::counter!(TURN_INS_TOTAL, "by" => by.label(), "result" => result.label()).increment(1);
}

/// A charter operation the sidecar resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `CMSG_OFFER_PETITION` to a player elsewhere.
    Offer,
    /// `CMSG_PETITION_SIGN`.
    Sign,
    /// `MSG_PETITION_DECLINE`.
    Decline,
    /// `CMSG_PETITION_QUERY`.
    Query,
    /// `CMSG_PETITION_SHOW_SIGNATURES`.
    Show,
    /// `CMSG_GUILD_QUERY`.
    GuildQuery,
}

/// How a charter operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpResult {
    /// Shown to, or told, the player elsewhere.
    Delivered,
    /// Answered with an error.
    Refused,
    /// AzerothCore answers nothing.
    Ignored,
    /// Recorded.
    Ok,
    /// The account signed already.
    AlreadySigned,
    /// The owner is online nowhere.
    OwnerOffline,
    /// Answered from the database.
    Answered,
    /// Answered from the cache.
    Cached,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 6] = [
        Operation::Offer,
        Operation::Sign,
        Operation::Decline,
        Operation::Query,
        Operation::Show,
        Operation::GuildQuery,
    ];

    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Offer => "offer",
            Operation::Sign => "sign",
            Operation::Decline => "decline",
            Operation::Query => "query",
            Operation::Show => "show",
            Operation::GuildQuery => "guild_query",
        }
    }

    /// The results this operation can have.
    pub fn results(self) -> &'static [OpResult] {
        use OpResult::*;
        match self {
            Operation::Offer => &[Delivered, Refused, Ignored],
            Operation::Sign => &[Ok, AlreadySigned, Refused, Ignored],
            Operation::Decline => &[Delivered, OwnerOffline],
            Operation::Query | Operation::Show => &[Answered],
            Operation::GuildQuery => &[Answered, Cached],
        }
    }
}

impl OpResult {
    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            OpResult::Delivered => "delivered",
            OpResult::Refused => "refused",
            OpResult::Ignored => "ignored",
            OpResult::Ok => "ok",
            OpResult::AlreadySigned => "already_signed",
            OpResult::OwnerOffline => "owner_offline",
            OpResult::Answered => "answered",
            OpResult::Cached => "cached",
        }
    }
}

/// Counts one charter operation.
pub fn count(operation: Operation, result: OpResult) {
    debug_assert!(operation.results().contains(&result));
    metrics::counter!(CHARTER_OPERATIONS_TOTAL, "kind" => operation.label(), "result" => result.label())
        .increment(1);
}

/// The `kind` label of an outbox event this sidecar applied.
pub fn event_label(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::GuildChanged => "guild_changed",
        _ => "packets",
    }
}

/// Describes the charter's metrics and registers their series at zero. Call once,
/// after the recorder is installed.
pub fn describe() {
    describe_counter!(
        CHARTER_OPERATIONS_TOTAL,
        "Charter operations, by kind and result."
    );
    describe_counter!(
        FAILED_OPEN_TOTAL,
        "Resolutions that failed open (original forwarded), by opcode."
    );
    describe_counter!(
        MALFORMED_BODIES_TOTAL,
        "Intercepted bodies that could not be decoded, by opcode."
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Undelivered notices for characters in the world behind this sidecar."
    );
    describe_gauge!(
        OUTBOX_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest undelivered notice for a character in the world here."
    );
    describe_counter!(
        OUTBOX_DELIVERED_TOTAL,
        "Notices written to a local session (packets) and bus events applied, by kind."
    );
    describe_gauge!(
        NOTICES_WAITING,
        "Undelivered notices realm-wide, owners offline included."
    );
    describe_gauge!(NOTICES_SET_ASIDE, "Notices set aside realm-wide.");
    describe_counter!(
        NOTICES_SET_ASIDE_TOTAL,
        "Notices this sidecar set aside (undecodable)."
    );
    describe_counter!(
        NOTICES_EXPIRED_TOTAL,
        "Notices given up at their TTL (their character never came online)."
    );
    describe_counter!(
        DELIVERIES_STALLED_TOTAL,
        "Deliveries not written within the delivery wait (a client that does not read)."
    );
    describe_counter!(
        ANNOUNCED_TOTAL,
        "Guild creations announced to ToCloud9 over NATS, by result (ok, failed)."
    );
    for result in ["ok", "failed"] {
        metrics::counter!(ANNOUNCED_TOTAL, "result" => result).absolute(0);
    }
    describe_gauge!(
        BUS_UP,
        "1 while the bus answers heartbeats, else 0 (0 without a bus)."
    );
    metrics::gauge!(BUS_UP).set(0.0);
    describe_counter!(
        PRESENCE_REANNOUNCED_TOTAL,
        "Times every local character's presence was announced again after a failure."
    );
    for name in [
        NOTICES_SET_ASIDE_TOTAL,
        NOTICES_EXPIRED_TOTAL,
        DELIVERIES_STALLED_TOTAL,
        PRESENCE_REANNOUNCED_TOTAL,
    ] {
        metrics::counter!(name).absolute(0);
    }
    metrics::gauge!(NOTICES_WAITING).set(0.0);
    metrics::gauge!(NOTICES_SET_ASIDE).set(0.0);
    describe_counter!(
        STALE_TURN_INS_TOTAL,
        "Turn-ins the worldserver refused while the database held enough signatures."
    );
    for opcode in watched().filter_map(|o| o.name()) {
        metrics::counter!(MALFORMED_BODIES_TOTAL, "opcode" => opcode).absolute(0);
        metrics::counter!(FAILED_OPEN_TOTAL, "opcode" => opcode).absolute(0);
    }
    for operation in Operation::ALL {
        for result in operation.results() {
            metrics::counter!(CHARTER_OPERATIONS_TOTAL, "kind" => operation.label(), "result" => result.label())
                .absolute(0);
        }
    }
    metrics::gauge!(OUTBOX_PENDING).set(0.0);
    metrics::gauge!(OUTBOX_LAG_SECONDS).set(0.0);
    for kind in &EventKind::KNOWN {
        metrics::counter!(OUTBOX_DELIVERED_TOTAL, "kind" => event_label(kind)).absolute(0);
    }
    metrics::counter!(STALE_TURN_INS_TOTAL).absolute(0);
    describe_counter!(
        TURN_INS_TOTAL,
        "Guild-charter turn-ins, by who answered (sidecar, worldserver) and result."
    );
    describe_gauge!(
        WORLDSERVER_MODULE,
        "1 when the worldserver runs mod-tc9-sidecar (worldserver_module), else 0."
    );
    describe_counter!(
        LIMITED_TOTAL,
        "Packets above their per-session, per-second limit, by opcode and policy (kick, drop)."
    );
    for (opcode, limit) in &crate::limits::Limits::default().0 {
        if let Some(name) = opcode.name() {
            metrics::counter!(LIMITED_TOTAL, "opcode" => name, "policy" => limit.policy.label())
                .absolute(0);
        }
    }
    for by in [Answerer::Sidecar, Answerer::Worldserver] {
        for result in TurnInResult::ALL {
            metrics::counter!(TURN_INS_TOTAL, "by" => by.label(), "result" => result.label())
                .absolute(0);
        }
    }
}
