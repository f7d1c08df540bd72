//! The `memory_limiter`: admission control before a request body is decoded, with the
//! OpenTelemetry Collector's keys (`check_interval`, `limit_mib`, `spike_limit_mib`,
//! `limit_percentage`, `spike_limit_percentage`).
//!
//! The Collector measures its Go heap at every `check_interval` and refuses data while it is above
//! the soft limit (`limit - spike`). spanpipe has no garbage collector and no heap statistic, so it
//! measures what the kernel charges: the resident set size (`/proc/self/statm`) at every check.
//! Between checks memory grows by what is admitted, which the last measurement cannot show, so the
//! estimate is the last measurement plus the bytes admitted since then and still held:
//! `rss_at_check + (in_flight_now - in_flight_at_check)` (bytes already held at the check are in
//! the RSS; counting them again would refuse too early). A receiver asks before it reads a body
//! ([`MemoryLimiter::admit`] with the body size); the answer is a [`Permit`] that gives the bytes
//! back when dropped, or [`Refused`], which the receiver turns into the OTLP retryable answer
//! (HTTP 429/503 with Retry-After, gRPC RESOURCE_EXHAUSTED/UNAVAILABLE).
//!
//! Percentage limits are of the memory the process may use: the cgroup v2 `memory.max` (v1
//! `memory.limit_in_bytes`), or when that is unlimited the machine's `MemTotal`, as the Collector
//! computes it. One limiter serves every core: its state is a few atomics, and `admit` is one
//! atomic add (and a subtract when refusing).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{ComponentConfig, FieldError, GoDuration};

const MIB: u64 = 1024 * 1024;

/// Config of the `memory_limiter` processor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimiterConfig {
    /// Time between measurements of memory use; must be set (the Collector recommends 1s).
    /// Defaults to 0s, which is refused.
    #[serde(default)]
    pub check_interval: GoDuration,
    /// Most memory the process should use, in MiB; takes precedence over `limit_percentage`.
    /// Defaults to 0 (use `limit_percentage`).
    #[serde(default)]
    pub limit_mib: u32,
    /// Headroom below `limit_mib` for growth between measurements, in MiB; data is refused above
    /// `limit_mib - spike_limit_mib`. Must be below `limit_mib`. Defaults to 0, meaning 20% of the
    /// limit.
    #[serde(default)]
    pub spike_limit_mib: u32,
    /// Most memory the process should use, in percent of the memory available to it (cgroup
    /// `memory.max`, else the machine's). Used when `limit_mib` is 0. Defaults to 0.
    #[serde(default)]
    pub limit_percentage: u32,
    /// Headroom for growth between measurements, in percent of the available memory. Must be
    /// below `limit_percentage`. Defaults to 0, meaning 20% of the limit.
    #[serde(default)]
    pub spike_limit_percentage: u32,
}

impl ComponentConfig for MemoryLimiterConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.check_interval.0.is_zero() {
            errors.push(FieldError::new("check_interval", "must be greater than zero (for example \"1s\")"));
        }
        if self.limit_mib == 0 && self.limit_percentage == 0 {
            errors.push(FieldError::new("limit_mib", "set `limit_mib` or `limit_percentage` above zero"));
        }
        for (key, value) in
            [("limit_percentage", self.limit_percentage), ("spike_limit_percentage", self.spike_limit_percentage)]
        {
            if value > 100 {
                errors.push(FieldError::new(key, format!("{value} is over 100 percent")));
            }
        }
        if self.limit_mib > 0 && self.spike_limit_mib >= self.limit_mib {
            errors.push(FieldError::new(
                "spike_limit_mib",
                format!("must be smaller than limit_mib ({})", self.limit_mib),
            ));
        }
        if self.limit_mib == 0 && self.limit_percentage > 0 && self.spike_limit_percentage >= self.limit_percentage {
            errors.push(FieldError::new(
                "spike_limit_percentage",
                format!("must be smaller than limit_percentage ({})", self.limit_percentage),
            ));
        }
        errors
    }
}

impl MemoryLimiterConfig {
    /// The limiter, reading memory through `reader`: [`ProcessMemory`] in production, anything
    /// else in tests. Call after [`ComponentConfig::validate`] found nothing.
    ///
    /// # Errors
    /// When a percentage limit is configured and the available memory cannot be read, or when the
    /// first measurement fails.
    pub fn build(&self, reader: Arc<dyn MemoryReader>) -> Result<MemoryLimiter, MemoryError> {
        let (limit, spike) = if self.limit_mib > 0 {
            (u64::from(self.limit_mib) * MIB, u64::from(self.spike_limit_mib) * MIB)
        } else {
            let available = reader.available_bytes()?;
            let percent = |value: u32| (u128::from(available) * u128::from(value) / 100) as u64;
            (percent(self.limit_percentage), percent(self.spike_limit_percentage))
        };
        let spike = if spike == 0 { limit / 5 } else { spike };
        let shared = Arc::new(Shared {
            hard_limit: limit,
            soft_limit: limit.saturating_sub(spike),
            resident_at_check: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            in_flight_at_check: AtomicU64::new(0),
            refused_requests: AtomicU64::new(0),
            refused_bytes: AtomicU64::new(0),
        });
        let limiter = MemoryLimiter { shared, reader, check_interval: self.check_interval.0 };
        limiter.check()?;
        Ok(limiter)
    }
}

