//! `CMSG_PETITION_QUERY` of a guild charter: answered from the database.

use tc9_codec::messages::CmsgPetitionQuery;
use tc9_codec::Frame;
use tc9_proxy::Decision;

use super::{guild_charter, server_frame};
use crate::handler::{Core, Failure};
use crate::metrics::{count, OpResult, Operation};
use crate::ports::{CharterStore, Directory};
use crate::rules;

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let Some((_, petition)) = guild_charter::<CmsgPetitionQuery, _, _>(core, frame).await? else {
        return Ok(Decision::Forward);
    };
    let response = rules::query_response(&petition, &core.settings.rules);
    count(Operation::Query, OpResult::Answered);
    Ok(Decision::Answer(vec![server_frame(&response)?]))
}
