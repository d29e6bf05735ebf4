//! Guild ranks, member notes, the info text, permissions and the event log query,
//! laid out as AzerothCore's `GuildPackets.cpp` reads and writes them.

use super::guild::GUILD_BANK_MAX_TABS;
use super::message;
use super::roster::BankTabRights;

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
