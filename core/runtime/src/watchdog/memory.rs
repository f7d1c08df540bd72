//! The health watchdog's memory level: while the process's memory use is over a soft limit, every
//! receiver refuses new requests (HTTP 429, gRPC `RESOURCE_EXHAUSTED`) through one process-wide
//! [`AdmissionGate`]; once use falls under a lower mark the gate opens again. Data already
//! accepted keeps flowing to the exporters meanwhile, which is what frees the memory: admission
//! tightens before the hard limit, where the only way out would be dropping data or being killed.
//!
//! The decision is a pure state machine ([`MemoryPressure`]) fed with a used fraction, so tests
//! drive it by hand; the thread around it ([`start`]) measures the process (its resident set over
//! the memory it may use, as the `memory_limiter` processor reads them) or asks a [`MemoryProbe`].
//!
//! The level runs on a thread of its own rather than on the CPU level's: it has its own `enabled`
//! and `interval`, it must keep guarding memory when the CPU level is off (or has no sampler to
//! act on), and reading `/proc` and the cgroup never shifts the CPU level's measurement windows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spanpipe_config::MemoryWatchdogConfig;
use spanpipe_health::{HealthRecord, HealthSink};
use spanpipe_processors::{MemoryError, MemoryReader, ProcessMemory};
use spanpipe_transports::otlp::Refusal;

use crate::telemetry::{CoreSlot, Sample};

/// Where the watchdog's memory figure comes from instead of the process's own: a function
/// returning memory use (0 to 1 of what the process may use), or `None` when it has no figure.
#[derive(Clone)]
pub struct MemoryProbe(pub Arc<dyn Fn() -> Option<f64> + Send + Sync>);

impl std::fmt::Debug for MemoryProbe {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("MemoryProbe(..)")
    }
}

/// A change of the admission gate the watchdog decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Memory use went over the soft limit: refuse new requests.
    Tightened,
    /// Memory use fell under `restore_below`: accept requests again.
    Relaxed,
}

/// Decides when to close and open the admission gate, with hysteresis: it closes over
/// `soft_limit` and opens only under `restore_below`, so a figure between the two changes nothing.
#[derive(Debug)]
pub struct MemoryPressure {
    soft_limit: f64,
    restore_below: f64,
    tightened: bool,
}

impl MemoryPressure {
    /// Starts open. `config` is validated (`restore_below < soft_limit`).
    #[must_use]
    pub fn new(config: &MemoryWatchdogConfig) -> Self {
        Self { soft_limit: config.soft_limit, restore_below: config.restore_below, tightened: false }
    }

    /// Whether admission is tightened.
    #[must_use]
    pub fn tightened(&self) -> bool {
        self.tightened
    }

    /// Takes in memory use `used_fraction`; the transition to make, if any.
    pub fn observe(&mut self, used_fraction: f64) -> Option<Transition> {
        if !self.tightened && used_fraction > self.soft_limit {
            self.tightened = true;
            Some(Transition::Tightened)
        } else if self.tightened && used_fraction < self.restore_below {
            self.tightened = false;
            Some(Transition::Relaxed)
        } else {
            None
        }
    }
}

#[derive(Debug)]
struct GateState {
    tightened: AtomicBool,
    /// The last memory figure, as `f64` bits, for the refusal's message.
    used_fraction: AtomicU64,
    soft_limit: f64,
    retry_after: Duration,
}

/// The process-wide switch every receiver's sink asks before reading a request: closed by the
/// memory watchdog while memory use is over its soft limit. Cheap to clone; clones share it.
#[derive(Clone, Debug)]
pub struct AdmissionGate(Arc<GateState>);

impl AdmissionGate {
    /// An open gate whose refusals quote `config`'s soft limit and `retry_after`.
    #[must_use]
    pub fn new(config: &MemoryWatchdogConfig) -> Self {
        Self(Arc::new(GateState {
            tightened: AtomicBool::new(false),
            used_fraction: AtomicU64::new(0f64.to_bits()),
            soft_limit: config.soft_limit,
            retry_after: config.retry_after.0,
        }))
    }

