//! The probabilistic sampler against the OpenTelemetry Collector's own test vectors, statistical
//! bounds on its rate, and consistency across instances and rates. Outputs are read with prost.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::{batch_of, request_of, run_spans, span, trace_id, SplitMix};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use spanpipe_config::ComponentConfig;
use spanpipe_processors::{DropReason, ProbabilisticSampler, ProbabilisticSamplerConfig, Processor, SamplerMode};

fn sampler(
    mode: Option<SamplerMode>,
    percentage: f32,
    edit: impl FnOnce(&mut ProbabilisticSamplerConfig),
) -> ProbabilisticSampler {
    let mut config = ProbabilisticSamplerConfig { sampling_percentage: percentage, mode, ..Default::default() };
    edit(&mut config);
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config.build()
}

fn one_span(trace: [u8; 16], trace_state: &str, attribute: Option<(&str, Value)>) -> Span {
    let mut span = span(trace, 0xfefefefe);
    span.trace_state = trace_state.to_owned();
    if let Some((key, value)) = attribute {
        span.attributes.push(common::key_value(key, value));
    }
    span
}

/// The kept span's `tracestate`, or `None` when it was dropped.
fn decide(sampler: &mut ProbabilisticSampler, span: Span) -> Option<String> {
    let kept = run_spans(sampler, batch_of(&request_of("svc", vec![span])));
    assert!(kept.len() <= 1);
    kept.first().map(|span| span.trace_state.clone())
}

#[test]
fn hash_seed_decisions_match_the_collectors_vectors() {
    // From the Collector's TestHashingFunction (50%, seed, trace id, sampled).
    let vectors = [
        (653, "474a03c76d75951a4b4c537ced8f1122", true),
        (563, "53a518291e91307e43cd8467bb06f986", true),
        (142, "a56a02f843b9bc6ee0b13889249e90e6", true),
        (904, "4e40762d3ee97a1c0932e4fa584f89a8", false),
        (445, "5224507db93db513f0ea2a4b4e0578c8", true),
        (38, "0c8717ced36216037af657e9d7f8b35b", true),
        (561, "2a8aa76c18d08e1e8be935541f9318c7", false),
        (757, "9e3d0f9481dc422cb613ea550897ae71", false),
        (22, "66a66c516ac22054673e5da5e6492545", false),
        (172, "84a1ce7bcea3e66194e72b4aa2694e31", true),
        (552, "a811a7def34ca4b98d8e320afd115fad", false),
        (546, "e3a345cc8dbb6f014bfa1edad3981820", true),
        (315, "a71effb50e28d27cbdc9892f3765b8c2", false),
        (790, "7629ecbea89398bfd9752a2f51c2c137", true),
        (555, "de6cdfb44d69e211f886c57120d7bda0", true),
        (963, "20cb3dcebe2cf8abe6102f4a2e548245", false),
        (666, "3ee60b013303bcfda06be89071b90bd1", true),
        (305, "c90c7cf3471bbc3a804a8a831633705b", true),
        (35, "855f493c5b5b1e2fcbc9993f8061eac8", false),
        (936, "62dda24e4be24f5198e4d8dd4010c811", true),
        (835, "6c77db08bbded7bdd5c99c6e2fea41d2", false),
        (400, "54156d7434a894ef07f2a80dbf0f1138", true),
        (871, "f6ea221283dcb42f89bfb15fa33398d2", false),
        (512, "b3ba1ed226288dede87ac1f2ba88de2b", true),
        (460, "60c3b9a2dde734d71ba5cca7eb164bce", true),
    ];
    for (seed, trace, sampled) in vectors {
        let mut sampler = sampler(None, 50.0, |config| config.hash_seed = seed);
        let kept = decide(&mut sampler, one_span(trace_id(trace), "", None));
        assert_eq!(kept.is_some(), sampled, "seed {seed}, trace {trace}");
    }
}

