//! Guild messages, laid out as AzerothCore's `GuildPackets.cpp` reads and writes them.

pub use super::codes::event;
use super::codes::{GuildCommand, GuildCommandError};
use super::{bind_opcode, message};
use crate::wire::{describe_items, field_name, Fields, Guid, WResult, Wire};

/// Banks tabs a guild can have (AzerothCore `GUILD_BANK_MAX_TABS`).
pub const GUILD_BANK_MAX_TABS: usize = 6;

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
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, event) = u8::read(input)?;
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

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        self.event.write(out);
        crate::wire::counted_u8::write(&self.params, out);
        if event::has_guid(self.event) {
            self.guid.unwrap_or_default().write(out);
        }
    }

    #[inline]
    fn wire_len(&self) -> usize {
        let guid = if event::has_guid(self.event) { 8 } else { 0 };
        1 + crate::wire::counted_u8::wire_len(&self.params) + guid
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
        /// What was attempted.
        pub command: GuildCommand,
        /// A name the message shows.
        pub name: String,
        /// How it ended.
        pub error: GuildCommandError,
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

/// Random values of the hand-written types, consistent with their conditions.
#[cfg(any(test, feature = "sample"))]
mod sample {
    use super::*;
    use crate::sample::{Sample, SampleRng};

    impl Sample for SmsgGuildEvent {
        fn sample(rng: &mut SampleRng) -> Self {
            let event = rng.below(20) as u8;
            SmsgGuildEvent {
                event,
                params: Vec::sample(rng),
                guid: event::has_guid(event).then(|| Guid::sample(rng)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Message, RosterMember, RosterRank, SmsgGuildRoster};

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
        assert_eq!(m.command, GuildCommand::Invite);
        assert_eq!(m.name, "Jaina");
        assert_eq!(m.error, GuildCommandError::AlreadyInGuildS);
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
