//! In-process backends: a characters "database" ([`MemoryStore`]) and a directory and
//! outbox shared by the sidecars of one process ([`MemoryRealm`] / [`MemoryBus`]).
//!
//! They implement the same traits as MySQL and PostgreSQL, with the same rules (the
//! signing verdict comes from [`resolver::judge_sign`] under one lock), so the demo,
//! replays and a single-worldserver realm run without any database. A store can be
//! seeded from a TOML world file:
//!
//! ```toml
//! [[character]]
//! guid = 1
//! account = 1
//! name = "Owner"
//! race = 1          # class and level default to 1 and 80
//! guild = 8         # optional
//!
//! [[petition]]
//! guid = 500        # the charter item's low guid
//! id = 500          # petition_id (defaults to guid)
//! owner = 1
//! name = "Crossrealm"
//! type = 9          # defaults to 9, a guild charter
//!
//! [[signature]]
//! petition = 500
//! player = 7
//! account = 7
//!
//! [[guild]]
//! id = 8
//! name = "Knights"
//! emblem = [1, 2, 3, 4, 5]
//! ranks = ["Master", "Officer", "Veteran", "Member", "Initiate"]
//!
//! [[online]]        # characters behind other sidecars (replays)
//! character = 2
//! sidecar = "B"
//! ```

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;

use crate::backend::{CharterStore, Directory};
use crate::bus::{BusError, Event, Listener};
use crate::resolver::{self, Guild, Petition, Player, Rules, SignVerdict, Signature};
use crate::store::{Character, StoreError};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A character of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCharacter {
    /// `characters.guid`.
    pub guid: u32,
    /// `characters.account`.
    pub account: u32,
    /// `characters.name`.
    pub name: String,
    /// `characters.race`.
    pub race: u8,
    /// `characters.class`.
    #[serde(default = "one")]
    pub class: u8,
    /// `characters.level`.
    #[serde(default = "eighty")]
    pub level: u8,
    /// The guild, if in one.
    #[serde(default)]
    pub guild: Option<u32>,
}

fn one() -> u8 {
    1
}

fn eighty() -> u8 {
    80
}

fn guild_charter() -> u8 {
    tc9_codec::messages::petition::GUILD_CHARTER_TYPE
}

/// A petition of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPetition {
    /// `petitionguid`.
    pub guid: u32,
    /// `petition_id`; the guid when absent.
    #[serde(default)]
    pub id: Option<u32>,
    /// `ownerguid`.
    pub owner: u32,
    /// `name`.
    pub name: String,
    /// `type`.
    #[serde(rename = "type", default = "guild_charter")]
    pub kind: u8,
}

/// A signature of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSignature {
    /// `petitionguid`.
    pub petition: u32,
    /// `playerguid`.
    pub player: u32,
    /// `player_account`.
    pub account: u32,
}

/// A guild of a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedGuild {
    /// `guildid`.
    pub id: u32,
    /// `name`.
    pub name: String,
    /// The five emblem columns.
    #[serde(default)]
    pub emblem: [u8; 5],
    /// Rank names by rank id.
    #[serde(default)]
    pub ranks: Vec<String>,
}

/// A character behind another sidecar, in a world file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOnline {
    /// The character.
    pub character: u32,
    /// The sidecar it plays behind.
    pub sidecar: String,
}

/// The contents of a world file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Characters.
    #[serde(default)]
    pub character: Vec<SeedCharacter>,
    /// Petitions.
    #[serde(default)]
    pub petition: Vec<SeedPetition>,
    /// Signatures.
    #[serde(default)]
    pub signature: Vec<SeedSignature>,
    /// Guilds.
    #[serde(default)]
    pub guild: Vec<SeedGuild>,
    /// Presence behind other sidecars.
    #[serde(default)]
    pub online: Vec<SeedOnline>,
}

