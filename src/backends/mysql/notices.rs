//! Notices in the characters database: the sidecar's one table of its own,
//! `tc9_sidecar_notice`, created on first use. A signature's owner notice is
//! inserted in the signing transaction (see [`Db::sign`](super::Db::sign)), so it is
//! as durable as the signature; delivery claims, settles and expires rows here.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Conn;
use tc9_charter::{Notice, NoticeBacklog, Settle};

use super::rows::{all, first};
use super::{Db, StoreError};
use crate::backends::metrics::{timed, DB};

/// The table, as this build creates it.
pub const NOTICE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tc9_sidecar_notice (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    character_guid INT UNSIGNED NOT NULL,
    payload BLOB NOT NULL,
    created DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    claimed_by VARCHAR(128) NULL,
    claimed_until DATETIME(3) NULL,
    delivered DATETIME(3) NULL,
    set_aside VARCHAR(255) NULL,
    PRIMARY KEY (id),
    KEY idx_waiting (character_guid, delivered),
    KEY idx_created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Characters per statement: lists are padded to this with guid 0 (no character has
/// it), so each statement has one shape and is prepared once per connection.
const CHUNK: usize = 32;

/// `?, ?, ..., ?` for one chunk.
fn placeholders() -> String {
    vec!["?"; CHUNK].join(", ")
}

/// `characters` in chunks of [`CHUNK`], padded with 0.
fn chunks(characters: &[u32]) -> impl Iterator<Item = Vec<u32>> + '_ {
    characters.chunks(CHUNK).map(|chunk| {
        let mut padded = chunk.to_vec();
        padded.resize(CHUNK, 0);
        padded
    })
}

impl Db {
    /// A connection on which the notice table exists.
    pub(super) async fn notice_conn(&self) -> Result<Conn, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let creating = &mut conn;
        self.notices_ready
            .get_or_try_init(|| async move { creating.query_drop(NOTICE_TABLE).await })
            .await?;
        Ok(conn)
    }

    /// Records a notice for `character`.
    pub async fn post(&self, character: u32, payload: &[u8]) -> Result<i64, StoreError> {
        timed(DB, "notice_post", async move {
            let mut conn = self.notice_conn().await?;
            conn.exec_drop(
                "INSERT INTO tc9_sidecar_notice (character_guid, payload) VALUES (?, ?)",
                (character, payload),
            )
            .await?;
            Ok(conn.last_insert_id().map_or(0, |id| id as i64))
        })
        .await
    }

    /// Claims the free undelivered notices of `characters` for `claimer`, and those
    /// it claimed already (a claim whose answer was lost in an outage): the charter
    /// never claims for a character whose delivery is under way.
    pub async fn claim(
        &self,
        characters: &[u32],
        claimer: &str,
        hold: Duration,
    ) -> Result<Vec<Notice>, StoreError> {
        timed(DB, "notice_claim", async move {
            let mut conn = self.notice_conn().await?;
            let list = placeholders();
            let claim = format!(
                "UPDATE tc9_sidecar_notice SET claimed_by = ?, \
                 claimed_until = NOW(3) + INTERVAL ? MICROSECOND \
                 WHERE character_guid IN ({list}) AND delivered IS NULL AND set_aside IS NULL \
                 AND (claimed_until IS NULL OR claimed_until < NOW(3) OR claimed_by = ?) \
                 ORDER BY id LIMIT 256"
            );
            let read = format!(
                "SELECT id, character_guid, payload FROM tc9_sidecar_notice \
                 WHERE character_guid IN ({list}) AND claimed_by = ? AND delivered IS NULL \
                 AND set_aside IS NULL AND claimed_until >= NOW(3) ORDER BY id"
            );
            let hold = hold.as_micros() as u64;
            let mut notices = Vec::new();
            for chunk in chunks(characters) {
                let mut params: Vec<mysql_async::Value> = vec![claimer.into(), hold.into()];
                params.extend(chunk.iter().map(|&c| c.into()));
                params.push(claimer.into());
                conn.exec_drop(&claim, params).await?;
                let mut params: Vec<mysql_async::Value> = chunk.iter().map(|&c| c.into()).collect();
                params.push(claimer.into());
                let rows: Vec<(i64, u32, Vec<u8>)> = all(&mut conn, &read, params).await?;
                notices.extend(rows.into_iter().map(|(id, character, payload)| Notice {
                    id,
                    character,
                    payload,
                }));
            }
            notices.sort_by_key(|n| n.id);
            Ok(notices)
        })
        .await
    }

    /// Claims notice `id` for `claimer` and for `hold`, on the terms of
    /// [`Db::claim`]: whether it is now `claimer`'s.
    pub async fn claim_one(
        &self,
        id: i64,
        claimer: &str,
        hold: Duration,
    ) -> Result<bool, StoreError> {
        timed(DB, "notice_claim_one", async move {
            let mut conn = self.notice_conn().await?;
            conn.exec_drop(
                "UPDATE tc9_sidecar_notice SET claimed_by = ?, \
                 claimed_until = NOW(3) + INTERVAL ? MICROSECOND \
                 WHERE id = ? AND delivered IS NULL AND set_aside IS NULL \
                 AND (claimed_until IS NULL OR claimed_until < NOW(3) OR claimed_by = ?)",
                (claimer, hold.as_micros() as u64, id, claimer),
            )
            .await?;
            Ok(conn.affected_rows() == 1)
        })
        .await
    }

    /// Ends `claimer`'s claim on notice `id`.
    pub async fn settle(&self, id: i64, claimer: &str, outcome: Settle) -> Result<(), StoreError> {
        timed(DB, "notice_settle", async move {
            let mut conn = self.notice_conn().await?;
            match outcome {
                Settle::Delivered => {
                    conn.exec_drop(
                        "UPDATE tc9_sidecar_notice SET delivered = NOW(3), claimed_until = NULL \
                         WHERE id = ? AND claimed_by = ? AND delivered IS NULL",
                        (id, claimer),
                    )
                    .await?
                }
                Settle::Released => {
                    conn.exec_drop(
                        "UPDATE tc9_sidecar_notice SET claimed_by = NULL, claimed_until = NULL \
                         WHERE id = ? AND claimed_by = ? AND delivered IS NULL",
                        (id, claimer),
                    )
                    .await?
                }
                Settle::SetAside(why) => {
                    let why: String = why.chars().take(255).collect();
                    conn.exec_drop(
                        "UPDATE tc9_sidecar_notice SET set_aside = ?, claimed_until = NULL \
                         WHERE id = ? AND delivered IS NULL",
                        (why, id),
                    )
                    .await?
                }
            }
            Ok(())
        })
        .await
    }

    /// Gives back every claim `claimer` holds.
    pub async fn release_all(&self, claimer: &str) -> Result<(), StoreError> {
        timed(DB, "notice_release_all", async move {
            let mut conn = self.notice_conn().await?;
            conn.exec_drop(
                "UPDATE tc9_sidecar_notice SET claimed_by = NULL, claimed_until = NULL \
                 WHERE claimed_by = ? AND delivered IS NULL",
                (claimer,),
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Deletes notices created more than `age` ago; how many were never delivered.
    pub async fn expire_notices(&self, age: Duration) -> Result<u64, StoreError> {
        timed(DB, "notice_expire", async move {
            let mut conn = self.notice_conn().await?;
            let micros = age.as_micros() as u64;
            let given_up: Option<u64> = first(
                &mut conn,
                "SELECT COUNT(*) FROM tc9_sidecar_notice \
                 WHERE created < NOW(3) - INTERVAL ? MICROSECOND AND delivered IS NULL \
                 AND set_aside IS NULL",
                (micros,),
            )
            .await?;
            conn.exec_drop(
                "DELETE FROM tc9_sidecar_notice WHERE created < NOW(3) - INTERVAL ? MICROSECOND",
                (micros,),
            )
            .await?;
            Ok(given_up.unwrap_or(0))
        })
        .await
    }

    /// Undelivered notices for `characters` and realm-wide.
    pub async fn notice_backlog(&self, characters: &[u32]) -> Result<NoticeBacklog, StoreError> {
        timed(DB, "notice_backlog", async move {
            let mut conn = self.notice_conn().await?;
            let here = format!(
                "SELECT character_guid, COUNT(*), \
                 COALESCE(TIMESTAMPDIFF(MICROSECOND, MIN(created), NOW(3)), 0) \
                 FROM tc9_sidecar_notice WHERE character_guid IN ({}) AND delivered IS NULL \
                 AND set_aside IS NULL GROUP BY character_guid",
                placeholders()
            );
            let mut backlog = NoticeBacklog::default();
            for chunk in chunks(characters) {
                let rows: Vec<(u32, i64, i64)> = all(&mut conn, &here, chunk).await?;
                for (character, count, micros) in rows {
                    backlog.waiting_here.push(character);
                    backlog.here += count;
                    backlog.here_oldest = backlog.here_oldest.max(micros as f64 / 1e6);
                }
            }
            let realm: Option<(i64, i64)> = first(
                &mut conn,
                "SELECT CAST(COALESCE(SUM(set_aside IS NULL), 0) AS SIGNED), \
                 CAST(COALESCE(SUM(set_aside IS NOT NULL), 0) AS SIGNED) FROM tc9_sidecar_notice WHERE delivered IS NULL",
                (),
            )
            .await?;
            if let Some((waiting, set_aside)) = realm {
                backlog.realm = waiting;
                backlog.set_aside = set_aside;
            }
            Ok(backlog)
        })
        .await
    }
}
