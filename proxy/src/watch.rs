//! The slow path of a pump: a frame the handler intercepts, or one of the session
//! opcodes the proxy watches itself (`CMSG_AUTH_SESSION`, `CMSG_PLAYER_LOGIN`,
//! `SMSG_LOGIN_VERIFY_WORLD`, `SMSG_LOGOUT_COMPLETE`).

use std::time::Instant;

use tc9_codec::messages::{CmsgAuthSession, CmsgPlayerLogin};
use tc9_codec::{Frame, HeaderCipher, Message, Opcode, Origin};
use tracing::{debug, info, warn};

use crate::crypt::{find_key, Switch};
use crate::handler::{Decision, Handler, SessionEvent};
use crate::metrics as m;
use crate::pump::{Flow, Pump};
use crate::session::Outbound;

/// `SMSG_CHARACTER_LOGIN_FAILED` (AzerothCore `Opcodes.h`: 0x041): the worldserver
/// refused a `CMSG_PLAYER_LOGIN`.
const SMSG_CHARACTER_LOGIN_FAILED: Opcode = Opcode(0x041);

/// Whether a frame of `opcode` from `origin` is a session opcode the proxy reads.
#[inline]
pub(crate) fn is_session_opcode(origin: Origin, opcode: Opcode) -> bool {
    match origin {
        Origin::Client => {
            opcode == Opcode::CMSG_AUTH_SESSION || opcode == Opcode::CMSG_PLAYER_LOGIN
        }
        Origin::Server => {
            opcode == Opcode::SMSG_LOGIN_VERIFY_WORLD
                || opcode == Opcode::SMSG_LOGOUT_COMPLETE
                || opcode == SMSG_CHARACTER_LOGIN_FAILED
        }
    }
}

impl<H: Handler> Pump<H> {
    /// Handles one watched frame.
    pub(crate) async fn on_frame(&mut self, frame: Frame) -> Flow {
        let event = self.observe(&frame);
        let flow = self.dispatch(frame).await;
        // After the frame is written: a character is announced only once its
        // SMSG_LOGIN_VERIFY_WORLD is on its way to the client.
        if let Some(event) = event {
            self.shared.handler.session_event(&self.info, event).await;
        }
        flow
    }

    /// Sends one frame where the handler decides.
    async fn dispatch(&mut self, frame: Frame) -> Flow {
        let opcode = frame.opcode();
        if opcode == Opcode::CMSG_AUTH_SESSION
            && matches!(self.link, crate::crypt::Link::AwaitingAuth)
        {
            return self.start_crypt(frame).await;
        }
        if !self.shared.handler.intercepts(self.origin, opcode) {
            return self.write_frames([frame]).await.into();
        }
        let started = Instant::now();
        let decision = self.shared.handler.handle(&self.info, &frame).await;
        let labels = &self.shared.labels;
        metrics::histogram!(m::RESOLUTION_SECONDS, "kind" => labels.label(opcode))
            .record(started.elapsed().as_secs_f64());
        m::count_decision(labels, opcode, decision.outcome());
        match decision {
            Decision::Forward => self.write_frames([frame]).await.into(),
            Decision::FailOpen(reason) => {
                info!(%opcode, %reason, "failing open: forwarding the original");
                self.write_frames([frame]).await.into()
            }
            Decision::Rewrite(frames) => self.write_frames(frames).await.into(),
            Decision::Answer(frames) => {
                for f in frames {
                    if !self.send_back(Outbound::Frame(Box::new(f))).await {
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            }
            Decision::Drop => Flow::Continue,
            Decision::Close(reason) => {
                warn!(%opcode, %reason, "closing the session");
                self.cancel.cancel();
                Flow::Stop
            }
        }
    }

    /// Tracks the session's identity from the session opcodes. A character is bound
    /// when the worldserver lets the session's first pending login into the world;
    /// AzerothCore kicks a session that logs in again while loading or in the world
    /// (`CharacterHandler.cpp:694-699`), so a later `CMSG_PLAYER_LOGIN` never switches
    /// the identity until `SMSG_LOGOUT_COMPLETE`.
    fn observe(&self, frame: &Frame) -> Option<SessionEvent> {
        match (self.origin, frame.opcode()) {
            (Origin::Client, Opcode::CMSG_AUTH_SESSION) => {
                if let Ok(auth) = CmsgAuthSession::decode(frame.body()) {
                    tracing::Span::current().record("account", auth.account.as_str());
                    self.info.lock().account_name = Some(auth.account);
                }
                None
            }
            (Origin::Client, Opcode::CMSG_PLAYER_LOGIN) => {
                if let Ok(login) = CmsgPlayerLogin::decode(frame.body()) {
                    let mut identity = self.info.lock();
                    if identity.character_guid.is_none() && identity.pending_login.is_none() {
                        identity.pending_login = Some(login.guid.low());
                    } else {
                        debug!(
                            guid = login.guid.low(),
                            "a second login in one session is not an identity"
                        );
                    }
                }
                None
            }
            (Origin::Server, Opcode::SMSG_LOGIN_VERIFY_WORLD) => {
                let mut identity = self.info.lock();
                if identity.character_guid.is_some() {
                    return None;
                }
                let character = identity.pending_login.take()?;
                identity.character_guid = Some(character);
                tracing::Span::current().record("character", character);
                Some(SessionEvent::EnteredWorld { character })
            }
            (Origin::Server, SMSG_CHARACTER_LOGIN_FAILED) => {
                self.info.lock().pending_login = None;
                None
            }
            (Origin::Server, Opcode::SMSG_LOGOUT_COMPLETE) => {
                let mut identity = self.info.lock();
                identity.pending_login = None;
                let character = identity.character_guid.take()?;
                Some(SessionEvent::LeftWorld { character })
            }
            _ => None,
        }
    }

    /// `CMSG_AUTH_SESSION` in crypt mode: find the session key and switch all four legs
    /// to encrypted headers, or the whole session to opaque bytes.
    async fn start_crypt(&mut self, frame: Frame) -> Flow {
        let account = self.info.lock().account_name.clone();
        let (key, result) = find_key(self.shared.keys.as_deref(), account.as_deref()).await;
        metrics::counter!(m::CRYPT_KEY_LOOKUPS_TOTAL, "result" => result).increment(1);
        match key {
            Some(key) => {
                self.decoder
                    .set_cipher(Some(HeaderCipher::client_to_server(&key)));
                // The worldserver encrypts every header after its SMSG_AUTH_CHALLENGE,
                // and the gateway decrypts every one after its CMSG_AUTH_SESSION,
                // answers injected by the sidecar included.
                let server_side = Box::new(HeaderCipher::server_to_client(&key));
                if !self
                    .send_back(Outbound::Switch(Switch::Crypt(server_side)))
                    .await
                    || !self.write_frames([frame]).await
                {
                    return Flow::Stop;
                }
                // The gateway's headers go on with the keystream they came with.
                self.encoder.follow(&self.decoder);
                self.link = crate::crypt::Link::Framed;
                Flow::Continue
            }
            None => {
                metrics::counter!(m::CRYPT_FALLBACKS_TOTAL).increment(1);
                warn!("no session key; copying this session as opaque bytes");
                if self.send_back(Outbound::Switch(Switch::Opaque)).await
                    && self.write_frames([frame]).await
                {
                    Flow::Opaque
                } else {
                    Flow::Stop
                }
            }
        }
    }
}
