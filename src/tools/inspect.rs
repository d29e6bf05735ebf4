//! Human-readable views of packets, for the `decode` and `opcodes` commands.

use std::fmt::Write as _;

use tc9_codec::wire::HexBytes;
use tc9_codec::{decode_frame, DecodeError, Frame, FrameError, Origin};
use tc9_opcodes::TABLE;

/// Why a packet could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The input is not hexadecimal.
    #[error("invalid hex input: {0}")]
    Hex(#[from] hex::FromHexError),
    /// The bytes are not exactly one frame.
    #[error("not a single {origin} frame: {source}")]
    Frame {
        /// Which header format was expected.
        origin: Origin,
        /// The framing failure.
        source: FrameError,
    },
    /// The body does not match its opcode's layout.
    #[error(transparent)]
    Body(#[from] DecodeError),
}

/// Parses hex text (whitespace, `0x` prefixes and `:`/`-` separators allowed).
pub fn parse_hex<S: AsRef<str>>(parts: &[S]) -> Result<Vec<u8>, InspectError> {
    let mut digits = String::new();
    for part in parts {
        for word in part
            .as_ref()
            .split(|c: char| c.is_whitespace() || c == ':' || c == '-')
        {
            digits.push_str(word.strip_prefix("0x").unwrap_or(word));
        }
    }
    Ok(hex::decode(digits)?)
}

/// Describes one framed packet (header included, plain text) as `field = value` lines.
pub fn describe_packet(origin: Origin, bytes: &[u8]) -> Result<String, InspectError> {
    let frame =
        Frame::parse(origin, bytes).map_err(|source| InspectError::Frame { origin, source })?;
    let mut out = String::new();
    let opcode = frame.opcode();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "opcode = {opcode} (0x{:03X})", opcode.0);
    let _ = writeln!(out, "direction = {}", direction_name(origin));
    let _ = writeln!(out, "body_len = {}", frame.body().len());
    match decode_frame(&frame) {
        Some(decoded) => {
            let _ = write!(out, "{}", decoded?.fields());
        }
        None => {
            let _ = writeln!(out, "body = {}", HexBytes(frame.body()));
        }
    }
    Ok(out)
}

/// The CLI's name for a direction.
pub fn direction_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Client => "c2s",
        Origin::Server => "s2c",
    }
}

/// The opcode table, one opcode per line: value, name, direction, group.
pub fn opcode_table() -> String {
    let mut out = String::new();
    for row in TABLE {
        let _ = writeln!(
            out,
            "0x{:03X}  {:<32} {:<5} {}",
            row.opcode.0, row.name, row.direction, row.group
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_sign_packet() {
        let bytes = parse_hex(&["00 0D C0 01 00 00", "0700000000000040 01"]).unwrap();
        let text = describe_packet(Origin::Client, &bytes).unwrap();
        assert_eq!(
            text,
            "opcode = CMSG_PETITION_SIGN (0x1C0)\ndirection = c2s\nbody_len = 9\n\
             petition = 0x4000000000000007\nunk = 1\n"
        );
    }

    #[test]
    fn unknown_opcode_shows_the_body() {
        let bytes = parse_hex(&["0x0004", "3412", "beef"]).unwrap();
        let text = describe_packet(Origin::Server, &bytes).unwrap();
        assert!(
            text.starts_with("opcode = UNKNOWN_0x1234 (0x1234)\n"),
            "{text}"
        );
        assert!(text.ends_with("body = beef\n"), "{text}");
    }

    #[test]
    fn malformed_input_is_an_error() {
        let short_body = parse_hex(&["000A C0010000 070000000000"]).unwrap();
        let err = describe_packet(Origin::Client, &short_body).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed CMSG_PETITION_SIGN body (6 bytes): truncated body in the field at byte 0"
        );
        assert!(parse_hex(&["zz"]).is_err());
        let cut = parse_hex(&["0010 C0010000"]).unwrap();
        assert!(matches!(
            describe_packet(Origin::Client, &cut),
            Err(InspectError::Frame { .. })
        ));
    }

    #[test]
    fn table_lists_every_opcode() {
        let table = opcode_table();
        assert_eq!(table.lines().count(), TABLE.len());
        assert!(table.contains("0x1C3  CMSG_OFFER_PETITION"));
    }
}
