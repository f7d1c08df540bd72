//! A writer killed with SIGKILL while appending as fast as it can leaves a log that reads
//! cleanly and takes the next append.
//!
//! The writer is this same test binary, re-executed with `CHILD_LOG_PATH_VAR` set: then the
//! `child_writer` test appends instead of returning at once. Each round kills the child at a
//! different moment, and the rounds share one file, so the log also has to come back after
//! every kill with sequences that keep growing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spanpipe_health::{HealthLog, HealthLogOptions, HealthLogReader, HealthRecord};

const CHILD_LOG_PATH_VAR: &str = "SPANPIPE_HEALTH_CRASH_CHILD_LOG";
const CHILD_SYNC_VAR: &str = "SPANPIPE_HEALTH_CRASH_CHILD_SYNC";
/// Small enough that the child wraps the ring many times before it is killed.
const CAPACITY: u64 = 16 * 1024;
/// Bounds the child's work if the parent never kills it.
const CHILD_MAX_APPENDS: u64 = 2_000_000;

fn options(sync: bool) -> HealthLogOptions {
    HealthLogOptions::new(CAPACITY).sync(sync)
}

#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_LOG_PATH_VAR) else {
        return;
    };
    let sync = std::env::var_os(CHILD_SYNC_VAR).is_some();
    let log = HealthLog::open_with(path, &options(sync)).unwrap();
    for i in 0..CHILD_MAX_APPENDS {
        // Varying sizes put frame boundaries, wraps and the kill everywhere in the ring.
        let record = HealthRecord::new("processors/plugin/redact", "cpu_budget", "breaker_open")
            .measured(format!("{}us", i % 997))
            .detail("x".repeat((i % 300) as usize));
        log.append(record).unwrap();
    }
}

fn spawn_writer(path: &Path, sync: bool) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_writer", "--exact", "--test-threads=1"])
        .env(CHILD_LOG_PATH_VAR, path)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if sync {
        command.env(CHILD_SYNC_VAR, "1");
    }
    command.spawn().unwrap()
}

/// Waits (bounded) until the child has appended past `sequence`, so each kill lands mid-stream.
fn wait_for_appends_after(path: &Path, sequence: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let past = HealthLogReader::open(path)
            .and_then(|reader| reader.records_after(sequence))
            .is_ok_and(|records| records.len() > 5);
        if past {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the child writer appended nothing past sequence {sequence} in 20 s");
}

#[test]
fn a_writer_killed_mid_append_leaves_a_log_that_reads_cleanly_and_appends() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("health.log");
    let mut last_sequence = 0;
    for round in 0..6u64 {
        let sync = round % 2 == 1;
        let mut child = spawn_writer(&path, sync);
        wait_for_appends_after(&path, last_sequence);
        std::thread::sleep(Duration::from_millis(round * 7));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 + CAPACITY, "round {round}");
        let log = HealthLog::open_with(&path, &options(false)).unwrap();
        let sequences: Vec<u64> = log.records().unwrap().iter().map(|record| record.sequence).collect();
        assert!(sequences.len() > 5, "round {round}: {sequences:?}");
        assert!(
            sequences.windows(2).all(|pair| pair[1] == pair[0] + 1),
            "round {round}: sequences must be one contiguous run, got {sequences:?}"
        );
        let newest = *sequences.last().unwrap();
        assert!(newest > last_sequence + 5, "round {round}: sequences went back from {last_sequence} to {newest}");

        let appended = log.append(HealthRecord::new("tests/crash", "kill", "reopen").detail(format!("round {round}")));
        assert_eq!(appended.unwrap(), newest + 1, "round {round}");
        let reread = log.records().unwrap();
        assert_eq!(reread.last().unwrap().detail.as_deref(), Some(format!("round {round}").as_str()));
        last_sequence = newest + 1;
    }
}
