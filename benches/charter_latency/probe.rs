//! An independent durable-commit probe. While the signatures are measured, its own
//! connections to the bench's MariaDB and PostgreSQL databases each commit one row
//! every `TC9_CHARTER_PROBE_MS` (default 20; 0 turns the probe off). A bare commit
//! that stalls here stalled for every client of that server, whatever the sidecars
//! did, so a slow signature that overlaps such a stall waited on the database (its
//! disk, the machine), not on the sidecar.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use tc9_testkit::{MariaDb, PgDb};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// One probe commit: when it was sent and how long the server took to make it durable.
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    /// When the probe sent it.
    pub started: Instant,
    /// From sending it to the server's answer.
    pub took: Duration,
}

impl Commit {
    /// Whether this commit took longer than `limit` and was under way at some point
    /// of `from..=to`.
    pub fn stalled_within(&self, limit: Duration, from: Instant, to: Instant) -> bool {
        self.took > limit && self.started <= to && self.started + self.took >= from
    }
}

/// The commits each database made for the probe.
#[derive(Debug, Default)]
pub struct Commits {
    /// MariaDB: `INSERT` then `COMMIT`, in one transaction.
    pub mariadb: Vec<Commit>,
    /// PostgreSQL: one autocommitted `INSERT` (`synchronous_commit` as the server has it).
    pub postgres: Vec<Commit>,
}

/// A running probe; [`Probe::stop`] ends it and hands back what it saw.
pub struct Probe {
    stop: watch::Sender<bool>,
    mariadb: JoinHandle<Result<Vec<Commit>>>,
    postgres: JoinHandle<Result<Vec<Commit>>>,
}

impl Probe {
    /// Starts committing to `mysql` and `pg` every `every`, on connections of its own.
    pub async fn start(mysql: &MariaDb, pg: &PgDb, every: Duration) -> Result<Probe> {
        let mut conn = mysql.pool.get_conn().await?;
        conn.query_drop(
            "CREATE TABLE tc9_bench_probe \
             (id INT AUTO_INCREMENT PRIMARY KEY, at BIGINT NOT NULL) ENGINE=InnoDB",
        )
        .await
        .context("creating MariaDB's probe table")?;
        let client = pg.client().await?;
        client
            .batch_execute(
                "CREATE TABLE tc9_bench_probe (id serial PRIMARY KEY, at bigint NOT NULL)",
            )
            .await
            .context("creating PostgreSQL's probe table")?;
        let (stop, stopped) = watch::channel(false);
        let mariadb = tokio::spawn(every_tick(every, stopped.clone(), Target::MariaDb(conn)));
        let postgres = tokio::spawn(every_tick(every, stopped, Target::Postgres(client)));
        Ok(Probe {
            stop,
            mariadb,
            postgres,
        })
    }

    /// Stops the probe; every commit it made.
    pub async fn stop(self) -> Result<Commits> {
        let _ = self.stop.send(true);
        Ok(Commits {
            mariadb: self.mariadb.await.context("the MariaDB probe panicked")??,
            postgres: self
                .postgres
                .await
                .context("the PostgreSQL probe panicked")??,
        })
    }
}

/// The connection a probe commits on.
enum Target {
    MariaDb(mysql_async::Conn),
    Postgres(tokio_postgres::Client),
}

impl Target {
    /// Commits the probe row `n`.
    async fn commit(&mut self, n: i64) -> Result<()> {
        match self {
            Target::MariaDb(conn) => {
                let mut tx = conn.start_transaction(Default::default()).await?;
                tx.exec_drop("INSERT INTO tc9_bench_probe (at) VALUES (?)", (n,))
                    .await?;
                tx.commit().await?;
            }
            Target::Postgres(client) => {
                client
                    .execute("INSERT INTO tc9_bench_probe (at) VALUES ($1)", &[&n])
                    .await?;
            }
        }
        Ok(())
    }
}

/// Commits on `target` once per `every` until `stopped` turns true, timing each.
async fn every_tick(
    every: Duration,
    mut stopped: watch::Receiver<bool>,
    mut target: Target,
) -> Result<Vec<Commit>> {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut commits = Vec::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return Ok(commits),
        }
        let started = Instant::now();
        target.commit(commits.len() as i64).await?;
        commits.push(Commit {
            started,
            took: started.elapsed(),
        });
    }
}
