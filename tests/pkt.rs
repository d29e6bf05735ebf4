//! WowPacketParser's PKT 3.1 (the format AzerothCore's packet log writes): a `.pkt`
//! assembled from the real frames of `../shared/vectors/real-335a.tsv` reads back
//! frame for frame, converts to the sidecar's format and back byte for byte, and
//! replays; `run` with `capture_format = "pkt"` writes files that read back byte
//! for byte.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tc9_codec::{Frame, Opcode, Origin};
use tc9_proxy::capture::pkt::{self, Header};
use tc9_proxy::capture::{Capture, CaptureFormat};
use tc9_sidecar::config::Config;
use tc9_testkit::{client, start_sidecar, test_config, vectors, within, Gateway, World};

/// A scratch directory of this test's own.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(tc9_testkit::db::unique_name(tag));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn sidecar_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tc9-sidecar"))
        .args(args)
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn real_frames_in_a_pkt_read_back_convert_and_replay() {
    let Some(rows) = vectors::real_335a() else {
        return;
    };
    let frames: Vec<Frame> = rows
        .iter()
        .filter(|r| r.id.starts_with('H'))
        .filter_map(|r| r.frame())
        .collect();
    assert_eq!(frames.len(), 14, "H1-H15 but H9, the body without a header");
    // As AzerothCore's logger writes one: zero session key, peer address per record.
    let header = Header {
        sniffer: b'T',
        build: pkt::BUILD,
        locale: *b"enUS",
        session_key: [0; 40],
        start_time: 1_700_000_000,
        start_ticks: 5_000,
        optional: Vec::new(),
    };
    let mut file = header.to_bytes();
    let peer = pkt::peer_data("10.1.2.3:51234");
    for (n, frame) in frames.iter().enumerate() {
        file.extend(
            pkt::record(
                frame.origin(),
                7,
                5_000 + 25 * n as u32,
                &peer,
                frame.as_bytes(),
            )
            .unwrap(),
        );
    }
    let capture = Capture::parse(&file).expect("the PKT file reads");
    let read: Vec<&[u8]> = capture
        .records
        .iter()
        .map(|r| r.frame.as_bytes().as_ref())
        .collect();
    let sent: Vec<&[u8]> = frames.iter().map(|f| f.as_bytes().as_ref()).collect();
    assert_eq!(read, sent, "every real frame, byte for byte");
    assert_eq!(capture.records[3].at, Duration::from_millis(75));
    assert_eq!(
        pkt::to_bytes(&capture).unwrap(),
        file,
        "written back byte for byte"
    );

    // Through the converter, to the sidecar's format and back.
    let dir = scratch("pkt_real");
    let (original, tc9cap, again) = (
        dir.join("real.pkt"),
        dir.join("real.tc9cap"),
        dir.join("again.pkt"),
    );
    std::fs::write(&original, &file).unwrap();
    for (from, to) in [(&original, &tc9cap), (&tc9cap, &again)] {
        let (ok, text) = sidecar_cli(&["convert", from.to_str().unwrap(), to.to_str().unwrap()]);
        assert!(ok, "{text}");
    }
    assert_eq!(&std::fs::read(&tc9cap).unwrap()[..6], b"TC9CAP");
    assert_eq!(
        std::fs::read(&again).unwrap(),
        file,
        "pkt -> tc9cap -> pkt is byte-exact"
    );

    // And it replays like any capture.
    let world = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/replay/pass_through.world.toml"
    );
    let (ok, transcript) = sidecar_cli(&["replay", original.to_str().unwrap(), "--world", world]);
    assert!(ok, "{transcript}");
    assert!(
        transcript.contains("#1 s2c SMSG_GUILD_QUERY_RESPONSE -> passed through"),
        "{transcript}"
    );
    assert!(transcript.contains("CMSG_AUTH_SESSION"), "{transcript}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_writes_pkt_captures_that_read_back_byte_exact() -> Result<()> {
    within(Duration::from_secs(30), "the PKT capture", pkt_capture()).await
}

async fn pkt_capture() -> Result<()> {
    let dir = scratch("pkt_capture");
    let world = World::start().await?;
    let sidecar = start_sidecar(Config {
        capture_dir: dir.to_string_lossy().into_owned(),
        capture_format: CaptureFormat::Pkt,
        ..test_config("pkt", world.addr)
    })
    .await?;
    let mut gateway = Gateway::logged_in(sidecar.addr(), "a captured session", 3).await?;
    let roster = client(Opcode::CMSG_GUILD_ROSTER, b"captured body");
    gateway.send_frame(&roster).await?;
    let echoed = gateway.recv(tc9_testkit::STEP).await?.context("the echo")?;
    drop(gateway);
    sidecar.stop().await?;
    // The writer finishes off the session's path: wait for the whole file.
    let dir_ref = &dir;
    let (path, bytes) =
        tc9_testkit::eventually("the .pkt file written", tc9_testkit::STEP, || async move {
            let path = std::fs::read_dir(dir_ref)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|e| e == "pkt"));
            let Some(path) = path else { return Ok(None) };
            let bytes = std::fs::read(&path)?;
            let whole = Capture::parse(&bytes).is_ok_and(|c| {
                c.records
                    .iter()
                    .any(|r| r.frame.opcode() == Opcode::SMSG_GUILD_ROSTER)
            });
            Ok(whole.then_some((path, bytes)))
        })
        .await?;
    ensure!(
        bytes[..3] == *b"PKT" && bytes[3..5] == [0x01, 0x03],
        "PKT 3.1 magic"
    );
    ensure!(
        u32::from_le_bytes(bytes[6..10].try_into()?) == 12340,
        "build 12340"
    );
    let capture = Capture::parse(&bytes)?;
    ensure!(
        pkt::to_bytes(&capture)? == bytes,
        "written back byte for byte"
    );
    let frames: Vec<(Origin, &[u8])> = capture
        .records
        .iter()
        .map(|r| (r.origin, r.frame.as_bytes().as_ref()))
        .collect();
    ensure!(
        frames.contains(&(Origin::Client, roster.as_bytes().as_ref())),
        "{frames:?}"
    );
    ensure!(
        frames.contains(&(Origin::Server, echoed.as_bytes().as_ref())),
        "{frames:?}"
    );
    ensure!(
        capture
            .records
            .iter()
            .any(|r| r.frame.opcode() == Opcode::SMSG_LOGIN_VERIFY_WORLD),
        "the login is in the capture"
    );
    eprintln!(
        "{}: {} records, {} bytes",
        path.display(),
        capture.records.len(),
        bytes.len()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
