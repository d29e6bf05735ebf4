//! Charter rules as plain functions over plain data: no sockets, no databases.
//!
//! Each function mirrors what AzerothCore's `PetitionsHandler.cpp` decides and sends,
//! so that a charter bought on one worldserver is offered, signed, queried and shown
//! on any other exactly as the worldserver that owns it would have done. The callers
//! (the commands in [`cmd`](crate::cmd) and a store's signing transaction) fetch the
//! data and carry out the verdict.

use tc9_codec::messages::petition::{sign_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{
    GuildCommand, GuildCommandError, GuildEmblem, PetitionSignature, SmsgGuildCommandResult,
    SmsgGuildQueryResponse, SmsgPetitionQueryResponse, SmsgPetitionShowSignatures,
    SmsgPetitionSignResults,
};
use tc9_codec::wire::Guid;

/// A `petition` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Petition {
    /// `petitionguid`: the charter item's low guid.
    pub petition_guid: u32,
    /// `petition_id`.
    pub petition_id: u32,
    /// `ownerguid`.
    pub owner_guid: u32,
    /// `name`.
    pub name: String,
    /// `type`: 9 for a guild charter, 2/3/5 for arena charters.
    pub kind: u8,
}

impl Petition {
    /// Whether this is a guild charter (arena charters pass through).
    pub fn is_guild_charter(&self) -> bool {
        self.kind == GUILD_CHARTER_TYPE
    }

    /// The charter item's guid.
    pub fn item_guid(&self) -> Guid {
        Guid::item(self.petition_guid)
    }

    /// The most signatures the charter can hold (`type` in AzerothCore).
    pub fn max_signatures(&self) -> usize {
        usize::from(self.kind)
    }

    /// This guild charter as a sign names it.
    pub fn key(&self) -> CharterKey {
        CharterKey {
            petition_guid: self.petition_guid,
            owner_guid: self.owner_guid,
        }
    }
}

/// A guild charter as a sign names it: the charter item, and its owner as the
/// database or this sidecar's last signature list had it. A store's signing step
/// confirms both under the owner's row lock; a list's owner slot may be wrong
/// (AzerothCore writes the requester there), which finds no charter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharterKey {
    /// `petitionguid`: the charter item's low guid.
    pub petition_guid: u32,
    /// `ownerguid`.
    pub owner_guid: u32,
}

/// A `petition_sign` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// `playerguid`.
    pub player_guid: u32,
    /// `player_account`.
    pub account: u32,
}

/// A player as the rules need them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Player {
    /// `characters.guid`.
    pub guid: u32,
    /// `characters.account`.
    pub account: u32,
    /// `characters.name`.
    pub name: String,
    /// `characters.race`.
    pub race: u8,
    /// `characters.class`.
    pub class: u8,
    /// `characters.level`.
    pub level: u8,
    /// `guild_member.guildid`, if in a guild.
    pub guild_id: Option<u32>,
}

/// The two factions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Team {
    /// Human, dwarf, night elf, gnome, draenei.
    Alliance,
    /// Orc, undead, tauren, troll, blood elf.
    Horde,
}

/// The faction of a playable 3.3.5a race.
pub fn team_of_race(race: u8) -> Option<Team> {
    match race {
        1 | 3 | 4 | 7 | 11 => Some(Team::Alliance),
        2 | 5 | 6 | 8 | 10 => Some(Team::Horde),
        _ => None,
    }
}

/// Realm settings the rules depend on (worldserver.conf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `AllowTwoSide.Interaction.Guild`.
    pub two_side_guild: bool,
    /// `MinPetitionSigns`: signatures a guild charter needs to be turned in (at most 9).
    pub min_signatures: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            two_side_guild: false,
            min_signatures: 9,
        }
    }
}

impl Rules {
    /// Whether two players may share a charter.
    fn allied(&self, a: &Player, b_race: u8) -> bool {
        self.two_side_guild || team_of_race(a.race) == team_of_race(b_race)
    }

    /// Signatures needed before a charter can be turned in.
    pub fn required_signatures(&self, petition: &Petition) -> u32 {
        if petition.is_guild_charter() {
            self.min_signatures.min(u32::from(GUILD_CHARTER_TYPE))
        } else {
            u32::from(petition.kind).saturating_sub(1)
        }
    }
}

/// What happens to a signature.
#[derive(Debug, Clone, PartialEq)]
pub enum SignVerdict {
    /// AzerothCore answers nothing (own charter, charter full).
    Ignore,
    /// A command result to the signer only.
    Refuse(SmsgGuildCommandResult),
    /// The account signed already: this result to the signer and the owner.
    AlreadySigned(SmsgPetitionSignResults),
    /// Insert the signature, then this result to the signer and the owner.
    Record(SmsgPetitionSignResults),
}

