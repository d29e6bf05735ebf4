//! ToCloud9's guild events: with `nats_url` set, a guild made from a charter is
//! announced on the machine's NATS server as `guild.created` and one
//! `guild.member.added` per member, in ToCloud9's envelope and payloads; a
//! subscriber checks every field. With NATS unreachable the guild is made all the
//! same and the failure is counted. Model worldservers on AzerothCore's own tables
//! (skipped where `../shared` is absent).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use serde_json::{json, Value};
use tc9_testkit::model::{
    characters, databases, expect_created, offer_and_sign, turn_in, ModelRealm,
};
use tc9_testkit::{eventually, http_get, metric_sum, within, Gateway, STEP};

/// The machine's NATS server.
const NATS: &str = "nats://127.0.0.1:4222";

/// A realm whose owner 1 (on A) gathers nine signatures from B and C and turns the
/// charter `name` in; the new guild's id.
async fn make_guild(realm: &ModelRealm, name: &str) -> Result<u32> {
    let mut owner = realm.log_in(0, 1).await?;
    let (item, _) = realm.buy(&mut owner, 1, name).await?;
    let mut signers = Vec::new();
    for signer in 2..=10u32 {
        let mut gateway = realm.log_in(1 + signer as usize % 2, signer).await?;
        offer_and_sign(&mut owner, 1, &mut gateway, signer, item).await?;
        signers.push(gateway);
    }
    owner.send(&turn_in(item)).await?;
    expect_created(&mut owner, name).await?;
    let mut conn = realm.db.pool.get_conn().await?;
    let id: Option<u32> = mysql_async::prelude::Queryable::exec_first(
        &mut conn,
        "SELECT guildid FROM guild WHERE name = ?",
        (name,),
    )
    .await?;
    // The members stay in the world while the events go out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop((owner, signers));
    id.context("the guild row")
}

/// An announcement counter of sidecar A.
async fn announced(realm: &ModelRealm, result: &str) -> Result<f64> {
    let addr = realm.sidecars[0]
        .metrics_addr()
        .context("A serves metrics")?;
    let label = format!("result=\"{result}\"");
    Ok(metric_sum(
        &http_get(addr, "/metrics").await?.1,
        "tc9_sidecar_guild_announcements_total",
        &[&label],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guild_from_a_charter_is_announced_in_tocloud9_events() -> Result<()> {
    within(
        Duration::from_secs(90),
        "the NATS events test",
        announced_guild(),
    )
    .await
}

async fn announced_guild() -> Result<()> {
    const NAME: &str = "Heralds Of Nats";
    let Some((db, pg)) = databases("nats_events").await? else {
        return Ok(());
    };
    characters(&db, 1..=10).await?;
    let subscriber = async_nats::connect(NATS)
        .await
        .context("the machine's NATS server")?;
    let mut events = subscriber.subscribe("guild.>").await?;
    subscriber.flush().await?;
    let realm = ModelRealm::start_with(db, pg, true, |c| c.nats_url = NATS.into()).await?;
    let guild_id = make_guild(&realm, NAME).await?;

    // Every message about this guild: one guild.created, ten guild.member.added.
    let mut received: Vec<(String, Value)> = Vec::new();
    while received.len() < 11 {
        let message = tokio::time::timeout(STEP, events.next())
            .await
            .context("the announcements")?
            .context("the subscription ended")?;
        let value: Value = serde_json::from_slice(&message.payload)?;
        if value["p"]["GuildName"] == NAME {
            eprintln!(
                "{}: {}",
                message.subject,
                String::from_utf8_lossy(&message.payload)
            );
            received.push((message.subject.to_string(), value));
        }
    }
    let (subject, created) = &received[0];
    ensure!(subject == "guild.created", "{subject}");
    ensure!(
        *created
            == json!({"v": "0.0.1", "t": 15, "p": {
                "RealmID": 1, "GuildID": guild_id, "GuildName": NAME, "LeaderGUID": 1,
                "MemberGUIDs": [2, 3, 4, 5, 6, 7, 8, 9, 10]}}),
        "{created}"
    );
    let mut members = BTreeMap::new();
    for (n, (subject, added)) in received[1..].iter().enumerate() {
        ensure!(subject == "guild.member.added", "{subject}");
        let guid = added["p"]["MemberGUID"].as_u64().context("MemberGUID")?;
        if n == 0 {
            ensure!(guid == 1, "the leader first: {added}");
        }
        let expected = json!({"v": "0.0.1", "t": 2, "p": {
            "ServiceID": "tc9-sidecar-A", "RealmID": 1, "GuildID": guild_id, "GuildName": NAME,
            "MembersOnline": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "MemberGUID": guid, "MemberName": format!("Char{guid}")}});
        ensure!(*added == expected, "{added}\n!= {expected}");
        members.insert(guid, ());
    }
    ensure!(members.keys().copied().eq(1..=10), "{members:?}");
    ensure!(announced(&realm, "ok").await? == 1.0);
    ensure!(
        tokio::time::timeout(Duration::from_millis(500), events.next())
            .await
            .is_err(),
        "more than one announcement"
    );
    realm.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_nats_fails_open_and_is_counted() -> Result<()> {
    within(
        Duration::from_secs(90),
        "the NATS failure test",
        unreachable(),
    )
    .await
}

async fn unreachable() -> Result<()> {
    let Some((db, pg)) = databases("nats_down").await? else {
        return Ok(());
    };
    characters(&db, 1..=10).await?;
    // Nothing listens on port 9.
    let realm =
        ModelRealm::start_with(db, pg, true, |c| c.nats_url = "nats://127.0.0.1:9".into()).await?;
    make_guild(&realm, "Unheralded").await?;
    let realm_ref = &realm;
    eventually("the failed announcement counted", STEP, || async move {
        Ok((announced(realm_ref, "failed").await? == 1.0).then_some(()))
    })
    .await?;
    // The sidecar serves on: a new login goes through.
    drop(Gateway::logged_in(realm.sidecars[0].addr(), "after the failure", 1).await?);
    realm.stop().await
}
