//! `mod-tc9-sidecar`'s rules, as its README specifies them (rule numbers there),
//! right before the native handler.

use std::collections::BTreeMap;

use tc9_codec::messages::petition::{turn_in_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{
    CmsgTurnInPetition, GuildCommand, GuildCommandError, SmsgGuildCommandResult,
    SmsgTurnInPetitionResults,
};
use tc9_codec::{Frame, Message, Opcode, Origin};

use super::db::{DbError, WorldDb};
use super::handlers::Replies;
use super::{lock, Core, Player};

/// Runs the module's rules for `frame`; `Some` when the packet is consumed (with what
/// the module answered), `None` when the native handler runs next.
pub(super) async fn before_handler<D: WorldDb>(
    core: &Core<D>,
    player: &Player,
    frame: &Frame,
) -> Result<Option<Replies>, DbError> {
    match frame.opcode() {
        Opcode::CMSG_TURN_IN_PETITION => {
            // Rule 1.
            let item = CmsgTurnInPetition::decode(frame.body())?.petition.low();
            turn_in(core, player, item).await
        }
        Opcode::CMSG_PETITION_BUY => {
            realm_unique_petition_id(core).await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Rules 2, 5 and 4 on a turn-in.
async fn turn_in<D: WorldDb>(
    core: &Core<D>,
    player: &Player,
    item: u32,
) -> Result<Option<Replies>, DbError> {
    // Rule 2: memory follows the database.
    let Some(row) = core.db.petition_by_item(item).await? else {
        lock(&core.memory).remove_petition(item);
        return Ok(None);
    };
    let signatures: BTreeMap<u32, u32> = core
        .db
        .signatures_by_id(row.id)
        .await?
        .into_iter()
        .collect();
    {
        let mut memory = lock(&core.memory);
        if memory.petitions.get(&item) != Some(&row) {
            memory.add_petition(row.clone());
        }
        memory.signatures.insert(item, signatures);
    }
    if row.kind != GUILD_CHARTER_TYPE || row.owner != player.guid {
        return Ok(None);
    }
    // Rule 5: checks a single worldserver cannot make.
    if core.db.in_guild(player.guid).await? {
        let answer = Frame::from_message(
            Origin::Server,
            &SmsgTurnInPetitionResults {
                result: turn_in_result::ALREADY_IN_GUILD,
            },
        )?;
        return Ok(Some(vec![answer]));
    }
    if core.db.guild_named(&row.name).await? {
        let answer = Frame::from_message(
            Origin::Server,
            &SmsgGuildCommandResult {
                command: GuildCommand::Create,
                name: row.name.clone(),
                error: GuildCommandError::NameExistsS,
            },
        )?;
        return Ok(Some(vec![answer]));
    }
    // Rule 4: the next guild id past the database's and this process's.
    let mut next = core.db.max_guild_id().await? + 1;
    let mut memory = lock(&core.memory);
    while memory.guilds.contains_key(&next) {
        next += 1;
    }
    memory.next_guild_id = next;
    Ok(None)
}

/// Rule 3: draw petition ids until one reaches the database's highest.
async fn realm_unique_petition_id<D: WorldDb>(core: &Core<D>) -> Result<(), DbError> {
    let highest = core.db.max_petition_id().await?;
    let mut memory = lock(&core.memory);
    for _ in 0..1_000_000 {
        if memory.generate_petition_id() >= highest {
            break;
        }
    }
    Ok(())
}
