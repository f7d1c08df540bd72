//! Test and benchmark support for spanpipe. Nothing in this crate ships in the collector.
//!
//! spanpipe's codecs and pipeline stages all consume OTLP trace requests. Every crate that tests
//! or benchmarks them needs inputs of two very different kinds, and this crate provides both so
//! that each crate does not grow its own slightly different copy:
//!
//! - [`strategies`] generates *adversarial* requests for property tests: arbitrary Unicode
//!   (including quotes, backslashes and control characters that JSON encoders must escape),
//!   extreme integers, infinities, out-of-range enum values, deeply nested attribute values and
//!   empty everything. Round-trip and equivalence properties are only convincing over inputs
//!   like these.
//! - [`realistic`] builds *representative* requests for benchmarks and size-sensitive tests:
//!   payloads shaped like what OpenTelemetry SDKs actually export (semantic-convention
//!   attributes, traces with parent/child structure, occasional events, links and errors).
//!   Throughput numbers measured on random noise say little about production, and numbers
//!   measured on non-deterministic input cannot be compared between runs, so these payloads
//!   are fully determined by a seed.
//!
//! - [`tls`] makes a private CA and the certificates it signs, as PEM files, for TLS tests.
//! - [`wire`] rewrites protobuf messages into equivalent forms encoders never write (a singular
//!   message field split over two occurrences), to hold hand-written decoders to protobuf's
//!   merge rule.
//!
//! The first two build the `opentelemetry-proto` message types directly and leave the
//! string-table fields (`KeyValue.key_strindex`, `AnyValue::StringValueStrindex`) at their
//! defaults: they index the string table of the profiles signal and mean nothing in a trace
//! request, so no trace encoding (OTLP/JSON included) carries them.

pub mod realistic;
pub mod strategies;
pub mod tls;
pub mod wire;
