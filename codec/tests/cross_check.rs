//! Cross-checks our petition and guild codecs against `wow_world_messages` (wrath), an
//! independent implementation of the 3.3.5a protocol.
//!
//! For every petition message and for the guild query, create, invite, accept,
//! decline, info, command-result and event messages the crate models, each test:
//!
//! 1. builds the crate's struct (proptest with a fixed seed, plus hand-picked edge
//!    values: empty and non-ASCII strings, zero and all-ones guids, 0..=255 list
//!    items, every value of the crate's enums), writes it with the crate, checks the
//!    header (read with our [`Frame::parse`]: opcode equals our `M::OPCODE`, size field
//!    right), decodes the body with OUR type and checks every field against what was
//!    put in;
//! 2. checks that our `to_body()` of the decoded value is byte-identical to the
//!    crate's body (and, with no AzerothCore tail, our whole frame to the crate's).
//!
//! The crate's `write_unencrypted_server/client` need its `sync` feature, which the
//! workspace does not enable, so frames are assembled from what it exposes without
//! it (`OPCODE`, `write_into_vec`, `size_without_header`, `server_size`,
//! `client_size`) in the layout of its `wrath_get_unencrypted_*`: server header =
//! u16 BE size + u16 LE opcode, client header = u16 BE size + u32 LE opcode.
//!
//! Where the crate and AzerothCore disagree we follow AzerothCore:
//!
//! - `SMSG_GUILD_QUERY_RESPONSE`: AzerothCore ends the body with a u32 rank count the
//!   crate does not write; it is appended to the crate's bytes before decoding, and
//!   our encoding is compared against crate bytes + that u32.
//! - `SMSG_GUILD_EVENT`: AzerothCore appends the member's u64 guid for JOINED (3),
//!   LEFT (4), SIGNED_ON (12) and SIGNED_OFF (13) (the crate's `GuildEvent` has the
//!   same numbers); the crate never writes it. Appended likewise for those events.
//! - `SMSG_GUILD_COMMAND_RESULT`: the crate's wrath `GuildCommand` numbers differ from
//!   AzerothCore's `GuildCommandType` (crate QUIT=2, PROMOTE=3, FOUNDER=12,
//!   MEMBER=13, OFFICER_NOTE_CHANGED=20; AzerothCore QUIT=3, PROMOTE=6, FOUNDER=14,
//!   13 is GUILD_CHAT, no 20), and its `GuildCommandResult` names 0 and 8 differently
//!   (PLAYER_NO_MORE_IN_GUILD / LEADER_LEAVE_OR_PERMISSIONS vs SUCCESS / PERMISSIONS).
//!   Our fields are raw numbers, so the numbers the crate writes (`as_int()`) are
//!   compared, never the names.
//! - `SMSG_TURN_IN_PETITION_RESULTS`: the crate reuses `PetitionResult`, so 4 is
//!   NOT_SERVER there but NEED_MORE_SIGNATURES in AzerothCore; raw numbers compared.
//! - `CMSG_TURN_IN_PETITION`: the crate has no arena emblem (guild charters only), so
//!   only `arena_emblem: None` is cross-checked.
//! - `SMSG_PETITION_SIGN_RESULTS`: the crate calls the second guid `owner`;
//!   AzerothCore writes the signer there (our `signer`). Same bytes.
//! - `MSG_PETITION_DECLINE`: the crate has one body (`petition`) for both
//!   directions; AzerothCore's server-to-client body is the decliner's guid (our
//!   `MsgPetitionDeclineServer::decliner`). Same bytes.
//! - `SMSG_PETITION_QUERY_RESPONSE`: our `unk_type` + `unk1[4]` are the crate's
//!   `unknown1..=5`, `unk2` its `unknown6`, `unk3` its `unknown7..=9`,
//!   `unk_strings` its `unknown10`, `unk4` its `unknown11`, `is_arena` its
//!   `charter_type` (GUILD 0, ARENA 1, as AzerothCore writes).
//! - `SMSG_GUILD_INFO`: the crate types `created` as a validated packed `DateTime`
//!   and the counts as u32; ours are a raw u32 and AzerothCore's int32s (compared as
//!   bit patterns).
//!
//! No disagreement between our codec and the crate that AzerothCore does not explain
//! was found.

