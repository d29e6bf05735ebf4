//! The model's characters database on MySQL/MariaDB, with AzerothCore's statements
//! (`CharacterDatabase.cpp` at the pinned commit).

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts};

use super::db::{CharacterRow, DbError, Loaded, NewGuild, PetitionRow, WorldDb};
use tc9_codec::messages::petition::GUILD_CHARTER_TYPE;

/// A pool on the realm's characters database.
#[derive(Clone, Debug)]
pub struct MysqlWorldDb {
    pool: Pool,
}

impl MysqlWorldDb {
    /// A pool for `url`.
    pub fn new(url: &str) -> Result<MysqlWorldDb, DbError> {
        Ok(MysqlWorldDb {
            pool: Pool::new(mysql_async::Opts::from_url(url)?),
        })
    }
}

type Row5 = (u32, u32, u32, String, u8);

fn petition_row((item, id, owner, name, kind): Row5) -> PetitionRow {
    PetitionRow {
        item,
        id,
        owner,
        name,
        kind,
    }
}

impl WorldDb for MysqlWorldDb {
    async fn load(&self) -> Result<Loaded, DbError> {
        let mut conn = self.pool.get_conn().await?;
        // PetitionMgr::LoadPetitions, LoadSignatures; GuildMgr::LoadGuilds;
        // CharacterCache; ObjectMgr::SetHighestGuids (guild ids).
        let petitions: Vec<Row5> = conn
            .query("SELECT petitionguid, petition_id, ownerguid, name, type FROM petition")
            .await?;
        let signatures: Vec<(u32, u32, u32)> = conn
            .query("SELECT petition_id, playerguid, player_account FROM petition_sign")
            .await?;
        let guilds: Vec<(u32, String)> = conn.query("SELECT guildid, name FROM guild").await?;
        let characters: Vec<(u32, u32, String, u8, Option<u32>)> = conn
            .query(
                "SELECT c.guid, c.account, c.name, c.race, gm.guildid FROM characters c \
                 LEFT JOIN guild_member gm ON gm.guid = c.guid",
            )
            .await?;
        let max_guild_id: Option<Option<u32>> =
            conn.query_first("SELECT MAX(guildid) FROM guild").await?;
        Ok(Loaded {
            petitions: petitions.into_iter().map(petition_row).collect(),
            signatures,
            guilds,
            characters: characters
                .into_iter()
                .map(|(guid, account, name, race, guild)| CharacterRow {
                    guid,
                    account,
                    name,
                    race,
                    guild: guild.unwrap_or(0),
                })
                .collect(),
            max_guild_id: max_guild_id.flatten().unwrap_or(0),
        })
    }

