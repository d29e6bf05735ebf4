//! The guild roster and the guild event log: the two list-shaped guild messages,
//! laid out as AzerothCore's `GuildPackets.cpp` writes them.

use super::codes::event_log;
use super::guild::GUILD_BANK_MAX_TABS;
use super::{bind_opcode, message};
use crate::wire::{describe_items, field_name, items_len, read_list, Fields, Guid, WResult, Wire};

crate::wire_struct! {
    /// A bank tab's rights for one rank.
    pub struct BankTabRights {
        /// Tab flags.
        pub flags: u32,
        /// Item withdrawals per day.
        pub withdraw_items: u32,
    }
}

crate::wire_struct! {
    /// One rank in the roster.
    pub struct RosterRank {
        /// Rights flags.
        pub rights: u32,
        /// Gold withdrawable per day.
        pub withdraw_gold: u32,
        /// Rights per bank tab.
        pub tabs: [BankTabRights; GUILD_BANK_MAX_TABS],
    }
}

/// One member in the roster. Offline members carry the days since their last save.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RosterMember {
    /// The member.
    pub guid: Guid,
    /// 1 online, 0 offline.
    pub status: u8,
    /// Name.
    pub name: String,
    /// Rank id.
    pub rank: i32,
    /// Level.
    pub level: u8,
    /// Class.
    pub class: u8,
    /// Gender.
    pub gender: u8,
    /// Zone.
    pub area: i32,
    /// Days since last save, present only when `status` is 0.
    pub last_save: Option<f32>,
    /// Public note.
    pub note: String,
    /// Officer note.
    pub officer_note: String,
}

impl Wire for RosterMember {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, guid) = Guid::read(input)?;
        let (input, status) = u8::read(input)?;
        let (input, name) = String::read(input)?;
        let (input, rank) = i32::read(input)?;
        let (input, level) = u8::read(input)?;
        let (input, class) = u8::read(input)?;
        let (input, gender) = u8::read(input)?;
        let (input, area) = i32::read(input)?;
        let (input, last_save) = if status == 0 {
            let (input, t) = f32::read(input)?;
            (input, Some(t))
        } else {
            (input, None)
        };
        let (input, note) = String::read(input)?;
        let (input, officer_note) = String::read(input)?;
        Ok((
            input,
            RosterMember {
                guid,
                status,
                name,
                rank,
                level,
                class,
                gender,
                area,
                last_save,
                note,
                officer_note,
            },
        ))
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        self.guid.write(out);
        self.status.write(out);
        self.name.write(out);
        self.rank.write(out);
        self.level.write(out);
        self.class.write(out);
        self.gender.write(out);
        self.area.write(out);
        if self.status == 0 {
            self.last_save.unwrap_or_default().write(out);
        }
        self.note.write(out);
        self.officer_note.write(out);
    }

    #[inline]
    fn wire_len(&self) -> usize {
        let last_save = if self.status == 0 { 4 } else { 0 };
        8 + 1
            + self.name.wire_len()
            + 4
            + 3
            + 4
            + last_save
            + self.note.wire_len()
            + self.officer_note.wire_len()
    }

    fn describe(&self, prefix: &str, fields: &mut Fields) {
        let f = |n| field_name(prefix, n);
        self.guid.describe(&f("guid"), fields);
        self.status.describe(&f("status"), fields);
        self.name.describe(&f("name"), fields);
        self.rank.describe(&f("rank"), fields);
        self.level.describe(&f("level"), fields);
        self.class.describe(&f("class"), fields);
        self.gender.describe(&f("gender"), fields);
        self.area.describe(&f("area"), fields);
        if let Some(t) = self.last_save {
            t.describe(&f("last_save"), fields);
        }
        self.note.describe(&f("note"), fields);
        self.officer_note.describe(&f("officer_note"), fields);
    }
}

/// The guild roster. The member count comes first, the members last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SmsgGuildRoster {
    /// Message of the day.
    pub motd: String,
    /// Guild info text.
    pub info: String,
    /// Ranks with their rights.
    pub ranks: Vec<RosterRank>,
    /// Members.
    pub members: Vec<RosterMember>,
}

impl Wire for SmsgGuildRoster {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, member_count) = u32::read(input)?;
        let (input, motd) = String::read(input)?;
        let (input, info) = String::read(input)?;
        let (input, ranks) = crate::wire::counted_u32::read(input)?;
        let (input, members) = read_list(input, member_count as usize)?;
        Ok((
            input,
            SmsgGuildRoster {
                motd,
                info,
                ranks,
                members,
            },
        ))
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        (self.members.len() as u32).write(out);
        self.motd.write(out);
        self.info.write(out);
        crate::wire::counted_u32::write(&self.ranks, out);
        for member in &self.members {
            member.write(out);
        }
    }

    #[inline]
    fn wire_len(&self) -> usize {
        4 + self.motd.wire_len()
            + self.info.wire_len()
            + crate::wire::counted_u32::wire_len(&self.ranks)
            + items_len(&self.members)
    }

    fn describe(&self, prefix: &str, fields: &mut Fields) {
        self.motd.describe(&field_name(prefix, "motd"), fields);
        self.info.describe(&field_name(prefix, "info"), fields);
        describe_items(&self.ranks, &field_name(prefix, "ranks"), fields);
        describe_items(&self.members, &field_name(prefix, "members"), fields);
    }
}
bind_opcode!(SmsgGuildRoster => SMSG_GUILD_ROSTER);

