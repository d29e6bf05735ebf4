//! The proxy's metrics: sessions, frames, decisions and the header cipher. Names
//! start with `tc9_sidecar_`; labels are bounded: opcode names only for the opcodes
//! the handler watches (everything else is `other`), never a player.

use std::sync::Arc;

use metrics::{describe_counter, describe_gauge, describe_histogram, Counter, Unit};
use tc9_codec::Origin;
use tc9_opcodes::Opcode;

use crate::handler::Outcome;

/// Sessions currently proxied.
pub const SESSIONS_OPEN: &str = "tc9_sidecar_sessions_open";
/// Connections closed at once or early, by reason (`max_sessions`, `first_frame`).
pub const SESSIONS_REFUSED_TOTAL: &str = "tc9_sidecar_sessions_refused_total";
/// The most sessions this sidecar takes at once (configuration and descriptors).
pub const SESSIONS_CAP: &str = "tc9_sidecar_sessions_cap";
/// Sessions proxied since start.
pub const SESSIONS_TOTAL: &str = "tc9_sidecar_sessions_total";
/// Frames read, by direction and opcode.
pub const FRAMES_TOTAL: &str = "tc9_sidecar_frames_total";
/// Frame bytes read (headers included), by direction and opcode.
pub const BYTES_TOTAL: &str = "tc9_sidecar_bytes_total";
/// Decisions about intercepted frames, by opcode and outcome.
pub const DECISIONS_TOTAL: &str = "tc9_sidecar_decisions_total";
/// Time to decide about one intercepted frame, by kind (opcode).
pub const RESOLUTION_SECONDS: &str = "tc9_sidecar_resolution_seconds";
/// Headers that could not be framed, by direction.
pub const MALFORMED_FRAMES_TOTAL: &str = "tc9_sidecar_malformed_frames_total";
/// Session key lookups in crypt mode, by result.
pub const CRYPT_KEY_LOOKUPS_TOTAL: &str = "tc9_sidecar_crypt_key_lookups_total";
/// Crypt-mode sessions copied as opaque bytes for want of a key.
pub const CRYPT_FALLBACKS_TOTAL: &str = "tc9_sidecar_crypt_fallbacks_total";
/// Gateway connections closed because the worldserver could not be reached.
pub const UPSTREAM_CONNECT_FAILURES_TOTAL: &str = "tc9_sidecar_upstream_connect_failures_total";
/// Capture records dropped because the capture writer fell behind.
pub const CAPTURE_DROPPED_TOTAL: &str = "tc9_sidecar_capture_dropped_total";

/// The label of every opcode the handler does not watch.
pub const OTHER: &str = "other";

/// The direction label of frames sent by `origin`.
pub fn direction_label(origin: Origin) -> &'static str {
    match origin {
        Origin::Client => "c2s",
        Origin::Server => "s2c",
    }
}

/// The opcodes counted under their own name: the handler's watched ones.
#[derive(Debug, Clone, Default)]
pub struct OpcodeLabels(Arc<[Opcode]>);

impl OpcodeLabels {
    /// Labels for `watched`.
    pub fn new(watched: Vec<Opcode>) -> Self {
        OpcodeLabels(watched.into())
    }

    /// The opcode label of a frame: its name for watched opcodes, else `other`.
    pub fn label(&self, opcode: Opcode) -> &'static str {
        if self.0.contains(&opcode) {
            opcode.name().unwrap_or(OTHER)
        } else {
            OTHER
        }
    }

    /// The names of the watched opcodes.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().filter_map(|o| o.name())
    }
}

/// Frames and bytes of opcodes labelled `other`, counted locally over a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    frames: u64,
    bytes: u64,
}

/// Counters for the frames of one direction; the `other` series are resolved once
/// per session instead of once per frame.
#[derive(Clone)]
pub struct FrameCounters {
    direction: &'static str,
    labels: OpcodeLabels,
    other_frames: Counter,
    other_bytes: Counter,
}

impl FrameCounters {
    /// The counters of frames sent by `origin`.
    pub fn new(origin: Origin, labels: OpcodeLabels) -> Self {
        let direction = direction_label(origin);
        FrameCounters {
            direction,
            labels,
            other_frames: metrics::counter!(FRAMES_TOTAL, "direction" => direction, "opcode" => OTHER),
            other_bytes: metrics::counter!(BYTES_TOTAL, "direction" => direction, "opcode" => OTHER),
        }
    }

