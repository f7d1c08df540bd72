//! The ring file's promises, checked through the public API: what is read back is exactly the
//! suffix of what was written that still fits, the file never grows, damaged frames are skipped,
//! and files that are not ours are left alone.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use proptest::prelude::*;
use spanpipe_health::{
    HealthLog, HealthLogError, HealthLogOptions, HealthLogReader, HealthRecord, HealthSink, DEFAULT_CAPACITY,
    MIN_CAPACITY,
};

const HEADER_LEN: u64 = 64;
const FRAME_HEADER_LEN: u64 = 20;

/// The frame size the documented format gives a record once it carries `sequence`.
fn frame_len(record: &HealthRecord, sequence: u64) -> u64 {
    let record = HealthRecord { sequence, ..record.clone() };
    FRAME_HEADER_LEN + serde_json::to_vec(&record).unwrap().len() as u64
}

fn options(capacity: u64) -> HealthLogOptions {
    // The file-format tests don't need the durability of fdatasync; the crash test covers it.
    HealthLogOptions::new(capacity).sync(false)
}

fn record(i: u64, detail_len: usize) -> HealthRecord {
    HealthRecord::new("processors/plugin/redact", "panic", "restart").at(1_000 + i).detail("d".repeat(detail_len))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Where each written record's frame sits, computed independently of the crate: frames go one
/// after another, and one that does not fit before the end of the ring goes to its start,
/// destroying whatever it (or the zeroed tail it leaves) overlaps.
#[derive(Debug)]
struct RingModel {
    capacity: u64,
    write_offset: u64,
    /// (offset, length, sequence) of every frame still intact.
    frames: Vec<(u64, u64, u64)>,
}

impl RingModel {
    fn append(&mut self, len: u64, sequence: u64) {
        if self.write_offset + len > self.capacity {
            self.destroy(self.write_offset, self.capacity);
            self.write_offset = 0;
        }
        self.destroy(self.write_offset, self.write_offset + len);
        self.frames.push((self.write_offset, len, sequence));
        self.write_offset += len;
    }

    fn destroy(&mut self, start: u64, end: u64) {
        self.frames.retain(|&(offset, len, _)| offset + len <= start || offset >= end);
    }

    fn sequences(&self) -> Vec<u64> {
        let mut sequences: Vec<u64> = self.frames.iter().map(|&(_, _, sequence)| sequence).collect();
        sequences.sort_unstable();
        sequences
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Box<HealthRecord>),
    Reopen,
}

fn text() -> impl Strategy<Value = String> {
    // Control bytes, quotes and non-ASCII exercise JSON escaping, and with it the frame lengths.
    "[ -~\\x1e\\x1f\"é]{0,60}"
}

fn health_record() -> impl Strategy<Value = HealthRecord> {
    (
        any::<u64>(),
        prop::sample::select(vec!["processors/plugin/redact", "exporters/otlp", "receivers/zipkin"]),
        prop::sample::select(vec!["panic", "cpu_budget", "cpu", "reload"]),
        text(),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(time, component, trigger, action, measured, before, detail)| {
            let mut record = HealthRecord::new(component, trigger, action).at(time);
            record.measured = measured;
            record.before = before;
            record.detail = detail;
            record
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![12 => health_record().prop_map(|record| Op::Append(Box::new(record))), 1 => Just(Op::Reopen)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reads_back_exactly_the_suffix_that_fits(capacity in MIN_CAPACITY..4096, ops in prop::collection::vec(op(), 1..120)) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("health.log");
        let mut log = HealthLog::open_with(&path, &options(capacity)).unwrap();
        let mut model = RingModel { capacity, write_offset: 0, frames: Vec::new() };
        let mut written = Vec::new();
        for op in ops {
            match op {
                Op::Append(record) => {
                    let sequence = written.len() as u64 + 1;
                    let len = frame_len(&record, sequence);
                    match log.append((*record).clone()) {
                        Ok(assigned) => {
                            prop_assert_eq!(assigned, sequence);
                            prop_assert!(len <= capacity / 4);
                            model.append(len, sequence);
                            written.push(HealthRecord { sequence, ..*record });
                        }
                        Err(HealthLogError::RecordTooLarge { frame_len, limit }) => {
                            prop_assert_eq!((frame_len, limit), (len, capacity / 4));
                        }
                        Err(error) => return Err(TestCaseError::fail(error.to_string())),
                    }
                }
                Op::Reopen => {
                    drop(log);
                    log = HealthLog::open_with(&path, &options(capacity)).unwrap();
                }
            }
            prop_assert_eq!(file_len(&path), HEADER_LEN + capacity);
        }
        drop(log);

        let expected_sequences = model.sequences();
        let kept = expected_sequences.len();
        // The model itself must describe a suffix, or the comparison below proves nothing.
        prop_assert_eq!(&expected_sequences[..], &(written.len() - kept + 1..=written.len()).map(|s| s as u64).collect::<Vec<_>>()[..]);
        let expected = &written[written.len() - kept..];

        let reader = HealthLogReader::open(&path).unwrap();
        prop_assert_eq!(&reader.records().unwrap()[..], expected);
        let reopened = HealthLog::open_with(&path, &options(capacity)).unwrap();
        prop_assert_eq!(&reopened.records().unwrap()[..], expected);
        prop_assert_eq!(reopened.next_sequence(), written.len() as u64 + 1);
    }
}

#[test]
fn wraps_around_without_growing_and_keeps_a_contiguous_newest_suffix() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let log = HealthLog::open_with(&path, &options(MIN_CAPACITY)).unwrap();
    for i in 0..200 {
        log.append(record(i, (i as usize * 7) % 90)).unwrap();
        assert_eq!(file_len(&path), HEADER_LEN + MIN_CAPACITY);
    }
    let sequences: Vec<u64> = log.records().unwrap().iter().map(|record| record.sequence).collect();
    assert_eq!(sequences.last(), Some(&200));
    assert!(sequences.windows(2).all(|pair| pair[1] == pair[0] + 1), "{sequences:?}");
    // Frames are at most 210 bytes here: at least half the ring's worth of the newest survive.
    assert!(sequences.len() >= 3, "{sequences:?}");
}

/// Appends `count` short records to a fresh big ring and returns where the last frame starts
/// and ends in the file.
fn log_with_records(path: &Path, count: u64) -> (u64, u64) {
    let log = HealthLog::open_with(path, &options(64 * 1024)).unwrap();
    let mut end = HEADER_LEN;
    let mut last_start = end;
    for i in 0..count {
        let record = record(i, 10);
        let sequence = log.append(record.clone()).unwrap();
        last_start = end;
        end += frame_len(&record, sequence);
    }
    (last_start, end)
}

fn assert_reopens_without_the_last_record_and_appends_over_it(path: &Path, count: u64) {
    let log = HealthLog::open_with(path, &options(64 * 1024)).unwrap();
    let sequences: Vec<u64> = log.records().unwrap().iter().map(|record| record.sequence).collect();
    assert_eq!(sequences, (1..count).collect::<Vec<_>>());
    assert_eq!(file_len(path), HEADER_LEN + 64 * 1024);
    assert_eq!(log.append(record(99, 3)).unwrap(), count);
    drop(log);
    let sequences: Vec<u64> =
        HealthLogReader::open(path).unwrap().records().unwrap().iter().map(|record| record.sequence).collect();
    assert_eq!(sequences, (1..=count).collect::<Vec<_>>());
}

#[test]
fn a_last_frame_cut_short_is_skipped_and_overwritten_by_the_next_append() {
    for cut in [1, 5, 19, 21, 40] {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("health.log");
        let (last_start, end) = log_with_records(&path, 10);
        assert!(end - cut > last_start);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(end - cut).unwrap();
        assert_reopens_without_the_last_record_and_appends_over_it(&path, 10);
    }
}

#[test]
fn a_last_frame_with_garbled_bytes_is_skipped_and_overwritten_by_the_next_append() {
    // Offsets into the frame: the magic, the length, the checksum, the sequence, the payload.
    for garbled in [0, 5, 9, 14, 30] {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("health.log");
        let (last_start, _) = log_with_records(&path, 10);
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, last_start + garbled).unwrap();
        file.write_all_at(&[byte[0] ^ 0x5a], last_start + garbled).unwrap();
        assert_reopens_without_the_last_record_and_appends_over_it(&path, 10);
    }
}

#[test]
fn a_damaged_frame_in_the_middle_costs_only_that_record() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    log_with_records(&path, 3);
    let second_frame = HEADER_LEN + frame_len(&record(0, 10), 1);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(b"\0\0\0\0\0\0\0\0\0\0", second_frame + 25)
        .unwrap();
    let sequences: Vec<u64> =
        HealthLogReader::open(&path).unwrap().records().unwrap().iter().map(|record| record.sequence).collect();
    assert_eq!(sequences, [1, 3]);
}

