//! The WotLK world header cipher: ARC4 with the first 1024 keystream bytes dropped,
//! keyed with HMAC-SHA1(seed, session key). Only headers are encrypted.
//!
//! Each direction of a connection has its own keystream. A proxy between the two ends
//! reads each direction with that direction's keystream and writes it on with the
//! same one: while it forwards every header unchanged the writer follows the reader
//! and keeps no state ([`crate::FrameCodec::follow`]); once it injects or drops a
//! frame, the writer holds a copy of its own, moved to its place in the stream.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Length of the session key stored in `account.session_key`.
pub const SESSION_KEY_LEN: usize = 40;

/// Seed of the client-to-server keystream (the client encrypts, the server decrypts).
pub const CLIENT_TO_SERVER_SEED: [u8; 16] = [
    0xC2, 0xB3, 0x72, 0x3C, 0xC6, 0xAE, 0xD9, 0xB5, 0x34, 0x3C, 0x53, 0xEE, 0x2F, 0x43, 0x67, 0xCE,
];

/// Seed of the server-to-client keystream (the server encrypts, the client decrypts).
pub const SERVER_TO_CLIENT_SEED: [u8; 16] = [
    0xCC, 0x98, 0xAE, 0x04, 0xE8, 0x97, 0xEA, 0xCA, 0x12, 0xDD, 0xC0, 0x93, 0x42, 0x91, 0x53, 0x57,
];

/// ARC4: a permutation of the 256 byte values and two indices into it. Written out
/// here rather than through a stream-cipher crate: a header is 4 to 6 bytes, and
/// the generic block machinery cost more than the bytes.
#[derive(Clone)]
struct Arc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Arc4 {
    /// The key schedule.
    fn new(key: &[u8]) -> Arc4 {
        let mut s: [u8; 256] = std::array::from_fn(|n| n as u8);
        let mut j = 0u8;
        for n in 0..256 {
            j = j.wrapping_add(s[n]).wrapping_add(key[n % key.len()]);
            s.swap(n, usize::from(j));
        }
        Arc4 { s, i: 0, j: 0 }
    }

    /// XORs `data` with the next keystream bytes.
    #[inline]
    fn apply(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        for byte in data {
            i = i.wrapping_add(1);
            let si = self.s[usize::from(i)];
            j = j.wrapping_add(si);
            let sj = self.s[usize::from(j)];
            self.s[usize::from(i)] = sj;
            self.s[usize::from(j)] = si;
            *byte ^= self.s[usize::from(si.wrapping_add(sj))];
        }
        self.i = i;
        self.j = j;
    }

    /// Undoes the last `n` keystream steps: each step's swap is its own inverse, and
    /// the indices it moved are recovered from the state it leaves.
    fn rewind(&mut self, n: u64) {
        let (mut i, mut j) = (self.i, self.j);
        for _ in 0..n {
            self.s.swap(usize::from(i), usize::from(j));
            j = j.wrapping_sub(self.s[usize::from(i)]);
            i = i.wrapping_sub(1);
        }
        self.i = i;
        self.j = j;
    }
}

/// One header keystream. Encrypting and decrypting are the same operation.
///
/// It knows its place in the stream and the key it was made from (by a fingerprint),
/// so a writer in lockstep with a reader of the same stream can reuse the reader's
/// keystream instead of running its own ([`crate::FrameCodec::follow`]).
#[derive(Clone)]
pub struct HeaderCipher {
    rc4: Arc4,
    /// Fingerprint of the ARC4 key: two ciphers with the same one are one stream.
    id: u32,
    /// Keystream bytes used so far, the dropped 1024 not counted.
    pos: u64,
    /// Where the header being read began ([`HeaderCipher::open_header`]).
    head_at: u64,
    /// That header as it came, encrypted.
    head: [u8; 8],
}

impl HeaderCipher {
    /// A keystream for `seed` and `session_key`, with 1024 bytes already dropped.
    pub fn new(seed: &[u8; 16], session_key: &[u8; SESSION_KEY_LEN]) -> Self {
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(seed).expect("HMAC takes any key length");
        mac.update(session_key);
        let key = mac.finalize().into_bytes();
        let mut rc4 = Arc4::new(&key);
        let mut drop = [0u8; 1024];
        rc4.apply(&mut drop);
        let id = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
        HeaderCipher {
            rc4,
            id,
            pos: 0,
            head_at: 0,
            head: [0; 8],
        }
    }

    /// The keystream of client-to-server headers.
    pub fn client_to_server(session_key: &[u8; SESSION_KEY_LEN]) -> Self {
        Self::new(&CLIENT_TO_SERVER_SEED, session_key)
    }

    /// The keystream of server-to-client headers.
    pub fn server_to_client(session_key: &[u8; SESSION_KEY_LEN]) -> Self {
        Self::new(&SERVER_TO_CLIENT_SEED, session_key)
    }

