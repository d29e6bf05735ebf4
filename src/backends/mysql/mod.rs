//! AzerothCore's MySQL/MariaDB databases: session keys (auth DB, the proxy's
//! [`KeySource`]) and characters, petitions, signatures and guilds (characters DB,
//! the charter's [`CharterStore`](tc9_charter::CharterStore)).

use mysql_async::prelude::*;
use mysql_async::{Opts, Pool};
use tc9_charter::rules::{Guild, Petition, Player, Signature};
use tc9_charter::Roster;
use tc9_proxy::crypt::{KeyLookup, KeySource, SessionKey};

use super::metrics::{timed, DB};

mod notices;
mod port;
mod preflight;
mod rows;
mod sign;

pub use notices::NOTICE_TABLE;
pub use preflight::{check, Consequence, Finding, Outcome, Schema};
use rows::{all, first, Text};

/// `characters` columns with the guild, in the order [`Db::character`] selects them.
type CharacterRow = (u32, u32, Text, u8, u8, u8, Option<u32>);

/// `petitionguid, petition_id, ownerguid, name, type`.
type PetitionRow = (u32, u32, u32, Text, u8);

/// A [`PetitionRow`] joined with one signature's `playerguid, player_account`, if any.
type LockedRow = (u32, u32, u32, Text, u8, Option<u32>, Option<u32>);

/// `guildid, name` and the five emblem columns.
type GuildRow = (u32, Text, u8, u8, u8, u8, u8);

const PETITION_BY_GUID: &str =
    "SELECT petitionguid, petition_id, ownerguid, name, type FROM petition WHERE petitionguid = ?";

/// Signatures are related to their petition by `petition_id`: the worldserver writes
/// its own with `petitionguid` 0 (`CharacterDatabase.cpp`, `CHAR_INS_PETITION_SIGNATURE`).
const SIGNATURES_BY_PETITION: &str = "SELECT playerguid, player_account FROM petition_sign \
     WHERE petition_id = ? ORDER BY playerguid";

fn petition_from_row(
    (petition_guid, petition_id, owner_guid, Text(name), kind): PetitionRow,
) -> Petition {
    Petition {
        petition_guid,
        petition_id,
        owner_guid,
        name,
        kind,
    }
}

/// The queries the store times, as metric labels.
pub const QUERIES: &[&str] = &[
    "session_key",
    "character",
    "petition",
    "signatures",
    "guild",
    "guild_named",
    "charter_of",
    "sign",
    "guild_roster",
    "notice_post",
    "notice_claim",
    "notice_settle",
    "notice_release_all",
    "notice_expire",
    "notice_backlog",
];

/// A database query failed.
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct StoreError(#[from] pub mysql_async::Error);

/// A pooled connection to one MySQL/MariaDB database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    /// The notice table was created (or found) on this database.
    notices_ready: std::sync::Arc<tokio::sync::OnceCell<()>>,
}

impl Db {
    /// A lazily connecting pool for `url` (`mysql://user:pass@host:port/db`).
    ///
    /// Connections are not reset when they go back to the pool (the sidecar leaves no
    /// session state behind: every transaction commits or rolls back), so each
    /// statement is prepared once per connection and then executed from its cache.
    pub fn new(url: &str) -> Result<Db, StoreError> {
        let opts = Opts::from_url(url).map_err(mysql_async::Error::from)?;
        // At most 32 connections (the driver's default is 100): what `fd_reserve`
        // keeps for the pools must cover them.
        let constraints = mysql_async::PoolConstraints::new(10, 32).expect("10 <= 32");
        let pool_opts = opts
            .pool_opts()
            .clone()
            .with_reset_connection(false)
            .with_constraints(constraints);
        // Affected rows count the rows matched, so renewing a claim one already holds
        // within the same millisecond still counts as claimed.
        let opts = mysql_async::OptsBuilder::from_opts(opts)
            .pool_opts(pool_opts)
            .client_found_rows(true);
        Ok(Db {
            pool: Pool::new(opts),
            notices_ready: Default::default(),
        })
    }

    /// The 40-byte session key of the account `username` (auth DB), if it has one.
    pub async fn session_key(&self, username: &str) -> Result<Option<SessionKey>, StoreError> {
        timed(DB, "session_key", async move {
            let mut conn = self.pool.get_conn().await?;
            let key: Option<Option<Vec<u8>>> = first(
                &mut conn,
                "SELECT session_key FROM account WHERE username = ?",
                (username,),
            )
            .await?;
            Ok(key.flatten().and_then(|k| SessionKey::try_from(k).ok()))
        })
        .await
    }

