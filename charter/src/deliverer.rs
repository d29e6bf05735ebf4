//! [`Deliverer`]: the owner's sidecar, as the signing transaction learns it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// The sidecar that will deliver a signature's owner notice, once the owner's
/// lookup, which runs beside the signing transaction, has found it. A store that
/// learns it by the time it records the notice claims the notice for that sidecar
/// in the same transaction, for [`HELD_HOLD`](crate::HELD_HOLD): that sidecar then
/// writes the notice it is handed without a claim of its own.
#[derive(Debug, Clone)]
pub struct Deliverer(Arc<watch::Sender<Lookup>>);

/// Where a [`Deliverer`]'s lookup stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    /// Still running.
    Pending,
    /// Found this sidecar.
    Found(String),
    /// Found nobody, or failed.
    Nobody,
}

impl Default for Deliverer {
    fn default() -> Self {
        Deliverer(Arc::new(watch::Sender::new(Lookup::Pending)))
    }
}

impl Deliverer {
    /// How long a store waits for a lookup still running when it records the
    /// notice: about one bus round trip, so the owner's sidecar is spared a claim
    /// (a flushed commit) at the cost of at most this to the signer.
    pub const WAIT: Duration = Duration::from_millis(1);

    /// The sidecar, if the lookup has found it yet.
    pub fn known(&self) -> Option<String> {
        match &*self.0.borrow() {
            Lookup::Found(sidecar) => Some(sidecar.clone()),
            Lookup::Pending | Lookup::Nobody => None,
        }
    }

    /// The sidecar, waiting up to [`WAIT`](Self::WAIT) for a lookup still running.
    pub async fn known_soon(&self) -> Option<String> {
        let mut lookup = self.0.subscribe();
        let _ = tokio::time::timeout(Self::WAIT, lookup.wait_for(|l| *l != Lookup::Pending)).await;
        self.known()
    }

    /// Records what the lookup found (`None`: nobody, or it failed); the first
    /// answer stands.
    pub fn found(&self, sidecar: Option<String>) {
        self.0.send_if_modified(|lookup| {
            if *lookup != Lookup::Pending {
                return false;
            }
            *lookup = sidecar.map_or(Lookup::Nobody, Lookup::Found);
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_store_waits_briefly_for_a_lookup_still_running() {
        let found = Deliverer::default();
        found.found(Some("A".to_owned()));
        found.found(Some("B".to_owned()));
        assert_eq!(found.known_soon().await.as_deref(), Some("A"));

        let nobody = Deliverer::default();
        nobody.found(None);
        let started = Instant::now();
        assert_eq!(nobody.known_soon().await, None);
        assert!(started.elapsed() < Deliverer::WAIT);

        let pending = Deliverer::default();
        let started = Instant::now();
        assert_eq!(pending.known_soon().await, None);
        assert!(started.elapsed() >= Deliverer::WAIT);

        let late = Deliverer::default();
        let finder = late.clone();
        let lookup = tokio::spawn(async move { finder.found(Some("C".to_owned())) });
        assert_eq!(late.known_soon().await.as_deref(), Some("C"));
        lookup.await.unwrap();
    }
}
