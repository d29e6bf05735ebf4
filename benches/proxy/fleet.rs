//! Fleets: N connected sessions through one target, measured in interleaved slices.

use super::*;

/// What was measured of one target.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// One-way latencies, ns, sorted: both directions, then each.
    pub(crate) latency: Vec<u32>,
    pub(crate) c2s: Vec<u32>,
    pub(crate) s2c: Vec<u32>,
    /// Delivered in the throughput slices: packets, bytes, seconds, and what the
    /// proxy's threads used meanwhile.
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) secs: f64,
    pub(crate) cpu_ns: u64,
    /// Measured latency seconds and the CPU ns of the gateway, proxy and worldserver
    /// threads meanwhile: whether the scripts had headroom.
    pub(crate) latency_secs: f64,
    pub(crate) latency_cpu_ns: [u64; 3],
    /// The latency slices' recording windows (`now_ns`), and each slice's p99 (us,
    /// both directions): their median shrugs off one slice hit by a stall of the
    /// whole machine, which the pooled p99 does not.
    pub(crate) windows: Vec<(u64, u64)>,
    pub(crate) slice_p99: Vec<f64>,
    /// Crypt key lookups that found their key while the fleet connected.
    pub(crate) keys_found: Option<f64>,
}

impl Outcome {
    pub(crate) fn packets_per_sec(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.packets as f64 / self.secs)
    }

    pub(crate) fn bytes_per_sec(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.bytes as f64 / self.secs)
    }

    pub(crate) fn cpu_per_packet_ns(&self) -> Option<f64> {
        (self.packets > 0).then(|| self.cpu_ns as f64 / self.packets as f64)
    }

    /// The median of the slices' p99, us.
    pub(crate) fn p99_slice_median(&self) -> Option<f64> {
        let mut p99s = self.slice_p99.clone();
        p99s.sort_by(f64::total_cmp);
        p99s.get(p99s.len() / 2).copied()
    }

    pub(crate) fn cpu_share(&self) -> Option<f64> {
        (self.secs > 0.0).then(|| self.cpu_ns as f64 / 1e9 / self.secs)
    }
}

/// N sessions through one target, with their worldserver and proxy.
pub(crate) struct Fleet {
    pub(crate) target: Target,
    pub(crate) n: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) phase: watch::Sender<Phase>,
    pub(crate) sessions: Vec<JoinHandle<Result<Vec<Sample>>>>,
    pub(crate) world: JoinHandle<()>,
    pub(crate) proxy: Proxy,
    pub(crate) outcome: Outcome,
}

pub(crate) type Metrics = metrics_exporter_prometheus::PrometheusHandle;

pub(crate) fn keys_found(handle: Option<&Metrics>) -> Option<f64> {
    let text = handle?.render();
    Some(tc9_testkit::metric_sum(
        &text,
        "tc9_sidecar_crypt_key_lookups_total",
        &["result=\"found\""],
    ))
}

pub(crate) struct Bench<'a> {
    pub(crate) proxy_rt: &'a Runtime,
    pub(crate) gateway_rt: &'a Runtime,
    pub(crate) world_rt: &'a Runtime,
    pub(crate) settings: &'a Settings,
    pub(crate) auth_db_url: String,
    pub(crate) metrics: Option<Metrics>,
}

