//! Which endpoint of an ordered list an exporter sends to: a pure state machine.
//!
//! The first endpoint is the primary. When `failures` retryable failures of the active endpoint
//! (an error status the OTLP specification calls retryable, a timeout, or no answer at all: a
//! connection refused, reset or dropped mid-request) fall within any `window`, the exporter moves
//! to the next endpoint in the list (after the last it wraps to the primary). With the defaults,
//! 6 within a minute, an endpoint that fails "more than 5 times a minute" is left.
//!
//! Why a rate of failures and not a run of them: an endpoint that flaps — a proxy or load
//! balancer that keeps dropping connections while some requests still get through — answers
//! often enough that "N failures with no success in between" never happens, yet every dropped
//! request costs a retry, a backoff delay and possibly a duplicate. Counting failures per window
//! whatever happened in between catches it; scattered failures (fewer than `failures` in any
//! `window`) still never move load onto the fallback. Failures of an endpoint that is no longer
//! active (answers to requests sent before a switch) are ignored: they say nothing about the
//! endpoint in use.
//!
//! While it is away from the primary, a probe (an empty export request) goes to the primary every
//! `probe_interval`. The exporter returns only once the probes have succeeded without a break for
//! `healthy_for`, measured from the first successful probe of the run to the latest one (so at
//! least two probes); a failed probe starts the run over. Why not on the first good probe: a
//! flapping primary answers some probes, and returning to it at once would only move the load
//! back and forth.
//!
//! Time is an argument; the exporter's I/O loop supplies `Instant::now()` and sleeps until
//! [`Failover::next_probe_at`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::settings::FailoverConfig;

/// What changed after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverEvent {
    /// The active endpoint failed too often; `to` is active now.
    SwitchedTo {
        /// The endpoint that was active.
        from: usize,
        /// The endpoint that is active now.
        to: usize,
    },
    /// Probes of the primary succeeded for `healthy_for` and the primary is active again.
    ReturnedToPrimary {
        /// The endpoint that was active.
        from: usize,
    },
}

/// The failover state of one exporter instance.
#[derive(Clone, Debug)]
pub struct Failover {
    endpoints: usize,
    active: usize,
    threshold: usize,
    window: Duration,
    probe_interval: Duration,
    healthy_for: Duration,
    /// When the active endpoint failed, oldest first, within `window` of the latest failure.
    recent_failures: VecDeque<Instant>,
    next_probe: Option<Instant>,
    /// When the current unbroken run of successful probes of the primary began.
    healthy_since: Option<Instant>,
}

impl Failover {
    /// State for `endpoints` endpoints (at least one), starting on the primary.
    #[must_use]
    pub fn new(endpoints: usize, config: &FailoverConfig) -> Self {
        Self {
            endpoints: endpoints.max(1),
            active: 0,
            threshold: usize::try_from(config.failures).unwrap_or(usize::MAX).max(1),
            window: config.window.0,
            probe_interval: config.probe_interval.0,
            healthy_for: config.healthy_for.0,
            recent_failures: VecDeque::new(),
            next_probe: None,
            healthy_since: None,
        }
    }

    /// The endpoint requests go to now.
    #[must_use]
    pub fn active(&self) -> usize {
        self.active
    }

    /// When the primary should next be probed; `None` while it is active.
    #[must_use]
    pub fn next_probe_at(&self) -> Option<Instant> {
        self.next_probe
    }

    /// A request to `endpoint` failed with a retryable answer (or no answer) at `now`.
    pub fn on_failure(&mut self, endpoint: usize, now: Instant) -> Option<FailoverEvent> {
        if endpoint != self.active || self.endpoints == 1 {
            return None;
        }
        while self.recent_failures.front().is_some_and(|at| now.saturating_duration_since(*at) > self.window) {
            self.recent_failures.pop_front();
        }
        self.recent_failures.push_back(now);
        if self.recent_failures.len() < self.threshold {
            return None;
        }
        let from = self.active;
        self.active = (self.active + 1) % self.endpoints;
        self.recent_failures.clear();
        if self.active == 0 {
            self.next_probe = None;
            self.healthy_since = None;
        } else if self.next_probe.is_none() {
            // Moving on from one fallback to the next keeps the primary's probe schedule and
            // its run of good probes: neither is about the fallback that failed.
            self.next_probe = Some(now + self.probe_interval);
        }
        Some(FailoverEvent::SwitchedTo { from, to: self.active })
    }

