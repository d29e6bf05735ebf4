//! The turn-in, guild-query, pass-through, arena and fail-open scenarios, and the
//! corpus's regeneration.

use super::*;

/// Aldric turns in a charter with nine signatures in the database, but the
/// worldserver's cache still counts fewer: its NEED_MORE_SIGNATURES is forwarded.
pub(super) fn turn_in_stale() -> Scenario {
    let world = charter_world(9, &[]);
    let mut s = Script::new();
    s.enter_world(ALDRIC)
        .client(&turn_in(CHARTER))
        .server(&SmsgTurnInPetitionResults {
            result: turn_in_result::NEED_MORE_SIGNATURES,
        });
    Scenario::new("turn_in", world, s)
}

/// The same turn-in after the worldserver reloaded: the guild is created, and every
/// live sidecar hears of it.
pub(super) fn turn_in_success() -> Scenario {
    let world = charter_world(9, &[BRENNA]);
    let mut s = Script::new();
    s.enter_world(ALDRIC)
        .client(&turn_in(CHARTER))
        .server(&SmsgGuildCommandResult {
            command: GuildCommand::Create,
            name: CHARTER_NAME.into(),
            error: GuildCommandError::Success,
        })
        .server(&SmsgTurnInPetitionResults {
            result: turn_in_result::OK,
        });
    Scenario::new("turn_in_success", world, s)
}

/// Dorn queries his guild (answered from the database, then from the answer cache) and
/// an unknown guild (forwarded); a tabard change empties the caches of every sidecar,
/// a sign-on does not.
pub(super) fn guild_query() -> Scenario {
    let world = [cast(), guild(), online(BRENNA, "B")].concat();
    let mut s = Script::new();
    let query = |id| CmsgGuildQuery { guild_id: id };
    s.enter_world(DORN)
        .client(&query(GUILD))
        .client(&query(GUILD))
        .client(&query(77))
        .server(&SmsgGuildEvent {
            event: event::SIGNED_ON,
            params: vec!["Dorn".into()],
            guid: Some(Guid::player(DORN)),
        })
        .server(&SmsgGuildEvent {
            event: event::TABARD_CHANGED,
            params: vec![],
            guid: None,
        })
        .client(&query(GUILD));
    Scenario::new("guild_query", world, s)
}

