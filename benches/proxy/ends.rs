//! The scripted worldserver and gateway sessions, and what they share in one run.

use super::*;

/// A packet and byte count, alone on its cache line: the gateway and worldserver
/// threads each update their own.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Counter {
    pub(crate) packets: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl Counter {
    pub(crate) fn add(&self, bytes: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Counters, samples and the phase of one run.
#[derive(Default)]
pub(crate) struct Shared {
    /// Latency samples are kept while set.
    pub(crate) recording: AtomicBool,
    /// Requests the worldserver received.
    pub(crate) c2s: Counter,
    /// Answers the gateway sessions received.
    pub(crate) s2c: Counter,
    /// One-way client-to-server latencies (ns) the worldserver measured.
    pub(crate) c2s_samples: Mutex<Vec<Sample>>,
    /// Worldserver connections finished.
    pub(crate) world_done: AtomicUsize,
    /// Sessions through their handshake.
    pub(crate) ready: AtomicUsize,
}

impl Shared {
    pub(crate) fn delivered(&self) -> (u64, u64) {
        (
            self.c2s.packets.load(Ordering::Relaxed) + self.s2c.packets.load(Ordering::Relaxed),
            self.c2s.bytes.load(Ordering::Relaxed) + self.s2c.bytes.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connected, sending nothing.
    Idle,
    Paced,
    Saturate,
    Stop,
}

// ---------------------------------------------------------------------------------
// The scripted worldserver
// ---------------------------------------------------------------------------------

/// Accepts connections and answers every request; runs until aborted.
pub(crate) async fn worldserver(listener: TcpListener, link: Link, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            if let Err(e) = world_connection(stream, link, &shared, &mut samples).await {
                eprintln!("worldserver connection failed: {e:#}");
            }
            shared.c2s_samples.lock().unwrap().extend(samples);
            shared.world_done.fetch_add(1, Ordering::SeqCst);
        });
    }
}

pub(crate) async fn world_connection(
    mut stream: TcpStream,
    link: Link,
    shared: &Shared,
    samples: &mut Vec<Sample>,
) -> Result<()> {
    stream.set_nodelay(true)?;
    let challenge = SmsgAuthChallenge {
        one: 1,
        server_seed: Bytes([0xDE, 0xAD, 0xBE, 0xEF]),
        random: Bytes([7; 32]),
    };
    let frame = Frame::from_message(Origin::Server, &challenge)?;
    stream.write_all(frame.as_bytes()).await?;

    let mut codec = FrameCodec::new(Origin::Client, 0xFFFF);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let auth = read_frame(&mut stream, &mut codec, &mut buf).await?;
    ensure!(
        auth.opcode() == Opcode::CMSG_AUTH_SESSION,
        "expected CMSG_AUTH_SESSION"
    );
    let name = CmsgAuthSession::decode(auth.body())?.account;
    let index: usize = name
        .strip_prefix("BENCH")
        .and_then(|i| i.parse().ok())
        .context("a bench account")?;
    let mut cipher = None;
    if link == Link::Crypt {
        let key = session_key(index);
        codec.set_cipher(Some(HeaderCipher::client_to_server(&key)));
        cipher = Some(HeaderCipher::server_to_client(&key));
    }
    let mut out = BytesMut::with_capacity(64 * 1024);
    put_server_header(
        &mut out,
        &mut cipher,
        Opcode::SMSG_AUTH_RESPONSE.0 as u16,
        AUTH_OK_BODY.len(),
    );
    out.extend_from_slice(&AUTH_OK_BODY);
    stream.write_all(&out).await?;
    out.clear();

    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            break;
        }
        let arrived = now_ns();
        let recording = shared.recording.load(Ordering::Relaxed);
        // Every answer of this batch carries the time the batch is built and written.
        let mut head = [0u8; HEAD];
        head[..8].copy_from_slice(&now_ns().to_le_bytes());
        while let Some(frame) = codec.decode(&mut buf)? {
            shared.c2s.add(frame.len());
            let body = frame.body();
            ensure!(body.len() >= HEAD, "a short request");
            let answer = (u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize)
                .clamp(HEAD, MAX_BODY);
            let kind = body[12];
            if recording && kind == PACED {
                samples.push((arrived, nanos(arrived.saturating_sub(u64_at(body, 4)))));
            }
            let opcode = if answer > 4096 {
                LARGE_ANSWER_OPCODE
            } else {
                ANSWER_OPCODE
            };
            put_server_header(&mut out, &mut cipher, opcode, answer);
            head[8] = kind;
            out.extend_from_slice(&head);
            out.extend_from_slice(&FILLER[..answer - HEAD]);
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
    stream.shutdown().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// The scripted gateway sessions
// ---------------------------------------------------------------------------------

pub(crate) struct Session {
    pub(crate) index: usize,
    pub(crate) target: SocketAddr,
    pub(crate) link: Link,
    pub(crate) shared: Arc<Shared>,
    pub(crate) phase: watch::Receiver<Phase>,
    pub(crate) window: usize,
    pub(crate) period: Duration,
    pub(crate) gate: Arc<Semaphore>,
}

/// Connects, handshakes, then follows the phases; returns the server-to-client
/// latency samples.
pub(crate) async fn session(s: Session) -> Result<Vec<Sample>> {
    let gate = Arc::clone(&s.gate);
    let permit = gate.acquire().await?;
    let (stream, codec, buf, cipher) = handshake(s.target, s.link, s.index).await?;
    drop(permit);
    s.shared.ready.fetch_add(1, Ordering::SeqCst);

    let (read, write) = stream.into_split();
    let credit = Semaphore::new(s.window);
    let (_, samples) = tokio::try_join!(
        writer(&s, write, cipher, &credit),
        reader(&s, read, codec, buf, &credit)
    )?;
    Ok(samples)
}

/// A gateway session's start, as a real one: the challenge in, `CMSG_AUTH_SESSION`
/// for account `BENCH<index>` out, `SMSG_AUTH_RESPONSE` in; the stream, the server
/// codec with what it has buffered, and the client header cipher (crypt mode).
pub(crate) async fn handshake(
    target: SocketAddr,
    link: Link,
    index: usize,
) -> Result<(TcpStream, FrameCodec, BytesMut, Option<HeaderCipher>)> {
    let mut stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let mut codec = FrameCodec::server();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let challenge = read_frame(&mut stream, &mut codec, &mut buf).await?;
    ensure!(
        challenge.opcode() == Opcode::SMSG_AUTH_CHALLENGE,
        "expected SMSG_AUTH_CHALLENGE"
    );
    let mut out = Vec::with_capacity(4096);
    let mut cipher = None;
    put_client_frame(
        &mut out,
        &mut cipher,
        Opcode::CMSG_AUTH_SESSION.0,
        &auth_session(index),
    );
    if link == Link::Crypt {
        let key = session_key(index);
        cipher = Some(HeaderCipher::client_to_server(&key));
        codec.set_cipher(Some(HeaderCipher::server_to_client(&key)));
    }
    stream.write_all(&out).await?;
    let response = read_frame(&mut stream, &mut codec, &mut buf).await?;
    ensure!(
        response.opcode() == Opcode::SMSG_AUTH_RESPONSE && response.body() == AUTH_OK_BODY,
        "expected SMSG_AUTH_RESPONSE, got {response:?}"
    );
    Ok((stream, codec, buf, cipher))
}

pub(crate) async fn writer(
    s: &Session,
    mut io: OwnedWriteHalf,
    mut cipher: Option<HeaderCipher>,
    credit: &Semaphore,
) -> Result<()> {
    let mut phase = s.phase.clone();
    let mut rng = SampleRng::new(s.index as u64 * 7919 + 1);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut ticks: Option<tokio::time::Interval> = None;
    loop {
        let now = *phase.borrow_and_update();
        match now {
            Phase::Idle | Phase::Saturate if ticks.is_some() => ticks = None,
            Phase::Idle => {
                if phase.changed().await.is_err() {
                    break;
                }
            }
            Phase::Paced => {
                let ticks = ticks.get_or_insert_with(|| {
                    let offset = s.period.mul_f64(rng.below(1000) as f64 / 1000.0);
                    let mut ticks =
                        tokio::time::interval_at(tokio::time::Instant::now() + offset, s.period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks
                });
                tokio::select! {
                    _ = ticks.tick() => {
                        let (len, answer) = draw_sizes(&mut rng);
                        out.clear();
                        put_request(&mut out, &mut cipher, len, answer, PACED, now_ns());
                        io.write_all(&out).await?;
                    }
                    changed = phase.changed() => if changed.is_err() { break },
                }
            }
            Phase::Saturate => {
                tokio::select! {
                    permit = credit.acquire() => {
                        permit?.forget();
                        let mut k = 1;
                        while k < s.window {
                            match credit.try_acquire() {
                                Ok(p) => p.forget(),
                                Err(_) => break,
                            }
                            k += 1;
                        }
                        out.clear();
                        for _ in 0..k {
                            let (len, answer) = draw_sizes(&mut rng);
                            put_request(&mut out, &mut cipher, len, answer, SATURATING, 0);
                        }
                        io.write_all(&out).await?;
                    }
                    changed = phase.changed() => if changed.is_err() { break },
                }
            }
            Phase::Stop => break,
        }
    }
    io.shutdown().await?;
    Ok(())
}

pub(crate) async fn reader(
    s: &Session,
    mut io: OwnedReadHalf,
    mut codec: FrameCodec,
    mut buf: BytesMut,
    credit: &Semaphore,
) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    loop {
        if io.read_buf(&mut buf).await? == 0 {
            break;
        }
        let arrived = now_ns();
        let recording = s.shared.recording.load(Ordering::Relaxed);
        while let Some(frame) = codec.decode(&mut buf)? {
            s.shared.s2c.add(frame.len());
            let body = frame.body();
            ensure!(body.len() >= HEAD, "a short answer");
            if body[8] == SATURATING {
                credit.add_permits(1);
            } else if recording {
                samples.push((arrived, nanos(arrived.saturating_sub(u64_at(body, 0)))));
            }
        }
    }
    ensure!(buf.is_empty(), "the stream ended inside a frame");
    Ok(samples)
}
