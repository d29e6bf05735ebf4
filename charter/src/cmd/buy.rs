//! `CMSG_PETITION_BUY` of a guild charter, with `mod-tc9-sidecar`: the purchase
//! takes the realm's lease, so that the module's read of `MAX(petition_id)` sees
//! every charter bought before it; the lease goes back once the new charter shows in
//! the database, or after [`PURCHASE_VISIBLE`] when none does (a refused purchase).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tc9_codec::messages::CmsgPetitionBuy;
use tc9_codec::{Frame, Message};
use tc9_proxy::Decision;
use tracing::{warn, Instrument};

use super::lease;
use crate::handler::{Core, Failure};
use crate::ports::{CharterStore, Directory};
use crate::presence::Session;

/// How long a purchase may take to show in the database.
pub(crate) const PURCHASE_VISIBLE: Duration = Duration::from_secs(2);

/// The `CMSG_PETITION_BUY` index of a guild charter.
const GUILD_CHARTER_INDEX: u32 = 1;

pub(crate) async fn run<S: CharterStore, D: Directory>(
    core: &Arc<Core<S, D>>,
    session: &Session,
    frame: &Frame,
) -> Result<Decision, Failure> {
    if !core.settings.module {
        return Ok(Decision::Forward);
    }
    let buy = CmsgPetitionBuy::decode(frame.body())?;
    if buy.index != GUILD_CHARTER_INDEX {
        return Ok(Decision::Forward);
    }
    let owner = session
        .identity()
        .character_guid
        .ok_or(Failure::NoIdentity)?;
    let holder = lease::holder(session.id, owner);
    if !lease::take(core, &holder).await? {
        warn!(
            owner,
            "the guild-creation lease stayed busy; buying the charter without it"
        );
        return Ok(Decision::Forward);
    }
    let core = Arc::clone(core);
    tokio::spawn(
        async move {
            let deadline = Instant::now() + PURCHASE_VISIBLE;
            while Instant::now() < deadline {
                match core.store.charter_of(owner).await {
                    Ok(Some(charter)) if charter.name == buy.name => break,
                    Ok(_) => {}
                    Err(e) => {
                        warn!(owner, error = %e, "could not see the purchase");
                        break;
                    }
                }
                tokio::time::sleep(lease::RETRY).await;
            }
            if let Err(e) = lease::release(&core, &holder).await {
                warn!(error = %e, "could not give the guild-creation lease back");
            }
        }
        .in_current_span(),
    );
    Ok(Decision::Forward)
}
