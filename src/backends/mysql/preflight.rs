//! Schema preflight: every table, column and key the sidecar reads or writes in
//! AzerothCore's characters and auth databases, checked against
//! `information_schema`, with what the sidecar does about each thing missing.

use std::fmt;
use std::time::Duration;

use mysql_async::prelude::*;

use super::{Db, StoreError};

/// The kind of a column, as the sidecar reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Any integer type.
    Int,
    /// Any character type (or bytes, read lossily).
    Text,
    /// Any binary type.
    Bytes,
}

impl Kind {
    fn accepts(self, data_type: &str) -> bool {
        let ints = ["tinyint", "smallint", "mediumint", "int", "bigint"];
        let texts = [
            "char",
            "varchar",
            "tinytext",
            "text",
            "mediumtext",
            "longtext",
        ];
        let bytes = [
            "binary",
            "varbinary",
            "tinyblob",
            "blob",
            "mediumblob",
            "longblob",
        ];
        match self {
            Kind::Int => ints.contains(&data_type),
            // Text is read lossily from its bytes: binary columns do too.
            Kind::Text => texts.contains(&data_type) || bytes.contains(&data_type),
            Kind::Bytes => bytes.contains(&data_type),
        }
    }
}

/// What the sidecar does when something is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consequence {
    /// The sidecar does not start: it would write rows AzerothCore relates wrongly.
    RefuseToStart,
    /// The packets of this feature go to the worldserver unresolved.
    FailOpen(&'static str),
    /// It works, less well.
    Degraded(&'static str),
}

impl fmt::Display for Consequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Consequence::RefuseToStart => f.write_str("the sidecar refuses to start"),
            Consequence::FailOpen(feature) => write!(f, "{feature} fail open"),
            Consequence::Degraded(how) => f.write_str(how),
        }
    }
}

/// One thing the schema lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is missing or of the wrong type.
    pub what: String,
    /// What the sidecar does about it.
    pub consequence: Consequence,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.consequence)
    }
}

/// A table the sidecar uses: its columns, a key it relies on, and what happens
/// without them.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    missing: Consequence,
    /// Columns some index must start with, and what its absence costs.
    key: Option<(&'static [&'static str], &'static str)>,
}

const CHARTERS: Consequence = Consequence::FailOpen("charter packets");
const GUILD_QUERIES: Consequence = Consequence::FailOpen("guild queries");

/// What the sidecar reads and writes in the characters database.
const CHARACTERS: &[Table] = &[
    Table {
        name: "characters",
        columns: &[
            ("guid", Kind::Int),
            ("account", Kind::Int),
            ("name", Kind::Text),
            ("race", Kind::Int),
            ("class", Kind::Int),
            ("level", Kind::Int),
        ],
        missing: CHARTERS,
        key: None,
    },
    Table {
        name: "guild_member",
        columns: &[("guid", Kind::Int), ("guildid", Kind::Int)],
        missing: CHARTERS,
        key: None,
    },
    Table {
        name: "petition",
        columns: &[
            ("petitionguid", Kind::Int),
            ("petition_id", Kind::Int),
            ("ownerguid", Kind::Int),
            ("name", Kind::Text),
            ("type", Kind::Int),
        ],
        missing: Consequence::RefuseToStart,
        key: Some((
            &["ownerguid", "type"],
            "signing locks the whole petition table",
        )),
    },
    Table {
        name: "petition_sign",
        columns: &[
            ("ownerguid", Kind::Int),
            ("petitionguid", Kind::Int),
            ("petition_id", Kind::Int),
            ("playerguid", Kind::Int),
            ("player_account", Kind::Int),
            ("type", Kind::Int),
        ],
        missing: Consequence::RefuseToStart,
        key: Some((&["petition_id"], "signature reads scan the whole table")),
    },
    Table {
        name: "guild",
        columns: &[
            ("guildid", Kind::Int),
            ("name", Kind::Text),
            ("EmblemStyle", Kind::Int),
            ("EmblemColor", Kind::Int),
            ("BorderStyle", Kind::Int),
            ("BorderColor", Kind::Int),
            ("BackgroundColor", Kind::Int),
        ],
        missing: GUILD_QUERIES,
        key: None,
    },
    Table {
        name: "guild_rank",
        columns: &[
            ("guildid", Kind::Int),
            ("rid", Kind::Int),
            ("rname", Kind::Text),
        ],
        missing: GUILD_QUERIES,
        key: None,
    },
];

