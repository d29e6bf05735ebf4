//! What a worldserver holds in memory: loaded once at start-up, then changed only by
//! its own handlers (and, with the module, right before a turn-in).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::db::{CharacterRow, Loaded, PetitionRow};

/// `PetitionMgr`, `GuildMgr` and the character cache of one worldserver process.
#[derive(Debug, Default)]
pub struct Memory {
    /// `PetitionStore`, by charter item.
    pub petitions: HashMap<u32, PetitionRow>,
    /// `SignatureStore`, by charter item: player -> account.
    pub signatures: HashMap<u32, BTreeMap<u32, u32>>,
    /// `PetitionIdToItemGuid`: filled by `LoadPetitions` only (`AddPetition` does not,
    /// `PetitionMgr.cpp`), so `GeneratePetitionId` skips loaded ids only.
    pub id_to_item: HashMap<u32, u32>,
    /// `_nextPetitionId`, seeded with `MAX(petition_id) + 1` at start-up.
    pub next_petition_id: u32,
    /// `GuildStore`: id -> name.
    pub guilds: HashMap<u32, String>,
    /// `NextGuildId`, seeded with `MAX(guildid) + 1` (`ObjectMgr.cpp:7736`).
    pub next_guild_id: u32,
    /// The character cache, guild ids as loaded.
    pub cache: HashMap<u32, CharacterRow>,
    /// Charter items each player carries. A guess of the model: at start-up every
    /// owner carries the charters it owns (AzerothCore loads items from
    /// `character_inventory`, which the model does not have).
    pub items: HashMap<u32, BTreeSet<u32>>,
    /// The next item guid this process hands out.
    pub next_item: u32,
}

impl Memory {
    /// The memory of a worldserver that started over `loaded`.
    pub fn load(loaded: Loaded, first_item: u32) -> Memory {
        let mut memory = Memory {
            next_guild_id: loaded.max_guild_id + 1,
            next_item: first_item,
            ..Memory::default()
        };
        let mut max_id = 0;
        for petition in loaded.petitions {
            max_id = max_id.max(petition.id);
            memory.id_to_item.insert(petition.id, petition.item);
            memory
                .items
                .entry(petition.owner)
                .or_default()
                .insert(petition.item);
            memory.signatures.insert(petition.item, BTreeMap::new());
            memory.petitions.insert(petition.item, petition);
        }
        // PetitionMgr::LoadPetitions: `_nextPetitionId = max(maxId + 1, 1)`.
        memory.next_petition_id = max_id + 1;
        // LoadSignatures: by petition_id through the loaded map; orphans skipped.
        for (petition_id, player, account) in loaded.signatures {
            if let Some(item) = memory.id_to_item.get(&petition_id) {
                memory
                    .signatures
                    .entry(*item)
                    .or_default()
                    .insert(player, account);
            }
        }
        memory.guilds = loaded.guilds.into_iter().collect();
        memory.cache = loaded.characters.into_iter().map(|c| (c.guid, c)).collect();
        memory
    }

    /// `PetitionMgr::GeneratePetitionId`: the next free id of this process.
    pub fn generate_petition_id(&mut self) -> u32 {
        if self.next_petition_id == 0 || self.next_petition_id >= 0x7FFF_FFFF {
            self.next_petition_id = 1;
        }
        while self.id_to_item.contains_key(&self.next_petition_id) {
            self.next_petition_id += 1;
            if self.next_petition_id >= 0x7FFF_FFFF {
                self.next_petition_id = 1;
            }
        }
        let id = self.next_petition_id;
        self.next_petition_id += 1;
        id
    }

    /// `PetitionMgr::AddPetition`: also clears the petition's signatures.
    pub fn add_petition(&mut self, row: PetitionRow) {
        self.signatures.insert(row.item, BTreeMap::new());
        self.petitions.insert(row.item, row);
    }

    /// `PetitionMgr::RemovePetition`.
    pub fn remove_petition(&mut self, item: u32) {
        if let Some(petition) = self.petitions.remove(&item) {
            self.id_to_item.remove(&petition.id);
        }
        self.signatures.remove(&item);
    }

    /// `GuildMgr::GetGuildByName`.
    pub fn guild_named(&self, name: &str) -> bool {
        self.guilds.values().any(|n| n == name)
    }
}