impl World {
    /// Reads a world file.
    pub fn from_file(path: &Path) -> Result<World, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[derive(Debug, Default)]
struct Tables {
    characters: HashMap<u32, Character>,
    petitions: HashMap<u32, Petition>,
    /// `(petition guid, signature)` rows.
    signatures: Vec<(u32, Signature)>,
    guilds: HashMap<u32, Guild>,
}

impl Tables {
    fn signatures_of(&self, petition_guid: u32) -> Vec<Signature> {
        let mut rows: Vec<Signature> = self
            .signatures
            .iter()
            .filter(|(p, _)| *p == petition_guid)
            .map(|(_, s)| *s)
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
                Character {
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
            t.signatures.push((
                s.petition,
                Signature {
                    player_guid: s.player,
                    account: s.account,
                },
            ));
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

    /// The signatures recorded for a petition.
    pub fn signatures_now(&self, petition_guid: u32) -> Vec<Signature> {
        lock(&self.tables).signatures_of(petition_guid)
    }
}

impl CharterStore for MemoryStore {
    fn character(
        &self,
        guid: u32,
    ) -> impl Future<Output = Result<Option<Character>, StoreError>> + Send {
        let found = lock(&self.tables).characters.get(&guid).cloned();
        async move { Ok(found) }
    }

    fn petition(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Option<Petition>, StoreError>> + Send {
        let found = lock(&self.tables).petitions.get(&petition_guid).cloned();
        async move { Ok(found) }
    }

    fn signatures(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Vec<Signature>, StoreError>> + Send {
        let rows = lock(&self.tables).signatures_of(petition_guid);
        async move { Ok(rows) }
    }

    fn guild(
        &self,
        guild_id: u32,
    ) -> impl Future<Output = Result<Option<Guild>, StoreError>> + Send {
        let found = lock(&self.tables).guilds.get(&guild_id).cloned();
        async move { Ok(found) }
    }

    fn sign(
        &self,
        petition_guid: u32,
        signer: &Player,
        invited: bool,
        rules: &Rules,
    ) -> impl Future<Output = Result<Option<(Petition, SignVerdict)>, StoreError>> + Send {
        // One lock around read, judge and insert: the same atomicity as the MySQL
        // transaction's row lock.
        let mut t = lock(&self.tables);
        let outcome = t.petitions.get(&petition_guid).cloned().map(|petition| {
            let signatures = t.signatures_of(petition_guid);
            let owner_race = t.characters.get(&petition.owner_guid).map_or(0, |c| c.race);
            let verdict =
                resolver::judge_sign(&petition, &signatures, signer, owner_race, invited, rules);
            if let SignVerdict::Record(_) = verdict {
                t.signatures.push((
                    petition_guid,
                    Signature {
                        player_guid: signer.guid,
                        account: signer.account,
                    },
                ));
            }
            (petition, verdict)
        });
        drop(t);
        async move { Ok(outcome) }
    }
}

#[derive(Debug)]
struct Stored {
    event: Event,
    target: String,
    created: Instant,
    delivered: bool,
}

#[derive(Debug, Default)]
struct Hub {
    online: HashMap<u32, String>,
    sidecars: BTreeSet<String>,
    outbox: Vec<Stored>,
    next_id: i64,
    wakers: HashMap<String, Vec<mpsc::Sender<()>>>,
}

/// The directory and outbox of the sidecars of one process.
#[derive(Debug, Clone, Default)]
pub struct MemoryRealm {
    hub: Arc<Mutex<Hub>>,
}

impl MemoryRealm {
    /// A new, empty realm.
    pub fn new() -> MemoryRealm {
        MemoryRealm::default()
    }

    /// The realm as seen by `sidecar`, which joins it.
    pub fn join(&self, sidecar: &str) -> MemoryBus {
        lock(&self.hub).sidecars.insert(sidecar.to_owned());
        MemoryBus {
            hub: Arc::clone(&self.hub),
            sidecar: sidecar.to_owned(),
        }
    }

    /// Records characters behind sidecars of a world file.
    pub fn load(&self, world: &World) {
        let mut hub = lock(&self.hub);
        for o in &world.online {
            hub.sidecars.insert(o.sidecar.clone());
            hub.online.insert(o.character, o.sidecar.clone());
        }
    }

    /// Every event ever published, in order: `(target sidecar, event, delivered)`.
    pub fn events(&self) -> Vec<(String, Event, bool)> {
        lock(&self.hub)
            .outbox
            .iter()
            .map(|s| (s.target.clone(), s.event.clone(), s.delivered))
            .collect()
    }
}

/// One sidecar's handle on a [`MemoryRealm`].
#[derive(Debug, Clone)]
pub struct MemoryBus {
    hub: Arc<Mutex<Hub>>,
    sidecar: String,
}

impl MemoryBus {
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Hub) -> T,
    ) -> impl Future<Output = Result<T, BusError>> + Send {
        let value = f(&mut lock(&self.hub));
        async move { Ok(value) }
    }
}

impl Directory for MemoryBus {
    fn heartbeat(&self) -> impl Future<Output = Result<(), BusError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            hub.sidecars.insert(me);
        })
    }

