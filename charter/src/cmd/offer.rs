//! `CMSG_OFFER_PETITION` to a player behind another sidecar: judged here, shown to
//! the target as a notice, hurried by the bus. A target on this worldserver is the worldserver's.

use tc9_codec::messages::CmsgOfferPetition;
use tc9_codec::{Frame, Message};
use tc9_proxy::Decision;

use super::{guild_petition, server_frame};
use crate::handler::{Core, Failure, Whereabouts};
use crate::metrics::{count, OpResult, Operation};
use crate::ports::{CharterStore, Directory};
use crate::presence::Session;
use crate::rules::{self, OfferVerdict};

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let offer = CmsgOfferPetition::decode(frame.body())?;
    let target = offer.target.low();
    // A target on this worldserver is the worldserver's; one nowhere, too.
    let at = core.whereabouts(target).await?;
    if !matches!(at, Whereabouts::Behind(_)) {
        return Ok(Decision::Forward);
    }
    let Some(petition) = guild_petition(core, offer.petition.low()).await? else {
        return Ok(Decision::Forward);
    };
    let offerer = core.player(session).await?;
    let Some(target_player) = core.store.character(target).await? else {
        return Ok(Decision::Forward);
    };
    match rules::judge_offer(
        &petition,
        &offerer,
        &target_player,
        false,
        &core.settings.rules,
    ) {
        OfferVerdict::Ignore => {
            count(Operation::Offer, OpResult::Ignored);
            Ok(Decision::Drop)
        }
        OfferVerdict::Refuse(result) => {
            count(Operation::Offer, OpResult::Refused);
            Ok(Decision::Answer(vec![server_frame(&result)?]))
        }
        OfferVerdict::Deliver => {
            let signatures = core.store.signatures(petition.petition_id).await?;
            let shown = rules::show_signatures(&petition, offerer.guid, &signatures);
            core.send_to(target, &at, &[server_frame(&shown)?]).await?;
            count(Operation::Offer, OpResult::Delivered);
            Ok(Decision::Drop)
        }
    }
}