use std::fmt::Debug;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use tc9_codec::messages::*;
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Origin};
use wow_world_messages::wrath as w;
use wow_world_messages::wrath::{
    ClientMessage as WowClientMessage, ServerMessage as WowServerMessage,
};
use wow_world_messages::{DateTime, Guid as WowGuid, Month, Weekday};

// ---------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------

/// What the crate wrote: its whole frame, and the body our type should read
/// (the crate's body plus any AzerothCore tail).
struct Written {
    origin: Origin,
    frame: Vec<u8>,
    body: Vec<u8>,
    tail_len: usize,
}

/// The crate's body for `m`, checked against its own size.
fn crate_body<W: wow_world_messages::Message>(m: &W) -> Vec<u8> {
    let mut body = Vec::new();
    m.write_into_vec(&mut body).expect("crate writes the body");
    assert_eq!(
        body.len() as u32,
        m.size_without_header(),
        "crate size_without_header"
    );
    body
}

/// The crate's server frame for `m`, as its `write_unencrypted_server` lays it out.
fn crate_server_frame<W: WowServerMessage>(m: &W) -> Vec<u8> {
    let body = crate_body(m);
    let total = m.server_size() as usize;
    assert_eq!(total, 4 + body.len(), "small server header expected");
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&((total - 2) as u16).to_be_bytes());
    frame.extend_from_slice(&(W::OPCODE as u16).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// The crate's client frame for `m`, as its `write_unencrypted_client` lays it out.
fn crate_client_frame<W: WowClientMessage>(m: &W) -> Vec<u8> {
    let body = crate_body(m);
    let total = usize::from(m.client_size());
    assert_eq!(total, 6 + body.len(), "client header is 6 bytes");
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&((total - 2) as u16).to_be_bytes());
    frame.extend_from_slice(&W::OPCODE.to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Reads the crate's `frame` with our framing, checks the header against `M`, and
/// decodes the body (plus `tail`) with our type.
fn decode_ours<M: Message + Debug>(origin: Origin, frame: Vec<u8>, tail: &[u8]) -> (M, Written) {
    let parsed = Frame::parse(origin, &frame).expect("our framing reads the crate's frame");
    assert_eq!(parsed.opcode(), M::OPCODE, "header opcode");
    assert_eq!(
        parsed.header().len(),
        2 + origin.opcode_len(),
        "header length"
    );
    let size = usize::from(u16::from_be_bytes([frame[0], frame[1]]));
    assert_eq!(size, frame.len() - 2, "size field counts opcode + body");
    assert_eq!(size, origin.opcode_len() + parsed.body().len());

    let mut body = parsed.body().to_vec();
    body.extend_from_slice(tail);
    let ours = M::decode(&body).unwrap_or_else(|e| panic!("our {} decode: {e}", M::OPCODE));
    let written = Written {
        origin,
        frame,
        body,
        tail_len: tail.len(),
    };
    (ours, written)
}

/// Crate server message -> our `M`.
fn from_server<M: Message + Debug, W: WowServerMessage>(m: &W, tail: &[u8]) -> (M, Written) {
    decode_ours(Origin::Server, crate_server_frame(m), tail)
}

/// Crate client message -> our `M`.
fn from_client<M: Message + Debug, W: WowClientMessage>(m: &W) -> (M, Written) {
    decode_ours(Origin::Client, crate_client_frame(m), &[])
}

/// Step 2: our encoding of the decoded value is the crate's, byte for byte.
fn same_bytes<M: Message + Debug>(ours: &M, written: &Written) {
    assert_eq!(
        ours.to_body(),
        written.body,
        "our {} body differs from the crate's (+{} AzerothCore tail bytes) for {ours:?}",
        M::OPCODE,
        written.tail_len
    );
    if written.tail_len == 0 {
        let frame = Frame::from_message(written.origin, ours).expect("our frame");
        assert_eq!(&frame.as_bytes()[..], &written.frame[..], "our whole frame");
    }
}

fn g(guid: WowGuid) -> Guid {
    Guid(guid.guid())
}

// ---------------------------------------------------------------------------
// One check per message: crate struct in, our fields and bytes checked.
// ---------------------------------------------------------------------------

fn cmsg_petition_showlist(m: &w::CMSG_PETITION_SHOWLIST) {
    let (ours, written) = from_client::<CmsgPetitionShowlist, _>(m);
    assert_eq!(ours.npc, g(m.guid));
    same_bytes(&ours, &written);
}

fn smsg_petition_showlist(m: &w::SMSG_PETITION_SHOWLIST) {
    let (ours, written) = from_server::<SmsgPetitionShowlist, _>(m, &[]);
    assert_eq!(ours.npc, g(m.npc));
    assert_eq!(ours.entries.len(), m.petitions.len());
    for (o, c) in ours.entries.iter().zip(&m.petitions) {
        assert_eq!(o.index, c.index);
        assert_eq!(o.charter_entry, c.charter_entry);
        assert_eq!(o.display_id, c.charter_display_id);
        assert_eq!(o.cost, c.guild_charter_cost);
        assert_eq!(o.unk, c.unknown1);
        assert_eq!(o.required_signatures, c.signatures_required);
    }
    same_bytes(&ours, &written);
}

fn cmsg_petition_buy(m: &w::CMSG_PETITION_BUY) {
    let (ours, written) = from_client::<CmsgPetitionBuy, _>(m);
    assert_eq!(ours.npc, g(m.npc));
    assert_eq!(ours.unk1, m.unknown1);
    assert_eq!(ours.unk2, m.unknown2.guid());
    assert_eq!(ours.name, m.name);
    assert_eq!(ours.unk_text, m.unknown3);
    assert_eq!(
        ours.unk3,
        [
            m.unknown4,
            m.unknown5,
            m.unknown6,
            m.unknown7,
            m.unknown8,
            m.unknown9,
            m.unknown10
        ]
    );
    assert_eq!(ours.unk4, m.unknown11);
    assert_eq!(ours.unk5, [m.unknown12, m.unknown13, m.unknown14]);
    assert_eq!(ours.unk_strings, m.unknown15);
    assert_eq!(ours.index, m.index);
    assert_eq!(ours.unk6, m.unknown16);
    same_bytes(&ours, &written);
}

fn cmsg_petition_show_signatures(m: &w::CMSG_PETITION_SHOW_SIGNATURES) {
    let (ours, written) = from_client::<CmsgPetitionShowSignatures, _>(m);
    assert_eq!(ours.petition, g(m.item));
    same_bytes(&ours, &written);
}

fn smsg_petition_show_signatures(m: &w::SMSG_PETITION_SHOW_SIGNATURES) {
    let (ours, written) = from_server::<SmsgPetitionShowSignatures, _>(m, &[]);
    assert_eq!(ours.petition, g(m.item));
    assert_eq!(ours.owner, g(m.owner));
    assert_eq!(ours.petition_id, m.petition);
    assert_eq!(ours.signatures.len(), m.signatures.len());
    for (o, c) in ours.signatures.iter().zip(&m.signatures) {
        assert_eq!(o.player, g(c.signer));
        assert_eq!(o.unk, c.unknown1);
    }
    same_bytes(&ours, &written);
}

fn cmsg_petition_sign(m: &w::CMSG_PETITION_SIGN) {
    let (ours, written) = from_client::<CmsgPetitionSign, _>(m);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.unk, m.unknown1);
    same_bytes(&ours, &written);
}

fn smsg_petition_sign_results(m: &w::SMSG_PETITION_SIGN_RESULTS) {
    let (ours, written) = from_server::<SmsgPetitionSignResults, _>(m, &[]);
    assert_eq!(ours.petition, g(m.petition));
    // The crate's `owner` is the signer AzerothCore writes.
    assert_eq!(ours.signer, g(m.owner));
    assert_eq!(ours.result, m.result.as_int());
    same_bytes(&ours, &written);
}

fn msg_petition_decline(m: &w::MSG_PETITION_DECLINE) {
    let (ours, written) = from_client::<MsgPetitionDeclineClient, _>(m);
    assert_eq!(ours.petition, g(m.petition));
    same_bytes(&ours, &written);

    // Server to client: AzerothCore's body is the decliner's guid.
    let (ours, written) = from_server::<MsgPetitionDeclineServer, _>(m, &[]);
    assert_eq!(ours.decliner, g(m.petition));
    same_bytes(&ours, &written);
}

fn cmsg_offer_petition(m: &w::CMSG_OFFER_PETITION) {
    let (ours, written) = from_client::<CmsgOfferPetition, _>(m);
    assert_eq!(ours.unk, m.unknown0);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.target, g(m.target));
    same_bytes(&ours, &written);
}

