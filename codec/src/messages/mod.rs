//! One type per message body, with a nom reader, a writer and a field listing.
//!
//! [`ClientMessage`] and [`ServerMessage`] pick the type from the opcode. `MSG_*`
//! opcodes whose body differs by direction have a `...Client` and a `...Server` type.
//! Readers ignore trailing bytes they do not model; a packet the sidecar does not
//! rewrite is forwarded as its original bytes, never re-encoded.

use std::fmt;

use tc9_opcodes::Opcode;

use crate::wire::{Fields, Wire, WireErrorKind};

pub mod codes;
pub mod guild;
pub mod guild_bank;
pub mod guild_ranks;
pub mod petition;
pub mod roster;
pub mod session;

pub use codes::{GuildCommand, GuildCommandError};
pub use guild::*;
pub use guild_bank::*;
pub use guild_ranks::*;
pub use petition::*;
pub use roster::*;
pub use session::*;

/// A message body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {opcode} body ({len} bytes): {kind} in the field at byte {offset}")]
pub struct DecodeError {
    /// The opcode whose body failed.
    pub opcode: Opcode,
    /// What went wrong.
    pub kind: WireErrorKind,
    /// Offset into the body of the failing field.
    pub offset: usize,
    /// Length of the body.
    pub len: usize,
}

/// A message body type bound to its opcode.
pub trait Message: Wire {
    /// The opcode this body travels under.
    const OPCODE: Opcode;

    /// Reads a body, ignoring trailing bytes.
    #[inline]
    fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        match Self::read(body) {
            Ok((_, message)) => Ok(message),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(DecodeError {
                opcode: Self::OPCODE,
                kind: e.kind,
                offset: body.len().saturating_sub(e.remaining),
                len: body.len(),
            }),
            Err(nom::Err::Incomplete(_)) => Err(DecodeError {
                opcode: Self::OPCODE,
                kind: WireErrorKind::Truncated,
                offset: body.len(),
                len: body.len(),
            }),
        }
    }

    /// The body's bytes.
    fn to_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire_len());
        self.write(&mut out);
        out
    }

    /// The body's fields, `name = value`, in wire order.
    fn fields(&self) -> Fields {
        let mut fields = Fields::default();
        self.describe("", &mut fields);
        fields
    }
}

/// Defines a message body: a [`wire_struct!`](crate::wire_struct) bound to an opcode.
macro_rules! message {
    (
        $(#[$meta:meta])*
        $opcode:ident => $vis:vis struct $name:ident { $($body:tt)* }
    ) => {
        $crate::wire_struct! {
            $(#[$meta])*
            $vis struct $name { $($body)* }
        }

        impl $crate::messages::Message for $name {
            const OPCODE: tc9_opcodes::Opcode = tc9_opcodes::Opcode::$opcode;
        }
    };
}
pub(crate) use message;

/// Binds a hand-written [`Wire`] type to its opcode.
macro_rules! bind_opcode {
    ($name:ident => $opcode:ident) => {
        impl $crate::messages::Message for $name {
            const OPCODE: tc9_opcodes::Opcode = tc9_opcodes::Opcode::$opcode;
        }
    };
}
pub(crate) use bind_opcode;

macro_rules! message_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$meta])*
        ///
        /// Messages are transient values, decoded and dropped per frame, so the size of
        /// the largest (a charter purchase) is not worth a box per message.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(missing_docs, clippy::large_enum_variant)]
        pub enum $name {
            $($variant($variant),)*
        }

        impl $name {
            /// Every opcode this direction models, in declaration order.
            pub const OPCODES: &'static [Opcode] = &[$(<$variant as Message>::OPCODE,)*];

            /// Decodes `body` by `opcode`; `None` when the opcode is not modelled.
            pub fn decode(opcode: Opcode, body: &[u8]) -> Option<Result<Self, DecodeError>> {
                $(
                    if opcode == <$variant as Message>::OPCODE {
                        return Some($variant::decode(body).map($name::$variant));
                    }
                )*
                None
            }

            /// The opcode of this message.
            pub fn opcode(&self) -> Opcode {
                match self {
                    $($name::$variant(_) => <$variant as Message>::OPCODE,)*
                }
            }

            /// The body's bytes.
            pub fn to_body(&self) -> Vec<u8> {
                match self {
                    $($name::$variant(m) => m.to_body(),)*
                }
            }

            /// How many bytes the body takes.
            pub fn wire_len(&self) -> usize {
                match self {
                    $($name::$variant(m) => m.wire_len(),)*
                }
            }

            /// The body's fields.
            pub fn fields(&self) -> Fields {
                match self {
                    $($name::$variant(m) => m.fields(),)*
                }
            }

            /// A random well-formed message of `opcode`, if this direction models it.
            #[cfg(any(test, feature = "sample"))]
            pub fn sample(opcode: Opcode, rng: &mut crate::sample::SampleRng) -> Option<Self> {
                $(
                    if opcode == <$variant as Message>::OPCODE {
                        return Some($name::$variant(crate::sample::Sample::sample(rng)));
                    }
                )*
                None
            }
        }

        $(
            impl From<$variant> for $name {
                fn from(m: $variant) -> Self {
                    $name::$variant(m)
                }
            }
        )*

        impl fmt::Display for $name {
            /// The opcode name, then one `field = value` per line.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                writeln!(f, "opcode = {} (0x{:03X})", self.opcode(), self.opcode().0)?;
                write!(f, "{}", self.fields())
            }
        }
    };
}

