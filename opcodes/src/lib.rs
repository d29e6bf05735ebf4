//! The World of Warcraft 3.3.5a (build 12340) world opcodes that the tc9 sidecar names.
//!
//! An [`Opcode`] is a plain number: any `u32` is representable, so an opcode the table
//! does not know is carried along (and forwarded) like any other. The [`TABLE`] gives the
//! name, the [`Direction`] and the [`Group`] of each opcode the sidecar cares about. Values
//! come from AzerothCore's `Opcodes.h`, plus the two redirect opcodes ToCloud9 adds.
//!
//! ```
//! use tc9_opcodes::{Direction, Opcode};
//!
//! assert_eq!(Opcode::CMSG_PETITION_SIGN.name(), Some("CMSG_PETITION_SIGN"));
//! assert_eq!(Opcode(0x1C0), Opcode::CMSG_PETITION_SIGN);
//! assert_eq!(Opcode::MSG_PETITION_DECLINE.direction(), Some(Direction::Both));
//! assert_eq!(Opcode(0xFFFF).to_string(), "UNKNOWN_0xFFFF");
//! assert_eq!(Opcode::from_name("SMSG_GUILD_EVENT"), Some(Opcode(0x092)));
//! ```

use std::fmt;

/// Which way an opcode travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the client (through the gateway) to the worldserver: `CMSG_*`.
    ClientToServer,
    /// Sent by the worldserver to the client: `SMSG_*`.
    ServerToClient,
    /// Sent both ways, usually with a different body each way: `MSG_*` and `UMSG_*`.
    Both,
}

impl Direction {
    /// Whether an opcode of this direction may travel from client to server.
    pub fn allows_client_to_server(self) -> bool {
        matches!(self, Direction::ClientToServer | Direction::Both)
    }

    /// Whether an opcode of this direction may travel from server to client.
    pub fn allows_server_to_client(self) -> bool {
        matches!(self, Direction::ServerToClient | Direction::Both)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
            Direction::Both => "both",
        })
    }
}

/// The family an opcode belongs to; the sidecar intercepts by family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Login, logout, name queries and keep-alives.
    Session,
    /// Guild charters (petitions), arena charters share them.
    Petition,
    /// Guilds, their ranks and their event log.
    Guild,
    /// The guild bank.
    GuildBank,
    /// Arena team results (arena charters pass through).
    Arena,
    /// Opcodes ToCloud9 adds for map-change redirects.
    Tc9,
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Group::Session => "session",
            Group::Petition => "petition",
            Group::Guild => "guild",
            Group::GuildBank => "guild_bank",
            Group::Arena => "arena",
            Group::Tc9 => "tc9",
        })
    }
}

/// A world opcode. Client headers carry it as a `u32`, server headers as a `u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Opcode(pub u32);

/// One row of the opcode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpcodeInfo {
    /// The numeric value.
    pub opcode: Opcode,
    /// The name as AzerothCore spells it.
    pub name: &'static str,
    /// Which way it travels.
    pub direction: Direction,
    /// Its family.
    pub group: Group,
}

macro_rules! opcode_table {
    ($($name:ident = $value:literal, $dir:ident, $group:ident;)*) => {
        #[allow(missing_docs)]
        impl Opcode {
            $(pub const $name: Opcode = Opcode($value);)*
        }

        /// Every opcode the sidecar names, sorted by value.
        pub const TABLE: &[OpcodeInfo] = &[
            $(OpcodeInfo {
                opcode: Opcode($value),
                name: stringify!($name),
                direction: Direction::$dir,
                group: Group::$group,
            },)*
        ];
    };
}

