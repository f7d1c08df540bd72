//! The output file of the `file` exporter, with size-based rotation as the OpenTelemetry
//! Collector does it (through `timberjack`, its fork of `lumberjack`).
//!
//! - Before a write that would take the file past `max_megabytes`, the file is renamed to
//!   `<name>-<timestamp>-size<ext>` beside it (`<timestamp>` as Go's `2006-01-02T15-04-05.000`,
//!   UTC unless `localtime`), and a new file is opened. A record larger than the limit on its own
//!   goes into a fresh file whole (lumberjack refuses such writes; spanpipe does not drop data).
//! - After each rotation, backups beyond `max_backups` (newest kept) and backups older than
//!   `max_days` are deleted. Backups are recognised by their name: `lumberjack`'s form without the
//!   `-size` reason counts too, so a directory written by an older Collector is managed alike.
//! - With rotation on, an existing file is appended to (as lumberjack opens it); without rotation
//!   it is truncated unless `append` is set, as the Collector's plain file writer does.
//!
//! Two rotations within one millisecond would give the same name; the later one moves its
//! timestamp on by a millisecond rather than overwrite a backup.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

/// Go's `2006-01-02T15-04-05.000`, the backup time format of lumberjack and timberjack.
const BACKUP_TIME_FORMAT: &str = "%Y-%m-%dT%H-%M-%S%.3f";

/// The buffer in front of the file; `flush_interval` empties it.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// When and how the file rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate before a write would pass this size.
    pub max_bytes: u64,
    /// Keep at most this many backups; 0 keeps all.
    pub max_backups: usize,
    /// Delete backups older than this; `None` keeps them whatever their age.
    pub max_age: Option<Duration>,
    /// Name backups in local time instead of UTC.
    pub local_time: bool,
}

/// The file records are written to.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    writer: BufWriter<File>,
    size: u64,
    rotation: Option<RotationPolicy>,
}

/// Opens (creates) `path` for appending, emptying it first unless `keep` is set.
///
/// Every write goes to the end of the file (`O_APPEND`), even one that truncates at open: when
/// something else empties the file while it is being written — logrotate's `copytruncate`, an
/// operator's `: > file` — the next record lands at its new start. A plain write position, as
/// the Collector keeps without `append`, would go on from the old offset and leave the file a
/// hole of zero bytes before it. (`O_TRUNC` cannot be combined with `O_APPEND` in Rust's
/// `OpenOptions`, so emptying is a `set_len` after the open.)
fn open_appending(path: &Path, keep: bool) -> io::Result<File> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    if !keep {
        file.set_len(0)?;
    }
    Ok(file)
}

impl OutputFile {
    /// Opens (creates) `path`: appending with rotation or `append`, truncating otherwise.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path, append: bool, rotation: Option<RotationPolicy>) -> io::Result<Self> {
        let file = open_appending(path, append || rotation.is_some())?;
        let size = file.metadata()?.len();
        Ok(Self { path: path.to_owned(), writer: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file), size, rotation })
    }

    /// Bytes in the current file, buffered ones included.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes one record (already framed), rotating first if it would not fit.
    ///
    /// # Errors
    /// When writing, rotating or reopening fails. A failed rotation leaves the record unwritten.
    pub fn write_record(&mut self, record: &[u8], now: SystemTime) -> io::Result<()> {
        if let Some(policy) = self.rotation {
            let fits = |size: u64| size == 0 || size + record.len() as u64 <= policy.max_bytes;
            // The count is ours; the file may have been emptied under us since (`copytruncate`).
            // Before rotating, ask the file — once per rotation, not once per record.
            if !fits(self.size) {
                self.size = self.writer.get_ref().metadata()?.len() + self.writer.buffer().len() as u64;
            }
            if !fits(self.size) {
                self.rotate(policy, now)?;
            }
        }
        self.writer.write_all(record)?;
        self.size += record.len() as u64;
        Ok(())
    }

    /// Hands buffered bytes to the kernel.
    ///
    /// # Errors
    /// When the write fails.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    fn rotate(&mut self, policy: RotationPolicy, now: SystemTime) -> io::Result<()> {
        self.writer.flush()?;
        let backup = free_backup_name(&self.path, now, policy.local_time);
        std::fs::rename(&self.path, &backup)?;
        let file = open_appending(&self.path, false)?;
        self.writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        self.size = 0;
        if let Err(error) = remove_old_backups(&self.path, policy, now) {
            tracing::warn!(path = %self.path.display(), %error, "could not remove old backups after rotating");
        }
        Ok(())
    }
}

