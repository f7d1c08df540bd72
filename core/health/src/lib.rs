//! spanpipe's health log: the auditable record of every self-healing action.
//!
//! When spanpipe heals itself (a plugin panicked and was restarted, a circuit breaker opened,
//! sampling was turned down under CPU pressure, an exporter failed over, a config reload was
//! refused) an operator later needs to know *what* happened, *why* (the measured value and the
//! threshold it crossed) and *what changed* (before and after). Each action is one
//! [`HealthRecord`], appended to `health.log` by [`HealthLog`] and read back by the
//! `spanpipe health` CLI through [`HealthLogReader`]. Components record through the
//! [`HealthSink`] trait, which never fails and never panics, and tests of other crates use
//! [`MemoryHealthSink`].
//!
//! # Why the file is a ring
//!
//! A self-healing loop that misfires may act thousands of times an hour; an audit trail that
//! grows with it would eventually fill the disk and become an outage of its own. The file is
//! therefore a fixed-size ring (16 MiB by default, [`DEFAULT_CAPACITY`]): it is created at its
//! full size and never grows, and when it is full the oldest records are overwritten. 16 MiB
//! holds on the order of 50 000 records, which is weeks of a healthy collector's history and
//! still hours of a misbehaving one's.
//!
//! # Format
//!
//! ```text
//! header (64 bytes):  magic "SPHEALTH" | version u32 = 1 | header length u32 = 64
//!                     | ring capacity u64 | crc32 of the preceding 24 bytes u32 | zero padding
//! ring (capacity bytes), a sequence of frames:
//!   frame:            magic 1e 'H' 'R' 1f | payload length u32 | crc32 u32 | sequence u64
//!                     | payload (the record as JSON)
//! ```
//!
//! All integers are little-endian. The choices, and what each one buys:
//!
//! - **Every frame carries its checksum and its sequence, and the checksum covers length,
//!   sequence and payload.** The reader does not trust any pointer to "the oldest record": it
//!   walks the whole ring, keeps the frames whose checksum holds and orders them by sequence.
//!   There is no head/tail index to update on every append, so there is no index to be torn by
//!   a crash: a frame that a crash cut short, or whose start was overwritten by a wrapping
//!   write, fails its checksum and is skipped, and the rest of the ring is still read.
//! - **The frame magic contains two ASCII control bytes**, which JSON never carries unescaped.
//!   When the reader steps through the remains of a damaged frame looking for the next one, it
//!   can't land on something inside a JSON payload that looks like a frame start.
//! - **Frames never straddle the end of the ring.** A frame that doesn't fit before the end goes
//!   to the start; the bytes it leaves at the end are zeroed first, because they hold records
//!   older than the ones the wrap is about to overwrite, and reading those back would put a gap
//!   in the sequence. So what is readable is always a contiguous suffix of what was written.
//! - **A frame may take at most a quarter of the ring**, so one oversized record
//!   ([`HealthLogError::RecordTooLarge`]) can't wipe out the history it is meant to extend.
//! - **Sequences are assigned by the log**, starting at 1, and continue from the newest record
//!   found at open, so they are monotonic across restarts and a follower can ask for
//!   [`HealthLog::records_after`] the last one it saw.
//! - **JSON payloads** keep the format open to new optional fields without a version bump, and
//!   make a hex dump of the file readable by a human, which matters for an audit trail.
//!
//! # What a crash guarantees
//!
//! Each append is one `pwrite` at the write position, followed by `fdatasync` unless
//! [`HealthLogOptions::sync`] is off. If the process dies (kill -9, panic, OOM) or the machine
//! loses power mid-write, the frame being written fails its checksum and is skipped; every
//! record whose append had returned is still read (after a power loss, only with `sync` on).
//! The next append overwrites the torn frame with the next sequence, which the lost record never
//! used. Creating and resizing the file build it beside the old one and rename it into place.
//!
//! # A file with another capacity
//!
//! When the configured capacity differs from the file's, [`HealthLog::open`] resizes: the records
//! that fit the new ring are carried over with their sequences and the previous file is kept as
//! `health.log.old`. A file that is not a health log, or whose header is damaged, is refused and
//! left alone.

mod error;
mod format;
mod record;
mod ring;
mod sink;

pub use error::HealthLogError;
pub use record::{format_line, HealthRecord};
pub use ring::{HealthLog, HealthLogOptions, HealthLogReader, DEFAULT_KEEP_LATEST};
pub use sink::{HealthSink, MemoryHealthSink};

/// Ring size when none is configured: 16 MiB.
pub const DEFAULT_CAPACITY: u64 = 16 * 1024 * 1024;
/// The smallest ring accepted: 1 KiB, room for a few short records.
pub const MIN_CAPACITY: u64 = 1024;
/// The largest ring accepted: 1 GiB. A read scans the whole ring in memory, and payload lengths
/// are 32-bit.
pub const MAX_CAPACITY: u64 = 1024 * 1024 * 1024;

fn check_capacity(capacity: u64) -> Result<(), HealthLogError> {
    if (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(HealthLogError::CapacityOutOfRange { capacity, min: MIN_CAPACITY, max: MAX_CAPACITY })
    }
}