/// Reads how much memory the process uses and may use.
pub trait MemoryReader: Send + Sync + fmt::Debug {
    /// Bytes the process uses now (resident set size).
    ///
    /// # Errors
    /// When the measurement cannot be read.
    fn resident_bytes(&self) -> Result<u64, MemoryError>;

    /// Bytes the process may use: its cgroup's limit, else the machine's memory.
    ///
    /// # Errors
    /// When neither can be read.
    fn available_bytes(&self) -> Result<u64, MemoryError>;
}

/// Why memory could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A file did not hold what was expected.
    #[error("cannot parse {path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// The process's memory as Linux reports it: RSS from `/proc/self/statm`; the limit from the
/// cgroup v2 `memory.max` of the process's cgroup (or v1 `memory.limit_in_bytes`), else
/// `MemTotal` of `/proc/meminfo` when the cgroup sets no limit.
#[derive(Clone, Debug)]
pub struct ProcessMemory {
    proc_dir: PathBuf,
    cgroup_root: PathBuf,
    page_size: u64,
}

impl Default for ProcessMemory {
    fn default() -> Self {
        Self::new("/proc", "/sys/fs/cgroup")
    }
}

/// cgroup v1 writes this (the largest page-aligned `i64`) for "no limit".
const CGROUP_V1_UNLIMITED: u64 = 9_223_372_036_854_771_712;

fn read(path: &Path) -> Result<String, MemoryError> {
    fs::read_to_string(path).map_err(|source| MemoryError::Read { path: path.to_owned(), source })
}

fn parse_error(path: &Path, detail: impl Into<String>) -> MemoryError {
    MemoryError::Parse { path: path.to_owned(), detail: detail.into() }
}

impl ProcessMemory {
    /// Reads from `proc_dir` (normally `/proc`) and `cgroup_root` (normally `/sys/fs/cgroup`).
    #[must_use]
    pub fn new(proc_dir: impl Into<PathBuf>, cgroup_root: impl Into<PathBuf>) -> Self {
        Self { proc_dir: proc_dir.into(), cgroup_root: cgroup_root.into(), page_size: page_size() }
    }

    /// The cgroup's memory limit; `None` when it sets none.
    fn cgroup_limit(&self) -> Result<Option<u64>, MemoryError> {
        // cgroup v2: "0::/path" in /proc/self/cgroup, the limit in <root>/<path>/memory.max.
        let cgroup_file = self.proc_dir.join("self/cgroup");
        let own_path = read(&cgroup_file)
            .ok()
            .and_then(|text| text.lines().find_map(|line| line.strip_prefix("0::").map(str::to_owned)));
        let mut candidates = Vec::new();
        if let Some(own) = own_path {
            candidates.push(self.cgroup_root.join(own.trim_start_matches('/')).join("memory.max"));
        }
        candidates.push(self.cgroup_root.join("memory.max"));
        for path in candidates {
            if let Ok(text) = fs::read_to_string(&path) {
                let text = text.trim();
                if text == "max" {
                    return Ok(None);
                }
                return text.parse::<u64>().map(Some).map_err(|error| parse_error(&path, error.to_string()));
            }
        }
        let v1 = self.cgroup_root.join("memory/memory.limit_in_bytes");
        match fs::read_to_string(&v1) {
            Ok(text) => {
                let limit = text.trim().parse::<u64>().map_err(|error| parse_error(&v1, error.to_string()))?;
                Ok((limit < CGROUP_V1_UNLIMITED).then_some(limit))
            }
            Err(_) => Ok(None),
        }
    }

    fn machine_memory(&self) -> Result<u64, MemoryError> {
        let path = self.proc_dir.join("meminfo");
        let text = read(&path)?;
        let line =
            text.lines().find(|line| line.starts_with("MemTotal:")).ok_or_else(|| parse_error(&path, "no MemTotal"))?;
        let kib = line
            .split_whitespace()
            .nth(1)
            .and_then(|number| number.parse::<u64>().ok())
            .ok_or_else(|| parse_error(&path, format!("unreadable line {line:?}")))?;
        Ok(kib * 1024)
    }
}