/// A session with nothing for the resolver: every frame passes through.
pub(super) fn pass_through() -> Scenario {
    let world = [cast(), guild(), the_charter()].concat();
    let mut rng = SampleRng::new(0x7C9_0001);
    let noise = |rng: &mut SampleRng, max: u64| -> Vec<u8> {
        let len = rng.below(max + 1) as usize;
        (0..len).map(|_| rng.next_u64() as u8).collect()
    };
    let big: Vec<u8> = (0..45_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut s = Script::new();
    s.server(&SmsgAuthChallenge {
        one: 1,
        server_seed: Bytes([0x3A, 0x91, 0x0C, 0x5E]),
        random: Bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(37))),
    })
    .client(&CmsgAuthSession {
        build: 12340,
        login_server_id: 0,
        account: "BRENNA".into(),
        login_server_type: 0,
        client_seed: Bytes([0x11, 0x22, 0x33, 0x44]),
        region_id: 0,
        battlegroup_id: 0,
        realm_id: 1,
        dos_response: 3,
        digest: Bytes([0xAB; 20]),
        addons: Rest(noise(&mut rng, 48)),
    })
    // SMSG_AUTH_RESPONSE: AUTH_OK, billing fields, expansion 2.
    .raw(
        Origin::Server,
        0x1EE,
        &[0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    )
    .enter_world(BRENNA)
    // SMSG_UPDATE_OBJECT bigger than 0x7FFF: the 3-byte size header.
    .raw(Origin::Server, 0x0A9, &big)
    .raw(
        Origin::Client,
        Opcode::CMSG_PING.0,
        &[7, 0, 0, 0, 42, 0, 0, 0],
    )
    .raw(Origin::Server, Opcode::SMSG_PONG.0, &[7, 0, 0, 0]);
    // Guild, guild bank and petition opcodes the resolver leaves alone, with
    // well-formed random bodies.
    for (origin, opcode) in [
        (Origin::Client, Opcode::CMSG_NAME_QUERY),
        (Origin::Server, Opcode::SMSG_NAME_QUERY_RESPONSE),
        (Origin::Client, Opcode::CMSG_GUILD_ROSTER),
        (Origin::Server, Opcode::SMSG_GUILD_ROSTER),
        (Origin::Client, Opcode::CMSG_GUILD_INFO),
        (Origin::Server, Opcode::SMSG_GUILD_INFO),
        (Origin::Client, Opcode::CMSG_GUILD_INVITE),
        (Origin::Server, Opcode::SMSG_GUILD_INVITE),
        (Origin::Client, Opcode::CMSG_GUILD_DECLINE),
        (Origin::Server, Opcode::SMSG_GUILD_DECLINE),
        (Origin::Client, Opcode::CMSG_GUILD_MOTD),
        (Origin::Client, Opcode::CMSG_GUILD_SET_PUBLIC_NOTE),
        (Origin::Client, Opcode::MSG_SAVE_GUILD_EMBLEM),
        (Origin::Server, Opcode::MSG_SAVE_GUILD_EMBLEM),
        (Origin::Client, Opcode::MSG_GUILD_PERMISSIONS),
        (Origin::Server, Opcode::MSG_GUILD_PERMISSIONS),
        (Origin::Client, Opcode::MSG_GUILD_EVENT_LOG_QUERY),
        (Origin::Server, Opcode::MSG_GUILD_EVENT_LOG_QUERY),
        (Origin::Client, Opcode::CMSG_GUILD_BANK_QUERY_TAB),
        (Origin::Server, Opcode::SMSG_GUILD_BANK_LIST),
        (Origin::Client, Opcode::CMSG_PETITION_SHOWLIST),
        (Origin::Server, Opcode::SMSG_PETITION_SHOWLIST),
        (Origin::Client, Opcode::CMSG_PETITION_BUY),
        (Origin::Client, Opcode::MSG_PETITION_RENAME),
        (Origin::Server, Opcode::MSG_PETITION_RENAME),
        (Origin::Server, Opcode::SMSG_PETITION_SIGN_RESULTS),
        (Origin::Server, Opcode::SMSG_PETITION_QUERY_RESPONSE),
        (Origin::Server, Opcode::SMSG_OFFER_PETITION_ERROR),
        (Origin::Client, Opcode::UMSG_DELETE_GUILD_CHARTER),
    ] {
        s.sampled(origin, opcode, &mut rng);
    }
    // Opcodes the sidecar has no name for, and ToCloud9's redirect pair.
    for (origin, opcode) in [
        (Origin::Client, 0x095), // CMSG_MESSAGECHAT
        (Origin::Server, 0x096), // SMSG_MESSAGECHAT
        (Origin::Client, 0x0DA), // CMSG_SET_ACTIVE_MOVER
        (Origin::Server, 0x13B),
        (Origin::Client, 0x4F0),
        (Origin::Server, 0x2A2),
        (Origin::Client, Opcode::TC9_CMSG_PREPARE_FOR_REDIRECT.0),
        (Origin::Server, Opcode::TC9_SMSG_READY_FOR_REDIRECT.0),
    ] {
        let body = noise(&mut rng, 80);
        s.raw(origin, opcode, &body);
    }
    s.raw(Origin::Client, 0x4F1, &[]).leave_world();
    Scenario::new("pass_through", world, s)
}

