//! `CMSG_TURN_IN_PETITION` goes to the worldserver (native turn-in); its answers are
//! watched: a refusal while the database holds enough signatures is a stale
//! worldserver cache, and a created guild clears every sidecar's guild answers.

use tc9_codec::messages::petition::turn_in_result;
use tc9_codec::messages::{
    CmsgTurnInPetition, GuildCommand, GuildCommandError, SmsgGuildCommandResult,
    SmsgTurnInPetitionResults,
};
use tc9_codec::{Frame, Message};
use tc9_proxy::Decision;
use tracing::{info, warn};

use crate::handler::{Core, Failure};
use crate::metrics as m;
use crate::ports::{CharterStore, Directory};
use crate::presence::Session;

/// Notes which charter the session turns in; the frame goes on.
pub(crate) fn record(session: &Session, frame: &Frame) -> Decision {
    if let Ok(turn_in) = CmsgTurnInPetition::decode(frame.body()) {
        session.state().set_turn_in(Some(turn_in.petition.low()));
    }
    Decision::Forward
}

/// `SMSG_TURN_IN_PETITION_RESULTS`: counts refusals the database could pay for.
pub(crate) async fn results<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let result = SmsgTurnInPetitionResults::decode(frame.body())?;
    let (turn_in_result::NEED_MORE_SIGNATURES, Some(guid)) =
        (result.result, session.state().turn_in())
    else {
        return Ok(Decision::Forward);
    };
    if let Some(petition) = core.store.petition(guid).await? {
        let have = core.store.signatures(petition.petition_id).await?.len();
        let need = core.settings.rules.required_signatures(&petition) as usize;
        if have >= need {
            metrics::counter!(m::STALE_TURN_INS_TOTAL).increment(1);
            warn!(
                petition = guid,
                signatures = have,
                required = need,
                "worldserver refused a turn-in the database can pay for: its petition cache is stale (signatures made through other worldservers load at its restart)"
            );
        }
    }
    Ok(Decision::Forward)
}

/// `SMSG_GUILD_COMMAND_RESULT`: a guild created from this session's charter.
pub(crate) async fn command_result<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let result = SmsgGuildCommandResult::decode(frame.body())?;
    if result.command == GuildCommand::Create
        && result.error == GuildCommandError::Success
        && session.state().turn_in().is_some()
    {
        session.state().set_turn_in(None);
        info!(guild = %result.name, "guild created from a charter");
        core.publish_guild_changed(&result.name).await?;
    }
    Ok(Decision::Forward)
}
