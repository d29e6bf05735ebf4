//! The WotLK world header cipher: ARC4 with the first 1024 keystream bytes dropped,
//! keyed with HMAC-SHA1(seed, session key). Only headers are encrypted.
//!
//! Each direction of a connection has its own keystream. A proxy that injects or drops
//! packets keeps four: decrypt and re-encrypt on the client leg, decrypt and re-encrypt
//! on the server leg.

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
}

/// One header keystream. Encrypting and decrypting are the same operation.
pub struct HeaderCipher {
    rc4: Arc4,
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
        HeaderCipher { rc4 }
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
    use super::Arc4;
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
}
