//! The realm's guild-creation lease: one guild is created (and one guild charter
//! bought) at a time across the realm's worldservers, so that ids read from the
//! database stay unique. Held through the bus (or, without one, in this process),
//! bounded in time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::handler::{Core, Failure};
use crate::ports::{CharterStore, Directory};

/// How often a busy lease is asked for again.
pub(super) const RETRY: Duration = Duration::from_millis(25);

/// A lease holder no other holder of the realm uses.
pub(super) fn holder(session: u64, petition: u32) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{session}-{petition}-{nanos}", std::process::id())
}

/// Asks for the realm's guild-creation lease until it is ours or half the
/// resolution's time is spent; whether it was taken.
pub(super) async fn take<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    holder: &str,
) -> Result<bool, Failure> {
    let Some(bus) = &core.bus else {
        return Ok(core.local_lease.take(holder, core.settings.turn_in_lease));
    };
    let deadline = Instant::now() + core.settings.timeout / 2;
    loop {
        if bus
            .take_turn_in_lease(holder, core.settings.turn_in_lease)
            .await?
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Gives the lease back if `holder` holds it.
pub(crate) async fn release<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    holder: &str,
) -> Result<(), Failure> {
    match &core.bus {
        Some(bus) => core.bounded(bus.release_turn_in_lease(holder)).await?,
        None => core.local_lease.release(holder),
    }
    Ok(())
}