impl Bench<'_> {
    /// Starts the worldserver and the proxy, connects `n` sessions through it and
    /// waits until every one is through its handshake.
    pub(crate) fn open(&self, target: Target, link: Link, n: usize) -> Result<Fleet> {
        let shared = Arc::new(Shared::default());
        let listener = self.world_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let world_addr = listener.local_addr()?;
        let world = self
            .world_rt
            .spawn(worldserver(listener, link, Arc::clone(&shared)));
        let (addr, proxy) =
            start_proxy(self.proxy_rt, target, link, world_addr, &self.auth_db_url)?;
        let found_before = keys_found(self.metrics.as_ref());
        let (phase, phase_rx) = watch::channel(Phase::Idle);
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let period = Duration::from_secs_f64(1.0 / self.settings.rate_per_session(n));
        let sessions: Vec<JoinHandle<Result<Vec<Sample>>>> = (0..n)
            .map(|index| {
                self.gateway_rt.spawn(session(Session {
                    index,
                    target: addr,
                    link,
                    shared: Arc::clone(&shared),
                    phase: phase_rx.clone(),
                    window: Settings::window(n),
                    period,
                    gate: Arc::clone(&gate),
                }))
            })
            .collect();
        let mut fleet = Fleet {
            target,
            n,
            shared,
            phase,
            sessions,
            world,
            proxy,
            outcome: Outcome::default(),
        };
        let ready = self.gateway_rt.block_on(async {
            let deadline = Instant::now() + STEP;
            while fleet.shared.ready.load(Ordering::SeqCst) < n {
                if Instant::now() > deadline || fleet.sessions.iter().any(JoinHandle::is_finished) {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            true
        });
        if !ready {
            let got = fleet.shared.ready.load(Ordering::SeqCst);
            let why = self.close(fleet).err().map(|e| format!(": {e:#}"));
            bail!(
                "only {got} of {n} sessions got through their handshake{}",
                why.unwrap_or_default()
            );
        }
        if let (Some(before), Some(after)) = (found_before, keys_found(self.metrics.as_ref())) {
            fleet.outcome.keys_found = Some(after - before);
        }
        Ok(fleet)
    }

    /// One latency slice: paced requests, samples kept after the warm-up.
    pub(crate) fn latency_slice(&self, fleet: &mut Fleet) {
        let outcome = &mut fleet.outcome;
        self.gateway_rt.block_on(async {
            fleet.phase.send_replace(Phase::Paced);
            tokio::time::sleep(self.settings.warm).await;
            let cpu0 = THREADS.map(thread_cpu_ns);
            let t0 = Instant::now();
            let from = now_ns();
            fleet.shared.recording.store(true, Ordering::SeqCst);
            tokio::time::sleep(self.settings.slice).await;
            fleet.shared.recording.store(false, Ordering::SeqCst);
            outcome.windows.push((from, now_ns()));
            outcome.latency_secs += t0.elapsed().as_secs_f64();
            let cpu1 = THREADS.map(thread_cpu_ns);
            for k in 0..THREADS.len() {
                outcome.latency_cpu_ns[k] += cpu1[k].saturating_sub(cpu0[k]);
            }
            fleet.phase.send_replace(Phase::Idle);
            // Let the last requests land before another fleet's slice starts.
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
    }

    /// One throughput slice: full windows, counted after the warm-up.
    pub(crate) fn throughput_slice(&self, fleet: &mut Fleet) {
        let outcome = &mut fleet.outcome;
        let shared = &fleet.shared;
        let phase = &fleet.phase;
        self.gateway_rt.block_on(async {
            phase.send_replace(Phase::Saturate);
            tokio::time::sleep(self.settings.warm).await;
            let (p0, b0) = shared.delivered();
            let cpu0 = thread_cpu_ns("tc9-proxy");
            let t0 = Instant::now();
            tokio::time::sleep(self.settings.slice).await;
            let (p1, b1) = shared.delivered();
            let cpu1 = thread_cpu_ns("tc9-proxy");
            outcome.secs += t0.elapsed().as_secs_f64();
            outcome.packets += p1 - p0;
            outcome.bytes += b1 - b0;
            outcome.cpu_ns += cpu1.saturating_sub(cpu0);
            phase.send_replace(Phase::Idle);
            // Drain the windows before another fleet's slice starts.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
    }

    /// Half-closes every session, reads them to the end, stops the proxy.
    pub(crate) fn close(&self, fleet: Fleet) -> Result<Outcome> {
        let Fleet {
            n,
            shared,
            phase,
            sessions,
            world,
            proxy,
            mut outcome,
            ..
        } = fleet;
        phase.send_replace(Phase::Stop);
        let mut s2c: Vec<Sample> = Vec::new();
        let failures = self.gateway_rt.block_on(async {
            let mut failures = Vec::new();
            for task in sessions {
                match tokio::time::timeout(STEP, task).await {
                    Ok(Ok(Ok(samples))) => s2c.extend(samples),
                    Ok(Ok(Err(e))) => failures.push(format!("{e:#}")),
                    Ok(Err(e)) => failures.push(format!("session panicked: {e}")),
                    Err(_) => failures.push("session did not end".to_owned()),
                }
            }
            let deadline = Instant::now() + STEP;
            while shared.world_done.load(Ordering::SeqCst) < shared.ready.load(Ordering::SeqCst)
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failures
        });
        world.abort();
        stop_proxy(self.proxy_rt, proxy)?;
        if let Some(first) = failures.first() {
            bail!("{} of {n} sessions failed; first: {first}", failures.len());
        }
        let c2s = std::mem::take(&mut *shared.c2s_samples.lock().unwrap());
        for &(from, to) in &outcome.windows {
            let mut slice: Vec<u32> = c2s
                .iter()
                .chain(&s2c)
                .filter(|(at, _)| (from..=to).contains(at))
                .map(|&(_, ns)| ns)
                .collect();
            slice.sort_unstable();
            if let Some(p99) = percentile(&slice, 0.99) {
                outcome.slice_p99.push(p99);
            }
        }
        outcome.c2s = c2s.iter().map(|&(_, ns)| ns).collect();
        outcome.s2c = s2c.iter().map(|&(_, ns)| ns).collect();
        outcome.latency = outcome.c2s.iter().chain(&outcome.s2c).copied().collect();
        for samples in [&mut outcome.latency, &mut outcome.c2s, &mut outcome.s2c] {
            samples.sort_unstable();
        }
        Ok(outcome)
    }

    /// Measures `targets` at once, interleaving their slices round by round.
    pub(crate) fn measure(
        &self,
        link: Link,
        n: usize,
        targets: &[Target],
    ) -> Result<Vec<(Target, Outcome)>> {
        let mut fleets = Vec::new();
        for &target in targets {
            let fleet = self.open(target, link, n).with_context(|| {
                format!("{} {n} sessions through {}", link.name(), target.name())
            })?;
            if link == Link::Crypt && target == Target::Sidecar {
                match fleet.outcome.keys_found {
                    Some(found) if found as usize == n => {}
                    Some(found) => println!(
                        "WARNING: wotlk-crypt {n} sessions: the sidecar found only {found} of {n} session keys; \
                         the other sessions are copied as opaque bytes (see the sidecar's warnings on stderr)"
                    ),
                    None => println!("note: metrics off, wotlk-crypt key lookups not verified"),
                }
            }
            fleets.push(fleet);
        }
        let slices = self.settings.slices();
        for round in 0..slices {
            // Rotate the order so that no target always follows the same one.
            for k in 0..fleets.len() {
                let i = (round + k) % fleets.len();
                self.latency_slice(&mut fleets[i]);
            }
        }
        for round in 0..slices {
            let proxied: Vec<usize> = (0..fleets.len())
                .filter(|&i| fleets[i].target != Target::Direct)
                .collect();
            for k in 0..proxied.len() {
                let i = proxied[(round + k) % proxied.len()];
                self.throughput_slice(&mut fleets[i]);
            }
        }
        fleets
            .into_iter()
            .map(|fleet| Ok((fleet.target, self.close(fleet)?)))
            .collect()
    }
}
