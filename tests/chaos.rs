//! Bounded chaos: three sidecars, each reaching MariaDB and PostgreSQL through relays
//! of its own, while 48 signers storm three charters and a chaos task refuses or
//! blackholes a random relay again and again. Afterwards, with everything restored:
//!
//! - no charter holds more signature rows than its cap, nor one account twice;
//! - every notice recorded reached its owner exactly once (the owners' frames are
//!   the notice rows, one for one), so every committed signature was told once;
//! - every signer answered "signed" has its row;
//! - no session was lost: every owner and signer still passes traffic.
//!
//! `TC9_CHAOS_SECS` sets the storm's length (default 10 s); the figures are printed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use mysql_async::prelude::*;
use tc9_codec::messages::petition::sign_result;
use tc9_codec::messages::{CmsgPetitionSign, SmsgPetitionSignResults};
use tc9_codec::sample::SampleRng;
use tc9_codec::wire::Guid;
use tc9_codec::{Message, Opcode};
use tc9_testkit::{
    eventually, start_sidecar, within, BusRealm, Cut, Gateway, Relay, World, CHARTER, MARIADB_ADDR,
    POSTGRES_ADDR,
};

/// Charters and their owners: (item, owner); item 600 is the realm's own.
const CHARTERS: [(u32, u32); 9] = {
    let mut charters = [(0, 0); 9];
    let mut n = 0;
    while n < 9 {
        charters[n] = (CHARTER + n as u32, n as u32 + 1);
        n += 1;
    }
    charters
};
/// Signers: guids 10.., two characters per account (alts).
const SIGNERS: u32 = 48;
/// The most signatures a guild charter holds.
const CAP: usize = 9;

