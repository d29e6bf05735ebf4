//! Signature lists of guild charters: `CMSG_PETITION_SHOW_SIGNATURES` answered from
//! the database, and a list the worldserver sends itself rewritten with the
//! database's.

use tc9_codec::messages::{CmsgPetitionShowSignatures, SmsgPetitionShowSignatures};
use tc9_codec::Frame;
use tc9_proxy::Decision;

use super::{guild_charter, server_frame};
use crate::handler::{Core, Failure};
use crate::metrics::{count, OpResult, Operation};
use crate::ports::{CharterStore, Directory};
use crate::presence::Session;
use crate::rules;

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let Some((_, petition)) =
        guild_charter::<CmsgPetitionShowSignatures, _, _>(core, frame).await?
    else {
        return Ok(Decision::Forward);
    };
    // Fresh from the database: a character may have joined a guild since login.
    let guid = session
        .identity()
        .character_guid
        .ok_or(Failure::NoIdentity)?;
    let requester = core
        .store
        .character(guid)
        .await?
        .ok_or(Failure::NoIdentity)?;
    if requester.guild_id.is_some() {
        // AzerothCore shows a guild charter to nobody who is in a guild.
        return Ok(Decision::Drop);
    }
    let signatures = core.store.signatures(petition.petition_id).await?;
    let shown = rules::show_signatures(&petition, requester.guid, &signatures);
    session.state().set_shown(petition.key());
    count(Operation::Show, OpResult::Answered);
    Ok(Decision::Answer(vec![server_frame(&shown)?]))
}

/// Rewrites the worldserver's own signature list with the database's (with the
/// module only: without it, the worldserver's list is what its turn-in counts).
pub(crate) async fn rewrite<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    if !core.settings.module {
        return Ok(Decision::Forward);
    }
    let Some((mut shown, petition)) =
        guild_charter::<SmsgPetitionShowSignatures, _, _>(core, frame).await?
    else {
        return Ok(Decision::Forward);
    };
    session.state().set_shown(petition.key());
    let signatures = core.store.signatures(petition.petition_id).await?;
    let full = rules::show_signatures(&petition, shown.owner.low(), &signatures);
    if full.signatures == shown.signatures {
        return Ok(Decision::Forward);
    }
    shown.signatures = full.signatures;
    Ok(Decision::Rewrite(vec![server_frame(&shown)?]))
}
