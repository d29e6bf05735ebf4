//! Guild messages, laid out as AzerothCore's `GuildPackets.cpp` reads and writes them.

use nom::number::complete::{le_f32, le_u32, le_u8};

use super::{bind_opcode, message};
use crate::wire::{describe_items, field_name, read_list, Fields, Guid, WResult, Wire};

/// Banks tabs a guild can have (AzerothCore `GUILD_BANK_MAX_TABS`).
pub const GUILD_BANK_MAX_TABS: usize = 6;

/// `SMSG_GUILD_COMMAND_RESULT` commands (AzerothCore `Guild.h`).
pub mod command {
    /// Guild creation (also charter errors).
    pub const CREATE: i32 = 0;
    /// Invitations (also charter signing and offering errors).
    pub const INVITE: i32 = 1;
    /// Leaving.
    pub const QUIT: i32 = 3;
    /// Roster.
    pub const ROSTER: i32 = 5;
    /// Promotion.
    pub const PROMOTE: i32 = 6;
    /// Demotion.
    pub const DEMOTE: i32 = 7;
    /// Removal.
    pub const REMOVE: i32 = 8;
    /// Leader change.
    pub const CHANGE_LEADER: i32 = 10;
    /// Message of the day.
    pub const EDIT_MOTD: i32 = 11;
    /// Guild chat.
    pub const GUILD_CHAT: i32 = 13;
    /// Founding.
    pub const FOUNDER: i32 = 14;
    /// Rank change.
    pub const CHANGE_RANK: i32 = 16;
    /// Public note.
    pub const PUBLIC_NOTE: i32 = 19;
    /// Bank tab view.
    pub const VIEW_TAB: i32 = 21;
    /// Bank item move.
    pub const MOVE_ITEM: i32 = 22;
    /// Repair.
    pub const REPAIR: i32 = 25;
}

/// `SMSG_GUILD_COMMAND_RESULT` errors (AzerothCore `Guild.h`; `wow_world_messages`'
/// wrath enum numbers some of these differently).
pub mod command_error {
    #![allow(missing_docs)]
    pub const SUCCESS: i32 = 0;
    pub const INTERNAL: i32 = 1;
    pub const ALREADY_IN_GUILD: i32 = 2;
    pub const ALREADY_IN_GUILD_S: i32 = 3;
    pub const INVITED_TO_GUILD: i32 = 4;
    pub const ALREADY_INVITED_TO_GUILD_S: i32 = 5;
    pub const NAME_INVALID: i32 = 6;
    pub const NAME_EXISTS_S: i32 = 7;
    pub const PERMISSIONS: i32 = 8;
    pub const PLAYER_NOT_IN_GUILD: i32 = 9;
    pub const PLAYER_NOT_IN_GUILD_S: i32 = 10;
    pub const PLAYER_NOT_FOUND_S: i32 = 11;
    pub const NOT_ALLIED: i32 = 12;
    pub const RANK_TOO_HIGH_S: i32 = 13;
    pub const RANK_TOO_LOW_S: i32 = 14;
    pub const RANKS_LOCKED: i32 = 17;
    pub const RANK_IN_USE: i32 = 18;
    pub const IGNORING_YOU_S: i32 = 19;
    pub const UNK1: i32 = 20;
    pub const WITHDRAW_LIMIT: i32 = 25;
    pub const NOT_ENOUGH_MONEY: i32 = 26;
    pub const BANK_FULL: i32 = 28;
    pub const ITEM_NOT_FOUND: i32 = 29;
}

/// `SMSG_GUILD_EVENT` event types that carry a trailing guid.
pub mod event {
    /// A member joined.
    pub const JOINED: u8 = 3;
    /// A member left.
    pub const LEFT: u8 = 4;
    /// A member came online.
    pub const SIGNED_ON: u8 = 12;
    /// A member went offline.
    pub const SIGNED_OFF: u8 = 13;
    /// The guild has a new leader.
    pub const LEADER_CHANGED: u8 = 7;
    /// The guild was disbanded.
    pub const DISBANDED: u8 = 8;
    /// The guild's tabard (emblem) changed.
    pub const TABARD_CHANGED: u8 = 9;
    /// A rank was renamed or its rights changed.
    pub const RANK_UPDATED: u8 = 10;
    /// A rank was deleted.
    pub const RANK_DELETED: u8 = 11;

