//! What a plugin stage does when its plugin misbehaves: the failure settings every stage shares,
//! the circuit breaker and the restart backoff. All of it is driven by the `now` the caller
//! passes, never by reading the clock, so tests step time by hand.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::events::TripReason;

/// What happens to spans a failed or bypassed plugin could not handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnFailure {
    /// The batch goes on unchanged, as if the stage were not there. Defaults to this.
    #[default]
    PassThrough,
    /// The batch is dropped (counted).
    Drop,
}

/// When to stop calling a failing plugin, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures within `window` that open the breaker; 0 never opens it. Defaults to 5.
    pub failures: u32,
    /// The window failures are counted in. Defaults to `60s`.
    pub window: Duration,
    /// How long the breaker stays open before one trial call. Defaults to `30s`.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { failures: 5, window: Duration::from_secs(60), cool_down: Duration::from_secs(30) }
    }
}

/// How long to wait before restarting an instance that panicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The first wait. Defaults to `100ms`.
    pub initial: Duration,
    /// The longest wait; each restart without a success in between doubles the wait up to this.
    /// Defaults to `10s`.
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self { initial: Duration::from_millis(100), max: Duration::from_secs(10) }
    }
}

/// The failure settings of a plugin stage or source (flattened into their configs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureConfig {
    /// What happens to spans when the plugin fails or is bypassed. Defaults to `pass_through`.
    pub on_failure: OnFailure,
    /// CPU time (the thread's CPU clock) one call may use; a call over it is a strike. Defaults to
    /// none (no budget).
    pub cpu_budget: Option<Duration>,
    /// Consecutive strikes that open the breaker. Defaults to 3.
    pub budget_strikes: u32,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// Restart backoff after a panic.
    pub restart_backoff: BackoffConfig,
}

impl Default for FailureConfig {
    fn default() -> Self {
        Self {
            on_failure: OnFailure::default(),
            cpu_budget: None,
            budget_strikes: 3,
            breaker: BreakerConfig::default(),
            restart_backoff: BackoffConfig::default(),
        }
    }
}

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are bypassed until `until`.
    Open {
        /// End of the cool-down.
        until: Instant,
    },
    /// The cool-down is over: one trial call decides (success closes, failure re-opens).
    HalfOpen,
}

/// A circuit breaker: `failures` failures within `window` open it for `cool_down`; then one trial
/// call closes it again or re-opens it.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    recent_failures: VecDeque<Instant>,
    state: BreakerState,
}

impl CircuitBreaker {
    /// A closed breaker.
    #[must_use]
    pub fn new(config: BreakerConfig) -> Self {
        Self { config, recent_failures: VecDeque::new(), state: BreakerState::Closed }
    }

    /// Where it stands (as of the last call that passed `now`).
    #[must_use]
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a call may go through at `now`. Moves an open breaker whose cool-down is over to
    /// half-open.
    pub fn admits(&mut self, now: Instant) -> bool {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open { .. } => false,
        }
    }

    /// A call succeeded; returns true when that closed a half-open breaker.
    pub fn record_success(&mut self) -> bool {
        let closed = self.state == BreakerState::HalfOpen;
        if closed {
            self.state = BreakerState::Closed;
            self.recent_failures.clear();
        }
        closed
    }

    /// A call failed at `now`; returns why the breaker opened, if it did.
    pub fn record_failure(&mut self, now: Instant) -> Option<TripReason> {
        match self.state {
            BreakerState::HalfOpen => {
                self.open(now);
                Some(TripReason::HalfOpenTrialFailed)
            }
            BreakerState::Open { .. } => None,
            BreakerState::Closed => {
                if self.config.failures == 0 {
                    return None;
                }
                while self.recent_failures.front().is_some_and(|at| now.duration_since(*at) >= self.config.window) {
                    self.recent_failures.pop_front();
                }
                self.recent_failures.push_back(now);
                if self.recent_failures.len() >= self.config.failures as usize {
                    self.open(now);
                    return Some(TripReason::Failures { failures: self.config.failures });
                }
                None
            }
        }
    }

    /// Opens the breaker at `now` for the cool-down, whatever its state (the CPU budget's strikes).
    pub fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open { until: now + self.config.cool_down };
        self.recent_failures.clear();
    }

    /// The configured cool-down.
    #[must_use]
    pub fn cool_down(&self) -> Duration {
        self.config.cool_down
    }
}

/// Exponential backoff: `initial`, doubled after each use, capped at `max`, back to `initial` on
/// [`Backoff::reset`].
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    next: Duration,
}

impl Backoff {
    /// A backoff at its first step.
    #[must_use]
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, next: config.initial.min(config.max) }
    }

    /// The wait for this attempt; the next one waits twice as long (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.config.max);
        delay
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.next = self.config.initial.min(self.config.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failures,
            window: Duration::from_secs(60),
            cool_down: Duration::from_secs(30),
        })
    }

    #[test]
    fn config_defaults_match_the_documentation() {
        let config = FailureConfig::default();
        assert_eq!(config.on_failure, OnFailure::PassThrough);
        assert_eq!(config.cpu_budget, None);
        assert_eq!(config.budget_strikes, 3);
        assert_eq!(config.breaker.failures, 5);
        assert_eq!(config.breaker.window, Duration::from_secs(60));
        assert_eq!(config.breaker.cool_down, Duration::from_secs(30));
        assert_eq!(config.restart_backoff.initial, Duration::from_millis(100));
        assert_eq!(config.restart_backoff.max, Duration::from_secs(10));
    }

    #[test]
    fn breaker_opens_after_k_failures_within_the_window_only() {
        let start = Instant::now();
        let mut breaker = breaker(3);
        assert_eq!(breaker.record_failure(start), None);
        assert_eq!(breaker.record_failure(start + Duration::from_secs(10)), None);
        // The first failure leaves the window before the third arrives.
        assert_eq!(breaker.record_failure(start + Duration::from_secs(61)), None);
        assert_eq!(breaker.state(), BreakerState::Closed);
        let tripped = breaker.record_failure(start + Duration::from_secs(62));
        assert_eq!(tripped, Some(TripReason::Failures { failures: 3 }));
        assert!(!breaker.admits(start + Duration::from_secs(62)));
        assert!(!breaker.admits(start + Duration::from_secs(91)));
    }

    #[test]
    fn breaker_half_opens_after_cool_down_and_one_result_decides() {
        let start = Instant::now();
        let mut breaker = breaker(1);
        assert!(breaker.record_failure(start).is_some());
        let after = start + Duration::from_secs(30);
        assert!(breaker.admits(after));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.record_failure(after), Some(TripReason::HalfOpenTrialFailed));
        assert_eq!(breaker.state(), BreakerState::Open { until: after + Duration::from_secs(30) });
        let later = after + Duration::from_secs(30);
        assert!(breaker.admits(later));
        assert!(breaker.record_success());
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(!breaker.record_success(), "closing is reported once");
    }

    #[test]
    fn breaker_with_zero_failures_never_opens_on_failures() {
        let start = Instant::now();
        let mut breaker = breaker(0);
        for second in 0..100 {
            assert_eq!(breaker.record_failure(start + Duration::from_secs(second)), None);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let mut backoff =
            Backoff::new(BackoffConfig { initial: Duration::from_millis(100), max: Duration::from_secs(1) });
        let delays: Vec<u128> = (0..6).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
