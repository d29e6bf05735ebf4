//! The charter as a proxy [`Handler`]: the watched opcodes go to their command in
//! [`cmd`](crate::cmd), under one time limit; whatever fails, fails open.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tc9_codec::{DecodeError, Frame, FrameError, Opcode, Origin};
use tc9_proxy::{Decision, Handler, SessionEvent};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{warn, Instrument};

use crate::guilds::GuildCache;
use crate::metrics as m;
use crate::ports::{BackendError, CharterStore, Directory, EventKind};
use crate::presence::{CharterSession, LocalSessions, Session};
use crate::rules::{Player, Rules};
pub(crate) use crate::whereabouts::{OwnerNotice, Whereabouts};
use crate::{cmd, outbox, upkeep};

/// Why a resolution failed open.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the session's character is not known yet")]
    NoIdentity,
    #[error("resolution took longer than {0:?}")]
    Timeout(Duration),
}

/// Knobs of the charter taken from the configuration.
#[derive(Debug, Clone)]
pub struct CharterSettings {
    /// This sidecar's id: who claims notices.
    pub sidecar_id: String,
    /// The realm's charter rules.
    pub rules: Rules,
    /// How often the outbox is polled besides NOTIFY wake-ups.
    pub poll: Duration,
    /// How often this sidecar's presence is refreshed.
    pub heartbeat: Duration,
    /// Undelivered events older than this are given up.
    pub event_ttl: Duration,
    /// How long one resolution may take before the packet fails open.
    pub timeout: Duration,
    /// The worldservers run `mod-tc9-sidecar`: their native turn-in counts the
    /// database's signatures. Without it, guild charters are signed natively.
    pub module: bool,
    /// How long the realm's guild-creation lease lasts when the worldserver never
    /// answers a turn-in.
    pub turn_in_lease: Duration,
    /// Per-session, per-second limits by opcode.
    pub limits: crate::limits::Limits,
}

/// Everything the commands share.
pub(crate) struct Core<S, D> {
    pub(crate) store: S,
    pub(crate) bus: Option<D>,
    pub(crate) settings: CharterSettings,
    pub(crate) local: LocalSessions,
    pub(crate) guilds: GuildCache,
    /// Characters whose notices are to be delivered now.
    pub(crate) due: std::sync::Mutex<HashSet<u32>>,
    /// Characters with a delivery under way.
    pub(crate) in_flight: std::sync::Mutex<HashSet<u32>>,
    /// Notice outcomes the store did not take yet, by notice id.
    pub(crate) unsettled: std::sync::Mutex<std::collections::HashMap<i64, crate::ports::Settle>>,
    /// Notices in hand (carried by a wake-up or recorded here), to deliver.
    pub(crate) ready: std::sync::Mutex<Vec<crate::outbox::InHand>>,
    /// The notices this process wrote last.
    pub(crate) written: std::sync::Mutex<crate::outbox::Written>,
    /// Wakes the notice consumer (a character is due).
    pub(crate) wake: Notify,
    /// Wakes the bus event consumer.
    pub(crate) events_due: Notify,
    /// Presence updates, applied in order by one task.
    pub(crate) presence: mpsc::UnboundedSender<Presence>,
    presence_queue: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Presence>>>,
    /// The bus answered the last heartbeat.
    pub(crate) bus_up: AtomicBool,
    /// A presence update failed: every local character is to be announced again.
    pub(crate) stale_presence: AtomicBool,
    /// Wakes the presence keeper (presence went stale).
    pub(crate) presence_dirty: Notify,
    /// Held by each presence write: an update never lands between a
    /// re-announcement's look at who is here and its replacing the bus's set.
    pub(crate) presence_writes: tokio::sync::Mutex<()>,
    /// The heartbeat and the outbox consumer.
    pub(crate) tasks: TaskTracker,
    /// The guild-creation lease of a sidecar without a bus.
    pub(crate) local_lease: crate::guilds::LocalLease,
    /// Where guild creations are announced, if anywhere.
    pub(crate) announcer: std::sync::OnceLock<Arc<dyn crate::ports::Announcer>>,
}

