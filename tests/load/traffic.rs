//! The traffic: the echoing worldserver, and one gateway session with its charter work
//! and the replies it expects.

use super::*;

/// The worldserver: answers each login, echoes each data frame back as the server's
/// roster opcode, and counts any other frame that reached it as leaked.
pub(super) async fn echo_world(listener: TcpListener, totals: Arc<Totals>) {
    while let Ok((stream, _)) = listener.accept().await {
        let totals = Arc::clone(&totals);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::with_capacity(READ_BUFFER, read);
            while let Ok(Some(frame)) = read_frame(&mut read, Origin::Client).await {
                let reply = match frame.opcode() {
                    DATA_UP => Frame::new(Origin::Server, DATA_DOWN, frame.body()).ok(),
                    Opcode::CMSG_PLAYER_LOGIN => Frame::from_message(
                        Origin::Server,
                        &SmsgLoginVerifyWorld {
                            map: 571,
                            x: 5804.0,
                            y: 624.0,
                            z: 647.0,
                            orientation: 1.5,
                        },
                    )
                    .ok(),
                    _ => {
                        totals.leaked_to_world.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                };
                if let Some(reply) = reply {
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
            let _ = write.shutdown().await;
        });
    }
}

// ---------------------------------------------------------------------------------
// One gateway session
// ---------------------------------------------------------------------------------

/// What a session expects back, in order, for the frames it sent.
enum Expected {
    /// The echo of a data frame: its server frame and when it was sent.
    Echo(Frame, Instant),
    /// A sign answer with this result.
    Sign(u32),
    /// A charter query answer.
    Query,
}

/// What a session still expects: echoes in order, answers in order.
#[derive(Default)]
struct Expectations {
    echoes: VecDeque<Expected>,
    answers: VecDeque<Expected>,
}

impl Expectations {
    fn push(&mut self, want: Expected) {
        match want {
            Expected::Echo(..) => self.echoes.push_back(want),
            _ => self.answers.push_back(want),
        }
    }

    /// The expectation `frame` must meet: the next echo for a data frame, else the
    /// next answer.
    fn next_for(&mut self, frame: &Frame) -> Option<Expected> {
        if frame.opcode() == DATA_DOWN {
            self.echoes.pop_front()
        } else {
            self.answers.pop_front()
        }
    }

    fn len(&self) -> usize {
        self.echoes.len() + self.answers.len()
    }
}

/// One gateway session's character, and its charter if it does charter work.
pub(super) struct Session {
    pub(super) index: usize,
    guid: u32,
    /// The charter this session signs and queries, if it does charter work.
    charter: Option<u32>,
}

impl Session {
    /// Session `index`: its character and, for every tenth, a charter to sign.
    pub(super) fn new(index: usize) -> Self {
        let charter = (index % CHARTER_EVERY == 0)
            .then(|| CHARTER_BASE + (index / CHARTER_EVERY / SIGNERS_PER_CHARTER) as u32);
        Session {
            index,
            guid: CHARACTER_BASE + index as u32,
            charter,
        }
    }
}

/// A data body: the session and sequence, then seeded bytes; mostly 10..=200 bytes,
/// one in twenty 4..=40 KiB.
fn data_body(rng: &mut SampleRng, index: usize, seq: u64) -> Vec<u8> {
    let len = if rng.below(20) == 0 {
        4096 + rng.below(40 * 1024 - 4096 + 1) as usize
    } else {
        10 + rng.below(191) as usize
    };
    let mut body = vec![0u8; len];
    body[..2].copy_from_slice(&(index as u16).to_le_bytes());
    body[2..10].copy_from_slice(&seq.to_le_bytes());
    rng.fill(&mut body[10..]);
    body
}

/// Connects and logs the session's character in; returns the stream split.
pub(super) async fn log_in(
    addr: SocketAddr,
    session: &Session,
) -> Result<(Reader, OwnedWriteHalf)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let login = Frame::from_message(
        Origin::Client,
        &CmsgPlayerLogin {
            guid: Guid::player(session.guid),
        },
    )?;
    write.write_all(login.as_bytes()).await?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, read);
    let frame = read_frame(&mut reader, Origin::Server)
        .await?
        .context("closed before the login was verified")?;
    ensure!(
        frame.opcode() == Opcode::SMSG_LOGIN_VERIFY_WORLD,
        "got {frame:?} instead of SMSG_LOGIN_VERIFY_WORLD"
    );
    Ok((reader, write))
}

