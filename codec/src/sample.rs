//! Random, well-formed values of every message type, for property and load tests.
//!
//! Generated strings never contain NUL and floats are always finite, so every sampled
//! message survives `decode(encode(m)) == m`. Enabled by the `sample` feature.

use crate::wire::{Bytes, Guid, Rest};

/// A small deterministic generator (xorshift64*), seeded by the caller.
#[derive(Debug, Clone)]
pub struct SampleRng(u64);

impl SampleRng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        SampleRng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index in `0..n` (`n` > 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.fill(&mut out);
        out
    }

    /// True half of the time.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// A type of which random well-formed values can be drawn.
pub trait Sample: Sized {
    /// Draws one value.
    fn sample(rng: &mut SampleRng) -> Self;
}

macro_rules! sample_int {
    ($($ty:ty),*) => {$(
        impl Sample for $ty {
            fn sample(rng: &mut SampleRng) -> Self {
                // Edge values a quarter of the time, uniform otherwise.
                match rng.below(8) {
                    0 => 0,
                    1 => <$ty>::MAX,
                    _ => rng.next_u64() as $ty,
                }
            }
        }
    )*};
}

sample_int!(u8, u16, u32, u64, i32);

impl Sample for f32 {
    fn sample(rng: &mut SampleRng) -> Self {
        (rng.next_u64() as i32) as f32 / 1024.0
    }
}

impl Sample for Guid {
    fn sample(rng: &mut SampleRng) -> Self {
        match rng.below(3) {
            0 => Guid::player(rng.next_u64() as u32),
            1 => Guid::item(rng.next_u64() as u32),
            _ => Guid(rng.next_u64()),
        }
    }
}

impl Sample for String {
    fn sample(rng: &mut SampleRng) -> Self {
        const CHARS: &[char] = &['a', 'Z', '0', ' ', '\'', 'é', 'Ж', '中', '🐉', '\u{1}'];
        let len = rng.below(14) as usize;
        (0..len)
            .map(|_| CHARS[rng.below(CHARS.len() as u64) as usize])
            .collect()
    }
}

impl<T: Sample> Sample for Vec<T> {
    fn sample(rng: &mut SampleRng) -> Self {
        let len = rng.below(5) as usize;
        (0..len).map(|_| T::sample(rng)).collect()
    }
}

impl<T: Sample, const N: usize> Sample for [T; N] {
    fn sample(rng: &mut SampleRng) -> Self {
        std::array::from_fn(|_| T::sample(rng))
    }
}

impl<T: Sample> Sample for Option<T> {
    fn sample(rng: &mut SampleRng) -> Self {
        rng.coin().then(|| T::sample(rng))
    }
}

impl Sample for Rest {
    fn sample(rng: &mut SampleRng) -> Self {
        Rest(Vec::<u8>::sample(rng))
    }
}

impl<const N: usize> Sample for Bytes<N> {
    fn sample(rng: &mut SampleRng) -> Self {
        Bytes(<[u8; N]>::sample(rng))
    }
}
