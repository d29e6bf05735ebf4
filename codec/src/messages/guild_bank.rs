//! Guild bank messages. The sidecar does not resolve guild bank work, so the larger
//! bodies are modelled only as far as their leading fields; the rest is kept as bytes
//! and written back unchanged.

use super::message;
use crate::wire::{Guid, Rest};

message! {
    /// The client opens the guild bank.
    CMSG_GUILD_BANKER_ACTIVATE => pub struct CmsgGuildBankerActivate {
        /// The bank object.
        pub banker: Guid,
        /// Whether to send every tab.
        pub full_update: u8,
    }
}

message! {
    /// The client opens a bank tab.
    CMSG_GUILD_BANK_QUERY_TAB => pub struct CmsgGuildBankQueryTab {
        /// The bank object.
        pub banker: Guid,
        /// The tab.
        pub tab: u8,
        /// Whether to send the whole tab.
        pub full_update: u8,
    }
}

message! {
    /// A bank tab's contents (items kept as bytes).
    SMSG_GUILD_BANK_LIST => pub struct SmsgGuildBankList {
        /// Money in the bank, in copper.
        pub money: u64,
        /// The tab.
        pub tab: u8,
        /// Item withdrawals left today.
        pub withdrawals_remaining: i32,
        /// Whether this is a full update.
        pub full_update: u8,
        /// Tab list and items, as sent.
        pub rest: Rest,
    }
}

message! {
    /// The client moves items in or out of the bank (moves kept as bytes).
    CMSG_GUILD_BANK_SWAP_ITEMS => pub struct CmsgGuildBankSwapItems {
        /// The bank object.
        pub banker: Guid,
        /// The move, as sent.
        pub rest: Rest,
    }
}

message! {
    /// The client buys a bank tab.
    CMSG_GUILD_BANK_BUY_TAB => pub struct CmsgGuildBankBuyTab {
        /// The bank object.
        pub banker: Guid,
        /// The tab.
        pub tab: u8,
    }
}

message! {
    /// The client renames a bank tab.
    CMSG_GUILD_BANK_UPDATE_TAB => pub struct CmsgGuildBankUpdateTab {
        /// The bank object.
        pub banker: Guid,
        /// The tab.
        pub tab: u8,
        /// Tab name.
        pub name: String,
        /// Tab icon.
        pub icon: String,
    }
}

message! {
    /// The client deposits money.
    CMSG_GUILD_BANK_DEPOSIT_MONEY => pub struct CmsgGuildBankDepositMoney {
        /// The bank object.
        pub banker: Guid,
        /// Copper.
        pub money: u32,
    }
}

message! {
    /// The client withdraws money.
    CMSG_GUILD_BANK_WITHDRAW_MONEY => pub struct CmsgGuildBankWithdrawMoney {
        /// The bank object.
        pub banker: Guid,
        /// Copper.
        pub money: u32,
    }
}

message! {
    /// The client asks for a tab's log.
    MSG_GUILD_BANK_LOG_QUERY => pub struct MsgGuildBankLogQueryClient {
        /// The tab.
        pub tab: u8,
    }
}

message! {
    /// A tab's log (entries kept as bytes).
    MSG_GUILD_BANK_LOG_QUERY => pub struct MsgGuildBankLogQueryServer {
        /// The tab.
        pub tab: u8,
        /// Entry count and entries, as sent.
        pub rest: Rest,
    }
}

message! {
    /// The client asks how much money it may still withdraw.
    MSG_GUILD_BANK_MONEY_WITHDRAWN => pub struct MsgGuildBankMoneyWithdrawnClient {}
}

message! {
    /// Money the client may still withdraw today.
    MSG_GUILD_BANK_MONEY_WITHDRAWN => pub struct MsgGuildBankMoneyWithdrawnServer {
        /// Copper.
        pub remaining: i32,
    }
}

message! {
    /// The client asks for a tab's text.
    MSG_QUERY_GUILD_BANK_TEXT => pub struct MsgQueryGuildBankTextClient {
        /// The tab.
        pub tab: u8,
    }
}

message! {
    /// A tab's text.
    MSG_QUERY_GUILD_BANK_TEXT => pub struct MsgQueryGuildBankTextServer {
        /// The tab.
        pub tab: u8,
        /// The text.
        pub text: String,
    }
}

message! {
    /// The client sets a tab's text.
    CMSG_SET_GUILD_BANK_TEXT => pub struct CmsgSetGuildBankText {
        /// The tab.
        pub tab: u8,
        /// The text.
        pub text: String,
    }
}