/// One guild event log entry. AzerothCore writes the other player unless the entry is
/// a join or a leave, and the rank only for promotions and demotions
/// (`wow_world_messages` has the first condition the other way round).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GuildLogEntry {
    /// An [`event_log`] type.
    pub kind: u8,
    /// The acting player.
    pub player: Guid,
    /// The other player, for all but joins and leaves.
    pub other: Option<Guid>,
    /// The new rank, for promotions and demotions.
    pub rank: Option<u8>,
    /// Seconds since the event.
    pub time: u32,
}

impl GuildLogEntry {
    /// Whether entries of `kind` carry the other player.
    pub fn has_other(kind: u8) -> bool {
        kind != event_log::JOIN_GUILD && kind != event_log::LEAVE_GUILD
    }

    /// Whether entries of `kind` carry a rank.
    pub fn has_rank(kind: u8) -> bool {
        kind == event_log::PROMOTE_PLAYER || kind == event_log::DEMOTE_PLAYER
    }
}

impl Wire for GuildLogEntry {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, kind) = u8::read(input)?;
        let (input, player) = Guid::read(input)?;
        let (input, other) = if Self::has_other(kind) {
            let (input, g) = Guid::read(input)?;
            (input, Some(g))
        } else {
            (input, None)
        };
        let (input, rank) = if Self::has_rank(kind) {
            let (input, r) = u8::read(input)?;
            (input, Some(r))
        } else {
            (input, None)
        };
        let (input, time) = u32::read(input)?;
        Ok((
            input,
            GuildLogEntry {
                kind,
                player,
                other,
                rank,
                time,
            },
        ))
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        self.kind.write(out);
        self.player.write(out);
        if Self::has_other(self.kind) {
            self.other.unwrap_or_default().write(out);
        }
        if Self::has_rank(self.kind) {
            self.rank.unwrap_or_default().write(out);
        }
        self.time.write(out);
    }

    #[inline]
    fn wire_len(&self) -> usize {
        let other = if Self::has_other(self.kind) { 8 } else { 0 };
        let rank = usize::from(Self::has_rank(self.kind));
        1 + 8 + other + rank + 4
    }

    fn describe(&self, prefix: &str, fields: &mut Fields) {
        self.kind.describe(&field_name(prefix, "kind"), fields);
        self.player.describe(&field_name(prefix, "player"), fields);
        if let Some(other) = self.other {
            other.describe(&field_name(prefix, "other"), fields);
        }
        if let Some(rank) = self.rank {
            rank.describe(&field_name(prefix, "rank"), fields);
        }
        self.time.describe(&field_name(prefix, "time"), fields);
    }
}

message! {
    /// The guild event log.
    MSG_GUILD_EVENT_LOG_QUERY => pub struct MsgGuildEventLogQueryServer {
        /// The entries.
        pub entries: Vec<GuildLogEntry> = counted_u8,
    }
}

/// Random values of the hand-written types, consistent with their conditions.
#[cfg(any(test, feature = "sample"))]
mod sample {
    use super::*;
    use crate::sample::{Sample, SampleRng};

    impl Sample for RosterMember {
        fn sample(rng: &mut SampleRng) -> Self {
            let status = rng.below(2) as u8;
            RosterMember {
                guid: Guid::sample(rng),
                status,
                name: String::sample(rng),
                rank: i32::sample(rng),
                level: u8::sample(rng),
                class: u8::sample(rng),
                gender: u8::sample(rng),
                area: i32::sample(rng),
                last_save: (status == 0).then(|| f32::sample(rng)),
                note: String::sample(rng),
                officer_note: String::sample(rng),
            }
        }
    }

    impl Sample for SmsgGuildRoster {
        fn sample(rng: &mut SampleRng) -> Self {
            SmsgGuildRoster {
                motd: String::sample(rng),
                info: String::sample(rng),
                ranks: Vec::sample(rng),
                members: Vec::sample(rng),
            }
        }
    }

    impl Sample for GuildLogEntry {
        fn sample(rng: &mut SampleRng) -> Self {
            let kind = rng.below(8) as u8;
            GuildLogEntry {
                kind,
                player: Guid::sample(rng),
                other: GuildLogEntry::has_other(kind).then(|| Guid::sample(rng)),
                rank: GuildLogEntry::has_rank(kind).then(|| u8::sample(rng)),
                time: u32::sample(rng),
            }
        }
    }
}
