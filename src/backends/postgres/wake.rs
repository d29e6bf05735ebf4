//! The payload of a wake-up notification on a sidecar's channel.
//!
//! - `c<guid>`: notices wait for the character;
//! - `c<guid>:<notice id>:<payload as hex>`: and this is one of them, to be claimed
//!   by its id;
//! - `h<guid>:<notice id>:<payload as hex>`: this one was claimed for the woken
//!   sidecar when it was recorded, to be written at once;
//! - anything else: bus events wait.

use tc9_charter::{Notice, Wakeup};

/// Notices wait for the character named.
const NOTICE_WAKE: &str = "c";
/// The carried notice is held for the woken sidecar.
const HELD_WAKE: &str = "h";
/// The longest notice carried in a notification (hex doubles it; PostgreSQL takes
/// payloads under 8,000 bytes).
const CARRIED_NOTICE_MAX: usize = 3_000;

/// The notification waking `character`'s notices, carrying `ready` when it is small
/// enough, marked held when `held`.
pub(super) fn notice_wake(character: u32, ready: Option<&Notice>, held: bool) -> String {
    match ready {
        Some(n) if n.payload.len() <= CARRIED_NOTICE_MAX => {
            let kind = if held { HELD_WAKE } else { NOTICE_WAKE };
            format!("{kind}{character}:{}:{}", n.id, hex::encode(&n.payload))
        }
        _ => format!("{NOTICE_WAKE}{character}"),
    }
}

/// What a notification asks for (see the module's list). A carried notice that does
/// not parse is left to a claim.
pub(super) fn woken_for(payload: &str) -> Wakeup {
    let (notice, held) = match (
        payload.strip_prefix(NOTICE_WAKE),
        payload.strip_prefix(HELD_WAKE),
    ) {
        (Some(notice), _) => (notice, false),
        (_, Some(notice)) => (notice, true),
        _ => return Wakeup::Events,
    };
    let mut parts = notice.splitn(3, ':');
    let Some(character) = parts.next().and_then(|c| c.parse().ok()) else {
        return Wakeup::Events;
    };
    let id = parts.next().and_then(|id| id.parse().ok());
    let bytes = parts.next().and_then(|hex| hex::decode(hex).ok());
    let ready = match (id, bytes) {
        (Some(id), Some(payload)) => Some(Notice {
            id,
            character,
            payload,
        }),
        _ => None,
    };
    Wakeup::Notice {
        character,
        held: held && ready.is_some(),
        ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carried_notice_survives_the_notification() {
        let notice = Notice {
            id: 77,
            character: 1201,
            payload: vec![0, 22, 0xBF, 0x01, 0xFF],
        };
        for held in [false, true] {
            let wake = notice_wake(1201, Some(&notice), held);
            let kind = if held { 'h' } else { 'c' };
            assert_eq!(wake, format!("{kind}1201:77:0016bf01ff"));
            assert_eq!(
                woken_for(&wake),
                Wakeup::Notice {
                    character: 1201,
                    ready: Some(notice.clone()),
                    held,
                }
            );
        }
    }

    #[test]
    fn a_bare_or_damaged_wake_leaves_the_notice_to_a_claim() {
        let bare = Wakeup::Notice {
            character: 5,
            ready: None,
            held: false,
        };
        assert_eq!(woken_for(&notice_wake(5, None, true)), bare);
        assert_eq!(woken_for("c5:x:00"), bare);
        assert_eq!(woken_for("c5:9:zz"), bare);
        assert_eq!(woken_for("h5:9:zz"), bare);
        let huge = Notice {
            id: 1,
            character: 5,
            payload: vec![7; CARRIED_NOTICE_MAX + 1],
        };
        assert_eq!(notice_wake(5, Some(&huge), true), "c5");
        assert_eq!(woken_for("42"), Wakeup::Events);
        assert_eq!(woken_for("cx"), Wakeup::Events);
        assert_eq!(woken_for("hx"), Wakeup::Events);
    }
}
