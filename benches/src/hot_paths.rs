//! The hot paths that perfgate gates in CI, defined once for both of their harnesses: the
//! criterion benchmark `benches/hot_paths.rs` (wall-clock time, for people) and the
//! `perfgate-runner` binary that perfgate runs under callgrind (instruction counts, for the gate).
//!
//! Each hot path is prepared once ([`HotPath::prepare`]: input bytes, processors, pipeline) and
//! then run as many times as the harness wants ([`Prepared::iteration`]); only iterations are
//! measured. Every iteration does the whole step a core does per request and drops what it made,
//! so the next one starts from the same state. The input is the realistic request of
//! [`crate::SEED`] ([`spanpipe_testkit::realistic`]), built without [`crate::Payload`]'s
//! equivalence checks: those compare against baselines this module does not run, and under
//! callgrind they would cost more than the measurement.

use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use prost::Message;
use spanpipe_codecs::{otlp_json, Codec, OtlpProto};
use spanpipe_core::SpanBatch;
use spanpipe_exporters::{Exporter, ExporterBuilder};
use spanpipe_processors::{BatchProcessor, BuiltinProcessor, Output, Processor, ProcessorBuilder, ProcessorKind};
use spanpipe_runtime::pipeline::{Pipeline, RouteTable};

/// Batches the `batch_processor` hot path feeds per iteration; the last one reaches
/// `send_batch_size` and makes the processor send all of them as one re-framed batch.
pub const BATCHES_PER_SEND: usize = 4;

/// Parts the `reframe` hot path splits a batch into before merging them back.
pub const REFRAME_PARTS: usize = 4;

/// One hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HotPath {
    /// `SpanBatch::decode` of an OTLP protobuf request: the validating one-pass index build.
    IndexBuild,
    /// `SpanBatch::split` into [`REFRAME_PARTS`] parts, then `SpanBatch::merge` of the parts.
    Reframe,
    /// `otlp_json::decode` of an OTLP/JSON request, copied into a reused scratch buffer first (it
    /// parses in place).
    OtlpJsonDecode,
    /// `spanpipe_zipkin::decode_json` of the same spans as a Zipkin v2 JSON document (copied into
    /// a reused scratch buffer first: it parses in place).
    ZipkinJsonDecode,
    /// `spanpipe_jaeger::decode_agent` of the same spans as compact-Thrift `emitBatch` datagrams,
    /// one per service, as a Jaeger client sends them.
    JaegerCompactDecode,
    /// The same as binary-Thrift datagrams (the agent's other port; the collector's HTTP `Batch`
    /// goes through the same reader).
    JaegerBinaryDecode,
    /// `spanpipe_jaeger::decode_post_spans` of the same spans as one `PostSpansRequest` of
    /// Jaeger's protobuf model, as the gRPC collector API carries them.
    JaegerProtoDecode,
    /// `spanpipe_msgpack::decode` of the same request in spanpipe's MessagePack form.
    MsgpackDecode,
    /// The `batch` processor taking [`BATCHES_PER_SEND`] batches and sending them as one.
    BatchProcessor,
    /// A pipeline whose `routing` processor splits a batch by `service.name` and fans the parts
    /// out to three blackhole exporters.
    RouterDispatch,
    /// One OTLP/HTTP protobuf request body through the codec and an in-process pipeline:
    /// `attributes` (insert) → `batch` → blackhole exporter. No network: the receiver's socket
    /// and HTTP parsing are not part of it.
    EndToEnd,
}

impl HotPath {
    /// Every hot path, in the order reports list them.
    pub const ALL: [HotPath; 11] = [
        Self::IndexBuild,
        Self::Reframe,
        Self::OtlpJsonDecode,
        Self::ZipkinJsonDecode,
        Self::JaegerCompactDecode,
        Self::JaegerBinaryDecode,
        Self::JaegerProtoDecode,
        Self::MsgpackDecode,
        Self::BatchProcessor,
        Self::RouterDispatch,
        Self::EndToEnd,
    ];

