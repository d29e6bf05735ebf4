//! The directory and outbox of the sidecars of one process.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tc9_charter::{BackendError, Directory, Event, EventKind, Listener, Notice, Wakeup};
use tokio::sync::mpsc;

use super::{lock, World};

#[derive(Debug)]
struct Stored {
    event: Event,
    target: String,
    created: Instant,
    delivered: bool,
}

#[derive(Debug, Default)]
struct Hub {
    online: HashMap<u32, String>,
    sidecars: BTreeSet<String>,
    outbox: Vec<Stored>,
    next_id: i64,
    wakers: HashMap<String, Vec<mpsc::Sender<Wakeup>>>,
    /// The guild-creation lease: holder and expiry.
    lease: Option<(String, Instant)>,
}

impl Hub {
    /// Wakes `target`'s listeners.
    fn wake(&mut self, target: &str, wakeup: Wakeup) {
        if let Some(wakers) = self.wakers.get_mut(target) {
            wakers.retain(|w| !w.is_closed());
            for w in wakers.iter() {
                let _ = w.try_send(wakeup.clone());
            }
        }
    }
}

/// The directory and outbox of the sidecars of one process.
#[derive(Debug, Clone, Default)]
pub struct MemoryRealm {
    hub: Arc<Mutex<Hub>>,
}

impl MemoryRealm {
    /// A new, empty realm.
    pub fn new() -> MemoryRealm {
        MemoryRealm::default()
    }

    /// The realm as seen by `sidecar`, which joins it.
    pub fn join(&self, sidecar: &str) -> MemoryBus {
        lock(&self.hub).sidecars.insert(sidecar.to_owned());
        MemoryBus {
            hub: Arc::clone(&self.hub),
            sidecar: sidecar.to_owned(),
        }
    }

    /// Records characters behind sidecars of a world file.
    pub fn load(&self, world: &World) {
        let mut hub = lock(&self.hub);
        for o in &world.online {
            hub.sidecars.insert(o.sidecar.clone());
            hub.online.insert(o.character, o.sidecar.clone());
        }
    }

    /// Every event ever published, in order: `(target sidecar, event, delivered)`.
    pub fn events(&self) -> Vec<(String, Event, bool)> {
        lock(&self.hub)
            .outbox
            .iter()
            .map(|s| (s.target.clone(), s.event.clone(), s.delivered))
            .collect()
    }
}

/// One sidecar's handle on a [`MemoryRealm`].
#[derive(Debug, Clone)]
pub struct MemoryBus {
    hub: Arc<Mutex<Hub>>,
    sidecar: String,
}

impl MemoryBus {
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Hub) -> T,
    ) -> impl Future<Output = Result<T, BackendError>> + Send {
        let value = f(&mut lock(&self.hub));
        async move { Ok(value) }
    }
}

impl Directory for MemoryBus {
    fn heartbeat(&self) -> impl Future<Output = Result<(), BackendError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            hub.sidecars.insert(me);
        })
    }

    fn set_online(&self, character: u32) -> impl Future<Output = Result<(), BackendError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            hub.online.insert(character, me);
        })
    }

    fn set_offline(&self, character: u32) -> impl Future<Output = Result<(), BackendError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            if hub.online.get(&character) == Some(&me) {
                hub.online.remove(&character);
            }
        })
    }

    fn locate(
        &self,
        character: u32,
    ) -> impl Future<Output = Result<Option<String>, BackendError>> + Send {
        self.with(move |hub| hub.online.get(&character).cloned())
    }

    fn live_sidecars(&self) -> impl Future<Output = Result<Vec<String>, BackendError>> + Send {
        self.with(|hub| hub.sidecars.iter().cloned().collect())
    }

    fn publish(
        &self,
        target: &str,
        character: Option<u32>,
        kind: &EventKind,
        payload: &[u8],
    ) -> impl Future<Output = Result<i64, BackendError>> + Send {
        let (target, kind, payload) = (target.to_owned(), kind.clone(), payload.to_vec());
        self.with(move |hub| {
            hub.next_id += 1;
            let id = hub.next_id;
            hub.outbox.push(Stored {
                event: Event {
                    id,
                    character,
                    kind,
                    payload,
                },
                target: target.clone(),
                created: Instant::now(),
                delivered: false,
            });
            hub.wake(&target, Wakeup::Events);
            id
        })
    }

    fn pending(
        &self,
        characters: &[u32],
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Event>, BackendError>> + Send {
        let me = self.sidecar.clone();
        let characters = characters.to_vec();
        self.with(move |hub| {
            hub.outbox
                .iter()
                .filter(|s| s.target == me && !s.delivered)
                .filter(|s| s.event.character.is_none_or(|c| characters.contains(&c)))
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|s| s.event.clone())
                .collect()
        })
    }

    fn mark_delivered(&self, id: i64) -> impl Future<Output = Result<bool, BackendError>> + Send {
        self.with(
            move |hub| match hub.outbox.iter_mut().find(|s| s.event.id == id) {
                Some(s) if !s.delivered => {
                    s.delivered = true;
                    true
                }
                _ => false,
            },
        )
    }

    fn expire(&self, age: Duration) -> impl Future<Output = Result<u64, BackendError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            let mut given_up = 0;
            hub.outbox.retain(|s| {
                let expired = s.target == me && s.created.elapsed() > age;
                if expired && !s.delivered {
                    given_up += 1;
                }
                !expired
            });
            given_up
        })
    }

    fn backlog(&self) -> impl Future<Output = Result<(i64, f64), BackendError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            let waiting: Vec<&Stored> = hub
                .outbox
                .iter()
                .filter(|s| s.target == me && !s.delivered)
                .collect();
            let lag = waiting
                .iter()
                .map(|s| s.created.elapsed().as_secs_f64())
                .fold(0.0, f64::max);
            (waiting.len() as i64, lag)
        })
    }

    fn listen(&self) -> impl Future<Output = Result<Listener, BackendError>> + Send {
        let me = self.sidecar.clone();
        self.with(move |hub| {
            let (wake, woken) = mpsc::channel(64);
            hub.wakers.entry(me).or_default().push(wake);
            Listener::new(woken, None)
        })
    }

    fn wake(
        &self,
        sidecar: &str,
        character: u32,
        ready: Option<&Notice>,
        held: bool,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let target = sidecar.to_owned();
        let ready = ready.cloned();
        let wakeup = Wakeup::Notice {
            character,
            held: held && ready.is_some(),
            ready,
        };
        self.with(move |hub| hub.wake(&target, wakeup))
    }

    fn announce(
        &self,
        characters: &[u32],
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let me = self.sidecar.clone();
        let characters = characters.to_vec();
        self.with(move |hub| {
            hub.online
                .retain(|c, sidecar| *sidecar != me || characters.contains(c));
            for c in characters {
                hub.online.insert(c, me.clone());
            }
        })
    }

    fn take_turn_in_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send {
        let holder = holder.to_owned();
        self.with(move |hub| {
            let free = hub
                .lease
                .as_ref()
                .is_none_or(|(held_by, until)| *until < Instant::now() || *held_by == holder);
            if free {
                hub.lease = Some((holder, Instant::now() + ttl));
            }
            free
        })
    }

    fn release_turn_in_lease(
        &self,
        holder: &str,
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let holder = holder.to_owned();
        self.with(move |hub| {
            if hub
                .lease
                .as_ref()
                .is_some_and(|(held_by, _)| *held_by == holder)
            {
                hub.lease = None;
            }
        })
    }
}
