//! The retry schedule of one batch: exponential backoff with jitter, as a pure state machine.
//!
//! It follows the OpenTelemetry Collector's retry sender (which uses `cenkalti/backoff`'s
//! `ExponentialBackOff`) so that a Collector config retries the same way here:
//!
//! 1. the wait is drawn uniformly from `interval × [1 − f, 1 + f]` (`f` = `randomization_factor`);
//! 2. the interval then grows by `multiplier`, capped at `max_interval`;
//! 3. if the time since the first attempt plus the drawn wait would pass `max_elapsed_time`
//!    (unless that is zero), retrying stops;
//! 4. a delay the server asked for (HTTP `Retry-After`, gRPC `RetryInfo`) replaces a shorter wait.
//!
//! The clock and the random source are arguments, so tests drive it deterministically and the
//! exporter's I/O loop only sleeps for what it is told.

use std::time::{Duration, Instant};

use crate::settings::RetryConfig;

/// The parameters of a schedule, taken from `retry_on_failure`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackoffPolicy {
    /// First interval.
    pub initial_interval: Duration,
    /// Randomisation around the interval, in `[0, 1]`.
    pub randomization_factor: f64,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Cap of the interval.
    pub max_interval: Duration,
    /// Give up after this long; zero means never.
    pub max_elapsed_time: Duration,
}

impl From<&RetryConfig> for BackoffPolicy {
    fn from(config: &RetryConfig) -> Self {
        Self {
            initial_interval: config.initial_interval.0,
            randomization_factor: config.randomization_factor.clamp(0.0, 1.0),
            multiplier: config.multiplier,
            max_interval: config.max_interval.0,
            max_elapsed_time: config.max_elapsed_time.0,
        }
    }
}

/// The schedule of one batch, from its first attempt on.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    interval: Duration,
    started: Instant,
}

impl Backoff {
    /// A schedule whose first attempt is at `now`.
    #[must_use]
    pub fn new(policy: BackoffPolicy, now: Instant) -> Self {
        Self { interval: policy.initial_interval, policy, started: now }
    }

