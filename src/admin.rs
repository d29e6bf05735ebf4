//! The operator endpoints: `/metrics` (Prometheus text), `/health/live` and
//! `/health/ready` (every [`Probe`] passing: upstream reachable, each configured
//! database answering; the body names what fails).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use tc9_proxy::metrics::OpcodeLabels;

/// Histogram buckets, in seconds, for every latency histogram.
const BUCKETS: &[f64] = &[
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs the Prometheus recorder (once per process; the first call's labels win)
/// and registers every metric at zero (opcode series for the charter's opcodes).
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
            tc9_proxy::metrics::describe(&OpcodeLabels::new(tc9_charter::watched().collect()));
            tc9_charter::metrics::describe();
            crate::backends::metrics::describe();
            Ok(handle)
        })
        .clone()
}

/// What a probe's check returns: `Err` with the reason it fails.
pub type ProbeCheck = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One thing `/health/ready` checks, named in the body when it fails.
pub struct Probe {
    name: String,
    check: Box<dyn Fn() -> ProbeCheck + Send + Sync>,
}

impl Probe {
    /// A probe called `name` that runs `check`.
    pub fn new<F, Fut>(name: impl Into<String>, check: F) -> Probe
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Probe {
            name: name.into(),
            check: Box::new(move || Box::pin(check())),
        }
    }

    /// The worldserver accepts TCP connections at `addr`.
    pub fn upstream(addr: &str) -> Probe {
        let addr = addr.to_owned();
        Probe::new(format!("upstream {addr}"), move || {
            let addr = addr.clone();
            async move {
                tokio::net::TcpStream::connect(&addr)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        })
    }
}

/// What `/health/ready` checks, and the facts it shows.
#[derive(Default)]
pub struct Readiness {
    probes: Vec<Probe>,
    facts: Vec<(String, String)>,
}

impl Readiness {
    /// Readiness over `probes`.
    pub fn new(probes: Vec<Probe>) -> Readiness {
        Readiness {
            probes,
            facts: Vec::new(),
        }
    }

    /// Shows `key: value` under the status, ready or not.
    pub fn with_fact(mut self, key: &str, value: &str) -> Readiness {
        self.facts.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The facts, one `key: value` line each.
    fn facts(&self) -> String {
        self.facts
            .iter()
            .map(|(key, value)| format!("{key}: {value}\n"))
            .collect()
    }

    /// The failing probes with their reasons, empty when ready.
    pub async fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for probe in &self.probes {
            match tokio::time::timeout(PROBE_TIMEOUT, (probe.check)()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{}: {e}", probe.name)),
                Err(_) => failures.push(format!("{}: timed out", probe.name)),
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
            let facts = readiness.facts();
            if failures.is_empty() {
                text(StatusCode::OK, format!("ready\n{facts}"))
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready\n{}\n{facts}", failures.join("\n")),
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
