//! The ring file: opening (creating, checking, resizing), appending, and reading back.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::format::{self, Header, HEADER_LEN};
use crate::sink::{lock, LatestRecords};
use crate::{check_capacity, HealthLogError, HealthRecord, HealthSink, DEFAULT_CAPACITY};

/// How many records [`HealthLog`] keeps in memory for [`HealthSink::latest`] unless told
/// otherwise.
pub const DEFAULT_KEEP_LATEST: usize = 100;

/// How a [`HealthLog`] is opened. Build with [`HealthLogOptions::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthLogOptions {
    /// Size of the ring region in bytes; the file is this plus a 64-byte header and never
    /// grows. Defaults to 16 MiB ([`DEFAULT_CAPACITY`]).
    pub capacity: u64,
    /// Whether each append waits for `fdatasync` before it returns. With it, a record whose
    /// append returned survives a power loss; without it, it survives a crash of the process
    /// (the bytes are in the kernel's page cache) but the last few may be lost with the machine.
    /// Health events are rare, so the sync is cheap. Defaults to `true`.
    pub sync: bool,
    /// How many of the most recent records are kept in memory for the `/status` page
    /// ([`HealthSink::latest`]). Defaults to 100 ([`DEFAULT_KEEP_LATEST`]).
    pub keep_latest: usize,
}

impl Default for HealthLogOptions {
    fn default() -> Self {
        Self { capacity: DEFAULT_CAPACITY, sync: true, keep_latest: DEFAULT_KEEP_LATEST }
    }
}

impl HealthLogOptions {
    /// The defaults, with a ring of `capacity` bytes.
    #[must_use]
    pub fn new(capacity: u64) -> Self {
        Self { capacity, ..Self::default() }
    }

    /// Sets [`HealthLogOptions::sync`].
    #[must_use]
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Sets [`HealthLogOptions::keep_latest`].
    #[must_use]
    pub fn keep_latest(mut self, keep_latest: usize) -> Self {
        self.keep_latest = keep_latest;
        self
    }
}

/// An open ring file and what its header says: the part the writer and the reader share.
#[derive(Debug)]
struct RingFile {
    file: File,
    path: PathBuf,
    capacity: u64,
}

impl RingFile {
    fn frames(&self) -> Result<Vec<format::ScannedFrame>, HealthLogError> {
        Ok(format::scan(&format::read_ring(&self.file, &self.path, self.capacity)?))
    }

    fn records_where(&self, keep: impl Fn(&HealthRecord) -> bool) -> Result<Vec<HealthRecord>, HealthLogError> {
        Ok(self.frames()?.into_iter().map(|frame| frame.record).filter(|record| keep(record)).collect())
    }
}

/// The writer's position: where the next frame goes and which sequence it gets.
#[derive(Debug)]
struct Writer {
    ring: RingFile,
    next_offset: u64,
    next_sequence: u64,
    sync: bool,
}

