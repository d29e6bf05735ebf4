//! `MSG_PETITION_DECLINE` of a guild charter: delivered to the owner on any
//! worldserver (AzerothCore's own handler never fills the owner, so nobody else
//! tells them).

use tc9_codec::messages::{MsgPetitionDeclineClient, MsgPetitionDeclineServer};
use tc9_codec::wire::Guid;
use tc9_codec::Frame;
use tc9_proxy::Decision;

use super::{guild_charter, server_frame};
use crate::handler::{Core, Failure};
use crate::metrics::{count, OpResult, Operation};
use crate::ports::{CharterStore, Directory};
use crate::presence::Session;

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let Some((_, petition)) = guild_charter::<MsgPetitionDeclineClient, _, _>(core, frame).await?
    else {
        return Ok(Decision::Forward);
    };
    let decliner = session
        .identity()
        .character_guid
        .ok_or(Failure::NoIdentity)?;
    let told = MsgPetitionDeclineServer {
        decliner: Guid::player(decliner),
    };
    let owner = core.whereabouts(petition.owner_guid).await?;
    let delivered = core
        .send_to(petition.owner_guid, &owner, &[server_frame(&told)?])
        .await?;
    let result = if delivered {
        OpResult::Delivered
    } else {
        OpResult::OwnerOffline
    };
    count(Operation::Decline, result);
    Ok(Decision::Drop)
}