impl MemoryReader for ProcessMemory {
    fn resident_bytes(&self) -> Result<u64, MemoryError> {
        let path = self.proc_dir.join("self/statm");
        let text = read(&path)?;
        let pages = text
            .split_whitespace()
            .nth(1)
            .and_then(|number| number.parse::<u64>().ok())
            .ok_or_else(|| parse_error(&path, format!("unreadable content {:?}", text.trim())))?;
        Ok(pages * self.page_size)
    }

    fn available_bytes(&self) -> Result<u64, MemoryError> {
        match self.cgroup_limit()? {
            Some(limit) => Ok(limit),
            None => self.machine_memory(),
        }
    }
}

/// The system's page size.
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|size| *size > 0).unwrap_or(4096)
}

#[derive(Debug)]
struct Shared {
    hard_limit: u64,
    soft_limit: u64,
    resident_at_check: AtomicU64,
    in_flight: AtomicU64,
    in_flight_at_check: AtomicU64,
    refused_requests: AtomicU64,
    refused_bytes: AtomicU64,
}

impl Shared {
    fn estimate(&self, in_flight: u64) -> u64 {
        let growth = in_flight.saturating_sub(self.in_flight_at_check.load(Ordering::Relaxed));
        self.resident_at_check.load(Ordering::Relaxed).saturating_add(growth)
    }
}

/// Admission control shared by every core. Cheap to clone; clones share the state.
#[derive(Clone, Debug)]
pub struct MemoryLimiter {
    shared: Arc<Shared>,
    reader: Arc<dyn MemoryReader>,
    check_interval: Duration,
}

/// Memory as the limiter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Estimated bytes in use: the last measurement plus what was admitted since.
    pub estimate: u64,
    /// Bytes of request bodies admitted and not yet released.
    pub in_flight: u64,
    /// Above this, data is refused (`limit - spike`).
    pub soft_limit: u64,
    /// The configured limit.
    pub hard_limit: u64,
    /// Requests refused since the limiter was built.
    pub refused_requests: u64,
    /// Bytes of those requests.
    pub refused_bytes: u64,
}

/// The limiter refused a request: the caller answers with a retryable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "memory limit reached: about {estimate} bytes in use with this request of {requested}, refusing above {soft_limit}"
)]
pub struct Refused {
    /// The size the caller asked for.
    pub requested: u64,
    /// Estimated memory in use had the request been admitted.
    pub estimate: u64,
    /// The soft limit.
    pub soft_limit: u64,
    /// When to suggest the client retries (`Retry-After`): the next measurement may change the
    /// answer.
    pub retry_after: Duration,
}

/// Bytes admitted by the limiter; they count as in use until this is dropped.
#[derive(Debug)]
#[must_use = "dropping the permit releases the bytes at once"]
pub struct Permit {
    shared: Arc<Shared>,
    bytes: u64,
}

impl Permit {
    /// The bytes this permit holds.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl MemoryLimiter {
    /// Asks to hold `bytes` more (a request body about to be read and decoded).
    ///
    /// # Errors
    /// [`Refused`] when the estimate with these bytes would pass the soft limit.
    pub fn admit(&self, bytes: u64) -> Result<Permit, Refused> {
        let shared = &self.shared;
        let in_flight = shared.in_flight.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        let estimate = shared.estimate(in_flight);
        if estimate > shared.soft_limit {
            shared.in_flight.fetch_sub(bytes, Ordering::Relaxed);
            shared.refused_requests.fetch_add(1, Ordering::Relaxed);
            shared.refused_bytes.fetch_add(bytes, Ordering::Relaxed);
            return Err(Refused {
                requested: bytes,
                estimate,
                soft_limit: shared.soft_limit,
                retry_after: self.check_interval,
            });
        }
        Ok(Permit { shared: Arc::clone(shared), bytes })
    }

    /// Measures memory; the runtime calls this every [`MemoryLimiter::check_interval`] (from any
    /// one thread).
    ///
    /// # Errors
    /// When the measurement fails; the previous one stays in force.
    pub fn check(&self) -> Result<MemoryUsage, MemoryError> {
        let resident = self.reader.resident_bytes()?;
        let shared = &self.shared;
        shared.in_flight_at_check.store(shared.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
        shared.resident_at_check.store(resident, Ordering::Relaxed);
        Ok(self.usage())
    }

    /// The current estimate and limits.
    #[must_use]
    pub fn usage(&self) -> MemoryUsage {
        let shared = &self.shared;
        let in_flight = shared.in_flight.load(Ordering::Relaxed);
        MemoryUsage {
            estimate: shared.estimate(in_flight),
            in_flight,
            soft_limit: shared.soft_limit,
            hard_limit: shared.hard_limit,
            refused_requests: shared.refused_requests.load(Ordering::Relaxed),
            refused_bytes: shared.refused_bytes.load(Ordering::Relaxed),
        }
    }

    /// How often [`MemoryLimiter::check`] should run.
    #[must_use]
    pub fn check_interval(&self) -> Duration {
        self.check_interval
    }
}
