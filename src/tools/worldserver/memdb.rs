//! The model's characters database over the sidecar's in-memory tables
//! ([`MemoryStore`]), so that the demo's worldservers and sidecars share one realm
//! without any database server.

use tc9_charter::rules::{Guild, Petition, Player, Signature};
use tc9_codec::messages::petition::GUILD_CHARTER_TYPE;

use super::db::{CharacterRow, DbError, Loaded, NewGuild, PetitionRow, WorldDb};
use crate::backends::memory::{MemoryStore, SignatureRow, Tables};

fn row(p: &Petition) -> PetitionRow {
    PetitionRow {
        item: p.petition_guid,
        id: p.petition_id,
        owner: p.owner_guid,
        name: p.name.clone(),
        kind: p.kind,
    }
}

fn character(c: &Player) -> CharacterRow {
    CharacterRow {
        guid: c.guid,
        account: c.account,
        name: c.name.clone(),
        race: c.race,
        guild: c.guild_id.unwrap_or(0),
    }
}

/// Runs `f` on `store`'s tables as one database call.
async fn call<T>(store: &MemoryStore, f: impl FnOnce(&mut Tables) -> T) -> Result<T, DbError> {
    Ok(store.with_tables(f))
}

impl WorldDb for MemoryStore {
    async fn load(&self) -> Result<Loaded, DbError> {
        call(self, |t| Loaded {
            petitions: t.petitions.values().map(row).collect(),
            signatures: t
                .signatures
                .iter()
                .map(|r| (r.petition_id, r.signature.player_guid, r.signature.account))
                .collect(),
            guilds: t.guilds.values().map(|g| (g.id, g.name.clone())).collect(),
            characters: t.characters.values().map(character).collect(),
            max_guild_id: t.guilds.keys().copied().max().unwrap_or(0),
        })
        .await
    }

    async fn character(&self, guid: u32) -> Result<Option<CharacterRow>, DbError> {
        call(self, |t| t.characters.get(&guid).map(character)).await
    }

    async fn insert_petition(&self, p: &PetitionRow) -> Result<(), DbError> {
        call(self, |t| {
            t.petitions.insert(
                p.item,
                Petition {
                    petition_guid: p.item,
                    petition_id: p.id,
                    owner_guid: p.owner,
                    name: p.name.clone(),
                    kind: p.kind,
                },
            );
        })
        .await
    }

    async fn delete_petition_by_item(&self, item: u32) -> Result<(), DbError> {
        call(self, |t| {
            t.petitions.remove(&item);
            t.signatures.retain(|r| r.petition_guid != item);
        })
        .await
    }

    async fn insert_signature(
        &self,
        _owner: u32,
        petition_id: u32,
        player: u32,
        account: u32,
    ) -> Result<(), DbError> {
        call(self, |t| {
            t.signatures.push(SignatureRow {
                petition_id,
                petition_guid: 0,
                signature: Signature {
                    player_guid: player,
                    account,
                },
            });
        })
        .await
    }

    async fn delete_petition_by_id(&self, petition_id: u32) -> Result<(), DbError> {
        call(self, |t| {
            t.petitions.retain(|_, p| p.petition_id != petition_id);
            t.signatures.retain(|r| r.petition_id != petition_id);
        })
        .await
    }

    async fn create_guild(&self, guild: &NewGuild) -> Result<(), DbError> {
        call(self, |t| {
            t.guilds.insert(
                guild.id,
                Guild {
                    id: guild.id,
                    name: guild.name.clone(),
                    emblem: [0; 5],
                    ranks: guild
                        .ranks
                        .iter()
                        .map(|(rid, name, _)| (*rid, name.clone()))
                        .collect(),
                },
            );
            for (member, _) in &guild.members {
                if let Some(c) = t.characters.get_mut(member) {
                    c.guild_id = Some(guild.id);
                }
            }
        })
        .await
    }

    async fn remove_petitions_and_signs(&self, player: u32) -> Result<(), DbError> {
        call(self, |t| {
            let guild_charters: Vec<u32> = t
                .petitions
                .values()
                .filter(|p| p.kind == GUILD_CHARTER_TYPE)
                .map(|p| p.petition_id)
                .collect();
            t.signatures.retain(|r| {
                !(r.signature.player_guid == player && guild_charters.contains(&r.petition_id))
            });
            t.petitions
                .retain(|_, p| !(p.owner_guid == player && p.kind == GUILD_CHARTER_TYPE));
        })
        .await
    }

    async fn petition_by_item(&self, item: u32) -> Result<Option<PetitionRow>, DbError> {
        call(self, |t| t.petitions.get(&item).map(row)).await
    }

    async fn signatures_by_id(&self, petition_id: u32) -> Result<Vec<(u32, u32)>, DbError> {
        call(self, |t| {
            t.signatures_of(petition_id)
                .into_iter()
                .map(|s| (s.player_guid, s.account))
                .collect()
        })
        .await
    }

    async fn max_petition_id(&self) -> Result<u32, DbError> {
        call(self, |t| {
            t.petitions
                .values()
                .map(|p| p.petition_id)
                .max()
                .unwrap_or(0)
        })
        .await
    }

    async fn max_guild_id(&self) -> Result<u32, DbError> {
        call(self, |t| t.guilds.keys().copied().max().unwrap_or(0)).await
    }

    async fn in_guild(&self, guid: u32) -> Result<bool, DbError> {
        call(self, |t| {
            t.characters
                .get(&guid)
                .is_some_and(|c| c.guild_id.is_some())
        })
        .await
    }

    async fn guild_named(&self, name: &str) -> Result<bool, DbError> {
        call(self, |t| t.guilds.values().any(|g| g.name == name)).await
    }
}
