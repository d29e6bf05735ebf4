//! `HandleTurnInPetitionOpcode` of `PetitionsHandler.cpp` (pinned commit) for guild
//! charters: its checks in order, the guild it creates with AzerothCore's default
//! ranks, and the rows it deletes; line numbers cite that file.

use std::time::{SystemTime, UNIX_EPOCH};

use tc9_codec::messages::petition::{turn_in_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{CmsgTurnInPetition, GuildCommand, GuildCommandError};

use super::db::{DbError, NewGuild, WorldDb};
use super::handlers::{command_result, turn_in_results, Replies};
use super::{lock, Core, Player};

/// The default ranks of `Guild::_CreateDefaultGuildRanks` (`Guild.cpp:2432-2447`),
/// with the English names of `acore_string` and the rights of `Guild.h`.
fn default_ranks() -> Vec<(u8, String, u32)> {
    const ALL: u32 = 0x001D_F1FF;
    const CHAT: u32 = 0x41 | 0x42;
    ["Guild Master", "Officer", "Veteran", "Member", "Initiate"]
        .into_iter()
        .enumerate()
        .map(|(rid, name)| (rid as u8, name.to_owned(), if rid < 2 { ALL } else { CHAT }))
        .collect()
}

/// `HandleTurnInPetitionOpcode` (:645-834), guild charters.
pub(super) async fn turn_in<D: WorldDb>(
    core: &Core<D>,
    player: &mut Player,
    turn_in: CmsgTurnInPetition,
) -> Result<Replies, DbError> {
    let item = turn_in.petition.low();
    let (petition, signatures, guild_id) = {
        let mut memory = lock(&core.memory);
        // :658-660, the charter must be carried.
        if !memory
            .items
            .get(&player.guid)
            .is_some_and(|items| items.contains(&item))
        {
            return Ok(Vec::new());
        }
        // :664-670, from memory (an error is logged).
        let Some(petition) = memory.petitions.get(&item).cloned() else {
            return Ok(Vec::new());
        };
        // :677-678.
        if petition.owner != player.guid || petition.kind != GUILD_CHARTER_TYPE {
            return Ok(Vec::new());
        }
        // :690-707: trial accounts are not modelled; GetGuildId (blind in cluster
        // mode); GetGuildByName (this process only).
        if player.guild != 0 {
            return Ok(vec![turn_in_results(turn_in_result::ALREADY_IN_GUILD)?]);
        }
        if memory.guild_named(&petition.name) {
            return Ok(vec![command_result(
                GuildCommand::Create,
                &petition.name,
                GuildCommandError::NameExistsS,
            )?]);
        }
        // :730-758, signatures from memory against MinPetitionSigns.
        let signatures = memory.signatures.get(&item).cloned().unwrap_or_default();
        if signatures.len() < core.config.min_petition_signs as usize {
            return Ok(vec![turn_in_results(turn_in_result::NEED_MORE_SIGNATURES)?]);
        }
        // :763, the charter item is destroyed.
        if let Some(items) = memory.items.get_mut(&player.guid) {
            items.remove(&item);
        }
        // Guild::Create (Guild.cpp:1057-1113): GenerateGuildId, then AddGuild.
        let guild_id = memory.next_guild_id;
        memory.next_guild_id += 1;
        memory.guilds.insert(guild_id, petition.name.clone());
        (petition, signatures, guild_id)
    };
    let mut replies = Vec::new();
    // The leader at rank 0, each signer at the lowest rank (AddMember refuses a
    // player who is in a guild by the character cache, Guild.cpp:2202-2212).
    let mut members = vec![(player.guid, 0u8)];
    {
        let memory = lock(&core.memory);
        for signer in signatures.keys() {
            let in_guild = memory.cache.get(signer).is_some_and(|c| c.guild != 0);
            if !in_guild && !members.iter().any(|(g, _)| g == signer) {
                members.push((*signer, 4));
            }
        }
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    core.db
        .create_guild(&NewGuild {
            id: guild_id,
            name: petition.name.clone(),
            leader: player.guid,
            created,
            ranks: default_ranks(),
            members: members.clone(),
        })
        .await?;
    player.guild = guild_id;
    // :782.
    replies.push(command_result(
        GuildCommand::Create,
        &petition.name,
        GuildCommandError::Success,
    )?);
    // AddMember: Player::RemovePetitionsAndSigns for each member.
    for (member, _) in &members {
        core.db.remove_petitions_and_signs(*member).await?;
        if let Some(c) = lock(&core.memory).cache.get_mut(member) {
            c.guild = guild_id;
        }
    }
    // :808-818, one transaction; then RemovePetition.
    core.db.delete_petition_by_id(petition.id).await?;
    lock(&core.memory).remove_petition(item);
    // :830-833.
    replies.push(turn_in_results(turn_in_result::OK)?);
    Ok(replies)
}
