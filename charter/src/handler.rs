//! The charter as a proxy [`Handler`]: the watched opcodes go to their command in
//! [`cmd`](crate::cmd), under one time limit; whatever fails, fails open.

use std::sync::Arc;
use std::time::Duration;

use tc9_codec::{DecodeError, Frame, FrameError, Opcode, Origin};
use tc9_proxy::{Decision, Handler, SessionEvent};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{warn, Instrument};

use crate::guilds::GuildCache;
use crate::metrics as m;
use crate::outbox::Applied;
use crate::ports::{BackendError, CharterStore, Directory, EventKind};
use crate::presence::{CharterSession, LocalSessions, Session};
use crate::rules::{Player, Rules};
use crate::{cmd, outbox};

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
    pub(crate) applied: std::sync::Mutex<Applied>,
    /// Wakes the outbox consumer (a character just entered the world here).
    pub(crate) wake: Notify,
    /// The heartbeat and the outbox consumer.
    pub(crate) tasks: TaskTracker,
    /// The guild-creation lease of a sidecar without a bus.
    pub(crate) local_lease: crate::guilds::LocalLease,
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
        CharterHandler {
            core: Arc::new(Core {
                store,
                bus,
                settings,
                local: LocalSessions::default(),
                guilds: GuildCache::default(),
                applied: Default::default(),
                wake: Notify::new(),
                tasks: TaskTracker::new(),
                local_lease: Default::default(),
            }),
        }
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

    /// Sends `frames` to `character` wherever it plays: locally, or through the bus to
    /// its sidecar. Returns false if the character is not online anywhere.
    pub(crate) async fn deliver(
        &self,
        character: u32,
        frames: Vec<Frame>,
    ) -> Result<bool, Failure> {
        if let Some(session) = self.local.get(character) {
            return Ok(session.send_to_gateway(frames).await);
        }
        let Some(bus) = &self.bus else {
            return Ok(false);
        };
        match bus.locate(character).await? {
            Some(sidecar) => {
                let payload = outbox::encode_frames(&frames);
                bus.publish(&sidecar, Some(character), &EventKind::Packets, &payload)
                    .await?;
                Ok(true)
            }
            None => Ok(false),
        }
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
        // Before the signer's answer is queued (so the order is fixed), but with a time
        // limit of its own: a slow bus delays the answer, never undoes it.
        if let Some((owner, told)) = tell_owner {
            match tokio::time::timeout(limit, core.deliver(owner, vec![told])).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(owner, error = %e, "could not tell the charter owner"),
                Err(_) => warn!(owner, "telling the charter owner timed out"),
            }
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
                if let Some(bus) = &core.bus {
                    if let Err(e) = bus.set_online(character).await {
                        warn!(character, error = %e, "could not publish presence");
                    }
                }
                core.wake.notify_one();
            }
            SessionEvent::LeftWorld { character } => {
                session.state().set_player(None);
                if let Some(turn_in) = session.state().turn_in() {
                    if let Some(holder) = &turn_in.lease {
                        match &core.bus {
                            Some(bus) => {
                                if let Err(e) = bus.release_turn_in_lease(holder).await {
                                    warn!(error = %e, "could not give the guild-creation lease back");
                                }
                            }
                            None => core.local_lease.release(holder),
                        }
                    }
                }
                session.state().set_turn_in(None);
                core.local.remove(character, session);
                // Another session of this sidecar holds the character: its claim stays.
                if core.local.get(character).is_some() {
                    return;
                }
                if let Some(bus) = &core.bus {
                    if let Err(e) = bus.set_offline(character).await {
                        warn!(character, error = %e, "could not withdraw presence");
                    }
                }
            }
        }
    }

    fn start(&self, cancel: CancellationToken) {
        let Some(bus) = self.core.bus.clone() else {
            return;
        };
        let heartbeat = self.core.settings.heartbeat;
        let beat_bus = bus.clone();
        let beat_cancel = cancel.clone();
        self.core.tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(heartbeat) => {}
                    _ = beat_cancel.cancelled() => return,
                }
                if let Err(e) = beat_bus.heartbeat().await {
                    warn!(error = %e, "bus heartbeat failed");
                }
            }
        });
        let core = Arc::clone(&self.core);
        self.core
            .tasks
            .spawn(async move { outbox::consume(&core, bus, cancel).await });
    }
}
