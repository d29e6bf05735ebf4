//! WowPacketParser's PKT 3.1, the format AzerothCore's own packet log writes
//! (`PacketLog.cpp`; read by WowPacketParser's `BinaryPacketReader.cs`).
//!
//! All integers little-endian.
//!
//! ```text
//! magic        3 bytes   "PKT"
//! version      u16       0x0301
//! sniffer      u8        'T' (the TrinityCore/AzerothCore logger)
//! build        u32       12340
//! locale       4 bytes   "enUS"
//! session key  40 bytes  zeros from AzerothCore
//! start time   u32       unix seconds
//! start ticks  u32       milliseconds, a monotonic clock
//! opt_len      u32       then that many bytes of optional data
//! records      until end of file, each:
//!   direction  4 bytes   "CMSG" or "SMSG"
//!   connection u32
//!   ticks      u32       arrival: start time + (ticks - start ticks) / 1000
//!   opt_len    u32
//!   data_len   u32
//!   optional   opt_len bytes (AzerothCore: a 16-byte IP and a u32 port)
//!   data       data_len bytes: u32 opcode, then the payload (decrypted, without the
//!              wire size field)
//! ```
//!
//! A frame converts by dropping its 4- or 6-byte header (5 for a large server
//! frame) and prefixing its opcode as a u32. In a [`Capture`], the file header and
//! the records' connection and optional data are kept as `pkt_*` metadata, so a
//! `.pkt` read into a capture writes back byte for byte.

use std::fmt::Write as _;
use std::time::Duration;

use tc9_codec::{Frame, Opcode, Origin};

use super::{Capture, CaptureError, Record};

/// The first bytes of a PKT file.
pub const MAGIC: &[u8; 3] = b"PKT";
/// The version this build reads and writes (3.1).
pub const VERSION: u16 = 0x0301;
/// WotLK 3.3.5a.
pub const BUILD: u32 = 12340;

/// The file header: what a sidecar writes, or what a file held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Who wrote it.
    pub sniffer: u8,
    /// Client build.
    pub build: u32,
    /// Client locale.
    pub locale: [u8; 4],
    /// Session key (zeros from AzerothCore and from the sidecar).
    pub session_key: [u8; 40],
    /// Unix seconds of the start.
    pub start_time: u32,
    /// Milliseconds of the start on the writer's clock.
    pub start_ticks: u32,
    /// Optional data (the sidecar writes its capture metadata here as text).
    pub optional: Vec<u8>,
}

impl Header {
    /// A sidecar's header, started at `start_time`, with `meta` as its optional data.
    pub fn sidecar(start_time: u32, meta: &[(&str, String)]) -> Header {
        let optional = meta.iter().fold(String::new(), |mut text, (k, v)| {
            let _ = writeln!(text, "{k}={}", v.replace(['\n', '\r'], " "));
            text
        });
        Header {
            sniffer: b'T',
            build: BUILD,
            locale: *b"enUS",
            session_key: [0; 40],
            start_time,
            start_ticks: 0,
            optional: optional.into_bytes(),
        }
    }

    /// The encoded header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(66 + self.optional.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(self.sniffer);
        out.extend_from_slice(&self.build.to_le_bytes());
        out.extend_from_slice(&self.locale);
        out.extend_from_slice(&self.session_key);
        out.extend_from_slice(&self.start_time.to_le_bytes());
        out.extend_from_slice(&self.start_ticks.to_le_bytes());
        out.extend_from_slice(&(self.optional.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.optional);
        out
    }
}

/// The 20 optional bytes AzerothCore writes with each record: the peer's address
/// as 16 bytes (IPv4 in the first four) and its port.
pub fn peer_data(peer: &str) -> Vec<u8> {
    let mut out = vec![0u8; 20];
    if let Ok(addr) = peer.parse::<std::net::SocketAddr>() {
        match addr.ip() {
            std::net::IpAddr::V4(ip) => out[..4].copy_from_slice(&ip.octets()),
            std::net::IpAddr::V6(ip) => out[..16].copy_from_slice(&ip.octets()),
        }
        out[16..].copy_from_slice(&u32::from(addr.port()).to_le_bytes());
    }
    out
}

/// One record of `frame` (a whole frame, header in plain text); `None` if the
/// bytes are not one frame of `origin`.
pub fn record(
    origin: Origin,
    connection: u32,
    ticks: u32,
    optional: &[u8],
    frame: &[u8],
) -> Option<Vec<u8>> {
    let frame = Frame::parse(origin, frame).ok()?;
    let mut out = Vec::with_capacity(24 + optional.len() + frame.body().len());
    out.extend_from_slice(match origin {
        Origin::Client => b"CMSG",
        Origin::Server => b"SMSG",
    });
    out.extend_from_slice(&connection.to_le_bytes());
    out.extend_from_slice(&ticks.to_le_bytes());
    out.extend_from_slice(&(optional.len() as u32).to_le_bytes());
    out.extend_from_slice(&(4 + frame.body().len() as u32).to_le_bytes());
    out.extend_from_slice(optional);
    out.extend_from_slice(&frame.opcode().0.to_le_bytes());
    out.extend_from_slice(frame.body());
    Some(out)
}

fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], CaptureError> {
    if input.len() < n {
        return Err(CaptureError::Format(format!("truncated PKT {what}")));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn u32_of(input: &mut &[u8], what: &str) -> Result<u32, CaptureError> {
    let bytes = take(input, 4, what)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Result<Vec<u8>, CaptureError> {
    let bad = || CaptureError::Format(format!("not hex: {text:?}"));
    if text.len() % 2 != 0 {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}

/// Parses a PKT 3.1 file of one connection into a capture, keeping what a PKT
/// file holds beyond the frames as `pkt_*` metadata.
pub fn parse(mut input: &[u8]) -> Result<Capture, CaptureError> {
    if take(&mut input, 3, "magic")? != MAGIC {
        return Err(CaptureError::Format("not a PKT file".into()));
    }
    let version = take(&mut input, 2, "version")?;
    let version = u16::from_le_bytes([version[0], version[1]]);
    if version != VERSION {
        return Err(CaptureError::Format(format!(
            "PKT version {version:#06x}; this build reads 3.1"
        )));
    }
    let sniffer = take(&mut input, 1, "sniffer id")?[0];
    let build = u32_of(&mut input, "build")?;
    let locale = take(&mut input, 4, "locale")?.to_vec();
    let session_key = take(&mut input, 40, "session key")?.to_vec();
    let start_time = u32_of(&mut input, "start time")?;
    let start_ticks = u32_of(&mut input, "start ticks")?;
    let opt_len = u32_of(&mut input, "optional length")? as usize;
    let optional = take(&mut input, opt_len, "optional data")?.to_vec();
    let mut meta = vec![
        ("format".to_owned(), "pkt".to_owned()),
        ("pkt_sniffer".to_owned(), sniffer.to_string()),
        ("pkt_build".to_owned(), build.to_string()),
        ("pkt_locale".to_owned(), hex(&locale)),
        ("pkt_session_key".to_owned(), hex(&session_key)),
        ("pkt_start_time".to_owned(), start_time.to_string()),
        ("pkt_start_ticks".to_owned(), start_ticks.to_string()),
        ("pkt_header_data".to_owned(), hex(&optional)),
    ];
    let mut records = Vec::new();
    let mut connection: Option<(u32, Vec<u8>)> = None;
    while !input.is_empty() {
        let origin = match take(&mut input, 4, "direction")? {
            b"CMSG" => Origin::Client,
            b"SMSG" => Origin::Server,
            other => return Err(CaptureError::Format(format!("record direction {other:?}"))),
        };
        let conn = u32_of(&mut input, "connection")?;
        let ticks = u32_of(&mut input, "ticks")?;
        let opt_len = u32_of(&mut input, "record optional length")? as usize;
        let data_len = u32_of(&mut input, "record data length")? as usize;
        let optional = take(&mut input, opt_len, "record optional data")?.to_vec();
        let mut data = take(&mut input, data_len, "record data")?;
        let opcode = u32_of(&mut data, "opcode")?;
        match &connection {
            None => connection = Some((conn, optional)),
            Some(first) if *first == (conn, optional.clone()) => {}
            Some(_) => {
                return Err(CaptureError::Format(format!(
                    "record {} is of another connection: convert one connection at a time",
                    records.len() + 1
                )))
            }
        }
        let frame = Frame::new(origin, Opcode(opcode), data)
            .map_err(|e| CaptureError::Format(format!("record {}: {e}", records.len() + 1)))?;
        records.push(Record {
            origin,
            at: Duration::from_millis(u64::from(ticks.wrapping_sub(start_ticks))),
            frame,
        });
    }
    if let Some((conn, optional)) = connection {
        meta.push(("pkt_connection".to_owned(), conn.to_string()));
        meta.push(("pkt_record_data".to_owned(), hex(&optional)));
    }
    Ok(Capture { meta, records })
}

/// Encodes `capture` as PKT 3.1: what a PKT file held comes back from its `pkt_*`
/// metadata; a sidecar capture gets a sidecar header (its metadata as the optional
/// data) and times rounded to milliseconds.
pub fn to_bytes(capture: &Capture) -> Result<Vec<u8>, CaptureError> {
    let get = |key: &str| {
        capture
            .meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &str| -> Result<Option<u32>, CaptureError> {
        get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| CaptureError::Format(format!("{key} = {v:?}")))
            })
            .transpose()
    };
    let header = match get("format") {
        Some("pkt") => Header {
            sniffer: number("pkt_sniffer")?.unwrap_or(u32::from(b'T')) as u8,
            build: number("pkt_build")?.unwrap_or(BUILD),
            locale: unhex(get("pkt_locale").unwrap_or("656e5553"))?
                .try_into()
                .map_err(|_| CaptureError::Format("pkt_locale".into()))?,
            session_key: unhex(get("pkt_session_key").unwrap_or(&"00".repeat(40)))?
                .try_into()
                .map_err(|_| CaptureError::Format("pkt_session_key".into()))?,
            start_time: number("pkt_start_time")?.unwrap_or(0),
            start_ticks: number("pkt_start_ticks")?.unwrap_or(0),
            optional: unhex(get("pkt_header_data").unwrap_or(""))?,
        },
        _ => {
            let started_ms: u64 = get("started_unix_ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let meta: Vec<(&str, String)> = capture
                .meta
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            Header::sidecar((started_ms / 1000) as u32, &meta)
        }
    };
    let connection = match number("pkt_connection")? {
        Some(conn) => conn,
        None => number("session")?.unwrap_or(0),
    };
    let optional = match get("pkt_record_data") {
        Some(data) => unhex(data)?,
        None => peer_data(get("peer").unwrap_or("")),
    };
    let mut out = header.to_bytes();
    for (n, r) in capture.records.iter().enumerate() {
        let ticks = header.start_ticks.wrapping_add(r.at.as_millis() as u32);
        let bytes = record(r.origin, connection, ticks, &optional, r.frame.as_bytes())
            .ok_or_else(|| CaptureError::Format(format!("record {} is not one frame", n + 1)))?;
        out.extend(bytes);
    }
    Ok(out)
}
