//! The bytes on disk: the header, the frames, and the scan that finds the valid frames.
//!
//! Everything here is pure (bytes in, bytes out) so the writer, the read-only reader and the
//! tests share one definition of the format.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{HealthLogError, HealthRecord};

/// The first eight bytes of every health log.
pub(crate) const FILE_MAGIC: [u8; 8] = *b"SPHEALTH";
/// The only format version this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Bytes before the ring. Fixed, so the ring's offset never depends on the header's content.
pub(crate) const HEADER_LEN: u64 = 64;
/// The header fields covered by the header checksum: magic, version, header length, capacity.
const HEADER_CHECKED_LEN: usize = 24;

/// Marks the start of a frame. It holds two ASCII control bytes, which a JSON encoder never
/// writes unescaped, so the magic can't occur inside a payload: scanning the remains of an
/// overwritten frame never mistakes its payload for the start of another frame.
pub(crate) const FRAME_MAGIC: [u8; 4] = [0x1e, b'H', b'R', 0x1f];
/// magic (4) + payload length (4) + crc32 (4) + sequence (8).
pub(crate) const FRAME_HEADER_LEN: usize = 20;

/// What the header says about the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) capacity: u64,
}

impl Header {
    pub(crate) fn encode(self) -> [u8; HEADER_LEN as usize] {
        let mut bytes = [0u8; HEADER_LEN as usize];
        bytes[0..8].copy_from_slice(&FILE_MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&self.capacity.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..HEADER_CHECKED_LEN]);
        bytes[24..28].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads and checks the header of the file at `path`. A file shorter than a header is "not a
    /// health log" rather than an I/O error: it is most likely someone else's file.
    pub(crate) fn read(file: &File, path: &Path) -> Result<Self, HealthLogError> {
        let mut bytes = [0u8; HEADER_LEN as usize];
        let read = read_fully_at(file, &mut bytes, 0).map_err(|source| HealthLogError::io("read", path, source))?;
        if read < HEADER_LEN as usize || bytes[0..8] != FILE_MAGIC {
            return Err(HealthLogError::NotAHealthLog { path: path.to_path_buf() });
        }
        let stored_crc = u32::from_le_bytes(bytes[24..28].try_into().expect("4-byte slice"));
        if crc32fast::hash(&bytes[..HEADER_CHECKED_LEN]) != stored_crc {
            return Err(HealthLogError::CorruptHeader { path: path.to_path_buf() });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4-byte slice"));
        let header_len = u32::from_le_bytes(bytes[12..16].try_into().expect("4-byte slice"));
        if version != FORMAT_VERSION || u64::from(header_len) != HEADER_LEN {
            return Err(HealthLogError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let capacity = u64::from_le_bytes(bytes[16..24].try_into().expect("8-byte slice"));
        crate::check_capacity(capacity)?;
        Ok(Self { capacity })
    }
}

/// The largest frame a ring of `capacity` bytes accepts: a quarter of it, so one append never
/// erases more than a quarter of the history.
pub(crate) fn max_frame_len(capacity: u64) -> u64 {
    capacity / 4
}

/// Encodes `record` as a frame carrying `sequence` (which also replaces the record's own).
pub(crate) fn encode_frame(record: &HealthRecord, sequence: u64) -> Result<Vec<u8>, HealthLogError> {
    let record = HealthRecord { sequence, ..record.clone() };
    let payload = serde_json::to_vec(&record).map_err(HealthLogError::Encode)?;
    // The capacity limit is far below u32::MAX, so a payload this large is refused by the
    // caller's size check anyway; saturating keeps the arithmetic honest without a panic.
    let payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    frame.extend_from_slice(&FRAME_MAGIC);
    frame.extend_from_slice(&payload_len.to_le_bytes());
    frame.extend_from_slice(&frame_crc(payload_len, sequence, &payload).to_le_bytes());
    frame.extend_from_slice(&sequence.to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// The checksum covers the length and the sequence as well as the payload: a frame whose header
/// was half overwritten must fail it even when its payload survived.
fn frame_crc(payload_len: u32, sequence: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&payload_len.to_le_bytes());
    hasher.update(&sequence.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// A valid frame found in the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScannedFrame {
    /// Offset of the frame in the ring (0 = first byte after the header).
    pub(crate) offset: u64,
    /// The whole frame's length, header included.
    pub(crate) len: u64,
    pub(crate) record: HealthRecord,
}

/// Finds every valid frame in `ring` (the ring region's bytes), ordered by sequence: oldest first.
///
/// Walks the ring from its start. Where a valid frame starts, it is taken whole and the walk
/// jumps past it, so nothing inside a live payload is ever looked at. Anywhere else (unused
/// zeroes, the remains of an overwritten or torn frame) the walk moves to the next byte that
/// could start a frame magic. A frame counts only if its checksum matches and its payload
/// decodes; the JSON check is a second guard after the 32-bit checksum.
pub(crate) fn scan(ring: &[u8]) -> Vec<ScannedFrame> {
    let max_payload = usize::try_from(max_frame_len(ring.len() as u64)).unwrap_or(usize::MAX);
    let mut frames = Vec::new();
    let mut offset = 0usize;
    while offset + FRAME_HEADER_LEN <= ring.len() {
        match parse_frame_at(ring, offset, max_payload) {
            Some(frame) => {
                offset += frame.len as usize;
                frames.push(frame);
            }
            None => {
                offset = match ring[offset + 1..].iter().position(|&byte| byte == FRAME_MAGIC[0]) {
                    Some(distance) => offset + 1 + distance,
                    None => break,
                };
            }
        }
    }
    frames.sort_by_key(|frame| frame.record.sequence);
    frames
}

fn parse_frame_at(ring: &[u8], offset: usize, max_frame: usize) -> Option<ScannedFrame> {
    let header = &ring[offset..offset + FRAME_HEADER_LEN];
    if header[0..4] != FRAME_MAGIC {
        return None;
    }
    let payload_len = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let stored_crc = u32::from_le_bytes(header[8..12].try_into().ok()?);
    let sequence = u64::from_le_bytes(header[12..20].try_into().ok()?);
    let frame_len = FRAME_HEADER_LEN.checked_add(usize::try_from(payload_len).ok()?)?;
    if frame_len > max_frame || offset + frame_len > ring.len() {
        return None;
    }
    let payload = &ring[offset + FRAME_HEADER_LEN..offset + frame_len];
    if frame_crc(payload_len, sequence, payload) != stored_crc {
        return None;
    }
    let record: HealthRecord = serde_json::from_slice(payload).ok()?;
    Some(ScannedFrame {
        offset: offset as u64,
        len: frame_len as u64,
        // The frame's sequence is the checksummed one; the payload's copy is for JSON readers.
        record: HealthRecord { sequence, ..record },
    })
}

/// Reads the ring region of a file with the given capacity. Bytes missing from a short file
/// (truncated by hand, or by a crash while it was being created) read as zeroes: empty ring.
pub(crate) fn read_ring(file: &File, path: &Path, capacity: u64) -> Result<Vec<u8>, HealthLogError> {
    let len = usize::try_from(capacity)
        .map_err(|_| HealthLogError::io("read", path, std::io::Error::other("ring capacity does not fit in memory")))?;
    let mut ring = vec![0u8; len];
    read_fully_at(file, &mut ring, HEADER_LEN).map_err(|source| HealthLogError::io("read", path, source))?;
    Ok(ring)
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(detail: &str) -> HealthRecord {
        HealthRecord::new("processors/plugin/redact", "panic", "restart").at(1).detail(detail)
    }

    fn read_header(bytes: &[u8]) -> Result<Header, HealthLogError> {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(bytes, 0).unwrap();
        Header::read(&file, Path::new("health.log"))
    }

    #[test]
    fn header_round_trips_and_a_changed_field_is_refused() {
        let bytes = Header { capacity: 4096 }.encode();
        assert_eq!(&bytes[0..8], b"SPHEALTH");
        assert_eq!(read_header(&bytes).unwrap(), Header { capacity: 4096 });

        let mut flipped_capacity = bytes;
        flipped_capacity[17] ^= 1;
        assert!(matches!(read_header(&flipped_capacity), Err(HealthLogError::CorruptHeader { .. })));

        let mut next_version = bytes;
        next_version[8] = 2;
        let crc = crc32fast::hash(&next_version[..HEADER_CHECKED_LEN]);
        next_version[24..28].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(read_header(&next_version), Err(HealthLogError::UnsupportedVersion { found: 2, .. })));

        assert!(matches!(read_header(&bytes[..40]), Err(HealthLogError::NotAHealthLog { .. })));
    }

    #[test]
    fn json_payloads_never_contain_the_frame_magic() {
        let frame = encode_frame(&record("control bytes \u{1e}HR\u{1f} in a detail"), 9).unwrap();
        let payload = &frame[FRAME_HEADER_LEN..];
        assert!(!payload.windows(4).any(|window| window == FRAME_MAGIC));
    }

    #[test]
    fn scan_finds_frames_after_garbage_and_orders_them_by_sequence() {
        let mut ring = vec![0u8; 4096];
        let second = encode_frame(&record("second"), 2).unwrap();
        let first = encode_frame(&record("first"), 1).unwrap();
        ring[..second.len()].copy_from_slice(&second);
        ring[second.len()..second.len() + 7].copy_from_slice(&[0x1e, 1, 2, 3, 0x1e, b'H', b'R']);
        let at = second.len() + 7;
        ring[at..at + first.len()].copy_from_slice(&first);
        let sequences: Vec<u64> = scan(&ring).iter().map(|frame| frame.record.sequence).collect();
        assert_eq!(sequences, [1, 2]);
    }

    #[test]
    fn scan_rejects_a_frame_whose_sequence_was_changed() {
        let mut ring = vec![0u8; 4096];
        let frame = encode_frame(&record("x"), 5).unwrap();
        ring[..frame.len()].copy_from_slice(&frame);
        ring[12] ^= 0x01;
        assert!(scan(&ring).is_empty());
    }
}
