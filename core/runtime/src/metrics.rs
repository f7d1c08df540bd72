//! What each core publishes: its receivers', pipelines', processors' and exporters' counters as
//! Prometheus samples, and how much CPU the core's thread has used (its load).

use std::time::Duration;

use spanpipe_exporters::{DropReason as ExporterDropReason, LATENCY_BUCKET_BOUNDS};
use spanpipe_processors::Processor;

use crate::core_parts::CoreParts;
use crate::telemetry::Sample;

/// CPU time used by the calling thread, which on a data-plane core is the core's work.
#[derive(Debug)]
pub struct ThreadCpuClock;

impl ThreadCpuClock {
    /// A clock for the calling thread.
    #[must_use]
    pub fn start() -> Self {
        Self
    }

    /// CPU time the calling thread has used since it started.
    #[must_use]
    pub fn used(&self) -> Duration {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `now` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
            return Duration::ZERO;
        }
        Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
    }
}

/// One counter sample per `(name, help, value)`, all with `labels`.
fn push_counters(
    samples: &mut Vec<Sample>,
    labels: &[(&'static str, String)],
    counters: &[(&'static str, &'static str, u64)],
) {
    for &(name, help, value) in counters {
        samples.push(Sample::counter(name, help, labels.to_vec(), value));
    }
}

/// `base` with one more label.
fn with_label(base: &[(&'static str, String)], key: &'static str, value: String) -> Vec<(&'static str, String)> {
    let mut all = base.to_vec();
    all.push((key, value));
    all
}

fn labels(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(key, value)| (*key, (*value).to_owned())).collect()
}

/// Every sample one core publishes.
pub(crate) fn core_samples(core: usize, parts: &CoreParts, clock: &ThreadCpuClock) -> Vec<Sample> {
    let mut samples = Vec::new();
    let core_label = core.to_string();
    let mut cpu = Sample::counter(
        "spanpipe_core_cpu_seconds_total",
        "CPU time used by each data-plane core's thread (its load: the rate is the busy fraction).",
        labels(&[("core", &core_label)]),
        0,
    );
    cpu.value = clock.used().as_secs_f64();
    samples.push(cpu);
    receiver_samples(parts, &mut samples);
    source_samples(parts, &mut samples);
    pipeline_samples(parts, &mut samples);
    exporter_samples(parts, &mut samples);
    samples
}

fn receiver_samples(parts: &CoreParts, samples: &mut Vec<Sample>) {
    for receiver in &parts.receivers {
        let id = &receiver.id;
        for (protocol, _, stats) in receiver.running.listeners() {
            let stats = stats.snapshot();
            let transport = protocol.as_str();
            let base = labels(&[("receiver", id), ("transport", transport)]);
            let counters = [
                (
                    "spanpipe_receiver_accepted_spans_total",
                    "Spans the receiver accepted into the pipeline.",
                    stats.spans_accepted,
                ),
                (
                    "spanpipe_receiver_accepted_bytes_total",
                    "Request bytes (as received) of accepted requests.",
                    stats.bytes_accepted,
                ),
                (
                    "spanpipe_receiver_rejected_spans_total",
                    "Spans of accepted requests that the pipeline rejected (partial success).",
                    stats.spans_rejected,
                ),
                (
                    "spanpipe_receiver_requests_total",
                    "Requests accepted (including empty ones).",
                    stats.requests_accepted + stats.requests_empty,
                ),
                (
                    "spanpipe_receiver_tls_handshake_failures_total",
                    "Connections to a TLS port closed because the handshake did not complete.",
                    stats.tls_handshake_failures,
                ),
            ];
            push_counters(samples, &base, &counters);
            for (reason, value) in [
                ("refused", stats.requests_refused),
                ("malformed", stats.requests_malformed),
                ("too_large", stats.requests_too_large),
                ("unsupported_media_type", stats.requests_unsupported_media_type),
                ("not_found", stats.requests_not_found),
                ("method_not_allowed", stats.requests_method_not_allowed),
                ("forbidden", stats.requests_forbidden),
                ("header_timeout", stats.header_timeouts),
                ("body_timeout", stats.body_timeouts),
                ("write_timeout", stats.write_timeouts),
            ] {
                samples.push(Sample::counter(
                    "spanpipe_receiver_refused_requests_total",
                    "Requests not accepted, by reason (refused: the pipeline was full or shutting down).",
                    with_label(&base, "reason", reason.to_owned()),
                    value,
                ));
            }
            if protocol.is_datagram() {
                let counters = [
                    (
                        "spanpipe_receiver_datagrams_total",
                        "Datagrams read from a UDP socket (accepted or not).",
                        stats.datagrams_received,
                    ),
                    (
                        "spanpipe_receiver_datagram_bytes_total",
                        "Bytes of the datagrams read from a UDP socket.",
                        stats.datagram_bytes_received,
                    ),
                    (
                        "spanpipe_receiver_kernel_drops_total",
                        "Datagrams the kernel dropped because the socket's receive buffer was full (SO_RXQ_OVFL).",
                        stats.kernel_drops,
                    ),
                ];
                push_counters(samples, &base, &counters);
            } else {
                samples.push(Sample::gauge(
                    "spanpipe_receiver_open_connections",
                    "Connections open now.",
                    base,
                    stats.connections_opened.saturating_sub(stats.connections_closed) as f64,
                ));
            }
        }
    }
}

/// Source plugins count as receivers (transport `plugin`), plus their cycles.
fn source_samples(parts: &CoreParts, samples: &mut Vec<Sample>) {
    for running in &parts.sources {
        let stats = running.source.stats();
        let base = labels(&[("receiver", &running.id), ("transport", "plugin")]);
        let counters = [
            (
                "spanpipe_receiver_accepted_spans_total",
                "Spans the receiver accepted into the pipeline.",
                stats.spans_out.saturating_sub(running.refused_spans),
            ),
            (
                "spanpipe_receiver_refused_spans_total",
                "Spans a source emitted that the pipeline refused.",
                running.refused_spans,
            ),
            (
                "spanpipe_receiver_rejected_requests_total",
                "Requests a source plugin pushed that were not valid OTLP or held no spans.",
                stats.requests_rejected,
            ),
        ];
        push_counters(samples, &base, &counters);
        for (outcome, value) in [("run", stats.cycles), ("skipped", stats.cycles_skipped)] {
            samples.push(Sample::counter(
                "spanpipe_plugin_source_cycles_total",
                "Cycles of a source plugin: run, or skipped (plugin absent, restarting or its breaker open).",
                with_label(&base, "outcome", outcome.to_owned()),
                value,
            ));
        }
    }
}

fn pipeline_samples(parts: &CoreParts, samples: &mut Vec<Sample>) {
    for pipeline in &parts.pipelines {
        let name = pipeline.name();
        samples.push(Sample::gauge(
            "spanpipe_pipeline_backlog_spans",
            "Accepted spans waiting for a full exporter queue (while non-zero, receivers answer retry-later).",
            labels(&[("pipeline", name)]),
            pipeline.backlog_spans() as f64,
        ));
        samples.push(Sample::counter(
            "spanpipe_pipeline_lost_spans_total",
            "Accepted spans lost because an exporter had already closed (only at shutdown).",
            labels(&[("pipeline", name)]),
            pipeline.counters().lost_spans.get(),
        ));
        pipeline.with_processors(|processors| {
            for (id, processor) in pipeline.processor_ids().iter().zip(processors) {
                let stats = processor.stats();
                let base = labels(&[("pipeline", name), ("processor", id)]);
                let counters = [
                    ("spanpipe_processor_incoming_spans_total", "Spans handed to the processor.", stats.spans_in),
                    ("spanpipe_processor_outgoing_spans_total", "Spans the processor passed on.", stats.spans_out),
                    (
                        "spanpipe_processor_bypassed_spans_total",
                        "Spans passed on unprocessed: a plugin stage's plugin absent, failed or bypassed by its breaker.",
                        stats.spans_bypassed,
                    ),
                    (
                        "spanpipe_processor_outgoing_batches_total",
                        "Batches the processor emitted (for `batch`: the batches sent on).",
                        stats.batches_out,
                    ),
                ];
                push_counters(samples, &base, &counters);
                for (reason, value) in stats.dropped_by_reason() {
                    samples.push(Sample::counter(
                        "spanpipe_processor_dropped_spans_total",
                        "Spans the processor left out, by reason (sampled out, filtered, ...).",
                        with_label(&base, "reason", reason.as_str().to_owned()),
                        value,
                    ));
                }
            }
        });
    }
}

fn exporter_samples(parts: &CoreParts, samples: &mut Vec<Sample>) {
    for (id, exporter) in &parts.exporters {
        let stats = exporter.stats().snapshot();
        let base = labels(&[("exporter", id)]);
        let counters = [
            ("spanpipe_exporter_sent_spans_total", "Spans delivered.", stats.spans_sent),
            ("spanpipe_exporter_sent_batches_total", "Batches delivered.", stats.batches_sent),
            (
                "spanpipe_exporter_sent_bytes_total",
                "OTLP protobuf bytes delivered (before encoding).",
                stats.bytes_sent,
            ),
            (
                "spanpipe_exporter_sent_wire_bytes_total",
                "Request bytes sent (after encoding and compression).",
                stats.wire_bytes_sent,
            ),
            (
                "spanpipe_exporter_backend_rejected_spans_total",
                "Spans the backend rejected in a partial success.",
                stats.spans_rejected_by_backend,
            ),
            (
                "spanpipe_exporter_enqueue_refused_spans_total",
                "Spans the full sending queue pushed back (kept and retried, not lost).",
                stats.refused_spans,
            ),
            ("spanpipe_exporter_retries_total", "Export attempts after the first.", stats.retries),
            ("spanpipe_exporter_failovers_total", "Switches from a failing endpoint to the next one.", stats.failovers),
            ("spanpipe_exporter_failbacks_total", "Returns to the primary endpoint.", stats.failbacks),
            (
                "spanpipe_exporter_tls_handshake_failures_total",
                "Export attempts that failed because of TLS (handshake failed, certificate refused).",
                stats.tls_handshake_failures,
            ),
        ];
        push_counters(samples, &base, &counters);
        for reason in ExporterDropReason::ALL {
            samples.push(Sample::counter(
                "spanpipe_exporter_dropped_spans_total",
                "Accepted spans given up, by reason.",
                with_label(&base, "reason", reason.as_str().to_owned()),
                stats.dropped_spans[reason.index()],
            ));
        }
        samples.push(Sample::gauge(
            "spanpipe_exporter_queue_batches",
            "Batches in the sending queue.",
            base.clone(),
            stats.queue_depth as f64,
        ));
        samples.push(Sample::gauge(
            "spanpipe_exporter_in_flight_requests",
            "Requests on the wire.",
            base.clone(),
            stats.in_flight as f64,
        ));
        let help = "Export request latency.";
        let mut cumulative = 0u64;
        for (index, count) in stats.latency_buckets.iter().enumerate() {
            cumulative += count;
            let bound = LATENCY_BUCKET_BOUNDS
                .get(index)
                .map_or_else(|| "+Inf".to_owned(), |bound| bound.as_secs_f64().to_string());
            samples.push(Sample::histogram(
                "spanpipe_exporter_latency_seconds",
                help,
                "_bucket",
                with_label(&base, "le", bound),
                cumulative as f64,
            ));
        }
        samples.push(Sample::histogram(
            "spanpipe_exporter_latency_seconds",
            help,
            "_sum",
            base.clone(),
            stats.latency_sum_micros as f64 / 1e6,
        ));
        samples.push(Sample::histogram("spanpipe_exporter_latency_seconds", help, "_count", base, cumulative as f64));
    }
}
