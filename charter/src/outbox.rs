//! Notices for the characters in the world here: claimed from the characters
//! database, written to each character's socket by a task of its own (a client that
//! does not read delays nobody else), and marked delivered only once written.
//!
//! A notice is addressed to a character, not to a sidecar: whichever sidecar that
//! character plays behind next delivers it, within the event TTL. The bus only
//! hurries it along (a wake-up naming the character); a poll finds it without one.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tc9_codec::{Frame, FrameCodec, FrameError};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn, Instrument};

use crate::handler::{Core, Failure};
use crate::metrics as m;
use crate::ports::{CharterStore, Directory, Notice, Settle};
use crate::presence::lock;
use crate::rules::{Petition, SignVerdict};

/// How long a claimed notice is held for its delivery before anyone may claim it
/// again (a sidecar that died holding it).
pub const CLAIM_HOLD: Duration = Duration::from_secs(10);
/// How long one delivery waits for its client's socket before giving the notice back.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(2);
/// How long a notice claimed for its deliverer as it is recorded is held: the
/// wake-up's way and one delivery's wait. Shorter than [`CLAIM_HOLD`], so a
/// deliverer that died in the meantime holds the notice back for less.
pub const HELD_HOLD: Duration = Duration::from_secs(3);
/// How often notices past their TTL are deleted.
pub(crate) const EXPIRE_EVERY: Duration = Duration::from_secs(10);

/// A notice in hand: carried by a wake-up, or recorded by this sidecar.
#[derive(Debug)]
pub(crate) struct InHand {
    /// The notice.
    pub(crate) notice: Notice,
    /// Claimed for this sidecar when it was recorded: written without a claim.
    pub(crate) held: bool,
}

/// The ids of the notices this process wrote last. A held notice is written
/// without a claim, so one handed over after a claim by character already wrote it
/// would otherwise be written twice.
#[derive(Debug, Default)]
pub(crate) struct Written {
    order: VecDeque<i64>,
    ids: HashSet<i64>,
}

impl Written {
    /// How many ids are kept: far more than are written within one wake-up's way.
    const KEEP: usize = 4096;

    fn insert(&mut self, id: i64) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > Self::KEEP {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    fn contains(&self, id: i64) -> bool {
        self.ids.contains(&id)
    }
}

/// Concatenated plain server frames, as stored in a notice.
pub fn encode_frames(frames: &[Frame]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|f| f.as_bytes().iter().copied())
        .collect()
}

/// Why a notice's payload is not a run of whole server frames.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// A frame header is invalid.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Bytes after the last whole frame.
    #[error("{0} bytes after the last whole frame")]
    Trailing(usize),
    /// No frame at all.
    #[error("no frames")]
    Empty,
}

/// The frames of a notice: whole server frames and nothing else.
pub fn decode_frames(payload: &[u8]) -> Result<Vec<Frame>, PayloadError> {
    let mut codec = FrameCodec::server();
    let mut buf = BytesMut::from(payload);
    let mut frames = Vec::new();
    while let Some(frame) = codec.decode(&mut buf)? {
        frames.push(frame);
    }
    match (frames.is_empty(), buf.len()) {
        (_, trailing) if trailing > 0 => Err(PayloadError::Trailing(trailing)),
        (true, _) => Err(PayloadError::Empty),
        _ => Ok(frames),
    }
}

/// The notice a signing verdict owes the charter's owner (AzerothCore sends the
/// signer's `SMSG_PETITION_SIGN_RESULTS` to the owner too, signed or already
/// signed): `(owner, payload)`. A store records it with the signature.
pub fn owner_notice(petition: &Petition, verdict: &SignVerdict) -> Option<(u32, Vec<u8>)> {
    let shown = match verdict {
        SignVerdict::Record(shown) | SignVerdict::AlreadySigned(shown) => shown,
        SignVerdict::Refuse(_) | SignVerdict::Ignore => return None,
    };
    let frame = crate::cmd::server_frame(shown).ok()?;
    Some((petition.owner_guid, encode_frames(&[frame])))
}

impl<S: CharterStore, D: Directory> Core<S, D> {
    /// Has the consumer deliver `character`'s notices now.
    pub(crate) fn due(&self, character: u32) {
        lock(&self.due).insert(character);
        self.wake.notify_one();
    }

    /// Has the consumer deliver `notice`, which it has in hand; `held` when it was
    /// claimed for this sidecar as it was recorded.
    pub(crate) fn ready(&self, notice: Notice, held: bool) {
        lock(&self.ready).push(InHand { notice, held });
        self.wake.notify_one();
    }

