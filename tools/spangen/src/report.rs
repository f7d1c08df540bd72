//! What a run prints: the live progress line and the final report (text or JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::load::{Counts, LoadResult};
use crate::verify::VerifyReport;

/// The live line on standard error. Hidden when standard error is not a terminal (indicatif's
/// rule) or when progress is off.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress line, drawn only when `visible`.
    #[must_use]
    pub fn new(visible: bool) -> Self {
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Self { bar }
    }

    /// Redraws with the current counters.
    pub fn update(&self, counts: &Counts, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "sent {} spans ({:.0}/s) · accepted {} · rejected {} · failed requests {} · retried {}",
            counts.spans_sent,
            counts.spans_sent as f64 / seconds,
            counts.spans_accepted,
            counts.spans_rejected,
            counts.requests_failed,
            counts.retries
        ));
        self.bar.tick();
    }

    /// Clears the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Latency percentiles, in microseconds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// The final report of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// What was asked for, in words (`open loop at 50000 spans/s`, `closed loop`).
    pub load: String,
    /// Seconds from the start to the last answer.
    pub elapsed_seconds: f64,
    /// Seconds of the sending phase.
    pub send_window_seconds: f64,
    /// Spans sent per second of the sending phase: the achieved offered rate.
    pub offered_spans_per_second: f64,
    /// Spans accepted per second of the whole run.
    pub accepted_spans_per_second: f64,
    /// The counters.
    pub counts: Counts,
    /// Request latency from the scheduled send time.
    pub latency: Latency,
    /// Answers by status, retries included.
    pub statuses: BTreeMap<String, u64>,
    /// `--verify`'s findings, when asked.
    pub verify: Option<VerifyReport>,
}

impl Report {
    /// Summarises a run.
    #[must_use]
    pub fn new(load: String, result: &LoadResult, verify: Option<VerifyReport>) -> Self {
        let elapsed = result.elapsed.as_secs_f64().max(1e-9);
        let window = result.send_window.as_secs_f64().max(1e-9);
        let histogram = &result.latency_micros;
        let latency = if histogram.is_empty() {
            Latency { p50_us: 0, p90_us: 0, p99_us: 0, max_us: 0 }
        } else {
            Latency {
                p50_us: histogram.value_at_quantile(0.5),
                p90_us: histogram.value_at_quantile(0.9),
                p99_us: histogram.value_at_quantile(0.99),
                max_us: histogram.max(),
            }
        };
        Self {
            load,
            elapsed_seconds: elapsed,
            send_window_seconds: window,
            offered_spans_per_second: result.counts.spans_sent as f64 / window,
            accepted_spans_per_second: result.counts.spans_accepted as f64 / elapsed,
            counts: result.counts.clone(),
            latency,
            statuses: result.statuses.clone(),
            verify,
        }
    }

    /// Whether any request failed: refused for good, out of retries, or lost with its connection.
    #[must_use]
    pub fn has_request_errors(&self) -> bool {
        self.counts.requests_rejected > 0 || self.counts.requests_failed > 0
    }

    /// The report for people.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        let c = &self.counts;
        let _ = writeln!(out, "load:      {}", self.load);
        let _ = writeln!(
            out,
            "sent:      {} spans in {} requests ({} messages) over {:.2} s: {:.0} spans/s offered",
            c.spans_sent, c.requests_sent, c.messages_sent, self.send_window_seconds, self.offered_spans_per_second
        );
        let _ = writeln!(
            out,
            "accepted:  {} spans in {} requests ({} with spans rejected in a partial success): {:.0} spans/s over \
             {:.2} s",
            c.spans_accepted,
            c.requests_accepted,
            c.requests_partially_rejected,
            self.accepted_spans_per_second,
            self.elapsed_seconds
        );
        let _ = writeln!(
            out,
            "failed:    {} requests rejected ({} spans), {} lost with their connection; {} retries",
            c.requests_rejected, c.spans_rejected, c.requests_failed, c.retries
        );
        let l = &self.latency;
        let _ = writeln!(
            out,
            "latency:   p50 {} · p90 {} · p99 {} · max {} (from the scheduled send time)",
            micros(l.p50_us),
            micros(l.p90_us),
            micros(l.p99_us),
            micros(l.max_us)
        );
        let statuses: Vec<String> = self.statuses.iter().map(|(status, count)| format!("{status}: {count}")).collect();
        let _ = writeln!(out, "answers:   {}", statuses.join(", "));
        if let Some(verify) = &self.verify {
            let verdict = if verify.is_exact() { "exact" } else { "MISMATCH" };
            let _ = writeln!(
                out,
                "verify:    {verdict}: {} expected, {} found; {} missing, {} duplicated, {} altered, {} unknown, \
                 {} unreadable lines; {} delivered without acknowledgement",
                verify.expected,
                verify.found,
                verify.missing,
                verify.duplicated,
                verify.altered,
                verify.unknown,
                verify.unreadable_lines,
                verify.unacknowledged_delivered
            );
            for example in &verify.examples {
                let _ = writeln!(out, "           {example}");
            }
        }
        out
    }
}

fn micros(value: u64) -> String {
    if value >= 10_000 {
        format!("{:.1} ms", value as f64 / 1000.0)
    } else {
        format!("{value} µs")
    }
}
