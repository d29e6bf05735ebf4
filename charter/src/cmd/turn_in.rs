//! `CMSG_TURN_IN_PETITION` of a guild charter, and the worldserver's answers.
//!
//! Before the worldserver is asked, the sidecar makes the checks a single
//! worldserver cannot make for a realm, with AzerothCore's codes and in its order
//! (`HandleTurnInPetitionOpcode`): the owner in a guild (the cluster worldserver
//! resets membership at login), the name taken on any worldserver, and, when the
//! worldserver runs `mod-tc9-sidecar`, too few signatures in the database. Then it
//! takes the realm's guild-creation lease, so that two turn-ins on two worldservers
//! create their guilds one after the other; the lease goes back with the
//! worldserver's answer, or expires when none comes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tc9_codec::messages::petition::turn_in_result;
use tc9_codec::messages::{
    CmsgTurnInPetition, GuildCommand, GuildCommandError, SmsgGuildCommandResult,
    SmsgTurnInPetitionResults,
};
use tc9_codec::{Frame, Message};
use tc9_proxy::Decision;
use tracing::{info, warn, Instrument};

use super::{guild_charter, lease, server_frame};
use crate::handler::{Core, Failure};
use crate::metrics::{self as m, count_turn_in, Answerer, TurnInResult};
use crate::ports::{CharterStore, Directory, GuildCreated};
use crate::presence::{Session, TurnIn};
use crate::rules;

/// How long a created guild may take to show in the database before the lease goes
/// back anyway (AzerothCore commits its rows asynchronously).
const GUILD_VISIBLE: Duration = Duration::from_secs(1);

/// The sidecar's answer to a turn-in it refuses, counted.
fn refuse(result: TurnInResult, frame: Frame) -> Decision {
    count_turn_in(Answerer::Sidecar, result);
    Decision::Answer(vec![frame])
}

/// The turn-in: checks, the lease, then the worldserver.
pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let Some((_, petition)) = guild_charter::<CmsgTurnInPetition, _, _>(core, frame).await? else {
        return Ok(Decision::Forward);
    };
    let guid = session
        .identity()
        .character_guid
        .ok_or(Failure::NoIdentity)?;
    if petition.owner_guid != guid {
        // AzerothCore: only the owner turns in; anyone else is answered nothing.
        return Ok(Decision::Forward);
    }
    // Fresh from the database, not the character read at login.
    let owner = core
        .store
        .character(guid)
        .await?
        .ok_or(Failure::NoIdentity)?;
    if owner.guild_id.is_some() {
        let answer = server_frame(&SmsgTurnInPetitionResults {
            result: turn_in_result::ALREADY_IN_GUILD,
        })?;
        return Ok(refuse(TurnInResult::AlreadyInGuild, answer));
    }
    if core.store.guild_named(&petition.name).await? {
        let answer = server_frame(&rules::command_result(
            GuildCommand::Create,
            &petition.name,
            GuildCommandError::NameExistsS,
        ))?;
        return Ok(refuse(TurnInResult::NameTaken, answer));
    }
    if core.settings.module {
        let have = core.store.signatures(petition.petition_id).await?.len();
        if have < core.settings.rules.required_signatures(&petition) as usize {
            let answer = server_frame(&SmsgTurnInPetitionResults {
                result: turn_in_result::NEED_MORE_SIGNATURES,
            })?;
            return Ok(refuse(TurnInResult::NeedMoreSignatures, answer));
        }
    }
    let holder = lease::holder(session.id, petition.petition_guid);
    let lease = lease::take(core, &holder).await?.then_some(holder);
    if lease.is_none() {
        warn!(
            petition = petition.petition_guid,
            "the guild-creation lease stayed busy; turning in without it"
        );
    }
    session.state().set_turn_in(Some(TurnIn {
        petition: petition.petition_guid,
        name: petition.name,
        lease,
    }));
    Ok(Decision::Forward)
}

/// Gives the lease of `turn_in` back, once a created guild shows in the database.
async fn release_lease<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    turn_in: &TurnIn,
    created: bool,
) -> Result<(), Failure> {
    let Some(holder) = &turn_in.lease else {
        return Ok(());
    };
    if created {
        let deadline = Instant::now() + GUILD_VISIBLE;
        while !core.store.guild_named(&turn_in.name).await? && Instant::now() < deadline {
            tokio::time::sleep(lease::RETRY).await;
        }
    }
    lease::release(core, holder).await
}