/// What the sidecar reads in the auth database.
const AUTH: &[Table] = &[Table {
    name: "account",
    columns: &[("username", Kind::Text), ("session_key", Kind::Bytes)],
    missing: Consequence::FailOpen("wotlk-crypt sessions (copied as opaque bytes)"),
    key: None,
}];

/// Which database a check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// AzerothCore's characters database.
    Characters,
    /// AzerothCore's auth database.
    Auth,
}

impl Db {
    /// Checks the connected database against what the sidecar needs of `schema`;
    /// every finding, none when it all is there.
    pub async fn preflight(&self, schema: Schema) -> Result<Vec<Finding>, StoreError> {
        let mut conn = self.pool.get_conn().await?;
        let columns: Vec<(String, String, String)> = conn
            .query(
                "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE()",
            )
            .await?;
        let indexes: Vec<(String, String, u64, String)> = conn
            .query(
                "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME \
                 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
                 ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            )
            .await?;
        let tables = match schema {
            Schema::Characters => CHARACTERS,
            Schema::Auth => AUTH,
        };
        let mut findings = Vec::new();
        for table in tables {
            let of_table = |t: &String| t.eq_ignore_ascii_case(table.name);
            if !columns.iter().any(|(t, _, _)| of_table(t)) {
                findings.push(Finding {
                    what: format!("table `{}` is missing", table.name),
                    consequence: table.missing.clone(),
                });
                continue;
            }
            for (column, kind) in table.columns {
                let found = columns
                    .iter()
                    .find(|(t, c, _)| of_table(t) && c.eq_ignore_ascii_case(column));
                let what = match found {
                    None => format!("column `{}`.`{column}` is missing", table.name),
                    Some((_, _, data_type)) if !kind.accepts(data_type) => format!(
                        "column `{}`.`{column}` is {data_type}, the sidecar reads it as {kind:?}",
                        table.name
                    ),
                    Some(_) => continue,
                };
                findings.push(Finding {
                    what,
                    consequence: table.missing.clone(),
                });
            }
            if let Some((prefix, cost)) = table.key {
                let leads = |index: &str| {
                    let cols: Vec<&str> = indexes
                        .iter()
                        .filter(|(t, i, _, _)| of_table(t) && i == index)
                        .map(|(_, _, _, c)| c.as_str())
                        .collect();
                    cols.len() >= prefix.len()
                        && prefix
                            .iter()
                            .zip(&cols)
                            .all(|(p, c)| p.eq_ignore_ascii_case(c))
                };
                let keyed = indexes
                    .iter()
                    .filter(|(t, _, seq, _)| of_table(t) && *seq == 1)
                    .any(|(_, index, _, _)| leads(index));
                if !keyed {
                    findings.push(Finding {
                        what: format!("no key on `{}` ({})", table.name, prefix.join(", ")),
                        consequence: Consequence::Degraded(cost),
                    });
                }
            }
        }
        Ok(findings)
    }
}

/// How long one database may take to answer the check.
const CHECK_WAIT: Duration = Duration::from_secs(5);

/// What the check found in one database.
#[derive(Debug)]
pub enum Outcome {
    /// Not configured.
    Skipped,
    /// It could not be reached or queried.
    Unreachable(String),
    /// What it lacks; empty when it has everything.
    Checked(Vec<Finding>),
}

/// Checks `db` for `schema`, bounded in time.
pub async fn check(db: &Db, schema: Schema) -> Outcome {
    match tokio::time::timeout(CHECK_WAIT, db.preflight(schema)).await {
        Ok(Ok(findings)) => Outcome::Checked(findings),
        Ok(Err(e)) => Outcome::Unreachable(e.to_string()),
        Err(_) => Outcome::Unreachable(format!("no answer within {CHECK_WAIT:?}")),
    }
}
