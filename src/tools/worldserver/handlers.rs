//! The native charter handlers of `PetitionsHandler.cpp` (pinned commit), in their
//! order and with their result codes; line numbers cite that file. They read the
//! worldserver's memory and write rows as it does. The turn-in is in `turn_in.rs`.

use std::collections::BTreeMap;

use tc9_codec::messages::petition::{sign_result, GUILD_CHARTER_TYPE};
use tc9_codec::messages::{
    CmsgOfferPetition, CmsgPetitionBuy, CmsgPetitionQuery, CmsgPetitionShowSignatures,
    CmsgPetitionSign, CmsgTurnInPetition, GuildCommand, GuildCommandError, PetitionSignature,
    SmsgGuildCommandResult, SmsgPetitionQueryResponse, SmsgPetitionShowSignatures,
    SmsgPetitionSignResults, SmsgTurnInPetitionResults,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, FrameError, Message, Opcode, Origin};

use super::db::{DbError, PetitionRow, WorldDb};
use super::turn_in::turn_in;
use super::{lock, module, Core, Player};
use tc9_charter::rules::team_of_race;

/// What a handler sends: frames to the player whose packet it handled.
pub(super) type Replies = Vec<Frame>;

fn frame<M: Message>(message: &M) -> Result<Frame, DbError> {
    Frame::from_message(Origin::Server, message).map_err(|e: FrameError| e.into())
}

/// `SMSG_GUILD_COMMAND_RESULT` for `command` on `name`.
pub(super) fn command_result(
    command: GuildCommand,
    name: &str,
    error: GuildCommandError,
) -> Result<Frame, DbError> {
    frame(&SmsgGuildCommandResult {
        command,
        name: name.to_owned(),
        error,
    })
}

/// `SMSG_TURN_IN_PETITION_RESULTS` with `result`.
pub(super) fn turn_in_results(result: u32) -> Result<Frame, DbError> {
    frame(&SmsgTurnInPetitionResults { result })
}

/// `SMSG_PETITION_SHOW_SIGNATURES` as both the show and the offer handler write it.
fn shown(
    item: u32,
    owner_slot: u32,
    petition_id: u32,
    signatures: &BTreeMap<u32, u32>,
) -> Result<Frame, DbError> {
    frame(&SmsgPetitionShowSignatures {
        petition: Guid::item(item),
        owner: Guid::player(owner_slot),
        petition_id,
        signatures: signatures
            .keys()
            .map(|player| PetitionSignature {
                player: Guid::player(*player),
                unk: 0,
            })
            .collect(),
    })
}

/// Runs the handler of `frame`'s opcode for `player`, the module's rules first.
pub(super) async fn handle<D: WorldDb>(
    core: &Core<D>,
    player: &mut Player,
    frame: &Frame,
) -> Result<Replies, DbError> {
    if core.config.module {
        if let Some(consumed) = module::before_handler(core, player, frame).await? {
            return Ok(consumed);
        }
    }
    let body = frame.body();
    match frame.opcode() {
        Opcode::CMSG_PETITION_BUY => buy(core, player, CmsgPetitionBuy::decode(body)?).await,
        Opcode::CMSG_PETITION_SHOW_SIGNATURES => {
            show(core, player, CmsgPetitionShowSignatures::decode(body)?)
        }
        Opcode::CMSG_PETITION_QUERY => query(core, CmsgPetitionQuery::decode(body)?),
        Opcode::CMSG_PETITION_SIGN => sign(core, player, CmsgPetitionSign::decode(body)?).await,
        // HandlePetitionDeclineOpcode (:540-558) looks the owner up with a guid it never
        // fills: nobody is told.
        Opcode::MSG_PETITION_DECLINE => Ok(Vec::new()),
        Opcode::CMSG_OFFER_PETITION => offer(core, player, CmsgOfferPetition::decode(body)?),
        Opcode::CMSG_TURN_IN_PETITION => {
            turn_in(core, player, CmsgTurnInPetition::decode(body)?).await
        }
        _ => Ok(Vec::new()),
    }
}

/// `HandlePetitionBuyOpcode` (:32-233), guild charters. The vendor, money, bag room
/// and name validity checks always pass in the model (it has no creatures, money or
/// items); no `SMSG_ITEM_PUSH_RESULT` is sent.
async fn buy<D: WorldDb>(
    core: &Core<D>,
    player: &Player,
    buy: CmsgPetitionBuy,
) -> Result<Replies, DbError> {
    if buy.index != 1 {
        // Arena charters are not modelled.
        return Ok(Vec::new());
    }
    // :80-82, "do not let if already in guild".
    if player.guild != 0 {
        return Ok(Vec::new());
    }
    let (row, replaced) = {
        let mut memory = lock(&core.memory);
        // :140-145.
        if memory.guild_named(&buy.name) {
            return Ok(vec![command_result(
                GuildCommand::Create,
                &buy.name,
                GuildCommandError::NameExistsS,
            )?]);
        }
        let item = memory.next_item;
        memory.next_item += 1;
        // :189-190, a per-process id.
        let id = memory.generate_petition_id();
        // :203, an older charter of the same owner and type.
        let replaced = memory
            .petitions
            .values()
            .find(|p| p.owner == player.guid && p.kind == GUILD_CHARTER_TYPE)
            .map(|p| p.item);
        if let Some(old) = replaced {
            memory.remove_petition(old);
        }
        memory.items.entry(player.guid).or_default().insert(item);
        let row = PetitionRow {
            item,
            id,
            owner: player.guid,
            name: buy.name.clone(),
            kind: GUILD_CHARTER_TYPE,
        };
        // :232, AddPetition.
        memory.add_petition(row.clone());
        (row, replaced)
    };
    // :206-230, one transaction in AzerothCore.
    if let Some(old) = replaced {
        core.db.delete_petition_by_item(old).await?;
    }
    core.db.insert_petition(&row).await?;
    Ok(Vec::new())
}