impl Writer {
    /// Creates a new, empty ring file at `path` (replacing any file there) and returns its
    /// writer. The caller renames it into place, so no reader ever sees a half-made header.
    fn create(path: &Path, capacity: u64, sync: bool) -> Result<Self, HealthLogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| HealthLogError::io("create", path, source))?;
        file.write_all_at(&Header { capacity }.encode(), 0)
            .map_err(|source| HealthLogError::io("pwrite", path, source))?;
        // set_len leaves the ring sparse and zeroed: zeroes hold no frame magic, so it reads as empty.
        file.set_len(HEADER_LEN + capacity).map_err(|source| HealthLogError::io("set_len", path, source))?;
        let writer = Self {
            ring: RingFile { file, path: path.to_path_buf(), capacity },
            next_offset: 0,
            next_sequence: 1,
            sync,
        };
        writer.sync_data()?;
        Ok(writer)
    }

    /// Writes `record` as the frame with `sequence` at the write position, wrapping to the start
    /// of the ring when it does not fit before the end.
    ///
    /// On wrap the unused tail is zeroed first (and synced, when syncing). The tail holds records
    /// older than every record about to be overwritten at the start of the ring; left there,
    /// they would be read back before a gap in the sequence. Zeroing it keeps the readable
    /// records exactly a suffix of what was written.
    ///
    /// The position moves only once the frame is written, so a failed write is retried at the
    /// same place with the same sequence by the next append.
    fn write(&mut self, record: &HealthRecord, sequence: u64) -> Result<(), HealthLogError> {
        let frame = format::encode_frame(record, sequence)?;
        let frame_len = frame.len() as u64;
        let limit = format::max_frame_len(self.ring.capacity);
        if frame_len > limit {
            return Err(HealthLogError::RecordTooLarge { frame_len, limit });
        }
        let mut offset = self.next_offset;
        if offset + frame_len > self.ring.capacity {
            let tail = vec![0u8; (self.ring.capacity - offset) as usize];
            self.pwrite(&tail, offset)?;
            self.sync_data()?;
            offset = 0;
        }
        self.pwrite(&frame, offset)?;
        self.sync_data()?;
        self.next_offset = offset + frame_len;
        self.next_sequence = sequence + 1;
        Ok(())
    }

    fn pwrite(&self, bytes: &[u8], ring_offset: u64) -> Result<(), HealthLogError> {
        self.ring
            .file
            .write_all_at(bytes, HEADER_LEN + ring_offset)
            .map_err(|source| HealthLogError::io("pwrite", &self.ring.path, source))
    }

    fn sync_data(&self) -> Result<(), HealthLogError> {
        if self.sync {
            self.ring.file.sync_data().map_err(|source| HealthLogError::io("fdatasync", &self.ring.path, source))?;
        }
        Ok(())
    }
}

/// The health log: an append-only record of self-healing actions in a fixed-size ring file.
///
/// One `HealthLog` per file: opening takes an exclusive `flock`, so a second writer (another
/// collector pointed at the same path) is refused with [`HealthLogError::Locked`] instead of
/// interleaving sequences. Readers ([`HealthLogReader`]) need no lock.
///
/// Appends are serialised by a mutex; the log is off the hot path, so one `pwrite` (and
/// `fdatasync`, see [`HealthLogOptions::sync`]) under a lock is cheap enough.
#[derive(Debug)]
pub struct HealthLog {
    writer: Mutex<Writer>,
    latest: LatestRecords,
}

impl HealthLog {
    /// Opens the log at `path` with a ring of `capacity` bytes and the default options; see
    /// [`HealthLog::open_with`].
    pub fn open(path: impl AsRef<Path>, capacity: u64) -> Result<Self, HealthLogError> {
        Self::open_with(path, &HealthLogOptions::new(capacity))
    }

    /// Opens the log at `path`, creating it if it is missing.
    ///
    /// An existing file is checked (magic, header checksum, version) and scanned to find where
    /// the next record goes and which sequence it gets. A file that is not a health log, or
    /// whose header is damaged, is refused with an error and left untouched.
    ///
    /// A file with a different capacity (the configured size changed) is resized: its records
    /// that fit the new ring are carried over with their sequences, so sequences stay monotonic,
    /// and the old file is kept as `<path>.old` for audit. The new file is built beside the old
    /// one and renamed over it, so a crash during the resize leaves one complete log at `path`.
    /// A record too large for the new ring (over a quarter of it) stays in `<path>.old` only,
    /// with a warning; if that was the newest record, sequences restart below its number, so
    /// shrink the ring only to sizes that still hold the records you write.
    pub fn open_with(path: impl AsRef<Path>, options: &HealthLogOptions) -> Result<Self, HealthLogError> {
        let path = path.as_ref();
        check_capacity(options.capacity)?;
        let ring = open_locked(path, options)?;
        let frames = ring.frames()?;
        let (next_offset, next_sequence) =
            frames.last().map_or((0, 1), |newest| (newest.offset + newest.len, newest.record.sequence + 1));
        let latest = LatestRecords::new(options.keep_latest);
        for frame in frames.into_iter().rev().take(options.keep_latest).rev() {
            latest.push(frame.record);
        }
        Ok(Self { writer: Mutex::new(Writer { ring, next_offset, next_sequence, sync: options.sync }), latest })
    }