    /// The probe of the primary sent at the time returned by [`Self::next_probe_at`] finished at
    /// `now`, `healthy` or not.
    pub fn on_probe(&mut self, healthy: bool, now: Instant) -> Option<FailoverEvent> {
        if self.active == 0 {
            self.next_probe = None;
            self.healthy_since = None;
            return None;
        }
        if !healthy {
            self.healthy_since = None;
            self.next_probe = Some(now + self.probe_interval);
            return None;
        }
        let since = *self.healthy_since.get_or_insert(now);
        if now.saturating_duration_since(since) < self.healthy_for {
            self.next_probe = Some(now + self.probe_interval);
            return None;
        }
        let from = self.active;
        self.active = 0;
        self.recent_failures.clear();
        self.next_probe = None;
        self.healthy_since = None;
        Some(FailoverEvent::ReturnedToPrimary { from })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use spanpipe_config::GoDuration;

    use super::*;

    fn config(failures: u32, window_ms: u64, probe_ms: u64, healthy_ms: u64) -> FailoverConfig {
        FailoverConfig {
            failures,
            window: GoDuration::from_millis(window_ms),
            probe_interval: GoDuration::from_millis(probe_ms),
            healthy_for: GoDuration::from_millis(healthy_ms),
        }
    }

    fn ms(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    /// A failover state that has just left the primary for endpoint 1 at `start`.
    fn away_from_the_primary(start: Instant, probe_ms: u64, healthy_ms: u64) -> Failover {
        let mut failover = Failover::new(2, &config(1, 1_000, probe_ms, healthy_ms));
        assert_eq!(failover.on_failure(0, start), Some(FailoverEvent::SwitchedTo { from: 0, to: 1 }));
        failover
    }

    #[test]
    fn switches_after_n_failures_in_the_window_and_probes_the_primary() {
        let start = Instant::now();
        let mut failover = Failover::new(3, &config(3, 1_000, 500, 400));
        assert_eq!(failover.on_failure(0, ms(start, 0)), None);
        assert_eq!(failover.on_failure(0, ms(start, 100)), None);
        assert_eq!(failover.on_failure(0, ms(start, 200)), Some(FailoverEvent::SwitchedTo { from: 0, to: 1 }));
        assert_eq!(failover.active(), 1);
        assert_eq!(failover.next_probe_at(), Some(ms(start, 700)));
        assert_eq!(failover.on_probe(false, ms(start, 700)), None);
        assert_eq!(failover.next_probe_at(), Some(ms(start, 1_200)));
    }

    #[test]
    fn the_defaults_leave_an_endpoint_that_fails_more_than_five_times_a_minute() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &FailoverConfig::default());
        for failure in 0..5 {
            assert_eq!(failover.on_failure(0, ms(start, failure * 14_000)), None, "failure {}", failure + 1);
        }
        assert_eq!(
            failover.on_failure(0, ms(start, 60_000)),
            Some(FailoverEvent::SwitchedTo { from: 0, to: 1 }),
            "the sixth failure within a minute"
        );
    }