#[test]
fn hash_seed_records_randomness_and_threshold_in_tracestate() {
    // The Collector's Test_tracesamplerprocessor_HashSeedTraceState expectations.
    for (percentage, tvalue) in
        [(100.0, "0"), (75.0, "4"), (50.0, "8"), (25.0, "c"), (10.0, "e668"), (100.0f32 / 3.0, "aaac")]
    {
        let mut sampler = sampler(Some(SamplerMode::HashSeed), percentage, |config| config.hash_seed = 4321);
        let mut ids = SplitMix(7);
        let mut found = 0;
        while found < 10 {
            let Some(state) = decide(&mut sampler, one_span(ids.trace_id(), "", None)) else { continue };
            found += 1;
            let (rv, th) = state
                .strip_prefix("ot=rv:")
                .and_then(|rest| rest.split_once(";th:"))
                .unwrap_or_else(|| panic!("{percentage}%: unexpected tracestate {state:?}"));
            assert_eq!(th, tvalue, "{percentage}%");
            assert_eq!(rv.len(), 14);
            let padded = format!("{th:0<14}");
            assert!(padded.as_str() <= rv, "{percentage}%: threshold {th} above randomness {rv}");
        }
    }
}

/// One row of the Collector's Test_tracesamplerprocessor_TraceState: expected tracestate of the
/// kept span per mode (`None`: dropped).
struct TraceStateCase {
    name: &'static str,
    percentage: f32,
    precision: i32,
    fail_closed: bool,
    trace: &'static str,
    trace_state: &'static str,
    priority: Option<i64>,
    equalizing: Option<&'static str>,
    proportional: Option<&'static str>,
}

const DEFAULT_TRACE: &str = "fefefefefefefefefe80000000000000";
const IMPROBABLE_TRACE: &str = "111111111111111111ffffffffffffff";

fn case(name: &'static str, percentage: f32, trace_state: &'static str, both: Option<&'static str>) -> TraceStateCase {
    TraceStateCase {
        name,
        percentage,
        precision: 14,
        fail_closed: false,
        trace: DEFAULT_TRACE,
        trace_state,
        priority: None,
        equalizing: both,
        proportional: both,
    }
}

