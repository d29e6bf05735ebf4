//! What the charter resolver needs from its surroundings, as two traits: the realm's
//! characters database ([`CharterStore`]) and the sidecars' shared directory and outbox
//! ([`Directory`]). MySQL/PostgreSQL implement them for production
//! ([`Db`](crate::store::Db), [`Bus`](crate::bus::Bus)); [`memory`](crate::memory)
//! implements them in-process for the demo, replay and single-worldserver realms.

use std::future::Future;
use std::time::Duration;

use crate::bus::{Bus, BusError, Event, Listener};
use crate::resolver::{Guild, Petition, Player, Rules, SignVerdict, Signature};
use crate::store::{Character, Db, StoreError};

/// The characters database of a realm.
pub trait CharterStore: Send + Sync + 'static {
    /// The character `guid` with its guild.
    fn character(
        &self,
        guid: u32,
    ) -> impl Future<Output = Result<Option<Character>, StoreError>> + Send;
    /// The petition of the charter item with low guid `petition_guid`.
    fn petition(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Option<Petition>, StoreError>> + Send;
    /// The petition's signatures, by player guid.
    fn signatures(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Vec<Signature>, StoreError>> + Send;
    /// The guild `guild_id` with its ranks.
    fn guild(
        &self,
        guild_id: u32,
    ) -> impl Future<Output = Result<Option<Guild>, StoreError>> + Send;
    /// Judges and, when the rules allow, records a signature atomically.
    fn sign(
        &self,
        petition_guid: u32,
        signer: &Player,
        invited: bool,
        rules: &Rules,
    ) -> impl Future<Output = Result<Option<(Petition, SignVerdict)>, StoreError>> + Send;
}

/// The directory and outbox shared by a realm's sidecars, seen from one sidecar.
pub trait Directory: Clone + Send + Sync + 'static {
    /// Refreshes this sidecar's presence and its characters'.
    fn heartbeat(&self) -> impl Future<Output = Result<(), BusError>> + Send;
    /// Records that `character` plays behind this sidecar.
    fn set_online(&self, character: u32) -> impl Future<Output = Result<(), BusError>> + Send;
    /// Records that `character` left this sidecar.
    fn set_offline(&self, character: u32) -> impl Future<Output = Result<(), BusError>> + Send;
    /// The sidecar `character` plays behind, if fresh.
    fn locate(
        &self,
        character: u32,
    ) -> impl Future<Output = Result<Option<String>, BusError>> + Send;
    /// Every live sidecar.
    fn live_sidecars(&self) -> impl Future<Output = Result<Vec<String>, BusError>> + Send;
    /// Adds an event for `target` and wakes it.
    fn publish(
        &self,
        target: &str,
        character: Option<u32>,
        kind: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<i64, BusError>> + Send;
    /// Undelivered events for this sidecar that can be applied now.
    fn pending(
        &self,
        characters: &[u32],
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Event>, BusError>> + Send;
    /// Marks an event delivered.
    fn mark_delivered(&self, id: i64) -> impl Future<Output = Result<bool, BusError>> + Send;
    /// Deletes this sidecar's events older than `age`; how many were never delivered.
    fn expire(&self, age: Duration) -> impl Future<Output = Result<u64, BusError>> + Send;
    /// Undelivered events and the age of the oldest.
    fn backlog(&self) -> impl Future<Output = Result<(i64, f64), BusError>> + Send;
    /// Wake-ups when events arrive.
    fn listen(&self) -> impl Future<Output = Result<Listener, BusError>> + Send;
}

impl CharterStore for Db {
    fn character(
        &self,
        guid: u32,
    ) -> impl Future<Output = Result<Option<Character>, StoreError>> + Send {
        Db::character(self, guid)
    }
    fn petition(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Option<Petition>, StoreError>> + Send {
        Db::petition(self, petition_guid)
    }
    fn signatures(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Vec<Signature>, StoreError>> + Send {
        Db::signatures(self, petition_guid)
    }
    fn guild(
        &self,
        guild_id: u32,
    ) -> impl Future<Output = Result<Option<Guild>, StoreError>> + Send {
        Db::guild(self, guild_id)
    }
    fn sign(
        &self,
        petition_guid: u32,
        signer: &Player,
        invited: bool,
        rules: &Rules,
    ) -> impl Future<Output = Result<Option<(Petition, SignVerdict)>, StoreError>> + Send {
        Db::sign(self, petition_guid, signer, invited, rules)
    }
}

impl Directory for Bus {
    fn heartbeat(&self) -> impl Future<Output = Result<(), BusError>> + Send {
        Bus::heartbeat(self)
    }
    fn set_online(&self, character: u32) -> impl Future<Output = Result<(), BusError>> + Send {
        Bus::set_online(self, character)
    }
    fn set_offline(&self, character: u32) -> impl Future<Output = Result<(), BusError>> + Send {
        Bus::set_offline(self, character)
    }
    fn locate(
        &self,
        character: u32,
    ) -> impl Future<Output = Result<Option<String>, BusError>> + Send {
        Bus::locate(self, character)
    }
    fn live_sidecars(&self) -> impl Future<Output = Result<Vec<String>, BusError>> + Send {
        Bus::live_sidecars(self)
    }
    fn publish(
        &self,
        target: &str,
        character: Option<u32>,
        kind: &str,
        payload: &[u8],
    ) -> impl Future<Output = Result<i64, BusError>> + Send {
        Bus::publish(self, target, character, kind, payload)
    }
    fn pending(
        &self,
        characters: &[u32],
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Event>, BusError>> + Send {
        Bus::pending(self, characters, limit)
    }
    fn mark_delivered(&self, id: i64) -> impl Future<Output = Result<bool, BusError>> + Send {
        Bus::mark_delivered(self, id)
    }
    fn expire(&self, age: Duration) -> impl Future<Output = Result<u64, BusError>> + Send {
        Bus::expire(self, age)
    }
    fn backlog(&self) -> impl Future<Output = Result<(i64, f64), BusError>> + Send {
        Bus::backlog(self)
    }
    fn listen(&self) -> impl Future<Output = Result<Listener, BusError>> + Send {
        Bus::listen(self)
    }
}
