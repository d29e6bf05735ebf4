//! The offer, sign, decline, query and show-signatures scenarios.

use super::*;

/// Aldric (here) offers his guild charter to players behind sidecar B: Brenna gets it
/// through the bus, Dorn is in a guild (refused, naming the offerer), and Cedric is
/// online nowhere the bus knows (the worldserver answers as it would).
pub(super) fn cross_server_offer() -> Scenario {
    let world = charter_world(3, &[BRENNA, DORN]);
    let mut s = Script::new();
    s.enter_world(ALDRIC);
    for target in [BRENNA, DORN, CEDRIC] {
        s.client(&CmsgOfferPetition {
            unk: 0,
            petition: Guid::item(CHARTER),
            target: Guid::player(target),
        });
    }
    Scenario::new("cross_server_offer", world, s)
}

/// Cedric (here) signs Aldric's charter; Aldric plays behind B.
pub(super) fn sign() -> Scenario {
    let world = charter_world(2, &[ALDRIC]);
    let mut s = Script::new();
    s.enter_world(CEDRIC).sign(CHARTER);
    // The new signature is in the list right away.
    s.client(&CmsgPetitionShowSignatures {
        petition: Guid::item(CHARTER),
    });
    Scenario::new("sign", world, s)
}

/// Cedric signs, logs out, and his alt Cedrina (same account) tries to sign too.
pub(super) fn already_signed() -> Scenario {
    let world = charter_world(2, &[ALDRIC]);
    let mut s = Script::new();
    s.enter_world(CEDRIC)
        .sign(CHARTER)
        .leave_world()
        .enter_world(CEDRINA)
        .sign(CHARTER);
    Scenario::new("already_signed", world, s)
}

/// Dorn, a guild member, tries to sign.
pub(super) fn already_in_guild() -> Scenario {
    let world = [
        cast(),
        guild(),
        the_charter(),
        signers(CHARTER, 101, 2),
        online(ALDRIC, "B"),
    ]
    .concat();
    let mut s = Script::new();
    s.enter_world(DORN).sign(CHARTER);
    Scenario::new("already_in_guild", world, s)
}

/// The silent and the faction refusals: Aldric signs his own charter, Grokk (Horde)
/// signs Aldric's (Alliance) charter, and Cedric signs a charter that is full.
pub(super) fn sign_refused() -> Scenario {
    let world = [
        cast(),
        the_charter(),
        signers(CHARTER, 101, 2),
        petition(FULL_CHARTER, FULL_CHARTER, FENWICK, "Full House", 9),
        signers(FULL_CHARTER, 201, 9),
        online(FENWICK, "B"),
    ]
    .concat();
    let mut s = Script::new();
    s.enter_world(ALDRIC)
        .sign(CHARTER)
        .leave_world()
        .enter_world(GROKK)
        .sign(CHARTER)
        .leave_world()
        .enter_world(CEDRIC)
        .sign(FULL_CHARTER);
    Scenario::new("sign_refused", world, s)
}

/// Brenna (here) declines Aldric's charter (Aldric behind B), a charter whose owner is
/// offline, and a charter the database does not know.
pub(super) fn decline() -> Scenario {
    let world = [
        cast(),
        the_charter(),
        petition(QUIET_CHARTER, QUIET_CHARTER, FENWICK, "Quiet Ones", 9),
        online(ALDRIC, "B"),
    ]
    .concat();
    let mut s = Script::new();
    s.enter_world(BRENNA);
    for petition in [CHARTER, QUIET_CHARTER, 999] {
        s.client(&MsgPetitionDeclineClient {
            petition: Guid::item(petition),
        });
    }
    Scenario::new("decline", world, s)
}

/// Brenna queries Aldric's charter (answered from the database) and an unknown one
/// (forwarded).
pub(super) fn query() -> Scenario {
    let world = charter_world(0, &[ALDRIC]);
    let mut s = Script::new();
    s.enter_world(BRENNA);
    for (id, petition) in [(CHARTER_ID, CHARTER), (999, 999)] {
        s.client(&CmsgPetitionQuery {
            petition_id: id,
            petition: Guid::item(petition),
        });
    }
    Scenario::new("query", world, s)
}

/// Brenna (here) asks for the signatures of Aldric's charter (answered, with her in
/// the owner slot); then the worldserver shows her the charter from its stale cache
/// (one signature: rewritten to all three) and once more with the full list
/// (forwarded as it is).
pub(super) fn show_signatures() -> Scenario {
    let world = charter_world(3, &[ALDRIC]);
    let mut s = Script::new();
    s.enter_world(BRENNA)
        .client(&CmsgPetitionShowSignatures {
            petition: Guid::item(CHARTER),
        })
        .server(&shown(CHARTER, ALDRIC, CHARTER_ID, &[101]))
        .server(&shown(CHARTER, ALDRIC, CHARTER_ID, &[101, 102, 103]));
    Scenario::new("show_signatures", world, s)
}
