//! Per-session, per-second limits on the opcodes the charter answers or resolves.
//! A packet the sidecar answers never reaches the worldserver's own flood
//! protection (`WorldSession::DosProtection::EvaluateOpcode`, `WorldSession.cpp:1433`:
//! a count per opcode per wall-clock second, the policy above it), so the sidecar
//! applies the same: AzerothCore's shipped policies kick a session above 10 per
//! second of `CMSG_PETITION_BUY`, `CMSG_PETITION_SIGN`, `CMSG_TURN_IN_PETITION` and
//! `CMSG_PETITION_QUERY`; the opcodes the sidecar makes database-bound besides those
//! are dropped above their limit. Only packets the sidecar consumes (answers, drops,
//! rewrites) count: one it forwards meets the worldserver's own protection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tc9_opcodes::Opcode;

use crate::presence::lock;

/// What happens to a packet above its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitPolicy {
    /// The session is closed (AzerothCore's `Kick`).
    Kick,
    /// The packet is dropped (AzerothCore's `DropPacket`).
    Drop,
}

impl LimitPolicy {
    /// The `policy` label.
    pub fn label(self) -> &'static str {
        match self {
            LimitPolicy::Kick => "kick",
            LimitPolicy::Drop => "drop",
        }
    }
}

/// A limit: packets per wall-clock second, and the policy above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Packets allowed per second.
    pub per_second: u32,
    /// What happens to the ones above.
    pub policy: LimitPolicy,
}

/// The limits by opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits(pub HashMap<Opcode, Limit>);

impl Default for Limits {
    /// AzerothCore's shipped policies where it has one; 10 per second, dropped, for
    /// the rest the sidecar answers from the database.
    fn default() -> Self {
        let kick = |per_second| Limit {
            per_second,
            policy: LimitPolicy::Kick,
        };
        let drop = |per_second| Limit {
            per_second,
            policy: LimitPolicy::Drop,
        };
        Limits(HashMap::from([
            (Opcode::CMSG_PETITION_BUY, kick(10)),
            (Opcode::CMSG_PETITION_SIGN, kick(10)),
            (Opcode::CMSG_TURN_IN_PETITION, kick(10)),
            (Opcode::CMSG_PETITION_QUERY, kick(10)),
            (Opcode::CMSG_PETITION_SHOW_SIGNATURES, drop(10)),
            (Opcode::CMSG_OFFER_PETITION, drop(10)),
            (Opcode::MSG_PETITION_DECLINE, drop(10)),
            (Opcode::CMSG_GUILD_QUERY, drop(20)),
        ]))
    }
}

/// One session's counts: per opcode, the second counted and the count.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    counts: Mutex<HashMap<Opcode, (u64, u32)>>,
    /// Whether this session's first excess was logged.
    logged: AtomicBool,
}

impl Counts {
    /// The policy to apply to one more packet of `opcode` this second, when the
    /// session already used its limit.
    pub(crate) fn exceeded(&self, limits: &Limits, opcode: Opcode) -> Option<LimitPolicy> {
        let limit = limits.0.get(&opcode)?;
        let second = now();
        let counts = lock(&self.counts);
        let used = counts
            .get(&opcode)
            .filter(|(at, _)| *at == second)
            .map_or(0, |(_, count)| *count);
        (used >= limit.per_second).then_some(limit.policy)
    }

    /// Counts a packet of `opcode` the sidecar consumed.
    pub(crate) fn consumed(&self, opcode: Opcode) {
        let second = now();
        let mut counts = lock(&self.counts);
        let (at, count) = counts.entry(opcode).or_insert((second, 0));
        if *at != second {
            *at = second;
            *count = 0;
        }
        *count += 1;
    }

    /// True the first time only: excesses are logged once per session.
    pub(crate) fn first_excess(&self) -> bool {
        !self.logged.swap(true, Ordering::Relaxed)
    }
}

/// The wall-clock second.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_per_second_and_opcode() {
        let limits = Limits::default();
        let counts = Counts::default();
        let over: Vec<Option<LimitPolicy>> = (0..11)
            .map(|_| {
                let over = counts.exceeded(&limits, Opcode::CMSG_PETITION_SIGN);
                counts.consumed(Opcode::CMSG_PETITION_SIGN);
                over
            })
            .collect();
        // Unless the second turned over in between, the eleventh is the first above.
        if over[10].is_some() {
            assert!(over[..10].iter().all(Option::is_none));
            assert_eq!(over[10], Some(LimitPolicy::Kick));
        }
        assert_eq!(
            counts.exceeded(&limits, Opcode::CMSG_PING),
            None,
            "no limit"
        );
        assert!(counts.first_excess());
        assert!(!counts.first_excess());
    }
}
