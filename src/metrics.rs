//! Every metric the sidecar exports: names, help texts, and their registration at
//! start-up so a fresh sidecar already shows every series at zero.
//!
//! Names start with `tc9_sidecar_`; the exporter adds the `sidecar` and `realm` labels
//! to every series. Labels are bounded: opcode names only for intercepted opcodes
//! (everything else is `other`), never a player.

use metrics::{describe_counter, describe_gauge, describe_histogram, Counter, Unit};
use tc9_opcodes::Opcode;

use crate::charter::{CLIENT_OPCODES, SERVER_OPCODES};

/// Sessions currently proxied.
pub const SESSIONS_OPEN: &str = "tc9_sidecar_sessions_open";
/// Sessions proxied since start.
pub const SESSIONS_TOTAL: &str = "tc9_sidecar_sessions_total";
/// Frames read, by direction and opcode.
pub const FRAMES_TOTAL: &str = "tc9_sidecar_frames_total";
/// Frame bytes read (headers included), by direction and opcode.
pub const BYTES_TOTAL: &str = "tc9_sidecar_bytes_total";
/// Decisions about intercepted frames, by opcode and outcome.
pub const DECISIONS_TOTAL: &str = "tc9_sidecar_decisions_total";
/// Headers that could not be framed, by direction.
pub const MALFORMED_FRAMES_TOTAL: &str = "tc9_sidecar_malformed_frames_total";
/// Intercepted bodies that could not be decoded, by opcode.
pub const MALFORMED_BODIES_TOTAL: &str = "tc9_sidecar_malformed_bodies_total";
/// Charter operations, by kind and result.
pub const CHARTER_OPERATIONS_TOTAL: &str = "tc9_sidecar_charter_operations_total";
/// Time to resolve one intercepted frame, by kind (opcode).
pub const RESOLUTION_SECONDS: &str = "tc9_sidecar_resolution_seconds";
/// Resolutions that failed open, by opcode.
pub const FAILED_OPEN_TOTAL: &str = "tc9_sidecar_failed_open_total";
/// MySQL query time, by query.
pub const DB_QUERY_SECONDS: &str = "tc9_sidecar_db_query_seconds";
/// MySQL query failures, by query.
pub const DB_ERRORS_TOTAL: &str = "tc9_sidecar_db_errors_total";
/// PostgreSQL (bus) query time, by operation.
pub const BUS_QUERY_SECONDS: &str = "tc9_sidecar_bus_query_seconds";
/// PostgreSQL (bus) failures, by operation.
pub const BUS_ERRORS_TOTAL: &str = "tc9_sidecar_bus_errors_total";
/// Undelivered outbox events addressed to this sidecar.
pub const OUTBOX_PENDING: &str = "tc9_sidecar_outbox_pending";
/// Age of the oldest undelivered outbox event addressed to this sidecar.
pub const OUTBOX_LAG_SECONDS: &str = "tc9_sidecar_outbox_lag_seconds";
/// Outbox events delivered to a local session, by kind.
pub const OUTBOX_DELIVERED_TOTAL: &str = "tc9_sidecar_outbox_delivered_total";
/// Session key lookups in crypt mode, by result.
pub const CRYPT_KEY_LOOKUPS_TOTAL: &str = "tc9_sidecar_crypt_key_lookups_total";
/// Crypt-mode sessions copied as opaque bytes for want of a key.
pub const CRYPT_FALLBACKS_TOTAL: &str = "tc9_sidecar_crypt_fallbacks_total";
/// Gateway connections closed because the worldserver could not be reached.
pub const UPSTREAM_CONNECT_FAILURES_TOTAL: &str = "tc9_sidecar_upstream_connect_failures_total";
/// Turn-ins the worldserver refused while the database held enough signatures.
pub const STALE_TURN_INS_TOTAL: &str = "tc9_sidecar_stale_turn_ins_total";

/// Capture records dropped because the capture writer fell behind.
pub const CAPTURE_DROPPED_TOTAL: &str = "tc9_sidecar_capture_dropped_total";

/// The decision outcomes.
pub const OUTCOMES: [&str; 5] = [
    "forwarded",
    "rewritten",
    "answered",
    "dropped",
    "failed_open",
];
/// The label of every opcode the sidecar does not intercept.
pub const OTHER: &str = "other";

/// The direction label of frames sent by the client or the server.
pub fn direction_label(from_client: bool) -> &'static str {
    if from_client {
        "c2s"
    } else {
        "s2c"
    }
}

