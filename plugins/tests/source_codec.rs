//! Source and codec plugins over real libraries.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{batch, examples, Recorded};
use spanpipe_codecs::{Codec, CodecError};
use spanpipe_plugins::{load, PluginSource, PluginSourceConfig};

#[test]
fn heartbeat_source_emits_one_valid_batch_per_cycle_on_its_interval() {
    let recorded = Recorded::new();
    let state = tempfile::tempdir().unwrap();
    recorded.registry.publish(load(&examples().heartbeat, state.path()).unwrap());
    let mut config = PluginSourceConfig::new("heartbeat");
    config.interval = Duration::from_secs(1);
    let start = Instant::now();
    let mut source = PluginSource::new(&config, Arc::clone(&recorded.registry), start);
    assert_eq!(source.next_deadline(), start);
    let first = source.poll(start);
    assert_eq!(first.iter().map(spanpipe_core::SpanBatch::len).sum::<usize>(), 1);
    assert_eq!(first[0].span(0).unwrap().name(), "heartbeat");
    assert_eq!(source.next_deadline(), start + Duration::from_secs(1));
    assert!(source.poll(start + Duration::from_millis(500)).is_empty(), "not due yet");
    assert_eq!(source.poll(start + Duration::from_secs(1)).len(), 1);
    let stats = source.stats();
    assert_eq!((stats.cycles, stats.spans_out, stats.requests_rejected), (2, 2, 0));
}

#[test]
fn a_source_whose_plugin_is_absent_skips_its_cycles() {
    let recorded = Recorded::new();
    let start = Instant::now();
    let mut source = PluginSource::new(&PluginSourceConfig::new("heartbeat"), Arc::clone(&recorded.registry), start);
    assert!(source.poll(start).is_empty());
    assert_eq!(source.stats().cycles_skipped, 1);
}

#[test]
fn ndjson_codec_is_listed_by_the_registry_and_round_trips_a_batch() {
    let recorded = Recorded::new();
    let state = tempfile::tempdir().unwrap();
    recorded.registry.publish(load(&examples().ndjson, state.path()).unwrap());
    let codecs = recorded.registry.codecs();
    assert_eq!(codecs.len(), 1);
    let codec = &codecs[0];
    assert_eq!(codec.name(), "ndjson");
    assert_eq!(codec.content_types(), ["application/x-ndjson-spans"]);
    let original = batch(3, &[("http.route", "/cart")]);
    let body = codec.encode(&original).unwrap();
    assert!(std::str::from_utf8(&body).unwrap().lines().count() == 3, "one line per span");
    let decoded = codec.decode(body).unwrap();
    assert_eq!(decoded.len(), 3);
    assert_eq!(decoded.span(2).unwrap().span_id(), original.span(2).unwrap().span_id());
    assert_eq!(codec.idle_instances(), 1, "the instance went back to the pool");
    assert!(Arc::ptr_eq(codec, &recorded.registry.codecs()[0]), "one codec per publication");

    match codec.decode(bytes::Bytes::from_static(b"{not json\n")) {
        Err(CodecError::Other { codec, message }) => {
            assert_eq!(codec, "ndjson");
            assert!(!message.is_empty());
        }
        other => panic!("expected the plugin's refusal, got {other:?}"),
    }
    assert_eq!(codec.idle_instances(), 1, "a refusal keeps the instance");
}

#[test]
fn codecs_are_used_from_many_threads_at_once() {
    let recorded = Recorded::new();
    let state = tempfile::tempdir().unwrap();
    recorded.registry.publish(load(&examples().ndjson, state.path()).unwrap());
    let codec = recorded.registry.codecs().remove(0);
    let body = codec.encode(&batch(2, &[])).unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (codec, body) = (Arc::clone(&codec), body.clone());
            scope.spawn(move || {
                for _ in 0..50 {
                    assert_eq!(codec.decode(body.clone()).unwrap().len(), 2);
                }
            });
        }
    });
    assert!(codec.idle_instances() <= 5);
}

#[test]
fn a_source_takes_a_new_version_between_cycles() {
    let recorded = Recorded::new();
    let state = tempfile::tempdir().unwrap();
    recorded.registry.publish(load(&examples().heartbeat, state.path()).unwrap());
    let start = Instant::now();
    let mut source = PluginSource::new(&PluginSourceConfig::new("heartbeat"), Arc::clone(&recorded.registry), start);
    assert_eq!(source.poll(start).len(), 1);
    let first = source.stats().generation;
    let second = recorded.registry.publish(load(&common::examples_v2().heartbeat, state.path()).unwrap());
    assert_eq!(source.poll(start + Duration::from_secs(10)).len(), 1);
    let stats = source.stats();
    assert_eq!((stats.generation, stats.failures.swaps), (second, 1));
    assert!(second > first);
}
