//! What operators see: the metrics move by the right amounts when traffic and a
//! charter signature go through a sidecar, the dashboard only asks for exported
//! series, `promtool` accepts the exposition and a real Prometheus scrapes it.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use tc9_codec::messages::petition::sign_result;
use tc9_codec::messages::{
    CmsgPetitionSign, CmsgPlayerLogin, SmsgLoginVerifyWorld, SmsgPetitionSignResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, FrameCodec, Message, Opcode, Origin};
use tc9_sidecar::config::Config;
use tc9_testkit::{http_get, start_sidecar, Gateway, MariaDb, STEP};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;

mod operator_files;

/// `series -> value` of a Prometheus text exposition (labels as rendered).
fn samples(exposition: &str) -> HashMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the series whose name is `name` and whose labels include `labels`.
fn value(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?}: {matching:?}");
    matching[0]
}

/// Metric names declared in an exposition (`# TYPE name kind`).
fn exported_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// A worldserver that answers `CMSG_PLAYER_LOGIN` and echoes `0x1234` frames back as
/// server frames of opcode `0x1235`.
async fn worldserver() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut codec = FrameCodec::new(Origin::Client, 0xFFFF);
                let mut buf = bytes::BytesMut::new();
                loop {
                    while let Ok(Some(frame)) = codec.decode(&mut buf) {
                        let reply = match frame.opcode() {
                            Opcode::CMSG_PLAYER_LOGIN => Frame::from_message(
                                Origin::Server,
                                &SmsgLoginVerifyWorld::default(),
                            ),
                            Opcode(0x1234) => {
                                Frame::new(Origin::Server, Opcode(0x1235), frame.body())
                            }
                            _ => continue,
                        };
                        if stream.write_all(reply.unwrap().as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match stream.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

/// Reads server frames until one of `opcode` arrives.
async fn read_until(stream: &mut TcpStream, buf: &mut bytes::BytesMut, opcode: Opcode) -> Frame {
    let mut codec = FrameCodec::server();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            while let Some(frame) = codec.decode(buf).unwrap() {
                if frame.opcode() == opcode {
                    return frame;
                }
            }
            assert_ne!(stream.read_buf(buf).await.unwrap(), 0, "connection closed");
        }
    })
    .await
    .expect("frame in time")
}

struct Sidecar {
    listen: SocketAddr,
    metrics: SocketAddr,
    _db: MariaDb,
    running: tc9_sidecar::Sidecar,
}