    /// Whether new requests are refused.
    #[must_use]
    pub fn is_tightened(&self) -> bool {
        self.0.tightened.load(Ordering::Acquire)
    }

    fn set(&self, tightened: bool, used_fraction: f64) {
        self.0.used_fraction.store(used_fraction.to_bits(), Ordering::Relaxed);
        self.0.tightened.store(tightened, Ordering::Release);
    }

    /// The refusal for a new request while the gate is closed; `None` while it is open.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        if !self.is_tightened() {
            return None;
        }
        let used = f64::from_bits(self.0.used_fraction.load(Ordering::Relaxed));
        Some(Refusal::Exhausted {
            reason: format!(
                "memory use {:.0}% of the process's limit is over the watchdog's soft limit {:.0}%",
                used * 100.0,
                self.0.soft_limit * 100.0
            )
            .into(),
            retry_after: self.0.retry_after,
        })
    }
}

/// What the memory watchdog's thread acts on.
pub(crate) struct MemoryWatchdog {
    pub(crate) config: MemoryWatchdogConfig,
    pub(crate) gate: AdmissionGate,
    pub(crate) probe: Option<MemoryProbe>,
    pub(crate) health: Arc<dyn HealthSink>,
    pub(crate) metrics: Arc<CoreSlot>,
    pub(crate) stop: Arc<AtomicBool>,
}

/// Starts the memory watchdog's thread; `None` when it is disabled or the thread cannot start
/// (logged: the gate then stays open and only the memory limiters guard memory).
pub(crate) fn start(watchdog: MemoryWatchdog) -> Option<std::thread::JoinHandle<()>> {
    if !watchdog.config.enabled {
        return None;
    }
    let mut pressure = MemoryPressure::new(&watchdog.config);
    let own = ProcessMemory::default();
    // Whether the last reading failed: a failure is logged once, not at every interval.
    let mut failing = false;
    let (interval, stop) = (watchdog.config.interval.0, Arc::clone(&watchdog.stop));
    let consequence = "admission will not tighten under memory pressure";
    super::spawn_periodic("spanpipe-mem-wd", interval, stop, consequence, move || {
        let reading = match &watchdog.probe {
            Some(probe) => (probe.0)(),
            None => match process_used_fraction(&own) {
                Ok(fraction) => Some(fraction),
                Err(error) => {
                    if !failing {
                        tracing::error!(%error, "the memory watchdog cannot measure memory; admission stays as it is");
                    }
                    failing = true;
                    None
                }
            },
        };
        let Some(used_fraction) = reading else { return };
        failing = false;
        let transition = pressure.observe(used_fraction);
        watchdog.gate.set(pressure.tightened(), used_fraction);
        if let Some(transition) = transition {
            record(&watchdog, transition, used_fraction);
        }
        publish(&watchdog, used_fraction, pressure.tightened());
    })
}

/// The process's resident set over the memory it may use.
fn process_used_fraction(memory: &ProcessMemory) -> Result<f64, MemoryError> {
    let available = memory.available_bytes()?;
    #[allow(clippy::cast_precision_loss)] // Byte counts far below 2^52 in practice; a ratio.
    Ok(memory.resident_bytes()? as f64 / available.max(1) as f64)
}

