//! Petition (charter) messages, laid out as AzerothCore's `PetitionsHandler.cpp` reads
//! and writes them.

pub use super::codes::{sign_result, turn_in_result};
use super::{bind_opcode, message};
use crate::wire::{field_name, Fields, Guid, Rest, WResult, Wire};

/// `petition.type` of a guild charter; also the most signatures it can hold.
pub const GUILD_CHARTER_TYPE: u8 = 9;

message! {
    /// The client opens a charter vendor's list.
    CMSG_PETITION_SHOWLIST => pub struct CmsgPetitionShowlist {
        /// The vendor.
        pub npc: Guid,
    }
}

crate::wire_struct! {
    /// One charter a vendor sells.
    pub struct PetitionShowlistEntry {
        /// 1 for a guild charter, arena slot + 1 for arena charters.
        pub index: u32,
        /// The charter's item entry.
        pub charter_entry: u32,
        /// The charter's display id.
        pub display_id: u32,
        /// Price in copper.
        pub cost: u32,
        /// Unknown, 0 for guild charters.
        pub unk: u32,
        /// Signatures required to turn it in.
        pub required_signatures: u32,
    }
}

message! {
    /// A charter vendor's list.
    SMSG_PETITION_SHOWLIST => pub struct SmsgPetitionShowlist {
        /// The vendor.
        pub npc: Guid,
        /// The charters on sale.
        pub entries: Vec<PetitionShowlistEntry> = counted_u8,
    }
}

message! {
    /// The client buys a charter.
    CMSG_PETITION_BUY => pub struct CmsgPetitionBuy {
        /// The vendor.
        pub npc: Guid,
        /// Always 0.
        pub unk1: u32,
        /// Always 0.
        pub unk2: u64,
        /// The guild or arena team name.
        pub name: String,
        /// An unused text.
        pub unk_text: String,
        /// Seven unused values.
        pub unk3: [u32; 7],
        /// An unused value.
        pub unk4: u16,
        /// Three unused values.
        pub unk5: [u32; 3],
        /// Ten unused strings.
        pub unk_strings: [String; 10],
        /// 1 for a guild charter, arena slot + 1 for arena charters.
        pub index: u32,
        /// Always 0.
        pub unk6: u32,
    }
}

message! {
    /// The client asks for a charter's signatures.
    CMSG_PETITION_SHOW_SIGNATURES => pub struct CmsgPetitionShowSignatures {
        /// The charter item.
        pub petition: Guid,
    }
}

crate::wire_struct! {
    /// One signature of a charter.
    pub struct PetitionSignature {
        /// The signing player.
        pub player: Guid,
        /// Always 0.
        pub unk: u32,
    }
}

message! {
    /// A charter with its signatures; sent on request and to an offered player.
    ///
    /// AzerothCore's show-signatures handler writes the requester in `owner`; its
    /// offer path writes the offerer.
    SMSG_PETITION_SHOW_SIGNATURES => pub struct SmsgPetitionShowSignatures {
        /// The charter item.
        pub petition: Guid,
        /// The owner slot (see above).
        pub owner: Guid,
        /// `petition.petition_id` (the charter's low guid in older cores).
        pub petition_id: u32,
        /// The signatures.
        pub signatures: Vec<PetitionSignature> = counted_u8,
    }
}

message! {
    /// The client signs a charter.
    CMSG_PETITION_SIGN => pub struct CmsgPetitionSign {
        /// The charter item.
        pub petition: Guid,
        /// Unknown, usually 1.
        pub unk: u8,
    }
}

message! {
    /// The outcome of a signature, sent to the signer and to the owner.
    SMSG_PETITION_SIGN_RESULTS => pub struct SmsgPetitionSignResults {
        /// The charter item.
        pub petition: Guid,
        /// The signer.
        pub signer: Guid,
        /// A [`sign_result`] code.
        pub result: u32,
    }
}

