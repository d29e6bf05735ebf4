//! An in-memory characters database.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tc9_charter::rules::{self, Guild, Petition, Player, Rules, SignVerdict, Signature};
use tc9_charter::{BackendError, CharterStore};

use super::{lock, World};

/// The tables of an in-memory characters database.
#[derive(Debug, Default)]
pub struct Tables {
    /// `characters` with their `guild_member` guild.
    pub characters: HashMap<u32, Player>,
    /// `petition`, by `petitionguid`.
    pub petitions: HashMap<u32, Petition>,
    /// `petition_sign` rows: `petition_id`, `petitionguid` (0 where the worldserver
    /// wrote the row) and the signature. Signatures belong to their petition by id,
    /// as AzerothCore relates them.
    pub signatures: Vec<SignatureRow>,
    /// `guild` with its ranks, by `guildid`.
    pub guilds: HashMap<u32, Guild>,
}

/// One `petition_sign` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureRow {
    /// `petition_id`.
    pub petition_id: u32,
    /// `petitionguid` (0 for the worldserver's own rows).
    pub petition_guid: u32,
    /// `playerguid`, `player_account`.
    pub signature: Signature,
}

impl Tables {
    /// The signatures of petition `petition_id`, by player guid.
    pub fn signatures_of(&self, petition_id: u32) -> Vec<Signature> {
        let mut rows: Vec<Signature> = self
            .signatures
            .iter()
            .filter(|r| r.petition_id == petition_id)
            .map(|r| r.signature)
            .collect();
        rows.sort_by_key(|s| s.player_guid);
        rows
    }
}

/// An in-memory characters database. Clones share the same tables.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryStore {
    /// A store holding `world`.
    pub fn from_world(world: &World) -> MemoryStore {
        let store = MemoryStore::default();
        store.load(world);
        store
    }

    /// Adds the rows of `world`.
    pub fn load(&self, world: &World) {
        let mut t = lock(&self.tables);
        for c in &world.character {
            t.characters.insert(
                c.guid,
                Player {
                    guid: c.guid,
                    account: c.account,
                    name: c.name.clone(),
                    race: c.race,
                    class: c.class,
                    level: c.level,
                    guild_id: c.guild,
                },
            );
        }
        for p in &world.petition {
            t.petitions.insert(
                p.guid,
                Petition {
                    petition_guid: p.guid,
                    petition_id: p.id.unwrap_or(p.guid),
                    owner_guid: p.owner,
                    name: p.name.clone(),
                    kind: p.kind,
                },
            );
        }
        for s in &world.signature {
            // A world file names the charter item; rows carry its petition id.
            let petition_id = t
                .petitions
                .get(&s.petition)
                .map_or(s.petition, |p| p.petition_id);
            t.signatures.push(SignatureRow {
                petition_id,
                petition_guid: s.petition,
                signature: Signature {
                    player_guid: s.player,
                    account: s.account,
                },
            });
        }
        for g in &world.guild {
            t.guilds.insert(
                g.id,
                Guild {
                    id: g.id,
                    name: g.name.clone(),
                    emblem: g.emblem,
                    ranks: g
                        .ranks
                        .iter()
                        .enumerate()
                        .map(|(rid, name)| (rid as u8, name.clone()))
                        .collect(),
                },
            );
        }
    }

    /// Runs `f` over the tables, under their lock.
    pub fn with_tables<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> R {
        f(&mut lock(&self.tables))
    }

    /// The signatures recorded for the charter item `petition_guid`.
    pub fn signatures_now(&self, petition_guid: u32) -> Vec<Signature> {
        let t = lock(&self.tables);
        t.petitions
            .get(&petition_guid)
            .map(|p| t.signatures_of(p.petition_id))
            .unwrap_or_default()
    }
}

impl CharterStore for MemoryStore {
    fn character(
        &self,
        guid: u32,
    ) -> impl Future<Output = Result<Option<Player>, BackendError>> + Send {
        let found = lock(&self.tables).characters.get(&guid).cloned();
        async move { Ok(found) }
    }

    fn petition(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Option<Petition>, BackendError>> + Send {
        let found = lock(&self.tables).petitions.get(&petition_guid).cloned();
        async move { Ok(found) }
    }

    fn signatures(
        &self,
        petition_id: u32,
    ) -> impl Future<Output = Result<Vec<Signature>, BackendError>> + Send {
        let rows = lock(&self.tables).signatures_of(petition_id);
        async move { Ok(rows) }
    }

    fn guild(
        &self,
        guild_id: u32,
    ) -> impl Future<Output = Result<Option<Guild>, BackendError>> + Send {
        let found = lock(&self.tables).guilds.get(&guild_id).cloned();
        async move { Ok(found) }
    }

    fn charter_of(
        &self,
        owner: u32,
    ) -> impl Future<Output = Result<Option<Petition>, BackendError>> + Send {
        let found = lock(&self.tables)
            .petitions
            .values()
            .find(|p| p.owner_guid == owner && p.is_guild_charter())
            .cloned();
        async move { Ok(found) }
    }

    fn guild_named(&self, name: &str) -> impl Future<Output = Result<bool, BackendError>> + Send {
        let found = lock(&self.tables).guilds.values().any(|g| g.name == name);
        async move { Ok(found) }
    }

    fn sign(
        &self,
        petition_guid: u32,
        signer: &Player,
        invited: bool,
        rules: &Rules,
    ) -> impl Future<Output = Result<Option<(Petition, SignVerdict)>, BackendError>> + Send {
        // One lock around read, judge and insert: the same atomicity as the MySQL
        // transaction's row lock.
        let mut t = lock(&self.tables);
        let outcome = t.petitions.get(&petition_guid).cloned().map(|petition| {
            let signatures = t.signatures_of(petition.petition_id);
            let owner_race = t.characters.get(&petition.owner_guid).map_or(0, |c| c.race);
            // Membership can change while a character plays: the rules read it here.
            let signer = &Player {
                guild_id: t.characters.get(&signer.guid).and_then(|c| c.guild_id),
                ..signer.clone()
            };
            let verdict =
                rules::judge_sign(&petition, &signatures, signer, owner_race, invited, rules);
            if let SignVerdict::Record(_) = verdict {
                t.signatures.push(SignatureRow {
                    petition_id: petition.petition_id,
                    petition_guid: petition.petition_guid,
                    signature: Signature {
                        player_guid: signer.guid,
                        account: signer.account,
                    },
                });
            }
            (petition, verdict)
        });
        drop(t);
        async move { Ok(outcome) }
    }
}