/// Opcodes counted under their own name: the ones the charter resolver intercepts.
pub fn labelled_opcodes() -> impl Iterator<Item = Opcode> {
    CLIENT_OPCODES.iter().chain(SERVER_OPCODES).copied()
}

/// The opcode label of a frame: its name for intercepted opcodes, else `other`.
pub fn opcode_label(opcode: Opcode) -> &'static str {
    if labelled_opcodes().any(|o| o == opcode) {
        opcode.name().unwrap_or(OTHER)
    } else {
        OTHER
    }
}

/// Charter operation kinds and the results each can have.
pub const CHARTER_RESULTS: &[(&str, &[&str])] = &[
    ("offer", &["delivered", "refused", "ignored"]),
    ("sign", &["ok", "already_signed", "refused", "ignored"]),
    ("decline", &["delivered", "owner_offline"]),
    ("query", &["answered"]),
    ("show", &["answered"]),
    ("guild_query", &["answered", "cached"]),
];

/// Frames and bytes of opcodes labelled `other`, counted locally over a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    frames: u64,
    bytes: u64,
}

/// Counters for the frames of one direction that carry no opcode label of their own,
/// resolved once per session instead of once per frame.
#[derive(Clone)]
pub struct FrameCounters {
    direction: &'static str,
    other_frames: Counter,
    other_bytes: Counter,
}

impl FrameCounters {
    /// The counters of one direction.
    pub fn new(from_client: bool) -> Self {
        let direction = direction_label(from_client);
        FrameCounters {
            direction,
            other_frames: metrics::counter!(FRAMES_TOTAL, "direction" => direction, "opcode" => OTHER),
            other_bytes: metrics::counter!(BYTES_TOTAL, "direction" => direction, "opcode" => OTHER),
        }
    }

    /// Counts one frame of `len` bytes: labelled opcodes at once, the rest into
    /// `tally`, to be added with [`FrameCounters::add`] once per batch of frames.
    pub fn tally(&self, tally: &mut Tally, opcode: Opcode, len: usize) {
        if opcode_label(opcode) == OTHER {
            tally.frames += 1;
            tally.bytes += len as u64;
        } else {
            self.count(opcode, len);
        }
    }

    /// Adds the frames tallied as `other`.
    pub fn add(&self, tally: Tally) {
        if tally.frames > 0 {
            self.other_frames.increment(tally.frames);
            self.other_bytes.increment(tally.bytes);
        }
    }

    /// Counts one frame of `len` bytes.
    pub fn count(&self, opcode: Opcode, len: usize) {
        match opcode_label(opcode) {
            OTHER => {
                self.other_frames.increment(1);
                self.other_bytes.increment(len as u64);
            }
            name => {
                metrics::counter!(FRAMES_TOTAL, "direction" => self.direction, "opcode" => name)
                    .increment(1);
                metrics::counter!(BYTES_TOTAL, "direction" => self.direction, "opcode" => name)
                    .increment(len as u64);
            }
        }
    }
}