#[test]
fn sequences_continue_across_reopens() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    for round in 0..3 {
        let log = HealthLog::open_with(&path, &options(4096)).unwrap();
        assert_eq!(log.append(record(round, 1)).unwrap(), round * 2 + 1);
        assert_eq!(log.append(record(round, 2)).unwrap(), round * 2 + 2);
    }
}

#[test]
fn records_since_and_after_filter_by_time_and_sequence() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let log = HealthLog::open_with(&path, &options(4096)).unwrap();
    for i in 0..5 {
        log.append(record(i, 1)).unwrap();
    }
    let sequences = |records: Vec<HealthRecord>| records.iter().map(|record| record.sequence).collect::<Vec<_>>();
    assert_eq!(sequences(log.records_after(3).unwrap()), [4, 5]);
    assert_eq!(sequences(log.records_after(0).unwrap()), [1, 2, 3, 4, 5]);
    assert_eq!(sequences(log.records_since(1_003).unwrap()), [4, 5]);
    let reader = HealthLogReader::open(&path).unwrap();
    assert_eq!(reader.capacity(), 4096);
    assert_eq!(sequences(reader.records_after(4).unwrap()), [5]);
    assert_eq!(sequences(reader.records_since(1_001).unwrap()), [2, 3, 4, 5]);
}

