//! `CMSG_GUILD_QUERY`: answered from the database (cached), so guilds made on other
//! worldservers show.

use tc9_codec::messages::CmsgGuildQuery;
use tc9_codec::{Frame, Message};
use tc9_proxy::Decision;

use super::server_frame;
use crate::handler::{Core, Failure};
use crate::metrics::{count, OpResult, Operation};
use crate::ports::{CharterStore, Directory};
use crate::rules;

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let query = CmsgGuildQuery::decode(frame.body())?;
    match core.guilds.get(query.guild_id) {
        Some(Some(cached)) => {
            count(Operation::GuildQuery, OpResult::Cached);
            return Ok(Decision::Answer(vec![cached]));
        }
        // Known to be unknown: the worldserver answers (or not) without a query.
        Some(None) => return Ok(Decision::Forward),
        None => {}
    }
    let Some(guild) = core.store.guild(query.guild_id).await? else {
        core.guilds.insert_unknown(query.guild_id);
        return Ok(Decision::Forward);
    };
    let answer = server_frame(&rules::guild_query_response(&guild))?;
    core.guilds.insert(guild.id, answer.clone());
    count(Operation::GuildQuery, OpResult::Answered);
    Ok(Decision::Answer(vec![answer]))
}
