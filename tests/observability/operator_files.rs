//! The operator's files against the exposition: the alerting rules and the dashboard
//! ask only for exported series, promtool accepts the exposition, and a real Prometheus
//! scrapes it.

use super::*;

/// The sidecar series `text` names, histograms by their base name.
fn series_in(text: &str, exported: &BTreeSet<String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("tc9_sidecar_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| exported.contains(*b)))
            .map(str::to_owned)
            .unwrap_or(name);
        used.insert(base);
    }
    used
}

/// The alerting rules name only exported series, and pass their unit tests
/// (`promtool test rules config/alerts.test.yml`, which `.ci/run` runs too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_use_exported_series_and_pass_their_unit_tests() {
    let sidecar = sidecar().await;
    let exported = exported_names(&http_get(sidecar.metrics, "/metrics").await.unwrap().1);
    let rules = include_str!("../../config/alerts.yml");
    let used = series_in(rules, &exported);
    let missing: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "alerts ask for series nobody exports: {missing:?}"
    );
    assert!(used.len() >= 10, "alerts cover {} metrics", used.len());
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let tested = Command::new("promtool")
        .args(["test", "rules", "alerts.test.yml"])
        .current_dir(&config)
        .output()
        .expect("promtool is installed (Debian package prometheus)");
    assert!(
        tested.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    let alerts = rules.matches("- alert: ").count();
    let tests = include_str!("../../config/alerts.test.yml");
    for name in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{name} has no unit test"
        );
    }
    assert!(alerts >= 10, "{alerts} alerts");
    sidecar.running.begin_stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_only_for_exported_series() {
    let sidecar = sidecar().await;
    let exported = exported_names(&http_get(sidecar.metrics, "/metrics").await.unwrap().1);
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../dashboards/tc9-sidecar.json")).unwrap();
    let mut exprs = Vec::new();
    fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        _ => collect(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "{} expressions", exprs.len());
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| series_in(e, &exported)).collect();
    let missing: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "dashboard asks for series nobody exports: {missing:?}"
    );
    assert!(used.len() >= 15, "dashboard covers {} metrics", used.len());
    let templating = dashboard["templating"]["list"].as_array().unwrap();
    let names: Vec<_> = templating
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["datasource", "realm", "sidecar"]);
    sidecar.running.begin_stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_and_prometheus_scrapes() {
    let sidecar = sidecar().await;
    let exposition = http_get(sidecar.metrics, "/metrics").await.unwrap().1;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let dir = std::env::temp_dir().join(tc9_testkit::db::unique_name("prometheus"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tc9-sidecar\n    static_configs:\n      - targets: ['{}']\n",
            sidecar.metrics
        ),
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed");
    let query = "/api/v1/query?query=tc9_sidecar_sessions_total";
    let mut answer = String::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(stream) = TcpStream::connect(port).await {
            drop(stream);
            let (status, body) = http_get(port, query).await.unwrap();
            if status == 200 && body.contains("\"sidecar\":\"obs-1\"") {
                answer = body;
                break;
            }
        }
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        answer.contains("\"realm\":\"4\""),
        "Prometheus answered: {answer:?}"
    );
    sidecar.running.begin_stop();
}