    /// Whether the event changes what `SMSG_GUILD_QUERY_RESPONSE` shows.
    pub fn changes_guild_query(event: u8) -> bool {
        matches!(
            event,
            LEADER_CHANGED | DISBANDED | TABARD_CHANGED | RANK_UPDATED | RANK_DELETED
        )
    }

    /// Whether AzerothCore appends the member's guid to this event.
    pub fn has_guid(event: u8) -> bool {
        matches!(event, JOINED | LEFT | SIGNED_ON | SIGNED_OFF)
    }
}

message! {
    /// The client asks for a guild's name, ranks and emblem.
    CMSG_GUILD_QUERY => pub struct CmsgGuildQuery {
        /// `guild.guildid`.
        pub guild_id: u32,
    }
}

crate::wire_struct! {
    /// A guild's emblem, as five colours and styles.
    pub struct GuildEmblem {
        /// `guild.EmblemStyle`.
        pub emblem_style: u32,
        /// `guild.EmblemColor`.
        pub emblem_color: u32,
        /// `guild.BorderStyle`.
        pub border_style: u32,
        /// `guild.BorderColor`.
        pub border_color: u32,
        /// `guild.BackgroundColor`.
        pub background_color: u32,
    }
}

message! {
    /// A guild's name, ranks and emblem.
    ///
    /// AzerothCore ends the body with the rank count; `wow_world_messages` stops before it.
    SMSG_GUILD_QUERY_RESPONSE => pub struct SmsgGuildQueryResponse {
        /// `guild.guildid`.
        pub guild_id: u32,
        /// `guild.name`.
        pub name: String,
        /// `guild_rank.rname` by rank id; empty when unused.
        pub rank_names: [String; 10],
        /// The emblem.
        pub emblem: GuildEmblem,
        /// How many ranks the guild has.
        pub rank_count: u32,
    }
}

message! {
    /// The client founds a guild (GM command path).
    CMSG_GUILD_CREATE => pub struct CmsgGuildCreate {
        /// The guild name.
        pub name: String,
    }
}

message! {
    /// The client invites a player by name.
    CMSG_GUILD_INVITE => pub struct CmsgGuildInvite {
        /// The invitee.
        pub name: String,
    }
}

message! {
    /// A player is invited to a guild.
    SMSG_GUILD_INVITE => pub struct SmsgGuildInvite {
        /// The inviter's name.
        pub inviter: String,
        /// The guild's name.
        pub guild_name: String,
    }
}

message! {
    /// The invitee accepts.
    CMSG_GUILD_ACCEPT => pub struct CmsgGuildAccept {}
}

message! {
    /// The invitee declines.
    CMSG_GUILD_DECLINE => pub struct CmsgGuildDecline {}
}

message! {
    /// The inviter is told who declined.
    SMSG_GUILD_DECLINE => pub struct SmsgGuildDecline {
        /// The decliner's name.
        pub name: String,
    }
}

message! {
    /// The client asks for guild info.
    CMSG_GUILD_INFO => pub struct CmsgGuildInfo {}
}

message! {
    /// Guild info.
    SMSG_GUILD_INFO => pub struct SmsgGuildInfo {
        /// The guild's name.
        pub name: String,
        /// Creation date as a packed time.
        pub created: u32,
        /// Members.
        pub members: i32,
        /// Distinct accounts among the members.
        pub accounts: i32,
    }
}

message! {
    /// The client asks for the roster.
    CMSG_GUILD_ROSTER => pub struct CmsgGuildRoster {}
}

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
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, guid) = Guid::read(input)?;
        let (input, status) = le_u8(input)?;
        let (input, name) = String::read(input)?;
        let (input, rank) = i32::read(input)?;
        let (input, level) = le_u8(input)?;
        let (input, class) = le_u8(input)?;
        let (input, gender) = le_u8(input)?;
        let (input, area) = i32::read(input)?;
        let (input, last_save) = if status == 0 {
            let (input, t) = le_f32(input)?;
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
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, member_count) = le_u32(input)?;
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

    fn write(&self, out: &mut Vec<u8>) {
        (self.members.len() as u32).write(out);
        self.motd.write(out);
        self.info.write(out);
        crate::wire::counted_u32::write(&self.ranks, out);
        for member in &self.members {
            member.write(out);
        }
    }

    fn describe(&self, prefix: &str, fields: &mut Fields) {
        self.motd.describe(&field_name(prefix, "motd"), fields);
        self.info.describe(&field_name(prefix, "info"), fields);
        describe_items(&self.ranks, &field_name(prefix, "ranks"), fields);
        describe_items(&self.members, &field_name(prefix, "members"), fields);
    }
}
bind_opcode!(SmsgGuildRoster => SMSG_GUILD_ROSTER);

