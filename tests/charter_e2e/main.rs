//! End-to-end tests of cross-worldserver charter resolution: one realm, two sidecars.
//!
//! Each test builds one realm of its own:
//! - ONE MariaDB database (the realm's shared characters DB, loaded from
//!   `testkit/azerothcore.sql`) and ONE PostgreSQL database (the realm bus);
//!   both are dropped when the test ends, passed or failed;
//! - TWO scripted worldservers (`tc9_testkit::World`) that answer
//!   `CMSG_PLAYER_LOGIN` with `SMSG_LOGIN_VERIFY_WORLD`, `CMSG_PING` with
//!   `SMSG_PONG`, and record every client frame they receive;
//! - TWO in-process sidecars, "A" and "B", built by `Sidecar::build` as the binary
//!   builds them;
//! - scripted gateways speaking plain frames that log characters in.
//!
//! A ping through a gateway is the ordering fence: once the worldserver has seen
//! the ping (and the gateway its pong), every earlier frame of that session has been
//! decided, so "the worldserver never saw X" and "nothing was answered" are exact.
//!
//! - `cross_server_charter_flow`: offer, sign, already-signed, guild member,
//!   other faction, own charter, full charter, decline, charter query and guild query
//!   across the two sidecars, with the rows and packets they must produce.
//! - `concurrent_signers_never_exceed_nine`: twenty signers behind both sidecars
//!   sign one charter at the same moment, three rounds.
//! - `events_survive_a_sidecar_restart`: events published while B is down are
//!   delivered exactly once by the next B, and marked delivered in the outbox.
//!
//! - `stale_presence_of_a_crashed_sidecar_expires`: a restarted sidecar drops the
//!   presence its crashed predecessor left.
//! - `waiting_events_do_not_block_newer_ones`: events for characters not here do
//!   not hold back later events.
//! - `guild_answers_follow_guild_events`: a tabard saved on A shows in B's next
//!   cached guild answer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use mysql_async::prelude::Queryable;
use tc9_charter::{Directory, EventKind};
use tc9_codec::messages::petition::{sign_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{
    CmsgGuildQuery, CmsgOfferPetition, CmsgPetitionQuery, CmsgPetitionSign, GuildCommand,
    GuildCommandError, GuildEmblem, MsgPetitionDeclineClient, MsgPetitionDeclineServer,
    MsgSaveGuildEmblemClient, PetitionSignature, SmsgGuildCommandResult, SmsgGuildEvent,
    SmsgGuildQueryResponse, SmsgPetitionQueryResponse, SmsgPetitionShowSignatures,
    SmsgPetitionSignResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Message, Opcode};
use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;
use tc9_testkit::db::{sign_row, wait_located};
use tc9_testkit::{
    server_frame, start_sidecar, test_config, within, Gateway, MariaDb, PgDb, SignRow, World,
    SILENCE, STEP,
};
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

mod concurrency;
mod flow;
mod regressions;
mod restart;

/// How long a whole test may take.
const WHOLE_TEST: Duration = Duration::from_secs(60);
/// Presence expiry of the sidecars (heartbeat every third of it).
const PRESENCE_EXPIRY_SECS: u64 = 6;
/// Outbox poll interval of the sidecars.
const BUS_POLL_MS: u64 = 150;
/// The bus schema of realm 1.
const SCHEMA: &str = "tc9_realm_1";

/// `CMSG_PETITION_SIGN` for the charter item `petition`.
fn sign(petition: u32) -> CmsgPetitionSign {
    CmsgPetitionSign {
        petition: Guid::item(petition),
        unk: 1,
    }
}

/// `CMSG_OFFER_PETITION` of the charter item `petition` to the character `target`.
fn offer(petition: u32, target: u32) -> CmsgOfferPetition {
    CmsgOfferPetition {
        unk: 0,
        petition: Guid::item(petition),
        target: Guid::player(target),
    }
}

/// Two sidecars with a player behind each: the charter's owner (1) on A, the target
/// (2) on B, and the bus already placing the target.
struct Pair {
    a: Sidecar,
    b: Sidecar,
    owner: Gateway,
    target: Gateway,
}

/// The databases and worldservers of one realm.
struct Realm {
    mysql: MariaDb,
    pg: PgDb,
    world_a: World,
    world_b: World,
}

impl Realm {
    async fn create(tag: &str) -> Result<Realm> {
        Ok(Realm {
            mysql: MariaDb::create(tag).await?,
            pg: PgDb::create(tag).await?,
            world_a: World::start().await?,
            world_b: World::start().await?,
        })
    }

    /// Sidecar `id` ("A" or "B") in front of its worldserver, over the realm's
    /// databases, with `grace_secs` of shutdown grace.
    async fn sidecar(&self, id: &str, grace_secs: u64) -> Result<Sidecar> {
        let world = match id {
            "A" => &self.world_a,
            _ => &self.world_b,
        };
        start_sidecar(Config {
            characters_db_url: self.mysql.url(),
            bus_url: self.pg.url(),
            presence_expiry_secs: PRESENCE_EXPIRY_SECS,
            bus_poll_ms: BUS_POLL_MS,
            shutdown_grace_secs: grace_secs,
            ..test_config(id, world.addr)
        })
        .await
    }

    /// The opening most tests share: Owner (1) holding the charter `charter` named
    /// `name`, Target (2), and [`Pair`]'s sidecars and players; B with `grace_b_secs` of
    /// shutdown grace.
    async fn pair(&self, charter: u32, name: &str, grace_b_secs: u64) -> Result<Pair> {
        self.mysql.character(1, 1, "Owner", 1).await?;
        self.mysql.character(2, 2, "Target", 1).await?;
        self.mysql.petition(1, charter, charter, name).await?;
        let a = self.sidecar("A", 1).await?;
        let b = self.sidecar("B", grace_b_secs).await?;
        let owner = Gateway::logged_in(a.addr(), "owner 1 @A", 1).await?;
        let target = Gateway::logged_in(b.addr(), "target 2 @B", 2).await?;
        self.wait_located(2, "B").await?;
        Ok(Pair {
            a,
            b,
            owner,
            target,
        })
    }

    /// Waits until the bus places `character` behind `sidecar`.
    async fn wait_located(&self, character: u32, sidecar: &str) -> Result<()> {
        wait_located(&self.pg.client().await?, character, sidecar).await
    }
}

/// The bus of a sidecar built with one.
fn bus(sidecar: &Sidecar) -> Result<&tc9_sidecar::backends::postgres::Bus> {
    sidecar.bus().context("the sidecar has no bus")
}

/// The opcodes the sidecars resolve themselves and must never hand a worldserver in
/// these tests.
const RESOLVED: [Opcode; 5] = [
    Opcode::CMSG_OFFER_PETITION,
    Opcode::CMSG_PETITION_SIGN,
    Opcode::MSG_PETITION_DECLINE,
    Opcode::CMSG_PETITION_QUERY,
    Opcode::CMSG_PETITION_SHOW_SIGNATURES,
];