message! {
    /// The client declines an offered charter.
    MSG_PETITION_DECLINE => pub struct MsgPetitionDeclineClient {
        /// The charter item.
        pub petition: Guid,
    }
}

message! {
    /// The owner is told who declined their charter.
    MSG_PETITION_DECLINE => pub struct MsgPetitionDeclineServer {
        /// The player who declined.
        pub decliner: Guid,
    }
}

message! {
    /// The owner offers a charter to a player.
    CMSG_OFFER_PETITION => pub struct CmsgOfferPetition {
        /// Unknown, not the petition type.
        pub unk: u32,
        /// The charter item.
        pub petition: Guid,
        /// The player offered to.
        pub target: Guid,
    }
}

/// The owner turns a charter in. Arena charters append the team emblem.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CmsgTurnInPetition {
    /// The charter item.
    pub petition: Guid,
    /// Arena team emblem (background, icon, icon color, border, border color), when sent.
    pub arena_emblem: Option<[u32; 5]>,
}

impl Wire for CmsgTurnInPetition {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (input, petition) = Guid::read(input)?;
        let (input, arena_emblem) = if input.len() >= 20 {
            let (input, emblem) = <[u32; 5]>::read(input)?;
            (input, Some(emblem))
        } else {
            (input, None)
        };
        Ok((
            input,
            CmsgTurnInPetition {
                petition,
                arena_emblem,
            },
        ))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        self.petition.write(out);
        if let Some(emblem) = &self.arena_emblem {
            emblem.write(out);
        }
    }
    #[inline]
    fn wire_len(&self) -> usize {
        8 + self.arena_emblem.as_ref().map_or(0, Wire::wire_len)
    }
    fn describe(&self, prefix: &str, fields: &mut Fields) {
        self.petition
            .describe(&field_name(prefix, "petition"), fields);
        if let Some(emblem) = &self.arena_emblem {
            emblem.describe(&field_name(prefix, "arena_emblem"), fields);
        }
    }
}
bind_opcode!(CmsgTurnInPetition => CMSG_TURN_IN_PETITION);

message! {
    /// The outcome of a turn-in.
    SMSG_TURN_IN_PETITION_RESULTS => pub struct SmsgTurnInPetitionResults {
        /// A [`turn_in_result`] code.
        pub result: u32,
    }
}

message! {
    /// The client asks for a charter's name and owner.
    CMSG_PETITION_QUERY => pub struct CmsgPetitionQuery {
        /// The guild or petition id (the charter's low guid).
        pub petition_id: u32,
        /// The charter item.
        pub petition: Guid,
    }
}

message! {
    /// A charter's name, owner and required signatures.
    SMSG_PETITION_QUERY_RESPONSE => pub struct SmsgPetitionQueryResponse {
        /// The petition id (the charter's low guid).
        pub petition_id: u32,
        /// The owner.
        pub owner: Guid,
        /// The guild or arena team name.
        pub name: String,
        /// An empty text.
        pub body_text: String,
        /// Signatures needed (guild) or type - 1 (arena).
        pub min_signatures: u32,
        /// Signatures needed (guild) or type - 1 (arena).
        pub max_signatures: u32,
        /// 0 (guild) or the arena type.
        pub unk_type: u32,
        /// Unused.
        pub unk1: [u32; 4],
        /// Unused.
        pub unk2: u16,
        /// Unused.
        pub unk3: [u32; 3],
        /// Ten empty strings.
        pub unk_strings: [u8; 10],
        /// Unused.
        pub unk4: u32,
        /// 0 for a guild charter, 1 for an arena charter.
        pub is_arena: u32,
    }
}

message! {
    /// Deletes a guild charter (both directions; not modelled beyond its bytes).
    UMSG_DELETE_GUILD_CHARTER => pub struct UmsgDeleteGuildCharter {
        /// The body as sent.
        pub body: Rest,
    }
}

message! {
    /// Renames a charter (both directions, same body).
    MSG_PETITION_RENAME => pub struct MsgPetitionRename {
        /// The charter item.
        pub petition: Guid,
        /// The new name.
        pub name: String,
    }
}

