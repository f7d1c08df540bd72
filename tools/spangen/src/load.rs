//! Running the load: the timetable, the request slots, retries and the accounting.
//!
//! Open loop (`--rate`): request `k` has a fixed scheduled time on a timetable computed from the
//! rate (and the ramp-up), whatever the collector does. Every request slot takes the next request
//! number, sleeps until its scheduled time, sends it and records its latency from the *scheduled*
//! time. When the collector is slow, all slots are busy, the next request is taken late and its
//! lateness counts in its latency — the offered load is not quietly lowered, which is the
//! coordinated-omission mistake. Closed loop (`--max`): every slot sends its next request as soon
//! as its previous one is answered.
//!
//! Everything runs on one tokio current-thread runtime, so the shared counters are plain `Cell`s.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

use crate::client::{Connection, Outcome, Target};
use crate::plan::Plan;
use crate::verify::Acknowledged;
use crate::wire::Messages;

/// When the load stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// After this long (no request is scheduled at or after it).
    Duration(Duration),
    /// After this many spans (the plan knows the request count).
    Count,
}

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Open loop at this many spans per second, reached linearly over `ramp_up`.
    Rate {
        /// Spans per second at full rate.
        spans_per_second: f64,
        /// Time to go from zero to full rate.
        ramp_up: Duration,
    },
    /// Closed loop: as fast as answers come.
    Max,
}

/// The timetable of an open-loop run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timetable {
    /// Seconds between requests at full rate.
    interval: f64,
    ramp_up: f64,
}

impl Timetable {
    /// A timetable for requests of `batch_size` spans at `spans_per_second`, ramped over `ramp_up`.
    #[must_use]
    pub fn new(spans_per_second: f64, batch_size: u32, ramp_up: Duration) -> Self {
        Self { interval: f64::from(batch_size) / spans_per_second, ramp_up: ramp_up.as_secs_f64() }
    }

    /// When request `request` is due, from the start. During the ramp-up the rate grows linearly,
    /// so the requests sent by time `t` are `t² / (2 · ramp_up · interval)`; after it they are
    /// `(t − ramp_up / 2) / interval`. This inverts those.
    #[must_use]
    pub fn due(&self, request: u64) -> Duration {
        let at_full_rate = request as f64 * self.interval;
        let seconds = if at_full_rate < self.ramp_up / 2.0 {
            (2.0 * at_full_rate * self.ramp_up).sqrt()
        } else {
            at_full_rate + self.ramp_up / 2.0
        };
        Duration::from_secs_f64(seconds)
    }
}

/// What a run does.
#[derive(Debug)]
pub struct LoadSettings {
    /// Where to send.
    pub target: Target,
    /// Connections to open.
    pub connections: u32,
    /// Requests in flight per connection.
    pub in_flight: u32,
    /// Pacing.
    pub pace: Pace,
    /// When to stop.
    pub bound: Bound,
    /// Retries of one request on 429/503/`RESOURCE_EXHAUSTED`/`UNAVAILABLE`.
    pub max_retries: u32,
    /// Whether to draw the progress line.
    pub progress: bool,
}

/// The counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Requests sent (each counted once, however often retried).
    pub requests_sent: u64,
    /// Spans in those requests.
    pub spans_sent: u64,
    /// Messages those requests took: HTTP bodies, WebSocket messages or UDP datagrams (more than
    /// one per request for Jaeger, one per process and datagram).
    pub messages_sent: u64,
    /// Requests the collector accepted.
    pub requests_accepted: u64,
    /// Spans the collector accepted: those of accepted requests, less what it reported rejected
    /// in a `partial_success`.
    pub spans_accepted: u64,
    /// Accepted requests whose answer reported rejected spans (`partial_success`). Which spans
    /// were rejected is not said, so `--verify` expects none of their spans.
    pub requests_partially_rejected: u64,
    /// Requests refused for good, or given up after `--max-retries`.
    pub requests_rejected: u64,
    /// Spans in those requests, and spans a `partial_success` reported rejected.
    pub spans_rejected: u64,
    /// Requests that failed on a broken connection.
    pub requests_failed: u64,
    /// Retries sent.
    pub retries: u64,
}

/// What a run measured.
#[derive(Debug)]
pub struct LoadResult {
    /// The counters.
    pub counts: Counts,
    /// Answers by status (`http 200`, `grpc UNAVAILABLE`, `udp sent`, `websocket accepted`,
    /// `connection error`), retries included.
    pub statuses: BTreeMap<String, u64>,
    /// Request latency in microseconds, from the scheduled send time to the final answer.
    pub latency_micros: Histogram<u64>,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// The sending phase: from the start until the timetable ended or the last request was
    /// first sent, whichever is later. Spans sent over this is the achieved send rate.
    pub send_window: Duration,
    /// Which requests were acknowledged.
    pub acknowledged: Acknowledged,
}

