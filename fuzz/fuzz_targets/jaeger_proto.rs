//! Fuzz target `jaeger_proto`: the checks live in `spanpipe-fuzz-checks`, shared with the corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| spanpipe_fuzz_checks::jaeger::jaeger_proto(data));
