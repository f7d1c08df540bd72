//! # spanpipe-runtime
//!
//! The data plane and what runs beside it. [`RunningCollector::start`] checks that io_uring is
//! usable ([`preflight`]), prepares every component from the config ([`CollectorPlan`]) so that a
//! bad config fails before any port is bound, picks the cores ([`cores`]: the affinity mask capped
//! by the cgroup CPU quota), and starts one glommio executor pinned to each. Every core builds its
//! own receivers, pipelines ([`pipeline`]) and exporters — shared nothing: a request is received,
//! decoded, processed and queued for export on the core that accepted its connection, and the
//! kernel spreads connections over the cores' `SO_REUSEPORT` listeners.
//!
//! Before the cores start, the process opts out of transparent huge pages ([`hugepages`]), which
//! would otherwise make each touched allocator region resident 2 MiB at a time.
//!
//! What crosses cores: the memory limiter's accounting (atomics), the adaptive sampler's rate (an
//! atomic), the stop flag, and each core's metrics snapshot ([`telemetry`]), which the telemetry
//! thread sums when scraped.

pub mod collector;
pub mod components;
mod config_watch;
mod core_parts;
pub mod cores;
pub mod hugepages;
mod metrics;
pub mod pipeline;
pub mod plugin_config;
mod plugins;
pub mod preflight;
pub mod receivers;
pub mod reload;
pub mod reloader;
pub mod telemetry;
pub mod watchdog;

pub use collector::{ReceiverAddresses, RunningCollector, ShutdownReport, StartError, StartOptions};
pub use components::{builtin_registry, CollectorPlan, PlanError};
pub use receivers::{codec_registry, ReceiverConfig};
pub use reload::{config_hash, ChangeSummary, ConfigStatus};
pub use reloader::{ReloadError, ReloadOutcome, Reloader};