    /// Counts one frame of `len` bytes: labelled opcodes at once, the rest into
    /// `tally`, to be added with [`FrameCounters::add`] once per batch of frames.
    #[inline]
    pub fn tally(&self, tally: &mut Tally, opcode: Opcode, len: usize) {
        if self.labels.label(opcode) == OTHER {
            tally.frames += 1;
            tally.bytes += len as u64;
        } else {
            self.count(opcode, len);
        }
    }

    /// Adds the frames tallied as `other`.
    #[inline]
    pub fn add(&self, tally: Tally) {
        if tally.frames > 0 {
            self.other_frames.increment(tally.frames);
            self.other_bytes.increment(tally.bytes);
        }
    }

    /// Counts one frame of `len` bytes.
    pub fn count(&self, opcode: Opcode, len: usize) {
        match self.labels.label(opcode) {
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

/// Counts a decision about a frame of `opcode`.
pub fn count_decision(labels: &OpcodeLabels, opcode: Opcode, outcome: Outcome) {
    metrics::counter!(
        DECISIONS_TOTAL,
        "opcode" => labels.label(opcode),
        "outcome" => outcome.label()
    )
    .increment(1);
}

/// Counts a header that could not be framed.
pub fn count_malformed(origin: Origin) {
    metrics::counter!(MALFORMED_FRAMES_TOTAL, "direction" => direction_label(origin)).increment(1);
}

/// Results of a session-key lookup.
pub const KEY_LOOKUP_RESULTS: [&str; 3] = ["found", "missing", "error"];

/// Describes the proxy's metrics and registers their series at zero, with a series
/// of its own for each of `labels`. Call once, after the recorder is installed.
pub fn describe(labels: &OpcodeLabels) {
    describe_gauge!(SESSIONS_OPEN, "Sessions currently proxied.");
    describe_counter!(
        SESSIONS_REFUSED_TOTAL,
        "Connections closed at once (max_sessions) or before their first frame (first_frame)."
    );
    describe_gauge!(
        SESSIONS_CAP,
        "The most sessions taken at once (max_sessions and the descriptor limit)."
    );
    for reason in ["max_sessions", "first_frame"] {
        metrics::counter!(SESSIONS_REFUSED_TOTAL, "reason" => reason).absolute(0);
    }
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
    describe_histogram!(
        RESOLUTION_SECONDS,
        Unit::Seconds,
        "Time to resolve one intercepted frame, by kind."
    );
    describe_counter!(
        MALFORMED_FRAMES_TOTAL,
        "Headers that could not be framed, by direction."
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
        CAPTURE_DROPPED_TOTAL,
        "Capture records dropped because the capture writer fell behind."
    );

    metrics::gauge!(SESSIONS_OPEN).set(0.0);
    metrics::counter!(CAPTURE_DROPPED_TOTAL).absolute(0);
    metrics::counter!(SESSIONS_TOTAL).absolute(0);
    for origin in [Origin::Client, Origin::Server] {
        let direction = direction_label(origin);
        metrics::counter!(MALFORMED_FRAMES_TOTAL, "direction" => direction).absolute(0);
        for opcode in std::iter::once(OTHER).chain(labels.names()) {
            metrics::counter!(FRAMES_TOTAL, "direction" => direction, "opcode" => opcode)
                .absolute(0);
            metrics::counter!(BYTES_TOTAL, "direction" => direction, "opcode" => opcode)
                .absolute(0);
        }
    }
    for opcode in labels.names() {
        for outcome in Outcome::ALL {
            metrics::counter!(DECISIONS_TOTAL, "opcode" => opcode, "outcome" => outcome.label())
                .absolute(0);
        }
        let _ = metrics::histogram!(RESOLUTION_SECONDS, "kind" => opcode);
    }
    for result in KEY_LOOKUP_RESULTS {
        metrics::counter!(CRYPT_KEY_LOOKUPS_TOTAL, "result" => result).absolute(0);
    }
    metrics::counter!(CRYPT_FALLBACKS_TOTAL).absolute(0);
    metrics::counter!(UPSTREAM_CONNECT_FAILURES_TOTAL).absolute(0);
}
