//! ToCloud9's NATS events for guilds made from charters, in ToCloud9's own envelope
//! and payloads (walkline/ToCloud9 `shared/events`: `events.go`, `events-guild.go`,
//! `producer-guild.go`): a JSON object `{"v": version, "t": event type, "p":
//! payload}`, payload fields named as the Go structs name them (embedded structs
//! flattened), published on the event's subject.
//!
//! - `guild.created`, type 15, as the maintainer's guild-creation branch defines
//!   `GuildEventGuildCreatedPayload`: `RealmID`, `GuildID`, `GuildName`,
//!   `LeaderGUID`, `MemberGUIDs` (the signatories, the leader not included).
//! - `guild.member.added`, type 2, as master defines `GuildEventMemberAddedPayload`:
//!   `ServiceID`, `RealmID`, `GuildID`, `GuildName`, `MembersOnline`, `MemberGUID`,
//!   `MemberName`; one per member, the leader first. libsidecar applies it to online
//!   players (`SetInGuild`) and the gateway renders it.
//!
//! Publishing fails open: the guild exists either way; failures are counted.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use tc9_charter::{Announcer, BackendError, GuildCreated};

/// The envelope version ToCloud9's guild service writes (`guildserver.Ver`).
pub const VERSION: &str = "0.0.1";
/// `guild.created`'s subject and event type (`GuildEventGuildCreated`).
pub const GUILD_CREATED: (&str, u32) = ("guild.created", 15);
/// `guild.member.added`'s subject and event type (`GuildEventMemberAdded`).
pub const MEMBER_ADDED: (&str, u32) = ("guild.member.added", 2);

/// ToCloud9's event envelope.
#[derive(Debug, Serialize)]
struct Envelope<'a, P> {
    v: &'a str,
    t: u32,
    p: P,
}

/// `GuildEventGuildCreatedPayload`.
#[derive(Debug, Serialize)]
struct GuildCreatedPayload<'a> {
    #[serde(rename = "RealmID")]
    realm_id: u32,
    #[serde(rename = "GuildID")]
    guild_id: u64,
    #[serde(rename = "GuildName")]
    guild_name: &'a str,
    #[serde(rename = "LeaderGUID")]
    leader_guid: u64,
    #[serde(rename = "MemberGUIDs")]
    member_guids: Vec<u64>,
}

/// `GuildEventMemberAddedPayload` (with `GenericGuildEvent` flattened).
#[derive(Debug, Serialize)]
struct MemberAddedPayload<'a> {
    #[serde(rename = "ServiceID")]
    service_id: &'a str,
    #[serde(rename = "RealmID")]
    realm_id: u32,
    #[serde(rename = "GuildID")]
    guild_id: u64,
    #[serde(rename = "GuildName")]
    guild_name: &'a str,
    #[serde(rename = "MembersOnline")]
    members_online: Vec<u64>,
    #[serde(rename = "MemberGUID")]
    member_guid: u64,
    #[serde(rename = "MemberName")]
    member_name: &'a str,
}

/// A NATS publisher of ToCloud9 guild events for one sidecar of one realm.
#[derive(Debug, Clone)]
pub struct Nats {
    client: async_nats::Client,
    realm: u32,
    service: String,
}

impl Nats {
    /// A client of the NATS server at `url`, connecting in the background (a
    /// server down at start is retried; events published meanwhile fail open).
    pub async fn connect(
        url: &str,
        realm: u32,
        sidecar: &str,
    ) -> Result<Nats, async_nats::ConnectError> {
        let service = format!("tc9-sidecar-{sidecar}");
        let client = async_nats::ConnectOptions::new()
            .name(&service)
            .retry_on_initial_connect()
            .connect(url)
            .await?;
        Ok(Nats {
            client,
            realm,
            service,
        })
    }

    /// The messages announcing `guild`: subject and JSON, in publishing order.
    pub fn messages(&self, guild: &GuildCreated) -> Vec<(&'static str, Vec<u8>)> {
        let created = Envelope {
            v: VERSION,
            t: GUILD_CREATED.1,
            p: GuildCreatedPayload {
                realm_id: self.realm,
                guild_id: u64::from(guild.guild_id),
                guild_name: &guild.name,
                leader_guid: u64::from(guild.leader),
                member_guids: guild
                    .members
                    .iter()
                    .map(|(guid, _)| u64::from(*guid))
                    .filter(|guid| *guid != u64::from(guild.leader))
                    .collect(),
            },
        };
        let mut messages = vec![(GUILD_CREATED.0, json(&created))];
        for (guid, name) in &guild.members {
            let added = Envelope {
                v: VERSION,
                t: MEMBER_ADDED.1,
                p: MemberAddedPayload {
                    service_id: &self.service,
                    realm_id: self.realm,
                    guild_id: u64::from(guild.guild_id),
                    guild_name: &guild.name,
                    members_online: guild.online.iter().map(|g| u64::from(*g)).collect(),
                    member_guid: u64::from(*guid),
                    member_name: name,
                },
            };
            messages.push((MEMBER_ADDED.0, json(&added)));
        }
        messages
    }
}

/// An envelope as JSON (plain structs of strings and integers: it cannot fail).
fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl Announcer for Nats {
    fn guild_created<'a>(
        &'a self,
        guild: &'a GuildCreated,
    ) -> Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + 'a>> {
        Box::pin(async move {
            for (subject, payload) in self.messages(guild) {
                self.client
                    .publish(subject, payload.into())
                    .await
                    .map_err(BackendError::bus)?;
            }
            self.client.flush().await.map_err(BackendError::bus)
        })
    }
}