/// `dir`, `<name>` and `<ext>` of `path` as Go's `filepath` splits them.
fn name_parts(path: &Path) -> (PathBuf, String, String) {
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    match file_name.rfind('.') {
        Some(dot) => (dir, file_name[..dot].to_owned(), file_name[dot..].to_owned()),
        None => (dir, file_name, String::new()),
    }
}

fn format_time(at: SystemTime, local_time: bool) -> String {
    let utc: DateTime<Utc> = at.into();
    if local_time {
        utc.with_timezone(&Local).format(BACKUP_TIME_FORMAT).to_string()
    } else {
        utc.format(BACKUP_TIME_FORMAT).to_string()
    }
}

/// The backup name for a rotation at `at`: `<dir>/<name>-<timestamp>-size<ext>`.
#[must_use]
pub fn backup_name(path: &Path, at: SystemTime, local_time: bool) -> PathBuf {
    let (dir, name, ext) = name_parts(path);
    dir.join(format!("{name}-{}-size{ext}", format_time(at, local_time)))
}

fn free_backup_name(path: &Path, now: SystemTime, local_time: bool) -> PathBuf {
    let mut at = now;
    loop {
        let candidate = backup_name(path, at, local_time);
        if !candidate.exists() {
            return candidate;
        }
        at += Duration::from_millis(1);
    }
}

/// The time in a backup's name, if `file_name` is a backup of `name`/`ext` (with or without the
/// rotation reason).
fn backup_time(file_name: &str, name: &str, ext: &str, local_time: bool) -> Option<SystemTime> {
    let middle = file_name.strip_prefix(name)?.strip_prefix('-')?.strip_suffix(ext)?;
    let timestamp =
        ["-size", "-time", "-manual"].iter().find_map(|reason| middle.strip_suffix(reason)).unwrap_or(middle);
    let naive = NaiveDateTime::parse_from_str(timestamp, BACKUP_TIME_FORMAT).ok()?;
    let at = if local_time {
        Local.from_local_datetime(&naive).earliest()?.with_timezone(&Utc)
    } else {
        Utc.from_utc_datetime(&naive)
    };
    Some(at.into())
}

