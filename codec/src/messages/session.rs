//! Session messages the proxy reads to learn who is behind a connection.

use super::{bind_opcode, message};
use crate::wire::{field_name, Bytes, Fields, Guid, Rest, WResult, Wire, WireError};

message! {
    /// The client (replayed by the gateway) authenticates. Header encryption starts
    /// after this packet in stock AzerothCore.
    CMSG_AUTH_SESSION => pub struct CmsgAuthSession {
        /// Client build, 12340.
        pub build: u32,
        /// Login server id.
        pub login_server_id: u32,
        /// Account name, upper case.
        pub account: String,
        /// Login server type.
        pub login_server_type: u32,
        /// Client seed.
        pub client_seed: Bytes<4>,
        /// Region id.
        pub region_id: u32,
        /// Battlegroup id.
        pub battlegroup_id: u32,
        /// Realm id.
        pub realm_id: u32,
        /// DOS response.
        pub dos_response: u64,
        /// SHA-1 proof of the session key.
        pub digest: Bytes<20>,
        /// Compressed addon list, as sent.
        pub addons: Rest,
    }
}

message! {
    /// The worldserver's authentication challenge.
    SMSG_AUTH_CHALLENGE => pub struct SmsgAuthChallenge {
        /// Always 1.
        pub one: u32,
        /// Server seed.
        pub server_seed: Bytes<4>,
        /// Random seeds.
        pub random: Bytes<32>,
    }
}

message! {
    /// The gateway logs a character in.
    CMSG_PLAYER_LOGIN => pub struct CmsgPlayerLogin {
        /// The character.
        pub guid: Guid,
    }
}

message! {
    /// The character is in the world.
    SMSG_LOGIN_VERIFY_WORLD => pub struct SmsgLoginVerifyWorld {
        /// Map id.
        pub map: u32,
        /// Position x.
        pub x: f32,
        /// Position y.
        pub y: f32,
        /// Position z.
        pub z: f32,
        /// Facing.
        pub orientation: f32,
    }
}

message! {
    /// The client asks to log out.
    CMSG_LOGOUT_REQUEST => pub struct CmsgLogoutRequest {}
}

message! {
    /// The character has left the world.
    SMSG_LOGOUT_COMPLETE => pub struct SmsgLogoutComplete {}
}

message! {
    /// The client asks for a player's name.
    CMSG_NAME_QUERY => pub struct CmsgNameQuery {
        /// The player.
        pub guid: Guid,
    }
}

/// A guid packed as a byte mask followed by its non-zero bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PackedGuid(pub Guid);

impl Wire for PackedGuid {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (mut input, mask) = u8::read(input)?;
        let mut value = 0u64;
        for bit in 0..8 {
            if mask & (1 << bit) != 0 {
                let (rest, byte) = u8::read(input)?;
                value |= u64::from(byte) << (8 * bit);
                input = rest;
            }
        }
        Ok((input, PackedGuid(Guid(value))))
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        let bytes = self.0 .0.to_le_bytes();
        let mask = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .fold(0u8, |m, (i, _)| m | 1 << i);
        out.push(mask);
        out.extend(bytes.iter().filter(|b| **b != 0));
    }

    #[inline]
    fn wire_len(&self) -> usize {
        1 + self.0 .0.to_le_bytes().iter().filter(|b| **b != 0).count()
    }

    fn describe(&self, name: &str, fields: &mut Fields) {
        self.0.describe(name, fields);
    }
}

crate::wire_struct! {
    /// A known player's name and looks.
    pub struct NameInfo {
        /// Character name.
        pub name: String,
        /// Realm name, empty for the player's own realm.
        pub realm: String,
        /// Race.
        pub race: u8,
        /// Gender.
        pub gender: u8,
        /// Class.
        pub class: u8,
    }
}

/// The answer to a name query. An unknown player carries no name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SmsgNameQueryResponse {
    /// The player.
    pub guid: PackedGuid,
    /// Name and looks, `None` when the server does not know the player.
    pub info: Option<NameInfo>,
    /// Declined name forms (Russian clients), when sent.
    pub declined_names: Option<[String; 5]>,
}