struct Shared<'a> {
    plan: &'a Plan,
    settings: &'a LoadSettings,
    start: Instant,
    start_wall_nanos: u64,
    timetable: Option<Timetable>,
    next_request: Cell<u64>,
    counts: RefCell<Counts>,
    statuses: RefCell<BTreeMap<String, u64>>,
    acknowledged: RefCell<Vec<u64>>,
    last_send: Cell<Duration>,
}

impl Shared<'_> {
    /// Takes the next request number and its due time, or `None` when the run is over.
    fn take_request(&self) -> Option<(u64, Instant)> {
        let request = self.next_request.get();
        if self.plan.total_requests().is_some_and(|total| request >= total) {
            return None;
        }
        let due = match self.timetable {
            Some(timetable) => self.start + timetable.due(request),
            None => Instant::now(),
        };
        if let Bound::Duration(limit) = self.settings.bound {
            if due >= self.start + limit {
                return None;
            }
        }
        self.next_request.set(request + 1);
        Some((request, due))
    }

    fn count_status(&self, status: &str) {
        *self.statuses.borrow_mut().entry(status.to_owned()).or_default() += 1;
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The first connection could not be made.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The local clock is outside what the templates can hold.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// The runtime could not be built.
    #[error("starting the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs the load described by `settings` with the requests of `plan`.
///
/// # Errors
/// [`LoadError`] when nothing could be sent at all: no first connection, a broken clock.
pub fn run(plan: &Plan, settings: &LoadSettings) -> Result<LoadResult, LoadError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(LoadError::Runtime)?;
    runtime.block_on(run_async(plan, settings))
}

async fn run_async(plan: &Plan, settings: &LoadSettings) -> Result<LoadResult, LoadError> {
    // Connect before the clock starts, so that connection set-up is not counted as latency.
    let mut slots = Vec::new();
    for _ in 0..settings.connections {
        let first = settings.target.connect().await?;
        for _ in 1..settings.in_flight {
            let slot = match first.share() {
                Some(shared) => shared,
                None => settings.target.connect().await?,
            };
            slots.push(slot);
        }
        slots.push(first);
    }
    let start_wall_nanos =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64);
    let timetable = match settings.pace {
        Pace::Rate { spans_per_second, ramp_up } => {
            Some(Timetable::new(spans_per_second, plan.span_stride() as u32, ramp_up))
        }
        Pace::Max => None,
    };
    let shared = Shared {
        plan,
        settings,
        start: Instant::now(),
        start_wall_nanos,
        timetable,
        next_request: Cell::new(0),
        counts: RefCell::new(Counts::default()),
        statuses: RefCell::new(BTreeMap::new()),
        acknowledged: RefCell::new(Vec::new()),
        last_send: Cell::new(Duration::ZERO),
    };
    let progress = crate::report::Progress::new(settings.progress);
    let workers = slots.into_iter().map(|connection| slot_loop(&shared, connection));
    let all_done = futures_join_all(workers);
    let histograms = {
        let mut all_done = std::pin::pin!(all_done);
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                histograms = &mut all_done => break histograms,
                _ = ticker.tick() => progress.update(&shared.counts.borrow(), shared.start.elapsed()),
            }
        }
    };
    let elapsed = shared.start.elapsed();
    progress.finish();
    let mut latency_micros = new_histogram();
    for histogram in histograms {
        latency_micros.add(histogram?).expect("histograms of the same bounds add");
    }
    let scheduled_end = match (settings.bound, timetable) {
        (Bound::Duration(limit), Some(_)) => limit,
        (Bound::Count, Some(timetable)) => timetable.due(shared.next_request.get()),
        (_, None) => Duration::ZERO,
    };
    let counts = shared.counts.take();
    let mut acknowledged = Acknowledged::new(counts.requests_sent);
    for request in shared.acknowledged.take() {
        acknowledged.insert(request);
    }
    Ok(LoadResult {
        counts,
        statuses: shared.statuses.take(),
        latency_micros,
        elapsed,
        send_window: scheduled_end.max(shared.last_send.get()),
        acknowledged,
    })
}

/// Awaits every future, concurrently, in order of the results.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, result) in pinned.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(output) => *result = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

