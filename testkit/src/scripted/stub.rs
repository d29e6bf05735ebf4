//! A stand-in charter handler for the proxy's own tests.

use std::sync::{Arc, Mutex};

use tc9_codec::wire::Guid;
use tc9_codec::{Frame, Opcode, Origin};
use tc9_proxy::{Decision, Handler, SessionInfo};

use super::{petition_sign, Packet};
use crate::lock;

/// The signer the stub handler reports in its `SMSG_PETITION_SIGN_RESULTS`.
pub const STUB_SIGNER: u32 = 77;

/// The `SMSG_PETITION_SIGN_RESULTS` body the stub handler answers a sign with:
/// petition guid (echoed), signer guid, result `PETITION_SIGN_OK`.
pub fn sign_results_body(sign_body: &[u8]) -> Vec<u8> {
    let mut body = sign_body.get(..8).unwrap_or(&[0; 8]).to_vec();
    body.extend_from_slice(&Guid::player(STUB_SIGNER).0.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body
}

/// The stub's answer to `CMSG_PETITION_SIGN` of `petition`.
pub fn sign_results(petition: u32) -> Packet {
    Packet::new(
        Opcode::SMSG_PETITION_SIGN_RESULTS.0,
        sign_results_body(&petition_sign(petition).body),
    )
}

/// Intercepts two client petition opcodes: answers `CMSG_PETITION_SIGN` itself and
/// drops `CMSG_PETITION_SHOW_SIGNATURES`. Records every frame it is asked about.
#[derive(Clone, Default)]
pub struct CharterStub {
    /// Every frame it was asked about.
    pub handled: Arc<Mutex<Vec<Packet>>>,
}

impl Handler for CharterStub {
    type Session = ();

    fn watched(&self) -> Vec<Opcode> {
        vec![
            Opcode::CMSG_PETITION_SIGN,
            Opcode::CMSG_PETITION_SHOW_SIGNATURES,
        ]
    }

    fn intercepts(&self, origin: Origin, opcode: Opcode) -> bool {
        origin == Origin::Client
            && (opcode == Opcode::CMSG_PETITION_SIGN
                || opcode == Opcode::CMSG_PETITION_SHOW_SIGNATURES)
    }

    async fn handle(&self, _session: &SessionInfo, frame: &Frame) -> Decision {
        lock(&self.handled).push(Packet::new(frame.opcode().0, frame.body()));
        if frame.opcode() == Opcode::CMSG_PETITION_SIGN {
            let answer = Frame::new(
                Origin::Server,
                Opcode::SMSG_PETITION_SIGN_RESULTS,
                &sign_results_body(frame.body()),
            )
            .expect("a small server frame");
            Decision::Answer(vec![answer])
        } else {
            Decision::Drop
        }
    }
}
