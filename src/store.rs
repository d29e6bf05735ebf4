//! Reads from AzerothCore's MySQL/MariaDB databases: session keys (auth DB) and
//! characters (characters DB).

use mysql_async::prelude::*;
use mysql_async::{Opts, Pool};
use tc9_codec::crypt::SESSION_KEY_LEN;

/// A character as the sidecar knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Character {
    /// `characters.guid`.
    pub guid: u32,
    /// `characters.account`.
    pub account: u32,
    /// `characters.name`.
    pub name: String,
    /// `characters.race`.
    pub race: u8,
    /// `characters.class`.
    pub class: u8,
    /// `characters.level`.
    pub level: u8,
    /// `guild_member.guildid`, if in a guild.
    pub guild_id: Option<u32>,
}

/// `characters` columns with the guild, in the order [`Db::character`] selects them.
type CharacterRow = (u32, u32, String, u8, u8, u8, Option<u32>);

/// A database query failed.
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct StoreError(#[from] pub mysql_async::Error);

/// A pooled connection to one MySQL/MariaDB database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// A lazily connecting pool for `url` (`mysql://user:pass@host:port/db`).
    pub fn new(url: &str) -> Result<Db, StoreError> {
        let opts = Opts::from_url(url).map_err(mysql_async::Error::from)?;
        Ok(Db {
            pool: Pool::new(opts),
        })
    }

    /// The pool, for queries of other modules.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The 40-byte session key of the account `username` (auth DB), if it has one.
    pub async fn session_key(
        &self,
        username: &str,
    ) -> Result<Option<[u8; SESSION_KEY_LEN]>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let key: Option<Option<Vec<u8>>> = conn
            .exec_first(
                "SELECT session_key FROM account WHERE username = ?",
                (username,),
            )
            .await?;
        Ok(key
            .flatten()
            .and_then(|k| <[u8; SESSION_KEY_LEN]>::try_from(k).ok()))
    }

    /// The character `guid` with its guild (characters DB), if it exists.
    pub async fn character(&self, guid: u32) -> Result<Option<Character>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<CharacterRow> = conn
            .exec_first(
                "SELECT c.guid, c.account, c.name, c.race, c.class, c.level, gm.guildid \
                 FROM characters c LEFT JOIN guild_member gm ON gm.guid = c.guid \
                 WHERE c.guid = ?",
                (guid,),
            )
            .await?;
        Ok(row.map(
            |(guid, account, name, race, class, level, guild_id)| Character {
                guid,
                account,
                name,
                race,
                class,
                level,
                guild_id,
            },
        ))
    }

    /// Closes the pool's connections.
    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}
