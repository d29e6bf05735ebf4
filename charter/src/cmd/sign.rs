//! `CMSG_PETITION_SIGN` of a guild charter: AzerothCore's sign rules in the store's
//! atomic signing step; the result to the signer, and to the owner wherever the
//! owner plays.

use std::sync::Arc;

use tc9_codec::messages::CmsgPetitionSign;
use tc9_codec::Frame;
use tc9_proxy::Decision;

use super::{guild_charter, server_frame};
use crate::handler::{Core, Failure, OwnerNotice};
use crate::metrics::{count, OpResult, Operation};
use crate::ports::{CharterStore, Deliverer, Directory, Signed};
use crate::presence::Session;
use crate::rules::SignVerdict;

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Arc<Core<S, D>>,
    session: &Session,
    frame: &Frame,
    tell_owner: &mut Option<OwnerNotice>,
) -> Result<Decision, Failure> {
    if !core.settings.module {
        // Without mod-tc9-sidecar only the worldserver's own signatures count at its
        // turn-in: signing stays native, so charters turn in as AzerothCore alone does.
        return Ok(Decision::Forward);
    }
    let (charter, signer) = tokio::join!(
        guild_charter::<CmsgPetitionSign, _, _>(core, frame),
        core.player(session)
    );
    let Some((_, petition)) = charter? else {
        return Ok(Decision::Forward);
    };
    let signer = signer?;
    // Where the owner plays is looked up while the signature is recorded, and never
    // holds up the signer's answer; found in time, the notice is claimed for the
    // sidecar that delivers it.
    let deliverer = Deliverer::default();
    let owner_at = core.locate(petition.owner_guid, deliverer.clone());
    let Some(Signed {
        petition,
        verdict,
        notice,
        held_for,
    }) = core
        .store
        .sign(&petition, &signer, false, &core.settings.rules, &deliverer)
        .await?
    else {
        return Ok(Decision::Forward);
    };
    let (result, to_both) = match verdict {
        SignVerdict::Ignore => (OpResult::Ignored, None),
        SignVerdict::Refuse(refusal) => {
            count(Operation::Sign, OpResult::Refused);
            return Ok(Decision::Answer(vec![server_frame(&refusal)?]));
        }
        SignVerdict::AlreadySigned(shown) => (OpResult::AlreadySigned, Some(shown)),
        SignVerdict::Record(shown) => (OpResult::Ok, Some(shown)),
    };
    count(Operation::Sign, result);
    let Some(shown) = to_both else {
        return Ok(Decision::Drop);
    };
    // The owner's notice was recorded with the verdict: the signer is answered now,
    // whatever the bus does.
    *tell_owner = Some(OwnerNotice {
        owner: petition.owner_guid,
        at: owner_at,
        notice,
        held_for,
    });
    Ok(Decision::Answer(vec![server_frame(&shown)?]))
}
