//! A realm for tests of cross-worldserver work: a characters database of its own
//! (characters 1..=9, character 1 owning the guild charter [`CHARTER`]) and a bus
//! database of its own, with sidecars configured for them.

use anyhow::Result;
use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;

use crate::{start_sidecar, test_config, MariaDb, PgDb, SidecarProcess, World};

/// The charter every realm starts with: item guid and petition id, owned by 1.
pub const CHARTER: u32 = 600;

/// The characters database and the bus of one realm.
pub struct BusRealm {
    /// The characters database.
    pub db: MariaDb,
    /// The bus database.
    pub pg: PgDb,
    /// A connection to the bus database, for looking.
    pub observer: tokio_postgres::Client,
}

impl BusRealm {
    /// A new realm; `tag` names its databases.
    pub async fn create(tag: &str) -> Result<BusRealm> {
        let db = MariaDb::create(tag).await?;
        for guid in 1..=9 {
            db.character(guid, guid, &format!("Char{guid}"), 1).await?;
        }
        db.petition(1, CHARTER, CHARTER, "Enduring").await?;
        let pg = PgDb::create(tag).await?;
        let observer = pg.client().await?;
        Ok(BusRealm { db, pg, observer })
    }

    /// Sidecar `id`'s configuration in front of `world`, its bus reached at `bus`
    /// (a relay's address or the server's): 150 ms polls, a 500 ms resolve timeout,
    /// metrics on an ephemeral port, declines unlimited.
    pub fn config(&self, id: &str, world: &World, bus: &str) -> Config {
        let mut config = Config {
            characters_db_url: self.db.url(),
            bus_url: format!("postgres://postgres@{bus}/{}", self.pg.name),
            bus_poll_ms: 150,
            resolve_timeout_ms: 500,
            presence_expiry_secs: 30,
            metrics: "127.0.0.1:0".into(),
            ..test_config(id, world.addr)
        };
        config
            .limits
            .insert("MSG_PETITION_DECLINE".into(), "1000:drop".into());
        config
    }

    /// Starts sidecar `id` with [`BusRealm::config`].
    pub async fn sidecar(&self, id: &str, world: &World, bus: &str) -> Result<Sidecar> {
        start_sidecar(self.config(id, world, bus)).await
    }

    /// Starts sidecar `id` as a process of the binary `exe`, one a test can kill,
    /// on [`BusRealm::config`]'s databases, with the module, polling every `poll_ms`.
    pub async fn process(
        &self,
        exe: &str,
        id: &str,
        world: &World,
        bus: &str,
        poll_ms: u64,
    ) -> Result<SidecarProcess> {
        let config = self.config(id, world, bus);
        SidecarProcess::spawn(
            exe,
            &[
                ("upstream", config.upstream),
                ("sidecar_id", id.to_owned()),
                ("realm_id", config.realm_id.to_string()),
                ("worldserver_module", "true".into()),
                ("characters_db_url", config.characters_db_url),
                ("bus_url", config.bus_url),
                ("bus_poll_ms", poll_ms.to_string()),
            ],
        )
        .await
    }
}