#[test]
fn a_record_larger_than_a_quarter_of_the_ring_is_refused_and_the_log_goes_on() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let log = HealthLog::open_with(&path, &options(4096)).unwrap();
    let error = log.append(record(0, 1100)).unwrap_err();
    assert!(matches!(error, HealthLogError::RecordTooLarge { limit: 1024, .. }), "{error}");
    // Through the sink it is a warning, not a panic, and no sequence is used up.
    log.record(record(1, 1100));
    assert_eq!(log.append(record(2, 1)).unwrap(), 1);
    assert_eq!(log.records().unwrap().len(), 1);
}

#[test]
fn latest_is_seeded_from_the_file_and_follows_appends() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let log = HealthLog::open_with(&path, &options(4096).keep_latest(3)).unwrap();
    for i in 0..5 {
        log.record(record(i, 1));
    }
    drop(log);
    let log = HealthLog::open_with(&path, &options(4096).keep_latest(3)).unwrap();
    let sequences = |records: Vec<HealthRecord>| records.iter().map(|record| record.sequence).collect::<Vec<_>>();
    assert_eq!(sequences(log.latest(10)), [3, 4, 5]);
    log.record(record(5, 1));
    assert_eq!(sequences(log.latest(2)), [5, 6]);
}

#[test]
fn a_second_writer_on_the_same_file_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let _first = HealthLog::open_with(&path, &options(4096)).unwrap();
    let error = HealthLog::open_with(&path, &options(4096)).unwrap_err();
    assert!(matches!(error, HealthLogError::Locked { .. }), "{error}");
    HealthLogReader::open(&path).expect("readers need no lock");
}

#[test]
fn a_changed_capacity_carries_the_records_that_fit_over_and_keeps_the_old_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let log = HealthLog::open_with(&path, &options(8192)).unwrap();
    for i in 0..40 {
        log.append(record(i, 20)).unwrap();
    }
    let before = log.records().unwrap();
    drop(log);

    let log = HealthLog::open_with(&path, &options(2048)).unwrap();
    assert_eq!(file_len(&path), HEADER_LEN + 2048);
    let after = log.records().unwrap();
    assert!(!after.is_empty() && after.len() < before.len());
    assert_eq!(after[..], before[before.len() - after.len()..], "a suffix, sequences kept");
    assert_eq!(log.append(record(40, 1)).unwrap(), 41);

    let old = HealthLogReader::open(directory.path().join("health.log.old")).unwrap();
    assert_eq!(old.capacity(), 8192);
    assert_eq!(old.records().unwrap(), before);
}

#[test]
fn a_file_that_is_not_a_health_log_is_refused_and_left_alone() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    fs::write(&path, b"not a health log, just some text that is long enough to hold a header..").unwrap();
    let error = HealthLog::open_with(&path, &options(4096)).unwrap_err();
    assert!(matches!(error, HealthLogError::NotAHealthLog { .. }), "{error}");
    assert!(matches!(HealthLogReader::open(&path).unwrap_err(), HealthLogError::NotAHealthLog { .. }));
    assert_eq!(fs::read(&path).unwrap(), b"not a health log, just some text that is long enough to hold a header..");
}

#[test]
fn a_damaged_header_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    drop(HealthLog::open_with(&path, &options(4096)).unwrap());
    // Flip a bit of the capacity: trusting it would misplace every frame.
    OpenOptions::new().write(true).open(&path).unwrap().write_all_at(&[0x11], 17).unwrap();
    let error = HealthLog::open_with(&path, &options(4096)).unwrap_err();
    assert!(matches!(error, HealthLogError::CorruptHeader { .. }), "{error}");
}

#[test]
fn capacities_out_of_range_are_refused() {
    let directory = tempfile::tempdir().unwrap();
    let error = HealthLog::open(directory.path().join("health.log"), MIN_CAPACITY - 1).unwrap_err();
    assert!(matches!(error, HealthLogError::CapacityOutOfRange { .. }), "{error}");
    assert!(!directory.path().join("health.log").exists());
}

#[test]
fn the_default_sized_log_is_created_at_full_size_and_reads_back() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let log = HealthLog::open(&path, DEFAULT_CAPACITY).unwrap();
    assert_eq!(file_len(&path), HEADER_LEN + 16 * 1024 * 1024);
    assert_eq!(log.append(record(0, 10)).unwrap(), 1);
    drop(log);
    let records = HealthLogReader::open(&path).unwrap().records().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].detail.as_deref(), Some("dddddddddd"));
}
