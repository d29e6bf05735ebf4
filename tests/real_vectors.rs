//! Real bytes: every frame of `../shared/vectors/real-335a.tsv` (frames a live
//! AzerothCore worldserver sent to a real 3.3.5a client, that client's
//! `CMSG_AUTH_SESSION` frames, and the encrypted headers of one real session)
//! decodes to the values the file lists, and the encrypted headers decrypt, in
//! order, with the session key it gives. Skipped, with a message, where `../shared`
//! is absent (a user's clone).

use tc9_codec::crypt::HeaderCipher;
use tc9_codec::messages::{
    CmsgAuthSession, SmsgAuthChallenge, SmsgGuildEvent, SmsgGuildInvite, SmsgGuildQueryResponse,
    SmsgGuildRoster,
};
use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Message, Origin};
use tc9_testkit::vectors::{self, Vector};

fn row<'a>(rows: &'a [Vector], id: &str) -> &'a Vector {
    rows.iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("row {id}"))
}

fn frame(rows: &[Vector], id: &str) -> Frame {
    let r = row(rows, id);
    let frame = Frame::parse(r.origin, &r.bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(frame.opcode().0, r.opcode, "{id}: opcode");
    assert_eq!(
        frame.as_bytes().as_ref(),
        &r.bytes[..],
        "{id}: one whole frame, nothing left"
    );
    frame
}

fn decoded<M: Message>(rows: &[Vector], id: &str) -> M {
    let frame = frame(rows, id);
    let message = M::decode(frame.body()).unwrap_or_else(|e| panic!("{id}: {e}"));
    let again = Frame::from_message(frame.origin(), &message).expect("encodes");
    assert_eq!(
        again.as_bytes(),
        frame.as_bytes(),
        "{id}: re-encodes byte for byte"
    );
    message
}

#[test]
fn every_real_frame_decodes_to_the_listed_values() {
    let Some(rows) = vectors::real_335a() else {
        return;
    };

    let query: SmsgGuildQueryResponse = decoded(&rows, "H1");
    assert_eq!(
        (query.guild_id, query.name.as_str()),
        (1, "Carpe Kindergarten")
    );
    assert_eq!(
        query.rank_names,
        [
            "Guild Master",
            "Officer",
            "Veteran",
            "Member",
            "Initiate",
            "",
            "",
            "",
            "",
            ""
        ]
        .map(String::from)
    );
    assert_eq!(query.rank_count, 5);

    let roster: SmsgGuildRoster = decoded(&rows, "H2");
    assert_eq!(
        (roster.members.len(), roster.motd.as_str()),
        (20, "hello brate")
    );
    let adidi = &roster.members[0];
    assert_eq!(
        (
            adidi.name.as_str(),
            adidi.guid,
            adidi.status,
            adidi.rank,
            adidi.level,
            adidi.class
        ),
        ("Adidi", Guid::player(5), 0, 4, 255, 2)
    );
    assert_eq!(adidi.area, 33);
    let days = adidi
        .last_save
        .expect("an offline member carries its days since logout");
    assert!((days - 20.416).abs() < 0.001, "{days}");
    let act = &roster.members[2];
    assert_eq!(
        (
            act.name.as_str(),
            act.guid,
            act.status,
            act.rank,
            act.level,
            act.class,
            act.area
        ),
        ("Act", Guid::player(1), 1, 0, 80, 9, 618)
    );
    let roster: SmsgGuildRoster = decoded(&rows, "H3");
    let eco = &roster.members[0];
    assert_eq!(roster.members.len(), 21);
    assert_eq!(
        (
            eco.name.as_str(),
            eco.guid,
            eco.status,
            eco.rank,
            eco.level,
            eco.class,
            eco.area
        ),
        ("Eco", Guid::player(0x1F), 1, 1, 80, 4, 1519)
    );

    for (id, text) in [("H4", "ayyyyy"), ("H5", "hello brate")] {
        let event: SmsgGuildEvent = decoded(&rows, id);
        assert_eq!(
            (event.event, event.params.clone(), event.guid),
            (2, vec![text.to_owned()], None),
            "{id}"
        );
    }
    let event: SmsgGuildEvent = decoded(&rows, "H6");
    assert_eq!(
        (event.event, event.params, event.guid),
        (13, vec!["Pont".to_owned()], Some(Guid::player(0x30)))
    );

    let invite: SmsgGuildInvite = decoded(&rows, "H7");
    assert_eq!(
        (invite.inviter.as_str(), invite.guild_name.as_str()),
        ("Act", "Carpe Kindergarten")
    );

    let challenge: SmsgAuthChallenge = decoded(&rows, "H8");
    assert_eq!(u32::from_le_bytes(challenge.server_seed.0), 0xE482_6F4C);
    // H9 is the same message's body alone.
    let body = SmsgAuthChallenge::decode(&row(&rows, "H9").bytes).expect("H9 decodes as a body");
    assert_eq!(body.one, 1);

    let response = frame(&rows, "H10");
    assert_eq!(response.body()[0], 0x0C, "AUTH_OK");
    assert_eq!(*response.body().last().unwrap(), 2, "expansion 2");

    for id in ["H11", "H12", "H13", "H14", "H15"] {
        let auth: CmsgAuthSession = decoded(&rows, id);
        assert_eq!(
            (auth.build, auth.account.as_str(), auth.realm_id),
            (12340, "ADMIN", 1),
            "{id}"
        );
        let blob = &auth.addons.0;
        let size = u32::from_le_bytes(blob[..4].try_into().unwrap());
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&blob[4..]),
            &mut inflated,
        )
        .unwrap_or_else(|e| panic!("{id}: the addon blob inflates: {e}"));
        assert_eq!(
            (size, inflated.len()),
            (670, 670),
            "{id}: the addon blob's size"
        );
        let addons = u32::from_le_bytes(inflated[..4].try_into().unwrap());
        assert_eq!(addons, 23, "{id}: addons listed");
    }

    let negative = row(&rows, "X1");
    assert!(negative.note.starts_with("NEGATIVE"));
    let err =
        Frame::parse(Origin::Client, &negative.bytes).expect_err("X1 is short of its size field");
    eprintln!("X1 refused: {err}");
}