fn cmsg_turn_in_petition(m: &w::CMSG_TURN_IN_PETITION) {
    let (ours, written) = from_client::<CmsgTurnInPetition, _>(m);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.arena_emblem, None);
    same_bytes(&ours, &written);
}

fn smsg_turn_in_petition_results(m: &w::SMSG_TURN_IN_PETITION_RESULTS) {
    let (ours, written) = from_server::<SmsgTurnInPetitionResults, _>(m, &[]);
    assert_eq!(ours.result, m.result.as_int());
    same_bytes(&ours, &written);
}

fn cmsg_petition_query(m: &w::CMSG_PETITION_QUERY) {
    let (ours, written) = from_client::<CmsgPetitionQuery, _>(m);
    assert_eq!(ours.petition_id, m.guild_id);
    assert_eq!(ours.petition, g(m.petition));
    same_bytes(&ours, &written);
}

fn smsg_petition_query_response(m: &w::SMSG_PETITION_QUERY_RESPONSE) {
    let (ours, written) = from_server::<SmsgPetitionQueryResponse, _>(m, &[]);
    assert_eq!(ours.petition_id, m.petition_id);
    assert_eq!(ours.owner, g(m.charter_owner));
    assert_eq!(ours.name, m.guild_name);
    assert_eq!(ours.body_text, m.body_text);
    assert_eq!(ours.min_signatures, m.minimum_signatures);
    assert_eq!(ours.max_signatures, m.maximum_signatures);
    assert_eq!(ours.unk_type, m.unknown1);
    assert_eq!(ours.unk1, [m.unknown2, m.unknown3, m.unknown4, m.unknown5]);
    assert_eq!(ours.unk2, m.unknown6);
    assert_eq!(ours.unk3, [m.unknown7, m.unknown8, m.unknown9]);
    assert_eq!(ours.unk_strings, m.unknown10);
    assert_eq!(ours.unk4, m.unknown11);
    assert_eq!(ours.is_arena, u32::from(m.charter_type.as_int()));
    same_bytes(&ours, &written);
}

