//! Admission control with an injected memory reading, limits from fake cgroup and proc files, and
//! permits shared across threads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spanpipe_config::{ComponentConfig, GoDuration};
use spanpipe_processors::{MemoryError, MemoryLimiterConfig, MemoryReader, ProcessMemory};

const MIB: u64 = 1024 * 1024;

/// Memory readings set by the test.
#[derive(Debug, Default)]
struct FakeMemory {
    resident: AtomicU64,
    available: u64,
}

impl MemoryReader for FakeMemory {
    fn resident_bytes(&self) -> Result<u64, MemoryError> {
        Ok(self.resident.load(Ordering::Relaxed))
    }

    fn available_bytes(&self) -> Result<u64, MemoryError> {
        Ok(self.available)
    }
}

fn config(limit_mib: u32, spike_limit_mib: u32) -> MemoryLimiterConfig {
    MemoryLimiterConfig {
        check_interval: GoDuration::from_secs(1),
        limit_mib,
        spike_limit_mib,
        ..MemoryLimiterConfig::default()
    }
}

#[test]
fn refuses_above_the_soft_limit_and_releases_on_drop() {
    let memory = Arc::new(FakeMemory { resident: AtomicU64::new(50 * MIB), ..FakeMemory::default() });
    // limit 100 MiB, spike 20 MiB: refuse above 80 MiB.
    let limiter = config(100, 20).build(memory.clone()).unwrap();
    assert_eq!(limiter.usage().soft_limit, 80 * MIB);
    let first = limiter.admit(20 * MIB).expect("50 + 20 MiB fits");
    let refused = limiter.admit(20 * MIB).expect_err("50 + 40 MiB does not");
    assert_eq!(refused.requested, 20 * MIB);
    assert_eq!(refused.estimate, 90 * MIB);
    assert_eq!(refused.retry_after, Duration::from_secs(1));
    assert_eq!(limiter.usage().in_flight, 20 * MIB, "a refusal holds nothing");
    drop(first);
    let second = limiter.admit(20 * MIB).expect("released bytes are available again");
    assert_eq!(second.bytes(), 20 * MIB);
    let usage = limiter.usage();
    assert_eq!((usage.refused_requests, usage.refused_bytes), (1, 20 * MIB));
}

#[test]
fn measurements_replace_the_estimate_without_counting_held_bytes_twice() {
    let memory = Arc::new(FakeMemory { resident: AtomicU64::new(10 * MIB), ..FakeMemory::default() });
    let limiter = config(100, 0).build(memory.clone()).unwrap();
    assert_eq!(limiter.usage().soft_limit, 80 * MIB, "spike defaults to 20% of the limit");
    let held = limiter.admit(30 * MIB).unwrap();
    assert_eq!(limiter.usage().estimate, 40 * MIB);
    // The next measurement sees the held bytes in the RSS.
    memory.resident.store(40 * MIB, Ordering::Relaxed);
    assert_eq!(limiter.check().unwrap().estimate, 40 * MIB);
    // Memory grows outside requests (say, queued batches): the next check refuses.
    memory.resident.store(85 * MIB, Ordering::Relaxed);
    limiter.check().unwrap();
    assert!(limiter.admit(1).is_err());
    drop(held);
    memory.resident.store(30 * MIB, Ordering::Relaxed);
    limiter.check().unwrap();
    assert!(limiter.admit(MIB).is_ok());
}

#[test]
fn concurrent_admissions_never_hold_more_than_the_soft_limit() {
    let memory = Arc::new(FakeMemory { resident: AtomicU64::new(0), ..FakeMemory::default() });
    let limiter = config(64, 0).build(memory).unwrap();
    let soft_limit = limiter.usage().soft_limit;
    let held = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (limiter, held) = (limiter.clone(), Arc::clone(&held));
            std::thread::spawn(move || {
                let mut permits = Vec::new();
                let mut refusals = 0;
                for round in 0..3_000 {
                    match limiter.admit(MIB) {
                        Ok(permit) => {
                            let now_held = held.fetch_add(permit.bytes(), Ordering::SeqCst) + permit.bytes();
                            assert!(now_held <= soft_limit, "{now_held} held over {soft_limit}");
                            permits.push(permit);
                        }
                        Err(_) => refusals += 1,
                    }
                    if round % 60 == 59 {
                        for permit in permits.drain(..) {
                            held.fetch_sub(permit.bytes(), Ordering::SeqCst);
                            drop(permit);
                        }
                    }
                }
                for permit in permits.drain(..) {
                    held.fetch_sub(permit.bytes(), Ordering::SeqCst);
                }
                refusals
            })
        })
        .collect();
    let refusals: u64 = threads.into_iter().map(|thread| thread.join().unwrap()).sum();
    assert!(refusals > 0, "holding up to 60 MiB passes the 51 MiB soft limit");
    assert_eq!(limiter.usage().in_flight, 0, "every permit gave its bytes back");
    assert_eq!(limiter.usage().refused_requests, refusals);
}

