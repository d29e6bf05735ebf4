//! The backends' metrics: MySQL query and PostgreSQL bus timings and failures.

use metrics::{describe_counter, describe_histogram, Unit};

/// MySQL query time, by query.
pub const DB_QUERY_SECONDS: &str = "tc9_sidecar_db_query_seconds";
/// MySQL query failures, by query.
pub const DB_ERRORS_TOTAL: &str = "tc9_sidecar_db_errors_total";
/// PostgreSQL (bus) query time, by operation.
pub const BUS_QUERY_SECONDS: &str = "tc9_sidecar_bus_query_seconds";
/// PostgreSQL (bus) failures, by operation.
pub const BUS_ERRORS_TOTAL: &str = "tc9_sidecar_bus_errors_total";

/// Runs `call`, recording its time in `histogram` and a failure in `errors`, both
/// labelled `label = name`.
pub(crate) async fn timed<T, E>(
    (histogram, errors, label): (&'static str, &'static str, &'static str),
    name: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = call.await;
    metrics::histogram!(histogram, label => name).record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(errors, label => name).increment(1);
    }
    result
}

/// The MySQL series: histogram, error counter, label.
pub(crate) const DB: (&str, &str, &str) = (DB_QUERY_SECONDS, DB_ERRORS_TOTAL, "query");
/// The bus series: histogram, error counter, label.
pub(crate) const BUS: (&str, &str, &str) = (BUS_QUERY_SECONDS, BUS_ERRORS_TOTAL, "op");

/// Describes the backends' metrics and registers their series at zero.
pub fn describe() {
    describe_histogram!(
        DB_QUERY_SECONDS,
        Unit::Seconds,
        "MySQL query time, by query."
    );
    describe_counter!(DB_ERRORS_TOTAL, "MySQL query failures, by query.");
    describe_histogram!(
        BUS_QUERY_SECONDS,
        Unit::Seconds,
        "PostgreSQL bus query time, by operation."
    );
    describe_counter!(BUS_ERRORS_TOTAL, "PostgreSQL bus failures, by operation.");
    for query in super::mysql::QUERIES {
        metrics::counter!(DB_ERRORS_TOTAL, "query" => *query).absolute(0);
        let _ = metrics::histogram!(DB_QUERY_SECONDS, "query" => *query);
    }
    for op in super::postgres::OPERATIONS {
        metrics::counter!(BUS_ERRORS_TOTAL, "op" => *op).absolute(0);
        let _ = metrics::histogram!(BUS_QUERY_SECONDS, "op" => *op);
    }
}