fn msg_petition_rename(m: &w::MSG_PETITION_RENAME) {
    // The crate has it in both directions, and so do we (one type).
    let (ours, written) = from_client::<MsgPetitionRename, _>(m);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.name, m.new_name);
    same_bytes(&ours, &written);

    let (ours, written) = from_server::<MsgPetitionRename, _>(m, &[]);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.name, m.new_name);
    same_bytes(&ours, &written);
}

fn cmsg_guild_query(m: &w::CMSG_GUILD_QUERY) {
    let (ours, written) = from_client::<CmsgGuildQuery, _>(m);
    assert_eq!(ours.guild_id, m.guild_id);
    same_bytes(&ours, &written);
}

fn smsg_guild_query_response(m: &w::SMSG_GUILD_QUERY_RESPONSE, rank_count: u32) {
    // AzerothCore appends the rank count.
    let (ours, written) = from_server::<SmsgGuildQueryResponse, _>(m, &rank_count.to_le_bytes());
    assert_eq!(ours.guild_id, m.id);
    assert_eq!(ours.name, m.name);
    assert_eq!(ours.rank_names, m.rank_names);
    assert_eq!(ours.emblem.emblem_style, m.emblem_style);
    assert_eq!(ours.emblem.emblem_color, m.emblem_color);
    assert_eq!(ours.emblem.border_style, m.border_style);
    assert_eq!(ours.emblem.border_color, m.border_color);
    assert_eq!(ours.emblem.background_color, m.background_color);
    assert_eq!(ours.rank_count, rank_count);
    same_bytes(&ours, &written);
}