    /// Delivers notices in hand: a held one at once, any other claimed by its id
    /// first (one statement instead of a claim and a read). A notice this sidecar
    /// may be delivering already (its character busy, its outcome not yet settled),
    /// or one it cannot claim, is left to the claim by character; a held one it
    /// wrote already is dropped.
    async fn deliver_ready(self: &Arc<Self>, in_hand: Vec<InHand>) -> Result<(), Failure> {
        let (mut held, mut free, mut busy) = (Vec::new(), Vec::new(), Vec::new());
        {
            let in_flight = lock(&self.in_flight);
            let unsettled = lock(&self.unsettled);
            let written = lock(&self.written);
            for InHand { notice, held: h } in in_hand {
                if written.contains(notice.id) {
                    continue;
                }
                if in_flight.contains(&notice.character) || unsettled.contains_key(&notice.id) {
                    busy.push(notice.character);
                } else if h {
                    held.push(notice);
                } else {
                    free.push(notice);
                }
            }
        }
        for character in busy {
            self.due(character);
        }
        self.start_deliveries(held);
        if free.is_empty() {
            return Ok(());
        }
        let mut claimed = Vec::with_capacity(free.len());
        let mut failure = None;
        for notice in free {
            let claim = self
                .store
                .claim_one(notice.id, &self.settings.sidecar_id, CLAIM_HOLD);
            match self.bounded(claim).await {
                Ok(true) => claimed.push(notice),
                Ok(false) => self.due(notice.character),
                Err(e) => {
                    self.due(notice.character);
                    failure = Some(e);
                }
            }
        }
        self.start_deliveries(claimed);
        failure.map_or(Ok(()), Err)
    }

    /// Claims the notices of those of `characters` with no delivery under way and
    /// starts one delivery task per character.
    async fn deliver_notices(self: &Arc<Self>, characters: Vec<u32>) -> Result<(), Failure> {
        let free: Vec<u32> = {
            let busy = lock(&self.in_flight);
            characters
                .into_iter()
                .filter(|c| !busy.contains(c))
                .collect()
        };
        if free.is_empty() {
            return Ok(());
        }
        self.settle_kept().await?;
        let claimed = self
            .bounded(
                self.store
                    .claim(&free, &self.settings.sidecar_id, CLAIM_HOLD),
            )
            .await?;
        self.start_deliveries(claimed);
        Ok(())
    }

    /// Starts one delivery task per character of `notices` with none under way; a
    /// character's notices go in id order.
    fn start_deliveries(self: &Arc<Self>, notices: Vec<Notice>) {
        let mut by_character: BTreeMap<u32, Vec<Notice>> = BTreeMap::new();
        for notice in notices {
            by_character
                .entry(notice.character)
                .or_default()
                .push(notice);
        }
        for (character, notices) in by_character {
            if !lock(&self.in_flight).insert(character) {
                continue;
            }
            let core = Arc::clone(self);
            self.tasks.spawn(
                async move {
                    core.deliver_to(character, notices).await;
                    lock(&core.in_flight).remove(&character);
                }
                .in_current_span(),
            );
        }
    }

    /// Writes `notices` to `character`'s session, in order, settling each; the
    /// first that cannot be written gives back the rest.
    async fn deliver_to(&self, character: u32, notices: Vec<Notice>) {
        let mut rest = notices.into_iter();
        while let Some(notice) = rest.next() {
            let outcome = match decode_frames(&notice.payload) {
                Err(e) => {
                    warn!(id = notice.id, character, error = %e, "a notice cannot be decoded; set aside");
                    metrics::counter!(m::NOTICES_SET_ASIDE_TOTAL).increment(1);
                    Settle::SetAside(format!("undecodable: {e}"))
                }
                Ok(frames) => {
                    let written = match self.local.get(character) {
                        Some(session) => {
                            session.state().saw_lists(&frames);
                            session.deliver(frames, DELIVERY_WAIT).await
                        }
                        None => false,
                    };
                    if !written {
                        metrics::counter!(m::DELIVERIES_STALLED_TOTAL).increment(1);
                        debug!(
                            id = notice.id,
                            character, "delivery not written; given back"
                        );
                        for notice in std::iter::once(notice).chain(rest) {
                            self.settle(notice.id, Settle::Released).await;
                        }
                        return;
                    }
                    metrics::counter!(m::OUTBOX_DELIVERED_TOTAL, "kind" => m::NOTICE_KIND)
                        .increment(1);
                    lock(&self.written).insert(notice.id);
                    Settle::Delivered
                }
            };
            self.settle(notice.id, outcome).await;
        }
    }