    #[test]
    fn five_failures_a_minute_are_tolerated_as_the_window_slides() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &FailoverConfig::default());
        // One failure every 12.5 s: any minute holds at most five of them.
        for step in 0..20 {
            assert_eq!(failover.on_failure(0, ms(start, step * 12_500)), None, "failure {}", step + 1);
        }
        assert_eq!(failover.active(), 0);
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_switch() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &config(2, 1_000, 500, 400));
        assert_eq!(failover.on_failure(0, ms(start, 0)), None);
        assert_eq!(failover.on_failure(0, ms(start, 1_001)), None);
        assert_eq!(failover.active(), 0);
        assert!(failover.on_failure(0, ms(start, 1_500)).is_some());
    }

    #[test]
    fn late_failures_of_an_endpoint_already_left_are_ignored() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &config(1, 1_000, 500, 400));
        assert!(failover.on_failure(0, ms(start, 0)).is_some());
        assert_eq!(failover.on_failure(0, ms(start, 1)), None);
        assert_eq!(failover.active(), 1);
    }

    #[test]
    fn the_last_endpoint_wraps_to_the_primary_which_needs_no_probe() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &config(1, 1_000, 500, 400));
        failover.on_failure(0, ms(start, 0));
        assert_eq!(failover.on_failure(1, ms(start, 5)), Some(FailoverEvent::SwitchedTo { from: 1, to: 0 }));
        assert_eq!(failover.next_probe_at(), None);
    }

    #[test]
    fn a_single_endpoint_never_switches() {
        let start = Instant::now();
        let mut failover = Failover::new(1, &config(1, 1_000, 500, 400));
        for step in 0..10 {
            assert_eq!(failover.on_failure(0, ms(start, step)), None);
        }
    }

    #[test]
    fn returns_only_once_probes_have_succeeded_for_healthy_for() {
        let start = Instant::now();
        let mut failover = away_from_the_primary(start, 100, 300);
        for probe_at in [100, 200, 300] {
            assert_eq!(failover.on_probe(true, ms(start, probe_at)), None, "good probe at {probe_at} ms");
            assert_eq!(failover.next_probe_at(), Some(ms(start, probe_at + 100)), "probes keep going");
        }
        assert_eq!(failover.on_probe(true, ms(start, 400)), Some(FailoverEvent::ReturnedToPrimary { from: 1 }));
        assert_eq!((failover.active(), failover.next_probe_at()), (0, None));
    }

    #[test]
    fn a_failed_probe_starts_the_healthy_period_over() {
        let start = Instant::now();
        let mut failover = away_from_the_primary(start, 100, 300);
        assert_eq!(failover.on_probe(true, ms(start, 100)), None);
        assert_eq!(failover.on_probe(true, ms(start, 200)), None);
        assert_eq!(failover.on_probe(false, ms(start, 300)), None);
        for probe_at in [400, 500, 600] {
            assert_eq!(failover.on_probe(true, ms(start, probe_at)), None, "good probe at {probe_at} ms");
        }
        assert_eq!(failover.on_probe(true, ms(start, 700)), Some(FailoverEvent::ReturnedToPrimary { from: 1 }));
    }

    #[test]
    fn a_healthy_for_shorter_than_the_probe_interval_still_takes_two_good_probes() {
        let start = Instant::now();
        let mut failover = away_from_the_primary(start, 100, 1);
        assert_eq!(failover.on_probe(true, ms(start, 100)), None, "one good probe is not a healthy period");
        assert_eq!(failover.on_probe(true, ms(start, 200)), Some(FailoverEvent::ReturnedToPrimary { from: 1 }));
    }

    #[test]
    fn moving_on_between_fallbacks_keeps_the_primary_probe_schedule_and_healthy_run() {
        let start = Instant::now();
        let mut failover = Failover::new(3, &config(1, 1_000, 100, 100));
        failover.on_failure(0, ms(start, 0));
        assert_eq!(failover.on_probe(true, ms(start, 100)), None);
        assert_eq!(failover.on_failure(1, ms(start, 150)), Some(FailoverEvent::SwitchedTo { from: 1, to: 2 }));
        assert_eq!(failover.next_probe_at(), Some(ms(start, 200)));
        assert_eq!(failover.on_probe(true, ms(start, 200)), Some(FailoverEvent::ReturnedToPrimary { from: 2 }));
    }

    #[derive(Clone, Debug)]
    enum Step {
        Failure { endpoint: usize, after_ms: u64 },
        Probe { healthy: bool, after_ms: u64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..4, 0u64..400).prop_map(|(endpoint, after_ms)| Step::Failure { endpoint, after_ms }),
            (any::<bool>(), 0u64..400).prop_map(|(healthy, after_ms)| Step::Probe { healthy, after_ms }),
        ]
    }

    /// What the rules say, kept the naive way: every failure of the active endpoint since it
    /// became active, and when the current run of good probes began.
    #[derive(Default)]
    struct Model {
        failures_of_active: Vec<Instant>,
        healthy_since: Option<Instant>,
    }

    proptest! {
        #[test]
        fn switches_and_returns_exactly_when_the_rules_say_and_probes_only_while_away(
            endpoints in 1usize..4,
            failures in 1u32..4,
            window_ms in 1u64..1_500,
            healthy_ms in 1u64..800,
            steps in prop::collection::vec(step(), 0..60),
        ) {
            let start = Instant::now();
            let window = Duration::from_millis(window_ms);
            let healthy_for = Duration::from_millis(healthy_ms);
            let mut now = start;
            let mut failover = Failover::new(endpoints, &config(failures, window_ms, 200, healthy_ms));
            let mut model = Model::default();
            for step in steps {
                let before = failover.active();
                let event = match step {
                    Step::Failure { endpoint, after_ms } => {
                        now += Duration::from_millis(after_ms);
                        let endpoint = endpoint % endpoints;
                        let event = failover.on_failure(endpoint, now);
                        if endpoint == before && endpoints > 1 {
                            model.failures_of_active.push(now);
                            let in_window = model
                                .failures_of_active
                                .iter()
                                .filter(|at| now.duration_since(**at) <= window)
                                .count();
                            prop_assert_eq!(event.is_some(), in_window >= failures as usize);
                        } else {
                            prop_assert_eq!(event, None);
                        }
                        event
                    }
                    Step::Probe { healthy, after_ms } => {
                        now += Duration::from_millis(after_ms);
                        let event = failover.on_probe(healthy, now);
                        if before != 0 && healthy {
                            let since = *model.healthy_since.get_or_insert(now);
                            prop_assert_eq!(event.is_some(), now.duration_since(since) >= healthy_for);
                        } else {
                            model.healthy_since = None;
                            prop_assert_eq!(event, None);
                        }
                        event
                    }
                };
                prop_assert!(failover.active() < endpoints);
                prop_assert_eq!(failover.next_probe_at().is_some(), failover.active() != 0);
                match event {
                    Some(FailoverEvent::SwitchedTo { from, to }) => {
                        prop_assert_eq!(from, before);
                        prop_assert_eq!(to, (before + 1) % endpoints);
                        model.failures_of_active.clear();
                        if to == 0 {
                            model.healthy_since = None;
                        }
                    }
                    Some(FailoverEvent::ReturnedToPrimary { from }) => {
                        prop_assert_eq!(from, before);
                        prop_assert_eq!(failover.active(), 0);
                        model = Model::default();
                    }
                    None => prop_assert_eq!(failover.active(), before),
                }
            }
        }
    }
}
