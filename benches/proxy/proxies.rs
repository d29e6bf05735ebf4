//! The proxies measured (none, the relay, the sidecar) and crypt mode's database.

use super::*;
use tc9_testkit::db::ACCOUNT_COLUMNS;

/// A running proxy on the proxy runtime.
pub(crate) enum Proxy {
    None,
    Relay(JoinHandle<()>),
    Sidecar(Box<Sidecar>),
}

/// The minimal relay: accept, connect upstream, `copy_bidirectional`.
pub(crate) async fn relay(listener: TcpListener, upstream: SocketAddr) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

pub(crate) fn start_proxy(
    runtime: &Runtime,
    target: Target,
    link: Link,
    world: SocketAddr,
    auth_db_url: &str,
) -> Result<(SocketAddr, Proxy)> {
    match target {
        Target::Direct => Ok((world, Proxy::None)),
        Target::Relay => {
            let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
            let addr = listener.local_addr()?;
            Ok((addr, Proxy::Relay(runtime.spawn(relay(listener, world)))))
        }
        Target::Sidecar => {
            let config = Config {
                listen: "127.0.0.1:0".parse()?,
                upstream: world.to_string(),
                sidecar_id: "bench".to_owned(),
                link_mode: match link {
                    Link::Plain => LinkMode::Plain,
                    Link::Crypt => LinkMode::WotlkCrypt,
                },
                auth_db_url: auth_db_url.to_owned(),
                shutdown_grace_secs: 2,
                ..Config::default()
            };
            config.validate()?;
            let sidecar = runtime.block_on(Sidecar::build(&config))?;
            Ok((sidecar.addr(), Proxy::Sidecar(Box::new(sidecar))))
        }
    }
}

pub(crate) fn stop_proxy(runtime: &Runtime, proxy: Proxy) -> Result<()> {
    match proxy {
        Proxy::None => {}
        Proxy::Relay(task) => task.abort(),
        Proxy::Sidecar(sidecar) => {
            runtime
                .block_on(async { tokio::time::timeout(STEP, sidecar.stop()).await })
                .context("the sidecar did not stop")??;
        }
    }
    Ok(())
}

/// The thread names of the three runtimes.
pub(crate) const THREADS: [&str; 3] = ["tc9-gateway", "tc9-proxy", "tc9-world"];

/// CPU time (ns) of this process's threads named `name`, from
/// `/proc/self/task/*/schedstat`.
pub(crate) fn thread_cpu_ns(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------
// Crypt mode's database
// ---------------------------------------------------------------------------------

/// A temporary database with `BENCH<i>` accounts and their session keys, or why not.
pub(crate) async fn crypt_database(accounts: usize) -> Result<MariaDb> {
    tc9_testkit::db::mariadb_reachable().await?;
    let db = MariaDb::create("bench_proxy").await?;
    let mut conn = db.pool.get_conn().await?;
    let ids: Vec<usize> = (0..accounts).collect();
    for chunk in ids.chunks(500) {
        let mut sql = format!("INSERT INTO account {ACCOUNT_COLUMNS} VALUES ");
        for (k, &i) in chunk.iter().enumerate() {
            if k > 0 {
                sql.push(',');
            }
            write!(
                sql,
                "({}, '{}', '', '', X'{}')",
                i + 1,
                account(i),
                hex::encode(session_key(i))
            )?;
        }
        conn.query_drop(sql).await?;
    }
    drop(conn);
    // Free this pool's connections: the sidecar's key lookups need the server's.
    db.pool.clone().disconnect().await?;
    Ok(db)
}
