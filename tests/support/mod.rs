//! Test databases: a fresh MariaDB database with AzerothCore's tables and a fresh
//! PostgreSQL database, each dropped when its guard goes, even after a panic; and
//! the frame reader and stream comparison the scripted peers share.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mysql_async::prelude::*;
use tc9_codec::{Frame, Origin};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The MariaDB server, without a database.
pub const MARIADB: &str = "mysql://root@127.0.0.1:3306";
/// The PostgreSQL server's maintenance database.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A name no other test (or run) uses.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "tc9_test_{tag}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A MariaDB database holding `tests/fixtures/azerothcore.sql`.
pub struct MariaDb {
    pub name: String,
    pub pool: mysql_async::Pool,
}

impl MariaDb {
    /// Creates the database and its tables.
    pub async fn create(tag: &str) -> MariaDb {
        let name = unique_name(tag);
        let admin = mysql_async::Pool::new(MARIADB);
        let mut conn = admin.get_conn().await.expect("MariaDB is up");
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .await
            .unwrap();
        drop(conn);
        admin.disconnect().await.unwrap();
        let pool = mysql_async::Pool::new(format!("{MARIADB}/{name}").as_str());
        let mut conn = pool.get_conn().await.unwrap();
        for statement in include_str!("../fixtures/azerothcore.sql")
            .split(';')
            .map(|s| {
                s.lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .filter(|s| !s.trim().is_empty())
        {
            conn.query_drop(statement).await.unwrap();
        }
        MariaDb { name, pool }
    }

    /// The URL of the database.
    pub fn url(&self) -> String {
        format!("{MARIADB}/{}", self.name)
    }

    /// Runs one statement.
    pub async fn exec(&self, sql: &str, params: impl Into<mysql_async::Params> + Send) {
        let mut conn = self.pool.get_conn().await.unwrap();
        conn.exec_drop(sql, params).await.unwrap();
    }

    /// Adds a character (and its guild membership).
    pub async fn character(
        &self,
        guid: u32,
        account: u32,
        name: &str,
        race: u8,
        guild: Option<u32>,
    ) {
        self.exec(
            "INSERT INTO characters (guid, account, name, race, class, level) VALUES (?, ?, ?, ?, 1, 80)",
            (guid, account, name, race),
        )
        .await;
        if let Some(guild) = guild {
            self.exec(
                "INSERT INTO guild_member (guildid, guid, `rank`) VALUES (?, ?, 4)",
                (guild, guid),
            )
            .await;
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A runtime of its own: the test's may be gone or busy.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = mysql_async::Pool::new(MARIADB);
                if let Ok(mut conn) = admin.get_conn().await {
                    let _ = conn
                        .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                        .await;
                }
                let _ = admin.disconnect().await;
            });
        })
        .join();
    }
}

/// A PostgreSQL database.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    /// Creates the database.
    pub async fn create(tag: &str) -> PgDb {
        let name = unique_name(tag);
        let (client, connection) = tokio_postgres::connect(POSTGRES, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL is up");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        PgDb { name }
    }

    /// The URL of the database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// A client of the database (its connection driven in the background).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(POSTGRES, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Reads one frame with `origin`'s header; `None` on a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    origin: Origin,
) -> std::io::Result<Option<Frame>> {
    let mut first = [0u8; 1];
    if r.read(&mut first).await? == 0 {
        return Ok(None);
    }
    let size_len = if origin == Origin::Server && first[0] & 0x80 != 0 {
        3
    } else {
        2
    };
    let mut bytes = vec![first[0]; size_len];
    r.read_exact(&mut bytes[1..]).await?;
    let size = match size_len {
        3 => {
            usize::from(bytes[0] & 0x7F) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2])
        }
        _ => usize::from(bytes[0]) << 8 | usize::from(bytes[1]),
    };
    bytes.resize(size_len + size, 0);
    r.read_exact(&mut bytes[size_len..]).await?;
    Frame::parse(origin, &bytes)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Where two byte streams first differ, with 16 bytes of each from there; `None` when
/// they are identical (megabyte streams are reported by their first difference only).
pub fn stream_difference(got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Some(format!(
        "streams differ at byte {at} (got {} bytes, want {}): got {:02x?} want {:02x?}",
        got.len(),
        want.len(),
        &got[at..(at + 16).min(got.len())],
        &want[at..(at + 16).min(want.len())],
    ))
}