    /// The name harnesses and baselines use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::IndexBuild => "index_build",
            Self::Reframe => "reframe",
            Self::OtlpJsonDecode => "otlp_json_decode",
            Self::ZipkinJsonDecode => "zipkin_json_decode",
            Self::JaegerCompactDecode => "jaeger_compact_decode",
            Self::JaegerBinaryDecode => "jaeger_binary_decode",
            Self::JaegerProtoDecode => "jaeger_proto_decode",
            Self::MsgpackDecode => "msgpack_decode",
            Self::BatchProcessor => "batch_processor",
            Self::RouterDispatch => "router_dispatch",
            Self::EndToEnd => "end_to_end",
        }
    }

    /// The hot path called `name`, if there is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|path| path.name() == name)
    }

    /// Builds the input of `spans` spans and everything the hot path runs through.
    ///
    /// # Panics
    /// If `spans` is zero (an empty request is refused before any hot path), or if a fixed
    /// processor config below is refused — a bug in this module that every test run shows.
    #[must_use]
    pub fn prepare(self, spans: usize) -> Prepared {
        assert!(spans > 0, "a hot path needs at least one span");
        let proto = Bytes::from(spanpipe_testkit::realistic::request(spans, crate::SEED).encode_to_vec());
        let batch = || SpanBatch::decode(proto.clone()).expect("the realistic request indexes");
        let now = Instant::now();
        let state = match self {
            Self::IndexBuild => State::IndexBuild { proto },
            Self::Reframe => State::Reframe { batch: batch(), part_spans: spans.div_ceil(REFRAME_PARTS) },
            Self::OtlpJsonDecode => {
                let mut json = Vec::new();
                otlp_json::encode(&batch(), &mut json);
                State::OtlpJsonDecode { scratch: Vec::with_capacity(json.len()), json }
            }
            Self::ZipkinJsonDecode => {
                let mut json = String::new();
                spanpipe_zipkin::encode_json(&batch(), spanpipe_zipkin::DEFAULT_SERVICE_NAME, &mut json);
                State::ZipkinJsonDecode { scratch: Vec::with_capacity(json.len()), json: json.into_bytes() }
            }
            Self::JaegerCompactDecode | Self::JaegerBinaryDecode => {
                let protocol = if self == Self::JaegerCompactDecode {
                    spanpipe_jaeger::Protocol::Compact
                } else {
                    spanpipe_jaeger::Protocol::Binary
                };
                let datagrams = spanpipe_jaeger::encode_per_resource(protocol, &batch())
                    .expect("the realistic request encodes as Jaeger Thrift");
                State::JaegerAgentDecode { protocol, datagrams }
            }
            Self::JaegerProtoDecode => {
                State::JaegerProtoDecode { request: spanpipe_jaeger::encode_post_spans(&batch()) }
            }
            Self::MsgpackDecode => {
                let mut body = Vec::new();
                spanpipe_msgpack::encode(&batch(), &mut body);
                State::MsgpackDecode { body }
            }
            Self::BatchProcessor => {
                let BuiltinProcessor::Batch(processor) =
                    processor(ProcessorKind::Batch, &batch_config(spans * BATCHES_PER_SEND))
                else {
                    unreachable!("a batch config builds a batch processor")
                };
                State::BatchProcessor { batch: batch(), processor, output: Output::new(), now }
            }
            Self::RouterDispatch => {
                let routing = serde_json::json!({
                    "from_attribute": "service.name",
                    "attribute_source": "resource",
                    "table": [
                        { "value": "frontend", "exporters": ["blackhole/edge"] },
                        { "value": "checkout", "exporters": ["blackhole/orders"] },
                        { "value": "payment", "exporters": ["blackhole/orders"] },
                    ],
                    "default_exporters": ["blackhole/other"],
                });
                let routes = RouteTable { table: vec![vec![0], vec![1], vec![1]], default: vec![2] };
                let pipeline = Pipeline::new(
                    "traces/router".to_owned(),
                    vec![("routing".to_owned(), processor(ProcessorKind::Routing, &routing))],
                    ["blackhole/edge", "blackhole/orders", "blackhole/other"].into_iter().map(blackhole).collect(),
                    routes,
                );
                State::Pipeline { batch: batch(), pipeline, now }
            }
            Self::EndToEnd => {
                let attributes = serde_json::json!({
                    "actions": [{ "key": "deployment.environment", "value": "production", "action": "insert" }],
                });
                let pipeline = Pipeline::new(
                    "traces/end_to_end".to_owned(),
                    vec![
                        ("attributes".to_owned(), processor(ProcessorKind::Attributes, &attributes)),
                        ("batch".to_owned(), processor(ProcessorKind::Batch, &batch_config(spans))),
                    ],
                    vec![blackhole("blackhole")],
                    RouteTable::default(),
                );
                State::EndToEnd { body: proto, pipeline, now }
            }
        };
        Prepared { spans, state }
    }
}

/// A `batch` config that sends as soon as `send_batch_size` spans are held, and otherwise waits
/// longer than any measurement lasts (so no timer ever fires during one).
fn batch_config(send_batch_size: usize) -> serde_json::Value {
    serde_json::json!({ "send_batch_size": send_batch_size, "timeout": "1h" })
}

/// A processor built from its config as a user writes it, through the same validation.
fn processor(kind: ProcessorKind, config: &serde_json::Value) -> BuiltinProcessor {
    let config = kind.deserialize_config(config).expect("the hot path's processor config parses");
    ProcessorBuilder::new(&config).expect("the hot path's processor config is valid").build()
}

fn blackhole(name: &str) -> Rc<Exporter> {
    Rc::new(ExporterBuilder::blackhole(name).build().expect("a blackhole exporter always builds"))
}

/// A hot path with its input and machinery, ready to run.
#[derive(Debug)]
pub struct Prepared {
    spans: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    IndexBuild { proto: Bytes },
    Reframe { batch: SpanBatch, part_spans: usize },
    OtlpJsonDecode { json: Vec<u8>, scratch: Vec<u8> },
    ZipkinJsonDecode { json: Vec<u8>, scratch: Vec<u8> },
    JaegerAgentDecode { protocol: spanpipe_jaeger::Protocol, datagrams: Vec<Bytes> },
    JaegerProtoDecode { request: Vec<u8> },
    MsgpackDecode { body: Vec<u8> },
    BatchProcessor { batch: SpanBatch, processor: BatchProcessor, output: Output, now: Instant },
    Pipeline { batch: SpanBatch, pipeline: Pipeline, now: Instant },
    EndToEnd { body: Bytes, pipeline: Pipeline, now: Instant },
}