fn storm_length() -> Duration {
    let secs = std::env::var("TC9_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_storm_under_database_chaos_keeps_every_invariant() -> Result<()> {
    let limit = storm_length() + Duration::from_secs(90);
    within(limit, "the chaos test", chaos()).await
}

/// What one signer saw: answers by charter.
#[derive(Default)]
struct Seen {
    signed: Vec<u32>,
    other_answers: u64,
    unanswered: u64,
}

async fn chaos() -> Result<()> {
    let realm = BusRealm::create("chaos").await?;
    for (item, owner) in &CHARTERS[1..] {
        realm
            .db
            .petition(*owner, *item, *item, &format!("Storm{item}"))
            .await?;
    }
    for guid in 10..10 + SIGNERS {
        realm
            .db
            .character(guid, 1000 + guid / 2, &format!("Signer{guid}"), 1)
            .await?;
    }
    let mut relays = Vec::new();
    let mut sidecars = Vec::new();
    let mut worlds = Vec::new();
    for id in ["A", "B", "C"] {
        let (mariadb, postgres) = (
            Relay::start(MARIADB_ADDR).await?,
            Relay::start(POSTGRES_ADDR).await?,
        );
        let world = World::start().await?;
        let mut config = realm.config(id, &world, &postgres.addr.to_string());
        config.characters_db_url = format!("mysql://root@{}/{}", mariadb.addr, realm.db.name);
        sidecars.push(start_sidecar(config).await?);
        relays.push((format!("{id} MariaDB"), mariadb));
        relays.push((format!("{id} PostgreSQL"), postgres));
        worlds.push(world);
    }
    let addrs: Vec<_> = sidecars.iter().map(|s| s.addr()).collect();

    // Owners read whatever comes until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut owners = Vec::new();
    for (n, (_, owner)) in CHARTERS.iter().enumerate() {
        let mut gateway =
            Gateway::logged_in(addrs[n % 3], &format!("owner {owner}"), *owner).await?;
        let stop = Arc::clone(&stop);
        owners.push(tokio::spawn(async move {
            let mut told = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(frame) = gateway.recv(Duration::from_millis(100)).await? {
                    told.push(frame);
                }
            }
            told.extend(gateway.drain(Duration::from_secs(1)).await?);
            gateway.echo(b"the owner's session lived").await?;
            anyhow::Ok(told)
        }));
    }

    // Signers sign random charters, well under the per-second limit.
    let storm_ends = Instant::now() + storm_length();
    let mut signers = Vec::new();
    for n in 0..SIGNERS {
        let guid = 10 + n;
        let mut gateway =
            Gateway::logged_in(addrs[n as usize % 3], &format!("signer {guid}"), guid).await?;
        signers.push(tokio::spawn(async move {
            let mut rng = SampleRng::new(u64::from(guid));
            let mut seen: BTreeMap<u32, Seen> = BTreeMap::new();
            while Instant::now() < storm_ends {
                let (item, _) = CHARTERS[rng.below(CHARTERS.len() as u64) as usize];
                gateway
                    .send(&CmsgPetitionSign {
                        petition: Guid::item(item),
                        unk: 1,
                    })
                    .await?;
                let entry = seen.entry(item).or_default();
                let answers = gateway.fence().await?;
                let mut answered = false;
                for frame in answers
                    .iter()
                    .filter(|f| f.opcode() == Opcode::SMSG_PETITION_SIGN_RESULTS)
                {
                    answered = true;
                    let answer = SmsgPetitionSignResults::decode(frame.body())?;
                    if answer.result == sign_result::OK {
                        entry.signed.push(guid);
                    } else {
                        entry.other_answers += 1;
                    }
                }
                if !answered {
                    entry.unanswered += 1;
                }
                tokio::time::sleep(Duration::from_millis(400 + rng.below(600))).await;
            }
            gateway.echo(b"the signer's session lived").await?;
            anyhow::Ok((seen, gateway))
        }));
    }

    // Chaos: a random relay refused or blackholed for a while, again and again.
    let cuts = Arc::new(AtomicU64::new(0));
    let mut rng = SampleRng::new(0xC4A05);
    while Instant::now() < storm_ends {
        let (name, relay) = &relays[rng.below(relays.len() as u64) as usize];
        let how = if rng.below(2) == 0 {
            Cut::Refuse
        } else {
            Cut::Blackhole
        };
        relay.cut(how).await?;
        cuts.fetch_add(1, Ordering::Relaxed);
        let held = Duration::from_millis(200 + rng.below(1300));
        tokio::time::sleep(held).await;
        relay.restore();
        eprintln!("chaos: {name} {how:?} for {held:?}");
        tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
    }
    for (_, relay) in &relays {
        relay.restore();
    }

    let mut signed_answers = BTreeMap::<u32, Vec<u32>>::new();
    let (mut other, mut silent, mut signs) = (0, 0, 0);
    let mut live = Vec::new();
    for signer in signers {
        let (seen, gateway) = signer.await.context("a signer task panicked")??;
        for (item, s) in seen {
            signs += s.signed.len() as u64 + s.other_answers + s.unanswered;
            other += s.other_answers;
            silent += s.unanswered;
            signed_answers.entry(item).or_default().extend(s.signed);
        }
        live.push(gateway);
    }
    // Every notice delivered (those of the storm's last moments included).
    let db = &realm.db;
    eventually(
        "every notice delivered",
        Duration::from_secs(30),
        || async move {
            Ok(db
                .notices()
                .await?
                .iter()
                .all(|(_, delivered)| *delivered)
                .then_some(()))
        },
    )
    .await?;
    stop.store(true, Ordering::Relaxed);
    let mut told = BTreeMap::<u32, Vec<Vec<u8>>>::new();
    for (task, (_, owner)) in owners.into_iter().zip(CHARTERS) {
        let frames = task.await.context("an owner task panicked")??;
        told.insert(
            owner,
            frames.iter().map(|f| f.as_bytes().to_vec()).collect(),
        );
    }

    // The invariants.
    let mut conn = realm.db.pool.get_conn().await?;
    let mut rows_total = 0;
    for (item, owner) in CHARTERS {
        let rows = realm.db.signatures(item).await?;
        rows_total += rows.len();
        ensure!(rows.len() <= CAP, "charter {item}: {} rows", rows.len());
        let mut accounts: Vec<u32> = rows.iter().map(|r| r.4).collect();
        accounts.sort_unstable();
        accounts.dedup();
        ensure!(
            accounts.len() == rows.len(),
            "charter {item}: an account signed twice: {rows:?}"
        );
        let signers: Vec<u32> = rows.iter().map(|r| r.3).collect();
        for guid in signed_answers.get(&item).into_iter().flatten() {
            ensure!(
                signers.contains(guid),
                "charter {item}: {guid} was told it signed, no row"
            );
        }
        let mut recorded: Vec<Vec<u8>> = conn
            .exec(
                "SELECT payload FROM tc9_sidecar_notice WHERE character_guid = ? ORDER BY id",
                (owner,),
            )
            .await?;
        let mut received = told.remove(&owner).unwrap_or_default();
        recorded.sort();
        received.sort();
        ensure!(
            recorded == received,
            "owner {owner}: {} notices recorded, {} frames received",
            recorded.len(),
            received.len()
        );
        let ok_told = received
            .iter()
            .filter(|f| {
                SmsgPetitionSignResults::decode(&f[4..]).is_ok_and(|m| m.result == sign_result::OK)
            })
            .count();
        ensure!(
            ok_told == rows.len(),
            "charter {item}: {} rows, owner told {ok_told} signatures",
            rows.len()
        );
    }
    for gateway in &mut live {
        gateway.echo(b"after the storm").await?;
    }
    let forwarded: usize = worlds
        .iter()
        .map(|w| w.count(Opcode::CMSG_PETITION_SIGN))
        .sum();
    eprintln!(
        "chaos figures: {} s storm, {} cuts, {signs} signs ({} answered signed, {other} other answers, \
         {silent} unanswered: full charters are silent, {forwarded} failed open to a worldserver), \
         {rows_total} rows, {} notices each told once, {} sessions all alive",
        storm_length().as_secs(),
        cuts.load(Ordering::Relaxed),
        signed_answers.values().map(Vec::len).sum::<usize>(),
        realm.db.notices().await?.len(),
        live.len() + CHARTERS.len()
    );
    drop(live);
    for sidecar in sidecars {
        sidecar.stop().await?;
    }
    Ok(())
}
