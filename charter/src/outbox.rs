//! This sidecar's side of the realm's outbox: events addressed to it are applied
//! (frames delivered to a local session, guild caches dropped) and marked delivered,
//! at least once and applied once per id, woken by the directory's wake-ups and by
//! a poll.

use std::collections::{HashSet, VecDeque};

use bytes::BytesMut;
use tc9_codec::{Frame, FrameCodec, FrameError};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::handler::{Core, Failure};
use crate::metrics as m;
use crate::ports::{CharterStore, Directory, Event, EventKind};
use crate::presence::lock;

/// Concatenated plain server frames, as stored in a `packets` event.
pub fn encode_frames(frames: &[Frame]) -> Vec<u8> {
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

/// Event ids applied recently, so a redelivered event is not applied twice.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    order: VecDeque<i64>,
    ids: HashSet<i64>,
}

impl Applied {
    const KEEP: usize = 4096;

    fn contains(&self, id: i64) -> bool {
        self.ids.contains(&id)
    }

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

impl<S: CharterStore, D: Directory> Core<S, D> {
    /// Applies one outbox event; false when it must wait (its character is not here).
    async fn apply(&self, event: &Event) -> Result<bool, Failure> {
        match &event.kind {
            EventKind::GuildChanged => {
                self.guilds.clear();
                Ok(true)
            }
            EventKind::Packets => {
                let Some(character) = event.character else {
                    return Ok(true);
                };
                let Some(session) = self.local.get(character) else {
                    return Ok(false);
                };
                let frames = decode_frames(&event.payload)?;
                Ok(session.send_to_gateway(frames).await)
            }
            EventKind::Other(kind) => {
                warn!(kind, id = event.id, "unknown outbox event; skipped");
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
            let fresh = !lock(&self.applied).contains(event.id);
            if fresh && !self.apply(&event).await? {
                continue;
            }
            if lock(&self.applied).first_time(event.id) {
                metrics::counter!(m::OUTBOX_DELIVERED_TOTAL, "kind" => m::event_label(&event.kind))
                    .increment(1);
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
}

/// Listens for wake-ups and polls, delivering events, until `cancel`.
pub(crate) async fn consume<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    bus: D,
    cancel: CancellationToken,
) {
    let mut listener = None;
    loop {
        if listener.is_none() {
            match bus.listen().await {
                Ok(l) => listener = Some(l),
                Err(e) => warn!(error = %e, "bus listen failed; polling"),
            }
        }
        if let Err(e) = core.drain(&bus).await {
            warn!(error = %e, "outbox delivery failed; will retry");
        }
        let poll = core.settings.poll;
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
            _ = core.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