opcode_table! {
    CMSG_PLAYER_LOGIN = 0x03D, ClientToServer, Session;
    CMSG_LOGOUT_REQUEST = 0x04B, ClientToServer, Session;
    SMSG_LOGOUT_COMPLETE = 0x04D, ServerToClient, Session;
    CMSG_NAME_QUERY = 0x050, ClientToServer, Session;
    SMSG_NAME_QUERY_RESPONSE = 0x051, ServerToClient, Session;
    CMSG_GUILD_QUERY = 0x054, ClientToServer, Guild;
    SMSG_GUILD_QUERY_RESPONSE = 0x055, ServerToClient, Guild;
    CMSG_GUILD_CREATE = 0x081, ClientToServer, Guild;
    CMSG_GUILD_INVITE = 0x082, ClientToServer, Guild;
    SMSG_GUILD_INVITE = 0x083, ServerToClient, Guild;
    CMSG_GUILD_ACCEPT = 0x084, ClientToServer, Guild;
    CMSG_GUILD_DECLINE = 0x085, ClientToServer, Guild;
    SMSG_GUILD_DECLINE = 0x086, ServerToClient, Guild;
    CMSG_GUILD_INFO = 0x087, ClientToServer, Guild;
    SMSG_GUILD_INFO = 0x088, ServerToClient, Guild;
    CMSG_GUILD_ROSTER = 0x089, ClientToServer, Guild;
    SMSG_GUILD_ROSTER = 0x08A, ServerToClient, Guild;
    CMSG_GUILD_PROMOTE = 0x08B, ClientToServer, Guild;
    CMSG_GUILD_DEMOTE = 0x08C, ClientToServer, Guild;
    CMSG_GUILD_LEAVE = 0x08D, ClientToServer, Guild;
    CMSG_GUILD_REMOVE = 0x08E, ClientToServer, Guild;
    CMSG_GUILD_DISBAND = 0x08F, ClientToServer, Guild;
    CMSG_GUILD_LEADER = 0x090, ClientToServer, Guild;
    CMSG_GUILD_MOTD = 0x091, ClientToServer, Guild;
    SMSG_GUILD_EVENT = 0x092, ServerToClient, Guild;
    SMSG_GUILD_COMMAND_RESULT = 0x093, ServerToClient, Guild;
    CMSG_PETITION_SHOWLIST = 0x1BB, ClientToServer, Petition;
    SMSG_PETITION_SHOWLIST = 0x1BC, ServerToClient, Petition;
    CMSG_PETITION_BUY = 0x1BD, ClientToServer, Petition;
    CMSG_PETITION_SHOW_SIGNATURES = 0x1BE, ClientToServer, Petition;
    SMSG_PETITION_SHOW_SIGNATURES = 0x1BF, ServerToClient, Petition;
    CMSG_PETITION_SIGN = 0x1C0, ClientToServer, Petition;
    SMSG_PETITION_SIGN_RESULTS = 0x1C1, ServerToClient, Petition;
    MSG_PETITION_DECLINE = 0x1C2, Both, Petition;
    CMSG_OFFER_PETITION = 0x1C3, ClientToServer, Petition;
    CMSG_TURN_IN_PETITION = 0x1C4, ClientToServer, Petition;
    SMSG_TURN_IN_PETITION_RESULTS = 0x1C5, ServerToClient, Petition;
    CMSG_PETITION_QUERY = 0x1C6, ClientToServer, Petition;
    SMSG_PETITION_QUERY_RESPONSE = 0x1C7, ServerToClient, Petition;
    CMSG_PING = 0x1DC, ClientToServer, Session;
    SMSG_PONG = 0x1DD, ServerToClient, Session;
    SMSG_AUTH_CHALLENGE = 0x1EC, ServerToClient, Session;
    CMSG_AUTH_SESSION = 0x1ED, ClientToServer, Session;
    SMSG_AUTH_RESPONSE = 0x1EE, ServerToClient, Session;
    MSG_SAVE_GUILD_EMBLEM = 0x1F1, Both, Guild;
    CMSG_GUILD_RANK = 0x231, ClientToServer, Guild;
    CMSG_GUILD_ADD_RANK = 0x232, ClientToServer, Guild;
    CMSG_GUILD_DEL_RANK = 0x233, ClientToServer, Guild;
    CMSG_GUILD_SET_PUBLIC_NOTE = 0x234, ClientToServer, Guild;
    CMSG_GUILD_SET_OFFICER_NOTE = 0x235, ClientToServer, Guild;
    SMSG_LOGIN_VERIFY_WORLD = 0x236, ServerToClient, Session;
    UMSG_DELETE_GUILD_CHARTER = 0x2C0, Both, Petition;
    MSG_PETITION_RENAME = 0x2C1, Both, Petition;
    CMSG_GUILD_INFO_TEXT = 0x2FC, ClientToServer, Guild;
    SMSG_ARENA_TEAM_COMMAND_RESULT = 0x349, ServerToClient, Arena;
    SMSG_OFFER_PETITION_ERROR = 0x38F, ServerToClient, Petition;
    CMSG_GUILD_BANKER_ACTIVATE = 0x3E6, ClientToServer, GuildBank;
    CMSG_GUILD_BANK_QUERY_TAB = 0x3E7, ClientToServer, GuildBank;
    SMSG_GUILD_BANK_LIST = 0x3E8, ServerToClient, GuildBank;
    CMSG_GUILD_BANK_SWAP_ITEMS = 0x3E9, ClientToServer, GuildBank;
    CMSG_GUILD_BANK_BUY_TAB = 0x3EA, ClientToServer, GuildBank;
    CMSG_GUILD_BANK_UPDATE_TAB = 0x3EB, ClientToServer, GuildBank;
    CMSG_GUILD_BANK_DEPOSIT_MONEY = 0x3EC, ClientToServer, GuildBank;
    CMSG_GUILD_BANK_WITHDRAW_MONEY = 0x3ED, ClientToServer, GuildBank;
    MSG_GUILD_BANK_LOG_QUERY = 0x3EE, Both, GuildBank;
    MSG_GUILD_PERMISSIONS = 0x3FD, Both, Guild;
    MSG_GUILD_BANK_MONEY_WITHDRAWN = 0x3FE, Both, GuildBank;
    MSG_GUILD_EVENT_LOG_QUERY = 0x3FF, Both, Guild;
    MSG_QUERY_GUILD_BANK_TEXT = 0x40A, Both, GuildBank;
    CMSG_SET_GUILD_BANK_TEXT = 0x40B, ClientToServer, GuildBank;
    TC9_CMSG_PREPARE_FOR_REDIRECT = 0x51F, ClientToServer, Tc9;
    TC9_SMSG_READY_FOR_REDIRECT = 0x520, ServerToClient, Tc9;
}

