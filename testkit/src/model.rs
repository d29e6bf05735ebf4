//! A realm of model worldservers: three models of the pinned AzerothCore
//! worldserver (`tc9_sidecar::tools::worldserver`) on AzerothCore's own tables, a
//! real PostgreSQL bus, a sidecar in front of each, and the steps of a charter's
//! life (buy, offer and sign, turn in).

use anyhow::{ensure, Result};
use mysql_async::prelude::*;
use tc9_codec::messages::petition::{sign_result, turn_in_result};
use tc9_codec::messages::{
    CmsgOfferPetition, CmsgPetitionBuy, CmsgPetitionSign, CmsgTurnInPetition, GuildCommand,
    GuildCommandError, SmsgGuildCommandResult, SmsgPetitionShowSignatures, SmsgPetitionSignResults,
    SmsgTurnInPetitionResults,
};
use tc9_codec::wire::Guid;
use tc9_sidecar::config::Config;
use tc9_sidecar::tools::worldserver::mysql::MysqlWorldDb;
use tc9_sidecar::tools::worldserver::{ModelConfig, ModelWorldserver};
use tc9_sidecar::Sidecar;

use crate::db::wait_located;
use crate::{eventually, start_sidecar, test_config, Gateway, MariaDb, PgDb, STEP};

/// The worldservers and sidecars of a realm, in order.
pub const IDS: [&str; 3] = ["A", "B", "C"];

/// One realm: its databases, three model worldservers and a sidecar in front of
/// each.
pub struct ModelRealm {
    /// AzerothCore's characters (and auth) tables.
    pub db: MariaDb,
    /// The bus.
    pub pg: PgDb,
    /// The model worldservers, A, B, C.
    pub worlds: Vec<ModelWorldserver>,
    /// A sidecar in front of each.
    pub sidecars: Vec<Sidecar>,
}

/// The databases of a realm, before its worldservers start (they load at start).
pub async fn databases(tag: &str) -> Result<Option<(MariaDb, PgDb)>> {
    let Some(db) = MariaDb::azerothcore(tag).await? else {
        return Ok(None);
    };
    Ok(Some((db, PgDb::create(tag).await?)))
}

impl ModelRealm {
    /// Starts the worldservers (with or without `mod-tc9-sidecar`) and their
    /// sidecars (told the same); sidecar A serves metrics.
    pub async fn start(db: MariaDb, pg: PgDb, module: bool) -> Result<ModelRealm> {
        ModelRealm::start_with(db, pg, module, |_| {}).await
    }

    /// [`ModelRealm::start`], each sidecar's configuration changed by `tweak`.
    pub async fn start_with(
        db: MariaDb,
        pg: PgDb,
        module: bool,
        tweak: impl Fn(&mut Config),
    ) -> Result<ModelRealm> {
        let mut worlds = Vec::new();
        let mut sidecars = Vec::new();
        for (n, id) in IDS.into_iter().enumerate() {
            let world = ModelWorldserver::start(
                MysqlWorldDb::new(&db.url()).map_err(anyhow::Error::from_boxed)?,
                ModelConfig {
                    module,
                    first_item: 1_000_000 * (n as u32 + 1),
                    ..ModelConfig::default()
                },
            )
            .await?;
            let mut config = Config {
                characters_db_url: db.url(),
                bus_url: pg.url(),
                worldserver_module: module,
                presence_expiry_secs: 6,
                bus_poll_ms: 150,
                metrics: if n == 0 {
                    "127.0.0.1:0".into()
                } else {
                    String::new()
                },
                ..test_config(id, world.addr())
            };
            tweak(&mut config);
            let sidecar = start_sidecar(config).await?;
            worlds.push(world);
            sidecars.push(sidecar);
        }
        Ok(ModelRealm {
            db,
            pg,
            worlds,
            sidecars,
        })
    }

    /// Logs `guid` in through sidecar `at` (0, 1, 2) and waits until the bus has it.
    pub async fn log_in(&self, at: usize, guid: u32) -> Result<Gateway> {
        let gateway = Gateway::logged_in(
            self.sidecars[at].addr(),
            &format!("{guid}@{}", IDS[at]),
            guid,
        )
        .await?;
        wait_located(&self.pg.client().await?, guid, IDS[at]).await?;
        Ok(gateway)
    }

