//! [`Db`] as the charter's [`CharterStore`].

use std::time::Duration;

use tc9_charter::rules::{CharterKey, Guild, Petition, Player, Rules, Signature};
use tc9_charter::{
    BackendError, CharterStore, Deliverer, Notice, NoticeBacklog, Roster, Settle, Signed,
};

use super::Db;

impl CharterStore for Db {
    async fn character(&self, guid: u32) -> Result<Option<Player>, BackendError> {
        Db::character(self, guid).await.map_err(BackendError::store)
    }
    async fn petition(&self, petition_guid: u32) -> Result<Option<Petition>, BackendError> {
        Db::petition(self, petition_guid)
            .await
            .map_err(BackendError::store)
    }
    async fn signatures(&self, petition_id: u32) -> Result<Vec<Signature>, BackendError> {
        Db::signatures(self, petition_id)
            .await
            .map_err(BackendError::store)
    }
    async fn guild(&self, guild_id: u32) -> Result<Option<Guild>, BackendError> {
        Db::guild(self, guild_id).await.map_err(BackendError::store)
    }
    async fn charter_of(&self, owner: u32) -> Result<Option<Petition>, BackendError> {
        Db::charter_of(self, owner)
            .await
            .map_err(BackendError::store)
    }
    async fn guild_named(&self, name: &str) -> Result<bool, BackendError> {
        Db::guild_named(self, name)
            .await
            .map_err(BackendError::store)
    }
    async fn sign(
        &self,
        charter: CharterKey,
        signer: &Player,
        invited: bool,
        rules: &Rules,
        deliverer: &Deliverer,
    ) -> Result<Option<Signed>, BackendError> {
        Db::sign(self, charter, signer, invited, rules, deliverer)
            .await
            .map_err(BackendError::store)
    }
    async fn guild_roster(&self, name: &str) -> Result<Option<Roster>, BackendError> {
        Db::guild_roster(self, name)
            .await
            .map_err(BackendError::store)
    }
    async fn post(&self, character: u32, payload: &[u8]) -> Result<i64, BackendError> {
        Db::post(self, character, payload)
            .await
            .map_err(BackendError::store)
    }
    async fn claim(
        &self,
        characters: &[u32],
        claimer: &str,
        hold: Duration,
    ) -> Result<Vec<Notice>, BackendError> {
        Db::claim(self, characters, claimer, hold)
            .await
            .map_err(BackendError::store)
    }
    async fn claim_one(
        &self,
        id: i64,
        claimer: &str,
        hold: Duration,
    ) -> Result<bool, BackendError> {
        Db::claim_one(self, id, claimer, hold)
            .await
            .map_err(BackendError::store)
    }
    async fn settle(&self, id: i64, claimer: &str, outcome: Settle) -> Result<(), BackendError> {
        Db::settle(self, id, claimer, outcome)
            .await
            .map_err(BackendError::store)
    }
    async fn release_all(&self, claimer: &str) -> Result<(), BackendError> {
        Db::release_all(self, claimer)
            .await
            .map_err(BackendError::store)
    }
    async fn expire_notices(&self, age: Duration) -> Result<u64, BackendError> {
        Db::expire_notices(self, age)
            .await
            .map_err(BackendError::store)
    }
    async fn notice_backlog(&self, characters: &[u32]) -> Result<NoticeBacklog, BackendError> {
        Db::notice_backlog(self, characters)
            .await
            .map_err(BackendError::store)
    }
}