impl Wire for SmsgNameQueryResponse {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, guid) = PackedGuid::read(input)?;
        let (input, unknown) = u8::read(input)?;
        match unknown {
            1 => Ok((
                input,
                SmsgNameQueryResponse {
                    guid,
                    info: None,
                    declined_names: None,
                },
            )),
            0 => {
                let (input, info) = NameInfo::read(input)?;
                let (input, declined) = u8::read(input)?;
                let (input, declined_names) = if declined != 0 {
                    let (input, names) = <[String; 5]>::read(input)?;
                    (input, Some(names))
                } else {
                    (input, None)
                };
                Ok((
                    input,
                    SmsgNameQueryResponse {
                        guid,
                        info: Some(info),
                        declined_names,
                    },
                ))
            }
            _ => WireError::invalid(input, "name-unknown flag"),
        }
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        self.guid.write(out);
        match &self.info {
            None => out.push(1),
            Some(info) => {
                out.push(0);
                info.write(out);
                match &self.declined_names {
                    None => out.push(0),
                    Some(names) => {
                        out.push(1);
                        names.write(out);
                    }
                }
            }
        }
    }

    #[inline]
    fn wire_len(&self) -> usize {
        let known = match &self.info {
            None => 0,
            Some(info) => {
                info.wire_len() + 1 + self.declined_names.as_ref().map_or(0, Wire::wire_len)
            }
        };
        self.guid.wire_len() + 1 + known
    }

    fn describe(&self, prefix: &str, fields: &mut Fields) {
        self.guid.describe(&field_name(prefix, "guid"), fields);
        match &self.info {
            None => fields.push(&field_name(prefix, "known"), false),
            Some(info) => info.describe(prefix, fields),
        }
        if let Some(names) = &self.declined_names {
            names.describe(&field_name(prefix, "declined_names"), fields);
        }
    }
}
bind_opcode!(SmsgNameQueryResponse => SMSG_NAME_QUERY_RESPONSE);

/// Random values of the hand-written types, consistent with their conditions.
#[cfg(any(test, feature = "sample"))]
mod sample {
    use super::*;
    use crate::sample::{Sample, SampleRng};
    use crate::wire::Guid;

    impl Sample for PackedGuid {
        fn sample(rng: &mut SampleRng) -> Self {
            PackedGuid(Guid::sample(rng))
        }
    }

    impl Sample for SmsgNameQueryResponse {
        fn sample(rng: &mut SampleRng) -> Self {
            let info: Option<NameInfo> = Option::sample(rng);
            let declined_names = if info.is_some() {
                Option::sample(rng)
            } else {
                None
            };
            SmsgNameQueryResponse {
                guid: PackedGuid::sample(rng),
                info,
                declined_names,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    #[test]
    fn packed_guid_skips_zero_bytes() {
        let mut out = Vec::new();
        PackedGuid(Guid(0x0000_0100_0000_0042)).write(&mut out);
        assert_eq!(out, [0b0010_0001, 0x42, 0x01]);
        assert_eq!(
            PackedGuid::read(&out).unwrap().1,
            PackedGuid(Guid(0x0000_0100_0000_0042))
        );
    }

    #[test]
    fn auth_session_account_name() {
        let mut body = Vec::new();
        12340u32.write(&mut body);
        0u32.write(&mut body);
        "PLAYER".to_owned().write(&mut body);
        body.extend_from_slice(&[0; 4 + 4 + 4 + 4 + 4 + 8 + 20]);
        body.extend_from_slice(&[9, 9, 9]);
        let m = CmsgAuthSession::decode(&body).unwrap();
        assert_eq!(m.build, 12340);
        assert_eq!(m.account, "PLAYER");
        assert_eq!(m.addons, Rest(vec![9, 9, 9]));
        assert_eq!(m.to_body(), body);
    }
}