    async fn character(&self, guid: u32) -> Result<Option<CharacterRow>, DbError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<(u32, u32, String, u8, Option<u32>)> = conn
            .exec_first(
                "SELECT c.guid, c.account, c.name, c.race, gm.guildid FROM characters c \
                 LEFT JOIN guild_member gm ON gm.guid = c.guid WHERE c.guid = ?",
                (guid,),
            )
            .await?;
        Ok(row.map(|(guid, account, name, race, guild)| CharacterRow {
            guid,
            account,
            name,
            race,
            guild: guild.unwrap_or(0),
        }))
    }

    async fn insert_petition(&self, row: &PetitionRow) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "INSERT INTO petition (petition_id, ownerguid, petitionguid, name, type) \
             VALUES (?, ?, ?, ?, ?)",
            (row.id, row.owner, row.item, &row.name, row.kind),
        )
        .await?;
        Ok(())
    }

    async fn delete_petition_by_item(&self, item: u32) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        tx.exec_drop("DELETE FROM petition WHERE petitionguid = ?", (item,))
            .await?;
        tx.exec_drop("DELETE FROM petition_sign WHERE petitionguid = ?", (item,))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_signature(
        &self,
        owner: u32,
        petition_id: u32,
        player: u32,
        account: u32,
    ) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            "INSERT INTO petition_sign (ownerguid, petition_id, playerguid, player_account) \
             VALUES (?, ?, ?, ?)",
            (owner, petition_id, player, account),
        )
        .await?;
        Ok(())
    }

    async fn delete_petition_by_id(&self, petition_id: u32) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        tx.exec_drop("DELETE FROM petition WHERE petition_id = ?", (petition_id,))
            .await?;
        tx.exec_drop(
            "DELETE FROM petition_sign WHERE petition_id = ?",
            (petition_id,),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_guild(&self, guild: &NewGuild) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await?;
        tx.exec_drop("DELETE FROM guild_member WHERE guildid = ?", (guild.id,))
            .await?;
        tx.exec_drop(
            "INSERT INTO guild (guildid, name, leaderguid, info, motd, createdate, EmblemStyle, \
             EmblemColor, BorderStyle, BorderColor, BackgroundColor, BankMoney) \
             VALUES (?, ?, ?, '', 'No message set.', ?, 0, 0, 0, 0, 0, 0)",
            (guild.id, &guild.name, guild.leader, guild.created),
        )
        .await?;
        tx.exec_drop("DELETE FROM guild_rank WHERE guildid = ?", (guild.id,))
            .await?;
        for (rid, rname, rights) in &guild.ranks {
            let per_day: u32 = if *rid == 0 { u32::MAX } else { 0 };
            tx.exec_drop(
                "INSERT INTO guild_rank (guildid, rid, rname, rights, BankMoneyPerDay) \
                 VALUES (?, ?, ?, ?, ?)",
                (guild.id, rid, rname, rights, per_day),
            )
            .await?;
        }
        for (guid, rank) in &guild.members {
            tx.exec_drop(
                "INSERT INTO guild_member (guildid, guid, `rank`, pnote, offnote) \
                 VALUES (?, ?, ?, '', '')",
                (guild.id, guid, rank),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_petitions_and_signs(&self, player: u32) -> Result<(), DbError> {
        let mut conn = self.pool.get_conn().await?;
        // CHAR_DEL_PETITION_SIGNATURE (by player and type, joined on petition_id) and
        // CHAR_DEL_PETITION_BY_OWNER_AND_TYPE.
        conn.exec_drop(
            "DELETE ps FROM petition_sign ps INNER JOIN petition p \
             ON p.petition_id = ps.petition_id WHERE ps.playerguid = ? AND p.type = ?",
            (player, GUILD_CHARTER_TYPE),
        )
        .await?;
        conn.exec_drop(
            "DELETE FROM petition WHERE ownerguid = ? AND type = ?",
            (player, GUILD_CHARTER_TYPE),
        )
        .await?;
        Ok(())
    }

    async fn petition_by_item(&self, item: u32) -> Result<Option<PetitionRow>, DbError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<Row5> = conn
            .exec_first(
                "SELECT petitionguid, petition_id, ownerguid, name, type FROM petition \
                 WHERE petitionguid = ?",
                (item,),
            )
            .await?;
        Ok(row.map(petition_row))
    }

    async fn signatures_by_id(&self, petition_id: u32) -> Result<Vec<(u32, u32)>, DbError> {
        let mut conn = self.pool.get_conn().await?;
        Ok(conn
            .exec(
                "SELECT playerguid, player_account FROM petition_sign WHERE petition_id = ?",
                (petition_id,),
            )
            .await?)
    }

    async fn max_petition_id(&self) -> Result<u32, DbError> {
        let mut conn = self.pool.get_conn().await?;
        let max: Option<Option<u32>> = conn
            .query_first("SELECT MAX(petition_id) FROM petition")
            .await?;
        Ok(max.flatten().unwrap_or(0))
    }

    async fn max_guild_id(&self) -> Result<u32, DbError> {
        let mut conn = self.pool.get_conn().await?;
        let max: Option<Option<u32>> = conn.query_first("SELECT MAX(guildid) FROM guild").await?;
        Ok(max.flatten().unwrap_or(0))
    }

    async fn in_guild(&self, guid: u32) -> Result<bool, DbError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<u32> = conn
            .exec_first("SELECT guildid FROM guild_member WHERE guid = ?", (guid,))
            .await?;
        Ok(row.is_some())
    }

    async fn guild_named(&self, name: &str) -> Result<bool, DbError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<u32> = conn
            .exec_first("SELECT guildid FROM guild WHERE name = ?", (name,))
            .await?;
        Ok(row.is_some())
    }
}