/// The backups of `path`, newest first.
pub fn backups(path: &Path, local_time: bool) -> io::Result<Vec<(SystemTime, PathBuf)>> {
    let (dir, name, ext) = name_parts(path);
    let listed = if dir.as_os_str().is_empty() { Path::new(".") } else { dir.as_path() };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(listed)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let file_name = entry.file_name();
        if let Some(at) = backup_time(&file_name.to_string_lossy(), &name, &ext, local_time) {
            found.push((at, entry.path()));
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    Ok(found)
}

fn remove_old_backups(path: &Path, policy: RotationPolicy, now: SystemTime) -> io::Result<()> {
    let oldest_kept = policy.max_age.and_then(|age| now.checked_sub(age));
    for (position, (at, backup)) in backups(path, policy.local_time)?.into_iter().enumerate() {
        let too_many = policy.max_backups > 0 && position >= policy.max_backups;
        let too_old = oldest_kept.is_some_and(|oldest| at < oldest);
        if too_many || too_old {
            std::fs::remove_file(&backup)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64, millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    }

    #[test]
    fn names_backups_as_timberjack_does() {
        let name = backup_name(Path::new("/var/log/spans.json"), at(1_714_489_200, 123), false);
        assert_eq!(name, Path::new("/var/log/spans-2024-04-30T15-00-00.123-size.json"));
        let no_ext = backup_name(Path::new("out"), at(0, 0), false);
        assert_eq!(no_ext, Path::new("out-1970-01-01T00-00-00.000-size"));
    }

    #[test]
    fn recognises_backups_with_and_without_the_reason() {
        let utc = |text| backup_time(text, "spans", ".json", false);
        assert_eq!(utc("spans-2024-04-30T15-00-00.123-size.json"), Some(at(1_714_489_200, 123)));
        assert_eq!(utc("spans-2024-04-30T15-00-00.123.json"), Some(at(1_714_489_200, 123)));
        assert_eq!(utc("spans.json"), None);
        assert_eq!(utc("spans-garbage.json"), None);
        assert_eq!(utc("other-2024-04-30T15-00-00.123.json"), None);
    }

    #[test]
    fn rotates_before_a_write_that_would_not_fit_and_keeps_max_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.json");
        let policy = RotationPolicy { max_bytes: 10, max_backups: 2, max_age: None, local_time: false };
        let mut file = OutputFile::open(&path, false, Some(policy)).unwrap();
        for (i, record) in [b"aaaaaa\n", b"bbbbbb\n", b"cccccc\n", b"dddddd\n"].iter().enumerate() {
            file.write_record(*record, at(100, i as u64)).unwrap();
        }
        file.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"dddddd\n");
        let kept = backups(&path, false).unwrap();
        let contents: Vec<_> = kept.iter().map(|(_, backup)| std::fs::read(backup).unwrap()).collect();
        assert_eq!(contents, [b"cccccc\n".to_vec(), b"bbbbbb\n".to_vec()], "newest two kept, oldest removed");
    }

    #[test]
    fn an_oversized_record_gets_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.json");
        let policy = RotationPolicy { max_bytes: 4, max_backups: 0, max_age: None, local_time: false };
        let mut file = OutputFile::open(&path, false, Some(policy)).unwrap();
        file.write_record(b"ab", at(1, 0)).unwrap();
        file.write_record(b"0123456789", at(1, 0)).unwrap();
        file.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
        assert_eq!(backups(&path, false).unwrap().len(), 1);
    }

    #[test]
    fn rotations_in_the_same_millisecond_do_not_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.json");
        let policy = RotationPolicy { max_bytes: 1, max_backups: 0, max_age: None, local_time: false };
        let mut file = OutputFile::open(&path, false, Some(policy)).unwrap();
        for record in [b"1", b"2", b"3", b"4"] {
            file.write_record(record, at(5, 5)).unwrap();
        }
        let mut contents: Vec<_> =
            backups(&path, false).unwrap().iter().map(|(_, backup)| std::fs::read(backup).unwrap()).collect();
        contents.sort();
        assert_eq!(contents, [b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
    }

    #[test]
    fn removes_backups_older_than_max_days() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.json");
        let old = backup_name(&path, at(0, 0), false);
        std::fs::write(&old, b"old").unwrap();
        let policy = RotationPolicy {
            max_bytes: 1,
            max_backups: 0,
            max_age: Some(Duration::from_secs(86_400)),
            local_time: false,
        };
        let mut file = OutputFile::open(&path, false, Some(policy)).unwrap();
        file.write_record(b"x", at(10 * 86_400, 0)).unwrap();
        file.write_record(b"y", at(10 * 86_400, 1)).unwrap();
        assert!(!old.exists(), "a ten-day-old backup is removed with max_days 1");
        assert_eq!(backups(&path, false).unwrap().len(), 1);
    }

    #[test]
    fn without_rotation_truncates_unless_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.json");
        std::fs::write(&path, b"previous\n").unwrap();
        let mut appending = OutputFile::open(&path, true, None).unwrap();
        appending.write_record(b"next\n", SystemTime::now()).unwrap();
        appending.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"previous\nnext\n");
        let mut truncating = OutputFile::open(&path, false, None).unwrap();
        truncating.write_record(b"only\n", SystemTime::now()).unwrap();
        truncating.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"only\n");
    }

    /// logrotate's `copytruncate` empties the file under the writer: the next record must start
    /// the emptied file, not follow a hole of zero bytes as long as what was there.
    #[test]
    fn a_file_emptied_by_someone_else_is_written_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.json");
        for (append, rotation) in [
            (false, None),
            (true, None),
            (false, Some(RotationPolicy { max_bytes: 1 << 20, max_backups: 0, max_age: None, local_time: false })),
        ] {
            let mut file = OutputFile::open(&path, append, rotation).unwrap();
            file.write_record(b"first record\n", SystemTime::now()).unwrap();
            file.flush().unwrap();
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
            file.write_record(b"second\n", SystemTime::now()).unwrap();
            file.flush().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"second\n", "append {append}, rotation {}", rotation.is_some());
            std::fs::remove_file(&path).unwrap();
        }
    }

    /// With rotation on, a file emptied under the writer is not rotated as if it were still full:
    /// the size is asked of the file before rotating.
    #[test]
    fn a_file_emptied_by_someone_else_is_not_rotated_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.json");
        let policy = RotationPolicy { max_bytes: 20, max_backups: 0, max_age: None, local_time: false };
        let mut file = OutputFile::open(&path, false, Some(policy)).unwrap();
        file.write_record(b"fifteen bytes!\n", at(1, 0)).unwrap();
        file.flush().unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        file.write_record(b"ten bytes\n", at(1, 1)).unwrap();
        file.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"ten bytes\n");
        assert!(backups(&path, false).unwrap().is_empty(), "nothing to rotate: the file held 0 bytes");
        file.write_record(b"another fifteen\n", at(1, 2)).unwrap();
        file.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"another fifteen\n", "a full file still rotates");
        assert_eq!(backups(&path, false).unwrap().len(), 1);
    }
}
