//! Tests of [`crate::config`].

use std::path::Path;

use super::*;

#[test]
fn defaults_are_valid() {
    Config::default().validate().unwrap();
    assert_eq!(Config::from_toml("", "empty").unwrap(), Config::default());
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let err = Config::from_toml("listen = \"127.0.0.1:1\"\nlisen_port = 3\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("x.toml: line 2: unknown field `lisen_port`"),
        "{err}"
    );
}

#[test]
fn bad_value_is_named_with_its_line() {
    let err = Config::from_toml("\n\nrealm_id = \"one\"\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("realm_id"), "{err}");
    let err = Config::from_toml("link_mode = \"rc4\"\n", "x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1") && err.contains("plain"), "{err}");
}

#[test]
fn range_errors_name_the_key() {
    let err = Config::from_toml("max_client_frame = 70000\n", "x.toml").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            key: "max_client_frame",
            ..
        }
    ));
    let err = Config::from_toml("link_mode = \"wotlk-crypt\"\n", "x.toml").unwrap_err();
    assert!(matches!(
        err,
        ConfigError::Invalid {
            key: "auth_db_url",
            ..
        }
    ));
}

#[test]
fn example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sidecar.example.toml");
    let config = Config::from_file(&path).unwrap();
    assert_eq!(config.sidecar_id, "ws-1");
}

#[test]
fn env_and_flags_override_the_file() {
    let dir = std::env::temp_dir().join(format!("tc9-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        "realm_id = 3\nsidecar_id = \"file\"\nupstream = \"10.0.0.1:1\"\n",
    )
    .unwrap();
    let env = vec![
        ("TC9_SIDECAR_ID".to_owned(), "env".to_owned()),
        ("TC9_SESSION_QUEUE".to_owned(), "7".to_owned()),
        ("TC9_LISTEN".to_owned(), "127.0.0.1:1234".to_owned()),
        ("HOME".to_owned(), "/root".to_owned()),
        ("TC9_FUZZ_CASES".to_owned(), "5".to_owned()),
    ];
    let mut flags = toml::Table::new();
    flags.insert("upstream".into(), "127.0.0.1:9".into());
    let config = Config::load(Some(&path), env, flags).unwrap();
    assert_eq!(config.realm_id, 3);
    assert_eq!(config.sidecar_id, "env");
    assert_eq!(config.session_queue, 7);
    assert_eq!(config.listen, "127.0.0.1:1234".parse().unwrap());
    assert_eq!(config.upstream, "127.0.0.1:9");

    let bad = vec![("TC9_REALM_ID".to_owned(), "one".to_owned())];
    let err = Config::load(Some(&path), bad, toml::Table::new()).unwrap_err();
    assert!(err.to_string().contains("realm_id"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn backoff_doubles() {
    let config = Config::default().proxy();
    assert_eq!(config.connect_backoff(1), Duration::from_millis(100));
    assert_eq!(config.connect_backoff(2), Duration::from_millis(200));
}
