//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Why opening, reading or appending to a health log failed.
///
/// Callers that only want to *record* an event use [`crate::HealthSink`], which turns these into
/// a `tracing` warning; the variants exist for `open` (where a refusal must reach the operator)
/// and for the CLI.
#[derive(Debug, thiserror::Error)]
pub enum HealthLogError {
    /// A file-system call failed; `op` names the call so the message says what was attempted.
    #[error("health log {path}: {op} failed: {source}")]
    Io {
        /// The call that failed, e.g. `"open"`, `"pwrite"`, `"fdatasync"`.
        op: &'static str,
        /// The file it was made on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file exists but does not start with the health-log magic: it is not ours, so it is
    /// neither read nor overwritten.
    #[error("{path} is not a spanpipe health log (bad magic); move it away or set another health log path")]
    NotAHealthLog {
        /// The file.
        path: PathBuf,
    },
    /// The header's own checksum does not match: the header was damaged, and its capacity can't
    /// be trusted to find the records.
    #[error("{path}: the health log header is corrupt (checksum mismatch); move the file away to start a new log")]
    CorruptHeader {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a format version this build does not read.
    #[error("{path}: health log format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in its header.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The requested ring capacity is outside what the format supports.
    #[error("health log capacity {capacity} bytes is out of range: it must be between {min} and {max} bytes")]
    CapacityOutOfRange {
        /// What was asked for.
        capacity: u64,
        /// [`crate::MIN_CAPACITY`].
        min: u64,
        /// [`crate::MAX_CAPACITY`].
        max: u64,
    },
    /// A record whose frame would take more than a quarter of the ring: appending it would wipe
    /// out most of the history, so it is refused.
    #[error("health record of {frame_len} bytes is larger than the limit of {limit} bytes (a quarter of the ring)")]
    RecordTooLarge {
        /// The encoded frame's size.
        frame_len: u64,
        /// The largest frame this ring accepts.
        limit: u64,
    },
    /// The record could not be encoded as JSON.
    #[error("health record could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
    /// Another process (or another `HealthLog` in this one) holds the writer lock on the file.
    #[error(
        "{path} is already open for writing by another spanpipe process; give each collector its own health log path"
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
}

impl HealthLogError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: io::Error) -> Self {
        Self::Io { op, path: path.to_path_buf(), source }
    }
}