/// A sidecar with the charter resolver (no bus) and the admin endpoints.
async fn sidecar() -> Sidecar {
    let db = MariaDb::create("observability").await.unwrap();
    db.character(1, 1, "Owner", 1).await.unwrap();
    db.character(2, 2, "Signer", 1).await.unwrap();
    db.exec(
        "INSERT INTO petition (ownerguid, petitionguid, petition_id, name, type) VALUES (1, 500, 500, 'Watchers', 9)",
        (),
    )
    .await
    .unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: worldserver().await.to_string(),
        metrics: "127.0.0.1:0".into(),
        characters_db_url: db.url(),
        sidecar_id: "obs-1".into(),
        realm_id: 4,
        worldserver_module: true,
        ..Config::default()
    };
    let running = start_sidecar(config).await.unwrap();
    Sidecar {
        listen: running.addr(),
        metrics: running.metrics_addr().expect("metrics are configured"),
        _db: db,
        running,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_a_signature() {
    let sidecar = sidecar().await;
    let (status, ready) = http_get(sidecar.metrics, "/health/ready").await.unwrap();
    assert_eq!(
        (status, ready.as_str()),
        (
            200,
            "ready\nworldserver_module: on (signatures recorded by the sidecar, turn-in synced by mod-tc9-sidecar)\n"
        )
    );
    assert_eq!(
        http_get(sidecar.metrics, "/health/live").await.unwrap().0,
        200
    );
    let before = samples(&http_get(sidecar.metrics, "/metrics").await.unwrap().1);

    let mut gateway = TcpStream::connect(sidecar.listen).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let login = Frame::from_message(
        Origin::Client,
        &CmsgPlayerLogin {
            guid: Guid::player(2),
        },
    )
    .unwrap();
    gateway.write_all(login.as_bytes()).await.unwrap();
    read_until(&mut gateway, &mut buf, Opcode::SMSG_LOGIN_VERIFY_WORLD).await;
    let mut other_bytes = login.len();
    for i in 0..10u8 {
        let frame = Frame::new(Origin::Client, Opcode(0x1234), &[i; 10]).unwrap();
        other_bytes += frame.len();
        gateway.write_all(frame.as_bytes()).await.unwrap();
        read_until(&mut gateway, &mut buf, Opcode(0x1235)).await;
    }
    let sign = Frame::from_message(
        Origin::Client,
        &CmsgPetitionSign {
            petition: Guid::item(500),
            unk: 1,
        },
    )
    .unwrap();
    gateway.write_all(sign.as_bytes()).await.unwrap();
    let result = read_until(&mut gateway, &mut buf, Opcode::SMSG_PETITION_SIGN_RESULTS).await;
    let result = SmsgPetitionSignResults::decode(result.body()).unwrap();
    assert_eq!(result.result, sign_result::OK);

    let after = samples(&http_get(sidecar.metrics, "/metrics").await.unwrap().1);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(
        value(&after, "tc9_sidecar_worldserver_module", &[]),
        1.0,
        "the mode is exported: worldserver_module = true"
    );
    let c2s_other = [("direction", "c2s"), ("opcode", "other")];
    assert_eq!(delta("tc9_sidecar_frames_total", &c2s_other), 11.0);
    assert_eq!(
        delta("tc9_sidecar_bytes_total", &c2s_other),
        other_bytes as f64
    );
    let s2c_other = [("direction", "s2c"), ("opcode", "other")];
    assert_eq!(delta("tc9_sidecar_frames_total", &s2c_other), 11.0);
    let sign_frames = [("direction", "c2s"), ("opcode", "CMSG_PETITION_SIGN")];
    assert_eq!(delta("tc9_sidecar_frames_total", &sign_frames), 1.0);
    assert_eq!(
        delta("tc9_sidecar_bytes_total", &sign_frames),
        sign.len() as f64
    );
    assert_eq!(
        delta(
            "tc9_sidecar_decisions_total",
            &[("opcode", "CMSG_PETITION_SIGN"), ("outcome", "answered")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "tc9_sidecar_charter_operations_total",
            &[("kind", "sign"), ("result", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "tc9_sidecar_resolution_seconds_count",
            &[("kind", "CMSG_PETITION_SIGN")]
        ),
        1.0
    );
    assert!(
        delta(
            "tc9_sidecar_resolution_seconds_sum",
            &[("kind", "CMSG_PETITION_SIGN")]
        ) > 0.0
    );
    assert_eq!(
        delta("tc9_sidecar_db_query_seconds_count", &[("query", "sign")]),
        1.0
    );
    assert_eq!(
        delta("tc9_sidecar_db_errors_total", &[("query", "sign")]),
        0.0
    );
    assert_eq!(delta("tc9_sidecar_sessions_total", &[]), 1.0);
    assert_eq!(
        value(
            &after,
            "tc9_sidecar_sessions_open",
            &[("sidecar", "obs-1"), ("realm", "4")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "tc9_sidecar_failed_open_total",
            &[("opcode", "CMSG_PETITION_SIGN")]
        ),
        0.0
    );

    drop(gateway);
    sidecar.running.begin_stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_guilds_are_looked_up_once() {
    let sidecar = sidecar().await;
    let guild_lookups = |exposition: &str| -> f64 {
        samples(exposition)
            .iter()
            .filter(|(series, _)| {
                series.starts_with("tc9_sidecar_db_query_seconds_count{")
                    && series.contains("query=\"guild\"")
            })
            .map(|(_, v)| *v)
            .sum()
    };
    let before = guild_lookups(&http_get(sidecar.metrics, "/metrics").await.unwrap().1);
    let mut gateway = Gateway::logged_in(sidecar.listen, "querier", 2)
        .await
        .unwrap();
    for _ in 0..3 {
        let query = tc9_codec::messages::CmsgGuildQuery { guild_id: 4242 };
        gateway.send(&query).await.unwrap();
    }
    // The worldserver echoes 0x1234: once it is back, the queries were decided.
    let fence = Frame::new(Origin::Client, Opcode(0x1234), b"fence").unwrap();
    gateway.send_frame(&fence).await.unwrap();
    loop {
        let frame = gateway.recv(STEP).await.unwrap();
        if frame.expect("the fence comes back").opcode() == Opcode(0x1235) {
            break;
        }
    }
    let after = guild_lookups(&http_get(sidecar.metrics, "/metrics").await.unwrap().1);
    assert_eq!(
        after - before,
        1.0,
        "three queries for an unknown guild, one database lookup"
    );
}
