//! Strategies for the crate's structs.

use super::*;

pub(super) fn arb_guid() -> impl Strategy<Value = WowGuid> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        any::<u32>().prop_map(u64::from),
        any::<u32>().prop_map(|low| 0x4000 << 48 | u64::from(low)),
        any::<u64>(),
    ]
    .prop_map(WowGuid::new)
}

/// Strings without NUL: empty, ASCII names, any printable Unicode, a fixed mix.
pub(super) fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z' ]{1,24}",
        "\\PC{1,16}",
        Just("Ænima — 公会 Ünïcødé 🐉".to_owned()),
    ]
}

pub(super) fn arb_strings10() -> impl Strategy<Value = [String; 10]> {
    proptest::array::uniform10(arb_text())
}

pub(super) fn arb_petition_result() -> impl Strategy<Value = w::PetitionResult> {
    proptest::sample::select(w::PetitionResult::variants().to_vec())
}

pub(super) fn arb_guild_event() -> impl Strategy<Value = w::GuildEvent> {
    proptest::sample::select(w::GuildEvent::variants().to_vec())
}

pub(super) fn arb_guild_command() -> impl Strategy<Value = w::GuildCommand> {
    proptest::sample::select(w::GuildCommand::variants().to_vec())
}

pub(super) fn arb_guild_command_result() -> impl Strategy<Value = w::GuildCommandResult> {
    proptest::sample::select(w::GuildCommandResult::variants().to_vec())
}

pub(super) fn arb_showlist_entry() -> impl Strategy<Value = w::PetitionShowlist> {
    any::<[u32; 6]>().prop_map(|v| w::PetitionShowlist {
        index: v[0],
        charter_entry: v[1],
        charter_display_id: v[2],
        guild_charter_cost: v[3],
        unknown1: v[4],
        signatures_required: v[5],
    })
}

pub(super) fn arb_signature() -> impl Strategy<Value = w::PetitionSignature> {
    (arb_guid(), any::<u32>())
        .prop_map(|(signer, unknown1)| w::PetitionSignature { signer, unknown1 })
}

pub(super) fn arb_petition_buy() -> impl Strategy<Value = w::CMSG_PETITION_BUY> {
    (
        arb_guid(),
        any::<u32>(),
        arb_guid(),
        arb_text(),
        arb_text(),
        any::<[u32; 7]>(),
        any::<u16>(),
        any::<[u32; 3]>(),
        arb_strings10(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(
                npc,
                unknown1,
                unknown2,
                name,
                unknown3,
                a,
                unknown11,
                b,
                unknown15,
                index,
                unknown16,
            )| {
                w::CMSG_PETITION_BUY {
                    npc,
                    unknown1,
                    unknown2,
                    name,
                    unknown3,
                    unknown4: a[0],
                    unknown5: a[1],
                    unknown6: a[2],
                    unknown7: a[3],
                    unknown8: a[4],
                    unknown9: a[5],
                    unknown10: a[6],
                    unknown11,
                    unknown12: b[0],
                    unknown13: b[1],
                    unknown14: b[2],
                    unknown15,
                    index,
                    unknown16,
                }
            },
        )
}

pub(super) fn arb_petition_query_response() -> impl Strategy<Value = w::SMSG_PETITION_QUERY_RESPONSE>
{
    (
        any::<u32>(),
        arb_guid(),
        arb_text(),
        arb_text(),
        any::<u32>(),
        any::<u32>(),
        any::<[u32; 5]>(),
        any::<u16>(),
        any::<[u32; 3]>(),
        any::<[u8; 10]>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                petition_id,
                charter_owner,
                guild_name,
                body_text,
                min,
                max,
                a,
                unknown6,
                b,
                unknown10,
                unknown11,
                arena,
            )| {
                w::SMSG_PETITION_QUERY_RESPONSE {
                    petition_id,
                    charter_owner,
                    guild_name,
                    body_text,
                    minimum_signatures: min,
                    maximum_signatures: max,
                    unknown1: a[0],
                    unknown2: a[1],
                    unknown3: a[2],
                    unknown4: a[3],
                    unknown5: a[4],
                    unknown6,
                    unknown7: b[0],
                    unknown8: b[1],
                    unknown9: b[2],
                    unknown10,
                    unknown11,
                    charter_type: if arena {
                        w::CharterType::Arena
                    } else {
                        w::CharterType::Guild
                    },
                }
            },
        )
}

pub(super) fn arb_guild_query_response() -> impl Strategy<Value = w::SMSG_GUILD_QUERY_RESPONSE> {
    (any::<u32>(), arb_text(), arb_strings10(), any::<[u32; 5]>()).prop_map(
        |(id, name, rank_names, e)| w::SMSG_GUILD_QUERY_RESPONSE {
            id,
            name,
            rank_names,
            emblem_style: e[0],
            emblem_color: e[1],
            border_style: e[2],
            border_color: e[3],
            background_color: e[4],
        },
    )
}

/// Packed dates the crate can hold (`DateTime::new` does not validate the day).
pub(super) fn arb_date_time() -> impl Strategy<Value = DateTime> {
    (0u8..32, 0u32..12, 0u8..31, 0u32..7, 0u8..24, 0u8..60).prop_map(|(y, mo, d, wd, h, mi)| {
        DateTime::new(
            y,
            Month::try_from(mo).expect("month"),
            d,
            Weekday::try_from(wd).expect("weekday"),
            h,
            mi,
        )
    })
}

pub(super) fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        rng_seed: RngSeed::Fixed(0x7C9_C0DE),
        // Never write regression files next to this test.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
