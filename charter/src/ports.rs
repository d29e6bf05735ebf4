//! What the charter needs from its surroundings, in its own types: the realm's
//! characters database ([`CharterStore`]) and the sidecars' shared directory and
//! outbox ([`Directory`]). The sidecar's backends (MySQL, PostgreSQL, in-memory)
//! implement them; nothing here names a database crate.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

pub use crate::deliverer::Deliverer;
use crate::rules::{CharterKey, Guild, Petition, Player, Rules, SignVerdict, Signature};

/// A backend call failed; the charter fails open for the packet at hand.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The characters database failed.
    #[error("database: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The directory and outbox failed.
    #[error("bus: {0}")]
    Bus(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BackendError {
    /// A characters-database failure.
    pub fn store(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        BackendError::Store(error.into())
    }

    /// A directory or outbox failure.
    pub fn bus(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        BackendError::Bus(error.into())
    }
}

/// The characters database of a realm.
pub trait CharterStore: Send + Sync + 'static {
    /// The character `guid` with its guild.
    fn character(
        &self,
        guid: u32,
    ) -> impl Future<Output = Result<Option<Player>, BackendError>> + Send;
    /// The petition of the charter item with low guid `petition_guid`.
    fn petition(
        &self,
        petition_guid: u32,
    ) -> impl Future<Output = Result<Option<Petition>, BackendError>> + Send;
    /// The signatures of the petition `petition_id`, by player guid: every
    /// `petition_sign` row with that id, the worldserver's own (written with
    /// `petitionguid` 0) included, as AzerothCore relates them.
    fn signatures(
        &self,
        petition_id: u32,
    ) -> impl Future<Output = Result<Vec<Signature>, BackendError>> + Send;
    /// The guild `guild_id` with its ranks.
    fn guild(
        &self,
        guild_id: u32,
    ) -> impl Future<Output = Result<Option<Guild>, BackendError>> + Send;
    /// The guild charter `owner` holds, if any (one per owner and type).
    fn charter_of(
        &self,
        owner: u32,
    ) -> impl Future<Output = Result<Option<Petition>, BackendError>> + Send;
    /// Whether a guild called `name` exists on any worldserver of the realm.
    fn guild_named(&self, name: &str) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Judges and, when the rules allow, records a signature on the guild charter
    /// `charter` atomically; `None` when no guild charter of that item and owner
    /// exists. The owner's notice
    /// ([`owner_notice`](crate::owner_notice)) is recorded in the same transaction as
    /// the signature, so a committed signature always has its notice, claimed for
    /// `deliverer` when that is known by then.
    fn sign(
        &self,
        charter: CharterKey,
        signer: &Player,
        invited: bool,
        rules: &Rules,
        deliverer: &Deliverer,
    ) -> impl Future<Output = Result<Option<Signed>, BackendError>> + Send;
    /// The guild called `name`: its id and its members with their names, if it
    /// exists.
    fn guild_roster(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Roster>, BackendError>> + Send;
    /// Records a notice for `character`; its id.
    fn post(
        &self,
        character: u32,
        payload: &[u8],
    ) -> impl Future<Output = Result<i64, BackendError>> + Send;
    /// Claims, for `claimer` and for `hold`, the undelivered notices of `characters`
    /// that nobody holds, oldest first.
    fn claim(
        &self,
        characters: &[u32],
        claimer: &str,
        hold: Duration,
    ) -> impl Future<Output = Result<Vec<Notice>, BackendError>> + Send;
    /// Claims the one notice `id` for `claimer` and for `hold`, as [`claim`](Self::claim)
    /// would: whether it is now `claimer`'s to deliver.
    fn claim_one(
        &self,
        id: i64,
        claimer: &str,
        hold: Duration,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Ends `claimer`'s claim on notice `id` with `outcome`.
    fn settle(
        &self,
        id: i64,
        claimer: &str,
        outcome: Settle,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Gives back every claim `claimer` holds (it starts afresh).
    fn release_all(&self, claimer: &str) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Deletes notices older than `age`; how many of them were never delivered.
    fn expire_notices(
        &self,
        age: Duration,
    ) -> impl Future<Output = Result<u64, BackendError>> + Send;
    /// Undelivered notices (not set aside): for `characters`, and realm-wide.
    fn notice_backlog(
        &self,
        characters: &[u32],
    ) -> impl Future<Output = Result<NoticeBacklog, BackendError>> + Send;
}

/// Server frames for one character, kept in the characters database until a session
/// of that character has them on its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Unique, increasing id.
    pub id: i64,
    /// The character it is for.
    pub character: u32,
    /// Concatenated plain server frames ([`encode_frames`](crate::encode_frames)).
    pub payload: Vec<u8>,
}

/// A judged signature: the petition, the verdict, and the owner's notice when one
/// was recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    /// The petition signed.
    pub petition: Petition,
    /// The rules' verdict.
    pub verdict: SignVerdict,
    /// The owner's notice, committed with the verdict.
    pub notice: Option<Notice>,
    /// The sidecar the notice was claimed for when it was recorded (the
    /// [`Deliverer`] known then), if any.
    pub held_for: Option<String>,
}

/// How a claim on a notice ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Written to the character's socket: never delivered again.
    Delivered,
    /// Not delivered now: free for the next claim, here or elsewhere.
    Released,
    /// Cannot be delivered (named why): kept, never offered again.
    SetAside(String),
}

/// Undelivered notices, as the backlog gauges show them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NoticeBacklog {
    /// For characters in the world behind this sidecar.
    pub here: i64,
    /// Age in seconds of the oldest of those.
    pub here_oldest: f64,
    /// The characters those are for, each once.
    pub waiting_here: Vec<u32>,
    /// Realm-wide, owners offline included.
    pub realm: i64,
    /// Set aside realm-wide.
    pub set_aside: i64,
}