    /// Encrypts or decrypts `data` in place, advancing the keystream.
    #[inline]
    pub fn apply(&mut self, data: &mut [u8]) {
        self.rc4.apply(data);
        self.pos += data.len() as u64;
    }

    /// Bytes of keystream used so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves to `pos`, back or forth, as if exactly `pos` bytes had been used.
    pub fn seek(&mut self, pos: u64) {
        if pos < self.pos {
            self.rc4.rewind(self.pos - pos);
            self.pos = pos;
        }
        let mut scratch = [0u8; 64];
        while self.pos < pos {
            let n = (pos - self.pos).min(scratch.len() as u64) as usize;
            self.apply(&mut scratch[..n]);
        }
    }

    /// Decrypts the header bytes from `offset` on of the header being read (0
    /// starts a new one), keeping them as they came for [`HeaderCipher::reseal`].
    #[inline]
    pub(crate) fn open_header(&mut self, data: &mut [u8], offset: usize) {
        if offset == 0 {
            self.head_at = self.pos;
        }
        if let Some(kept) = self.head.get_mut(offset..offset + data.len()) {
            copy_short(kept, data);
        }
        self.apply(data);
    }

    /// The fingerprint of this keystream's key.
    pub(crate) fn stream_id(&self) -> u32 {
        self.id
    }

    /// Where the header last read began.
    pub(crate) fn head_at(&self) -> u64 {
        self.head_at
    }

    /// Encrypts `header`, the plain header last read, with the keystream it came
    /// with: it is again what came.
    #[inline]
    pub(crate) fn reseal(&self, header: &mut [u8]) {
        if let Some(kept) = self.head.get(..header.len()) {
            copy_short(header, kept);
        }
    }
}

/// Copies a few header bytes (`to` and `from` are the same length): the usual
/// lengths as fixed-size moves rather than a `memcpy` call or a byte loop.
#[inline]
fn copy_short(to: &mut [u8], from: &[u8]) {
    match to.len() {
        4 => copy_fixed::<4>(to, from),
        6 => copy_fixed::<6>(to, from),
        _ => {
            for (t, f) in to.iter_mut().zip(from) {
                *t = *f;
            }
        }
    }
}

/// Copies `N` bytes as one move (nothing if either side is not `N` long).
#[inline]
fn copy_fixed<const N: usize>(to: &mut [u8], from: &[u8]) {
    if let (Ok(to), Ok(from)) = (<&mut [u8; N]>::try_from(to), <&[u8; N]>::try_from(from)) {
        *to = *from;
    }
}

impl fmt::Debug for HeaderCipher {
    /// Never shows key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeaderCipher { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::{Arc4, HeaderCipher};
    use proptest::prelude::*;
    use rc4::consts::U20;
    use rc4::{KeyInit, Rc4, StreamCipher};

    proptest! {
        /// The keystream is the `rc4` crate's for any 20-byte key (the HMAC-SHA1 size),
        /// however the bytes are split across calls.
        #[test]
        fn keystream_matches_the_rc4_crate(
            key in proptest::array::uniform20(any::<u8>()),
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..40),
        ) {
            let mut ours = Arc4::new(&key);
            let mut theirs = Rc4::<U20>::new(&key.into());
            for chunk in chunks {
                let (mut a, mut b) = (chunk.clone(), chunk);
                ours.apply(&mut a);
                theirs.apply_keystream(&mut b);
                prop_assert_eq!(a, b);
            }
        }
    }
    proptest! {
        /// Seeking back or forth lands on the keystream a fresh cipher has after that
        /// many bytes, and a header's kept keystream reseals it to what it was.
        #[test]
        fn seek_and_reseal_match_a_fresh_stream(
            key in proptest::array::uniform32(any::<u8>()),
            first in 0u64..600,
            second in 0u64..600,
            header in proptest::array::uniform6(any::<u8>()),
            split in 0usize..7,
        ) {
            let mut key40 = [0u8; 40];
            key40[..32].copy_from_slice(&key);
            let at = |pos: u64| {
                let mut fresh = HeaderCipher::client_to_server(&key40);
                fresh.seek(pos);
                let mut probe = [0u8; 16];
                fresh.apply(&mut probe);
                probe
            };
            let mut moved = HeaderCipher::client_to_server(&key40);
            moved.seek(first);
            moved.seek(second);
            prop_assert_eq!(moved.position(), second);
            let mut probe = [0u8; 16];
            moved.clone().apply(&mut probe);
            prop_assert_eq!(probe, at(second));

            let mut read = header;
            moved.open_header(&mut read[..split], 0);
            moved.open_header(&mut read[split..], split);
            prop_assert_eq!(moved.head_at(), second);
            moved.reseal(&mut read);
            prop_assert_eq!(read, header);
            let fresh = HeaderCipher::client_to_server(&key40);
            prop_assert_eq!(fresh.stream_id(), moved.stream_id());
            prop_assert_ne!(
                fresh.stream_id(),
                HeaderCipher::server_to_client(&key40).stream_id()
            );
        }
    }
}
