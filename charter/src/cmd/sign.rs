//! `CMSG_PETITION_SIGN` of a guild charter: AzerothCore's sign rules in the store's
//! atomic signing step; the result to the signer, and to the owner wherever the
//! owner plays.

use std::sync::Arc;

use tokio::task::JoinHandle;

use tc9_codec::messages::CmsgPetitionSign;
use tc9_codec::{Frame, Message};
use tc9_proxy::Decision;

use super::{guild_petition, server_frame};
use crate::handler::{Core, Failure, OwnerNotice, Whereabouts};
use crate::metrics::{count, OpResult, Operation};
use crate::ports::{CharterStore, Deliverer, Directory, Signed};
use crate::presence::Session;
use crate::rules::{CharterKey, Player, SignVerdict};

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
    let message = CmsgPetitionSign::decode(frame.body())?;
    let item = message.petition.low();
    // The charter shown last is the one signed, and its owner needs no lookup; a
    // list whose owner slot was not the owner finds nothing, and the lookup follows.
    let signed = match session.state().shown(item) {
        Some(charter) => sign(core, charter, &core.player(session).await?).await?,
        None => None,
    };
    let (signed, owner_at) = match signed {
        Some(signed) => signed,
        None => {
            let (charter, signer) = tokio::join!(guild_petition(core, item), core.player(session));
            let Some(petition) = charter? else {
                return Ok(Decision::Forward);
            };
            match sign(core, petition.key(), &signer?).await? {
                Some(signed) => signed,
                None => return Ok(Decision::Forward),
            }
        }
    };
    let Signed {
        petition,
        verdict,
        notice,
        held_for,
    } = signed;
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

/// Signs `charter` for `signer`; where its owner plays is looked up while the
/// signature is recorded, and never holds up the signer's answer: found in time,
/// the notice is claimed for the sidecar that delivers it. `None` when no such
/// guild charter exists.
async fn sign<S: CharterStore, D: Directory>(
    core: &Arc<Core<S, D>>,
    charter: CharterKey,
    signer: &Player,
) -> Result<Option<(Signed, JoinHandle<Result<Whereabouts, Failure>>)>, Failure> {
    let deliverer = Deliverer::default();
    let owner_at = core.locate(charter.owner_guid, deliverer.clone());
    let signed = core
        .store
        .sign(charter, signer, false, &core.settings.rules, &deliverer)
        .await?;
    if signed.is_none() {
        owner_at.abort();
    }
    Ok(signed.map(|signed| (signed, owner_at)))
}
