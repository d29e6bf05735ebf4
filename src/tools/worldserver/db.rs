//! The characters database as the worldserver uses it: what it loads at start-up and
//! the rows its handlers write, each as the pinned AzerothCore writes it.

use std::future::Future;

/// A database call of the model failed.
pub type DbError = Box<dyn std::error::Error + Send + Sync>;

/// A `petition` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PetitionRow {
    /// `petitionguid`: the charter item's low guid.
    pub item: u32,
    /// `petition_id`.
    pub id: u32,
    /// `ownerguid`.
    pub owner: u32,
    /// `name`.
    pub name: String,
    /// `type`.
    pub kind: u8,
}

/// A character as the worldserver's character cache holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterRow {
    /// `characters.guid`.
    pub guid: u32,
    /// `characters.account`.
    pub account: u32,
    /// `characters.name`.
    pub name: String,
    /// `characters.race`.
    pub race: u8,
    /// `guild_member.guildid`, 0 for none.
    pub guild: u32,
}

/// What a worldserver loads at start-up (`World.cpp`: `LoadPetitions`,
/// `LoadSignatures`, `LoadGuilds`, the character cache and the id counters).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Every petition.
    pub petitions: Vec<PetitionRow>,
    /// Every signature: `(petition_id, playerguid, player_account)`.
    pub signatures: Vec<(u32, u32, u32)>,
    /// Every guild: `(guildid, name)`.
    pub guilds: Vec<(u32, String)>,
    /// Every character.
    pub characters: Vec<CharacterRow>,
    /// `MAX(guildid)`.
    pub max_guild_id: u32,
}

/// A guild as `Guild::Create` and `AddMember` write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGuild {
    /// `guildid`.
    pub id: u32,
    /// `name`.
    pub name: String,
    /// `leaderguid`.
    pub leader: u32,
    /// `createdate`.
    pub created: u32,
    /// `(rid, rname, rights)` of each rank.
    pub ranks: Vec<(u8, String, u32)>,
    /// `(guid, rank)` of each member, the leader first.
    pub members: Vec<(u32, u8)>,
}

/// The characters database of a modelled worldserver.
pub trait WorldDb: Clone + Send + Sync + 'static {
    /// Everything loaded at start-up.
    fn load(&self) -> impl Future<Output = Result<Loaded, DbError>> + Send;
    /// One character, at login.
    fn character(
        &self,
        guid: u32,
    ) -> impl Future<Output = Result<Option<CharacterRow>, DbError>> + Send;
    /// `CHAR_INS_PETITION`.
    fn insert_petition(
        &self,
        row: &PetitionRow,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// The purchase's cleanup of an older charter: both tables by `petitionguid`.
    fn delete_petition_by_item(
        &self,
        item: u32,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// `CHAR_INS_PETITION_SIGNATURE`: `petition_id` only (`petitionguid`, `type` 0).
    fn insert_signature(
        &self,
        owner: u32,
        petition_id: u32,
        player: u32,
        account: u32,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// `CHAR_DEL_PETITION_BY_ID` and `CHAR_DEL_PETITION_SIGNATURE_BY_ID`, one
    /// transaction.
    fn delete_petition_by_id(
        &self,
        petition_id: u32,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// `Guild::Create` and `AddMember`: the guild, its ranks and its members.
    fn create_guild(&self, guild: &NewGuild) -> impl Future<Output = Result<(), DbError>> + Send;
    /// `Player::RemovePetitionsAndSigns(guid, GUILD_CHARTER_TYPE)`: the player's guild
    /// charters and guild-charter signatures.
    fn remove_petitions_and_signs(
        &self,
        player: u32,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// The module's read of a petition by its charter item.
    fn petition_by_item(
        &self,
        item: u32,
    ) -> impl Future<Output = Result<Option<PetitionRow>, DbError>> + Send;
    /// The module's read of a petition's signatures: `(playerguid, player_account)`.
    fn signatures_by_id(
        &self,
        petition_id: u32,
    ) -> impl Future<Output = Result<Vec<(u32, u32)>, DbError>> + Send;
    /// `MAX(petition_id)` of `petition`.
    fn max_petition_id(&self) -> impl Future<Output = Result<u32, DbError>> + Send;
    /// `MAX(guildid)` of `guild`.
    fn max_guild_id(&self) -> impl Future<Output = Result<u32, DbError>> + Send;
    /// Whether `guid` has a `guild_member` row.
    fn in_guild(&self, guid: u32) -> impl Future<Output = Result<bool, DbError>> + Send;
    /// Whether a guild is called `name`.
    fn guild_named(&self, name: &str) -> impl Future<Output = Result<bool, DbError>> + Send;
}