/// Describes every metric and registers its series at zero. Call once, after the
/// recorder is installed.
pub fn describe_and_register() {
    describe_gauge!(SESSIONS_OPEN, "Sessions currently proxied.");
    describe_counter!(SESSIONS_TOTAL, "Sessions proxied since start.");
    describe_counter!(
        FRAMES_TOTAL,
        "Frames read, by direction and opcode (intercepted opcodes by name, the rest as other)."
    );
    describe_counter!(
        BYTES_TOTAL,
        Unit::Bytes,
        "Frame bytes read, headers included, by direction and opcode."
    );
    describe_counter!(
        DECISIONS_TOTAL,
        "Decisions about intercepted frames, by opcode and outcome."
    );
    describe_counter!(
        MALFORMED_FRAMES_TOTAL,
        "Headers that could not be framed, by direction."
    );
    describe_counter!(
        MALFORMED_BODIES_TOTAL,
        "Intercepted bodies that could not be decoded, by opcode."
    );
    describe_counter!(
        CHARTER_OPERATIONS_TOTAL,
        "Charter operations, by kind and result."
    );
    describe_histogram!(
        RESOLUTION_SECONDS,
        Unit::Seconds,
        "Time to resolve one intercepted frame, by kind."
    );
    describe_counter!(
        FAILED_OPEN_TOTAL,
        "Resolutions that failed open (original forwarded), by opcode."
    );
    describe_histogram!(
        DB_QUERY_SECONDS,
        Unit::Seconds,
        "MySQL query time, by query."
    );
    describe_counter!(DB_ERRORS_TOTAL, "MySQL query failures, by query.");
    describe_histogram!(
        BUS_QUERY_SECONDS,
        Unit::Seconds,
        "PostgreSQL bus query time, by operation."
    );
    describe_counter!(BUS_ERRORS_TOTAL, "PostgreSQL bus failures, by operation.");
    describe_gauge!(
        OUTBOX_PENDING,
        "Undelivered outbox events addressed to this sidecar."
    );
    describe_gauge!(
        OUTBOX_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest undelivered outbox event addressed to this sidecar."
    );
    describe_counter!(
        OUTBOX_DELIVERED_TOTAL,
        "Outbox events applied by this sidecar, by kind."
    );
    describe_counter!(
        CRYPT_KEY_LOOKUPS_TOTAL,
        "Session key lookups in wotlk-crypt mode, by result (found, missing, error after retries)."
    );
    describe_counter!(
        CRYPT_FALLBACKS_TOTAL,
        "wotlk-crypt sessions copied as opaque bytes for want of a session key."
    );
    describe_counter!(
        UPSTREAM_CONNECT_FAILURES_TOTAL,
        "Gateway connections closed because the worldserver could not be reached."
    );
    describe_counter!(
        STALE_TURN_INS_TOTAL,
        "Turn-ins the worldserver refused while the database held enough signatures."
    );

    describe_counter!(
        CAPTURE_DROPPED_TOTAL,
        "Capture records dropped because the capture writer fell behind."
    );

    metrics::gauge!(SESSIONS_OPEN).set(0.0);
    metrics::counter!(CAPTURE_DROPPED_TOTAL).absolute(0);
    metrics::counter!(SESSIONS_TOTAL).absolute(0);
    for direction in ["c2s", "s2c"] {
        metrics::counter!(MALFORMED_FRAMES_TOTAL, "direction" => direction).absolute(0);
        let labels = std::iter::once(OTHER).chain(labelled_opcodes().filter_map(|o| o.name()));
        for opcode in labels {
            metrics::counter!(FRAMES_TOTAL, "direction" => direction, "opcode" => opcode)
                .absolute(0);
            metrics::counter!(BYTES_TOTAL, "direction" => direction, "opcode" => opcode)
                .absolute(0);
        }
    }
    for opcode in labelled_opcodes().filter_map(|o| o.name()) {
        for outcome in OUTCOMES {
            metrics::counter!(DECISIONS_TOTAL, "opcode" => opcode, "outcome" => outcome)
                .absolute(0);
        }
        metrics::counter!(MALFORMED_BODIES_TOTAL, "opcode" => opcode).absolute(0);
        metrics::counter!(FAILED_OPEN_TOTAL, "opcode" => opcode).absolute(0);
        let _ = metrics::histogram!(RESOLUTION_SECONDS, "kind" => opcode);
    }
    for (kind, results) in CHARTER_RESULTS {
        for result in *results {
            metrics::counter!(CHARTER_OPERATIONS_TOTAL, "kind" => *kind, "result" => *result)
                .absolute(0);
        }
    }
    metrics::gauge!(OUTBOX_PENDING).set(0.0);
    metrics::gauge!(OUTBOX_LAG_SECONDS).set(0.0);
    for kind in [
        crate::charter::EVENT_PACKETS,
        crate::charter::EVENT_GUILD_CHANGED,
    ] {
        metrics::counter!(OUTBOX_DELIVERED_TOTAL, "kind" => kind).absolute(0);
    }
    for result in ["found", "missing", "error"] {
        metrics::counter!(CRYPT_KEY_LOOKUPS_TOTAL, "result" => result).absolute(0);
    }
    metrics::counter!(CRYPT_FALLBACKS_TOTAL).absolute(0);
    metrics::counter!(UPSTREAM_CONNECT_FAILURES_TOTAL).absolute(0);
    metrics::counter!(STALE_TURN_INS_TOTAL).absolute(0);
    for query in crate::store::QUERIES {
        metrics::counter!(DB_ERRORS_TOTAL, "query" => *query).absolute(0);
        let _ = metrics::histogram!(DB_QUERY_SECONDS, "query" => *query);
    }
    for op in crate::bus::OPERATIONS {
        metrics::counter!(BUS_ERRORS_TOTAL, "op" => *op).absolute(0);
        let _ = metrics::histogram!(BUS_QUERY_SECONDS, "op" => *op);
    }
}
