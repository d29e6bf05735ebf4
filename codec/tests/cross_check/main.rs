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

mod checks;
mod edges;
mod strategies;
use checks::*;
use strategies::*;

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