impl Prepared {
    /// Spans in one input request.
    #[must_use]
    pub fn spans(&self) -> usize {
        self.spans
    }

    /// Runs the hot path once and returns how many spans it produced, or for the pipelines how
    /// many it submitted (what reached the exporters is [`Prepared::delivered_spans`]): for
    /// `black_box`, and for tests to check that the work was done.
    ///
    /// # Panics
    /// If the prepared input is refused, which [`HotPath::prepare`]'s input never is.
    pub fn iteration(&mut self) -> usize {
        match &mut self.state {
            State::IndexBuild { proto } => {
                let batch = SpanBatch::decode(black_box(&*proto).clone()).expect("indexes");
                // Test-only regression for perfgate's tests: the same work done a second time.
                #[cfg(feature = "perfgate-slow-index")]
                black_box(SpanBatch::decode(black_box(&*proto).clone()).expect("indexes"));
                batch.len()
            }
            State::Reframe { batch, part_spans } => {
                let parts = black_box(batch).split(*part_spans, 0);
                SpanBatch::merge(&parts).len()
            }
            State::OtlpJsonDecode { json, scratch } => {
                scratch.clear();
                scratch.extend_from_slice(black_box(json));
                otlp_json::decode(scratch).expect("decodes").len()
            }
            State::ZipkinJsonDecode { json, scratch } => {
                scratch.clear();
                scratch.extend_from_slice(black_box(json));
                spanpipe_zipkin::decode_json(scratch, spanpipe_zipkin::DecodeOptions::default()).expect("decodes").len()
            }
            State::JaegerAgentDecode { protocol, datagrams } => black_box(&*datagrams)
                .iter()
                .map(|datagram| spanpipe_jaeger::decode_agent(*protocol, datagram).expect("decodes").len())
                .sum(),
            State::JaegerProtoDecode { request } => {
                spanpipe_jaeger::decode_post_spans(black_box(request)).expect("decodes").len()
            }
            State::MsgpackDecode { body } => spanpipe_msgpack::decode(black_box(body)).expect("decodes").len(),
            State::BatchProcessor { batch, processor, output, now } => {
                for _ in 0..BATCHES_PER_SEND {
                    processor.process(black_box(&*batch).clone(), *now, output);
                }
                output.drain().map(|routed| routed.batch.len()).sum()
            }
            State::Pipeline { batch, pipeline, now } => {
                let spans = batch.len();
                pipeline.submit(black_box(batch).clone(), *now);
                spans
            }
            State::EndToEnd { body, pipeline, now } => {
                let batch = OtlpProto.decode(black_box(body).clone()).expect("decodes");
                let spans = batch.len();
                pipeline.submit(batch, *now);
                spans
            }
        }
    }

    /// For the pipelines (`router_dispatch`, `end_to_end`), the spans each exporter has taken so
    /// far (the blackholes count them and drop them); empty for the other hot paths.
    #[must_use]
    pub fn delivered_spans(&self) -> Vec<u64> {
        match &self.state {
            State::Pipeline { pipeline, .. } | State::EndToEnd { pipeline, .. } => {
                pipeline.exporters().iter().map(|exporter| exporter.stats().snapshot().spans_sent).collect()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for path in HotPath::ALL {
            assert_eq!(HotPath::from_name(path.name()), Some(path));
        }
        assert_eq!(HotPath::from_name("index"), None);
    }

    /// Each hot path does the whole of its work, every iteration: the spans that come out are
    /// the spans that went in (and for the pipelines, they reach the exporters).
    #[test]
    fn every_hot_path_delivers_every_span() {
        let spans = 7;
        for path in HotPath::ALL {
            let mut prepared = path.prepare(spans);
            assert_eq!(prepared.spans(), spans);
            for iteration in 1..=3u64 {
                let produced = prepared.iteration();
                let expected = if path == HotPath::BatchProcessor { spans * BATCHES_PER_SEND } else { spans };
                assert_eq!(produced, expected, "{} iteration {iteration}", path.name());
                if matches!(path, HotPath::RouterDispatch | HotPath::EndToEnd) {
                    let delivered: u64 = prepared.delivered_spans().iter().sum();
                    assert_eq!(
                        delivered,
                        spans as u64 * iteration,
                        "{} delivered by iteration {iteration}",
                        path.name()
                    );
                }
            }
        }
    }

    /// The router's table must actually split the realistic request, or `router_dispatch` would
    /// measure a pass-through.
    #[test]
    fn router_dispatch_splits_the_request() {
        let mut prepared = HotPath::RouterDispatch.prepare(100);
        prepared.iteration();
        let receiving = prepared.delivered_spans().into_iter().filter(|&spans| spans > 0).count();
        assert!(receiving >= 2, "the realistic request's services should reach at least two routes");
    }
}
