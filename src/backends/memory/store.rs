//! An in-memory characters database.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tc9_charter::rules::{
    self, CharterKey, Guild, Petition, Player, Rules, SignVerdict, Signature,
};
use tc9_charter::{
    BackendError, CharterStore, Deliverer, Notice, NoticeBacklog, Roster, Settle, Signed, HELD_HOLD,
};

use super::{lock, SignatureRow, Tables, World};

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

    /// Every notice recorded, oldest first, with whether it was delivered.
    pub fn notices(&self) -> Vec<(Notice, bool)> {
        lock(&self.tables)
            .notices
            .iter()
            .map(|row| (row.notice.clone(), row.delivered))
            .collect()
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
        charter: CharterKey,
        signer: &Player,
        invited: bool,
        rules: &Rules,
        deliverer: &Deliverer,
    ) -> impl Future<Output = Result<Option<Signed>, BackendError>> + Send {
        // One lock around read, judge and insert: the same atomicity as the MySQL
        // transaction's row lock.
        let mut t = lock(&self.tables);
        let found = t.petitions.get(&charter.petition_guid).cloned();
        let still = found.filter(|p| p.owner_guid == charter.owner_guid && p.is_guild_charter());
        let outcome = still.map(|petition| {
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
            let held_for = deliverer.known();
            let notice = tc9_charter::owner_notice(&petition, &verdict).map(|(owner, payload)| {
                let id = t.post(owner, payload.clone());
                if let (Some(by), Some(row)) = (&held_for, t.notices.last_mut()) {
                    row.claim = Some((by.clone(), Instant::now() + HELD_HOLD));
                }
                Notice {
                    id,
                    character: owner,
                    payload,
                }
            });
            Signed {
                held_for: notice.as_ref().and(held_for),
                petition,
                verdict,
                notice,
            }
        });
        drop(t);
        async move { Ok(outcome) }
    }

    fn guild_roster(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Roster>, BackendError>> + Send {
        let t = lock(&self.tables);
        let roster = t.guilds.values().find(|g| g.name == name).map(|g| {
            let mut members: Vec<(u32, String)> = t
                .characters
                .values()
                .filter(|c| c.guild_id == Some(g.id))
                .map(|c| (c.guid, c.name.clone()))
                .collect();
            members.sort();
            (g.id, members)
        });
        drop(t);
        async move { Ok(roster) }
    }

    fn post(
        &self,
        character: u32,
        payload: &[u8],
    ) -> impl Future<Output = Result<i64, BackendError>> + Send {
        let id = lock(&self.tables).post(character, payload.to_vec());
        async move { Ok(id) }
    }

    fn claim(
        &self,
        characters: &[u32],
        claimer: &str,
        hold: Duration,
    ) -> impl Future<Output = Result<Vec<Notice>, BackendError>> + Send {
        let now = Instant::now();
        let claimed: Vec<Notice> = lock(&self.tables)
            .notices
            .iter_mut()
            .filter(|row| row.waiting() && characters.contains(&row.notice.character))
            .filter(|row| {
                row.claim
                    .as_ref()
                    .is_none_or(|(by, until)| *until < now || by == claimer)
            })
            .map(|row| {
                row.claim = Some((claimer.to_owned(), now + hold));
                row.notice.clone()
            })
            .collect();
        async move { Ok(claimed) }
    }

    fn claim_one(
        &self,
        id: i64,
        claimer: &str,
        hold: Duration,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send {
        let now = Instant::now();
        let claimed = lock(&self.tables)
            .notices
            .iter_mut()
            .filter(|row| row.notice.id == id && row.waiting())
            .find(|row| {
                row.claim
                    .as_ref()
                    .is_none_or(|(by, until)| *until < now || by == claimer)
            })
            .map(|row| row.claim = Some((claimer.to_owned(), now + hold)))
            .is_some();
        async move { Ok(claimed) }
    }

    fn settle(
        &self,
        id: i64,
        claimer: &str,
        outcome: Settle,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let mut t = lock(&self.tables);
        if let Some(row) = t.notices.iter_mut().find(|row| row.notice.id == id) {
            let ours = row.claim.as_ref().is_some_and(|(by, _)| by == claimer);
            match outcome {
                Settle::Delivered if ours && !row.delivered => row.delivered = true,
                Settle::Released if ours => row.claim = None,
                Settle::SetAside(why) => row.set_aside = Some(why),
                _ => {}
            }
        }
        drop(t);
        async move { Ok(()) }
    }

    fn release_all(&self, claimer: &str) -> impl Future<Output = Result<(), BackendError>> + Send {
        for row in lock(&self.tables).notices.iter_mut() {
            if row.claim.as_ref().is_some_and(|(by, _)| by == claimer) {
                row.claim = None;
            }
        }
        async move { Ok(()) }
    }

    fn expire_notices(
        &self,
        age: Duration,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send {
        let mut given_up = 0;
        lock(&self.tables).notices.retain(|row| {
            let expired = row.created.elapsed() > age;
            if expired && row.waiting() {
                given_up += 1;
            }
            !expired
        });
        async move { Ok(given_up) }
    }

    fn notice_backlog(
        &self,
        characters: &[u32],
    ) -> impl Future<Output = Result<NoticeBacklog, BackendError>> + Send {
        let mut backlog = NoticeBacklog::default();
        for row in &lock(&self.tables).notices {
            if row.delivered {
                continue;
            }
            if row.set_aside.is_some() {
                backlog.set_aside += 1;
                continue;
            }
            backlog.realm += 1;
            if characters.contains(&row.notice.character) {
                if !backlog.waiting_here.contains(&row.notice.character) {
                    backlog.waiting_here.push(row.notice.character);
                }
                backlog.here += 1;
                backlog.here_oldest = backlog.here_oldest.max(row.created.elapsed().as_secs_f64());
            }
        }
        async move { Ok(backlog) }
    }
}