message! {
    /// The client promotes a member.
    CMSG_GUILD_PROMOTE => pub struct CmsgGuildPromote {
        /// The member.
        pub name: String,
    }
}

message! {
    /// The client demotes a member.
    CMSG_GUILD_DEMOTE => pub struct CmsgGuildDemote {
        /// The member.
        pub name: String,
    }
}

message! {
    /// The client leaves its guild.
    CMSG_GUILD_LEAVE => pub struct CmsgGuildLeave {}
}

message! {
    /// The client removes a member.
    CMSG_GUILD_REMOVE => pub struct CmsgGuildRemove {
        /// The member.
        pub name: String,
    }
}

message! {
    /// The leader disbands the guild.
    CMSG_GUILD_DISBAND => pub struct CmsgGuildDisband {}
}

message! {
    /// The leader hands the guild over.
    CMSG_GUILD_LEADER => pub struct CmsgGuildLeader {
        /// The new leader.
        pub name: String,
    }
}

message! {
    /// The client sets the message of the day.
    CMSG_GUILD_MOTD => pub struct CmsgGuildMotd {
        /// The text.
        pub motd: String,
    }
}

/// A guild event broadcast. Events JOINED, LEFT, SIGNED_ON and SIGNED_OFF end with
/// the member's guid (see [`event::has_guid`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SmsgGuildEvent {
    /// The event type.
    pub event: u8,
    /// The event's strings.
    pub params: Vec<String>,
    /// The member's guid, for the events that carry one.
    pub guid: Option<Guid>,
}

impl Wire for SmsgGuildEvent {
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, event) = le_u8(input)?;
        let (input, params) = crate::wire::counted_u8::read(input)?;
        let (input, guid) = if event::has_guid(event) {
            let (input, guid) = Guid::read(input)?;
            (input, Some(guid))
        } else {
            (input, None)
        };
        Ok((
            input,
            SmsgGuildEvent {
                event,
                params,
                guid,
            },
        ))
    }

    fn write(&self, out: &mut Vec<u8>) {
        self.event.write(out);
        crate::wire::counted_u8::write(&self.params, out);
        if event::has_guid(self.event) {
            self.guid.unwrap_or_default().write(out);
        }
    }

    fn describe(&self, prefix: &str, fields: &mut Fields) {
        self.event.describe(&field_name(prefix, "event"), fields);
        describe_items(&self.params, &field_name(prefix, "params"), fields);
        if let Some(guid) = self.guid {
            guid.describe(&field_name(prefix, "guid"), fields);
        }
    }
}
bind_opcode!(SmsgGuildEvent => SMSG_GUILD_EVENT);

message! {
    /// The result of a guild command (also used for charter errors).
    SMSG_GUILD_COMMAND_RESULT => pub struct SmsgGuildCommandResult {
        /// A [`command`] code.
        pub command: i32,
        /// A name the message shows.
        pub name: String,
        /// A [`command_error`] code.
        pub error: i32,
    }
}

message! {
    /// The client saves a guild emblem at a tabard vendor.
    MSG_SAVE_GUILD_EMBLEM => pub struct MsgSaveGuildEmblemClient {
        /// The vendor.
        pub vendor: Guid,
        /// The emblem.
        pub emblem: GuildEmblem,
    }
}

message! {
    /// The result of saving an emblem.
    MSG_SAVE_GUILD_EMBLEM => pub struct MsgSaveGuildEmblemServer {
        /// The error code (0 success).
        pub error: i32,
    }
}

message! {
    /// The client edits a rank.
    CMSG_GUILD_RANK => pub struct CmsgGuildRank {
        /// Rank id.
        pub rank_id: u32,
        /// Rights flags.
        pub rights: u32,
        /// Rank name.
        pub name: String,
        /// Gold withdrawable per day.
        pub withdraw_gold: u32,
        /// Rights per bank tab.
        pub tabs: [BankTabRights; GUILD_BANK_MAX_TABS],
    }
}

message! {
    /// The client adds a rank.
    CMSG_GUILD_ADD_RANK => pub struct CmsgGuildAddRank {
        /// Rank name.
        pub name: String,
    }
}

message! {
    /// The client deletes the lowest rank.
    CMSG_GUILD_DEL_RANK => pub struct CmsgGuildDelRank {}
}