#[test]
fn encrypted_headers_decrypt_in_order_with_the_session_key() {
    let Some(rows) = vectors::real_335a() else {
        return;
    };
    let key_hex =
        "0133517192d1b585838132ce7ae4d073340f8436bd11b29db20323baca97e23aa2bc41ae3c129807";
    let key: [u8; 40] = (0..80)
        .step_by(2)
        .map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let (mut to_client, mut to_server) = (
        HeaderCipher::server_to_client(&key),
        HeaderCipher::client_to_server(&key),
    );
    let expected: [(&str, usize, u16); 7] = [
        ("E1", 13, 0x1EE),
        ("E2", 4, 0x4FF),
        ("E3", 277, 0x03B),
        ("E4", 4, 0x037),
        ("E5", 19, 0x38B),
        ("E6", 8, 0x38C),
        // The file's comment says size 4; its source (wow_srp's `verify_headers`)
        // asserts 12, which is CMSG_PING's: an opcode and an 8-byte body.
        ("E7", 12, 0x1DC),
    ];
    for (id, size, opcode) in expected {
        let r = row(&rows, id);
        let mut header = r.bytes.clone();
        match r.origin {
            Origin::Server => to_client.apply(&mut header),
            Origin::Client => to_server.apply(&mut header),
        }
        let got_size = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let got_opcode = u16::from_le_bytes([header[2], header[3]]);
        assert_eq!(
            (got_size, got_opcode),
            (size, opcode),
            "{id}: size and opcode"
        );
        assert_eq!(u32::from(got_opcode), r.opcode, "{id}: the listed opcode");
    }
}