fn cmsg_guild_create(m: &w::CMSG_GUILD_CREATE) {
    let (ours, written) = from_client::<CmsgGuildCreate, _>(m);
    assert_eq!(ours.name, m.guild_name);
    same_bytes(&ours, &written);
}

fn cmsg_guild_invite(m: &w::CMSG_GUILD_INVITE) {
    let (ours, written) = from_client::<CmsgGuildInvite, _>(m);
    assert_eq!(ours.name, m.invited_player);
    same_bytes(&ours, &written);
}

fn smsg_guild_invite(m: &w::SMSG_GUILD_INVITE) {
    let (ours, written) = from_server::<SmsgGuildInvite, _>(m, &[]);
    assert_eq!(ours.inviter, m.player_name);
    assert_eq!(ours.guild_name, m.guild_name);
    same_bytes(&ours, &written);
}

fn smsg_guild_decline(m: &w::SMSG_GUILD_DECLINE) {
    let (ours, written) = from_server::<SmsgGuildDecline, _>(m, &[]);
    assert_eq!(ours.name, m.player);
    same_bytes(&ours, &written);
}

fn smsg_guild_info(m: &w::SMSG_GUILD_INFO) {
    let (ours, written) = from_server::<SmsgGuildInfo, _>(m, &[]);
    assert_eq!(ours.name, m.guild_name);
    assert_eq!(ours.created, m.created.as_int());
    // AzerothCore's counts are int32; compare bit patterns.
    assert_eq!(ours.members as u32, m.amount_of_characters_in_guild);
    assert_eq!(ours.accounts as u32, m.amount_of_accounts_in_guild);
    same_bytes(&ours, &written);
}

fn smsg_guild_command_result(m: &w::SMSG_GUILD_COMMAND_RESULT) {
    let (ours, written) = from_server::<SmsgGuildCommandResult, _>(m, &[]);
    // Raw numbers: the crate's names do not match AzerothCore's.
    assert_eq!(i32::from(ours.command), i32::from(m.command.as_int()));
    assert_eq!(ours.name, m.string);
    assert_eq!(i32::from(ours.error), i32::from(m.result.as_int()));
    same_bytes(&ours, &written);
}

fn smsg_guild_event(m: &w::SMSG_GUILD_EVENT, member: u64) {
    let code = m.event.as_int();
    // AzerothCore appends the member's guid to these four events.
    let carries_guid = matches!(
        m.event,
        w::GuildEvent::Joined
            | w::GuildEvent::Left
            | w::GuildEvent::SignedOn
            | w::GuildEvent::SignedOff
    );
    assert_eq!(carries_guid, [3, 4, 12, 13].contains(&code));
    assert_eq!(carries_guid, tc9_codec::messages::event::has_guid(code));
    let tail = if carries_guid {
        member.to_le_bytes().to_vec()
    } else {
        Vec::new()
    };
    let (ours, written) = from_server::<SmsgGuildEvent, _>(m, &tail);
    assert_eq!(ours.event, code);
    assert_eq!(ours.params, m.event_descriptions);
    assert_eq!(ours.guid, carries_guid.then_some(Guid(member)));
    same_bytes(&ours, &written);
}