message_enum! {
    /// A modelled client-to-server message.
    ClientMessage {
        CmsgPlayerLogin, CmsgLogoutRequest, CmsgNameQuery, CmsgAuthSession,
        CmsgGuildQuery, CmsgGuildCreate, CmsgGuildInvite, CmsgGuildAccept, CmsgGuildDecline,
        CmsgGuildInfo, CmsgGuildRoster, CmsgGuildPromote, CmsgGuildDemote, CmsgGuildLeave,
        CmsgGuildRemove, CmsgGuildDisband, CmsgGuildLeader, CmsgGuildMotd,
        MsgSaveGuildEmblemClient, CmsgGuildRank, CmsgGuildAddRank, CmsgGuildDelRank,
        CmsgGuildSetPublicNote, CmsgGuildSetOfficerNote, CmsgGuildInfoText,
        MsgGuildPermissionsClient, MsgGuildEventLogQueryClient,
        CmsgGuildBankerActivate, CmsgGuildBankQueryTab, CmsgGuildBankSwapItems,
        CmsgGuildBankBuyTab, CmsgGuildBankUpdateTab, CmsgGuildBankDepositMoney,
        CmsgGuildBankWithdrawMoney, MsgGuildBankLogQueryClient, MsgGuildBankMoneyWithdrawnClient,
        MsgQueryGuildBankTextClient, CmsgSetGuildBankText,
        CmsgPetitionShowlist, CmsgPetitionBuy, CmsgPetitionShowSignatures, CmsgPetitionSign,
        MsgPetitionDeclineClient, CmsgOfferPetition, CmsgTurnInPetition, CmsgPetitionQuery,
        UmsgDeleteGuildCharter, MsgPetitionRename,
    }
}

message_enum! {
    /// A modelled server-to-client message.
    ServerMessage {
        SmsgLogoutComplete, SmsgNameQueryResponse, SmsgAuthChallenge, SmsgLoginVerifyWorld,
        SmsgGuildQueryResponse, SmsgGuildInvite, SmsgGuildDecline, SmsgGuildInfo, SmsgGuildRoster,
        SmsgGuildEvent, SmsgGuildCommandResult, MsgSaveGuildEmblemServer,
        MsgGuildPermissionsServer, MsgGuildEventLogQueryServer,
        SmsgGuildBankList, MsgGuildBankLogQueryServer, MsgGuildBankMoneyWithdrawnServer,
        MsgQueryGuildBankTextServer,
        SmsgPetitionShowlist, SmsgPetitionShowSignatures, SmsgPetitionSignResults,
        MsgPetitionDeclineServer, SmsgTurnInPetitionResults, SmsgPetitionQueryResponse,
        UmsgDeleteGuildCharter, MsgPetitionRename, SmsgOfferPetitionError,
        SmsgArenaTeamCommandResult,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tc9_opcodes::{Direction, Group, TABLE};

    /// Every guild, guild bank and petition opcode of the table is modelled in each
    /// direction it travels.
    #[test]
    fn every_guild_and_petition_opcode_is_modelled() {
        for row in TABLE {
            if !matches!(row.group, Group::Guild | Group::GuildBank | Group::Petition) {
                continue;
            }
            if row.direction.allows_client_to_server() {
                assert!(
                    ClientMessage::OPCODES.contains(&row.opcode),
                    "{} c2s",
                    row.name
                );
            }
            if row.direction.allows_server_to_client() {
                assert!(
                    ServerMessage::OPCODES.contains(&row.opcode),
                    "{} s2c",
                    row.name
                );
            }
        }
    }

    #[test]
    fn modelled_opcodes_travel_their_way() {
        for op in ClientMessage::OPCODES {
            assert!(
                op.direction()
                    .is_some_and(Direction::allows_client_to_server),
                "{op}"
            );
        }
        for op in ServerMessage::OPCODES {
            assert!(
                op.direction()
                    .is_some_and(Direction::allows_server_to_client),
                "{op}"
            );
        }
    }

    #[test]
    fn unknown_opcode_is_not_decoded() {
        assert!(ClientMessage::decode(Opcode(0x1234), &[]).is_none());
        assert!(ServerMessage::decode(Opcode::CMSG_PETITION_SIGN, &[]).is_none());
    }

    #[test]
    fn truncated_body_names_the_opcode_and_offset() {
        let err = ClientMessage::decode(Opcode::CMSG_PETITION_SIGN, &[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap()
            .unwrap_err();
        assert_eq!(err.opcode, Opcode::CMSG_PETITION_SIGN);
        assert_eq!(err.kind, WireErrorKind::Truncated);
        assert_eq!(err.offset, 8);
        assert_eq!(
            err.to_string(),
            "malformed CMSG_PETITION_SIGN body (8 bytes): truncated body in the field at byte 8"
        );
    }
}
