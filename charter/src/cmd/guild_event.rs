//! `SMSG_GUILD_EVENT` from the worldserver: events that change a guild's name,
//! ranks or emblem clear the guild answers of every sidecar.

use tc9_codec::messages::guild::event;
use tc9_codec::messages::SmsgGuildEvent;
use tc9_codec::{Frame, Message};
use tc9_proxy::Decision;

use crate::handler::{Core, Failure};
use crate::ports::{CharterStore, Directory};

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Core<S, D>,
    frame: &Frame,
) -> Result<Decision, Failure> {
    let guild_event = SmsgGuildEvent::decode(frame.body())?;
    if event::changes_guild_query(guild_event.event) {
        core.publish_guild_changed(&format!("event {}", guild_event.event))
            .await?;
    }
    Ok(Decision::Forward)
}