    /// Settles a claim, retrying a few times; one still unsettled is kept and
    /// settled before this sidecar's next claim (a delivered notice is never
    /// delivered again by this process).
    async fn settle(&self, id: i64, outcome: Settle) {
        let claimer = &self.settings.sidecar_id;
        for attempt in 0..3u32 {
            let settled = self
                .bounded(self.store.settle(id, claimer, outcome.clone()))
                .await;
            match settled {
                Ok(()) => return,
                Err(e) if attempt == 2 => {
                    debug!(id, error = %e, "could not settle a notice yet; kept for later");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
            }
        }
        lock(&self.unsettled).insert(id, outcome);
    }

    /// Settles what earlier settles could not.
    async fn settle_kept(&self) -> Result<(), Failure> {
        let kept: Vec<(i64, Settle)> = lock(&self.unsettled)
            .iter()
            .map(|(id, outcome)| (*id, outcome.clone()))
            .collect();
        for (id, outcome) in kept {
            self.bounded(self.store.settle(id, &self.settings.sidecar_id, outcome))
                .await?;
            lock(&self.unsettled).remove(&id);
        }
        Ok(())
    }

    /// `operation` under the resolution time limit.
    pub(crate) async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, crate::ports::BackendError>>,
    ) -> Result<T, Failure> {
        let limit = self.settings.timeout;
        match tokio::time::timeout(limit, operation).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Failure::Timeout(limit)),
        }
    }

    /// Deletes notices past their TTL (at most every [`EXPIRE_EVERY`]) and sets the
    /// backlog gauges; the characters `here` that notices wait for.
    async fn upkeep(
        &self,
        here: &[u32],
        last_expire: &mut Option<Instant>,
    ) -> Result<Vec<u32>, Failure> {
        if last_expire.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
            *last_expire = Some(Instant::now());
            let expired = self
                .bounded(self.store.expire_notices(self.settings.event_ttl))
                .await?;
            if expired > 0 {
                metrics::counter!(m::NOTICES_EXPIRED_TOTAL).increment(expired);
                warn!(
                    expired,
                    "gave up notices whose character never came online in time"
                );
            }
        }
        let backlog = self.bounded(self.store.notice_backlog(here)).await?;
        metrics::gauge!(m::OUTBOX_PENDING).set(backlog.here as f64);
        metrics::gauge!(m::OUTBOX_LAG_SECONDS).set(backlog.here_oldest);
        metrics::gauge!(m::NOTICES_WAITING).set(backlog.realm as f64);
        metrics::gauge!(m::NOTICES_SET_ASIDE).set(backlog.set_aside as f64);
        Ok(backlog.waiting_here)
    }
}

/// Delivers notices, woken by [`Core::due`] and polling every character in the
/// world here, until `cancel`.
pub(crate) async fn consume<S: CharterStore, D: Directory>(
    core: Arc<Core<S, D>>,
    cancel: CancellationToken,
) {
    // Claims a previous run of this sidecar held are void: it starts afresh.
    if let Err(e) = core
        .bounded(core.store.release_all(&core.settings.sidecar_id))
        .await
    {
        warn!(error = %e, "could not give back earlier claims; they expire");
    }
    let mut last_expire = None;
    let mut next_poll = Instant::now();
    loop {
        let characters = if Instant::now() >= next_poll {
            next_poll = Instant::now() + core.settings.poll;
            let here = core.local.characters();
            // A poll claims only for the characters something waits for: a claim
            // over every character here is dozens of statements, and a notice in
            // hand waits for it.
            match core.upkeep(&here, &mut last_expire).await {
                Ok(waiting) => waiting,
                Err(e) => {
                    warn!(error = %e, "notice upkeep failed; will retry");
                    here
                }
            }
        } else {
            let due: HashSet<u32> = std::mem::take(&mut *lock(&core.due));
            due.into_iter().collect()
        };
        let ready = std::mem::take(&mut *lock(&core.ready));
        if !ready.is_empty() {
            if let Err(e) = core.deliver_ready(ready).await {
                warn!(error = %e, "notice delivery failed; will retry");
            }
        }
        if let Err(e) = core.deliver_notices(characters).await {
            warn!(error = %e, "notice delivery failed; will retry");
        }
        let poll = tokio::time::sleep_until(next_poll.into());
        tokio::select! {
            _ = core.wake.notified() => {}
            _ = poll => {}
            _ = cancel.cancelled() => return,
        }
    }
}
