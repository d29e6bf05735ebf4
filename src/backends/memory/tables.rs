//! The rows of an in-memory characters database.

use std::collections::HashMap;
use std::time::Instant;

use tc9_charter::rules::{Guild, Petition, Player, Signature};
use tc9_charter::Notice;

/// The tables of an in-memory characters database.
#[derive(Debug, Default)]
pub struct Tables {
    /// `characters` with their `guild_member` guild.
    pub characters: HashMap<u32, Player>,
    /// `petition`, by `petitionguid`.
    pub petitions: HashMap<u32, Petition>,
    /// `petition_sign` rows: `petition_id`, `petitionguid` (0 where the worldserver
    /// wrote the row) and the signature. Signatures belong to their petition by id,
    /// as AzerothCore relates them.
    pub signatures: Vec<SignatureRow>,
    /// `guild` with its ranks, by `guildid`.
    pub guilds: HashMap<u32, Guild>,
    /// `tc9_sidecar_notice`, oldest first.
    pub notices: Vec<NoticeRow>,
}

/// One notice row.
#[derive(Debug, Clone)]
pub struct NoticeRow {
    /// The notice.
    pub notice: Notice,
    /// When it was recorded.
    pub created: Instant,
    /// Who holds it, until when.
    pub claim: Option<(String, Instant)>,
    /// It was written to a session of its character.
    pub delivered: bool,
    /// Why it cannot be delivered, if so.
    pub set_aside: Option<String>,
}

impl NoticeRow {
    /// Undelivered and not set aside.
    pub(super) fn waiting(&self) -> bool {
        !self.delivered && self.set_aside.is_none()
    }
}

/// One `petition_sign` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureRow {
    /// `petition_id`.
    pub petition_id: u32,
    /// `petitionguid` (0 for the worldserver's own rows).
    pub petition_guid: u32,
    /// `playerguid`, `player_account`.
    pub signature: Signature,
}

impl Tables {
    /// Records a notice; its id.
    pub fn post(&mut self, character: u32, payload: Vec<u8>) -> i64 {
        let id = self.notices.last().map_or(1, |row| row.notice.id + 1);
        self.notices.push(NoticeRow {
            notice: Notice {
                id,
                character,
                payload,
            },
            created: Instant::now(),
            claim: None,
            delivered: false,
            set_aside: None,
        });
        id
    }

    /// The signatures of petition `petition_id`, by player guid.
    pub fn signatures_of(&self, petition_id: u32) -> Vec<Signature> {
        let mut rows: Vec<Signature> = self
            .signatures
            .iter()
            .filter(|r| r.petition_id == petition_id)
            .map(|r| r.signature)
            .collect();
        rows.sort_by_key(|s| s.player_guid);
        rows
    }
}
