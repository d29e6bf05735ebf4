//! Turn-ins recorded through a model worldserver.

use super::*;

/// The world of the turn-ins recorded through the model: four owners, each with a
/// charter (9 signatures, except Dagny's 5); Bera is in a guild; a guild already has
/// Corin's charter's name.
pub(super) const MODEL_WORLD: &str = r#"
[[character]]
guid = 1
account = 1
name = "Aldric"
race = 1

[[character]]
guid = 2
account = 2
name = "Bera"
race = 1
guild = 8

[[character]]
guid = 3
account = 3
name = "Corin"
race = 3

[[character]]
guid = 4
account = 4
name = "Dagny"
race = 7

[[guild]]
id = 8
name = "Old Guard"
ranks = ["Guild Master", "Officer", "Veteran", "Member", "Initiate"]

[[guild]]
id = 9
name = "Taken Name"
ranks = ["Guild Master", "Officer", "Veteran", "Member", "Initiate"]

[[petition]]
guid = 700
id = 70
owner = 1
name = "Model Guild"

[[petition]]
guid = 701
id = 71
owner = 2
name = "Bera Guild"

[[petition]]
guid = 702
id = 72
owner = 3
name = "Taken Name"

[[petition]]
guid = 703
id = 73
owner = 4
name = "Few Friends"
"#;

/// The turn-ins recorded through the model: scenario, owner, charter item, and how
/// many frames the owner hears.
pub(super) const MODEL_TURN_INS: [(&str, u32, u32, usize); 4] = [
    ("turn_in_model_created", 1, 700, 2),
    ("turn_in_model_in_guild", 2, 701, 1),
    ("turn_in_model_name_taken", 3, 702, 1),
    ("turn_in_model_few_signatures", 4, 703, 1),
];

/// The model world with its signatures: players 10..=18 on the three full charters,
/// 20..=24 on Dagny's.
pub(super) fn model_world() -> String {
    let mut world = MODEL_WORLD.to_owned();
    for (petition, players) in [
        (700, 10..=18),
        (701, 10..=18),
        (702, 10..=18),
        (703, 20..=24),
    ] {
        for player in players {
            world.push_str(&format!(
                "\n[[signature]]\npetition = {petition}\nplayer = {player}\naccount = {player}\n"
            ));
        }
    }
    world
}

/// Records the turn-ins of [`MODEL_TURN_INS`] through a sidecar (capturing) in front
/// of a model of the pinned worldserver with `mod-tc9-sidecar`, then writes each
/// capture, its world and its transcript to the corpus.
#[test]
#[ignore = "rewrites tests/replay/turn_in_model_*; run with TC9_REGENERATE_REPLAY=1"]
pub(super) fn record_turn_ins_through_the_model() {
    use tc9_codec::messages::{CmsgPlayerLogin, CmsgTurnInPetition};
    use tc9_sidecar::tools::worldserver::{ModelConfig, ModelWorldserver};
    use tc9_testkit::Gateway;

    if std::env::var(REGENERATE_ENV).as_deref() != Ok("1") {
        eprintln!("{REGENERATE_ENV} is not 1: the corpus was left alone");
        return;
    }
    let world_text = model_world();
    let world: World = toml::from_str(&world_text).expect("the model world parses");
    let captures = std::env::temp_dir().join(format!("tc9-model-captures-{}", std::process::id()));
    std::fs::create_dir_all(&captures).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = MemoryStore::from_world(&world);
        let realm = MemoryRealm::new();
        let model = ModelWorldserver::start(
            store.clone(),
            ModelConfig {
                module: true,
                ..ModelConfig::default()
            },
        )
        .await
        .unwrap();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: model.addr().to_string(),
            sidecar_id: "model".into(),
            capture_dir: captures.display().to_string(),
            worldserver_module: true,
            shutdown_grace_secs: 0,
            ..Config::default()
        };
        let sidecar = Sidecar::in_memory(&config, &store, &realm).await.unwrap();
        for (name, owner, item, heard) in MODEL_TURN_INS {
            let mut gateway = Gateway::connect(sidecar.addr(), name).await.unwrap();
            gateway
                .send(&CmsgPlayerLogin {
                    guid: Guid::player(owner),
                })
                .await
                .unwrap();
            gateway.recv(Duration::from_secs(5)).await.unwrap().unwrap();
            gateway
                .send(&CmsgTurnInPetition {
                    petition: Guid::item(item),
                    arena_emblem: None,
                })
                .await
                .unwrap();
            for _ in 0..heard {
                gateway.recv(Duration::from_secs(5)).await.unwrap().unwrap();
            }
            drop(gateway);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        sidecar.stop().await.unwrap();
    });
    let mut recorded: Vec<PathBuf> = std::fs::read_dir(&captures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // One file per session, named sidecar-start-session: in session order.
    recorded.sort_by_key(|p| {
        p.file_stem()
            .and_then(|s| s.to_str()?.rsplit('-').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    });
    assert_eq!(recorded.len(), MODEL_TURN_INS.len(), "{recorded:?}");
    let dir = corpus_dir();
    for ((name, ..), path) in MODEL_TURN_INS.iter().zip(recorded) {
        let capture = Capture::read(&path).expect("a recorded capture");
        let capture_path = dir.join(format!("{name}.tc9cap"));
        std::fs::copy(&path, &capture_path).unwrap();
        let world_path = replay::world_beside(&capture_path);
        std::fs::write(
            &world_path,
            format!(
                "# World of the `{name}` replay scenario, recorded through a model of the pinned\n\
                 # worldserver with mod-tc9-sidecar by tests/replay/.\n{world_text}"
            ),
        )
        .unwrap();
        let transcript = run_replay(&capture, &World::from_file(&world_path).unwrap());
        std::fs::write(dir.join(format!("{name}.expected")), transcript).unwrap();
        eprintln!("wrote {name}");
    }
    std::fs::remove_dir_all(&captures).unwrap();
}