    fn set_online(&self, character: u32) -> impl Future<Output = Result<(), BusError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            hub.online.insert(character, me);
        })
    }

    fn set_offline(&self, character: u32) -> impl Future<Output = Result<(), BusError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            if hub.online.get(&character) == Some(&me) {
                hub.online.remove(&character);
            }
        })
    }

    fn locate(
        &self,
        character: u32,
    ) -> impl Future<Output = Result<Option<String>, BusError>> + Send {
        self.with(move |hub| hub.online.get(&character).cloned())
    }

    fn live_sidecars(&self) -> impl Future<Output = Result<Vec<String>, BusError>> + Send {
        self.with(|hub| hub.sidecars.iter().cloned().collect())
    }

    fn publish(
        &self,
        target: &str,
        character: Option<u32>,
        kind: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<i64, BusError>> + Send {
        let (target, kind, payload) = (target.to_owned(), kind.to_owned(), payload.to_vec());
        self.with(move |hub| {
            hub.next_id += 1;
            let id = hub.next_id;
            hub.outbox.push(Stored {
                event: Event {
                    id,
                    character,
                    kind,
                    payload,
                },
                target: target.clone(),
                created: Instant::now(),
                delivered: false,
            });
            if let Some(wakers) = hub.wakers.get_mut(&target) {
                wakers.retain(|w| !w.is_closed());
                for w in wakers.iter() {
                    let _ = w.try_send(());
                }
            }
            id
        })
    }

    fn pending(
        &self,
        characters: &[u32],
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Event>, BusError>> + Send {
        let me = self.sidecar.clone();
        let characters = characters.to_vec();
        self.with(move |hub| {
            hub.outbox
                .iter()
                .filter(|s| s.target == me && !s.delivered)
                .filter(|s| s.event.character.is_none_or(|c| characters.contains(&c)))
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|s| s.event.clone())
                .collect()
        })
    }

    fn mark_delivered(&self, id: i64) -> impl Future<Output = Result<bool, BusError>> + Send {
        self.with(
            move |hub| match hub.outbox.iter_mut().find(|s| s.event.id == id) {
                Some(s) if !s.delivered => {
                    s.delivered = true;
                    true
                }
                _ => false,
            },
        )
    }

    fn expire(&self, age: Duration) -> impl Future<Output = Result<u64, BusError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            let mut given_up = 0;
            hub.outbox.retain(|s| {
                let expired = s.target == me && s.created.elapsed() > age;
                if expired && !s.delivered {
                    given_up += 1;
                }
                !expired
            });
            given_up
        })
    }

    fn backlog(&self) -> impl Future<Output = Result<(i64, f64), BusError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            let waiting: Vec<&Stored> = hub
                .outbox
                .iter()
                .filter(|s| s.target == me && !s.delivered)
                .collect();
            let lag = waiting
                .iter()
                .map(|s| s.created.elapsed().as_secs_f64())
                .fold(0.0, f64::max);
            (waiting.len() as i64, lag)
        })
    }

    fn listen(&self) -> impl Future<Output = Result<Listener, BusError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            let (wake, woken) = mpsc::channel(1);
            hub.wakers.entry(me).or_default().push(wake);
            Listener::from_channel(woken)
        })
    }
}