fn empty_bodies() {
    let (ours, written) = from_client::<CmsgGuildAccept, _>(&w::CMSG_GUILD_ACCEPT {});
    assert_eq!(ours, CmsgGuildAccept {});
    same_bytes(&ours, &written);
    let (ours, written) = from_client::<CmsgGuildDecline, _>(&w::CMSG_GUILD_DECLINE {});
    assert_eq!(ours, CmsgGuildDecline {});
    same_bytes(&ours, &written);
    let (ours, written) = from_client::<CmsgGuildInfo, _>(&w::CMSG_GUILD_INFO {});
    assert_eq!(ours, CmsgGuildInfo {});
    same_bytes(&ours, &written);
}

// ---------------------------------------------------------------------------
// Strategies for the crate's structs
// ---------------------------------------------------------------------------

fn arb_guid() -> impl Strategy<Value = WowGuid> {
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
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z' ]{1,24}",
        "\\PC{1,16}",
        Just("Ænima — 公会 Ünïcødé 🐉".to_owned()),
    ]
}

fn arb_strings10() -> impl Strategy<Value = [String; 10]> {
    proptest::array::uniform10(arb_text())
}

fn arb_petition_result() -> impl Strategy<Value = w::PetitionResult> {
    proptest::sample::select(w::PetitionResult::variants().to_vec())
}

fn arb_guild_event() -> impl Strategy<Value = w::GuildEvent> {
    proptest::sample::select(w::GuildEvent::variants().to_vec())
}

fn arb_guild_command() -> impl Strategy<Value = w::GuildCommand> {
    proptest::sample::select(w::GuildCommand::variants().to_vec())
}

fn arb_guild_command_result() -> impl Strategy<Value = w::GuildCommandResult> {
    proptest::sample::select(w::GuildCommandResult::variants().to_vec())
}

fn arb_showlist_entry() -> impl Strategy<Value = w::PetitionShowlist> {
    any::<[u32; 6]>().prop_map(|v| w::PetitionShowlist {
        index: v[0],
        charter_entry: v[1],
        charter_display_id: v[2],
        guild_charter_cost: v[3],
        unknown1: v[4],
        signatures_required: v[5],
    })
}

fn arb_signature() -> impl Strategy<Value = w::PetitionSignature> {
    (arb_guid(), any::<u32>())
        .prop_map(|(signer, unknown1)| w::PetitionSignature { signer, unknown1 })
}

