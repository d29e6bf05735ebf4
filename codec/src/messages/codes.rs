//! Result and command codes of guild and charter messages, as typed enums
//! (AzerothCore `Guild.h`; `wow_world_messages`' wrath enums number some of these
//! differently). A value the enum does not name is kept as `Other`, so every body
//! still reads and writes back byte for byte.

use crate::wire::{Fields, WResult, Wire};

/// Defines an `i32` code enum: named variants, `Other(i32)` for the rest, its wire
/// form and its conversions.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value AzerothCore does not name here.
            Other(i32),
        }

        impl $name {
            /// Every named variant, in numeric order.
            pub const NAMED: &'static [$name] = &[$($name::$variant,)*];
        }

        impl Default for $name {
            fn default() -> Self {
                $name::NAMED[0]
            }
        }

        impl From<i32> for $name {
            fn from(value: i32) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Other(other),
                }
            }
        }

        impl From<$name> for i32 {
            fn from(code: $name) -> i32 {
                match code {
                    $($name::$variant => $value,)*
                    $name::Other(other) => other,
                }
            }
        }

        /// On the wire: an `i32`, shown as its number.
        impl Wire for $name {
            const FIXED_LEN: Option<usize> = Some(4);
            #[inline]
            fn read(input: &[u8]) -> WResult<'_, Self> {
                let (rest, value) = i32::read(input)?;
                Ok((rest, $name::from(value)))
            }
            #[inline]
            fn write(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&i32::from(*self).to_le_bytes());
            }
            #[inline]
            fn wire_len(&self) -> usize {
                4
            }
            fn describe(&self, name: &str, fields: &mut Fields) {
                fields.push(name, i32::from(*self));
            }
        }

        #[cfg(any(test, feature = "sample"))]
        impl $crate::sample::Sample for $name {
            fn sample(rng: &mut $crate::sample::SampleRng) -> Self {
                $name::from(<i32 as $crate::sample::Sample>::sample(rng))
            }
        }
    };
}

code_enum! {
    /// `SMSG_GUILD_COMMAND_RESULT` commands (AzerothCore `GuildCommandType`).
    pub enum GuildCommand {
        /// Guild creation (also charter errors).
        Create = 0,
        /// Invitations (also charter signing and offering errors).
        Invite = 1,
        /// Leaving.
        Quit = 3,
        /// Roster.
        Roster = 5,
        /// Promotion.
        Promote = 6,
        /// Demotion.
        Demote = 7,
        /// Removal.
        Remove = 8,
        /// Leader change.
        ChangeLeader = 10,
        /// Message of the day.
        EditMotd = 11,
        /// Guild chat.
        GuildChat = 13,
        /// Founding.
        Founder = 14,
        /// Rank change.
        ChangeRank = 16,
        /// Public note.
        PublicNote = 19,
        /// Bank tab view.
        ViewTab = 21,
        /// Bank item move.
        MoveItem = 22,
        /// Repair.
        Repair = 25,
    }
}

code_enum! {
    /// `SMSG_GUILD_COMMAND_RESULT` errors (AzerothCore `GuildCommandError`). `_S`
    /// errors name a player or guild in the message's name field.
    pub enum GuildCommandError {
        /// Done.
        Success = 0,
        /// An internal error.
        Internal = 1,
        /// You are in a guild already.
        AlreadyInGuild = 2,
        /// The named player is in a guild already.
        AlreadyInGuildS = 3,
        /// You are invited to a guild already.
        InvitedToGuild = 4,
        /// The named player is invited to a guild already.
        AlreadyInvitedToGuildS = 5,
        /// The name is not allowed.
        NameInvalid = 6,
        /// The named guild exists.
        NameExistsS = 7,
        /// Not allowed at your rank.
        Permissions = 8,
        /// You are not in a guild.
        PlayerNotInGuild = 9,
        /// The named player is not in your guild.
        PlayerNotInGuildS = 10,
        /// The named player was not found.
        PlayerNotFoundS = 11,
        /// The other faction.
        NotAllied = 12,
        /// The named player's rank is too high.
        RankTooHighS = 13,
        /// The named player's rank is too low.
        RankTooLowS = 14,
        /// No more ranks can be added or removed.
        RanksLocked = 17,
        /// The rank has members.
        RankInUse = 18,
        /// The named player ignores you.
        IgnoringYouS = 19,
        /// Unknown (AzerothCore `ERR_GUILD_UNK1`).
        Unk1 = 20,
        /// The bank withdraw limit is reached.
        WithdrawLimit = 25,
        /// Not enough money.
        NotEnoughMoney = 26,
        /// The bank is full.
        BankFull = 28,
        /// The item was not found.
        ItemNotFound = 29,
    }
}

/// `SMSG_PETITION_SIGN_RESULTS` result codes.
pub mod sign_result {
    /// The signature was recorded.
    pub const OK: u32 = 0;
    /// This account already signed.
    pub const ALREADY_SIGNED: u32 = 1;
    /// The signer is already in a guild.
    pub const ALREADY_IN_GUILD: u32 = 2;
    /// The owner cannot sign their own charter.
    pub const CANT_SIGN_OWN: u32 = 3;
    /// The petition is not on this server.
    pub const NOT_SERVER: u32 = 4;
}

/// `SMSG_TURN_IN_PETITION_RESULTS` result codes.
pub mod turn_in_result {
    /// The guild was created.
    pub const OK: u32 = 0;
    /// The owner is already in a guild.
    pub const ALREADY_IN_GUILD: u32 = 2;
    /// The charter lacks signatures.
    pub const NEED_MORE_SIGNATURES: u32 = 4;
}

/// `SMSG_GUILD_EVENT` event types (AzerothCore `GuildEvents`).
pub mod event {
    /// A member joined.
    pub const JOINED: u8 = 3;
    /// A member left.
    pub const LEFT: u8 = 4;
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
    /// A member came online.
    pub const SIGNED_ON: u8 = 12;
    /// A member went offline.
    pub const SIGNED_OFF: u8 = 13;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_unnamed_values() {
        for code in [-1, 0, 2, 12, 99, i32::MAX] {
            let error = GuildCommandError::from(code);
            assert_eq!(i32::from(error), code);
            let mut out = Vec::new();
            error.write(&mut out);
            assert_eq!(GuildCommandError::read(&out).unwrap().1, error);
        }
        assert_eq!(GuildCommand::from(1), GuildCommand::Invite);
        assert_eq!(GuildCommandError::from(12), GuildCommandError::NotAllied);
        assert_eq!(GuildCommand::from(2), GuildCommand::Other(2));
    }
}
