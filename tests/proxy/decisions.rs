//! Handler decisions: their frame order, and answers both ways through full queues.

use super::*;

const ANSWERED: Opcode = Opcode::CMSG_PETITION_SHOWLIST;
const DROPPED: Opcode = Opcode::CMSG_GUILD_ROSTER;
const REWRITTEN: Opcode = Opcode::CMSG_PETITION_SIGN;
const INTERCEPTED_FORWARD: Opcode = Opcode::CMSG_GUILD_QUERY;
const FAILS_OPEN: Opcode = Opcode::CMSG_PETITION_QUERY;

/// What [`Scripted`] saw: session id, opcode and body of each intercepted frame.
type Seen = Arc<Mutex<Vec<(u64, Opcode, Vec<u8>)>>>;

/// Answers, drops, rewrites, forwards or fails open by opcode, and records what it saw.
struct Scripted {
    seen: Seen,
}

impl Scripted {
    fn answer(body: &[u8]) -> Frame {
        server(Opcode::SMSG_PETITION_SHOWLIST, &[b"answer:", body].concat())
    }

    fn rewritten(body: &[u8]) -> Vec<Frame> {
        vec![
            client(REWRITTEN, &[b"rewritten:", body].concat()),
            client(Opcode::CMSG_GUILD_INFO, b"added by the rewrite"),
        ]
    }
}