#[test]
fn consistent_modes_match_the_collectors_tracestate_table() {
    let cases = [
        case("100 percent", 100.0, "", Some("ot=th:0")),
        case("50 percent sampled", 50.0, "", Some("ot=th:8")),
        TraceStateCase { trace: "ddddddddddddddddddc0000000000000", ..case("25 sampled", 25.0, "", Some("ot=th:c")) },
        TraceStateCase { trace: "ddddddddddddddddddb0000000000000", ..case("25 unsampled", 25.0, "", None) },
        case("1 percent sampled", 1.0, "ot=rv:FD70A3D70A3D71", Some("ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71")),
        TraceStateCase {
            precision: 4,
            ..case("1 percent precision 4", 1.0, "ot=rv:FD70A3D70A3D71", Some("ot=rv:FD70A3D70A3D71;th:fd70a"))
        },
        TraceStateCase { precision: 3, ..case("1 percent precision 3", 1.0, "ot=rv:FD70A3D70A3D71", None) },
        case("1 percent not sampled with rvalue", 1.0, "ot=rv:FD70A3D70A3D70", None),
        case("49 percent not sampled", 49.0, "", None),
        case(
            "1 percent sampled with rvalue",
            1.0,
            "ot=rv:fd70B000000000",
            Some("ot=rv:fd70B000000000;th:fd70a3d70a3d71"),
        ),
        TraceStateCase {
            trace: "a0a0a0a0a0a0a0a0a0fe000000000000",
            precision: 4,
            ..case("1 percent sampled with tid", 1.0, "", Some("ot=th:fd70a"))
        },
        TraceStateCase { priority: Some(2), ..case("sampled by priority", 1.0, "", Some("ot=th:0")) },
        TraceStateCase { priority: Some(0), ..case("not sampled by priority", 99.0, "", None) },
        TraceStateCase {
            proportional: None,
            ..case(
                "incoming 50 with rvalue",
                50.0,
                "ot=rv:90000000000000;th:80000000000000",
                Some("ot=rv:90000000000000;th:8"),
            )
        },
        case("incoming 50 at 25 not sampled", 25.0, "ot=th:8", None),
        TraceStateCase {
            trace: "ffffffffffffffffffffffffffffffff",
            proportional: Some("ot=th:e"),
            ..case("incoming 50 at 25 sampled", 25.0, "ot=th:8", Some("ot=th:c"))
        },
        TraceStateCase {
            proportional: Some("ot=rv:c0000000000000;th:c"),
            ..case("equalizing vs proportional", 50.0, "ot=rv:c0000000000000;th:8", Some("ot=rv:c0000000000000;th:8"))
        },
        case("inconsistent arriving threshold", 100.0, "ot=rv:40000000000000;th:8", Some("ot=rv:40000000000000;th:0")),
        TraceStateCase {
            fail_closed: true,
            ..case("inconsistent not sampled", 1.0, "ot=rv:40000000000000;th:8", None)
        },
        TraceStateCase {
            precision: 3,
            ..case("40 percent precision 3", 40.0, "ot=rv:a0000000000000", Some("ot=rv:a0000000000000;th:99a"))
        },
        TraceStateCase {
            precision: 6,
            trace: "a0a0a0a0a0a0a0a0a0d0000000000000",
            proportional: Some("ot=th:cccccd"),
            ..case("50 at 40 precision 6", 40.0, "ot=th:8", Some("ot=th:99999a"))
        },
        TraceStateCase {
            precision: 3,
            trace: "a0a0a0a0a0a0a0a0a0b0000000000000",
            proportional: None,
            ..case("50 at 40 partly sampled", 40.0, "ot=th:8", Some("ot=th:99a"))
        },
        case("200 percent equals 100 percent", 200.0, "", Some("ot=th:0")),
        TraceStateCase {
            trace: IMPROBABLE_TRACE,
            proportional: Some("ot=th:fffffff"),
            ..case("tiny probability rounding", 100.0 * 2f32.powi(-14), "ot=th:fffc", Some("ot=th:fffc"))
        },
        TraceStateCase {
            precision: 10,
            trace: IMPROBABLE_TRACE,
            ..case("almost 100 percent", (1.0 - 8e-7) * 100.0, "", Some("ot=th:00000cccccccd"))
        },
        TraceStateCase {
            trace: IMPROBABLE_TRACE,
            proportional: None,
            ..case("probability underflow", 2f32.powi(-4), "ot=th:fffffffffffff8", Some("ot=th:fffffffffffff8"))
        },
    ];
    for case in &cases {
        for (mode, expected) in
            [(SamplerMode::Equalizing, case.equalizing), (SamplerMode::Proportional, case.proportional)]
        {
            let mut sampler = sampler(Some(mode), case.percentage, |config| {
                config.sampling_precision = case.precision;
                config.fail_closed = case.fail_closed;
            });
            let attribute = case.priority.map(|priority| ("sampling.priority", Value::IntValue(priority)));
            let got = decide(&mut sampler, one_span(trace_id(case.trace), case.trace_state, attribute));
            assert_eq!(got.as_deref(), expected, "{mode:?} {}", case.name);
        }
    }
}

#[test]
fn unusable_sampling_information_is_dropped_when_failing_closed() {
    // The Collector's Test_tracesamplerprocessor_TraceStateErrors cases.
    let cases = [
        ("missing randomness", "00000000000000000000000000000000", ""),
        ("invalid r-value", DEFAULT_TRACE, "ot=rv:abababababababab"),
        ("invalid t-value", DEFAULT_TRACE, "ot=th:abababababababab"),
        ("t-value syntax", DEFAULT_TRACE, "ot=th:-1"),
        ("inconsistent t-value trace id", "ffffffffffffffffff70000000000000", "ot=th:8"),
        ("inconsistent t-value r-value", DEFAULT_TRACE, "ot=th:8;rv:70000000000000"),
    ];
    for mode in [SamplerMode::Equalizing, SamplerMode::Proportional] {
        for (name, trace, state) in cases {
            let mut sampler = sampler(Some(mode), 100.0, |_| {});
            assert_eq!(decide(&mut sampler, one_span(trace_id(trace), state, None)), None, "{mode:?} {name}");
            assert_eq!(sampler.stats().dropped(DropReason::SamplingError), 1, "{mode:?} {name}");
            let mut open = self::sampler(Some(mode), 100.0, |config| config.fail_closed = false);
            assert!(decide(&mut open, one_span(trace_id(trace), state, None)).is_some(), "{mode:?} {name} (open)");
        }
    }
    // hash_seed refuses spans that already carry OpenTelemetry sampling information.
    let mut hashing = sampler(Some(SamplerMode::HashSeed), 100.0, |_| {});
    assert_eq!(decide(&mut hashing, one_span(trace_id(DEFAULT_TRACE), "ot=th:8", None)), None);
    assert_eq!(hashing.stats().dropped(DropReason::SamplingError), 1);
}

