//! The sidecar's admin endpoints: a minimal HTTP/1.0 GET, and sums over the
//! Prometheus exposition it serves.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// GETs `path` from `addr`: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status line in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The sum of the samples of `name` in a Prometheus text `exposition` whose label
/// text holds every one of `labels` (each as rendered, e.g. `result="ok"`).
pub fn metric_sum(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    let (labelled, bare) = (format!("{name}{{"), format!("{name} "));
    exposition
        .lines()
        .filter(|line| line.starts_with(&labelled) || line.starts_with(&bare))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