/// Resolves cross-worldserver charter work over a store `S` and a directory `D`.
pub struct CharterHandler<S, D> {
    core: Arc<Core<S, D>>,
}

impl<S, D> Clone for CharterHandler<S, D> {
    fn clone(&self) -> Self {
        CharterHandler {
            core: Arc::clone(&self.core),
        }
    }
}

impl<S: CharterStore, D: Directory> CharterHandler<S, D> {
    /// A resolver over the characters DB `store` and, for cross-sidecar work, `bus`.
    pub fn new(store: S, bus: Option<D>, settings: CharterSettings) -> Self {
        let (presence, presence_queue) = mpsc::unbounded_channel();
        CharterHandler {
            core: Arc::new(Core {
                store,
                bus,
                settings,
                local: LocalSessions::default(),
                guilds: GuildCache::default(),
                due: Default::default(),
                ready: Default::default(),
                written: Default::default(),
                in_flight: Default::default(),
                unsettled: Default::default(),
                wake: Notify::new(),
                events_due: Notify::new(),
                presence,
                presence_queue: std::sync::Mutex::new(Some(presence_queue)),
                bus_up: AtomicBool::new(true),
                // The first heartbeat announces whoever entered the world before it.
                stale_presence: AtomicBool::new(true),
                presence_dirty: Notify::new(),
                presence_writes: tokio::sync::Mutex::new(()),
                tasks: TaskTracker::new(),
                local_lease: Default::default(),
                announcer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Announces the guilds made from charters through `announcer` (once; later
    /// calls are ignored).
    pub fn announce_to(&self, announcer: Arc<dyn crate::ports::Announcer>) {
        let _ = self.core.announcer.set(announcer);
    }

    /// Waits until the background tasks started by [`Handler::start`] have ended
    /// (they end with the token given there).
    pub async fn stopped(&self) {
        self.core.tasks.close();
        self.core.tasks.wait().await;
    }
}

impl<S: CharterStore, D: Directory> Core<S, D> {
    /// The character playing behind `session`.
    pub(crate) async fn player(&self, session: &Session) -> Result<Player, Failure> {
        let guid = session
            .identity()
            .character_guid
            .ok_or(Failure::NoIdentity)?;
        if let Some(player) = session.state().player().filter(|p| p.guid == guid) {
            return Ok(player);
        }
        self.store.character(guid).await?.ok_or(Failure::NoIdentity)
    }

    /// Tells every live sidecar (this one included) that a guild was created or
    /// changed; at most once per [`GUILD_BROADCAST_GAP`](crate::guilds::GUILD_BROADCAST_GAP).
    pub(crate) async fn publish_guild_changed(&self, what: &str) -> Result<(), Failure> {
        self.guilds.clear();
        let Some(bus) = &self.bus else {
            return Ok(());
        };
        if !self.guilds.may_broadcast() {
            return Ok(());
        }
        for sidecar in bus.live_sidecars().await? {
            bus.publish(&sidecar, None, &EventKind::GuildChanged, what.as_bytes())
                .await?;
        }
        Ok(())
    }

    /// Loads the character that just entered the world behind `session`, off the
    /// frame path.
    fn look_up_player(self: &Arc<Self>, session: &Arc<Session>, guid: u32) {
        let core = Arc::clone(self);
        let session = Arc::clone(session);
        tokio::spawn(
            async move {
                match core.store.character(guid).await {
                    Ok(Some(player)) => {
                        if session.identity().character_guid == Some(guid) {
                            session.state().set_player(Some(player));
                        }
                    }
                    Ok(None) => warn!(guid, "logged-in character not found in the characters DB"),
                    Err(e) => warn!(guid, error = %e, "character lookup failed"),
                }
            }
            .in_current_span(),
        );
    }
}

impl<S: CharterStore, D: Directory> Handler for CharterHandler<S, D> {
    type Session = CharterSession;

    fn watched(&self) -> Vec<Opcode> {
        crate::watched().collect()
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        cmd::intercepts(origin, opcode)
    }

    async fn handle(&self, session: &Session, frame: &Frame) -> Decision {
        let core = &self.core;
        let kind = frame.opcode().name().unwrap_or("other");
        if frame.origin() == Origin::Client {
            if let Some(policy) = session
                .state()
                .counts
                .exceeded(&core.settings.limits, frame.opcode())
            {
                metrics::counter!(m::LIMITED_TOTAL, "opcode" => kind, "policy" => policy.label())
                    .increment(1);
                if session.state().counts.first_excess() {
                    warn!(
                        opcode = kind,
                        policy = policy.label(),
                        "a session went over its limit"
                    );
                }
                return match policy {
                    crate::limits::LimitPolicy::Kick => {
                        Decision::Close(format!("more {kind} per second than allowed"))
                    }
                    crate::limits::LimitPolicy::Drop => Decision::Drop,
                };
            }
        }
        let limit = core.settings.timeout;
        let mut tell_owner = None;
        let result = tokio::time::timeout(limit, cmd::run(core, session, frame, &mut tell_owner))
            .await
            .unwrap_or(Err(Failure::Timeout(limit)));
        // The owner's notice is committed with the signature; the signer's answer
        // never waits for the bus to hurry it along.
        if let Some(owner) = tell_owner {
            core.hurry(owner);
        }
        if let Ok(Decision::Answer(_) | Decision::Drop | Decision::Rewrite(_)) = &result {
            if frame.origin() == Origin::Client {
                session.state().counts.consumed(frame.opcode());
            }
        }
        result.unwrap_or_else(|e| {
            if let Failure::Malformed(_) = e {
                metrics::counter!(m::MALFORMED_BODIES_TOTAL, "opcode" => kind).increment(1);
            }
            metrics::counter!(m::FAILED_OPEN_TOTAL, "opcode" => kind).increment(1);
            Decision::FailOpen(e.to_string())
        })
    }

    async fn session_event(&self, session: &Arc<Session>, event: SessionEvent) {
        let core = &self.core;
        match event {
            SessionEvent::EnteredWorld { character } => {
                session.state().set_player(None);
                core.look_up_player(session, character);
                core.local.insert(character, session);
                let _ = core.presence.send(Presence::Online(character));
                core.due(character);
            }
            SessionEvent::LeftWorld { character } => {
                session.state().set_player(None);
                if let Some(holder) = session.state().turn_in().and_then(|t| t.lease) {
                    if let Err(e) = cmd::release_lease(core, &holder).await {
                        warn!(error = %e, "could not give the guild-creation lease back");
                    }
                }
                session.state().set_turn_in(None);
                core.local.remove(character, session);
                // Another session of this sidecar holds the character: its claim stays.
                if core.local.get(character).is_none() {
                    let _ = core.presence.send(Presence::Offline(character));
                }
            }
        }
    }

    fn start(&self, cancel: CancellationToken) {
        let core = &self.core;
        core.tasks
            .spawn(outbox::consume(Arc::clone(core), cancel.clone()));
        let Some(bus) = core.bus.clone() else {
            return;
        };
        let Some(queue) = presence_queue(core) else {
            return;
        };
        core.tasks.spawn(upkeep::keep_presence(
            Arc::clone(core),
            bus.clone(),
            cancel.clone(),
        ));
        core.tasks.spawn(upkeep::publish_presence(
            Arc::clone(core),
            bus.clone(),
            queue,
            cancel.clone(),
        ));
        core.tasks.spawn(upkeep::listen(
            Arc::clone(core),
            bus.clone(),
            cancel.clone(),
        ));
        core.tasks
            .spawn(upkeep::apply_events(Arc::clone(core), bus, cancel));
    }
}

/// The presence queue, taken once by the task that applies it.
fn presence_queue<S, D>(core: &Core<S, D>) -> Option<mpsc::UnboundedReceiver<Presence>> {
    crate::presence::lock(&core.presence_queue).take()
}

/// A presence update for the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// The character entered the world here.
    Online(u32),
    /// The character left, and no other session here holds it.
    Offline(u32),
}
