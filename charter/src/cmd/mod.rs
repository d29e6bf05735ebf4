//! One file per watched opcode, each parsing its frame, applying the rules and
//! answering (the mini-redis `cmd/` manner). `run` picks the command; every guild
//! charter command starts with `guild_charter`: decode the frame, fetch the
//! petition it names, and forward the frame unless that petition is a guild charter.

mod buy;
mod decline;
mod guild_event;
mod guild_query;
mod lease;
mod offer;
mod query;
mod show;
mod sign;
mod turn_in;

use std::sync::Arc;

use tc9_codec::messages::{
    CmsgOfferPetition, CmsgPetitionQuery, CmsgPetitionShowSignatures, CmsgPetitionSign,
    CmsgTurnInPetition, MsgPetitionDeclineClient, SmsgPetitionShowSignatures,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, FrameError, Message, Opcode, Origin};
use tc9_proxy::Decision;

use crate::handler::{Core, Failure};
use crate::ports::{CharterStore, Directory};
use crate::presence::Session;
use crate::rules::Petition;

pub(crate) use lease::release as release_lease;

/// Client opcodes the charter intercepts.
pub const CLIENT_OPCODES: &[Opcode] = &[
    Opcode::CMSG_OFFER_PETITION,
    Opcode::CMSG_PETITION_SIGN,
    Opcode::CMSG_PETITION_QUERY,
    Opcode::CMSG_PETITION_SHOW_SIGNATURES,
    Opcode::MSG_PETITION_DECLINE,
    Opcode::CMSG_TURN_IN_PETITION,
    Opcode::CMSG_GUILD_QUERY,
    Opcode::CMSG_PETITION_BUY,
];

/// Server opcodes the charter intercepts.
pub const SERVER_OPCODES: &[Opcode] = &[
    Opcode::SMSG_PETITION_SHOW_SIGNATURES,
    Opcode::SMSG_TURN_IN_PETITION_RESULTS,
    Opcode::SMSG_GUILD_COMMAND_RESULT,
    Opcode::SMSG_GUILD_EVENT,
];

/// Whether the charter decides about frames of `opcode` from `origin`.
pub(crate) fn intercepts(origin: Origin, opcode: Opcode) -> bool {
    match origin {
        Origin::Client => CLIENT_OPCODES.contains(&opcode),
        Origin::Server => SERVER_OPCODES.contains(&opcode),
    }
}

/// Resolves one intercepted frame; an owner whose notice was just recorded goes to
/// `tell_owner`, for its delivery to be hurried after the decision.
pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Arc<Core<S, D>>,
    session: &Session,
    frame: &Frame,
    tell_owner: &mut Option<crate::handler::OwnerNotice>,
) -> Result<Decision, Failure> {
    match (frame.origin(), frame.opcode()) {
        (Origin::Client, Opcode::CMSG_OFFER_PETITION) => offer::run(core, session, frame).await,
        (Origin::Client, Opcode::CMSG_PETITION_SIGN) => {
            sign::run(core, session, frame, tell_owner).await
        }
        (Origin::Client, Opcode::CMSG_PETITION_QUERY) => query::run(core, frame).await,
        (Origin::Client, Opcode::CMSG_PETITION_SHOW_SIGNATURES) => {
            show::run(core, session, frame).await
        }
        (Origin::Client, Opcode::MSG_PETITION_DECLINE) => decline::run(core, session, frame).await,
        (Origin::Client, Opcode::CMSG_TURN_IN_PETITION) => turn_in::run(core, session, frame).await,
        (Origin::Client, Opcode::CMSG_GUILD_QUERY) => guild_query::run(core, frame).await,
        (Origin::Client, Opcode::CMSG_PETITION_BUY) => buy::run(core, session, frame).await,
        (Origin::Server, Opcode::SMSG_PETITION_SHOW_SIGNATURES) => {
            show::rewrite(core, session, frame).await
        }
        (Origin::Server, Opcode::SMSG_GUILD_EVENT) => guild_event::run(core, frame).await,
        (Origin::Server, Opcode::SMSG_TURN_IN_PETITION_RESULTS) => {
            turn_in::results(core, session, frame).await
        }
        (Origin::Server, Opcode::SMSG_GUILD_COMMAND_RESULT) => {
            turn_in::command_result(core, session, frame).await
        }
        _ => Ok(Decision::Forward),
    }
}

/// A message that names a charter item.
pub(crate) trait NamesPetition: Message {
    /// The charter item's guid.
    fn petition(&self) -> Guid;
}

macro_rules! names_petition {
    ($($message:ty),* $(,)?) => {$(
        impl NamesPetition for $message {
            fn petition(&self) -> Guid {
                self.petition
            }
        }
    )*};
}

names_petition!(
    CmsgOfferPetition,
    CmsgPetitionSign,
    CmsgPetitionQuery,
    CmsgPetitionShowSignatures,
    MsgPetitionDeclineClient,
    CmsgTurnInPetition,
    SmsgPetitionShowSignatures,
);

/// Decodes `frame` as `M` and fetches the petition it names: `None` (forward the
/// frame as it is) unless that petition exists and is a guild charter.
pub(crate) async fn guild_charter<M: NamesPetition, S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    frame: &Frame,
) -> Result<Option<(M, Petition)>, Failure> {
    let message = M::decode(frame.body())?;
    let petition = guild_petition(core, message.petition().low()).await?;
    Ok(petition.map(|petition| (message, petition)))
}

/// The petition of the charter item `item`, if it exists and is a guild charter.
pub(crate) async fn guild_petition<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    item: u32,
) -> Result<Option<Petition>, Failure> {
    Ok(core
        .store
        .petition(item)
        .await?
        .filter(Petition::is_guild_charter))
}

/// A server frame carrying `message`.
pub(crate) fn server_frame<M: Message>(message: &M) -> Result<Frame, FrameError> {
    Frame::from_message(Origin::Server, message)
}
