//! `log_format = "json"`: one JSON object per line, the session's span fields
//! included, from the binary itself.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tc9_testkit::{within, Gateway, SidecarProcess, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_session_fields() -> Result<()> {
    within(Duration::from_secs(30), "the log test", json_logs()).await
}

async fn json_logs() -> Result<()> {
    let world = World::start().await?;
    let process = SidecarProcess::spawn(
        env!("CARGO_BIN_EXE_tc9-sidecar"),
        &[
            ("upstream", world.addr.to_string()),
            ("sidecar_id", "logs".into()),
            ("log_format", "json".into()),
            ("log_level", "debug".into()),
        ],
    )
    .await?;
    let mut gateway = Gateway::logged_in(process.addr, "a logged session", 7).await?;
    gateway.echo(b"some traffic").await?;
    drop(gateway);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = process.kill().await?;
    let mut lines = 0;
    let mut session_lines = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not one JSON object: {line}"))?;
        ensure!(value.is_object(), "{line}");
        for key in ["timestamp", "level", "fields", "target"] {
            ensure!(value.get(key).is_some(), "no {key:?} in {line}");
        }
        lines += 1;
        let session = value["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|span| span["name"] == "session");
        if let Some(span) = session {
            ensure!(span["sidecar"] == "logs", "{line}");
            ensure!(
                span["session"].is_u64() && span["peer"].is_string(),
                "{line}"
            );
            session_lines += 1;
        }
    }
    eprintln!("{lines} JSON lines, {session_lines} with the session's fields");
    ensure!(lines >= 3, "{lines} lines:\n{logs}");
    ensure!(
        session_lines >= 2,
        "{session_lines} lines with session fields:\n{logs}"
    );
    Ok(())
}
