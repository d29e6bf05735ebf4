//! Scripts: a session's frames built in code, and the scenario that pairs one with its
//! world.

use super::*;

/// The frames of one session, as a sidecar would have captured them.
pub(super) struct Script {
    records: Vec<Record>,
    micros: u64,
}

impl Script {
    pub(super) fn new() -> Script {
        Script {
            records: Vec::new(),
            micros: 0,
        }
    }

    pub(super) fn frame(&mut self, frame: Frame) -> &mut Self {
        // A plausible, deterministic pace: 40 ms, plus a little per frame.
        self.micros += 40_000 + 1_000 * (self.records.len() as u64 % 7);
        self.records.push(Record {
            origin: frame.origin(),
            at: Duration::from_micros(self.micros),
            frame,
        });
        self
    }

    pub(super) fn client<M: Message>(&mut self, message: &M) -> &mut Self {
        self.frame(Frame::from_message(Origin::Client, message).expect("a client frame"))
    }

    pub(super) fn server<M: Message>(&mut self, message: &M) -> &mut Self {
        self.frame(Frame::from_message(Origin::Server, message).expect("a server frame"))
    }

    pub(super) fn raw(&mut self, origin: Origin, opcode: u32, body: &[u8]) -> &mut Self {
        self.frame(Frame::new(origin, Opcode(opcode), body).expect("a raw frame"))
    }

    /// A modelled message with random, well-formed fields.
    pub(super) fn sampled(
        &mut self,
        origin: Origin,
        opcode: Opcode,
        rng: &mut SampleRng,
    ) -> &mut Self {
        let body = match origin {
            Origin::Client => ClientMessage::sample(opcode, rng).map(|m| m.to_body()),
            Origin::Server => ServerMessage::sample(opcode, rng).map(|m| m.to_body()),
        }
        .unwrap_or_else(|| panic!("{opcode} is not modelled for the {origin}"));
        self.raw(origin, opcode.0, &body)
    }

    /// The gateway logs `character` in and the worldserver puts it in the world: from
    /// here on the session has a character.
    pub(super) fn enter_world(&mut self, character: u32) -> &mut Self {
        self.client(&CmsgPlayerLogin {
            guid: Guid::player(character),
        })
        .server(&SmsgLoginVerifyWorld {
            map: 0,
            x: -8_949.95,
            y: -132.493,
            z: 83.5312,
            orientation: 0.0,
        })
    }

    /// The character logs out to the character list.
    pub(super) fn leave_world(&mut self) -> &mut Self {
        self.client(&CmsgLogoutRequest {})
            .server(&SmsgLogoutComplete {})
    }

    pub(super) fn sign(&mut self, petition: u32) -> &mut Self {
        self.client(&CmsgPetitionSign {
            petition: Guid::item(petition),
            unk: 1,
        })
    }

    pub(super) fn capture(&self, name: &str, session: u64) -> Capture {
        Capture {
            meta: vec![
                ("sidecar".into(), "A".into()),
                ("session".into(), session.to_string()),
                ("peer".into(), format!("127.0.0.1:{}", 51_000 + session)),
                ("started_unix_ms".into(), "1767225600000".into()),
                ("link_mode".into(), "plain".into()),
                ("scenario".into(), name.into()),
                ("generated_by".into(), "tests/replay/".into()),
            ],
            records: self.records.clone(),
        }
    }
}

pub(super) fn turn_in(petition: u32) -> CmsgTurnInPetition {
    CmsgTurnInPetition {
        petition: Guid::item(petition),
        arena_emblem: None,
    }
}

pub(super) fn shown(
    petition: u32,
    owner: u32,
    id: u32,
    players: &[u32],
) -> SmsgPetitionShowSignatures {
    SmsgPetitionShowSignatures {
        petition: Guid::item(petition),
        owner: Guid::player(owner),
        petition_id: id,
        signatures: players
            .iter()
            .map(|p| PetitionSignature {
                player: Guid::player(*p),
                unk: 0,
            })
            .collect(),
    }
}

/// One scenario: its world file and its session.
pub(super) struct Scenario {
    pub(super) name: &'static str,
    pub(super) world: String,
    pub(super) script: Script,
}

impl Scenario {
    /// The scenario `name`: `script` played against `world`.
    pub(super) fn new(name: &'static str, world: String, script: Script) -> Scenario {
        Scenario {
            name,
            world,
            script,
        }
    }
}
