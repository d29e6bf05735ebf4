//! Session keys, header crypto and the packets the scripted peers exchange.

use anyhow::Result;
use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::messages::{CmsgPlayerLogin, Message, SmsgAuthChallenge, SmsgLoginVerifyWorld};
use tc9_codec::wire::{Bytes, Guid};
use tc9_codec::Opcode;
use tc9_sidecar::config::{Config, LinkMode};
use wow_srp::normalized_string::NormalizedString;
use wow_srp::wrath_header::{ClientCrypto, ProofSeed, ServerCrypto};

use super::Packet;
use crate::MariaDb;

/// `SMSG_PONG`.
const SMSG_PONG: u16 = 0x1DD;

/// The account whose session key [`keyed_account`] stores.
pub const CRYPT_ACCOUNT: &str = "TESTPLAYER";

/// `SMSG_AUTH_RESPONSE` with `AUTH_OK` (result, billing time, flags, rested, expansion).
pub const AUTH_OK_BODY: [u8; 11] = [0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// A matching `wow_srp` client and server for `session_key`, built the way a real
/// login builds them.
pub fn crypto_pair(
    account: &str,
    session_key: [u8; SESSION_KEY_LEN],
) -> (ClientCrypto, ServerCrypto) {
    let user = NormalizedString::new(account).expect("a valid account name");
    let client_seed = ProofSeed::new();
    let server_seed = ProofSeed::new();
    let client_seed_value = client_seed.seed();
    let (proof, client) =
        client_seed.into_client_header_crypto(&user, session_key, server_seed.seed());
    let server = server_seed
        .into_server_header_crypto(&user, session_key, proof, client_seed_value)
        .expect("the proof of the same session key matches");
    (client, server)
}

/// A session key that differs by `seed`.
pub fn session_key(seed: u8) -> [u8; SESSION_KEY_LEN] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(73).wrapping_add(seed))
}

/// `SMSG_AUTH_CHALLENGE`.
pub fn auth_challenge() -> Packet {
    let challenge = SmsgAuthChallenge {
        one: 1,
        server_seed: Bytes([0xDE, 0xAD, 0xBE, 0xEF]),
        random: Bytes(std::array::from_fn(|i| i as u8)),
    };
    Packet::new(Opcode::SMSG_AUTH_CHALLENGE.0, challenge.to_body())
}

/// `CMSG_AUTH_SESSION` for `account`.
pub fn auth_session(account: &str) -> Packet {
    let auth = crate::frames::auth_session(account);
    Packet::new(Opcode::CMSG_AUTH_SESSION.0, auth.to_body())
}

/// `CMSG_PING` number `seq`.
pub fn ping(seq: u32) -> Packet {
    let mut body = seq.to_le_bytes().to_vec();
    body.extend_from_slice(&25u32.to_le_bytes());
    Packet::new(Opcode::CMSG_PING.0, body)
}

/// `SMSG_PONG` number `seq`.
pub fn pong(seq: u32) -> Packet {
    Packet::new(SMSG_PONG, seq.to_le_bytes())
}

/// `CMSG_PLAYER_LOGIN` of character `guid`.
pub fn player_login(guid: u32) -> Packet {
    let login = CmsgPlayerLogin {
        guid: Guid::player(guid),
    };
    Packet::new(Opcode::CMSG_PLAYER_LOGIN.0, login.to_body())
}

/// `SMSG_LOGIN_VERIFY_WORLD`.
pub fn login_verify_world() -> Packet {
    let verify = SmsgLoginVerifyWorld {
        map: 571,
        x: 5804.1,
        y: 624.7,
        z: 647.8,
        orientation: 1.6,
    };
    Packet::new(Opcode::SMSG_LOGIN_VERIFY_WORLD.0, verify.to_body())
}

/// `CMSG_PETITION_SIGN` of charter item `petition`.
pub fn petition_sign(petition: u32) -> Packet {
    let mut body = Guid::item(petition).0.to_le_bytes().to_vec();
    body.push(1);
    Packet::new(Opcode::CMSG_PETITION_SIGN.0, body)
}

/// `CMSG_PETITION_SHOW_SIGNATURES` of charter item `petition`.
pub fn petition_show_signatures(petition: u32) -> Packet {
    Packet::new(
        Opcode::CMSG_PETITION_SHOW_SIGNATURES.0,
        Guid::item(petition).0.to_le_bytes(),
    )
}

/// A database named after `name` with `account`'s session key (from `seed`), and
/// the two ends' header crypto for that key.
pub async fn keyed_account(
    name: &str,
    account: &str,
    seed: u8,
) -> Result<(MariaDb, ClientCrypto, ServerCrypto)> {
    let db = MariaDb::create(name).await?;
    let key = session_key(seed);
    db.account(1, account, Some(&key)).await?;
    let (client_crypto, server_crypto) = crypto_pair(account, key);
    Ok((db, client_crypto, server_crypto))
}

/// A `wotlk-crypt` sidecar in front of `upstream`, its keys in `db`.
pub fn crypt_config(db: &MariaDb, upstream: String) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("an address"),
        shutdown_grace_secs: 2,
        upstream,
        link_mode: LinkMode::WotlkCrypt,
        auth_db_url: db.url(),
        characters_db_url: db.url(),
        ..Config::default()
    }
}
