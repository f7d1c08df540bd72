//! `export_codec!` generates the descriptor symbol with a static content-type table, and decode
//! and encode reach the host's sinks.

use spanpipe_plugin_sdk::core::BatchWriter;
use spanpipe_plugin_sdk::{abi, export_codec, testing, Batch, Codec, Emitter};

/// One span name per line.
struct Lines;

impl Codec for Lines {
    const CONTENT_TYPES: &'static [&'static str] = &["text/x-span-names", "text/x-span-lines"];

    fn new(_config: &str) -> Result<Self, String> {
        Ok(Self)
    }

    fn decode(&mut self, body: &[u8], out: &mut Emitter<'_>) -> Result<(), String> {
        let body = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                for (id, name) in (1_u8..).zip(body.lines()) {
                    ss.span(|s| {
                        s.trace_id(&[id; 16]).span_id(&[id; 8]).name(name);
                    });
                }
            });
        });
        Ok(out.push(writer)?)
    }

    fn encode(&mut self, batch: &Batch<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        for span in batch.spans() {
            out.extend_from_slice(span.name().as_bytes());
            out.push(b'\n');
        }
        Ok(())
    }
}

export_codec!(Lines, name = "lines", version = "1.0.0");

#[test]
fn content_types_decode_and_encode_cross_the_boundary() {
    // SAFETY: the generated function returns a pointer to a static descriptor.
    let descriptor = unsafe { &*spanpipe_plugin_descriptor() };
    assert_eq!(descriptor.kind, abi::KIND_CODEC);
    let mut codec = testing::codec(descriptor, "{}").expect("created");
    assert_eq!(codec.content_types(), ["text/x-span-names", "text/x-span-lines"]);
    let requests = codec.decode(b"a\nb").expect("decoded");
    assert_eq!(requests.len(), 1);
    assert_eq!(codec.encode(&requests[0]).expect("encoded"), b"a\nb\n");
    let failure = codec.decode(b"\xff").expect_err("not UTF-8");
    assert_eq!(failure.status, abi::STATUS_ERROR);
    assert!(failure.message.starts_with("not UTF-8"), "{}", failure.message);
}
