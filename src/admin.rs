//! The operator endpoints: `/metrics` (Prometheus text), `/health/live` and
//! `/health/ready` (upstream reachable and every configured database answering; the
//! body names what fails).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bus::Bus;
use crate::store::Db;

/// Histogram buckets, in seconds, for every latency histogram.
const BUCKETS: &[f64] = &[
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the Prometheus recorder (once per process; the first call's labels win)
/// and registers every metric at zero.
pub fn install_recorder(sidecar: &str, realm: u32) -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .add_global_label("sidecar", sidecar)
                .add_global_label("realm", realm.to_string())
                .set_buckets(BUCKETS)
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            crate::metrics::describe_and_register();
            Ok(handle)
        })
        .clone()
}

/// What `/health/ready` checks.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// The worldserver's address.
    pub upstream: String,
    /// The characters database, if configured.
    pub characters: Option<Db>,
    /// The auth database, if configured.
    pub auth: Option<Db>,
    /// The bus, if configured.
    pub bus: Option<Bus>,
}

impl Readiness {
    /// The failing parts, empty when ready.
    pub async fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(&self.upstream)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failures.push(format!("upstream {}: {e}", self.upstream)),
            Err(_) => failures.push(format!("upstream {}: timed out", self.upstream)),
        }
        for (name, db) in [("characters_db", &self.characters), ("auth_db", &self.auth)] {
            if let Some(db) = db {
                match tokio::time::timeout(PROBE_TIMEOUT, db.ping()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failures.push(format!("{name}: {e}")),
                    Err(_) => failures.push(format!("{name}: timed out")),
                }
            }
        }
        if let Some(bus) = &self.bus {
            match tokio::time::timeout(PROBE_TIMEOUT, bus.ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("bus: {e}")),
                Err(_) => failures.push("bus: timed out".to_owned()),
            }
        }
        failures
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn route(
    request: Request<Incoming>,
    metrics: PrometheusHandle,
    readiness: Arc<Readiness>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into()));
    }
    Ok(match request.uri().path() {
        "/metrics" => text(StatusCode::OK, metrics.render()),
        "/health/live" => text(StatusCode::OK, "live\n".into()),
        "/health/ready" => {
            let failures = readiness.failures().await;
            if failures.is_empty() {
                text(StatusCode::OK, "ready\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready\n{}\n", failures.join("\n")),
                )
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    })
}

/// Binds `addr`; the endpoints are served until `cancel`.
pub async fn serve(
    addr: &str,
    metrics: PrometheusHandle,
    readiness: Readiness,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    info!(metrics = %local, "serving /metrics, /health/live and /health/ready");
    let readiness = Arc::new(readiness);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = cancel.cancelled() => return,
            };
            let (stream, _) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            let readiness = Arc::clone(&readiness);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    route(request, metrics.clone(), Arc::clone(&readiness))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(local)
}