    /// How long to wait before the next attempt, after a failure at `now`; `None` when the batch
    /// must be given up. `server_delay` is what the server asked for, if anything; `random` yields
    /// uniform numbers in `[0, 1)`.
    pub fn next_delay(
        &mut self,
        now: Instant,
        server_delay: Option<Duration>,
        random: &mut impl FnMut() -> f64,
    ) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.started);
        let drawn = self.draw(random());
        self.grow();
        let max_elapsed = self.policy.max_elapsed_time;
        if !max_elapsed.is_zero() && elapsed + drawn > max_elapsed {
            return None;
        }
        Some(server_delay.map_or(drawn, |asked| asked.max(drawn)))
    }

    /// The interval the next draw is centred on.
    #[must_use]
    pub fn current_interval(&self) -> Duration {
        self.interval
    }

    fn draw(&self, unit: f64) -> Duration {
        let interval = self.interval.as_secs_f64();
        let delta = self.policy.randomization_factor * interval;
        let low = interval - delta;
        let drawn = low + unit.clamp(0.0, 1.0) * 2.0 * delta;
        Duration::try_from_secs_f64(drawn.max(0.0)).unwrap_or(Duration::MAX)
    }

    fn grow(&mut self) {
        let grown = self.interval.as_secs_f64() * self.policy.multiplier;
        let grown = Duration::try_from_secs_f64(grown).unwrap_or(Duration::MAX);
        self.interval = grown.min(self.policy.max_interval);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy(initial_ms: u64, factor: f64, multiplier: f64, max_ms: u64, elapsed_ms: u64) -> BackoffPolicy {
        BackoffPolicy {
            initial_interval: Duration::from_millis(initial_ms),
            randomization_factor: factor,
            multiplier,
            max_interval: Duration::from_millis(max_ms),
            max_elapsed_time: Duration::from_millis(elapsed_ms),
        }
    }

    #[test]
    fn follows_the_collector_defaults_without_jitter_at_the_midpoint() {
        let defaults = BackoffPolicy::from(&RetryConfig::default());
        let start = Instant::now();
        let mut backoff = Backoff::new(defaults, start);
        let mut midpoint = || 0.5;
        let waits: Vec<_> =
            (0..8).map(|_| backoff.next_delay(start, None, &mut midpoint).unwrap().as_millis()).collect();
        // 5s × 1.5ⁿ, capped at 30s.
        assert_eq!(waits, [5_000, 7_500, 11_250, 16_875, 25_312, 30_000, 30_000, 30_000]);
    }

    #[test]
    fn stops_when_the_next_wait_would_pass_max_elapsed_time() {
        let start = Instant::now();
        let mut backoff = Backoff::new(policy(100, 0.0, 2.0, 1_000, 1_000), start);
        let mut random = || 0.0;
        assert_eq!(backoff.next_delay(start, None, &mut random), Some(Duration::from_millis(100)));
        // 850 ms elapsed + a 200 ms wait passes the 1 s budget.
        assert_eq!(backoff.next_delay(start + Duration::from_millis(850), None, &mut random), None);
    }

    #[test]
    fn zero_max_elapsed_time_retries_forever() {
        let start = Instant::now();
        let mut backoff = Backoff::new(policy(100, 0.5, 1.5, 1_000, 0), start);
        let mut random = || 0.99;
        let much_later = start + Duration::from_secs(86_400 * 365);
        assert!(backoff.next_delay(much_later, None, &mut random).is_some());
    }

    #[test]
    fn a_longer_server_delay_replaces_the_drawn_wait_and_a_shorter_one_does_not() {
        let start = Instant::now();
        let mut backoff = Backoff::new(policy(100, 0.0, 1.0, 100, 0), start);
        let mut random = || 0.3;
        assert_eq!(backoff.next_delay(start, Some(Duration::from_secs(3)), &mut random), Some(Duration::from_secs(3)));
        assert_eq!(
            backoff.next_delay(start, Some(Duration::from_millis(10)), &mut random),
            Some(Duration::from_millis(100))
        );
    }

    proptest! {
        #[test]
        fn every_wait_lies_within_the_randomised_interval_and_the_interval_never_passes_its_cap(
            initial_ms in 1u64..10_000,
            factor in 0.0f64..=1.0,
            multiplier in 1.0f64..4.0,
            max_extra_ms in 0u64..60_000,
            seed in any::<u64>(),
            steps in 1usize..40,
        ) {
            let max_ms = initial_ms + max_extra_ms;
            let start = Instant::now();
            let mut backoff = Backoff::new(policy(initial_ms, factor, multiplier, max_ms, 0), start);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut random = || rng.f64();
            let mut previous_interval = backoff.current_interval();
            for _ in 0..steps {
                let interval = backoff.current_interval().as_secs_f64();
                let wait = backoff.next_delay(start, None, &mut random).unwrap().as_secs_f64();
                let slack = 1e-6;
                prop_assert!(wait >= interval * (1.0 - factor) - slack, "{wait} below {interval}");
                prop_assert!(wait <= interval * (1.0 + factor) + slack, "{wait} above {interval}");
                prop_assert!(backoff.current_interval() >= previous_interval);
                prop_assert!(backoff.current_interval() <= Duration::from_millis(max_ms));
                previous_interval = backoff.current_interval();
            }
        }

        #[test]
        fn retrying_always_ends_within_max_elapsed_time(
            initial_ms in 1u64..1_000,
            factor in 0.0f64..=1.0,
            multiplier in 1.0f64..3.0,
            budget_ms in 1u64..30_000,
            seed in any::<u64>(),
        ) {
            let start = Instant::now();
            let mut backoff = Backoff::new(policy(initial_ms, factor, multiplier, 5_000, budget_ms), start);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut random = || rng.f64();
            let mut now = start;
            let mut attempts = 0;
            while let Some(wait) = backoff.next_delay(now, None, &mut random) {
                now += wait;
                prop_assert!(now - start <= Duration::from_millis(budget_ms));
                attempts += 1;
                prop_assert!(attempts < 100_000, "never stopped");
            }
        }

        #[test]
        fn a_server_delay_is_always_honoured(
            asked_ms in 0u64..100_000,
            seed in any::<u64>(),
        ) {
            let start = Instant::now();
            let mut backoff = Backoff::new(policy(50, 0.5, 1.5, 1_000, 0), start);
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut random = || rng.f64();
            let asked = Duration::from_millis(asked_ms);
            let wait = backoff.next_delay(start, Some(asked), &mut random).unwrap();
            prop_assert!(wait >= asked);
        }
    }
}