/// The steady phase of one session, then an orderly close.
pub(super) async fn run_session(
    session: Session,
    mut reader: Reader,
    mut writer: OwnedWriteHalf,
    start: Arc<Barrier>,
    until: Arc<Mutex<Option<Instant>>>,
    totals: Arc<Totals>,
) -> Result<()> {
    let window = Arc::new(Semaphore::new(WINDOW));
    // Echoes come back in order, and so do answers; an answer (from the sidecar)
    // may overtake echoes (from the worldserver).
    let expected: Arc<Mutex<Expectations>> = Arc::default();

    // The reader: every frame must be the next one expected.
    let read_side = {
        let (window, expected, totals) = (
            Arc::clone(&window),
            Arc::clone(&expected),
            Arc::clone(&totals),
        );
        let (guid, charter) = (session.guid, session.charter);
        tokio::spawn(async move {
            let mut frames = 0u64;
            let outcome = async {
                loop {
                    let next = timeout(STEP, read_frame(&mut reader, Origin::Server))
                        .await
                        .with_context(|| format!("nothing for {STEP:?} after {frames} frames"))?;
                    let Some(frame) = next.context("unreadable frame")? else {
                        let left = expected.lock().unwrap().len();
                        ensure!(left == 0, "closed with {left} frames unanswered");
                        return anyhow::Ok(frames);
                    };
                    frames += 1;
                    let want = expected.lock().unwrap().next_for(&frame);
                    let Some(want) = want else {
                        bail!("unexpected {frame:?}");
                    };
                    match want {
                        Expected::Echo(want, sent) => {
                            ensure!(
                                frame.as_bytes() == want.as_bytes(),
                                "echo {frames} differs: got {frame:?}, want {want:?}"
                            );
                            totals.frames_down.fetch_add(1, Ordering::Relaxed);
                            totals
                                .bytes_down
                                .fetch_add(frame.len() as u64, Ordering::Relaxed);
                            totals.record_latency(sent.elapsed());
                        }
                        Expected::Sign(result) => {
                            ensure!(
                                frame.opcode() == Opcode::SMSG_PETITION_SIGN_RESULTS,
                                "got {frame:?} instead of a sign answer"
                            );
                            let got = SmsgPetitionSignResults::decode(frame.body())?;
                            let want = SmsgPetitionSignResults {
                                petition: Guid::item(charter.unwrap_or_default()),
                                signer: Guid::player(guid),
                                result,
                            };
                            ensure!(got == want, "sign answer {got:?}, want {want:?}");
                        }
                        Expected::Query => {
                            ensure!(
                                frame.opcode() == Opcode::SMSG_PETITION_QUERY_RESPONSE,
                                "got {frame:?} instead of a query answer"
                            );
                            let got = SmsgPetitionQueryResponse::decode(frame.body())?;
                            let charter = charter.unwrap_or_default();
                            ensure!(
                                got.petition_id == charter
                                    && got.owner == Guid::player(charter - CHARTER_BASE + 1)
                                    && got.name == format!("Load {charter}"),
                                "query answer {got:?}"
                            );
                        }
                    }
                    window.add_permits(1);
                }
            }
            .await;
            // A failed reader stops the writer too.
            window.close();
            outcome
        })
    };

    start.wait().await;
    let deadline = until.lock().unwrap().context("no deadline")?;
    let mut rng = SampleRng::new(0x10AD_0000 + session.index as u64);
    let mut seq = 0u64;
    let mut signed = false;
    // Sessions start spread over one mean gap.
    tokio::time::sleep(MEAN_GAP.mul_f64(rng.below(1000) as f64 / 1000.0)).await;
    while Instant::now() < deadline {
        let permit = timeout(STEP, window.acquire())
            .await
            .with_context(|| format!("{WINDOW} frames unanswered for {STEP:?}"))?;
        // A closed window: the reader ended; its outcome is reported below.
        let Ok(permit) = permit else {
            break;
        };
        permit.forget();
        seq += 1;
        let charter_op = session.charter.filter(|_| seq % 10 == 5);
        let (frame, want) = match charter_op {
            Some(charter) if seq % 20 == 5 => {
                let result = if signed {
                    sign_result::ALREADY_SIGNED
                } else {
                    sign_result::OK
                };
                if !signed {
                    totals.signers.fetch_add(1, Ordering::Relaxed);
                }
                signed = true;
                totals.signs.fetch_add(1, Ordering::Relaxed);
                let sign = CmsgPetitionSign {
                    petition: Guid::item(charter),
                    unk: 1,
                };
                (
                    Frame::from_message(Origin::Client, &sign)?,
                    Expected::Sign(result),
                )
            }
            Some(charter) => {
                totals.queries.fetch_add(1, Ordering::Relaxed);
                let query = CmsgPetitionQuery {
                    petition_id: charter,
                    petition: Guid::item(charter),
                };
                (
                    Frame::from_message(Origin::Client, &query)?,
                    Expected::Query,
                )
            }
            None => {
                let body = data_body(&mut rng, session.index, seq);
                let up = Frame::new(Origin::Client, DATA_UP, &body)?;
                let down = Frame::new(Origin::Server, DATA_DOWN, &body)?;
                totals.frames_up.fetch_add(1, Ordering::Relaxed);
                totals
                    .bytes_up
                    .fetch_add(up.len() as u64, Ordering::Relaxed);
                (up, Expected::Echo(down, Instant::now()))
            }
        };
        expected.lock().unwrap().push(want);
        timeout(STEP, writer.write_all(frame.as_bytes()))
            .await
            .context("a write blocked")??;
        let gap = MEAN_GAP.mul_f64(rng.below(2001) as f64 / 1000.0);
        tokio::time::sleep(gap).await;
    }
    if window.is_closed() {
        let outcome = timeout(STEP, read_side)
            .await
            .context("the reader hung")?
            .context("the reader panicked")?;
        outcome?;
        bail!("the sidecar closed the session during the steady phase");
    }
    // Everything in flight comes back, then the session closes in order: the
    // worldserver sees EOF and closes, the gateway sees EOF.
    if let Ok(all) = timeout(STEP, window.acquire_many(WINDOW as u32))
        .await
        .context("echoes still missing at the end")?
    {
        all.forget();
    }
    writer.shutdown().await?;
    let frames = timeout(STEP, read_side)
        .await
        .context("the session never closed")?
        .context("the reader panicked")??;
    ensure!(frames > 0 || seq == 0, "no frame came back");
    drop(writer);
    Ok(())
}
