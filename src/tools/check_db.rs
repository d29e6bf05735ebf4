//! `tc9-sidecar check-db`: the schema preflight of the configured characters and
//! auth databases, the same check the sidecar makes at start-up and on
//! `/health/ready`.

use crate::backends::mysql::{check, Consequence, Db, Outcome, Schema};
use crate::config::Config;

/// The check of every configured database, by configuration key.
#[derive(Debug)]
pub struct Report(pub Vec<(&'static str, Outcome)>);

impl Report {
    /// Whether the sidecar would refuse to start (or cannot tell).
    pub fn refuses(&self) -> bool {
        self.0.iter().any(|(_, outcome)| match outcome {
            Outcome::Unreachable(_) => true,
            Outcome::Checked(findings) => findings
                .iter()
                .any(|f| f.consequence == Consequence::RefuseToStart),
            Outcome::Skipped => false,
        })
    }

    /// One line per database and per finding.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (key, outcome) in &self.0 {
            match outcome {
                Outcome::Skipped => lines.push(format!("{key}: not configured")),
                Outcome::Unreachable(e) => lines.push(format!("{key}: not checked: {e}")),
                Outcome::Checked(findings) if findings.is_empty() => lines.push(format!(
                    "{key}: ok (every table, column and key the sidecar uses is there)"
                )),
                Outcome::Checked(findings) => {
                    lines.extend(findings.iter().map(|f| format!("{key}: {f}")))
                }
            }
        }
        lines
    }
}

/// Checks the databases `config` names.
pub async fn run(config: &Config) -> anyhow::Result<Report> {
    let mut report = Vec::new();
    for (key, url, schema) in [
        (
            "characters_db_url",
            &config.characters_db_url,
            Schema::Characters,
        ),
        ("auth_db_url", &config.auth_db_url, Schema::Auth),
    ] {
        if url.is_empty() {
            report.push((key, Outcome::Skipped));
            continue;
        }
        let db = Db::new(url).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        let outcome = check(&db, schema).await;
        db.close().await;
        report.push((key, outcome));
    }
    Ok(Report(report))
}
