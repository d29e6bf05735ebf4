//! `../shared/vectors/real-335a.tsv`: real 3.3.5a packets (a live AzerothCore
//! worldserver's frames, a real client's auth frames, one real session's encrypted
//! headers), read for tests; `None`, after saying so, where `../shared` is absent.

use std::path::PathBuf;

use tc9_codec::{Frame, Origin};

/// One row: id, direction, opcode, bytes, note.
#[derive(Debug, Clone)]
pub struct Vector {
    /// `H1`, `E3`, ...
    pub id: String,
    /// Who sent it.
    pub origin: Origin,
    /// The listed opcode.
    pub opcode: u32,
    /// The bytes (a whole frame for `H` rows, except where the note says otherwise).
    pub bytes: Vec<u8>,
    /// The note column.
    pub note: String,
}

impl Vector {
    /// The row as one whole frame, if it is one.
    pub fn frame(&self) -> Option<Frame> {
        Frame::parse(self.origin, &self.bytes).ok()
    }
}

/// The file's path beside this checkout.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/real-335a.tsv")
}

/// Every row, in file order.
pub fn real_335a() -> Option<Vec<Vector>> {
    let path = path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipped: {} is absent (no shared test data beside this checkout)",
            path.display()
        );
        return None;
    };
    let rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let hex = *cols.get(3)?;
            Some(Vector {
                id: cols[0].to_owned(),
                origin: if cols[1] == "S2C" {
                    Origin::Server
                } else {
                    Origin::Client
                },
                opcode: u32::from_str_radix(cols[2].trim_start_matches("0x"), 16).ok()?,
                bytes: (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect::<Option<Vec<u8>>>()?,
                note: cols.get(5).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    Some(rows)
}
