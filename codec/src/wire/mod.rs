//! Wire primitives: how one field is read (with nom), written and described.
//!
//! Every field type of every message implements [`Wire`]. Bodies are little-endian,
//! strings are NUL-terminated UTF-8, guids are `u64`. Parsers never panic: short or
//! malformed input becomes a [`WireError`].

use std::fmt;

use nom::error::{ErrorKind, ParseError};
use nom::IResult;

mod lists;
mod values;

pub use lists::{counted_u32, counted_u8, describe_items, field_name, items_len, read_list};
pub use values::{Bytes, Guid, HexBytes, Rest};

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
    /// The length of every value of the type, when it never varies.
    const FIXED_LEN: Option<usize> = None;
    /// Reads one value from the front of `input`.
    fn read(input: &[u8]) -> WResult<'_, Self>;
    /// Appends the value's bytes to `out`.
    fn write(&self, out: &mut Vec<u8>);
    /// How many bytes [`write`](Wire::write) appends.
    fn wire_len(&self) -> usize;
    /// Describes the value under `name` (nested values add `.field` or `[i]`).
    fn describe(&self, name: &str, fields: &mut Fields);
}

/// The `N` bytes at the front of `input`: the one bounds check of every fixed-size
/// field. (nom's own number parsers add the bytes up one at a time.)
#[inline]
pub fn le_bytes<const N: usize>(input: &[u8]) -> WResult<'_, [u8; N]> {
    match input.split_first_chunk::<N>() {
        Some((bytes, rest)) => Ok((rest, *bytes)),
        None => Err(truncated(input)),
    }
}

/// The failure for a body that ends at `input`, kept off the fast path.
#[cold]
fn truncated(input: &[u8]) -> nom::Err<WireError> {
    nom::Err::Error(WireError::at(input, WireErrorKind::Truncated))
}

macro_rules! wire_number {
    ($($ty:ty),* $(,)?) => {$(
        impl Wire for $ty {
            const FIXED_LEN: Option<usize> = Some(size_of::<$ty>());
            #[inline]
            fn read(input: &[u8]) -> WResult<'_, Self> {
                let (rest, bytes) = le_bytes::<{ size_of::<$ty>() }>(input)?;
                Ok((rest, <$ty>::from_le_bytes(bytes)))
            }
            #[inline]
            fn write(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn wire_len(&self) -> usize {
                size_of::<$ty>()
            }
            fn describe(&self, name: &str, fields: &mut Fields) {
                fields.push(name, self);
            }
        }
    )*};
}

wire_number!(u8, u16, u32, u64, i32, f32);

/// The length of fields laid one after another, when every one is fixed.
pub const fn fixed_len(fields: &[Option<usize>]) -> Option<usize> {
    let mut total = 0;
    let mut i = 0;
    while i < fields.len() {
        match fields[i] {
            Some(len) => total += len,
            None => return None,
        }
        i += 1;
    }
    Some(total)
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
    fn fixed_lengths_add_up() {
        assert_eq!(<[u32; 5]>::FIXED_LEN, Some(20));
        assert_eq!(Guid::FIXED_LEN, Some(8));
        assert_eq!(String::FIXED_LEN, None);
        assert_eq!(<[String; 2]>::FIXED_LEN, None);
    }

    /// A list of fixed-size items reports a bad or missing item where it is, in
    /// the whole body, on the one-check path and the per-field path alike.
    #[test]
    fn list_errors_point_into_the_body() {
        // Two complete [u32; 2] items then 2 bytes of a third: the per-field path.
        let mut body = vec![3, 0, 0, 0];
        body.extend_from_slice(&[0; 18]);
        let err = counted_u32::read::<[u32; 2]>(&body).unwrap_err();
        assert!(
            matches!(err, nom::Err::Error(e) if e.kind == WireErrorKind::Truncated && e.remaining == 2)
        );
        // A value the item rejects, in the second of three: the one-check path.
        let mut body = vec![3, 0, 0, 0];
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&[9, 9]);
        let err = counted_u32::read::<Flag>(&body).unwrap_err();
        assert!(
            matches!(err, nom::Err::Error(e) if e.kind == WireErrorKind::Invalid("flag") && e.remaining == 18)
        );
    }

    /// A `u64` that must be 0 or 1: a fixed-size type whose reader can reject bytes.
    #[derive(Debug, Default)]
    struct Flag;

    impl Wire for Flag {
        const FIXED_LEN: Option<usize> = Some(8);
        fn read(input: &[u8]) -> WResult<'_, Self> {
            match u64::read(input)? {
                (rest, 0 | 1) => Ok((rest, Flag)),
                _ => WireError::invalid(input, "flag"),
            }
        }
        fn write(&self, _: &mut Vec<u8>) {}
        fn wire_len(&self) -> usize {
            8
        }
        fn describe(&self, _: &str, _: &mut Fields) {}
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