/// `HandlePetitionShowSignOpcode` (:235-271): from memory; the requester fills the
/// owner slot.
fn show<D: WorldDb>(
    core: &Core<D>,
    player: &Player,
    show: CmsgPetitionShowSignatures,
) -> Result<Replies, DbError> {
    let memory = lock(&core.memory);
    let item = show.petition.low();
    let Some(petition) = memory.petitions.get(&item) else {
        return Ok(Vec::new());
    };
    if petition.kind == GUILD_CHARTER_TYPE && player.guild != 0 {
        return Ok(Vec::new());
    }
    let empty = BTreeMap::new();
    let signatures = memory.signatures.get(&item).unwrap_or(&empty);
    Ok(vec![shown(item, player.guid, petition.id, signatures)?])
}

/// `HandlePetitionQueryOpcode` / `SendPetitionQueryOpcode` (:273-333): from memory.
fn query<D: WorldDb>(core: &Core<D>, query: CmsgPetitionQuery) -> Result<Replies, DbError> {
    let memory = lock(&core.memory);
    let Some(petition) = memory.petitions.get(&query.petition.low()) else {
        return Ok(Vec::new());
    };
    Ok(vec![frame(&SmsgPetitionQueryResponse::for_charter(
        petition.id,
        Guid::player(petition.owner),
        petition.name.clone(),
        petition.kind,
        core.config.min_petition_signs,
    ))?])
}

/// Whether two races may share a guild charter.
fn allied<D: WorldDb>(core: &Core<D>, a: u8, b: u8) -> bool {
    core.config.two_side_guild || team_of_race(a) == team_of_race(b)
}

/// `HandlePetitionSignOpcode` (:401-538), guild charters.
async fn sign<D: WorldDb>(
    core: &Core<D>,
    player: &Player,
    sign: CmsgPetitionSign,
) -> Result<Replies, DbError> {
    let item = sign.petition.low();
    let (petition, result) = {
        let memory = lock(&core.memory);
        // :410-415, :419-421, :423-425.
        let Some(petition) = memory.petitions.get(&item).cloned() else {
            return Ok(Vec::new());
        };
        if petition.owner == player.guid {
            return Ok(Vec::new());
        }
        let Some(signatures) = memory.signatures.get(&item) else {
            return Ok(Vec::new());
        };
        // :457-461: the owner's team from the character cache.
        let owner_race = memory.cache.get(&petition.owner).map_or(0, |c| c.race);
        if !allied(core, player.race, owner_race) {
            return Ok(vec![command_result(
                GuildCommand::Create,
                "",
                GuildCommandError::NotAllied,
            )?]);
        }
        // :469-478 (a pending invitation is not modelled).
        if player.guild != 0 {
            return Ok(vec![command_result(
                GuildCommand::Invite,
                &player.name,
                GuildCommandError::AlreadyInGuildS,
            )?]);
        }
        // :482-484.
        if signatures.len() + 1 > usize::from(petition.kind) {
            return Ok(Vec::new());
        }
        // :488-510, one signature per account.
        let result = if signatures.values().any(|a| *a == player.account) {
            sign_result::ALREADY_SIGNED
        } else {
            sign_result::OK
        };
        (petition, result)
    };
    if result == sign_result::OK {
        // :512-520, petition_id only.
        core.db
            .insert_signature(petition.owner, petition.id, player.guid, player.account)
            .await?;
        lock(&core.memory)
            .signatures
            .entry(item)
            .or_default()
            .insert(player.guid, player.account);
    }
    let answer = frame(&SmsgPetitionSignResults {
        petition: sign.petition,
        signer: Guid::player(player.guid),
        result,
    })?;
    // "update for owner if online" (:506-508, :535-537).
    core.send_to(petition.owner, answer.clone());
    Ok(vec![answer])
}

/// `HandleOfferPetitionOpcode` (:560-643), guild charters: the target must be
/// connected to this worldserver.
fn offer<D: WorldDb>(
    core: &Core<D>,
    player: &Player,
    offer: CmsgOfferPetition,
) -> Result<Replies, DbError> {
    let target = offer.target.low();
    if !lock(&core.online).contains_key(&target) {
        return Ok(Vec::new());
    }
    let memory = lock(&core.memory);
    let item = offer.petition.low();
    let Some(petition) = memory.petitions.get(&item) else {
        return Ok(Vec::new());
    };
    let target_row = memory.cache.get(&target);
    let target_race = target_row.map_or(0, |c| c.race);
    if !allied(core, player.race, target_race) {
        return Ok(vec![command_result(
            GuildCommand::Create,
            "",
            GuildCommandError::NotAllied,
        )?]);
    }
    // The target's GetGuildId(): in cluster mode 0 (reset at its login).
    let target_guild = if core.config.cluster {
        0
    } else {
        target_row.map_or(0, |c| c.guild)
    };
    if target_guild != 0 {
        return Ok(vec![command_result(
            GuildCommand::Invite,
            &player.name,
            GuildCommandError::AlreadyInGuildS,
        )?]);
    }
    let empty = BTreeMap::new();
    let signatures = memory.signatures.get(&item).unwrap_or(&empty);
    core.send_to(target, shown(item, player.guid, petition.id, signatures)?);
    Ok(Vec::new())
}
