//! Test databases: a fresh MariaDB database with the AzerothCore tables the sidecar
//! uses (`testkit/azerothcore.sql`) and a fresh PostgreSQL database, each dropped
//! when its guard goes, even after a panic.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use tc9_codec::messages::petition::GUILD_CHARTER_TYPE;
use tokio::time::timeout;

use crate::MARIADB;

mod postgres;

pub use postgres::{located, pg_connect, postgres_reachable, wait_located, PgDb};

/// The AzerothCore tables, loaded statement by statement into each test database.
const FIXTURE: &str = include_str!("../../azerothcore.sql");

/// One `petition_sign` row: ownerguid, petitionguid, petition_id, playerguid,
/// player_account, type.
pub type SignRow = (u32, u32, u32, u32, u32, u8);

/// The `petition_sign` row of `player` (of `account`) on charter `petition`
/// (= petition_id) of `owner`, with every key column filled.
pub fn sign_row(owner: u32, petition: u32, player: u32, account: u32) -> SignRow {
    (
        owner,
        petition,
        petition,
        player,
        account,
        GUILD_CHARTER_TYPE,
    )
}

/// A character as the store reads it: `guid` of `account`, human, no guild.
pub fn player(guid: u32, account: u32) -> tc9_charter::Player {
    tc9_charter::Player {
        guid,
        account,
        name: format!("P{guid}"),
        race: 1,
        ..tc9_charter::Player::default()
    }
}

/// A database name no other test (or run) uses; short enough for PostgreSQL.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "tc9_test_{tag}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `body` on a thread of its own with a runtime of its own: usable from `Drop`,
/// inside the test's runtime or while it unwinds.
fn run_detached<F, Fut>(body: F) -> Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>>,
{
    std::thread::spawn(move || -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(body())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("cleanup thread panicked"))?
}

/// Fails unless MariaDB answers within 3 s (benches skip with the reason).
pub async fn mariadb_reachable() -> Result<()> {
    timeout(std::time::Duration::from_secs(3), async {
        let pool = mysql_async::Pool::new(MARIADB);
        // The connection goes back to the pool before the pool closes.
        let reached = pool.get_conn().await.map(drop);
        let _ = pool.disconnect().await;
        reached
    })
    .await
    .context("MariaDB did not answer within 3 s")?
    .with_context(|| format!("MariaDB unreachable at {MARIADB}"))
}

/// A MariaDB database of its own for one test, with the AzerothCore tables.
pub struct MariaDb {
    /// The database's name.
    pub name: String,
    /// A pool on it, for the test's own queries.
    pub pool: mysql_async::Pool,
}

/// The tables a realm's sidecars and worldservers use, by database: AzerothCore's
/// own definitions from `../shared/azerothcore/sql`.
const REAL_TABLES: [(&str, &str); 7] = [
    ("db_characters", "characters"),
    ("db_characters", "petition"),
    ("db_characters", "petition_sign"),
    ("db_characters", "guild"),
    ("db_characters", "guild_member"),
    ("db_characters", "guild_rank"),
    ("db_auth", "account"),
];

/// The `characters` columns an insert names: the sidecar's, then AzerothCore's NOT
/// NULL columns without a default (`taximask`, `innTriggerId`).
pub const CHARACTER_COLUMNS: &str =
    "(guid, account, name, race, class, gender, level, online, taximask, innTriggerId)";

/// The `account` columns an insert names: id, name, AzerothCore's NOT NULL `salt`
/// and `verifier` (left zero), and the session key.
pub const ACCOUNT_COLUMNS: &str = "(id, username, salt, verifier, session_key)";

/// Where AzerothCore's table definitions are, when this checkout has them.
pub fn azerothcore_sql() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/azerothcore/sql");
    dir.is_dir().then_some(dir)
}

impl MariaDb {
    /// Creates the database and its tables: AzerothCore's own definitions where they
    /// are beside this checkout ([`MariaDb::azerothcore`]), else the project's subset
    /// (`testkit/azerothcore.sql`, the same columns and keys).
    pub async fn create(tag: &str) -> Result<MariaDb> {
        match azerothcore_sql() {
            Some(sql) => MariaDb::with_real_tables(tag, &sql).await,
            None => MariaDb::fixture(tag).await,
        }
    }