    /// Appends `record`, returning the sequence it was given (its `sequence` field is ignored).
    ///
    /// When this returns `Ok`, the record is in the file (and on disk, if syncing). A record
    /// whose frame is larger than a quarter of the ring is refused with
    /// [`HealthLogError::RecordTooLarge`].
    pub fn append(&self, record: HealthRecord) -> Result<u64, HealthLogError> {
        let mut writer = lock(&self.writer);
        let sequence = writer.next_sequence;
        writer.write(&record, sequence)?;
        self.latest.push(HealthRecord { sequence, ..record });
        Ok(sequence)
    }

    /// Every record still in the ring, oldest first. Reads the file.
    pub fn records(&self) -> Result<Vec<HealthRecord>, HealthLogError> {
        lock(&self.writer).ring.records_where(|_| true)
    }

    /// The records at or after `since_unix_nano` (nanoseconds since the Unix epoch), oldest first.
    pub fn records_since(&self, since_unix_nano: u64) -> Result<Vec<HealthRecord>, HealthLogError> {
        lock(&self.writer).ring.records_where(|record| record.time_unix_nano >= since_unix_nano)
    }

    /// The records with a sequence greater than `sequence`, oldest first: poll this with the
    /// last sequence seen to follow the log. `records_after(0)` returns everything.
    pub fn records_after(&self, sequence: u64) -> Result<Vec<HealthRecord>, HealthLogError> {
        lock(&self.writer).ring.records_where(|record| record.sequence > sequence)
    }

    /// The sequence the next append will get.
    #[must_use]
    pub fn next_sequence(&self) -> u64 {
        lock(&self.writer).next_sequence
    }

    /// The ring's capacity in bytes.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        lock(&self.writer).ring.capacity
    }
}

impl HealthSink for HealthLog {
    fn record(&self, record: HealthRecord) {
        let (component, action) = (record.component.clone(), record.action.clone());
        if let Err(error) = self.append(record) {
            tracing::warn!(%error, %component, %action, "health record could not be written to the health log");
        }
    }

    fn latest(&self, n: usize) -> Vec<HealthRecord> {
        self.latest.latest(n)
    }
}

/// Opens (creating or resizing as needed) the ring file at `path` and takes the writer lock.
///
/// After locking, the file at `path` is checked to still be the one locked: a concurrent
/// creator or resizer may have renamed a new file over it meanwhile, and a lock on a replaced
/// file protects nothing. The retry is bounded; losing that race repeatedly means several
/// writers are fighting over the path, which is reported as [`HealthLogError::Locked`].
fn open_locked(path: &Path, options: &HealthLogOptions) -> Result<RingFile, HealthLogError> {
    const ATTEMPTS: usize = 4;
    for _ in 0..ATTEMPTS {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let writer = Writer::create(&temporary_sibling(path), options.capacity, options.sync)?;
                install(&writer.ring.path, path)?;
                continue;
            }
            Err(source) => return Err(HealthLogError::io("open", path, source)),
        };
        lock_exclusive(&file, path)?;
        if !is_file_at(&file, path)? {
            continue;
        }
        let header = Header::read(&file, path)?;
        if header.capacity != options.capacity {
            let old = RingFile { file, path: path.to_path_buf(), capacity: header.capacity };
            resize(&old, options)?;
            continue;
        }
        let expected_len = HEADER_LEN + header.capacity;
        let len = file.metadata().map_err(|source| HealthLogError::io("stat", path, source))?.len();
        if len != expected_len {
            // Truncated by hand or by a crash of some other tool, or grown by one: the ring's
            // size is the header's, whatever the file's length says.
            file.set_len(expected_len).map_err(|source| HealthLogError::io("set_len", path, source))?;
        }
        return Ok(RingFile { file, path: path.to_path_buf(), capacity: header.capacity });
    }
    Err(HealthLogError::Locked { path: path.to_path_buf() })
}

