//! Wire primitives: how one field is read (with nom), written and described.
//!
//! Every field type of every message implements [`Wire`]. Bodies are little-endian,
//! strings are NUL-terminated UTF-8, guids are `u64`. Parsers never panic: short or
//! malformed input becomes a [`WireError`].

use std::fmt;

use nom::bytes::complete::{take, take_until};
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{le_f32, le_i32, le_u16, le_u32, le_u64, le_u8};
use nom::{IResult, Parser};

mod lists;

pub use lists::{counted_u32, counted_u8, describe_items, field_name, read_list};

/// What went wrong while reading a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireErrorKind {
    /// The body ended before the field did.
    Truncated,
    /// A string has no terminating NUL byte.
    UnterminatedString,
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A field holds a value the message cannot have.
    Invalid(&'static str),
    /// Any other parser failure.
    Parser(ErrorKind),
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireErrorKind::Truncated => f.write_str("truncated body"),
            WireErrorKind::UnterminatedString => f.write_str("string without NUL terminator"),
            WireErrorKind::InvalidUtf8 => f.write_str("string is not UTF-8"),
            WireErrorKind::Invalid(what) => write!(f, "invalid {what}"),
            WireErrorKind::Parser(kind) => write!(f, "parse error ({kind:?})"),
        }
    }
}

/// A parse failure, with how many input bytes were left where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// What went wrong.
    pub kind: WireErrorKind,
    /// Bytes of the body left unread at the failing field.
    pub remaining: usize,
}

impl WireError {
    /// An error of `kind` at `input`.
    pub fn at(input: &[u8], kind: WireErrorKind) -> Self {
        WireError {
            kind,
            remaining: input.len(),
        }
    }

    /// The nom failure for an `Invalid` field at `input`.
    pub fn invalid<'a, T>(input: &'a [u8], what: &'static str) -> WResult<'a, T> {
        Err(nom::Err::Error(WireError::at(
            input,
            WireErrorKind::Invalid(what),
        )))
    }
}

impl<'a> ParseError<&'a [u8]> for WireError {
    fn from_error_kind(input: &'a [u8], kind: ErrorKind) -> Self {
        let kind = match kind {
            ErrorKind::Eof => WireErrorKind::Truncated,
            ErrorKind::TakeUntil => WireErrorKind::UnterminatedString,
            other => WireErrorKind::Parser(other),
        };
        WireError::at(input, kind)
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result of a field parser.
pub type WResult<'a, T> = IResult<&'a [u8], T, WireError>;

/// A message's fields as `name = value` pairs, in wire order, for humans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Adds one field.
    pub fn push(&mut self, name: &str, value: impl fmt::Display) {
        self.0.push((name.to_owned(), value.to_string()));
    }

    /// The value of the field called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Fields {
    /// One `name = value` per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            writeln!(f, "{name} = {value}")?;
        }
        Ok(())
    }
}

/// A type that is read from, written to and described as part of a message body.
pub trait Wire: Sized {
    /// Reads one value from the front of `input`.
    fn read(input: &[u8]) -> WResult<'_, Self>;
    /// Appends the value's bytes to `out`.
    fn write(&self, out: &mut Vec<u8>);
    /// Describes the value under `name` (nested values add `.field` or `[i]`).
    fn describe(&self, name: &str, fields: &mut Fields);
}

macro_rules! wire_number {
    ($($ty:ty => $parser:ident),* $(,)?) => {$(
        impl Wire for $ty {
            #[inline]
            fn read(input: &[u8]) -> WResult<'_, Self> {
                $parser(input)
            }
            #[inline]
            fn write(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn describe(&self, name: &str, fields: &mut Fields) {
                fields.push(name, self);
            }
        }
    )*};
}

wire_number!(u8 => le_u8, u16 => le_u16, u32 => le_u32, u64 => le_u64, i32 => le_i32, f32 => le_f32);

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
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        le_u64(input).map(|(rest, v)| (rest, Guid(v)))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        self.0.write(out);
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
        let (rest, bytes) = take_until(&[0u8][..]).parse(input)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| nom::Err::Error(WireError::at(input, WireErrorKind::InvalidUtf8)))?;
        Ok((&rest[1..], text.to_owned()))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        let bytes = self.as_bytes();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        out.extend_from_slice(&bytes[..end]);
        out.push(0);
    }
    fn describe(&self, name: &str, fields: &mut Fields) {
        fields.push(name, format_args!("{self:?}"));
    }
}

/// A fixed-size array of fields, such as the ten rank names of a guild.
impl<T: Wire + Default, const N: usize> Wire for [T; N] {
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
    #[inline]
    fn read(input: &[u8]) -> WResult<'_, Self> {
        let (rest, bytes) = take(N).parse(input)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok((rest, Bytes(array)))
    }
    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_needs_a_terminator_and_utf8() {
        assert_eq!(
            String::read(b"abc\0rest"),
            Ok((&b"rest"[..], "abc".to_owned()))
        );
        let err = String::read(b"abc").unwrap_err();
        assert!(matches!(err, nom::Err::Error(e) if e.kind == WireErrorKind::UnterminatedString));
        let err = String::read(b"\xff\0").unwrap_err();
        assert!(matches!(err, nom::Err::Error(e) if e.kind == WireErrorKind::InvalidUtf8));
    }

    #[test]
    fn interior_nul_is_cut_on_write() {
        let mut out = Vec::new();
        "ab\0cd".to_owned().write(&mut out);
        assert_eq!(out, b"ab\0");
    }

    #[test]
    fn short_numbers_are_truncated_errors() {
        let err = u32::read(&[1, 2]).unwrap_err();
        assert!(
            matches!(err, nom::Err::Error(e) if e.kind == WireErrorKind::Truncated && e.remaining == 2)
        );
    }

    #[test]
    fn huge_count_does_not_allocate_or_panic() {
        let body = [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];
        assert!(counted_u32::read::<Guid>(&body).is_err());
    }

    #[test]
    fn guid_parts() {
        let item = Guid::item(77);
        assert_eq!(item.0, 0x4000_0000_0000_004D);
        assert_eq!(item.low(), 77);
        assert!(!item.is_player());
        assert!(Guid::player(5).is_player());
    }
}