    /// Creates the database with the project's subset of the tables, whatever is
    /// beside this checkout.
    pub async fn fixture(tag: &str) -> Result<MariaDb> {
        // From here on the guard drops the database whatever happens.
        let db = MariaDb::create_empty(tag).await?;
        let script: String = FIXTURE
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            db.exec(statement, ()).await?;
        }
        Ok(db)
    }

    /// A database with AzerothCore's own table definitions, loaded from
    /// `../shared/azerothcore/sql`; `None` (after saying so) where that folder is
    /// absent, as in a user's clone.
    pub async fn azerothcore(tag: &str) -> Result<Option<MariaDb>> {
        let Some(sql) = azerothcore_sql() else {
            eprintln!("skipping: ../shared/azerothcore/sql (AzerothCore's table definitions) is not beside this checkout");
            return Ok(None);
        };
        MariaDb::with_real_tables(tag, &sql).await.map(Some)
    }

    /// A database with the definitions of [`REAL_TABLES`] read from `sql`.
    async fn with_real_tables(tag: &str, sql: &std::path::Path) -> Result<MariaDb> {
        let db = MariaDb::create_empty(tag).await?;
        let mut conn = db.pool.get_conn().await?;
        for (database, table) in REAL_TABLES {
            let path = sql.join(database).join(format!("{table}.sql"));
            let dump = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            conn.query_drop(dump)
                .await
                .with_context(|| format!("loading {}", path.display()))?;
        }
        drop(conn);
        Ok(db)
    }

    /// The database, without tables.
    async fn create_empty(tag: &str) -> Result<MariaDb> {
        let name = unique_name(tag);
        let admin = mysql_async::Pool::new(MARIADB);
        let created = async {
            let mut conn = admin.get_conn().await?;
            conn.query_drop(format!("CREATE DATABASE `{name}`")).await?;
            anyhow::Ok(())
        }
        .await;
        admin.disconnect().await?;
        created.context("creating the MariaDB test database (is MariaDB up?)")?;
        let pool = mysql_async::Pool::new(format!("{MARIADB}/{name}").as_str());
        Ok(MariaDb { name, pool })
    }

    /// The URL of the database.
    pub fn url(&self) -> String {
        format!("{MARIADB}/{}", self.name)
    }

    /// Runs one statement.
    pub async fn exec(
        &self,
        statement: &str,
        params: impl Into<mysql_async::Params> + Send,
    ) -> Result<()> {
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(statement, params)
            .await
            .with_context(|| format!("running `{statement}`"))
    }

    /// Adds an online level-80 character.
    pub async fn character(&self, guid: u32, account: u32, name: &str, race: u8) -> Result<()> {
        self.exec(
            &format!("INSERT INTO characters {CHARACTER_COLUMNS} VALUES (?, ?, ?, ?, 1, 0, 80, 1, '', 0)"),
            (guid, account, name, race),
        )
        .await
    }

    /// Adds the auth database's `account` row `id`, with `session_key` if any.
    pub async fn account(&self, id: u32, username: &str, session_key: Option<&[u8]>) -> Result<()> {
        self.exec(
            &format!("INSERT INTO account {ACCOUNT_COLUMNS} VALUES (?, ?, '', '', ?)"),
            (id, username, session_key.map(<[u8]>::to_vec)),
        )
        .await
    }

    /// Adds a signature as the worldserver writes it: `petition_id` only
    /// (`petitionguid` and `type` stay 0; AzerothCore `CHAR_INS_PETITION_SIGNATURE`).
    pub async fn native_signature(
        &self,
        owner: u32,
        petition_id: u32,
        player: u32,
        account: u32,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO petition_sign (ownerguid, petition_id, playerguid, player_account) \
             VALUES (?, ?, ?, ?)",
            (owner, petition_id, player, account),
        )
        .await
    }

    /// The signature rows of the petition `petition_id`, however they were written.
    pub async fn signatures_by_id(&self, petition_id: u32) -> Result<Vec<SignRow>> {
        self.sign_rows("petition_id", petition_id).await
    }

    /// The `petition_sign` rows whose `column` is `value`, by player.
    async fn sign_rows(&self, column: &str, value: u32) -> Result<Vec<SignRow>> {
        let mut conn = self.pool.get_conn().await?;
        Ok(conn
            .exec(
                format!(
                    "SELECT ownerguid, petitionguid, petition_id, playerguid, player_account, type \
                     FROM petition_sign WHERE {column} = ? ORDER BY playerguid"
                ),
                (value,),
            )
            .await?)
    }

    /// Makes `guid` a member of `guild`.
    pub async fn guild_member(&self, guild: u32, guid: u32) -> Result<()> {
        self.exec(
            "INSERT INTO guild_member (guildid, guid, `rank`) VALUES (?, ?, 4)",
            (guild, guid),
        )
        .await
    }

    /// Adds a guild charter.
    pub async fn petition(
        &self,
        owner: u32,
        petition_guid: u32,
        petition_id: u32,
        name: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) \
             VALUES (?, ?, ?, ?, ?)",
            (owner, petition_guid, petition_id, name, GUILD_CHARTER_TYPE),
        )
        .await
    }

    /// Adds a signature row directly (petition guid = petition id).
    pub async fn signature(
        &self,
        owner: u32,
        petition: u32,
        player: u32,
        account: u32,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO petition_sign \
             (ownerguid, petitionguid, petition_id, playerguid, player_account, type) \
             VALUES (?, ?, ?, ?, ?, ?)",
            sign_row(owner, petition, player, account),
        )
        .await
    }

    /// The signature rows of the charter item `petition`, by player.
    pub async fn signatures(&self, petition: u32) -> Result<Vec<SignRow>> {
        self.sign_rows("petitionguid", petition).await
    }

    /// `(character, delivered)` of every notice, oldest first (none before the
    /// sidecar first used the table).
    pub async fn notices(&self) -> Result<Vec<(u32, bool)>> {
        let mut conn = self.pool.get_conn().await?;
        let exists: Option<String> = conn
            .exec_first("SHOW TABLES LIKE 'tc9_sidecar_notice'", ())
            .await?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<(u32, bool)> = conn
            .query(
                "SELECT character_guid, delivered IS NOT NULL FROM tc9_sidecar_notice ORDER BY id",
            )
            .await?;
        Ok(rows)
    }

    /// The players who signed the charter item `petition`, by guid.
    pub async fn signers(&self, petition: u32) -> Result<Vec<u32>> {
        Ok(self
            .signatures(petition)
            .await?
            .into_iter()
            .map(|row| row.3)
            .collect())
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        let dropped = run_detached(move || async move {
            let admin = mysql_async::Pool::new(MARIADB);
            let result = async {
                let mut conn = admin.get_conn().await?;
                conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                    .await?;
                anyhow::Ok(())
            }
            .await;
            let _ = admin.disconnect().await;
            result.with_context(|| format!("dropping {name}"))
        });
        if let Err(e) = dropped {
            eprintln!("MariaDB test database cleanup failed: {e:#}");
        }
    }
}
