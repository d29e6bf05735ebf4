//! The charter resolver as a [`Handler`]: fetches what the [`resolver`] rules need
//! from the [`store`](crate::store), carries out their verdicts, and reaches players
//! behind other sidecars through the [`bus`](crate::bus).
//!
//! Any failure (a database down, a malformed body, an unknown player) fails open: the
//! original packet goes on to the worldserver, which answers as it would without a
//! sidecar.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tc9_codec::messages::guild::event as guild_event;
use tc9_codec::messages::guild::{command, command_error};
use tc9_codec::messages::petition::turn_in_result;
use tc9_codec::messages::{
    CmsgGuildQuery, CmsgOfferPetition, CmsgPetitionQuery, CmsgPetitionShowSignatures,
    CmsgPetitionSign, CmsgTurnInPetition, MsgPetitionDeclineClient, MsgPetitionDeclineServer,
    SmsgGuildCommandResult, SmsgGuildEvent, SmsgPetitionShowSignatures, SmsgTurnInPetitionResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{DecodeError, Frame, FrameCodec, FrameError, Message, Opcode, Origin};
use tokio::sync::Notify;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backend::{CharterStore, Directory};
use crate::bus::{Bus, BusError, Event};
use crate::handler::{Decision, Handler, SessionEvent};
use crate::metrics as m;
use crate::resolver::{self, OfferVerdict, Player, Rules, SignVerdict};
use crate::session::SessionInfo;
use crate::store::{Db, StoreError};

/// Outbox event kind: server frames for one character.
pub const EVENT_PACKETS: &str = "packets";
/// Outbox event kind: a guild was created or changed somewhere; drop cached guild
/// answers.
pub const EVENT_GUILD_CHANGED: &str = "guild_changed";

/// Least time between two `guild_changed` broadcasts of one sidecar (every online
/// member of a guild sees the same guild event).
const GUILD_BROADCAST_GAP: Duration = Duration::from_secs(1);

/// Client opcodes the resolver intercepts.
pub const CLIENT_OPCODES: &[Opcode] = &[
    Opcode::CMSG_OFFER_PETITION,
    Opcode::CMSG_PETITION_SIGN,
    Opcode::CMSG_PETITION_QUERY,
    Opcode::CMSG_PETITION_SHOW_SIGNATURES,
    Opcode::MSG_PETITION_DECLINE,
    Opcode::CMSG_TURN_IN_PETITION,
    Opcode::CMSG_GUILD_QUERY,
];

/// Server opcodes the resolver intercepts.
pub const SERVER_OPCODES: &[Opcode] = &[
    Opcode::SMSG_PETITION_SHOW_SIGNATURES,
    Opcode::SMSG_TURN_IN_PETITION_RESULTS,
    Opcode::SMSG_GUILD_COMMAND_RESULT,
    Opcode::SMSG_GUILD_EVENT,
];

/// How long a guild answer is served from the cache; guild events clear it sooner.
const GUILD_CACHE_TTL: Duration = Duration::from_secs(60);

/// Why a resolution failed open.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the session's character is not known yet")]
    NoIdentity,
    #[error("resolution took longer than {0:?}")]
    Timeout(Duration),
}

/// Knobs of the resolver taken from the configuration.
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
}

/// The sessions of this sidecar whose character is in the world, by character guid.
#[derive(Debug, Default)]
struct LocalSessions(Mutex<HashMap<u32, Weak<SessionInfo>>>);

impl LocalSessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Weak<SessionInfo>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, character: u32) -> Option<Arc<SessionInfo>> {
        self.lock().get(&character).and_then(Weak::upgrade)
    }

    /// The characters in the world here.
    fn characters(&self) -> Vec<u32> {
        self.lock()
            .iter()
            .filter(|(_, w)| w.strong_count() > 0)
            .map(|(c, _)| *c)
            .collect()
    }

    fn insert(&self, character: u32, session: &Arc<SessionInfo>) {
        self.lock().insert(character, Arc::downgrade(session));
    }

    /// Removes `character` if it is still bound to `session`.
    fn remove(&self, character: u32, session: &Arc<SessionInfo>) {
        let mut map = self.lock();
        if map
            .get(&character)
            .is_some_and(|w| w.as_ptr() == Arc::as_ptr(session))
        {
            map.remove(&character);
        }
    }
}