    /// The character `guid` with its guild (characters DB), if it exists.
    pub async fn character(&self, guid: u32) -> Result<Option<Player>, StoreError> {
        timed(DB, "character", async move {
            let mut conn = self.pool.get_conn().await?;
            let row: Option<CharacterRow> = first(
                &mut conn,
                "SELECT c.guid, c.account, c.name, c.race, c.class, c.level, gm.guildid \
                 FROM characters c LEFT JOIN guild_member gm ON gm.guid = c.guid \
                 WHERE c.guid = ?",
                (guid,),
            )
            .await?;
            Ok(row.map(
                |(guid, account, Text(name), race, class, level, guild_id)| Player {
                    guid,
                    account,
                    name,
                    race,
                    class,
                    level,
                    guild_id,
                },
            ))
        })
        .await
    }

    /// The petition whose charter item has the low guid `petition_guid`.
    pub async fn petition(&self, petition_guid: u32) -> Result<Option<Petition>, StoreError> {
        timed(DB, "petition", async move {
            let mut conn = self.pool.get_conn().await?;
            let row: Option<PetitionRow> =
                first(&mut conn, PETITION_BY_GUID, (petition_guid,)).await?;
            Ok(row.map(petition_from_row))
        })
        .await
    }

    /// The signatures of the petition `petition_id`, by player guid.
    pub async fn signatures(&self, petition_id: u32) -> Result<Vec<Signature>, StoreError> {
        timed(DB, "signatures", async move {
            let mut conn = self.pool.get_conn().await?;
            let rows: Vec<(u32, u32)> =
                all(&mut conn, SIGNATURES_BY_PETITION, (petition_id,)).await?;
            Ok(rows
                .into_iter()
                .map(|(player_guid, account)| Signature {
                    player_guid,
                    account,
                })
                .collect())
        })
        .await
    }

    /// The guild `guild_id` with its rank names, if it exists.
    pub async fn guild(&self, guild_id: u32) -> Result<Option<Guild>, StoreError> {
        timed(DB, "guild", async move {
            let mut conn = self.pool.get_conn().await?;
            let row: Option<GuildRow> = first(
                &mut conn,
                "SELECT guildid, name, EmblemStyle, EmblemColor, BorderStyle, BorderColor, \
                 BackgroundColor FROM guild WHERE guildid = ?",
                (guild_id,),
            )
            .await?;
            let Some((id, Text(name), s, c, bs, bc, bg)) = row else {
                return Ok(None);
            };
            let ranks: Vec<(u8, Text)> = all(
                &mut conn,
                "SELECT rid, rname FROM guild_rank WHERE guildid = ? ORDER BY rid",
                (guild_id,),
            )
            .await?;
            Ok(Some(Guild {
                id,
                name,
                emblem: [s, c, bs, bc, bg],
                ranks: ranks
                    .into_iter()
                    .map(|(rid, Text(name))| (rid, name))
                    .collect(),
            }))
        })
        .await
    }

    /// The guild charter `owner` holds, if any.
    pub async fn charter_of(&self, owner: u32) -> Result<Option<Petition>, StoreError> {
        timed(DB, "charter_of", async move {
            let mut conn = self.pool.get_conn().await?;
            let row: Option<PetitionRow> = first(
                &mut conn,
                "SELECT petitionguid, petition_id, ownerguid, name, type FROM petition \
                 WHERE ownerguid = ? AND type = ?",
                (owner, tc9_codec::messages::petition::GUILD_CHARTER_TYPE),
            )
            .await?;
            Ok(row.map(petition_from_row))
        })
        .await
    }

    /// Whether a guild is called `name`.
    pub async fn guild_named(&self, name: &str) -> Result<bool, StoreError> {
        timed(DB, "guild_named", async move {
            let mut conn = self.pool.get_conn().await?;
            let found: Option<u32> = first(
                &mut conn,
                "SELECT guildid FROM guild WHERE name = ?",
                (name,),
            )
            .await?;
            Ok(found.is_some())
        })
        .await
    }

    /// The guild called `name`: id and members with their names (guild master first
    /// by rank, then by guid).
    pub async fn guild_roster(&self, name: &str) -> Result<Option<Roster>, StoreError> {
        timed(DB, "guild_roster", async move {
            let mut conn = self.pool.get_conn().await?;
            let id: Option<u32> = first(
                &mut conn,
                "SELECT guildid FROM guild WHERE name = ?",
                (name,),
            )
            .await?;
            let Some(id) = id else {
                return Ok(None);
            };
            let members: Vec<(u32, Text)> = all(
                &mut conn,
                "SELECT gm.guid, c.name FROM guild_member gm \
                 JOIN characters c ON c.guid = gm.guid WHERE gm.guildid = ? \
                 ORDER BY gm.`rank`, gm.guid",
                (id,),
            )
            .await?;
            Ok(Some((
                id,
                members.into_iter().map(|(g, Text(n))| (g, n)).collect(),
            )))
        })
        .await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get_conn().await?;
        conn.ping().await?;
        Ok(())
    }

    /// Closes the pool's connections.
    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

/// The auth database serves the proxy's session keys.
impl KeySource for Db {
    fn session_key<'a>(&'a self, username: &'a str) -> KeyLookup<'a> {
        Box::pin(async move { Db::session_key(self, username).await.map_err(Into::into) })
    }
}