fn arb_petition_buy() -> impl Strategy<Value = w::CMSG_PETITION_BUY> {
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

fn arb_petition_query_response() -> impl Strategy<Value = w::SMSG_PETITION_QUERY_RESPONSE> {
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

fn arb_guild_query_response() -> impl Strategy<Value = w::SMSG_GUILD_QUERY_RESPONSE> {
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
fn arb_date_time() -> impl Strategy<Value = DateTime> {
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

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        rng_seed: RngSeed::Fixed(0x7C9_C0DE),
        // Never write regression files next to this test.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn petition_showlist(npc in arb_guid(), petitions in vec(arb_showlist_entry(), 0..6)) {
        cmsg_petition_showlist(&w::CMSG_PETITION_SHOWLIST { guid: npc });
        smsg_petition_showlist(&w::SMSG_PETITION_SHOWLIST { npc, petitions });
    }

    #[test]
    fn petition_buy(m in arb_petition_buy()) {
        cmsg_petition_buy(&m);
    }

    #[test]
    fn petition_show_signatures(
        item in arb_guid(),
        owner in arb_guid(),
        petition in any::<u32>(),
        signatures in vec(arb_signature(), 0..12),
    ) {
        cmsg_petition_show_signatures(&w::CMSG_PETITION_SHOW_SIGNATURES { item });
        smsg_petition_show_signatures(&w::SMSG_PETITION_SHOW_SIGNATURES {
            item,
            owner,
            petition,
            signatures,
        });
    }

    #[test]
    fn petition_sign(petition in arb_guid(), signer in arb_guid(), unknown1 in any::<u8>(), result in arb_petition_result()) {
        cmsg_petition_sign(&w::CMSG_PETITION_SIGN { petition, unknown1 });
        smsg_petition_sign_results(&w::SMSG_PETITION_SIGN_RESULTS { petition, owner: signer, result });
    }

    #[test]
    fn petition_decline(petition in arb_guid()) {
        msg_petition_decline(&w::MSG_PETITION_DECLINE { petition });
    }

    #[test]
    fn offer_petition(unknown0 in any::<u32>(), petition in arb_guid(), target in arb_guid()) {
        cmsg_offer_petition(&w::CMSG_OFFER_PETITION { unknown0, petition, target });
    }

    #[test]
    fn turn_in_petition(petition in arb_guid(), result in arb_petition_result()) {
        cmsg_turn_in_petition(&w::CMSG_TURN_IN_PETITION { petition });
        smsg_turn_in_petition_results(&w::SMSG_TURN_IN_PETITION_RESULTS { result });
    }

    #[test]
    fn petition_query(guild_id in any::<u32>(), petition in arb_guid(), response in arb_petition_query_response()) {
        cmsg_petition_query(&w::CMSG_PETITION_QUERY { guild_id, petition });
        smsg_petition_query_response(&response);
    }

    #[test]
    fn petition_rename(petition in arb_guid(), new_name in arb_text()) {
        msg_petition_rename(&w::MSG_PETITION_RENAME { petition, new_name });
    }

    #[test]
    fn guild_query(guild_id in any::<u32>(), response in arb_guild_query_response(), rank_count in 0u32..=10) {
        cmsg_guild_query(&w::CMSG_GUILD_QUERY { guild_id });
        smsg_guild_query_response(&response, rank_count);
    }

    #[test]
    fn guild_create_invite_decline(a in arb_text(), b in arb_text(), c in arb_text()) {
        cmsg_guild_create(&w::CMSG_GUILD_CREATE { guild_name: a.clone() });
        cmsg_guild_invite(&w::CMSG_GUILD_INVITE { invited_player: b.clone() });
        smsg_guild_invite(&w::SMSG_GUILD_INVITE { player_name: a, guild_name: c });
        smsg_guild_decline(&w::SMSG_GUILD_DECLINE { player: b });
    }

    #[test]
    fn guild_info(guild_name in arb_text(), created in arb_date_time(), members in any::<u32>(), accounts in any::<u32>()) {
        smsg_guild_info(&w::SMSG_GUILD_INFO {
            guild_name,
            created,
            amount_of_characters_in_guild: members,
            amount_of_accounts_in_guild: accounts,
        });
    }

    #[test]
    fn guild_command_result(command in arb_guild_command(), string in arb_text(), result in arb_guild_command_result()) {
        smsg_guild_command_result(&w::SMSG_GUILD_COMMAND_RESULT { command, string, result });
    }

    #[test]
    fn guild_event(event in arb_guild_event(), event_descriptions in vec(arb_text(), 0..4), member in arb_guid()) {
        smsg_guild_event(&w::SMSG_GUILD_EVENT { event, event_descriptions }, member.guid());
    }
}

// ---------------------------------------------------------------------------
// Hand-picked edge values and every enum value
// ---------------------------------------------------------------------------

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