/// Event ids applied recently, so a redelivered event is not applied twice.
#[derive(Debug, Default)]
struct Applied {
    order: VecDeque<i64>,
    ids: HashSet<i64>,
}

impl Applied {
    const KEEP: usize = 4096;

    /// Records `id`; false if it was recorded already.
    fn first_time(&mut self, id: i64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::KEEP {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

struct Inner<S, D> {
    store: S,
    bus: Option<D>,
    settings: CharterSettings,
    local: LocalSessions,
    /// Cached `SMSG_GUILD_QUERY_RESPONSE` frames by guild id, with when they were read.
    guilds: Mutex<HashMap<u32, (Instant, Frame)>>,
    /// The charter each session last turned in.
    turn_ins: Mutex<HashMap<u64, u32>>,
    applied: Mutex<Applied>,
    /// When this sidecar last broadcast a guild change.
    last_guild_broadcast: Mutex<Option<Instant>>,
    /// Wakes the outbox consumer (a character just entered the world here).
    wake: Notify,
}

/// Resolves cross-worldserver charter work; see the module docs.
pub struct CharterHandler<S = Db, D = Bus> {
    inner: Arc<Inner<S, D>>,
}

impl<S, D> Clone for CharterHandler<S, D> {
    fn clone(&self) -> Self {
        CharterHandler {
            inner: Arc::clone(&self.inner),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A server frame carrying `message`.
fn server_frame<M: Message>(message: &M) -> Result<Frame, FrameError> {
    Frame::from_message(Origin::Server, message)
}

/// Concatenated plain server frames, as stored in a `packets` event.
fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| f.as_bytes().iter().copied())
        .collect()
}

/// The frames of a `packets` event.
pub fn decode_frames(payload: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut codec = FrameCodec::server();
    let mut buf = BytesMut::from(payload);
    let mut frames = Vec::new();
    while let Some(frame) = codec.decode(&mut buf)? {
        frames.push(frame);
    }
    Ok(frames)
}

impl<S: CharterStore, D: Directory> CharterHandler<S, D> {
    /// A resolver over the characters DB `store` and, for cross-sidecar work, `bus`.
    pub fn new(store: S, bus: Option<D>, settings: CharterSettings) -> Self {
        CharterHandler {
            inner: Arc::new(Inner {
                store,
                bus,
                settings,
                local: LocalSessions::default(),
                guilds: Mutex::new(HashMap::new()),
                turn_ins: Mutex::new(HashMap::new()),
                applied: Mutex::new(Applied::default()),
                last_guild_broadcast: Mutex::new(None),
                wake: Notify::new(),
            }),
        }
    }

    /// Starts the heartbeat and the outbox consumer; they stop with `cancel`.
    pub fn start_background(&self, cancel: CancellationToken) {
        let Some(bus) = self.inner.bus.clone() else {
            return;
        };
        let heartbeat = self.inner.settings.heartbeat;
        let beat_bus = bus.clone();
        let beat_cancel = cancel.clone();
        tokio::spawn(async move {
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
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.consume(bus, cancel).await });
    }
}

impl<S: CharterStore, D: Directory> Inner<S, D> {
    /// The character playing behind `session`.
    async fn player(&self, session: &SessionInfo) -> Result<Player, Failure> {
        let identity = session.identity();
        if let Some(character) = identity.character {
            return Ok(character.into());
        }
        let guid = identity.character_guid.ok_or(Failure::NoIdentity)?;
        let character = self.store.character(guid).await?;
        character.map(Player::from).ok_or(Failure::NoIdentity)
    }

    /// Sends `frames` to `character` wherever it plays: locally, or through the bus to
    /// its sidecar. Returns false if the character is not online anywhere.
    async fn deliver(&self, character: u32, frames: Vec<Frame>) -> Result<bool, Failure> {
        if let Some(session) = self.local.get(character) {
            return Ok(session.send_to_gateway(frames).await);
        }
        let Some(bus) = &self.bus else {
            return Ok(false);
        };
        match bus.locate(character).await? {
            Some(sidecar) => {
                bus.publish(
                    &sidecar,
                    Some(character),
                    EVENT_PACKETS,
                    &encode_frames(&frames),
                )
                .await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn offer(&self, session: &SessionInfo, frame: &Frame) -> Result<Decision, Failure> {
        let offer = CmsgOfferPetition::decode(frame.body())?;
        let target = offer.target.low();
        if self.local.get(target).is_some() {
            return Ok(Decision::Forward);
        }
        let Some(bus) = &self.bus else {
            return Ok(Decision::Forward);
        };
        let Some(sidecar) = bus.locate(target).await? else {
            return Ok(Decision::Forward);
        };
        let Some(petition) = self.store.petition(offer.petition.low()).await? else {
            return Ok(Decision::Forward);
        };
        if !petition.is_guild_charter() {
            return Ok(Decision::Forward);
        }
        let offerer = self.player(session).await?;
        let Some(target_player) = self.store.character(target).await? else {
            return Ok(Decision::Forward);
        };
        match resolver::judge_offer(
            &petition,
            &offerer,
            &target_player.into(),
            false,
            &self.settings.rules,
        ) {
            OfferVerdict::Ignore => {
                count_operation("offer", "ignored");
                Ok(Decision::Drop)
            }
            OfferVerdict::Refuse(result) => {
                count_operation("offer", "refused");
                Ok(Decision::Answer(vec![server_frame(&result)?]))
            }
            OfferVerdict::Deliver => {
                let signatures = self.store.signatures(petition.petition_guid).await?;
                let shown = resolver::show_signatures(&petition, offerer.guid, &signatures);
                let frames = encode_frames(&[server_frame(&shown)?]);
                bus.publish(&sidecar, Some(target), EVENT_PACKETS, &frames)
                    .await?;
                count_operation("offer", "delivered");
                Ok(Decision::Drop)
            }
        }
    }

    /// Resolves a signature; a result the owner must also hear goes to `tell_owner`,
    /// to be delivered after the decision, outside the resolution's time limit.
    async fn sign(
        &self,
        session: &SessionInfo,
        frame: &Frame,
        tell_owner: &mut Option<(u32, Frame)>,
    ) -> Result<Decision, Failure> {
        let sign = CmsgPetitionSign::decode(frame.body())?;
        let Some(petition) = self.store.petition(sign.petition.low()).await? else {
            return Ok(Decision::Forward);
        };
        if !petition.is_guild_charter() {
            return Ok(Decision::Forward);
        }
        let signer = self.player(session).await?;
        let Some((petition, verdict)) = self
            .store
            .sign(petition.petition_guid, &signer, false, &self.settings.rules)
            .await?
        else {
            return Ok(Decision::Forward);
        };
        let (label, to_both) = match verdict {
            SignVerdict::Ignore => ("ignored", None),
            SignVerdict::Refuse(result) => {
                count_operation("sign", "refused");
                return Ok(Decision::Answer(vec![server_frame(&result)?]));
            }
            SignVerdict::AlreadySigned(result) => ("already_signed", Some(result)),
            SignVerdict::Record(result) => ("ok", Some(result)),
        };
        count_operation("sign", label);
        let Some(result) = to_both else {
            return Ok(Decision::Drop);
        };
        let frame = server_frame(&result)?;
        // The signature is committed: the signer is answered whatever the bus does.
        *tell_owner = Some((petition.owner_guid, frame.clone()));
        Ok(Decision::Answer(vec![frame]))
    }

    async fn query(&self, frame: &Frame) -> Result<Decision, Failure> {
        let query = CmsgPetitionQuery::decode(frame.body())?;
        match self.store.petition(query.petition.low()).await? {
            Some(petition) if petition.is_guild_charter() => {
                let response = resolver::query_response(&petition, &self.settings.rules);
                count_operation("query", "answered");
                Ok(Decision::Answer(vec![server_frame(&response)?]))
            }
            _ => Ok(Decision::Forward),
        }
    }

    async fn show(&self, session: &SessionInfo, frame: &Frame) -> Result<Decision, Failure> {
        let show = CmsgPetitionShowSignatures::decode(frame.body())?;
        let Some(petition) = self.store.petition(show.petition.low()).await? else {
            return Ok(Decision::Forward);
        };
        if !petition.is_guild_charter() {
            return Ok(Decision::Forward);
        }
        let requester = self.player(session).await?;
        if requester.guild_id.is_some() {
            // AzerothCore shows a guild charter to nobody who is in a guild.
            return Ok(Decision::Drop);
        }
        let signatures = self.store.signatures(petition.petition_guid).await?;
        let shown = resolver::show_signatures(&petition, requester.guid, &signatures);
        count_operation("show", "answered");
        Ok(Decision::Answer(vec![server_frame(&shown)?]))
    }

    async fn decline(&self, session: &SessionInfo, frame: &Frame) -> Result<Decision, Failure> {
        let decline = MsgPetitionDeclineClient::decode(frame.body())?;
        let Some(petition) = self.store.petition(decline.petition.low()).await? else {
            return Ok(Decision::Forward);
        };
        if !petition.is_guild_charter() {
            return Ok(Decision::Forward);
        }
        let decliner = session
            .identity()
            .character_guid
            .ok_or(Failure::NoIdentity)?;
        let told = MsgPetitionDeclineServer {
            decliner: Guid::player(decliner),
        };
        let delivered = self
            .deliver(petition.owner_guid, vec![server_frame(&told)?])
            .await?;
        let result = if delivered {
            "delivered"
        } else {
            "owner_offline"
        };
        count_operation("decline", result);
        Ok(Decision::Drop)
    }

    async fn guild_query(&self, frame: &Frame) -> Result<Decision, Failure> {
        let query = CmsgGuildQuery::decode(frame.body())?;
        if let Some((read, cached)) = lock(&self.guilds).get(&query.guild_id) {
            if read.elapsed() < GUILD_CACHE_TTL {
                count_operation("guild_query", "cached");
                return Ok(Decision::Answer(vec![cached.clone()]));
            }
        }
        let Some(guild) = self.store.guild(query.guild_id).await? else {
            return Ok(Decision::Forward);
        };
        let answer = server_frame(&resolver::guild_query_response(&guild))?;
        lock(&self.guilds).insert(guild.id, (Instant::now(), answer.clone()));
        count_operation("guild_query", "answered");
        Ok(Decision::Answer(vec![answer]))
    }

    /// Rewrites the worldserver's own signature list with the database's.
    async fn rewrite_show(&self, frame: &Frame) -> Result<Decision, Failure> {
        let mut shown = SmsgPetitionShowSignatures::decode(frame.body())?;
        let Some(petition) = self.store.petition(shown.petition.low()).await? else {
            return Ok(Decision::Forward);
        };
        if !petition.is_guild_charter() {
            return Ok(Decision::Forward);
        }
        let signatures = self.store.signatures(petition.petition_guid).await?;
        let full = resolver::show_signatures(&petition, shown.owner.low(), &signatures);
        if full.signatures == shown.signatures {
            return Ok(Decision::Forward);
        }
        shown.signatures = full.signatures;
        Ok(Decision::Rewrite(vec![server_frame(&shown)?]))
    }

    /// Watches turn-in results: stale worldserver caches, and new guilds.
    async fn watch_turn_in(
        &self,
        session: &SessionInfo,
        frame: &Frame,
    ) -> Result<Decision, Failure> {
        let petition_guid = lock(&self.turn_ins).get(&session.id).copied();
        match frame.opcode() {
            Opcode::SMSG_TURN_IN_PETITION_RESULTS => {
                let result = SmsgTurnInPetitionResults::decode(frame.body())?;
                if let (turn_in_result::NEED_MORE_SIGNATURES, Some(guid)) =
                    (result.result, petition_guid)
                {
                    if let Some(petition) = self.store.petition(guid).await? {
                        let have = self.store.signatures(guid).await?.len();
                        let need = self.settings.rules.required_signatures(&petition) as usize;
                        if have >= need {
                            metrics::counter!(m::STALE_TURN_INS_TOTAL).increment(1);
                            warn!(
                                petition = guid,
                                signatures = have,
                                required = need,
                                "worldserver refused a turn-in the database can pay for: its petition cache is stale (signatures made through other worldservers load at its restart)"
                            );
                        }
                    }
                }
            }
            _ => {
                let result = SmsgGuildCommandResult::decode(frame.body())?;
                if result.command == command::CREATE
                    && result.error == command_error::SUCCESS
                    && petition_guid.is_some()
                {
                    lock(&self.turn_ins).remove(&session.id);
                    info!(guild = %result.name, "guild created from a charter");
                    self.publish_guild_changed(&result.name).await?;
                }
            }
        }
        Ok(Decision::Forward)
    }

    /// Guild events that change a guild's name, ranks or emblem clear the guild
    /// answers of every sidecar.
    async fn watch_guild_event(&self, frame: &Frame) -> Result<Decision, Failure> {
        let event = SmsgGuildEvent::decode(frame.body())?;
        if guild_event::changes_guild_query(event.event) {
            self.publish_guild_changed(&format!("event {}", event.event))
                .await?;
        }
        Ok(Decision::Forward)
    }

    /// Tells every live sidecar (this one included) that a guild was created or
    /// changed; at most once per [`GUILD_BROADCAST_GAP`].
    async fn publish_guild_changed(&self, what: &str) -> Result<(), Failure> {
        lock(&self.guilds).clear();
        let Some(bus) = &self.bus else {
            return Ok(());
        };
        {
            let mut last = lock(&self.last_guild_broadcast);
            if last.is_some_and(|at| at.elapsed() < GUILD_BROADCAST_GAP) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        for sidecar in bus.live_sidecars().await? {
            bus.publish(&sidecar, None, EVENT_GUILD_CHANGED, what.as_bytes())
                .await?;
        }
        Ok(())
    }

    /// Applies one outbox event; false when it must wait (its character is not here).
    async fn apply(&self, event: &Event) -> Result<bool, Failure> {
        match event.kind.as_str() {
            EVENT_GUILD_CHANGED => {
                lock(&self.guilds).clear();
                Ok(true)
            }
            EVENT_PACKETS => {
                let Some(character) = event.character else {
                    return Ok(true);
                };
                let Some(session) = self.local.get(character) else {
                    return Ok(false);
                };
                let frames = decode_frames(&event.payload)?;
                Ok(session.send_to_gateway(frames).await)
            }
            other => {
                warn!(kind = other, id = event.id, "unknown outbox event; skipped");
                Ok(true)
            }
        }
    }

    /// Delivers this sidecar's pending events.
    async fn drain(&self, bus: &D) -> Result<(), Failure> {
        let expired = bus.expire(self.settings.event_ttl).await?;
        if expired > 0 {
            warn!(
                expired,
                "gave up outbox events whose character never came online here"
            );
        }
        let here = self.local.characters();
        for event in bus.pending(&here, 256).await? {
            let fresh = !lock(&self.applied).ids.contains(&event.id);
            if fresh && !self.apply(&event).await? {
                continue;
            }
            if lock(&self.applied).first_time(event.id) {
                let kind = if event.kind == EVENT_GUILD_CHANGED {
                    EVENT_GUILD_CHANGED
                } else {
                    EVENT_PACKETS
                };
                metrics::counter!(m::OUTBOX_DELIVERED_TOTAL, "kind" => kind).increment(1);
            }
            bus.mark_delivered(event.id).await?;
            debug!(id = event.id, kind = %event.kind, "outbox event delivered");
        }
        if let Ok((pending, lag)) = bus.backlog().await {
            metrics::gauge!(m::OUTBOX_PENDING).set(pending as f64);
            metrics::gauge!(m::OUTBOX_LAG_SECONDS).set(lag);
        }
        Ok(())
    }

    /// Listens for wake-ups and polls, delivering events, until `cancel`.
    async fn consume(self: Arc<Self>, bus: D, cancel: CancellationToken) {
        let mut listener = None;
        loop {
            if listener.is_none() {
                match bus.listen().await {
                    Ok(l) => listener = Some(l),
                    Err(e) => warn!(error = %e, "bus listen failed; polling"),
                }
            }
            if let Err(e) = self.drain(&bus).await {
                warn!(error = %e, "outbox delivery failed; will retry");
            }
            let poll = self.settings.poll;
            tokio::select! {
                woken = async {
                    match listener.as_mut() {
                        Some(l) => l.notified().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if woken.is_none() {
                        listener = None;
                    }
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }
}

/// Counts one charter operation.
fn count_operation(kind: &'static str, result: &'static str) {
    metrics::counter!(m::CHARTER_OPERATIONS_TOTAL, "kind" => kind, "result" => result).increment(1);
}

impl<S: CharterStore, D: Directory> Handler for CharterHandler<S, D> {
    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        match origin {
            Origin::Client => CLIENT_OPCODES.contains(&opcode),
            Origin::Server => SERVER_OPCODES.contains(&opcode),
        }
    }

    async fn handle(&self, session: &SessionInfo, frame: &Frame) -> Decision {
        let inner = &self.inner;
        let started = Instant::now();
        let kind = frame.opcode().name().unwrap_or("other");
        let limit = inner.settings.timeout;
        let mut tell_owner = None;
        let resolution = async {
            match (frame.origin(), frame.opcode()) {
                (Origin::Client, Opcode::CMSG_OFFER_PETITION) => inner.offer(session, frame).await,
                (Origin::Client, Opcode::CMSG_PETITION_SIGN) => {
                    inner.sign(session, frame, &mut tell_owner).await
                }
                (Origin::Client, Opcode::CMSG_PETITION_QUERY) => inner.query(frame).await,
                (Origin::Client, Opcode::CMSG_PETITION_SHOW_SIGNATURES) => {
                    inner.show(session, frame).await
                }
                (Origin::Client, Opcode::MSG_PETITION_DECLINE) => {
                    inner.decline(session, frame).await
                }
                (Origin::Client, Opcode::CMSG_TURN_IN_PETITION) => {
                    if let Ok(turn_in) = CmsgTurnInPetition::decode(frame.body()) {
                        lock(&inner.turn_ins).insert(session.id, turn_in.petition.low());
                    }
                    Ok(Decision::Forward)
                }
                (Origin::Client, Opcode::CMSG_GUILD_QUERY) => inner.guild_query(frame).await,
                (Origin::Server, Opcode::SMSG_PETITION_SHOW_SIGNATURES) => {
                    inner.rewrite_show(frame).await
                }
                (Origin::Server, Opcode::SMSG_GUILD_EVENT) => inner.watch_guild_event(frame).await,
                (Origin::Server, _) => inner.watch_turn_in(session, frame).await,
                _ => Ok(Decision::Forward),
            }
        };
        let result = tokio::time::timeout(limit, resolution)
            .await
            .unwrap_or(Err(Failure::Timeout(limit)));
        // Before the signer's answer is queued (so the order is fixed), but with a time
        // limit of its own: a slow bus delays the answer, never undoes it.
        if let Some((owner, told)) = tell_owner {
            match tokio::time::timeout(limit, inner.deliver(owner, vec![told])).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(owner, error = %e, "could not tell the charter owner"),
                Err(_) => warn!(owner, "telling the charter owner timed out"),
            }
        }
        metrics::histogram!(m::RESOLUTION_SECONDS, "kind" => kind)
            .record(started.elapsed().as_secs_f64());
        result.unwrap_or_else(|e| {
            if let Failure::Malformed(_) = e {
                metrics::counter!(m::MALFORMED_BODIES_TOTAL, "opcode" => kind).increment(1);
            }
            metrics::counter!(m::FAILED_OPEN_TOTAL, "opcode" => kind).increment(1);
            Decision::FailOpen(e.to_string())
        })
    }

    async fn session_event(&self, session: &Arc<SessionInfo>, event: SessionEvent) {
        let inner = &self.inner;
        match event {
            SessionEvent::EnteredWorld { character } => {
                inner.local.insert(character, session);
                if let Some(bus) = &inner.bus {
                    if let Err(e) = bus.set_online(character).await {
                        warn!(character, error = %e, "could not publish presence");
                    }
                }
                inner.wake.notify_one();
            }
            SessionEvent::LeftWorld { character } => {
                inner.local.remove(character, session);
                lock(&inner.turn_ins).remove(&session.id);
                if let Some(bus) = &inner.bus {
                    if let Err(e) = bus.set_offline(character).await {
                        warn!(character, error = %e, "could not withdraw presence");
                    }
                }
            }
        }
    }
}
