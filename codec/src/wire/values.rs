//! The field types that are not numbers: guids, strings, fixed arrays and raw bytes.

use std::fmt;

use super::{fixed_len, le_bytes, Fields, WResult, Wire, WireError, WireErrorKind};

/// A 64-bit object guid.
///
/// A player guid has a zero high part and the `characters.guid` in its low 32 bits;
/// an item guid (a charter is an item) has the high part `0x4000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub u64);

impl Guid {
    /// The high part of an item guid.
    pub const ITEM_HIGH: u16 = 0x4000;

    /// The guid of the player whose `characters.guid` is `low`.
    pub fn player(low: u32) -> Self {
        Guid(u64::from(low))
    }

    /// The guid of the item whose low guid is `low` (`petition.petitionguid`).
    pub fn item(low: u32) -> Self {
        Guid(u64::from(Self::ITEM_HIGH) << 48 | u64::from(low))
    }

    /// The low 32 bits: the database id.
    pub fn low(self) -> u32 {
        self.0 as u32
    }

    /// The top 16 bits: the object type tag.
    pub fn high(self) -> u16 {
        (self.0 >> 48) as u16
    }

    /// Whether this is a player guid.
    pub fn is_player(self) -> bool {
        self.high() == 0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:016X}", self.0)
    }
}

impl Wire for Guid {
    const FIXED_LEN: Option<usize> = Some(8);
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        u64::read(input).map(|(rest, v)| (rest, Guid(v)))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        self.0.write(out);
    }
    #[inline]
    fn wire_len(&self) -> usize {
        8
    }
    fn describe(&self, name: &str, fields: &mut Fields) {
        fields.push(name, self);
    }
}

/// A NUL-terminated UTF-8 string. Writing stops at an interior NUL, if any, so the
/// bytes always read back as one string.
impl Wire for String {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let Some(end) = memchr::memchr(0, input) else {
            return Err(nom::Err::Error(WireError::at(
                input,
                WireErrorKind::UnterminatedString,
            )));
        };
        let text = std::str::from_utf8(&input[..end])
            .map_err(|_| nom::Err::Error(WireError::at(input, WireErrorKind::InvalidUtf8)))?;
        Ok((&input[end + 1..], text.to_owned()))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(until_nul(self));
        out.push(0);
    }
    #[inline]
    fn wire_len(&self) -> usize {
        until_nul(self).len() + 1
    }
    fn describe(&self, name: &str, fields: &mut Fields) {
        fields.push(name, format_args!("{self:?}"));
    }
}

/// The bytes of `text` up to its first NUL: what goes on the wire.
#[inline]
fn until_nul(text: &str) -> &[u8] {
    let bytes = text.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// A fixed-size array of fields, such as the ten rank names of a guild.
impl<T: Wire + Default, const N: usize> Wire for [T; N] {
    const FIXED_LEN: Option<usize> = fixed_len(&[T::FIXED_LEN; N]);
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let mut rest = input;
        let mut failure = None;
        let array = std::array::from_fn(|_| {
            if failure.is_some() {
                return T::default();
            }
            match T::read(rest) {
                Ok((r, v)) => {
                    rest = r;
                    v
                }
                Err(e) => {
                    failure = Some(e);
                    T::default()
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok((rest, array)),
        }
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        for item in self {
            item.write(out);
        }
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.iter().map(Wire::wire_len).sum()
    }
    fn describe(&self, name: &str, fields: &mut Fields) {
        for (i, item) in self.iter().enumerate() {
            item.describe(&format!("{name}[{i}]"), fields);
        }
    }
}

/// Raw bytes that run to the end of the body (addon blobs, parts not modelled).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rest(pub Vec<u8>);

impl Wire for Rest {
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        Ok((&input[input.len()..], Rest(input.to_vec())))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.0.len()
    }
    fn describe(&self, name: &str, fields: &mut Fields) {
        fields.push(name, HexBytes(&self.0));
    }
}

/// Fixed-length opaque bytes (seeds, digests), shown as hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Default for Bytes<N> {
    fn default() -> Self {
        Bytes([0; N])
    }
}

impl<const N: usize> Wire for Bytes<N> {
    const FIXED_LEN: Option<usize> = Some(N);
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        le_bytes::<N>(input).map(|(rest, bytes)| (rest, Bytes(bytes)))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    #[inline]
    fn wire_len(&self) -> usize {
        N
    }
    fn describe(&self, name: &str, fields: &mut Fields) {
        fields.push(name, HexBytes(&self.0));
    }
}

/// Shows bytes as lowercase hex.
pub struct HexBytes<'a>(pub &'a [u8]);

impl fmt::Display for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
