//! Run-time control: the adaptive sampler's base rate, changed through the telemetry endpoint
//! while spans flow, takes effect on the next batch on every core.

mod common;

use std::time::Duration;

use common::{free_address, http_request, post_until_accepted, wait_until, SpanIds, Spanpipe};

#[test]
fn adaptive_sampler_rate_set_at_run_time_applies_to_the_next_batches() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let http = free_address();
    let components = format!(
        "receivers:\n  otlp:\n    protocols:\n      http: {{endpoint: \"{http}\"}}\n\
         processors:\n  adaptive_sampler/edge: {{base_sampling_percentage: 0, latency_threshold: 1h}}\n\
         exporters:\n  blackhole:\n"
    );
    let a = Spanpipe::start(
        dir.path(),
        "a",
        &components,
        "traces: {receivers: [otlp], processors: [adaptive_sampler/edge], exporters: [blackhole]}",
    );
    let control = a.telemetry_address();
    let path = "/v1/adaptive_sampler/edge"; // `/v1/` and the processor's config id
    let kept = |labels: &[(&str, &str)]| a.metric("spanpipe_processor_outgoing_spans_total", labels);
    let labels = [("processor", "adaptive_sampler/edge")];
    let mut ids = SpanIds::default();

    // At 0% only error spans pass (nothing is slower than an hour).
    let (body, _) = ids.request(200, 1);
    post_until_accepted(http, &body, Duration::from_secs(10));
    wait_until("the first batch to be counted", Duration::from_secs(5), || {
        a.metric("spanpipe_processor_incoming_spans_total", &labels) >= 200.0
    });
    let kept_at_zero = kept(&labels);
    assert!(kept_at_zero < 200.0, "at 0% most spans are sampled out, kept {kept_at_zero}");

    let reply = http_request(control, "GET", path, &[], b"").expect("GET the rate");
    assert_eq!((reply.status, String::from_utf8_lossy(&reply.body).trim()), (200, "adaptive_sampler/edge 0"));
    for (body, status) in [(&b"250"[..], 400), (&b"lots"[..], 400), (&b"100"[..], 200)] {
        let reply = http_request(control, "PUT", path, &[], body).expect("PUT the rate");
        assert_eq!(
            reply.status,
            status,
            "PUT {}: {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&reply.body)
        );
    }
    let reply = http_request(control, "PUT", "/v1/adaptive_sampler/missing", &[], b"5").expect("PUT an unknown id");
    assert_eq!(reply.status, 404);

    // At 100% every span of the next request passes.
    let (body, _) = ids.request(200, 2);
    post_until_accepted(http, &body, Duration::from_secs(10));
    wait_until("the second batch to be counted", Duration::from_secs(5), || {
        a.metric("spanpipe_processor_incoming_spans_total", &labels) >= 400.0
    });
    assert_eq!(kept(&labels), kept_at_zero + 200.0, "at 100% every span is kept");
}
