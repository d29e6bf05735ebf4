//! Statements are prepared once per connection: the store's lookups execute from the
//! connection's statement cache. Alone in its test binary, so the server's global
//! counters move only with this test.

use anyhow::Result;
use mysql_async::prelude::*;
use tc9_sidecar::backends::mysql::Db;
use tc9_testkit::MariaDb;

/// MariaDB's global `Com_stmt_prepare` and `Com_stmt_execute`.
async fn counters(db: &MariaDb) -> Result<(u64, u64)> {
    let mut conn = db.pool.get_conn().await?;
    let rows: Vec<(String, String)> = conn
        .query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_execute')")
        .await?;
    let get = |name: &str| -> u64 {
        rows.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((get("Com_stmt_prepare"), get("Com_stmt_execute")))
}

#[tokio::test]
async fn lookups_reuse_their_prepared_statements() -> Result<()> {
    let db = MariaDb::create("prepared").await?;
    db.character(1, 1, "Owner", 1).await?;
    db.petition(1, 500, 500, "Reused").await?;
    let store = Db::new(&db.url())?;
    // The pool's first connection prepares each statement once.
    store.petition(500).await?;
    store.signatures(500).await?;
    let (prepared, executed) = counters(&db).await?;
    for _ in 0..50 {
        assert!(store.petition(500).await?.is_some());
        store.signatures(500).await?;
    }
    let (prepared_after, executed_after) = counters(&db).await?;
    let (prepares, executes) = (prepared_after - prepared, executed_after - executed);
    eprintln!("100 lookups: {prepares} prepares, {executes} executes");
    assert!(executes >= 100, "{executes} executes");
    assert!(prepares <= 2, "{prepares} prepares for 100 lookups");
    store.close().await;
    Ok(())
}