impl Opcode {
    /// The table row of this opcode, if the sidecar names it.
    pub fn info(self) -> Option<&'static OpcodeInfo> {
        TABLE
            .binary_search_by_key(&self, |row| row.opcode)
            .ok()
            .map(|i| &TABLE[i])
    }

    /// The opcode's name, if the sidecar names it.
    pub fn name(self) -> Option<&'static str> {
        self.info().map(|row| row.name)
    }

    /// The opcode's direction, if the sidecar names it.
    pub fn direction(self) -> Option<Direction> {
        self.info().map(|row| row.direction)
    }

    /// The opcode's family, if the sidecar names it.
    pub fn group(self) -> Option<Group> {
        self.info().map(|row| row.group)
    }

    /// Looks an opcode up by its exact name.
    pub fn from_name(name: &str) -> Option<Opcode> {
        TABLE
            .iter()
            .find(|row| row.name == name)
            .map(|row| row.opcode)
    }
}

impl From<u32> for Opcode {
    fn from(value: u32) -> Self {
        Opcode(value)
    }
}

impl From<u16> for Opcode {
    fn from(value: u16) -> Self {
        Opcode(u32::from(value))
    }
}

impl fmt::Display for Opcode {
    /// The name, or `UNKNOWN_0x....` for an opcode outside the table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.pad(name),
            None => write!(f, "UNKNOWN_0x{:04X}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in TABLE.windows(2) {
            assert!(
                pair[0].opcode < pair[1].opcode,
                "{} must come before {}",
                pair[0].name,
                pair[1].name
            );
        }
        let names: HashSet<_> = TABLE.iter().map(|row| row.name).collect();
        assert_eq!(names.len(), TABLE.len());
    }

    #[test]
    fn every_row_is_found_by_value_and_name() {
        for row in TABLE {
            assert_eq!(row.opcode.info(), Some(row));
            assert_eq!(Opcode::from_name(row.name), Some(row.opcode));
            assert_eq!(row.opcode.to_string(), row.name);
        }
    }

    #[test]
    fn prefix_matches_direction() {
        for row in TABLE {
            let base = row.name.trim_start_matches("TC9_");
            let expected = if base.starts_with("CMSG_") {
                Direction::ClientToServer
            } else if base.starts_with("SMSG_") {
                Direction::ServerToClient
            } else {
                Direction::Both
            };
            assert_eq!(row.direction, expected, "{}", row.name);
        }
    }

    #[test]
    fn design_card_values() {
        assert_eq!(Opcode::CMSG_OFFER_PETITION.0, 0x1C3);
        assert_eq!(Opcode::SMSG_OFFER_PETITION_ERROR.0, 0x38F);
        assert_eq!(Opcode::SMSG_GUILD_COMMAND_RESULT.0, 0x093);
        assert_eq!(Opcode::TC9_CMSG_PREPARE_FOR_REDIRECT.0, 0x51F);
        assert_eq!(Opcode::CMSG_AUTH_SESSION.0, 0x1ED);
    }

    #[test]
    fn unknown_values_are_representable() {
        for value in [0, 1, 0x1FF, 0xFFFF, u32::MAX] {
            let op = Opcode(value);
            assert!(op.info().is_none());
            assert!(op.to_string().starts_with("UNKNOWN_0x"));
        }
    }
}
