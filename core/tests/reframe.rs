//! Re-framing: filtered, split and merged batches are valid OTLP that prost decodes to exactly
//! the chosen spans under their original resource and scope, and their index is the one a fresh
//! scan of their bytes would build.

mod support;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;
use spanpipe_core::{Reframer, SpanBatch};
use spanpipe_testkit::{realistic, strategies};

fn batch_of(request: &ExportTraceServiceRequest) -> Option<SpanBatch> {
    SpanBatch::decode(Bytes::from(request.encode_to_vec())).ok()
}

/// Decodes a re-framed batch with prost and checks that its index is what a scan would build.
fn decoded(batch: &SpanBatch) -> Result<ExportTraceServiceRequest, TestCaseError> {
    let request = ExportTraceServiceRequest::decode(batch.bytes().clone())
        .map_err(|e| TestCaseError::fail(format!("prost refused re-framed bytes: {e}")))?;
    if !batch.is_empty() {
        let rescanned = SpanBatch::decode(batch.bytes().clone())
            .map_err(|e| TestCaseError::fail(format!("re-framed bytes fail the scan: {e}")))?;
        prop_assert_eq!(rescanned.index(), batch.index());
    }
    Ok(request)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn filter_keeps_exactly_the_chosen_spans(request in strategies::request(), mask in proptest::collection::vec(any::<bool>(), 64)) {
        let Some(batch) = batch_of(&request) else { return Ok(()) };
        let filtered = batch.filter(|span| mask[span.position() % mask.len()]);
        let expected: Vec<_> = support::flatten(&request)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask[i % mask.len()])
            .map(|(_, span)| span)
            .collect();
        prop_assert_eq!(filtered.len(), expected.len());
        prop_assert_eq!(filtered.encoded_len(), filtered.bytes().len());
        prop_assert_eq!(support::flatten(&decoded(&filtered)?), expected);
    }

    #[test]
    fn split_respects_limits_and_loses_nothing(request in strategies::request(), max_spans in 0usize..5, max_bytes in 0usize..2_000) {
        let Some(batch) = batch_of(&request) else { return Ok(()) };
        let parts = batch.split(max_spans, max_bytes);
        let mut rejoined = Vec::new();
        for part in &parts {
            prop_assert!(!part.is_empty());
            if max_spans > 0 {
                prop_assert!(part.len() <= max_spans);
            }
            if max_bytes > 0 && part.len() > 1 {
                prop_assert!(part.encoded_len() <= max_bytes, "{} > {}", part.encoded_len(), max_bytes);
            }
            rejoined.extend(support::flatten(&decoded(part)?));
        }
        prop_assert_eq!(rejoined, support::flatten(&request));
    }

    #[test]
    fn merge_concatenates_in_order(requests in proptest::collection::vec(strategies::request(), 1..4)) {
        let batches: Vec<SpanBatch> = requests.iter().filter_map(batch_of).collect();
        let merged = SpanBatch::merge(&batches);
        let expected: Vec<_> = requests.iter().flat_map(support::flatten).collect();
        prop_assert_eq!(merged.len(), expected.len());
        prop_assert_eq!(support::flatten(&decoded(&merged)?), expected);
    }

    #[test]
    fn picks_from_several_batches_in_any_order(requests in proptest::collection::vec(strategies::request(), 1..3), order in proptest::collection::vec((0usize..3, 0usize..16), 0..24)) {
        let batches: Vec<SpanBatch> = requests.iter().filter_map(batch_of).collect();
        if batches.is_empty() {
            return Ok(());
        }
        let flats: Vec<_> = batches.iter().map(|b| support::flatten(&ExportTraceServiceRequest::decode(b.bytes().clone()).unwrap())).collect();
        let mut reframer = Reframer::new();
        let mut expected = Vec::new();
        for (b, s) in order {
            let b = b % batches.len();
            let s = s % batches[b].len();
            reframer.push(&batches[b], s);
            expected.push(flats[b][s].clone());
        }
        let predicted = reframer.encoded_len();
        let out = reframer.finish();
        prop_assert_eq!(out.encoded_len(), predicted);
        prop_assert_eq!(support::flatten(&decoded(&out)?), expected);
    }
}

#[test]
fn merging_requests_of_one_service_shares_one_resource() {
    let one = batch_of(&realistic::request(1, 11)).unwrap();
    let merged = SpanBatch::merge(&[one.clone(), one.clone(), one]);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged.resource_count(), 1, "identical resources are framed once");
    assert_eq!(merged.scope_count(), 1);
}

#[test]
fn split_of_realistic_batch_by_bytes() {
    let batch = batch_of(&realistic::request(8192, 5)).unwrap();
    let parts = batch.split(0, 64 * 1024);
    assert!(parts.len() > 1);
    assert!(parts.iter().all(|p| p.encoded_len() <= 64 * 1024));
    assert_eq!(parts.iter().map(SpanBatch::len).sum::<usize>(), 8192);
    let merged = SpanBatch::merge(&parts);
    assert_eq!(
        support::flatten(&ExportTraceServiceRequest::decode(merged.bytes().clone()).unwrap()),
        support::flatten(&realistic::request(8192, 5))
    );
}