message! {
    /// A charter offer failed.
    SMSG_OFFER_PETITION_ERROR => pub struct SmsgOfferPetitionError {
        /// The player the charter was offered to.
        pub player: Guid,
    }
}

message! {
    /// The result of an arena team command (arena charter errors).
    SMSG_ARENA_TEAM_COMMAND_RESULT => pub struct SmsgArenaTeamCommandResult {
        /// The command.
        pub command: u32,
        /// The team name.
        pub team: String,
        /// The player name.
        pub player: String,
        /// The error code.
        pub error: u32,
    }
}

impl SmsgPetitionQueryResponse {
    /// The response AzerothCore sends for a charter of `charter_type`.
    pub fn for_charter(
        petition_id: u32,
        owner: Guid,
        name: String,
        charter_type: u8,
        min_guild_signatures: u32,
    ) -> Self {
        let is_guild = charter_type == GUILD_CHARTER_TYPE;
        let (needed, unk_type) = if is_guild {
            (min_guild_signatures, 0)
        } else {
            let t = u32::from(charter_type);
            (t.saturating_sub(1), t)
        };
        SmsgPetitionQueryResponse {
            petition_id,
            owner,
            name,
            min_signatures: needed,
            max_signatures: needed,
            unk_type,
            is_arena: u32::from(!is_guild),
            ..Default::default()
        }
    }
}

/// Random values of the hand-written types, consistent with their conditions.
#[cfg(any(test, feature = "sample"))]
mod sample {
    use super::*;
    use crate::sample::{Sample, SampleRng};
    use crate::wire::Guid;

    impl Sample for CmsgTurnInPetition {
        fn sample(rng: &mut SampleRng) -> Self {
            CmsgTurnInPetition {
                petition: Guid::sample(rng),
                arena_emblem: Option::sample(rng),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    #[test]
    fn sign_results_real_bytes() {
        let bytes = [
            0x07, 0, 0, 0, 0, 0, 0, 0x40, // petition item guid, low 7
            0x2A, 0, 0, 0, 0, 0, 0, 0, // signer 42
            0x01, 0, 0, 0, // ALREADY_SIGNED
        ];
        let m = SmsgPetitionSignResults::decode(&bytes).unwrap();
        assert_eq!(m.petition, Guid::item(7));
        assert_eq!(m.signer, Guid::player(42));
        assert_eq!(m.result, sign_result::ALREADY_SIGNED);
        assert_eq!(m.to_body(), bytes);
    }

    #[test]
    fn query_response_matches_azerothcore_layout() {
        let m =
            SmsgPetitionQueryResponse::for_charter(7, Guid::player(3), "Ironforge".into(), 9, 9);
        let body = m.to_body();
        // 4 id + 8 owner + 10 name + 1 empty text + 7*4 + 2 + 3*4 + 10 + 4 + 4
        assert_eq!(body.len(), 4 + 8 + 10 + 1 + 28 + 2 + 12 + 10 + 4 + 4);
        assert_eq!(&body[23..27], &9u32.to_le_bytes());
        assert_eq!(&body[body.len() - 4..], &0u32.to_le_bytes());
        let arena = SmsgPetitionQueryResponse::for_charter(7, Guid::player(3), "x".into(), 3, 9);
        assert_eq!(
            (arena.min_signatures, arena.unk_type, arena.is_arena),
            (2, 3, 1)
        );
    }

    #[test]
    fn turn_in_with_and_without_emblem() {
        let plain = CmsgTurnInPetition {
            petition: Guid::item(1),
            arena_emblem: None,
        };
        assert_eq!(plain.to_body().len(), 8);
        let arena = CmsgTurnInPetition {
            petition: Guid::item(1),
            arena_emblem: Some([1, 2, 3, 4, 5]),
        };
        let body = arena.to_body();
        assert_eq!(body.len(), 28);
        assert_eq!(CmsgTurnInPetition::decode(&body).unwrap(), arena);
    }
}
