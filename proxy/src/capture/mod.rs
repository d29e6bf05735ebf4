//! Session captures: every frame a sidecar reads, in order, to a file per session.
//!
//! # File format, version 1
//!
//! All integers little-endian.
//!
//! ```text
//! magic      6 bytes  "TC9CAP"
//! version    u16      1
//! meta_len   u32      length of the metadata that follows
//! metadata   UTF-8    `key=value` lines (sidecar, session, peer, started_unix_ms, link_mode)
//! records    until end of file, each:
//!   direction u8      0 = client to server (gateway to worldserver), 1 = server to client
//!   micros    u64     time since the capture started
//!   length    u32     length of the frame
//!   frame     bytes   the frame as read: header (decrypted in wotlk-crypt mode) and body
//! ```
//!
//! With `capture_format = "pkt"` the files are WowPacketParser's PKT 3.1 instead
//! ([`pkt`]); [`Capture::parse`] reads both.
//!
//! A capture holds what arrived, before the sidecar decided anything, so replaying it
//! through a sidecar reproduces the session. Bytes of a session copied opaquely (no
//! session key, or a header that could not be framed) are not captured.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tc9_codec::{Frame, FrameCodec, Origin};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;
use tracing::warn;

pub mod pkt;

/// The file format captures are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureFormat {
    /// The sidecar's own format (above), `.tc9cap`.
    #[default]
    Tc9cap,
    /// WowPacketParser's PKT 3.1, `.pkt`.
    Pkt,
}

/// The first bytes of every capture.
pub const MAGIC: &[u8; 6] = b"TC9CAP";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Records queued toward the file before new ones are dropped (never block a session).
const QUEUE: usize = 4096;

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who sent the frame.
    pub origin: Origin,
    /// Time since the capture started.
    pub at: Duration,
    /// The frame.
    pub frame: Frame,
}

/// A capture read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The metadata lines, as `(key, value)`.
    pub meta: Vec<(String, String)>,
    /// The frames, in the order the sidecar read them.
    pub records: Vec<Record>,
}

/// A capture cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file is not a capture of a version this build reads.
    #[error("not a tc9 capture (version {VERSION}): {0}")]
    Format(String),
}

/// Encodes the file header. Line breaks inside values become spaces, so every
/// `key=value` stays on its line.
pub fn header(meta: &[(&str, String)]) -> Vec<u8> {
    let text: String = meta
        .iter()
        .map(|(k, v)| format!("{k}={}\n", v.replace(['\n', '\r'], " ")))
        .collect();
    let mut out = Vec::with_capacity(12 + text.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// Encodes one record of `frame`, a whole frame with its header in plain text.
pub fn record(origin: Origin, at: Duration, frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + frame.len());
    out.push(match origin {
        Origin::Client => 0,
        Origin::Server => 1,
    });
    out.extend_from_slice(&(at.as_micros() as u64).to_le_bytes());
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(frame);
    out
}

fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], CaptureError> {
    if input.len() < n {
        return Err(CaptureError::Format(format!("truncated {what}")));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

impl Capture {
    /// Parses a capture: the sidecar's format, or a PKT 3.1 file of one connection.
    pub fn parse(mut input: &[u8]) -> Result<Capture, CaptureError> {
        if input.starts_with(pkt::MAGIC) {
            return pkt::parse(input);
        }
        if take(&mut input, 6, "magic")? != MAGIC {
            return Err(CaptureError::Format("bad magic".into()));
        }
        let version =
            u16::from_le_bytes(take(&mut input, 2, "version")?.try_into().unwrap_or([0; 2]));
        if version != VERSION {
            return Err(CaptureError::Format(format!("version {version}")));
        }
        let meta_len = u32::from_le_bytes(
            take(&mut input, 4, "metadata length")?
                .try_into()
                .unwrap_or([0; 4]),
        );
        let meta_text = std::str::from_utf8(take(&mut input, meta_len as usize, "metadata")?)
            .map_err(|_| CaptureError::Format("metadata is not UTF-8".into()))?;
        let meta = meta_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut records = Vec::new();
        while !input.is_empty() {
            let origin = match take(&mut input, 1, "direction")?[0] {
                0 => Origin::Client,
                1 => Origin::Server,
                other => return Err(CaptureError::Format(format!("direction {other}"))),
            };
            let micros =
                u64::from_le_bytes(take(&mut input, 8, "time")?.try_into().unwrap_or([0; 8]));
            let len =
                u32::from_le_bytes(take(&mut input, 4, "length")?.try_into().unwrap_or([0; 4]));
            let bytes = take(&mut input, len as usize, "frame")?;
            let mut codec = FrameCodec::new(origin, origin.max_size_field());
            let mut buf = BytesMut::from(bytes);
            let frame = match codec.decode(&mut buf) {
                Ok(Some(frame)) if buf.is_empty() => frame,
                _ => {
                    return Err(CaptureError::Format(format!(
                        "record {} is not one {origin} frame",
                        records.len() + 1
                    )))
                }
            };
            records.push(Record {
                origin,
                at: Duration::from_micros(micros),
                frame,
            });
        }
        Ok(Capture { meta, records })
    }

    /// Reads a capture file.
    pub fn read(path: &Path) -> Result<Capture, CaptureError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)?.read_to_end(&mut bytes)?;
        Self::parse(&bytes)
    }

    /// Encodes the capture.
    pub fn to_bytes(&self) -> Vec<u8> {
        let meta: Vec<(&str, String)> = self
            .meta
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let mut out = header(&meta);
        for r in &self.records {
            out.extend(record(r.origin, r.at, r.frame.as_bytes()));
        }
        out
    }
}

