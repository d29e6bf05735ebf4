//! Tests of [`crate::rules`].

use super::*;

fn charter() -> Petition {
    Petition {
        petition_guid: 77,
        petition_id: 5,
        owner_guid: 1,
        name: "Stormwind Watch".into(),
        kind: GUILD_CHARTER_TYPE,
    }
}

fn human(guid: u32, account: u32) -> Player {
    Player {
        guid,
        account,
        name: format!("P{guid}"),
        race: 1,
        class: 1,
        level: 80,
        guild_id: None,
    }
}

fn signed(n: u32) -> Vec<Signature> {
    (0..n)
        .map(|i| Signature {
            player_guid: 100 + i,
            account: 1000 + i,
        })
        .collect()
}

#[test]
fn a_free_signer_is_recorded() {
    let verdict = judge_sign(
        &charter(),
        &signed(3),
        &human(2, 20),
        1,
        false,
        &Rules::default(),
    );
    let SignVerdict::Record(result) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(result.petition, Guid::item(77));
    assert_eq!(result.signer, Guid::player(2));
    assert_eq!(result.result, sign_result::OK);
}

#[test]
fn rules_apply_in_azerothcore_order() {
    let rules = Rules::default();
    let petition = charter();
    assert_eq!(
        judge_sign(&petition, &[], &human(1, 10), 1, false, &rules),
        SignVerdict::Ignore,
        "the owner cannot sign"
    );
    let orc = Player {
        race: 2,
        guild_id: Some(4),
        ..human(2, 20)
    };
    assert_eq!(
        judge_sign(&petition, &[], &orc, 1, true, &rules),
        SignVerdict::Refuse(command_result(
            GuildCommand::Create,
            "",
            GuildCommandError::NotAllied
        )),
        "faction comes before guild membership"
    );
    let two_side = Rules {
        two_side_guild: true,
        ..rules
    };
    assert_eq!(
        judge_sign(&petition, &[], &orc, 1, true, &two_side),
        SignVerdict::Refuse(command_result(
            GuildCommand::Invite,
            "P2",
            GuildCommandError::AlreadyInGuildS
        ))
    );
    assert_eq!(
        judge_sign(&petition, &[], &human(2, 20), 1, true, &rules),
        SignVerdict::Refuse(command_result(
            GuildCommand::Invite,
            "P2",
            GuildCommandError::AlreadyInvitedToGuildS
        ))
    );
}

#[test]
fn a_full_charter_is_silent_and_checked_before_the_account() {
    let full = signed(9);
    let same_account = Player {
        account: 1000,
        ..human(2, 0)
    };
    assert_eq!(
        judge_sign(
            &charter(),
            &full,
            &same_account,
            1,
            false,
            &Rules::default()
        ),
        SignVerdict::Ignore
    );
    let eight = signed(8);
    assert!(matches!(
        judge_sign(
            &charter(),
            &eight,
            &human(2, 20),
            1,
            false,
            &Rules::default()
        ),
        SignVerdict::Record(_)
    ));
}

#[test]
fn one_signature_per_account() {
    let verdict = judge_sign(
        &charter(),
        &signed(2),
        &Player {
            account: 1001,
            ..human(2, 0)
        },
        1,
        false,
        &Rules::default(),
    );
    let SignVerdict::AlreadySigned(result) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(result.result, sign_result::ALREADY_SIGNED);
    assert_eq!(result.signer, Guid::player(2));
}

#[test]
fn offers_name_the_offerer() {
    let rules = Rules::default();
    let owner = human(1, 10);
    assert_eq!(
        judge_offer(&charter(), &owner, &human(2, 20), false, &rules),
        OfferVerdict::Deliver
    );
    assert_eq!(
        judge_offer(&charter(), &human(3, 30), &human(2, 20), false, &rules),
        OfferVerdict::Ignore
    );
    let member = Player {
        guild_id: Some(1),
        ..human(2, 20)
    };
    assert_eq!(
        judge_offer(&charter(), &owner, &member, false, &rules),
        OfferVerdict::Refuse(command_result(
            GuildCommand::Invite,
            "P1",
            GuildCommandError::AlreadyInGuildS
        ))
    );
    let undead = Player {
        race: 5,
        ..human(2, 20)
    };
    assert_eq!(
        judge_offer(&charter(), &owner, &undead, false, &rules),
        OfferVerdict::Refuse(command_result(
            GuildCommand::Create,
            "",
            GuildCommandError::NotAllied
        ))
    );
}

#[test]
fn shown_and_queried_charters() {
    let shown = show_signatures(&charter(), 9, &signed(2));
    assert_eq!(shown.owner, Guid::player(9));
    assert_eq!(shown.petition_id, 5);
    assert_eq!(shown.signatures.len(), 2);
    assert_eq!(shown.signatures[1].player, Guid::player(101));

    let rules = Rules {
        min_signatures: 4,
        ..Rules::default()
    };
    let query = query_response(&charter(), &rules);
    assert_eq!(
        (query.min_signatures, query.max_signatures, query.is_arena),
        (4, 4, 0)
    );
    assert_eq!(query.owner, Guid::player(1));
    let arena = Petition {
        kind: 3,
        ..charter()
    };
    assert_eq!(rules.required_signatures(&arena), 2);
}

#[test]
fn guild_query_places_ranks_by_id() {
    let guild = Guild {
        id: 3,
        name: "Knights".into(),
        emblem: [1, 2, 3, 4, 5],
        ranks: vec![
            (0, "Master".into()),
            (1, "Officer".into()),
            (4, "Initiate".into()),
        ],
    };
    let response = guild_query_response(&guild);
    assert_eq!(response.rank_names[0], "Master");
    assert_eq!(response.rank_names[4], "Initiate");
    assert_eq!(response.rank_names[2], "");
    assert_eq!(response.rank_count, 3);
    assert_eq!(response.emblem.background_color, 5);
}

#[test]
fn races_map_to_factions() {
    assert_eq!(team_of_race(11), Some(Team::Alliance));
    assert_eq!(team_of_race(10), Some(Team::Horde));
    assert_eq!(team_of_race(9), None);
}