impl Handler for Scripted {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        vec![
            ANSWERED,
            DROPPED,
            REWRITTEN,
            INTERCEPTED_FORWARD,
            FAILS_OPEN,
        ]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        origin == Origin::Client
            && [
                ANSWERED,
                DROPPED,
                REWRITTEN,
                INTERCEPTED_FORWARD,
                FAILS_OPEN,
            ]
            .contains(&opcode)
    }

    async fn handle(&self, session: &SessionInfo, frame: &Frame) -> Decision {
        self.seen
            .lock()
            .unwrap()
            .push((session.id, frame.opcode(), frame.body().to_vec()));
        // Let the decision take a moment, as a database lookup would.
        tokio::time::sleep(Duration::from_millis(5)).await;
        match frame.opcode() {
            ANSWERED => Decision::Answer(vec![Self::answer(frame.body())]),
            DROPPED => Decision::Drop,
            REWRITTEN => Decision::Rewrite(Self::rewritten(frame.body())),
            FAILS_OPEN => Decision::FailOpen("no database in this test".to_owned()),
            _ => Decision::Forward,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_decisions_keep_order() {
    let (ws, ws_addr) = worldserver().await;
    let seen = Seen::default();
    let handler = Scripted {
        seen: Arc::clone(&seen),
    };
    let sidecar = start(config_for(ws_addr), handler).await;
    let (mut gw, mut up) = open(&sidecar, &ws).await;

    let s1 = server(Opcode::SMSG_GUILD_EVENT, b"s1 before the answer");
    let s2 = server(Opcode::SMSG_GUILD_EVENT, b"s2 after the answer");
    let s3 = server(Opcode::SMSG_GUILD_ROSTER, b"s3 after the second answer");
    let f1 = client(Opcode::CMSG_GUILD_INFO, b"f1");
    let f2 = client(Opcode::CMSG_GUILD_MOTD, b"f2 after a dropped frame");
    let f3 = client(Opcode::CMSG_GUILD_INFO, b"f3 right after an answered frame");
    let a1 = client(ANSWERED, b"a1");
    let a2 = client(ANSWERED, b"a2");
    let d1 = client(DROPPED, b"d1 must never reach the worldserver");
    let r1 = client(REWRITTEN, b"r1");
    let fwd = client(INTERCEPTED_FORWARD, b"intercepted, forwarded");
    let open_ = client(FAILS_OPEN, b"fails open");

    // The worldserver speaks first; the gateway gets it.
    send(&mut up, &s1).await;
    expect_frame(&mut gw, &s1, "s1").await;
    // A frame the handler does not intercept is forwarded.
    send(&mut gw, &f1).await;
    expect_frame(&mut up, &f1, "f1 forwarded").await;
    // The answered frame comes back to the gateway after s1 and before s2.
    send(&mut gw, &a1).await;
    expect_frame(&mut gw, &Scripted::answer(b"a1"), "answer to a1").await;
    send(&mut up, &s2).await;
    expect_frame(&mut gw, &s2, "s2 after the answer").await;
    // A dropped frame leaves no trace: the next forwarded frame is the next one seen.
    send(&mut gw, &d1).await;
    send(&mut gw, &f2).await;
    expect_frame(&mut up, &f2, "f2 after the dropped frame").await;
    // A rewritten frame reaches the worldserver as its replacements, in order.
    send(&mut gw, &r1).await;
    for (i, frame) in Scripted::rewritten(b"r1").iter().enumerate() {
        expect_frame(&mut up, frame, &format!("rewrite part {i}")).await;
    }
    // Answer and forward in one write: each goes its own way.
    let both = [a2.as_bytes().as_ref(), f3.as_bytes().as_ref()].concat();
    within(STEP, "write a2+f3", gw.write_all(&both))
        .await
        .unwrap();
    expect_frame(&mut gw, &Scripted::answer(b"a2"), "answer to a2").await;
    expect_frame(&mut up, &f3, "f3 forwarded after the answered frame").await;
    send(&mut up, &s3).await;
    expect_frame(&mut gw, &s3, "s3 after the second answer").await;
    // Intercepted but forwarded, and failing open: the original bytes go on.
    send(&mut gw, &fwd).await;
    expect_frame(&mut up, &fwd, "intercepted and forwarded").await;
    send(&mut gw, &open_).await;
    expect_frame(&mut up, &open_, "failed open").await;

    // Nothing else arrived on either side: closing shows EOF right after.
    gw.shutdown().await.unwrap();
    expect_eof(&mut up, "worldserver: nothing after the expected frames").await;
    drop(up);
    expect_eof(&mut gw, "gateway: nothing after the expected frames").await;

    let seen = seen.lock().unwrap().clone();
    let opcodes: Vec<Opcode> = seen.iter().map(|(_, op, _)| *op).collect();
    assert_eq!(
        opcodes,
        [
            ANSWERED,
            DROPPED,
            REWRITTEN,
            ANSWERED,
            INTERCEPTED_FORWARD,
            FAILS_OPEN
        ]
    );
    assert_eq!(seen[0].2, b"a1");
    assert!(seen.iter().all(|(id, _, _)| *id == seen[0].0));
    shut_down(sidecar).await;
}

/// Answers every intercepted frame, from either side, with three frames back to its
/// sender: each direction's pump keeps feeding the other one's inbox.
struct AnswersBothWays;

/// The server opcode [`AnswersBothWays`] answers back to the worldserver.
const ANSWERED_BY_SERVER: Opcode = Opcode::SMSG_GUILD_ROSTER;

impl Handler for AnswersBothWays {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        vec![ANSWERED, ANSWERED_BY_SERVER]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        match origin {
            Origin::Client => opcode == ANSWERED,
            Origin::Server => opcode == ANSWERED_BY_SERVER,
        }
    }

    async fn handle(&self, _session: &SessionInfo, frame: &Frame) -> Decision {
        let answers = (0..3u8).map(|i| {
            let body = [frame.body(), &[i]].concat();
            match frame.origin() {
                Origin::Client => server(Opcode::SMSG_PETITION_SHOWLIST, &body),
                Origin::Server => client(Opcode::CMSG_GUILD_INFO, &body),
            }
        });
        Decision::Answer(answers.collect())
    }
}

/// Reads `count` frames of `origin` and returns their bodies.
async fn read_bodies<R: AsyncRead + Unpin>(mut r: R, origin: Origin, count: usize) -> Vec<Vec<u8>> {
    let mut bodies = Vec::with_capacity(count);
    while bodies.len() < count {
        match read_frame(&mut r, origin).await {
            Ok(Some(frame)) => bodies.push(frame.body().to_vec()),
            other => panic!("{origin} answers: {other:?} after {}", bodies.len()),
        }
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_both_ways_through_full_queues_do_not_deadlock() {
    let (ws, ws_addr) = worldserver().await;
    let mut config = config_for(ws_addr);
    // One queued frame per side: each pump waits on the other's inbox at once.
    config.session_queue = 1;
    let sidecar = start(config, AnswersBothWays).await;
    let (gw, up) = open(&sidecar, &ws).await;
    let (gw_read, mut gw_write) = gw.into_split();
    let (up_read, mut up_write) = up.into_split();
    const N: u32 = 300;
    let from_gateway: Vec<u8> = (0..N)
        .flat_map(|i| client(ANSWERED, &i.to_le_bytes()).as_bytes().to_vec())
        .collect();
    let from_world: Vec<u8> = (0..N)
        .flat_map(|i| {
            server(ANSWERED_BY_SERVER, &i.to_le_bytes())
                .as_bytes()
                .to_vec()
        })
        .collect();
    let gateway_answers = tokio::spawn(read_bodies(gw_read, Origin::Server, 3 * N as usize));
    let world_answers = tokio::spawn(read_bodies(up_read, Origin::Client, 3 * N as usize));
    let (a, b) = within(STEP, "both sides write all their frames", async {
        tokio::join!(
            gw_write.write_all(&from_gateway),
            up_write.write_all(&from_world)
        )
    })
    .await;
    a.unwrap();
    b.unwrap();
    let expected: Vec<Vec<u8>> = (0..N)
        .flat_map(|i| (0..3u8).map(move |k| [&i.to_le_bytes()[..], &[k]].concat()))
        .collect();
    let to_gateway = within(STEP, "every answer reaches the gateway", gateway_answers)
        .await
        .unwrap();
    assert!(to_gateway == expected, "answers to the gateway, in order");
    let to_world = within(STEP, "every answer reaches the worldserver", world_answers)
        .await
        .unwrap();
    assert!(to_world == expected, "answers to the worldserver, in order");
    shut_down(sidecar).await;
}
