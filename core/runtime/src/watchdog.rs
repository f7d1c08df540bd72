//! The health watchdog's process level: CPU pressure lowers the adaptive samplers' rates step by
//! step, calm restores them step by step, and every step is written to the health log.
//!
//! The decision is a pure state machine ([`CpuPressure`]) fed with a CPU figure and a time, so
//! tests drive it by hand; the thread around it ([`start`]) measures the process (CPU time over
//! wall time, relative to the CPUs the data plane may use) or asks a [`CpuProbe`] a test or an
//! embedder supplies. The memory level, which tightens admission, is in [`memory`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spanpipe_config::CpuWatchdogConfig;
use spanpipe_health::{HealthRecord, HealthSink};
use spanpipe_processors::AdaptiveSamplerHandle;

use crate::reloader::SharedSamplers;
use crate::telemetry::{CoreSlot, Sample};

pub mod memory;
pub use memory::{AdmissionGate, MemoryProbe};

/// Where the watchdog's CPU figure comes from instead of the process's own accounting: a function
/// returning CPU use (0 to 1) since its previous call, or `None` when it has no figure yet.
#[derive(Clone)]
pub struct CpuProbe(pub Arc<dyn Fn() -> Option<f64> + Send + Sync>);

impl std::fmt::Debug for CpuProbe {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CpuProbe(..)")
    }
}

/// A step the watchdog took: the sampling factor went from `from` to `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The factor before.
    pub from: f64,
    /// The factor after.
    pub to: f64,
}

/// Decides when to step the sampling factor down or up.
#[derive(Debug)]
pub struct CpuPressure {
    config: CpuWatchdogConfig,
    /// Index into `config.steps` of the factor in force.
    level: usize,
    /// Since when CPU use has been at or above `high` (reset by each step down).
    high_since: Option<Instant>,
    /// Since when CPU use has been at or below `low` (reset by each step up).
    low_since: Option<Instant>,
}

impl CpuPressure {
    /// Starts at the first step (factor 1). `config` is validated (steps start at 1 and fall).
    #[must_use]
    pub fn new(config: CpuWatchdogConfig) -> Self {
        Self { config, level: 0, high_since: None, low_since: None }
    }

    /// The factor in force.
    #[must_use]
    pub fn factor(&self) -> f64 {
        self.config.steps.get(self.level).copied().unwrap_or(1.0)
    }

    /// Takes in CPU use `utilization` measured at `now`; the step to take, if any. A step down
    /// needs `high_for` of readings at or above `high` since the last change, a step up `low_for`
    /// at or below `low`; a reading in between resets both.
    pub fn observe(&mut self, now: Instant, utilization: f64) -> Option<Step> {
        let from = self.factor();
        if utilization >= self.config.high {
            self.low_since = None;
            let since = *self.high_since.get_or_insert(now);
            if now.duration_since(since) >= self.config.high_for.0 && self.level + 1 < self.config.steps.len() {
                self.level += 1;
                self.high_since = Some(now);
                return Some(Step { from, to: self.factor() });
            }
        } else if utilization <= self.config.low {
            self.high_since = None;
            let since = *self.low_since.get_or_insert(now);
            if now.duration_since(since) >= self.config.low_for.0 && self.level > 0 {
                self.level -= 1;
                self.low_since = Some(now);
                return Some(Step { from, to: self.factor() });
            }
        } else {
            self.high_since = None;
            self.low_since = None;
        }
        None
    }
}

/// The process's CPU use since the previous reading, relative to `cpus` CPUs.
#[derive(Debug)]
struct ProcessCpu {
    cpus: f64,
    last: Option<(Instant, Duration)>,
}

impl ProcessCpu {
    fn utilization(&mut self) -> Option<f64> {
        let now = Instant::now();
        let used = process_cpu_time()?;
        let previous = self.last.replace((now, used));
        let (then, used_then) = previous?;
        let wall = now.duration_since(then).as_secs_f64();
        (wall > 0.0).then(|| used.saturating_sub(used_then).as_secs_f64() / (wall * self.cpus))
    }
}

