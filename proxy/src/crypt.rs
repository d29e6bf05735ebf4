//! The `wotlk-crypt` header cipher's life in a session: where the session key comes
//! from ([`KeySource`]) and how each pump moves from plain framing to encrypted
//! headers or opaque bytes (`Link`).
//!
//! The client pump sees `CMSG_AUTH_SESSION`, looks the key up and hands the server
//! pump a `Switch`. The worldserver encrypts every header after its
//! `SMSG_AUTH_CHALLENGE`, so the server pump applies the switch only once that
//! challenge has passed, whichever of the two comes first.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tc9_codec::crypt::SESSION_KEY_LEN;
use tc9_codec::HeaderCipher;
use tracing::{debug, warn};

/// A 40-byte session key (`account.session_key`).
pub type SessionKey = [u8; SESSION_KEY_LEN];

/// Why a key could not be looked up (the source was unreachable, not: no key).
pub type KeyError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`KeySource`] returns.
pub type KeyLookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<SessionKey>, KeyError>> + Send + 'a>>;

/// Where a `wotlk-crypt` session's key comes from.
pub trait KeySource: Send + Sync + 'static {
    /// The session key of the account `username`; `None` when it has none.
    fn session_key<'a>(&'a self, username: &'a str) -> KeyLookup<'a>;
}

/// Lookups tried before a session falls back to opaque bytes: a database hiccup at
/// login should not cost the session its charters.
const KEY_ATTEMPTS: u32 = 3;
/// Wait before the second lookup, doubled before each further one.
const KEY_RETRY: Duration = Duration::from_millis(50);

/// The key of `account`, with the lookup's result label (`found`, `missing`, or
/// `error` when every attempt failed).
pub(crate) async fn find_key(
    source: Option<&dyn KeySource>,
    account: Option<&str>,
) -> (Option<SessionKey>, &'static str) {
    let (Some(source), Some(account)) = (source, account) else {
        return (None, "missing");
    };
    let mut wait = KEY_RETRY;
    for attempt in 1..=KEY_ATTEMPTS {
        match source.session_key(account).await {
            Ok(Some(key)) => return (Some(key), "found"),
            Ok(None) => return (None, "missing"),
            Err(e) if attempt < KEY_ATTEMPTS => {
                debug!(attempt, error = %e, "session key lookup failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => warn!(attempts = KEY_ATTEMPTS, error = %e, "session key lookup failed"),
        }
    }
    (None, "error")
}

/// The server pump's change of mode once `CMSG_AUTH_SESSION` was seen.
#[derive(Debug)]
pub(crate) enum Switch {
    /// The session key was found: the worldserver's headers are read with this
    /// keystream, and written to the gateway in step with it.
    Crypt(Box<HeaderCipher>),
    /// No session key: copy the rest as opaque bytes.
    Opaque,
}

/// How a pump treats what it reads: one state instead of a flag per question.
#[derive(Debug)]
pub(crate) enum Link {
    /// Frames, with whatever cipher the codecs hold; nothing will change.
    Framed,
    /// Client pump, `wotlk-crypt`: `CMSG_AUTH_SESSION` starts the cipher.
    AwaitingAuth,
    /// Server pump, `wotlk-crypt`: `SMSG_AUTH_CHALLENGE` has not passed yet; a switch
    /// that arrives meanwhile waits here.
    AwaitingChallenge(Option<Switch>),
    /// Server pump, `wotlk-crypt`: the challenge passed, the switch has not come.
    AwaitingSwitch,
    /// Opaque bytes from here on.
    Opaque,
}

impl Link {
    /// A client pump's first state.
    pub(crate) fn client(crypt: bool) -> Link {
        if crypt {
            Link::AwaitingAuth
        } else {
            Link::Framed
        }
    }

    /// A server pump's first state.
    pub(crate) fn server(crypt: bool) -> Link {
        if crypt {
            Link::AwaitingChallenge(None)
        } else {
            Link::Framed
        }
    }

    /// Whether bytes are copied without framing.
    #[inline]
    pub(crate) fn is_opaque(&self) -> bool {
        matches!(self, Link::Opaque)
    }

    /// The challenge passed: the switch to apply now, if one was waiting.
    pub(crate) fn challenge_passed(&mut self) -> Option<Switch> {
        match std::mem::replace(self, Link::Framed) {
            Link::AwaitingChallenge(Some(switch)) => Some(switch),
            Link::AwaitingChallenge(None) => {
                *self = Link::AwaitingSwitch;
                None
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// A switch arrived: it applies now if the challenge has passed, else it waits.
    pub(crate) fn switch_arrived(&mut self, switch: Switch) -> Option<Switch> {
        match self {
            Link::AwaitingChallenge(pending) => {
                *pending = Some(switch);
                None
            }
            _ => Some(switch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_waits_for_the_challenge() {
        let mut link = Link::server(true);
        assert!(link.switch_arrived(Switch::Opaque).is_none());
        assert!(matches!(link.challenge_passed(), Some(Switch::Opaque)));

        let mut link = Link::server(true);
        assert!(link.challenge_passed().is_none());
        assert!(matches!(link, Link::AwaitingSwitch));
        assert!(matches!(
            link.switch_arrived(Switch::Opaque),
            Some(Switch::Opaque)
        ));

        let mut plain = Link::server(false);
        assert!(plain.challenge_passed().is_none());
        assert!(matches!(plain, Link::Framed));
    }
}