    /// Buys a guild charter called `name` for `owner`; the charter's item guid and
    /// petition id once its row is in the database.
    pub async fn buy(&self, owner: &mut Gateway, guid: u32, name: &str) -> Result<(u32, u32)> {
        owner
            .send(&CmsgPetitionBuy {
                name: name.to_owned(),
                index: 1,
                ..CmsgPetitionBuy::default()
            })
            .await?;
        let pool = self.db.pool.clone();
        eventually(&format!("{name}'s charter in the database"), STEP, || {
            let pool = pool.clone();
            async move {
                let mut conn = pool.get_conn().await?;
                let row: Option<(u32, u32)> = conn
                    .exec_first(
                        "SELECT petitionguid, petition_id FROM petition WHERE ownerguid = ? AND type = 9",
                        (guid,),
                    )
                    .await?;
                Ok(row)
            }
        })
        .await
    }

    /// Stops every sidecar.
    pub async fn stop(self) -> Result<()> {
        for sidecar in self.sidecars {
            sidecar.stop().await?;
        }
        Ok(())
    }
}

/// Adds `guids` as Alliance characters, each on its own account.
pub async fn characters(db: &MariaDb, guids: impl IntoIterator<Item = u32>) -> Result<()> {
    for guid in guids {
        db.character(guid, guid, &format!("Char{guid}"), 1).await?;
    }
    Ok(())
}

/// The owner offers charter `item` to `signer`, who sees it and signs; both hear OK.
pub async fn offer_and_sign(
    owner: &mut Gateway,
    owner_guid: u32,
    signer: &mut Gateway,
    signer_guid: u32,
    item: u32,
) -> Result<()> {
    owner
        .send(&CmsgOfferPetition {
            unk: 0,
            petition: Guid::item(item),
            target: Guid::player(signer_guid),
        })
        .await?;
    let shown = signer
        .expect::<SmsgPetitionShowSignatures>("the offered charter")
        .await?;
    ensure!(shown.petition == Guid::item(item), "{shown:?}");
    ensure!(shown.owner == Guid::player(owner_guid), "{shown:?}");
    signer
        .send(&CmsgPetitionSign {
            petition: Guid::item(item),
            unk: 1,
        })
        .await?;
    for (who, gateway) in [("signer", &mut *signer), ("owner", &mut *owner)] {
        let result = gateway
            .expect::<SmsgPetitionSignResults>(&format!(
                "the {who} hears of signature {signer_guid}"
            ))
            .await?;
        ensure!(
            result.result == sign_result::OK && result.signer == Guid::player(signer_guid),
            "{who}: {result:?}"
        );
    }
    Ok(())
}

/// The owner turns charter `item` in.
pub fn turn_in(item: u32) -> CmsgTurnInPetition {
    CmsgTurnInPetition {
        petition: Guid::item(item),
        arena_emblem: None,
    }
}

/// The owner's turn-in succeeds: the guild's creation, then `TURN_IN_RESULTS` OK.
pub async fn expect_created(owner: &mut Gateway, name: &str) -> Result<()> {
    let created = owner
        .expect::<SmsgGuildCommandResult>("the guild's creation")
        .await?;
    ensure!(
        created
            == SmsgGuildCommandResult {
                command: GuildCommand::Create,
                name: name.to_owned(),
                error: GuildCommandError::Success,
            },
        "{created:?}"
    );
    expect_turn_in_result(owner, "the turn-in's result", turn_in_result::OK).await
}

/// The next `SMSG_TURN_IN_PETITION_RESULTS` on `owner` carries `result`; `what`
/// names the case in errors.
pub async fn expect_turn_in_result(owner: &mut Gateway, what: &str, result: u32) -> Result<()> {
    let got = owner.expect::<SmsgTurnInPetitionResults>(what).await?;
    ensure!(got.result == result, "{what}: {got:?}");
    Ok(())
}
