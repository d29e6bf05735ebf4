//! The signing transaction in two round trips: the reads under the charter's row
//! lock in one batch, the writes with the commit in another. Every value in the
//! batches is a number or hex, so they are sent as text, several statements each.

use std::fmt::Write as _;

use mysql_async::prelude::*;
use mysql_async::{Conn, QueryResult, Row, TextProtocol};
use tc9_charter::rules::{self, CharterKey, Petition, Player, Rules, SignVerdict, Signature};
use tc9_charter::{Deliverer, Notice, Signed, HELD_HOLD};
use tc9_codec::messages::petition::GUILD_CHARTER_TYPE;

use super::rows::typed;
use super::{petition_from_row, Db, LockedRow, StoreError};
use crate::backends::metrics::{timed, DB};

/// A connection inside a transaction begun by text, which the driver does not track:
/// dropped before its end (an error, or a caller that gave up waiting), it rolls the
/// transaction back, or closes the connection, before the pool hands it out again.
struct InTransaction(Option<Conn>);

impl InTransaction {
    fn conn(&mut self) -> &mut Conn {
        self.0.as_mut().expect("taken only by finish")
    }

    /// Runs `batch`, which ends the transaction, and gives the connection back.
    async fn finish(mut self, batch: &str) -> Result<Vec<Vec<Row>>, StoreError> {
        let sets = sets(self.conn().query_iter(batch).await?).await?;
        self.0.take();
        Ok(sets)
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if conn.query_drop("ROLLBACK").await.is_err() {
                    let _ = conn.disconnect().await;
                }
            });
        }
    }
}

/// Every result set of a text batch, rows as they came.
async fn sets(
    mut result: QueryResult<'_, 'static, TextProtocol>,
) -> Result<Vec<Vec<Row>>, StoreError> {
    let mut sets = Vec::new();
    while !result.is_empty() {
        sets.push(result.collect::<Row>().await?);
    }
    Ok(sets)
}

/// The rows of result set `at`, as `T`.
fn rows<T: FromRow>(sets: &mut [Vec<Row>], at: usize) -> Result<Vec<T>, StoreError> {
    let set = sets.get_mut(at).map(std::mem::take).unwrap_or_default();
    set.into_iter().map(typed).collect()
}

/// The reads: begin, lock the charter's row by its primary key (petitionguid has no
/// index of its own) with its signatures, and read the owner's race and the signer's
/// guild. Membership can change while a character plays: the rules read it here.
fn reads(charter: CharterKey, signer: u32) -> String {
    format!(
        "START TRANSACTION; \
         SELECT p.petitionguid, p.petition_id, p.ownerguid, p.name, p.type, \
             s.playerguid, s.player_account FROM petition p \
             LEFT JOIN petition_sign s ON s.petition_id = p.petition_id \
             WHERE p.ownerguid = {owner} AND p.type = {GUILD_CHARTER_TYPE} FOR UPDATE; \
         SELECT (SELECT race FROM characters WHERE guid = {owner}), \
             (SELECT guildid FROM guild_member WHERE guid = {signer})",
        owner = charter.owner_guid,
    )
}

/// The writes: the signature when the verdict records one, the owner's notice
/// (claimed for `held_for` when given), its id, and the commit.
fn writes(
    petition: &Petition,
    signer: &Player,
    record: bool,
    payload: &[u8],
    held_for: Option<&str>,
) -> String {
    let mut batch = String::with_capacity(400 + 2 * payload.len());
    if record {
        let _ = write!(
            batch,
            "INSERT INTO petition_sign \
             (ownerguid, petitionguid, petition_id, playerguid, player_account, type) \
             VALUES ({}, {}, {}, {}, {}, {}); ",
            petition.owner_guid,
            petition.petition_guid,
            petition.petition_id,
            signer.guid,
            signer.account,
            petition.kind,
        );
    }
    let claim = match held_for {
        Some(sidecar) => format!(
            "X'{}', NOW(3) + INTERVAL {} MICROSECOND",
            hex::encode(sidecar),
            HELD_HOLD.as_micros()
        ),
        None => "NULL, NULL".to_owned(),
    };
    let _ = write!(
        batch,
        "INSERT INTO tc9_sidecar_notice (character_guid, payload, claimed_by, claimed_until) \
         VALUES ({}, X'{}', {claim}); SELECT LAST_INSERT_ID(); COMMIT",
        petition.owner_guid,
        hex::encode(payload),
    );
    batch
}

impl Db {
    /// Signs the guild charter `charter` for `signer` under AzerothCore's rules, in one
    /// transaction that holds the petition's row lock, so that signers racing on any
    /// number of sidecars end with exactly the rows the rules allow.
    ///
    /// Returns `None` when no guild charter of that item and owner exists, else the
    /// petition and the
    /// verdict; a [`SignVerdict::Record`] has been committed, and with it (and with
    /// an already-signed verdict) the owner's notice, claimed for `deliverer` when
    /// the owner's lookup has found it by the time the writes are sent (or soon
    /// after, [`Deliverer::WAIT`]).
    pub async fn sign(
        &self,
        charter: CharterKey,
        signer: &Player,
        invited: bool,
        rules: &Rules,
        deliverer: &Deliverer,
    ) -> Result<Option<Signed>, StoreError> {
        timed(DB, "sign", async move {
            let mut tx = InTransaction(Some(self.notice_conn().await?));
            let mut read = sets(tx.conn().query_iter(reads(charter, signer.guid)).await?).await?;
            let locked: Vec<LockedRow> = rows(&mut read, 1)?;
            let (owner_race, guild_id): (Option<u8>, Option<u32>) =
                rows(&mut read, 2)?.into_iter().next().unwrap_or_default();
            let petition = match locked.first() {
                Some(row) if row.0 == charter.petition_guid => {
                    petition_from_row((row.0, row.1, row.2, row.3.clone(), row.4))
                }
                _ => {
                    tx.finish("ROLLBACK").await?;
                    return Ok(None);
                }
            };
            // Sorted here: an ORDER BY over the join would sort in a temporary table.
            let mut signatures: Vec<Signature> = locked
                .into_iter()
                .filter_map(|row| match (row.5, row.6) {
                    (Some(player_guid), Some(account)) => Some(Signature {
                        player_guid,
                        account,
                    }),
                    _ => None,
                })
                .collect();
            signatures.sort_by_key(|s| s.player_guid);
            let signer = &Player {
                guild_id,
                ..signer.clone()
            };
            let verdict = rules::judge_sign(
                &petition,
                &signatures,
                signer,
                owner_race.unwrap_or(0),
                invited,
                rules,
            );
            let Some((owner, payload)) = tc9_charter::owner_notice(&petition, &verdict) else {
                tx.finish("ROLLBACK").await?;
                return Ok(Some(Signed {
                    petition,
                    verdict,
                    notice: None,
                    held_for: None,
                }));
            };
            let record = matches!(verdict, SignVerdict::Record(_));
            let held_for = deliverer.known_soon().await;
            let batch = writes(&petition, signer, record, &payload, held_for.as_deref());
            let written = tx.finish(&batch).await?;
            // The one row of the batch is the notice's id.
            let id: Option<(i64,)> = written
                .into_iter()
                .flatten()
                .next()
                .map(typed)
                .transpose()?;
            Ok(Some(Signed {
                petition,
                verdict,
                notice: Some(Notice {
                    id: id.map_or(0, |(id,)| id),
                    character: owner,
                    payload,
                }),
                held_for,
            }))
        })
        .await
    }
}