/// Records one session's frames to a file, off the frame path.
#[derive(Debug, Clone)]
pub struct Recorder {
    started: Instant,
    queue: mpsc::Sender<Vec<u8>>,
    /// For PKT files: the connection id and each record's optional data.
    pkt: Option<(u32, std::sync::Arc<[u8]>)>,
}

impl Recorder {
    /// Starts the capture file of session `session` in `dir`, in `format`.
    pub fn start(
        dir: &Path,
        format: CaptureFormat,
        sidecar: &str,
        session: u64,
        peer: &str,
        link_mode: &str,
    ) -> Recorder {
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let meta = [
            ("sidecar", sidecar.to_owned()),
            ("session", session.to_string()),
            ("peer", peer.to_owned()),
            ("started_unix_ms", started_unix_ms.to_string()),
            ("link_mode", link_mode.to_owned()),
        ];
        let (extension, head, pkt) = match format {
            CaptureFormat::Tc9cap => ("tc9cap", header(&meta), None),
            CaptureFormat::Pkt => {
                let head = pkt::Header::sidecar((started_unix_ms / 1000) as u32, &meta);
                let peer_data = pkt::peer_data(peer).into();
                ("pkt", head.to_bytes(), Some((session as u32, peer_data)))
            }
        };
        let path: PathBuf = dir.join(format!("{sidecar}-{started_unix_ms}-{session}.{extension}"));
        let (queue, mut records) = mpsc::channel::<Vec<u8>>(QUEUE);
        tokio::spawn(async move {
            let file = match tokio::fs::File::create(&path).await {
                Ok(file) => file,
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot create capture file");
                    return;
                }
            };
            let mut out = BufWriter::new(file);
            let mut result = out.write_all(&head).await;
            while let (Ok(()), Some(record)) = (&result, records.recv().await) {
                result = out.write_all(&record).await;
            }
            if let Err(e) = result.and(out.flush().await) {
                warn!(path = %path.display(), error = %e, "capture file incomplete");
            }
        });
        Recorder {
            started: Instant::now(),
            queue,
            pkt,
        }
    }

    /// Queues one frame (whole, header in plain text); dropped (and counted) if the
    /// writer is behind.
    pub fn record(&self, origin: Origin, frame: &[u8]) {
        let at = self.started.elapsed();
        let bytes = match &self.pkt {
            None => record(origin, at, frame),
            Some((connection, data)) => {
                match pkt::record(origin, *connection, at.as_millis() as u32, data, frame) {
                    Some(bytes) => bytes,
                    None => return,
                }
            }
        };
        if self.queue.try_send(bytes).is_err() {
            metrics::counter!(crate::metrics::CAPTURE_DROPPED_TOTAL).increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tc9_codec::Opcode;

    #[test]
    fn round_trip() {
        let capture = Capture {
            meta: vec![("sidecar".into(), "A".into())],
            records: vec![
                Record {
                    origin: Origin::Client,
                    at: Duration::from_micros(5),
                    frame: Frame::new(Origin::Client, Opcode::CMSG_PETITION_SIGN, &[1; 9]).unwrap(),
                },
                Record {
                    origin: Origin::Server,
                    at: Duration::from_micros(70),
                    frame: Frame::new(Origin::Server, Opcode(0x1F6), &[2; 40_000]).unwrap(),
                },
            ],
        };
        let bytes = capture.to_bytes();
        assert_eq!(&bytes[..6], MAGIC);
        assert_eq!(Capture::parse(&bytes).unwrap(), capture);
        assert!(Capture::parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(Capture::parse(b"TC9CAP\x02\x00").is_err());
    }
}
