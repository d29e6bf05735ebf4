//! Guild answers served from memory: `SMSG_GUILD_QUERY_RESPONSE` frames by guild
//! id, and ids the database does not know, dropped after [`GUILD_CACHE_TTL`] or when
//! any sidecar announces a guild change (a new guild included).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tc9_codec::Frame;

use crate::presence::lock;

/// How long a guild answer is served from the cache; guild events clear it sooner.
pub const GUILD_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long an id the database does not know is remembered as unknown (a guild
/// made behind every sidecar's back, by a GM command, shows after this).
pub const GUILD_UNKNOWN_TTL: Duration = Duration::from_secs(2);

/// Least time between two guild-change broadcasts of one sidecar (every online
/// member of a guild sees the same guild event).
pub const GUILD_BROADCAST_GAP: Duration = Duration::from_secs(1);

/// Cached guild answers (`None`: no such guild), and when this sidecar last
/// broadcast a change.
#[derive(Debug, Default)]
pub(crate) struct GuildCache {
    answers: Mutex<HashMap<u32, (Instant, Option<Frame>)>>,
    last_broadcast: Mutex<Option<Instant>>,
}

impl GuildCache {
    /// The cached answer for `guild_id`, if fresh: `Some(None)` when the guild is
    /// known not to exist.
    pub(crate) fn get(&self, guild_id: u32) -> Option<Option<Frame>> {
        lock(&self.answers)
            .get(&guild_id)
            .filter(|(read, answer)| {
                read.elapsed()
                    < if answer.is_some() {
                        GUILD_CACHE_TTL
                    } else {
                        GUILD_UNKNOWN_TTL
                    }
            })
            .map(|(_, frame)| frame.clone())
    }

    pub(crate) fn insert(&self, guild_id: u32, answer: Frame) {
        lock(&self.answers).insert(guild_id, (Instant::now(), Some(answer)));
    }

    /// Remembers that no guild has `guild_id`.
    pub(crate) fn insert_unknown(&self, guild_id: u32) {
        lock(&self.answers).insert(guild_id, (Instant::now(), None));
    }

    pub(crate) fn clear(&self) {
        lock(&self.answers).clear();
    }

    /// Whether a broadcast may go out now (and, if so, notes that it does).
    pub(crate) fn may_broadcast(&self) -> bool {
        let mut last = lock(&self.last_broadcast);
        if last.is_some_and(|at| at.elapsed() < GUILD_BROADCAST_GAP) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// The guild-creation lease of a sidecar without a bus: one sidecar is the realm.
#[derive(Debug, Default)]
pub(crate) struct LocalLease(Mutex<Option<(String, Instant)>>);

impl LocalLease {
    /// Takes the lease for `holder` for `ttl` if it is free, expired or already
    /// `holder`'s.
    pub(crate) fn take(&self, holder: &str, ttl: Duration) -> bool {
        let mut lease = lock(&self.0);
        let free = lease
            .as_ref()
            .is_none_or(|(held_by, until)| *until < Instant::now() || held_by == holder);
        if free {
            *lease = Some((holder.to_owned(), Instant::now() + ttl));
        }
        free
    }

    /// Gives the lease back if `holder` holds it.
    pub(crate) fn release(&self, holder: &str) {
        let mut lease = lock(&self.0);
        if lease.as_ref().is_some_and(|(held_by, _)| held_by == holder) {
            *lease = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tc9_codec::{Opcode, Origin};

    #[test]
    fn unknown_guilds_are_remembered_until_a_change() {
        let cache = GuildCache::default();
        assert_eq!(cache.get(7), None, "never asked");
        cache.insert_unknown(7);
        assert_eq!(cache.get(7), Some(None), "known not to exist");
        let answer = Frame::new(Origin::Server, Opcode::SMSG_GUILD_QUERY_RESPONSE, b"x").unwrap();
        cache.insert(8, answer.clone());
        assert_eq!(cache.get(8), Some(Some(answer)));
        cache.clear();
        assert_eq!(
            (cache.get(7), cache.get(8)),
            (None, None),
            "a guild change forgets both"
        );
    }
}
