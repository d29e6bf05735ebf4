//! A TCP relay toward one database server that a fault test breaks instead of the
//! shared server: every relayed connection dropped and new ones refused, or every
//! byte held back (a blackhole), or every request slowed, then mended.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{eventually, lock, STEP};

/// How a [`Relay`] is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Every relayed connection is reset; new ones are accepted and reset at once.
    Refuse,
    /// Every relayed connection stops moving bytes (its sockets stay open); new ones
    /// are accepted and never answered. A network partition.
    Blackhole,
}

struct RelayState {
    cut: Option<Cut>,
    /// Cancelled to stop every connection relayed so far.
    generation: CancellationToken,
    /// Connections still moving bytes (or connecting).
    live: usize,
    /// Sockets a blackhole holds open and unanswered, reset at the restore.
    held: Vec<TcpStream>,
    /// New connections still to be refused before relaying resumes.
    refuse_next: u32,
}

/// A TCP relay toward one database server; see [`Cut`].
pub struct Relay {
    /// Where the sidecar connects instead of the server.
    pub addr: SocketAddr,
    state: Arc<Mutex<RelayState>>,
    accepted: Arc<AtomicU64>,
    /// How long each read toward the server waits before it goes on, in µs.
    delay: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Relay {
    /// A relay toward `target` (`host:port`).
    pub async fn start(target: &str) -> Result<Relay> {
        let target: SocketAddr = target.parse()?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(RelayState {
            cut: None,
            generation: CancellationToken::new(),
            live: 0,
            held: Vec::new(),
            refuse_next: 0,
        }));
        let accepted = Arc::new(AtomicU64::new(0));
        let delay = Arc::new(AtomicU64::new(0));
        let (st, count, slow) = (
            Arc::clone(&state),
            Arc::clone(&accepted),
            Arc::clone(&delay),
        );
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let mut state = lock(&st);
                let refuse_one = state.refuse_next > 0;
                state.refuse_next = state.refuse_next.saturating_sub(1);
                match state.cut {
                    _ if refuse_one => {
                        let _ = client.set_zero_linger();
                        drop(client);
                    }
                    Some(Cut::Refuse) => {
                        let _ = client.set_zero_linger();
                        drop(client);
                    }
                    Some(Cut::Blackhole) => state.held.push(client),
                    None => {
                        state.live += 1;
                        let generation = state.generation.clone();
                        tokio::spawn(relay_connection(
                            client,
                            target,
                            generation,
                            Arc::clone(&st),
                            Arc::clone(&slow),
                        ));
                    }
                }
            }
        });
        Ok(Relay {
            addr,
            state,
            accepted,
            delay,
            task,
        })
    }

    /// Holds every read toward the server back by `delay` before it goes on, on
    /// the connections relayed now and later (zero: no delay). A slow network.
    pub fn slow(&self, delay: Duration) {
        self.delay
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// Breaks the relay; returns once no relayed connection moves a byte any more.
    pub async fn cut(&self, how: Cut) -> Result<()> {
        {
            let mut state = lock(&self.state);
            state.cut = Some(how);
            state.generation.cancel();
            state.generation = CancellationToken::new();
        }
        eventually("every relayed connection stopped", STEP, || {
            let stopped = lock(&self.state).live == 0;
            async move { Ok(stopped.then_some(())) }
        })
        .await
    }

    /// Mends the relay: the sockets a blackhole held are reset (before this returns),
    /// new connections are relayed.
    pub fn restore(&self) {
        let mut state = lock(&self.state);
        state.cut = None;
        for held in state.held.drain(..) {
            let _ = held.set_zero_linger();
        }
    }

    /// Refuses the next `n` new connections (reset at once), then relays again.
    pub fn refuse_next(&self, n: u32) {
        lock(&self.state).refuse_next = n;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        self.restore();
        lock(&self.state).generation.cancel();
    }
}

/// Relays one connection until either side closes or its generation is cut: a
/// refusal resets both sides, a blackhole hands them to the relay to hold.
async fn relay_connection(
    mut client: TcpStream,
    target: SocketAddr,
    generation: CancellationToken,
    state: Arc<Mutex<RelayState>>,
    delay: Arc<AtomicU64>,
) {
    let mut sockets = Vec::new();
    let server = tokio::select! {
        server = TcpStream::connect(target) => server.ok(),
        _ = generation.cancelled() => None,
    };
    let mut cut = server.is_none();
    if let Some(mut server) = server {
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        cut = tokio::select! {
            _ = relay_both(&mut client, &mut server, &delay) => false,
            _ = generation.cancelled() => true,
        };
        sockets.push(server);
    }
    sockets.push(client);
    let mut state = lock(&state);
    state.live -= 1;
    if cut && state.cut == Some(Cut::Blackhole) {
        state.held.extend(sockets);
    } else if cut {
        for socket in &sockets {
            let _ = socket.set_zero_linger();
        }
    }
}

/// Moves bytes both ways until both sides are done or one fails; reads from the
/// client wait out the relay's delay first.
async fn relay_both(client: &mut TcpStream, server: &mut TcpStream, delay: &AtomicU64) {
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let _ = tokio::try_join!(
        pump(&mut from_client, &mut to_server, Some(delay)),
        pump(&mut from_server, &mut to_client, None),
    );
}

/// Copies `from` to `to`, each read held back by `delay`, then shuts `to` down.
async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    delay: Option<&AtomicU64>,
) -> std::io::Result<()> {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        let wait = delay.map_or(0, |d| d.load(Ordering::Relaxed));
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait)).await;
        }
        to.write_all(&buf[..n]).await?;
    }
}
