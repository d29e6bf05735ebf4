//! Who plays behind this sidecar: the charter's state per session, and the
//! sessions whose character is in the world, by character.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tc9_codec::messages::SmsgPetitionShowSignatures;
use tc9_codec::{Frame, Message, Opcode};
use tc9_proxy::SessionInfo;

use crate::rules::{CharterKey, Player};

/// A proxy session with the charter's state.
pub type Session = SessionInfo<CharterSession>;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the charter keeps per session; it ends with the session.
#[derive(Debug, Default)]
pub struct CharterSession {
    /// The character in the world, as the characters DB had it at login.
    player: Mutex<Option<Player>>,
    /// The turn-in under way on this session, until the worldserver answers.
    turn_in: Mutex<Option<TurnIn>>,
    /// The guild charter last shown to this session's player: the one a sign
    /// names, almost always, for the client signs from that list.
    shown: Mutex<Option<CharterKey>>,
    /// Packets per opcode this second, for the limits.
    pub(crate) counts: crate::limits::Counts,
}

/// A turn-in the worldserver has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TurnIn {
    /// The charter item.
    pub(crate) petition: u32,
    /// The guild it makes.
    pub(crate) name: String,
    /// The realm's guild-creation lease, when this session holds it.
    pub(crate) lease: Option<String>,
}

impl CharterSession {
    /// The character looked up at login, if that lookup has finished.
    pub fn player(&self) -> Option<Player> {
        lock(&self.player).clone()
    }

    pub(crate) fn set_player(&self, player: Option<Player>) {
        *lock(&self.player) = player;
    }

    /// The charter item `petition_guid` with its owner, if it was the last guild
    /// charter shown here.
    pub(crate) fn shown(&self, petition_guid: u32) -> Option<CharterKey> {
        lock(&self.shown).filter(|c| c.petition_guid == petition_guid)
    }

    pub(crate) fn set_shown(&self, charter: CharterKey) {
        *lock(&self.shown) = Some(charter);
    }

    /// Notes the guild charter a delivered signature list among `frames` shows (an
    /// offer from another worldserver), which the player's sign then names.
    pub(crate) fn saw_lists(&self, frames: &[Frame]) {
        for frame in frames {
            if frame.opcode() != Opcode::SMSG_PETITION_SHOW_SIGNATURES {
                continue;
            }
            if let Ok(shown) = SmsgPetitionShowSignatures::decode(frame.body()) {
                self.set_shown(CharterKey {
                    petition_guid: shown.petition.low(),
                    owner_guid: shown.owner.low(),
                });
            }
        }
    }

    pub(crate) fn turn_in(&self) -> Option<TurnIn> {
        lock(&self.turn_in).clone()
    }

    pub(crate) fn set_turn_in(&self, turn_in: Option<TurnIn>) {
        *lock(&self.turn_in) = turn_in;
    }
}

/// The sessions of this sidecar whose character is in the world, by character guid.
#[derive(Debug, Default)]
pub(crate) struct LocalSessions(Mutex<HashMap<u32, Weak<Session>>>);

impl LocalSessions {
    pub(crate) fn get(&self, character: u32) -> Option<Arc<Session>> {
        lock(&self.0).get(&character).and_then(Weak::upgrade)
    }

    /// The characters in the world here.
    pub(crate) fn characters(&self) -> Vec<u32> {
        lock(&self.0)
            .iter()
            .filter(|(_, w)| w.strong_count() > 0)
            .map(|(c, _)| *c)
            .collect()
    }

    pub(crate) fn insert(&self, character: u32, session: &Arc<Session>) {
        lock(&self.0).insert(character, Arc::downgrade(session));
    }

    /// Removes `character` if it is still bound to `session`.
    pub(crate) fn remove(&self, character: u32, session: &Arc<Session>) {
        let mut map = lock(&self.0);
        if map
            .get(&character)
            .is_some_and(|w| w.as_ptr() == Arc::as_ptr(session))
        {
            map.remove(&character);
        }
    }
}