#[test]
fn kept_spans_are_unchanged_but_for_their_tracestate() {
    let mut ids = SplitMix(11);
    let spans_in: Vec<Span> = (0..200)
        .map(|index| {
            let mut span = span(ids.trace_id(), index);
            span.attributes.push(common::string_attribute("http.route", "/cart"));
            span.trace_state = if index % 3 == 0 { "vendor=x".into() } else { String::new() };
            span
        })
        .collect();
    let request = request_of("checkout", spans_in.clone());
    let mut sampler = sampler(Some(SamplerMode::Proportional), 50.0, |_| {});
    let kept = run_spans(&mut sampler, batch_of(&request));
    assert!(!kept.is_empty() && kept.len() < spans_in.len());
    let by_id: HashMap<Vec<u8>, &Span> = spans_in.iter().map(|span| (span.span_id.clone(), span)).collect();
    for span in &kept {
        let original = by_id[&span.span_id];
        assert_eq!(
            span.trace_state,
            if original.trace_state.is_empty() { "ot=th:8".to_owned() } else { "ot=th:8,vendor=x".to_owned() }
        );
        assert_eq!(
            Span { trace_state: String::new(), ..span.clone() },
            Span { trace_state: String::new(), ..(*original).clone() }
        );
    }
    let stats = sampler.stats();
    assert_eq!(stats.spans_in, 200);
    assert_eq!(stats.spans_out + stats.dropped(DropReason::NotSampled), 200);
    assert_eq!(stats.spans_modified, stats.spans_out);
}

/// Runs `count` single-span traces through a fresh sampler in batches of 500; returns kept ids.
fn kept_traces(config: &ProbabilisticSamplerConfig, ids: &[[u8; 16]]) -> BTreeSet<[u8; 16]> {
    let mut sampler = config.build();
    let mut kept = BTreeSet::new();
    for chunk in ids.chunks(500) {
        let spans_in = chunk.iter().enumerate().map(|(index, id)| span(*id, index as u64)).collect();
        for span in run_spans(&mut sampler, batch_of(&request_of("svc", spans_in))) {
            kept.insert(span.trace_id.try_into().expect("16-byte trace id"));
        }
    }
    kept
}

#[test]
fn rate_stays_within_statistical_bounds() {
    let mut generator = SplitMix(2024);
    let ids: Vec<[u8; 16]> = (0..20_000).map(|_| generator.trace_id()).collect();
    for mode in [SamplerMode::HashSeed, SamplerMode::Proportional, SamplerMode::Equalizing] {
        for percentage in [1.0f32, 10.0, 50.0, 90.0] {
            let config =
                ProbabilisticSamplerConfig { sampling_percentage: percentage, mode: Some(mode), ..Default::default() };
            let kept = kept_traces(&config, &ids).len() as f64;
            let n = ids.len() as f64;
            let p = f64::from(percentage) / 100.0;
            let sigma = (n * p * (1.0 - p)).sqrt();
            assert!(
                (kept - n * p).abs() <= 5.0 * sigma,
                "{mode:?} at {percentage}%: kept {kept} of {n}, expected {}",
                n * p
            );
        }
    }
}