/// Builds a ring of the new capacity holding the old ring's records (those that fit, with their
/// sequences), keeps a copy of the old file at `<path>.old`, and renames the new ring over
/// `path`. `old` stays locked throughout, so no other writer appends meanwhile.
fn resize(old: &RingFile, options: &HealthLogOptions) -> Result<(), HealthLogError> {
    let frames = old.frames()?;
    let mut writer = Writer::create(&temporary_sibling(&old.path), options.capacity, false)?;
    for frame in frames {
        match writer.write(&frame.record, frame.record.sequence) {
            Ok(()) => {}
            Err(HealthLogError::RecordTooLarge { frame_len, limit }) => tracing::warn!(
                sequence = frame.record.sequence,
                frame_len,
                limit,
                "health record too large for the resized health log; it stays in the .old file only"
            ),
            Err(error) => return Err(error),
        }
    }
    writer.sync = options.sync;
    writer.sync_data()?;
    let old_copy = sibling(&old.path, "old");
    fs::copy(&old.path, &old_copy).map_err(|source| HealthLogError::io("copy", &old_copy, source))?;
    tracing::info!(
        path = %old.path.display(),
        old_capacity = old.capacity,
        new_capacity = options.capacity,
        "health log capacity changed: records carried over, previous file kept as {}",
        old_copy.display()
    );
    install(&writer.ring.path, &old.path)
}

/// Renames `from` over `to` and syncs the directory so the rename itself survives a crash.
fn install(from: &Path, to: &Path) -> Result<(), HealthLogError> {
    fs::rename(from, to).map_err(|source| HealthLogError::io("rename", to, source))?;
    let directory = to.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| HealthLogError::io("fsync directory", directory, source))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// A per-process name, so two processes creating the same log don't write one temporary file.
fn temporary_sibling(path: &Path) -> PathBuf {
    sibling(path, &format!("tmp.{}", std::process::id()))
}

fn lock_exclusive(file: &File, path: &Path) -> Result<(), HealthLogError> {
    // SAFETY: flock only reads the descriptor number, which `file` keeps open for the call.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::WouldBlock {
        Err(HealthLogError::Locked { path: path.to_path_buf() })
    } else {
        Err(HealthLogError::io("flock", path, error))
    }
}

fn is_file_at(file: &File, path: &Path) -> Result<bool, HealthLogError> {
    let opened = file.metadata().map_err(|source| HealthLogError::io("stat", path, source))?;
    match fs::metadata(path) {
        Ok(current) => Ok(current.dev() == opened.dev() && current.ino() == opened.ino()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(HealthLogError::io("stat", path, source)),
    }
}

/// Reads a health log without writing to it or locking it: for the `spanpipe health` CLI,
/// which runs beside a live collector.
///
/// Every call reads the file afresh, so a record appended meanwhile is seen on the next call; a
/// frame caught half-written fails its checksum and is simply not returned yet. A resize by the
/// writer replaces the file: reopen the reader to see the new one.
#[derive(Debug)]
pub struct HealthLogReader {
    ring: RingFile,
}

impl HealthLogReader {
    /// Opens the file read-only and checks its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HealthLogError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| HealthLogError::io("open", path, source))?;
        let header = Header::read(&file, path)?;
        Ok(Self { ring: RingFile { file, path: path.to_path_buf(), capacity: header.capacity } })
    }

    /// Every record in the ring, oldest first.
    pub fn records(&self) -> Result<Vec<HealthRecord>, HealthLogError> {
        self.ring.records_where(|_| true)
    }

    /// The records at or after `since_unix_nano`, oldest first.
    pub fn records_since(&self, since_unix_nano: u64) -> Result<Vec<HealthRecord>, HealthLogError> {
        self.ring.records_where(|record| record.time_unix_nano >= since_unix_nano)
    }

    /// The records with a sequence greater than `sequence`, oldest first (for `--follow`).
    pub fn records_after(&self, sequence: u64) -> Result<Vec<HealthRecord>, HealthLogError> {
        self.ring.records_where(|record| record.sequence > sequence)
    }

    /// The ring's capacity in bytes, from the header.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.ring.capacity
    }
}