/// Cedric signs, queries, shows and declines a 3v3 arena charter whose owner plays
/// behind B: arena charters are the worldserver's, so every frame goes on to it.
pub(super) fn arena_charter() -> Scenario {
    let world = [
        cast(),
        petition(ARENA_CHARTER, ARENA_CHARTER, FENWICK, "Three Blind Mice", 3),
        signers(ARENA_CHARTER, 101, 1),
        online(FENWICK, "B"),
    ]
    .concat();
    let mut s = Script::new();
    s.enter_world(CEDRIC)
        .sign(ARENA_CHARTER)
        .server(&SmsgPetitionSignResults {
            petition: Guid::item(ARENA_CHARTER),
            signer: Guid::player(CEDRIC),
            result: 0,
        })
        .client(&CmsgPetitionQuery {
            petition_id: ARENA_CHARTER,
            petition: Guid::item(ARENA_CHARTER),
        })
        .client(&CmsgPetitionShowSignatures {
            petition: Guid::item(ARENA_CHARTER),
        })
        .server(&shown(ARENA_CHARTER, CEDRIC, ARENA_CHARTER, &[101]))
        .client(&MsgPetitionDeclineClient {
            petition: Guid::item(ARENA_CHARTER),
        });
    Scenario::new("arena_charter", world, s)
}

/// Frames the resolver cannot decide on go on as they arrived: a signature before any
/// character is in the world, and truncated petition bodies from either side.
pub(super) fn fail_open() -> Scenario {
    let world = charter_world(2, &[ALDRIC]);
    let mut s = Script::new();
    s.sign(CHARTER)
        .enter_world(CEDRIC)
        .raw(
            Origin::Client,
            Opcode::CMSG_PETITION_SIGN.0,
            &[0xF4, 0x01, 0],
        )
        .raw(
            Origin::Client,
            Opcode::MSG_PETITION_DECLINE.0,
            &[0xF4, 0x01],
        )
        .raw(
            Origin::Server,
            Opcode::SMSG_PETITION_SHOW_SIGNATURES.0,
            &[0xF4, 0x01, 0, 0, 0, 0, 0, 0x40, 1],
        );
    Scenario::new("fail_open", world, s)
}

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        cross_server_offer(),
        sign(),
        already_signed(),
        already_in_guild(),
        sign_refused(),
        decline(),
        query(),
        show_signatures(),
        turn_in_stale(),
        turn_in_success(),
        guild_query(),
        pass_through(),
        arena_charter(),
        fail_open(),
    ]
}

/// Rewrites the corpus: each scenario's capture, world and (from a replay) expected
/// transcript.
#[test]
#[ignore = "rewrites tests/replay/; run with TC9_REGENERATE_REPLAY=1"]
pub(super) fn regenerate() {
    if std::env::var(REGENERATE_ENV).as_deref() != Ok("1") {
        eprintln!("{REGENERATE_ENV} is not 1: the corpus was left alone");
        return;
    }
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("tests/replay/ can be created");
    for (n, scenario) in scenarios().into_iter().enumerate() {
        let name = scenario.name;
        let capture = scenario.script.capture(name, n as u64 + 1);
        let capture_path = dir.join(format!("{name}.tc9cap"));
        std::fs::write(&capture_path, capture.to_bytes()).expect("the capture is written");
        let world_text = format!(
            "# World of the `{name}` replay scenario, generated by tests/replay/.\n\
             # The replaying sidecar is \"replay\"; [[online]] puts characters behind others.\n\n{}",
            scenario.world
        );
        let world_path = replay::world_beside(&capture_path);
        std::fs::write(&world_path, world_text).expect("the world is written");
        let world = World::from_file(&world_path).unwrap_or_else(|e| panic!("{e}"));
        let read_back = Capture::read(&capture_path).expect("the capture reads back");
        assert_eq!(read_back, capture, "{name}: the capture round-trips");
        let transcript = run_replay(&read_back, &world);
        std::fs::write(dir.join(format!("{name}.expected")), transcript)
            .expect("the transcript is written");
        eprintln!("wrote {name}");
    }
}