/// User and system CPU time of the whole process.
fn process_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage(2) writes a `rusage` into the pointer it is given and reads nothing.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: getrusage returned 0, so it filled the struct.
    let usage = unsafe { usage.assume_init() };
    let time = |value: libc::timeval| {
        Duration::from_secs(u64::try_from(value.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(value.tv_usec).unwrap_or(0))
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

/// What the watchdog thread acts on.
pub(crate) struct Watchdog {
    pub(crate) config: CpuWatchdogConfig,
    /// Every adaptive sampler of the running config, by processor id (a reload replaces them).
    pub(crate) samplers: SharedSamplers,
    /// The CPUs the data plane may use (the measurement's denominator).
    pub(crate) cpus: usize,
    pub(crate) probe: Option<CpuProbe>,
    pub(crate) health: Arc<dyn HealthSink>,
    pub(crate) metrics: Arc<CoreSlot>,
    pub(crate) stop: Arc<AtomicBool>,
}

impl Watchdog {
    fn samplers(&self) -> std::sync::MutexGuard<'_, Vec<(String, AdaptiveSamplerHandle)>> {
        self.samplers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Starts the watchdog's thread; `None` when it is disabled or the thread cannot start (logged).
/// It runs without adaptive samplers too: a reload may add one, and the CPU figure it publishes
/// is worth having either way.
pub(crate) fn start(watchdog: Watchdog) -> Option<std::thread::JoinHandle<()>> {
    if !watchdog.config.enabled {
        return None;
    }
    let mut pressure = CpuPressure::new(watchdog.config.clone());
    let mut own = ProcessCpu { cpus: watchdog.cpus.max(1) as f64, last: None };
    let (interval, stop) = (watchdog.config.interval.0, Arc::clone(&watchdog.stop));
    spawn_periodic("spanpipe-watchdog", interval, stop, "sampling rates will not follow CPU pressure", move || {
        measure(&watchdog, &mut pressure, &mut own);
    })
}

/// How often a periodic thread checks for shutdown while it waits for its next run.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Runs `tick` every `interval` on a thread named `name` until `stop` is set; `None` when the
/// thread cannot start, logged with `consequence` (what then does not happen).
pub(crate) fn spawn_periodic(
    name: &str,
    interval: Duration,
    stop: Arc<AtomicBool>,
    consequence: &'static str,
    mut tick: impl FnMut() + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
        let mut next = Instant::now();
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(next.duration_since(now).min(STOP_CHECK));
                continue;
            }
            next = now + interval;
            tick();
        }
    });
    match spawned {
        Ok(thread) => Some(thread),
        Err(error) => {
            tracing::error!(%error, "cannot start the {name} thread; {consequence}");
            None
        }
    }
}

/// One measurement: steps the rate if the pressure says so, keeps every sampler on the current
/// factor, publishes the figures.
fn measure(watchdog: &Watchdog, pressure: &mut CpuPressure, own: &mut ProcessCpu) {
    let reading = match &watchdog.probe {
        Some(probe) => (probe.0)(),
        None => own.utilization(),
    };
    let Some(utilization) = reading else { return };
    if let Some(step) = pressure.observe(Instant::now(), utilization) {
        apply(watchdog, step, utilization);
    }
    // A sampler a reload added (or rebuilt) starts at factor 1: it follows the current step.
    #[allow(clippy::cast_possible_truncation)] // A factor in 0..=1 fits an f32.
    let factor = pressure.factor() as f32;
    for (_, handle) in watchdog.samplers().iter() {
        if (handle.factor() - factor).abs() > f32::EPSILON {
            handle.set_factor(factor);
        }
    }
    publish(watchdog, utilization, pressure.factor());
}

