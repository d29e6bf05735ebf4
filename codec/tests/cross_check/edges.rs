//! Hand-picked edge values, every enum value, and bytes anchored by hand.

use super::*;

const EDGE_TEXTS: [&str; 4] = ["", "Ironforge Defenders", "Ærøskøbing 公会 ✓", "🐉🐉🐉"];
const EDGE_GUIDS: [u64; 4] = [0, 1, 0x4000_0000_0000_0007, u64::MAX];

#[test]
fn edge_values_and_every_enum_value() {
    empty_bodies();

    for (i, (&raw, &name)) in EDGE_GUIDS.iter().zip(EDGE_TEXTS.iter()).enumerate() {
        let guid = WowGuid::new(raw);
        let n = i as u32;
        let strings: [String; 10] = std::array::from_fn(|j| EDGE_TEXTS[(i + j) % 4].to_owned());

        cmsg_petition_showlist(&w::CMSG_PETITION_SHOWLIST { guid });
        smsg_petition_showlist(&w::SMSG_PETITION_SHOWLIST {
            npc: guid,
            petitions: (0..i as u32)
                .map(|k| w::PetitionShowlist {
                    index: k + 1,
                    charter_entry: 5863,
                    charter_display_id: 16161,
                    guild_charter_cost: 1000,
                    unknown1: 0,
                    signatures_required: u32::MAX - k,
                })
                .collect(),
        });
        cmsg_petition_buy(&w::CMSG_PETITION_BUY {
            npc: guid,
            name: name.to_owned(),
            unknown15: strings.clone(),
            index: 1,
            unknown11: u16::MAX,
            ..Default::default()
        });
        cmsg_petition_show_signatures(&w::CMSG_PETITION_SHOW_SIGNATURES { item: guid });
        cmsg_petition_sign(&w::CMSG_PETITION_SIGN {
            petition: guid,
            unknown1: 1,
        });
        msg_petition_decline(&w::MSG_PETITION_DECLINE { petition: guid });
        cmsg_offer_petition(&w::CMSG_OFFER_PETITION {
            unknown0: n,
            petition: guid,
            target: WowGuid::new(!raw),
        });
        cmsg_turn_in_petition(&w::CMSG_TURN_IN_PETITION { petition: guid });
        cmsg_petition_query(&w::CMSG_PETITION_QUERY {
            guild_id: u32::MAX - n,
            petition: guid,
        });
        smsg_petition_query_response(&w::SMSG_PETITION_QUERY_RESPONSE {
            petition_id: n,
            charter_owner: guid,
            guild_name: name.to_owned(),
            body_text: EDGE_TEXTS[(i + 1) % 4].to_owned(),
            minimum_signatures: 9,
            maximum_signatures: 9,
            unknown10: [i as u8; 10],
            charter_type: w::CharterType::variants()[i % 2],
            ..Default::default()
        });
        msg_petition_rename(&w::MSG_PETITION_RENAME {
            petition: guid,
            new_name: name.to_owned(),
        });
        cmsg_guild_query(&w::CMSG_GUILD_QUERY { guild_id: n });
        for rank_count in [0, 5, 10] {
            smsg_guild_query_response(
                &w::SMSG_GUILD_QUERY_RESPONSE {
                    id: n,
                    name: name.to_owned(),
                    rank_names: strings.clone(),
                    emblem_style: u32::MAX,
                    ..Default::default()
                },
                rank_count,
            );
        }
        cmsg_guild_create(&w::CMSG_GUILD_CREATE {
            guild_name: name.to_owned(),
        });
        cmsg_guild_invite(&w::CMSG_GUILD_INVITE {
            invited_player: name.to_owned(),
        });
        smsg_guild_invite(&w::SMSG_GUILD_INVITE {
            player_name: name.to_owned(),
            guild_name: EDGE_TEXTS[(i + 2) % 4].to_owned(),
        });
        smsg_guild_decline(&w::SMSG_GUILD_DECLINE {
            player: name.to_owned(),
        });
        smsg_guild_info(&w::SMSG_GUILD_INFO {
            guild_name: name.to_owned(),
            created: DateTime::new(9, Month::June, 14, Weekday::Sunday, 23, 59),
            amount_of_characters_in_guild: [0, 1, i32::MAX as u32, u32::MAX][i],
            amount_of_accounts_in_guild: n,
        });
    }

    // List lengths up to the u8 count's maximum.
    for count in [0usize, 1, 9, 255] {
        smsg_petition_show_signatures(&w::SMSG_PETITION_SHOW_SIGNATURES {
            item: WowGuid::new(0x4000_0000_0000_0042),
            owner: WowGuid::new(3),
            petition: 0x42,
            signatures: (0..count as u64)
                .map(|k| w::PetitionSignature {
                    signer: WowGuid::new(k + 1),
                    unknown1: 0,
                })
                .collect(),
        });
        smsg_guild_event(
            &w::SMSG_GUILD_EVENT {
                event: w::GuildEvent::Motd,
                event_descriptions: (0..count).map(|k| EDGE_TEXTS[k % 4].to_owned()).collect(),
            },
            0,
        );
    }

    for result in w::PetitionResult::variants() {
        smsg_petition_sign_results(&w::SMSG_PETITION_SIGN_RESULTS {
            petition: WowGuid::new(0x4000_0000_0000_0007),
            owner: WowGuid::new(42),
            result,
        });
        smsg_turn_in_petition_results(&w::SMSG_TURN_IN_PETITION_RESULTS { result });
    }

    for command in w::GuildCommand::variants() {
        for result in w::GuildCommandResult::variants() {
            for string in EDGE_TEXTS {
                smsg_guild_command_result(&w::SMSG_GUILD_COMMAND_RESULT {
                    command,
                    string: string.to_owned(),
                    result,
                });
            }
        }
    }

    for event in w::GuildEvent::variants() {
        for (k, &member) in EDGE_GUIDS.iter().enumerate() {
            smsg_guild_event(
                &w::SMSG_GUILD_EVENT {
                    event,
                    event_descriptions: EDGE_TEXTS[..k].iter().map(|s| (*s).to_owned()).collect(),
                },
                member,
            );
        }
    }
}

/// Hand-written frames, so a mistake in the header assembly above (shared by both
/// sides of every comparison) would still show.
#[test]
fn anchored_bytes() {
    let frame = crate_server_frame(&w::SMSG_GUILD_EVENT {
        event: w::GuildEvent::Joined,
        event_descriptions: vec!["Arthas".to_owned()],
    });
    assert_eq!(frame, b"\x00\x0b\x92\x00\x03\x01Arthas\0");
    let frame = crate_client_frame(&w::CMSG_PETITION_SIGN {
        petition: WowGuid::new(0x4000_0000_0000_0007),
        unknown1: 1,
    });
    assert_eq!(
        frame,
        [0x00, 0x0D, 0xC0, 0x01, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0x40, 1]
    );
}