/// Judges a guild charter signature, in AzerothCore's order.
///
/// `owner_race` decides the faction rule; `invited` is whether the signer has a
/// pending guild invitation.
pub fn judge_sign(
    petition: &Petition,
    signatures: &[Signature],
    signer: &Player,
    owner_race: u8,
    invited: bool,
    rules: &Rules,
) -> SignVerdict {
    if petition.owner_guid == signer.guid {
        return SignVerdict::Ignore;
    }
    if !rules.allied(signer, owner_race) {
        return SignVerdict::Refuse(command_result(
            GuildCommand::Create,
            "",
            GuildCommandError::NotAllied,
        ));
    }
    if signer.guild_id.is_some() {
        return SignVerdict::Refuse(command_result(
            GuildCommand::Invite,
            &signer.name,
            GuildCommandError::AlreadyInGuildS,
        ));
    }
    if invited {
        return SignVerdict::Refuse(command_result(
            GuildCommand::Invite,
            &signer.name,
            GuildCommandError::AlreadyInvitedToGuildS,
        ));
    }
    if signatures.len() + 1 > petition.max_signatures() {
        return SignVerdict::Ignore;
    }
    if signatures.iter().any(|s| s.account == signer.account) {
        return SignVerdict::AlreadySigned(sign_results(
            petition,
            signer.guid,
            sign_result::ALREADY_SIGNED,
        ));
    }
    SignVerdict::Record(sign_results(petition, signer.guid, sign_result::OK))
}

/// What happens to a charter offer.
#[derive(Debug, Clone, PartialEq)]
pub enum OfferVerdict {
    /// AzerothCore answers nothing (the offerer does not own the charter).
    Ignore,
    /// A command result to the offerer.
    Refuse(SmsgGuildCommandResult),
    /// Show the charter to the target.
    Deliver,
}

/// Judges a guild charter offer from `offerer` to `target`, in AzerothCore's order.
///
/// AzerothCore names the offerer, not the target, in the already-in-guild and
/// already-invited results; so does this.
pub fn judge_offer(
    petition: &Petition,
    offerer: &Player,
    target: &Player,
    target_invited: bool,
    rules: &Rules,
) -> OfferVerdict {
    if petition.owner_guid != offerer.guid {
        return OfferVerdict::Ignore;
    }
    if !rules.allied(offerer, target.race) {
        return OfferVerdict::Refuse(command_result(
            GuildCommand::Create,
            "",
            GuildCommandError::NotAllied,
        ));
    }
    if target.guild_id.is_some() {
        return OfferVerdict::Refuse(command_result(
            GuildCommand::Invite,
            &offerer.name,
            GuildCommandError::AlreadyInGuildS,
        ));
    }
    if target_invited {
        return OfferVerdict::Refuse(command_result(
            GuildCommand::Invite,
            &offerer.name,
            GuildCommandError::AlreadyInvitedToGuildS,
        ));
    }
    OfferVerdict::Deliver
}

/// `SMSG_GUILD_COMMAND_RESULT` as AzerothCore's `Guild::SendCommandResult` writes it.
pub fn command_result(
    command: GuildCommand,
    name: &str,
    error: GuildCommandError,
) -> SmsgGuildCommandResult {
    SmsgGuildCommandResult {
        command,
        name: name.to_owned(),
        error,
    }
}

/// `SMSG_PETITION_SIGN_RESULTS` for `signer`.
pub fn sign_results(petition: &Petition, signer: u32, result: u32) -> SmsgPetitionSignResults {
    SmsgPetitionSignResults {
        petition: petition.item_guid(),
        signer: Guid::player(signer),
        result,
    }
}

/// `SMSG_PETITION_SHOW_SIGNATURES` with every signature, `owner_slot` in the owner
/// field (the requester for a show, the offerer for an offer).
pub fn show_signatures(
    petition: &Petition,
    owner_slot: u32,
    signatures: &[Signature],
) -> SmsgPetitionShowSignatures {
    SmsgPetitionShowSignatures {
        petition: petition.item_guid(),
        owner: Guid::player(owner_slot),
        petition_id: petition.petition_id,
        signatures: signatures
            .iter()
            .map(|s| PetitionSignature {
                player: Guid::player(s.player_guid),
                unk: 0,
            })
            .collect(),
    }
}

/// `SMSG_PETITION_QUERY_RESPONSE` for a charter.
pub fn query_response(petition: &Petition, rules: &Rules) -> SmsgPetitionQueryResponse {
    SmsgPetitionQueryResponse::for_charter(
        petition.petition_id,
        Guid::player(petition.owner_guid),
        petition.name.clone(),
        petition.kind,
        rules.required_signatures(petition),
    )
}

/// A `guild` row with its ranks, as `SMSG_GUILD_QUERY_RESPONSE` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guild {
    /// `guildid`.
    pub id: u32,
    /// `name`.
    pub name: String,
    /// `EmblemStyle`, `EmblemColor`, `BorderStyle`, `BorderColor`, `BackgroundColor`.
    pub emblem: [u8; 5],
    /// `(rid, rname)` of each `guild_rank` row.
    pub ranks: Vec<(u8, String)>,
}

/// `SMSG_GUILD_QUERY_RESPONSE` for a guild: rank names by rank id (ten slots).
pub fn guild_query_response(guild: &Guild) -> SmsgGuildQueryResponse {
    let mut rank_names: [String; 10] = Default::default();
    for (rid, name) in &guild.ranks {
        if let Some(slot) = rank_names.get_mut(usize::from(*rid)) {
            slot.clone_from(name);
        }
    }
    let [emblem_style, emblem_color, border_style, border_color, background_color] =
        guild.emblem.map(u32::from);
    SmsgGuildQueryResponse {
        guild_id: guild.id,
        name: guild.name.clone(),
        rank_names,
        emblem: GuildEmblem {
            emblem_style,
            emblem_color,
            border_style,
            border_color,
            background_color,
        },
        rank_count: guild.ranks.len() as u32,
    }
}

#[cfg(test)]
mod tests;