/// Logs the transition and writes it to the health log.
fn record(watchdog: &MemoryWatchdog, transition: Transition, used_fraction: f64) {
    let config = &watchdog.config;
    let (action, threshold, before, after) = match transition {
        Transition::Tightened => {
            ("admission_tightened", format!("> {}", config.soft_limit), "admission open", "new requests refused")
        }
        Transition::Relaxed => {
            ("admission_restored", format!("< {}", config.restore_below), "new requests refused", "admission open")
        }
    };
    tracing::warn!(
        memory = format!("{used_fraction:.2}"),
        soft_limit = config.soft_limit,
        restore_below = config.restore_below,
        "memory watchdog: {action}: {before} -> {after}"
    );
    watchdog.health.record(
        HealthRecord::new("process", "memory", action)
            .measured(format!("{used_fraction:.2}"))
            .threshold(threshold)
            .before(before)
            .after(after),
    );
}

fn publish(watchdog: &MemoryWatchdog, used_fraction: f64, tightened: bool) {
    watchdog.metrics.publish(vec![
        Sample::gauge(
            "spanpipe_watchdog_memory_utilization",
            "The process's memory use the watchdog measured last, relative to the memory it may use (0 to 1).",
            Vec::new(),
            used_fraction,
        ),
        Sample::gauge(
            "spanpipe_watchdog_admission_tightened",
            "1 while the watchdog refuses new requests because memory use is over its soft limit, else 0.",
            Vec::new(),
            if tightened { 1.0 } else { 0.0 },
        ),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pressure() -> MemoryPressure {
        MemoryPressure::new(&MemoryWatchdogConfig::default())
    }

    #[test]
    fn tightens_over_the_soft_limit_and_relaxes_only_under_restore_below() {
        let mut pressure = pressure();
        assert_eq!(pressure.observe(0.5), None);
        assert_eq!(pressure.observe(0.8), None, "at the soft limit is not over it");
        assert_eq!(pressure.observe(0.85), Some(Transition::Tightened));
        assert!(pressure.tightened());
        assert_eq!(pressure.observe(0.95), None, "already tightened");
        assert_eq!(pressure.observe(0.75), None, "between the marks: still tightened");
        assert_eq!(pressure.observe(0.7), None, "at restore_below is not under it");
        assert_eq!(pressure.observe(0.65), Some(Transition::Relaxed));
        assert!(!pressure.tightened());
        assert_eq!(pressure.observe(0.3), None, "already open");
    }

    #[test]
    fn a_figure_hovering_between_the_marks_does_not_flap() {
        let mut pressure = pressure();
        assert_eq!(pressure.observe(0.81), Some(Transition::Tightened));
        let transitions: Vec<Transition> =
            [0.79, 0.81, 0.72, 0.83, 0.71, 0.79].into_iter().filter_map(|used| pressure.observe(used)).collect();
        assert!(transitions.is_empty(), "{transitions:?}");
        assert_eq!(pressure.observe(0.69), Some(Transition::Relaxed));
        let transitions: Vec<Transition> =
            [0.71, 0.79, 0.8, 0.75].into_iter().filter_map(|used| pressure.observe(used)).collect();
        assert!(transitions.is_empty(), "open until over the soft limit again: {transitions:?}");
    }

    #[test]
    fn a_closed_gate_refuses_with_the_figures_and_retry_after_and_an_open_one_admits() {
        let config =
            MemoryWatchdogConfig { retry_after: spanpipe_config::GoDuration::from_secs(3), ..Default::default() };
        let gate = AdmissionGate::new(&config);
        let shared = gate.clone();
        assert!(gate.refusal().is_none());
        shared.set(true, 0.912);
        match gate.refusal() {
            Some(Refusal::Exhausted { reason, retry_after }) => {
                assert_eq!(reason, "memory use 91% of the process's limit is over the watchdog's soft limit 80%");
                assert_eq!(retry_after, Duration::from_secs(3));
            }
            other => panic!("expected Exhausted, got {other:?}"),
        }
        shared.set(false, 0.5);
        assert!(gate.refusal().is_none());
    }

    #[test]
    fn the_process_uses_a_fraction_of_its_memory() {
        let used = process_used_fraction(&ProcessMemory::default()).expect("/proc is readable");
        assert!(used > 0.0 && used < 1.0, "{used}");
    }
}