/// Sets the factor on every sampler, logs the step and writes it to the health log.
fn apply(watchdog: &Watchdog, step: Step, utilization: f64) {
    let config = &watchdog.config;
    let (action, threshold) = if step.to < step.from {
        ("sampling_downgraded", format!(">= {} for {}", config.high, config.high_for))
    } else {
        ("sampling_restored", format!("<= {} for {}", config.low, config.low_for))
    };
    for (id, handle) in watchdog.samplers().iter() {
        let before = handle.effective_percentage();
        #[allow(clippy::cast_possible_truncation)] // A factor in 0..=1 fits an f32.
        handle.set_factor(step.to as f32);
        let after = handle.effective_percentage();
        tracing::warn!(
            processor = %id,
            cpu = format!("{utilization:.2}"),
            factor_before = step.from,
            factor_after = step.to,
            "CPU watchdog: {action}: sampling rate {before}% -> {after}%"
        );
        watchdog.health.record(
            HealthRecord::new(format!("processors/{id}"), "cpu", action)
                .measured(format!("{utilization:.2}"))
                .threshold(threshold.clone())
                .before(format!("factor {} ({before}%)", step.from))
                .after(format!("factor {} ({after}%)", step.to)),
        );
    }
}

fn publish(watchdog: &Watchdog, utilization: f64, factor: f64) {
    watchdog.metrics.publish(vec![
        Sample::gauge(
            "spanpipe_watchdog_cpu_utilization",
            "The process's CPU use the watchdog measured last, relative to the CPUs it may use (0 to 1).",
            Vec::new(),
            utilization,
        ),
        Sample::gauge(
            "spanpipe_watchdog_sampling_factor",
            "The factor the watchdog applies to every adaptive sampler's rate (1: no downgrade).",
            Vec::new(),
            factor,
        ),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use spanpipe_config::GoDuration;

    fn config() -> CpuWatchdogConfig {
        CpuWatchdogConfig {
            high_for: GoDuration::from_secs(30),
            low_for: GoDuration::from_secs(60),
            ..CpuWatchdogConfig::default()
        }
    }

    #[test]
    fn sustained_pressure_steps_down_to_the_floor_and_calm_steps_back_up() {
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let mut pressure = CpuPressure::new(config());
        let mut steps = Vec::new();
        // 0..=200 s at 95%: a step each 30 s until the floor.
        for second in 0..=200 {
            if let Some(step) = pressure.observe(at(second), 0.95) {
                steps.push((second, step.to));
            }
        }
        assert_eq!(steps, [(30, 0.5), (60, 0.25), (90, 0.1)]);
        assert_eq!(pressure.factor(), 0.1, "the floor holds");
        // Then 30% for 200 s: a step up each 60 s.
        steps.clear();
        for second in 201..=400 {
            if let Some(step) = pressure.observe(at(second), 0.3) {
                steps.push((second, step.to));
            }
        }
        assert_eq!(steps, [(261, 0.25), (321, 0.5), (381, 1.0)]);
    }

    #[test]
    fn a_reading_between_the_thresholds_resets_the_wait() {
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let mut pressure = CpuPressure::new(config());
        for second in 0..29 {
            assert_eq!(pressure.observe(at(second), 0.95), None);
        }
        assert_eq!(pressure.observe(at(29), 0.75), None, "in between: the 29 s of pressure do not count");
        for second in 30..59 {
            assert_eq!(pressure.observe(at(second), 0.95), None, "{second}");
        }
        assert_eq!(pressure.observe(at(60), 0.95), Some(Step { from: 1.0, to: 0.5 }));
        assert_eq!(pressure.observe(at(61), 0.3), None, "at the first step, calm must last low_for");
    }

    #[test]
    fn the_process_cpu_clock_moves_when_the_process_works() {
        let before = process_cpu_time().expect("getrusage works");
        let start = Instant::now();
        let mut spin = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        assert!(process_cpu_time().expect("getrusage works") > before);
    }
}
