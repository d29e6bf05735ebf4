//! The bus's background work: presence kept fresh and re-announced after any
//! failure (the bus repairs itself, start-up included), wake-ups listened for, and
//! the bus's own events (guild changes) applied. Every bus call has a time limit, so
//! a blackholed bus stalls none of it for long; notices never wait on any of it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::handler::{Core, Failure, Presence};
use crate::metrics as m;
use crate::outbox::EXPIRE_EVERY;
use crate::ports::{CharterStore, Directory, EventKind, Wakeup};

/// First retry delay after the bus failed; doubled up to the heartbeat interval.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Refreshes this sidecar's presence, repairs it after a failure, until `cancel`.
pub(crate) async fn keep_presence<S: CharterStore, D: Directory>(
    core: Arc<Core<S, D>>,
    bus: D,
    cancel: CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    loop {
        let up = beat(&core, &bus).await;
        let was_up = core.bus_up.swap(up, Ordering::SeqCst);
        metrics::gauge!(m::BUS_UP).set(if up { 1.0 } else { 0.0 });
        let pause = if up {
            if !was_up {
                info!("bus reachable again; presence re-announced");
            }
            retry = FIRST_RETRY;
            core.settings.heartbeat
        } else {
            if was_up {
                warn!("bus lost; retrying with backoff");
            }
            let pause = retry;
            retry = (retry * 2).min(core.settings.heartbeat.max(FIRST_RETRY));
            pause
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = core.presence_dirty.notified() => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// One heartbeat; after an earlier failure, every local character re-announced.
async fn beat<S: CharterStore, D: Directory>(core: &Core<S, D>, bus: &D) -> bool {
    if let Err(e) = core.bounded(bus.heartbeat()).await {
        debug!(error = %e, "bus heartbeat failed");
        core.stale_presence.store(true, Ordering::SeqCst);
        return false;
    }
    // Who is here is read under the lock, so no update applied after the read can
    // be undone by the announcement (a login lost, a logout brought back).
    let _writing = core.presence_writes.lock().await;
    if core.stale_presence.swap(false, Ordering::SeqCst) {
        let here = core.local.characters();
        if let Err(e) = core.bounded(bus.announce(&here)).await {
            debug!(error = %e, "re-announcing presence failed");
            core.stale_presence.store(true, Ordering::SeqCst);
            return false;
        }
        metrics::counter!(m::PRESENCE_REANNOUNCED_TOTAL).increment(1);
    }
    true
}

/// Applies presence updates in order, until `cancel`. While presence is stale
/// (an update failed) updates are skipped: the re-announcement covers them, as it
/// reads who is here after them (both hold [`Core::presence_writes`]).
pub(crate) async fn publish_presence<S: CharterStore, D: Directory>(
    core: Arc<Core<S, D>>,
    bus: D,
    mut queue: mpsc::UnboundedReceiver<Presence>,
    cancel: CancellationToken,
) {
    loop {
        let update = tokio::select! {
            update = queue.recv() => update,
            _ = cancel.cancelled() => return,
        };
        let Some(update) = update else {
            return;
        };
        let _writing = core.presence_writes.lock().await;
        if core.stale_presence.load(Ordering::SeqCst) {
            continue;
        }
        let published = match update {
            Presence::Online(character) => core.bounded(bus.set_online(character)).await,
            Presence::Offline(character) => core.bounded(bus.set_offline(character)).await,
        };
        if let Err(e) = published {
            warn!(?update, error = %e, "presence not published; it will be announced again");
            core.stale_presence.store(true, Ordering::SeqCst);
            core.presence_dirty.notify_one();
        }
    }
}

/// Listens for wake-ups, reconnecting with backoff, until `cancel`: a notice's
/// character is made due, a bus event has the events applied.
pub(crate) async fn listen<S: CharterStore, D: Directory>(
    core: Arc<Core<S, D>>,
    bus: D,
    cancel: CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    loop {
        let listener = tokio::select! {
            listener = core.bounded(bus.listen()) => listener,
            _ = cancel.cancelled() => return,
        };
        match listener {
            Ok(mut listener) => {
                retry = FIRST_RETRY;
                // Events published while nobody listened; presence repaired now, not
                // after the keeper's backoff, which may have grown during the outage.
                core.events_due.notify_one();
                core.presence_dirty.notify_one();
                loop {
                    let woken = tokio::select! {
                        woken = listener.notified() => woken,
                        _ = cancel.cancelled() => return,
                    };
                    match woken {
                        Some(Wakeup::Notice {
                            ready: Some(notice),
                            held,
                            ..
                        }) => core.ready(notice, held),
                        Some(Wakeup::Notice { character, .. }) => core.due(character),
                        Some(Wakeup::Events) => core.events_due.notify_one(),
                        None => break,
                    }
                }
                debug!("bus listener lost; reconnecting");
            }
            Err(e) => debug!(error = %e, "bus listen failed; retrying"),
        }
        // Whatever broke the listener may have broken the rest: check now.
        core.presence_dirty.notify_one();
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = cancel.cancelled() => return,
        }
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

/// Applies the bus's events addressed to this sidecar, woken or polled, until
/// `cancel`.
pub(crate) async fn apply_events<S: CharterStore, D: Directory>(
    core: Arc<Core<S, D>>,
    bus: D,
    cancel: CancellationToken,
) {
    let mut last_expire: Option<Instant> = None;
    loop {
        if let Err(e) = apply_pending(&core, &bus, &mut last_expire).await {
            debug!(error = %e, "bus events not applied; will retry");
        }
        tokio::select! {
            _ = core.events_due.notified() => {}
            _ = tokio::time::sleep(core.settings.poll) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// Applies and marks every pending bus event, after deleting those past their TTL
/// (at most every [`EXPIRE_EVERY`]). Each kind is idempotent (a guild change drops
/// caches), so an event applied twice after a crash does no harm; a kind this
/// sidecar does not know is marked and skipped, blocking nothing.
async fn apply_pending<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    bus: &D,
    last_expire: &mut Option<Instant>,
) -> Result<(), Failure> {
    if last_expire.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
        core.bounded(bus.expire(core.settings.event_ttl)).await?;
        *last_expire = Some(Instant::now());
    }
    for event in core.bounded(bus.pending(&[], 256)).await? {
        match &event.kind {
            EventKind::GuildChanged => core.guilds.clear(),
            other => {
                warn!(kind = %other, id = event.id, "bus event of a kind not applied here; skipped")
            }
        }
        core.bounded(bus.mark_delivered(event.id)).await?;
        metrics::counter!(m::OUTBOX_DELIVERED_TOTAL, "kind" => m::event_label(&event.kind))
            .increment(1);
    }
    Ok(())
}