/// `SMSG_TURN_IN_PETITION_RESULTS`: counts the outcome, notices stale worldserver
/// caches, gives the lease back.
pub(crate) async fn results<S: CharterStore, D: Directory>(
    core: &Arc<Core<S, D>>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let result = SmsgTurnInPetitionResults::decode(frame.body())?;
    let Some(turn_in) = session.state().turn_in() else {
        return Ok(Decision::Forward);
    };
    session.state().set_turn_in(None);
    let outcome = match result.result {
        turn_in_result::OK => TurnInResult::Ok,
        turn_in_result::ALREADY_IN_GUILD => TurnInResult::AlreadyInGuild,
        turn_in_result::NEED_MORE_SIGNATURES => TurnInResult::NeedMoreSignatures,
        _ => TurnInResult::Other,
    };
    count_turn_in(Answerer::Worldserver, outcome);
    release_lease(core, &turn_in, outcome == TurnInResult::Ok).await?;
    if outcome == TurnInResult::Ok {
        if let Some(owner) = session.identity().character_guid {
            core.announce_guild(owner, turn_in.name.clone());
        }
    }
    if outcome == TurnInResult::NeedMoreSignatures {
        warn_if_stale(core, turn_in.petition).await?;
    }
    Ok(Decision::Forward)
}

impl<S: CharterStore, D: Directory> Core<S, D> {
    /// Announces the guild `name` that `leader` just made, off the frame path,
    /// once its rows are visible (at most [`GUILD_VISIBLE`] later).
    fn announce_guild(self: &Arc<Self>, leader: u32, name: String) {
        let Some(announcer) = self.announcer.get().cloned() else {
            return;
        };
        let core = Arc::clone(self);
        self.tasks.spawn(
            async move {
                let announced = async {
                    let deadline = Instant::now() + GUILD_VISIBLE;
                    let (guild_id, mut members) = loop {
                        match core.bounded(core.store.guild_roster(&name)).await? {
                            Some(roster) => break roster,
                            None if Instant::now() < deadline => {
                                tokio::time::sleep(lease::RETRY).await
                            }
                            None => return Ok(false),
                        }
                    };
                    members.sort_by_key(|(guid, _)| *guid != leader);
                    let mut online = Vec::new();
                    for (guid, _) in &members {
                        let here = core.local.get(*guid).is_some();
                        let there = match (&core.bus, here) {
                            (Some(bus), false) => core.bounded(bus.locate(*guid)).await?.is_some(),
                            _ => false,
                        };
                        if here || there {
                            online.push(*guid);
                        }
                    }
                    let guild = GuildCreated {
                        guild_id,
                        name: name.clone(),
                        leader,
                        members,
                        online,
                    };
                    core.bounded(announcer.guild_created(&guild)).await?;
                    Ok::<_, Failure>(true)
                };
                let result = match announced.await {
                    Ok(true) => "ok",
                    Ok(false) => {
                        warn!(guild = %name, "the new guild never became visible; not announced");
                        "failed"
                    }
                    Err(e) => {
                        warn!(guild = %name, error = %e, "could not announce the new guild");
                        "failed"
                    }
                };
                metrics::counter!(m::ANNOUNCED_TOTAL, "result" => result).increment(1);
            }
            .in_current_span(),
        );
    }
}

/// A refusal the database could pay for: the worldserver's petition cache is stale.
async fn warn_if_stale<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    petition: u32,
) -> Result<(), Failure> {
    if let Some(petition) = core.store.petition(petition).await? {
        let have = core.store.signatures(petition.petition_id).await?.len();
        let need = core.settings.rules.required_signatures(&petition) as usize;
        if have >= need {
            metrics::counter!(m::STALE_TURN_INS_TOTAL).increment(1);
            warn!(
                petition = petition.petition_guid,
                signatures = have,
                required = need,
                "worldserver refused a turn-in the database can pay for: its petition cache is stale (run mod-tc9-sidecar, or restart it)"
            );
        }
    }
    Ok(())
}

/// `SMSG_GUILD_COMMAND_RESULT`: a guild created from this session's charter clears
/// every sidecar's guild answers.
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
        info!(guild = %result.name, "guild created from a charter");
        core.publish_guild_changed(&result.name).await?;
    }
    Ok(Decision::Forward)
}