#[test]
fn decisions_are_consistent_across_instances_batches_and_rates() {
    let mut generator = SplitMix(99);
    let traces: Vec<[u8; 16]> = (0..2_000).map(|_| generator.trace_id()).collect();
    for mode in [SamplerMode::HashSeed, SamplerMode::Proportional, SamplerMode::Equalizing] {
        let config = ProbabilisticSamplerConfig {
            sampling_percentage: 30.0,
            mode: Some(mode),
            hash_seed: 17,
            ..Default::default()
        };
        // Core A sees each trace's spans together; core B sees them interleaved in other batches.
        let mut core_a = config.build();
        let mut core_b = config.build();
        let mut kept_a: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut kept_b: HashMap<Vec<u8>, usize> = HashMap::new();
        for (index, chunk) in traces.chunks(100).enumerate() {
            let together: Vec<Span> = chunk.iter().flat_map(|id| (0..3).map(move |n| span(*id, n))).collect();
            let mut interleaved = together.clone();
            interleaved.rotate_left(index % 7 + 1);
            for span in run_spans(&mut core_a, batch_of(&request_of("a", together))) {
                *kept_a.entry(span.trace_id).or_default() += 1;
            }
            for span in run_spans(&mut core_b, batch_of(&request_of("b", interleaved))) {
                *kept_b.entry(span.trace_id).or_default() += 1;
            }
        }
        assert_eq!(kept_a, kept_b, "{mode:?}: both instances keep the same traces");
        assert!(kept_a.values().all(|spans| *spans == 3), "{mode:?}: a trace is kept whole or not at all");
        let lower = ProbabilisticSamplerConfig { sampling_percentage: 10.0, ..config.clone() };
        let higher = ProbabilisticSamplerConfig { sampling_percentage: 60.0, ..config.clone() };
        assert!(kept_traces(&lower, &traces).is_subset(&kept_traces(&higher, &traces)), "{mode:?}: 10% within 60%");
    }
}

#[test]
fn zero_percent_keeps_only_priority_spans() {
    let mut sampler = sampler(None, 0.0, |_| {});
    let mut ids = SplitMix(5);
    let mut spans_in: Vec<Span> = (0..50).map(|index| span(ids.trace_id(), index)).collect();
    spans_in[7].attributes.push(common::key_value("sampling.priority", Value::IntValue(1)));
    let kept = run_spans(&mut sampler, batch_of(&request_of("svc", spans_in)));
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].span_id, 7u64.to_be_bytes().to_vec());
    assert_eq!(kept[0].trace_state, "ot=th:0");
    assert_eq!(sampler.stats().dropped(DropReason::NotSampled), 49);
}

#[test]
fn validation_names_the_offending_key() {
    let invalid = [
        (ProbabilisticSamplerConfig { sampling_percentage: -1.0, ..Default::default() }, "sampling_percentage"),
        (ProbabilisticSamplerConfig { sampling_percentage: f32::NAN, ..Default::default() }, "sampling_percentage"),
        (ProbabilisticSamplerConfig { sampling_percentage: 1e-20, ..Default::default() }, "sampling_percentage"),
        (ProbabilisticSamplerConfig { sampling_precision: 0, ..Default::default() }, "sampling_precision"),
        (ProbabilisticSamplerConfig { sampling_precision: 15, ..Default::default() }, "sampling_precision"),
        (ProbabilisticSamplerConfig { from_attribute: Some("id".into()), ..Default::default() }, "from_attribute"),
        (
            ProbabilisticSamplerConfig { attribute_source: Some("record".into()), ..Default::default() },
            "attribute_source",
        ),
    ];
    for (config, key) in invalid {
        let errors = config.validate();
        assert_eq!(errors.len(), 1, "{config:?}: {errors:?}");
        assert_eq!(errors[0].path, key);
    }
    let parsed: ProbabilisticSamplerConfig = serde_json::from_str(r#"{"sampling_percentage": 15.3}"#).unwrap();
    assert_eq!(parsed, ProbabilisticSamplerConfig { sampling_percentage: 15.3, ..Default::default() });
    assert!(parsed.fail_closed && parsed.sampling_precision == 4 && parsed.mode.is_none());
    let unknown = serde_json::from_str::<ProbabilisticSamplerConfig>(r#"{"sampling_percentage": 1, "rate": 2}"#);
    assert!(unknown.unwrap_err().to_string().contains("rate"));
}
