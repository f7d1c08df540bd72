//! Which endpoint of an ordered list an exporter sends to: a pure state machine.
//!
//! The first endpoint is the primary. After `failures` retryable failures of the active endpoint
//! within `window`, with no success in between, the exporter moves to the next endpoint in the
//! list (after the last it wraps to the primary). While it is away from the primary, a probe (an
//! empty export request) goes to the primary every `probe_interval`; the first successful probe
//! brings the exporter back.
//!
//! Why successes reset the count: a backend that answers most requests is healthy, and leaving it
//! over scattered failures would only move load onto the fallback. Failures of an endpoint that is
//! no longer active (answers to requests sent before a switch) are ignored for the same reason.
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
    /// A probe of the primary succeeded and the primary is active again.
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
    recent_failures: VecDeque<Instant>,
    next_probe: Option<Instant>,
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
            recent_failures: VecDeque::new(),
            next_probe: None,
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

    /// A request to `endpoint` succeeded.
    pub fn on_success(&mut self, endpoint: usize) {
        if endpoint == self.active {
            self.recent_failures.clear();
        }
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
        self.next_probe = (self.active != 0).then(|| now + self.probe_interval);
        Some(FailoverEvent::SwitchedTo { from, to: self.active })
    }

    /// The probe of the primary sent at the time returned by [`Self::next_probe_at`] finished at
    /// `now`, `healthy` or not.
    pub fn on_probe(&mut self, healthy: bool, now: Instant) -> Option<FailoverEvent> {
        if self.active == 0 {
            self.next_probe = None;
            return None;
        }
        if !healthy {
            self.next_probe = Some(now + self.probe_interval);
            return None;
        }
        let from = self.active;
        self.active = 0;
        self.recent_failures.clear();
        self.next_probe = None;
        Some(FailoverEvent::ReturnedToPrimary { from })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use spanpipe_config::GoDuration;

    use super::*;

    fn config(failures: u32, window_ms: u64, probe_ms: u64) -> FailoverConfig {
        FailoverConfig {
            failures,
            window: GoDuration::from_millis(window_ms),
            probe_interval: GoDuration::from_millis(probe_ms),
        }
    }

    fn ms(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn switches_after_n_failures_in_the_window_and_probes_the_primary() {
        let start = Instant::now();
        let mut failover = Failover::new(3, &config(3, 1_000, 500));
        assert_eq!(failover.on_failure(0, ms(start, 0)), None);
        assert_eq!(failover.on_failure(0, ms(start, 100)), None);
        assert_eq!(failover.on_failure(0, ms(start, 200)), Some(FailoverEvent::SwitchedTo { from: 0, to: 1 }));
        assert_eq!(failover.active(), 1);
        assert_eq!(failover.next_probe_at(), Some(ms(start, 700)));
        assert_eq!(failover.on_probe(false, ms(start, 700)), None);
        assert_eq!(failover.next_probe_at(), Some(ms(start, 1_200)));
        assert_eq!(failover.on_probe(true, ms(start, 1_200)), Some(FailoverEvent::ReturnedToPrimary { from: 1 }));
        assert_eq!((failover.active(), failover.next_probe_at()), (0, None));
    }

    #[test]
    fn failures_spread_wider_than_the_window_do_not_switch() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &config(2, 1_000, 500));
        assert_eq!(failover.on_failure(0, ms(start, 0)), None);
        assert_eq!(failover.on_failure(0, ms(start, 1_001)), None);
        assert_eq!(failover.active(), 0);
        assert!(failover.on_failure(0, ms(start, 1_500)).is_some());
    }

    #[test]
    fn a_success_in_between_resets_the_count() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &config(2, 1_000, 500));
        failover.on_failure(0, ms(start, 0));
        failover.on_success(0);
        assert_eq!(failover.on_failure(0, ms(start, 10)), None);
        assert_eq!(failover.active(), 0);
    }

    #[test]
    fn late_failures_of_an_endpoint_already_left_are_ignored() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &config(1, 1_000, 500));
        assert!(failover.on_failure(0, ms(start, 0)).is_some());
        assert_eq!(failover.on_failure(0, ms(start, 1)), None);
        assert_eq!(failover.active(), 1);
    }

    #[test]
    fn the_last_endpoint_wraps_to_the_primary_which_needs_no_probe() {
        let start = Instant::now();
        let mut failover = Failover::new(2, &config(1, 1_000, 500));
        failover.on_failure(0, ms(start, 0));
        assert_eq!(failover.on_failure(1, ms(start, 5)), Some(FailoverEvent::SwitchedTo { from: 1, to: 0 }));
        assert_eq!(failover.next_probe_at(), None);
    }

    #[test]
    fn a_single_endpoint_never_switches() {
        let start = Instant::now();
        let mut failover = Failover::new(1, &config(1, 1_000, 500));
        for step in 0..10 {
            assert_eq!(failover.on_failure(0, ms(start, step)), None);
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        Failure { endpoint: usize, after_ms: u64 },
        Success { endpoint: usize },
        Probe { healthy: bool, after_ms: u64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..4, 0u64..400).prop_map(|(endpoint, after_ms)| Step::Failure { endpoint, after_ms }),
            (0usize..4).prop_map(|endpoint| Step::Success { endpoint }),
            (any::<bool>(), 0u64..400).prop_map(|(healthy, after_ms)| Step::Probe { healthy, after_ms }),
        ]
    }

    proptest! {
        #[test]
        fn the_active_endpoint_is_always_valid_and_probes_are_scheduled_exactly_while_away(
            endpoints in 1usize..4,
            failures in 1u32..4,
            steps in prop::collection::vec(step(), 0..60),
        ) {
            let start = Instant::now();
            let mut now = start;
            let mut failover = Failover::new(endpoints, &config(failures, 1_000, 200));
            for step in steps {
                let before = failover.active();
                let event = match step {
                    Step::Failure { endpoint, after_ms } => {
                        now += Duration::from_millis(after_ms);
                        failover.on_failure(endpoint % endpoints, now)
                    }
                    Step::Success { endpoint } => {
                        failover.on_success(endpoint % endpoints);
                        None
                    }
                    Step::Probe { healthy, after_ms } => {
                        now += Duration::from_millis(after_ms);
                        failover.on_probe(healthy, now)
                    }
                };
                prop_assert!(failover.active() < endpoints);
                prop_assert_eq!(failover.next_probe_at().is_some(), failover.active() != 0);
                match event {
                    Some(FailoverEvent::SwitchedTo { from, to }) => {
                        prop_assert_eq!(from, before);
                        prop_assert_eq!(to, (before + 1) % endpoints);
                    }
                    Some(FailoverEvent::ReturnedToPrimary { from }) => {
                        prop_assert_eq!(from, before);
                        prop_assert_eq!(failover.active(), 0);
                    }
                    None => prop_assert_eq!(failover.active(), before),
                }
            }
        }
    }
}