/// A guild's id and its members with their names.
pub type Roster = (u32, Vec<(u32, String)>);

/// A guild made from a charter, as the rest of a ToCloud9 realm hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildCreated {
    /// `guild.guildid`.
    pub guild_id: u32,
    /// `guild.name`.
    pub name: String,
    /// The charter's owner, the guild master.
    pub leader: u32,
    /// Every member (leader first) with their name.
    pub members: Vec<(u32, String)>,
    /// The members in the world anywhere in the realm.
    pub online: Vec<u32>,
}

/// Where guild creations are announced (ToCloud9's NATS); failures fail open.
pub trait Announcer: Send + Sync + 'static {
    /// Announces `guild`.
    fn guild_created<'a>(
        &'a self,
        guild: &'a GuildCreated,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + 'a>>;
}

/// What an outbox event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Server frames for one character.
    Packets,
    /// A guild was created or changed somewhere: drop cached guild answers.
    GuildChanged,
    /// A kind this sidecar does not know (a newer sidecar wrote it).
    Other(String),
}

impl EventKind {
    /// The kinds this sidecar writes.
    pub const KNOWN: [EventKind; 2] = [EventKind::Packets, EventKind::GuildChanged];

    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Packets => "packets",
            EventKind::GuildChanged => "guild_changed",
            EventKind::Other(name) => name,
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> EventKind {
        match name {
            "packets" => EventKind::Packets,
            "guild_changed" => EventKind::GuildChanged,
            other => EventKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outbox event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique, increasing id.
    pub id: i64,
    /// The character the event is for, if any.
    pub character: Option<u32>,
    /// What the event is.
    pub kind: EventKind,
    /// Kind-specific bytes.
    pub payload: Vec<u8>,
}

/// What a wake-up of this sidecar asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// Notices wait for `character`; `ready` is one of them, when the wake-up
    /// carries it.
    Notice {
        /// The character.
        character: u32,
        /// A notice to claim by its id and deliver.
        ready: Option<Notice>,
        /// `ready` was claimed for this sidecar when it was recorded: it is written
        /// without a claim.
        held: bool,
    },
    /// Bus events wait.
    Events,
}

/// Wake-ups for this sidecar.
pub struct Listener {
    /// Whatever keeps the wake-ups coming (a live connection); dropped with this.
    _source: Option<Box<dyn Any + Send>>,
    woken: mpsc::Receiver<Wakeup>,
}

impl Listener {
    /// Wake-ups arriving on `woken`, kept alive by `source`.
    pub fn new(woken: mpsc::Receiver<Wakeup>, source: Option<Box<dyn Any + Send>>) -> Listener {
        Listener {
            _source: source,
            woken,
        }
    }

    /// Waits for a wake-up; `None` once the source is lost.
    pub async fn notified(&mut self) -> Option<Wakeup> {
        self.woken.recv().await
    }
}

/// The directory and outbox shared by a realm's sidecars, seen from one sidecar.
pub trait Directory: Clone + Send + Sync + 'static {
    /// Refreshes this sidecar's presence and its characters'.
    fn heartbeat(&self) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Records that `character` plays behind this sidecar.
    fn set_online(&self, character: u32) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Records that `character` left this sidecar.
    fn set_offline(&self, character: u32) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// The sidecar `character` plays behind, if fresh.
    fn locate(
        &self,
        character: u32,
    ) -> impl Future<Output = Result<Option<String>, BackendError>> + Send;
    /// Every live sidecar.
    fn live_sidecars(&self) -> impl Future<Output = Result<Vec<String>, BackendError>> + Send;
    /// Adds an event for `target` and wakes it; returns its id.
    fn publish(
        &self,
        target: &str,
        character: Option<u32>,
        kind: &EventKind,
        payload: &[u8],
    ) -> impl Future<Output = Result<i64, BackendError>> + Send;
    /// Undelivered events for this sidecar that can be applied now.
    fn pending(
        &self,
        characters: &[u32],
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Event>, BackendError>> + Send;
    /// Marks an event delivered.
    fn mark_delivered(&self, id: i64) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Deletes this sidecar's events older than `age`; how many were never delivered.
    fn expire(&self, age: Duration) -> impl Future<Output = Result<u64, BackendError>> + Send;
    /// Undelivered events and the age of the oldest.
    fn backlog(&self) -> impl Future<Output = Result<(i64, f64), BackendError>> + Send;
    /// Wakes `sidecar`: a notice for `character` is waiting; `ready`, when given, is
    /// that notice, carried along so that sidecar claims it by id and need not read
    /// it, or, when `held`, writes it at once: it was claimed for that sidecar when
    /// it was recorded.
    fn wake(
        &self,
        sidecar: &str,
        character: u32,
        ready: Option<&Notice>,
        held: bool,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Makes `characters` exactly the set playing behind this sidecar (after the
    /// bus was lost, or a publish failed): others placed here are removed. The
    /// caller applies no presence update meanwhile.
    fn announce(&self, characters: &[u32])
        -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Wake-ups when events arrive.
    fn listen(&self) -> impl Future<Output = Result<Listener, BackendError>> + Send;
    /// Takes the realm's guild-creation lease for `holder` for `ttl`, if nobody holds
    /// it (an expired lease is free); whether it was taken.
    fn take_turn_in_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Gives the lease back, if `holder` still holds it.
    fn release_turn_in_lease(
        &self,
        holder: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}