#[test]
fn percentage_limits_use_the_available_memory() {
    let memory = Arc::new(FakeMemory { resident: AtomicU64::new(0), available: 1000 * MIB });
    let limiter = MemoryLimiterConfig {
        check_interval: GoDuration::from_millis(100),
        limit_percentage: 80,
        spike_limit_percentage: 15,
        ..MemoryLimiterConfig::default()
    }
    .build(memory)
    .unwrap();
    let usage = limiter.usage();
    assert_eq!((usage.hard_limit, usage.soft_limit), (800 * MIB, 650 * MIB));
}

fn fake_system(cgroup_line: &str, memory_max: Option<(&str, &str)>, meminfo_kib: u64) -> (PathBuf, ProcessMemory) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("spanpipe-memory-{}-{unique}", std::process::id()));
    let proc_dir = root.join("proc");
    let cgroup = root.join("cgroup");
    fs::create_dir_all(proc_dir.join("self")).unwrap();
    fs::create_dir_all(&cgroup).unwrap();
    fs::write(proc_dir.join("self/cgroup"), format!("{cgroup_line}\n")).unwrap();
    fs::write(proc_dir.join("self/statm"), "2500 1200 300 10 0 900 0\n").unwrap();
    fs::write(proc_dir.join("meminfo"), format!("MemTotal:       {meminfo_kib} kB\nMemFree:        1 kB\n")).unwrap();
    if let Some((dir, value)) = memory_max {
        fs::create_dir_all(cgroup.join(dir)).unwrap();
        fs::write(cgroup.join(dir).join("memory.max"), value).unwrap();
    }
    (root, ProcessMemory::new(proc_dir, cgroup))
}

fn remove(root: &Path) {
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn reads_the_process_cgroup_limit_and_falls_back_to_machine_memory() {
    let (root, limited) = fake_system(
        "0::/system.slice/spanpipe.service",
        Some(("system.slice/spanpipe.service", "536870912\n")),
        4_000_000,
    );
    assert_eq!(limited.available_bytes().unwrap(), 512 * MIB);
    assert!(limited.resident_bytes().unwrap() >= 1200 * 4096 / 4, "1200 pages of the system's page size");
    remove(&root);
    let (root, unlimited) = fake_system("0::/", Some(("", "max\n")), 2_048);
    assert_eq!(unlimited.available_bytes().unwrap(), 2 * MIB);
    remove(&root);
    let (root, broken) = fake_system("0::/", Some(("", "lots\n")), 1);
    assert!(matches!(broken.available_bytes(), Err(MemoryError::Parse { .. })));
    remove(&root);
    let missing = ProcessMemory::new("/nonexistent-proc", "/nonexistent-cgroup");
    let error = missing.resident_bytes().unwrap_err();
    assert!(error.to_string().contains("/nonexistent-proc/self/statm"), "{error}");
}

#[test]
fn the_real_process_can_be_measured() {
    let memory = ProcessMemory::default();
    assert!(memory.resident_bytes().unwrap() > 0);
    assert!(memory.available_bytes().unwrap() > 0);
}

#[test]
fn validation_follows_the_collector() {
    let paths = |config: MemoryLimiterConfig| config.validate().into_iter().map(|error| error.path).collect::<Vec<_>>();
    assert_eq!(paths(MemoryLimiterConfig::default()), ["check_interval", "limit_mib"]);
    assert_eq!(paths(config(100, 100)), ["spike_limit_mib"]);
    let percentages = MemoryLimiterConfig {
        check_interval: GoDuration::from_secs(1),
        limit_percentage: 50,
        spike_limit_percentage: 50,
        ..MemoryLimiterConfig::default()
    };
    assert_eq!(paths(percentages), ["spike_limit_percentage"]);
    let over = MemoryLimiterConfig { limit_percentage: 101, ..config(0, 0) };
    assert_eq!(paths(over), ["limit_percentage"]);
    let parsed: MemoryLimiterConfig =
        serde_json::from_str(r#"{"check_interval": "1s", "limit_mib": 4000, "spike_limit_mib": 800}"#).unwrap();
    assert_eq!(parsed, config(4000, 800));
    let gc =
        serde_json::from_str::<MemoryLimiterConfig>(r#"{"min_gc_interval_when_soft_limited": "10s"}"#).unwrap_err();
    assert!(gc.to_string().contains("min_gc_interval_when_soft_limited"));
}
