//! Where a character plays, and the notices hurried there: a wake-up of the
//! sidecar it plays behind, carrying the notice when it can.

use std::sync::Arc;

use tc9_codec::Frame;
use tokio::task::JoinHandle;
use tracing::{debug, warn, Instrument};

use crate::handler::{Core, Failure};
use crate::outbox;
use crate::ports::{CharterStore, Deliverer, Directory};

impl<S: CharterStore, D: Directory> Core<S, D> {
    /// Where `character` plays: here, behind the sidecar the bus names, or nowhere
    /// this sidecar can tell.
    pub(crate) async fn whereabouts(&self, character: u32) -> Result<Whereabouts, Failure> {
        if self.local.get(character).is_some() {
            return Ok(Whereabouts::Here);
        }
        let Some(bus) = &self.bus else {
            return Ok(Whereabouts::Offline);
        };
        Ok(match self.bounded(bus.locate(character)).await? {
            Some(sidecar) => Whereabouts::Behind(sidecar),
            None => Whereabouts::Offline,
        })
    }

    /// The sidecar that delivers to a character found at `at`: this one, the one it
    /// plays behind, or none.
    fn sidecar_at<'a>(&'a self, at: &'a Whereabouts) -> Option<&'a str> {
        match at {
            Whereabouts::Here => Some(&self.settings.sidecar_id),
            Whereabouts::Behind(sidecar) => Some(sidecar),
            Whereabouts::Offline => None,
        }
    }

    /// Sends `frames` to `character`, found at `at`, as a notice, and wakes whoever
    /// delivers it. Returns false, and records nothing, if it is offline.
    pub(crate) async fn send_to(
        &self,
        character: u32,
        at: &Whereabouts,
        frames: &[Frame],
    ) -> Result<bool, Failure> {
        if *at == Whereabouts::Offline {
            return Ok(false);
        }
        let payload = outbox::encode_frames(frames);
        self.bounded(self.store.post(character, &payload)).await?;
        if let Err(e) = self.wake_at(character, at, None, None).await {
            warn!(character, error = %e, "could not wake the character's sidecar; its poll will deliver");
        }
        Ok(true)
    }

    /// Has the notices of `character`, found at `at`, delivered now; `ready`, when
    /// given, is one of them in hand, handed to the consumer here or carried by the
    /// wake-up of the sidecar at `at`, and held by that sidecar when it is
    /// `held_for`.
    async fn wake_at(
        &self,
        character: u32,
        at: &Whereabouts,
        ready: Option<crate::ports::Notice>,
        held_for: Option<&str>,
    ) -> Result<(), Failure> {
        let held = held_for.is_some() && held_for == self.sidecar_at(at);
        match (at, &self.bus) {
            (Whereabouts::Here, _) => match ready {
                Some(notice) => self.ready(notice, held),
                None => self.due(character),
            },
            (Whereabouts::Behind(sidecar), Some(bus)) => {
                self.bounded(bus.wake(sidecar, character, ready.as_ref(), held))
                    .await?
            }
            _ => {}
        }
        Ok(())
    }

    /// Where `character` plays, looked up off the caller's path; `deliverer` learns
    /// the sidecar as soon as it is found.
    pub(crate) fn locate(
        self: &Arc<Self>,
        character: u32,
        deliverer: Deliverer,
    ) -> JoinHandle<Result<Whereabouts, Failure>> {
        let core = Arc::clone(self);
        self.tasks.spawn(
            async move {
                let at = core.whereabouts(character).await;
                let sidecar = at.as_ref().ok().and_then(|at| core.sidecar_at(at));
                deliverer.found(sidecar.map(str::to_owned));
                at
            }
            .in_current_span(),
        )
    }

    /// Hurries the delivery of a notice already recorded, off the caller's path
    /// (the notice is delivered by a poll if this fails): the notice goes to the
    /// consumer here, or travels with the wake-up of the owner's sidecar.
    pub(crate) fn hurry(self: &Arc<Self>, told: OwnerNotice) {
        let core = Arc::clone(self);
        self.tasks.spawn(
            async move {
                let OwnerNotice {
                    owner,
                    at,
                    notice,
                    held_for,
                } = told;
                let woken = async {
                    let at = at
                        .await
                        .map_err(|_| Failure::Timeout(core.settings.timeout))??;
                    core.wake_at(owner, &at, notice, held_for.as_deref()).await
                };
                if let Err(e) = woken.await {
                    debug!(owner, error = %e, "could not wake the owner's sidecar; its poll will deliver");
                }
            }
            .in_current_span(),
        );
    }
}

/// A notice recorded for a charter's owner, to be hurried along once the signer
/// is answered.
#[derive(Debug)]
pub(crate) struct OwnerNotice {
    /// The owner.
    pub(crate) owner: u32,
    /// Where the owner plays, being looked up.
    pub(crate) at: JoinHandle<Result<Whereabouts, Failure>>,
    /// The notice, when one was recorded.
    pub(crate) notice: Option<crate::ports::Notice>,
    /// The sidecar the notice was claimed for as it was recorded, if any.
    pub(crate) held_for: Option<String>,
}

/// Where a character plays, as far as this sidecar can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Whereabouts {
    /// In the world behind this sidecar.
    Here,
    /// Behind the sidecar of this id.
    Behind(String),
    /// Nowhere: not here, and the bus has no fresh presence (or there is no bus).
    Offline,
}
