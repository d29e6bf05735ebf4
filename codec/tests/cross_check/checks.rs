//! One check per message: the crate's struct in, our fields and bytes checked.

use super::*;

pub(super) fn cmsg_petition_showlist(m: &w::CMSG_PETITION_SHOWLIST) {
    let (ours, written) = from_client::<CmsgPetitionShowlist, _>(m);
    assert_eq!(ours.npc, g(m.guid));
    same_bytes(&ours, &written);
}

pub(super) fn smsg_petition_showlist(m: &w::SMSG_PETITION_SHOWLIST) {
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

pub(super) fn cmsg_petition_buy(m: &w::CMSG_PETITION_BUY) {
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

pub(super) fn cmsg_petition_show_signatures(m: &w::CMSG_PETITION_SHOW_SIGNATURES) {
    let (ours, written) = from_client::<CmsgPetitionShowSignatures, _>(m);
    assert_eq!(ours.petition, g(m.item));
    same_bytes(&ours, &written);
}

pub(super) fn smsg_petition_show_signatures(m: &w::SMSG_PETITION_SHOW_SIGNATURES) {
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

pub(super) fn cmsg_petition_sign(m: &w::CMSG_PETITION_SIGN) {
    let (ours, written) = from_client::<CmsgPetitionSign, _>(m);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.unk, m.unknown1);
    same_bytes(&ours, &written);
}

pub(super) fn smsg_petition_sign_results(m: &w::SMSG_PETITION_SIGN_RESULTS) {
    let (ours, written) = from_server::<SmsgPetitionSignResults, _>(m, &[]);
    assert_eq!(ours.petition, g(m.petition));
    // The crate's `owner` is the signer AzerothCore writes.
    assert_eq!(ours.signer, g(m.owner));
    assert_eq!(ours.result, m.result.as_int());
    same_bytes(&ours, &written);
}

pub(super) fn msg_petition_decline(m: &w::MSG_PETITION_DECLINE) {
    let (ours, written) = from_client::<MsgPetitionDeclineClient, _>(m);
    assert_eq!(ours.petition, g(m.petition));
    same_bytes(&ours, &written);

    // Server to client: AzerothCore's body is the decliner's guid.
    let (ours, written) = from_server::<MsgPetitionDeclineServer, _>(m, &[]);
    assert_eq!(ours.decliner, g(m.petition));
    same_bytes(&ours, &written);
}

pub(super) fn cmsg_offer_petition(m: &w::CMSG_OFFER_PETITION) {
    let (ours, written) = from_client::<CmsgOfferPetition, _>(m);
    assert_eq!(ours.unk, m.unknown0);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.target, g(m.target));
    same_bytes(&ours, &written);
}

pub(super) fn cmsg_turn_in_petition(m: &w::CMSG_TURN_IN_PETITION) {
    let (ours, written) = from_client::<CmsgTurnInPetition, _>(m);
    assert_eq!(ours.petition, g(m.petition));
    assert_eq!(ours.arena_emblem, None);
    same_bytes(&ours, &written);
}

pub(super) fn smsg_turn_in_petition_results(m: &w::SMSG_TURN_IN_PETITION_RESULTS) {
    let (ours, written) = from_server::<SmsgTurnInPetitionResults, _>(m, &[]);
    assert_eq!(ours.result, m.result.as_int());
    same_bytes(&ours, &written);
}

pub(super) fn cmsg_petition_query(m: &w::CMSG_PETITION_QUERY) {
    let (ours, written) = from_client::<CmsgPetitionQuery, _>(m);
    assert_eq!(ours.petition_id, m.guild_id);
    assert_eq!(ours.petition, g(m.petition));
    same_bytes(&ours, &written);
}

pub(super) fn smsg_petition_query_response(m: &w::SMSG_PETITION_QUERY_RESPONSE) {
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

pub(super) fn msg_petition_rename(m: &w::MSG_PETITION_RENAME) {
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

pub(super) fn cmsg_guild_query(m: &w::CMSG_GUILD_QUERY) {
    let (ours, written) = from_client::<CmsgGuildQuery, _>(m);
    assert_eq!(ours.guild_id, m.guild_id);
    same_bytes(&ours, &written);
}

pub(super) fn smsg_guild_query_response(m: &w::SMSG_GUILD_QUERY_RESPONSE, rank_count: u32) {
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

pub(super) fn cmsg_guild_create(m: &w::CMSG_GUILD_CREATE) {
    let (ours, written) = from_client::<CmsgGuildCreate, _>(m);
    assert_eq!(ours.name, m.guild_name);
    same_bytes(&ours, &written);
}

pub(super) fn cmsg_guild_invite(m: &w::CMSG_GUILD_INVITE) {
    let (ours, written) = from_client::<CmsgGuildInvite, _>(m);
    assert_eq!(ours.name, m.invited_player);
    same_bytes(&ours, &written);
}

pub(super) fn smsg_guild_invite(m: &w::SMSG_GUILD_INVITE) {
    let (ours, written) = from_server::<SmsgGuildInvite, _>(m, &[]);
    assert_eq!(ours.inviter, m.player_name);
    assert_eq!(ours.guild_name, m.guild_name);
    same_bytes(&ours, &written);
}

pub(super) fn smsg_guild_decline(m: &w::SMSG_GUILD_DECLINE) {
    let (ours, written) = from_server::<SmsgGuildDecline, _>(m, &[]);
    assert_eq!(ours.name, m.player);
    same_bytes(&ours, &written);
}

pub(super) fn smsg_guild_info(m: &w::SMSG_GUILD_INFO) {
    let (ours, written) = from_server::<SmsgGuildInfo, _>(m, &[]);
    assert_eq!(ours.name, m.guild_name);
    assert_eq!(ours.created, m.created.as_int());
    // AzerothCore's counts are int32; compare bit patterns.
    assert_eq!(ours.members as u32, m.amount_of_characters_in_guild);
    assert_eq!(ours.accounts as u32, m.amount_of_accounts_in_guild);
    same_bytes(&ours, &written);
}

pub(super) fn smsg_guild_command_result(m: &w::SMSG_GUILD_COMMAND_RESULT) {
    let (ours, written) = from_server::<SmsgGuildCommandResult, _>(m, &[]);
    // Raw numbers: the crate's names do not match AzerothCore's.
    assert_eq!(i32::from(ours.command), i32::from(m.command.as_int()));
    assert_eq!(ours.name, m.string);
    assert_eq!(i32::from(ours.error), i32::from(m.result.as_int()));
    same_bytes(&ours, &written);
}

pub(super) fn smsg_guild_event(m: &w::SMSG_GUILD_EVENT, member: u64) {
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

pub(super) fn empty_bodies() {
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