fn new_histogram() -> Histogram<u64> {
    // One microsecond to one hour, three significant figures.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// One request slot: takes requests off the timetable until the run is over.
async fn slot_loop(shared: &Shared<'_>, mut connection: Connection) -> Result<Histogram<u64>, LoadError> {
    let mut histogram = new_histogram();
    let mut body = Vec::new();
    let mut messages = Messages::new();
    let wire = shared.plan.wire();
    while let Some((request, due)) = shared.take_request() {
        tokio::time::sleep_until(due.into()).await;
        let time_nanos = shared.start_wall_nanos + (due - shared.start).as_nanos() as u64;
        let spans = shared.plan.render(request, time_nanos, &mut body)? as u64;
        wire.encode(&body, &mut messages).map_err(|error| LoadError::Template(error.into()))?;
        shared.last_send.set(shared.last_send.get().max(shared.start.elapsed()));
        {
            let mut counts = shared.counts.borrow_mut();
            counts.requests_sent += 1;
            counts.spans_sent += spans;
            counts.messages_sent += messages.len() as u64;
        }
        let ending = send_messages(shared, &mut connection, &messages).await;
        let mut counts = shared.counts.borrow_mut();
        match ending {
            Some(Ending::Accepted { rejected_spans }) => {
                let rejected_spans = rejected_spans.min(spans);
                counts.requests_accepted += 1;
                counts.spans_accepted += spans - rejected_spans;
                counts.spans_rejected += rejected_spans;
                if rejected_spans == 0 {
                    shared.acknowledged.borrow_mut().push(request);
                } else {
                    counts.requests_partially_rejected += 1;
                }
            }
            Some(Ending::Rejected) => {
                counts.requests_rejected += 1;
                counts.spans_rejected += spans;
            }
            None => counts.requests_failed += 1,
        }
        drop(counts);
        let micros = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
        histogram.saturating_record(micros.max(1));
    }
    Ok(histogram)
}

/// How a request ended, after its retries.
enum Ending {
    /// Taken, all but `rejected_spans` of its spans.
    Accepted { rejected_spans: u64 },
    /// Refused for good, or out of retries.
    Rejected,
}

/// Sends a request's messages in order (one for most protocols; one per Jaeger process or
/// datagram). The request is accepted when every message is; the first refused or failed message
/// ends it (the messages before it may have been delivered: `--verify` counts their spans as
/// delivered without acknowledgement, which is not an error).
async fn send_messages(shared: &Shared<'_>, connection: &mut Connection, messages: &Messages) -> Option<Ending> {
    let mut rejected_spans = 0;
    for message in messages.iter() {
        match send_with_retries(shared, connection, message).await? {
            Ending::Accepted { rejected_spans: rejected } => rejected_spans += rejected,
            Ending::Rejected => return Some(Ending::Rejected),
        }
    }
    Some(Ending::Accepted { rejected_spans })
}

/// Sends one message until it is accepted, refused for good, or out of retries; `None` when the
/// connection broke and could not be re-opened or broke on every retry.
async fn send_with_retries(shared: &Shared<'_>, connection: &mut Connection, message: &[u8]) -> Option<Ending> {
    let target = &shared.settings.target;
    let mut attempt = 0;
    loop {
        let outcome = match connection.send(target, message).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // The connection broke (a server may close it after refusing a request): open a
                // new one and send again, as OTLP exporters do. The collector may have taken the
                // request before the break; a duplicate then shows up in `--verify`.
                shared.count_status("connection error");
                match target.connect().await {
                    Ok(fresh) => *connection = fresh,
                    Err(_) => return None,
                }
                if attempt >= shared.settings.max_retries {
                    return None;
                }
                attempt += 1;
                shared.counts.borrow_mut().retries += 1;
                continue;
            }
        };
        match outcome {
            Outcome::Accepted { rejected_spans, status } => {
                shared.count_status(status);
                return Some(Ending::Accepted { rejected_spans });
            }
            Outcome::Rejected { status } => {
                shared.count_status(&status);
                return Some(Ending::Rejected);
            }
            Outcome::Retry { status, after } => {
                shared.count_status(&status);
                if attempt >= shared.settings.max_retries {
                    return Some(Ending::Rejected);
                }
                attempt += 1;
                shared.counts.borrow_mut().retries += 1;
                // Without a server-given delay: exponential back-off from 100 ms, capped at 5 s.
                let backoff = Duration::from_millis(100 << attempt.min(6)).min(Duration::from_secs(5));
                tokio::time::sleep(after.unwrap_or(backoff)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timetable_spaces_requests_evenly_at_full_rate() {
        let timetable = Timetable::new(50_000.0, 100, Duration::ZERO);
        assert_eq!(timetable.due(0), Duration::ZERO);
        assert_eq!(timetable.due(500), Duration::from_secs(1));
        assert_eq!(timetable.due(1_500), Duration::from_secs(3));
    }

    #[test]
    fn the_ramp_up_sends_half_the_full_rate_requests_during_it() {
        // 1,000 requests/s after a 2 s ramp: 1,000 requests during the ramp, the 1,000th at 2 s.
        let timetable = Timetable::new(100_000.0, 100, Duration::from_secs(2));
        assert!((timetable.due(1_000).as_secs_f64() - 2.0).abs() < 1e-9);
        assert!(
            (timetable.due(250).as_secs_f64() - 1.0).abs() < 1e-9,
            "a quarter of the ramp's requests by half of it"
        );
        assert!((timetable.due(2_000).as_secs_f64() - 3.0).abs() < 1e-9);
        let dues: Vec<Duration> = (0..3_000).map(|request| timetable.due(request)).collect();
        assert!(dues.windows(2).all(|pair| pair[0] < pair[1]), "due times increase");
    }
}