message! {
    /// The client sets a member's public note.
    CMSG_GUILD_SET_PUBLIC_NOTE => pub struct CmsgGuildSetPublicNote {
        /// The member.
        pub name: String,
        /// The note.
        pub note: String,
    }
}

message! {
    /// The client sets a member's officer note.
    CMSG_GUILD_SET_OFFICER_NOTE => pub struct CmsgGuildSetOfficerNote {
        /// The member.
        pub name: String,
        /// The note.
        pub note: String,
    }
}

message! {
    /// The client sets the guild info text.
    CMSG_GUILD_INFO_TEXT => pub struct CmsgGuildInfoText {
        /// The text.
        pub text: String,
    }
}

message! {
    /// The client asks for its rank's permissions.
    MSG_GUILD_PERMISSIONS => pub struct MsgGuildPermissionsClient {}
}

message! {
    /// The client's rank's permissions.
    MSG_GUILD_PERMISSIONS => pub struct MsgGuildPermissionsServer {
        /// Rank id.
        pub rank_id: u32,
        /// Rights flags.
        pub rights: i32,
        /// Gold still withdrawable today.
        pub withdraw_gold: i32,
        /// Purchased bank tabs.
        pub tab_count: u8,
        /// Rights per bank tab.
        pub tabs: [BankTabRights; GUILD_BANK_MAX_TABS],
    }
}

message! {
    /// The client asks for the guild event log.
    MSG_GUILD_EVENT_LOG_QUERY => pub struct MsgGuildEventLogQueryClient {}
}

/// Event log types (AzerothCore `GuildEventLogTypes`).
pub mod event_log {
    /// A player was invited.
    pub const INVITE_PLAYER: u8 = 1;
    /// A player joined.
    pub const JOIN_GUILD: u8 = 2;
    /// A player was promoted.
    pub const PROMOTE_PLAYER: u8 = 3;
    /// A player was demoted.
    pub const DEMOTE_PLAYER: u8 = 4;
    /// A player was removed.
    pub const UNINVITE_PLAYER: u8 = 5;
    /// A player left.
    pub const LEAVE_GUILD: u8 = 6;
}

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
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, kind) = le_u8(input)?;
        let (input, player) = Guid::read(input)?;
        let (input, other) = if Self::has_other(kind) {
            let (input, g) = Guid::read(input)?;
            (input, Some(g))
        } else {
            (input, None)
        };
        let (input, rank) = if Self::has_rank(kind) {
            let (input, r) = le_u8(input)?;
            (input, Some(r))
        } else {
            (input, None)
        };
        let (input, time) = le_u32(input)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    #[test]
    fn event_guid_only_for_member_events() {
        let joined = SmsgGuildEvent {
            event: event::JOINED,
            params: vec!["Arthas".into()],
            guid: Some(Guid::player(9)),
        };
        let body = joined.to_body();
        assert_eq!(body, b"\x03\x01Arthas\0\x09\0\0\0\0\0\0\0");
        assert_eq!(SmsgGuildEvent::decode(&body).unwrap(), joined);

        let motd = SmsgGuildEvent {
            event: 2,
            params: vec!["hi".into()],
            guid: None,
        };
        // Some cores append a guid to every event: tolerated, not modelled.
        let mut body = motd.to_body();
        body.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(SmsgGuildEvent::decode(&body).unwrap(), motd);
    }

    #[test]
    fn command_result_real_bytes() {
        let body = b"\x01\0\0\0Jaina\0\x03\0\0\0";
        let m = SmsgGuildCommandResult::decode(body).unwrap();
        assert_eq!(m.command, command::INVITE);
        assert_eq!(m.name, "Jaina");
        assert_eq!(m.error, command_error::ALREADY_IN_GUILD_S);
        assert_eq!(m.to_body(), body);
    }

    #[test]
    fn roster_offline_member_has_last_save() {
        let roster = SmsgGuildRoster {
            motd: "m".into(),
            info: "i".into(),
            ranks: vec![RosterRank::default()],
            members: vec![
                RosterMember {
                    guid: Guid::player(1),
                    status: 1,
                    name: "On".into(),
                    ..Default::default()
                },
                RosterMember {
                    guid: Guid::player(2),
                    status: 0,
                    name: "Off".into(),
                    last_save: Some(1.5),
                    ..Default::default()
                },
            ],
        };
        let body = roster.to_body();
        assert_eq!(&body[..4], &2u32.to_le_bytes());
        assert_eq!(SmsgGuildRoster::decode(&body).unwrap(), roster);
    }
}
