//! The codec registry: lookup by name and by content type, run-time registration, refusals.

use std::sync::Arc;

use bytes::Bytes;
use spanpipe_codecs::{Codec, CodecError, CodecRegistry, OtlpJson, OtlpProto, RegistryError};
use spanpipe_core::SpanBatch;
use spanpipe_testkit::realistic;

/// A codec from outside the crate, as a plugin would register: protobuf under another name.
#[derive(Debug)]
struct Relabelled {
    name: &'static str,
    types: &'static [&'static str],
}

impl Codec for Relabelled {
    fn name(&self) -> &str {
        self.name
    }
    fn content_types(&self) -> &[&str] {
        self.types
    }
    fn decode(&self, body: Bytes) -> Result<SpanBatch, CodecError> {
        OtlpProto.decode(body)
    }
    fn encode(&self, batch: &SpanBatch) -> Result<Bytes, CodecError> {
        OtlpProto.encode(batch)
    }
}

#[test]
fn builtins_resolve_by_name_and_content_type() {
    let registry = CodecRegistry::with_builtins();
    assert_eq!(registry.names(), ["otlp_json", "otlp_proto"]);
    assert_eq!(registry.by_name("otlp_proto").unwrap().name(), "otlp_proto");
    assert_eq!(registry.by_name("otlp_json").unwrap().name(), "otlp_json");
    for (content_type, codec) in [
        ("application/x-protobuf", "otlp_proto"),
        ("application/protobuf", "otlp_proto"),
        ("application/json", "otlp_json"),
        ("Application/JSON; charset=utf-8", "otlp_json"),
        ("  application/x-protobuf ;foo=bar", "otlp_proto"),
    ] {
        assert_eq!(registry.by_content_type(content_type).unwrap().name(), codec, "{content_type}");
    }
}

#[test]
fn unknown_name_and_content_type_are_refused_with_what_exists() {
    let registry = CodecRegistry::with_builtins();
    let error = registry.by_name("zipkin_json").unwrap_err();
    assert_eq!(error, RegistryError::UnknownName { name: "zipkin_json".into(), known: "otlp_json, otlp_proto".into() });
    let error = registry.by_content_type("text/plain").unwrap_err();
    assert!(matches!(error, RegistryError::UnsupportedContentType { .. }));
    assert!(error.to_string().contains("application/json"), "{error}");
}

#[test]
fn runtime_registration_adds_and_removes_a_codec() {
    let mut registry = CodecRegistry::with_builtins();
    let custom = Arc::new(Relabelled { name: "vendor_proto", types: &["application/vnd.vendor+protobuf"] });
    registry.register(custom).unwrap();
    let codec = registry.by_content_type("application/vnd.vendor+protobuf").unwrap();
    let batch = codec.decode(Bytes::from(realistic::encoded(3, 1))).unwrap();
    assert_eq!(batch.len(), 3);

    assert!(registry.unregister("vendor_proto").is_some());
    assert!(registry.by_name("vendor_proto").is_err());
    assert!(registry.by_content_type("application/vnd.vendor+protobuf").is_err());
    assert!(registry.unregister("vendor_proto").is_none());
}

#[test]
fn duplicate_name_or_content_type_is_refused_and_changes_nothing() {
    let mut registry = CodecRegistry::with_builtins();
    let same_name = Arc::new(Relabelled { name: "otlp_json", types: &["application/x-other"] });
    assert_eq!(registry.register(same_name), Err(RegistryError::DuplicateName("otlp_json".into())));
    assert!(registry.by_content_type("application/x-other").is_err(), "a refused codec leaves no trace");

    let clash = Arc::new(Relabelled { name: "other", types: &["application/x-fresh", "APPLICATION/JSON"] });
    let error = registry.register(clash).unwrap_err();
    assert_eq!(
        error,
        RegistryError::DuplicateContentType { content_type: "application/json".into(), existing: "otlp_json".into() }
    );
    assert!(registry.by_content_type("application/x-fresh").is_err(), "registration is all or nothing");
    assert!(registry.by_name("other").is_err());
}

#[test]
fn protobuf_codec_round_trips_without_copying() {
    let body = Bytes::from(realistic::encoded(10, 4));
    let batch = OtlpProto.decode(body.clone()).unwrap();
    let encoded = OtlpProto.encode(&batch).unwrap();
    assert_eq!(encoded, body);
    assert_eq!(encoded.as_ptr(), body.as_ptr(), "encode hands out the batch's own bytes");
}

#[test]
fn empty_requests_are_recognisable_for_both_builtins() {
    assert!(OtlpProto.decode(Bytes::new()).unwrap_err().is_empty_request());
    assert!(OtlpJson.decode(Bytes::from_static(b"{\"resourceSpans\":[]}")).unwrap_err().is_empty_request());
    assert!(OtlpJson.decode(Bytes::from_static(b"{}")).unwrap_err().is_empty_request());
}

/// Codecs that appear and disappear, as plugin codecs do.
#[derive(Debug, Default)]
struct Swappable(std::sync::Mutex<Option<Arc<dyn Codec>>>);

impl spanpipe_codecs::DynamicCodecs for Swappable {
    fn by_content_type(&self, media_type: &str) -> Option<Arc<dyn Codec>> {
        let current = self.0.lock().unwrap();
        current.as_ref().filter(|codec| codec.content_types().contains(&media_type)).cloned()
    }

    fn content_types(&self) -> Vec<String> {
        let current = self.0.lock().unwrap();
        current.iter().flat_map(|codec| codec.content_types().iter().map(|t| (*t).to_owned())).collect()
    }
}

#[test]
fn dynamic_codecs_serve_only_what_registered_codecs_do_not_and_follow_changes() {
    let dynamic = Arc::new(Swappable::default());
    let mut registry = CodecRegistry::with_builtins();
    registry.set_dynamic(Arc::clone(&dynamic) as Arc<dyn spanpipe_codecs::DynamicCodecs>);
    let clone = registry.clone();
    assert!(clone.by_content_type("application/x-acme").is_err(), "nothing serves it yet");

    *dynamic.0.lock().unwrap() =
        Some(Arc::new(Relabelled { name: "acme", types: &["application/x-acme", "application/json"] }));
    assert_eq!(clone.by_content_type("Application/X-Acme; v=1").unwrap().name(), "acme", "a clone sees the new codec");
    assert_eq!(clone.by_content_type("application/json").unwrap().name(), "otlp_json", "built-ins keep their types");
    let error = clone.by_content_type("text/plain").unwrap_err().to_string();
    assert!(error.contains("application/x-acme") && error.contains("application/x-protobuf"), "{error}");

    *dynamic.0.lock().unwrap() = None;
    assert!(clone.by_content_type("application/x-acme").is_err(), "a removed codec is gone");
}
