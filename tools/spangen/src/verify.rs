//! `--verify`: did the collector's file exporter write exactly the spans that were acknowledged?
//!
//! What spangen remembers of a run is tiny: which requests were acknowledged, one bit each. The
//! rest can be recomputed, because a request's content is a pure function of its number — the
//! template it was made from, its span and trace numbers, hence its ids ([`crate::ids`]). So the
//! check reads the file, turns each span id back into its span number, and from that knows the
//! request, the template span, the ids it should carry and the [`fingerprint`] of its service,
//! name, kind and attributes. A sent span costs one byte of counters during the check.
//!
//! The expected content is the template span in the *protocol's* form: what its mapping carries
//! after the protocol's own encoder and decoder ([`crate::wire`]), recorded in each
//! [`crate::template::TemplateSpan`]. Zipkin has no links, makes every attribute a string and
//! brings back to the resource only the resource attributes the semantic conventions name,
//! Jaeger has no INTERNAL kind; a span that arrives in that form is intact, and anything else
//! that differs is altered. One check serves every protocol.
//!
//! What "acknowledged" means depends on the protocol: an OTLP success answer (less a
//! `partial_success`), Zipkin's and Jaeger's 2xx, a WebSocket acknowledgement that accepted the
//! message. UDP has no answer, so there a request counts as acknowledged once every datagram of it
//! was handed to the kernel: a datagram lost on the way (a full receive buffer) is *missing*.
//!
//! Findings: *missing* (acknowledged, not in the file), *duplicated* (in the file more than
//! once), *altered* (ids, name, kind, service or attributes differ from what was sent), *unknown*
//! (an id spangen never sent), and — not an error — spans of requests that were not acknowledged
//! but arrived anyway (a reply lost after the collector took the request).

use std::hash::{Hash as _, Hasher as _};
use std::io::BufRead as _;
use std::path::Path;

use spanpipe_core::{AnyValueView, KeyValues, SpanView};

use crate::plan::Plan;

/// A stable digest of what `--verify` compares besides ids: service name, span name, kind and
/// attributes (keys and typed values, in order).
#[must_use]
pub fn fingerprint(span: &SpanView<'_>) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    span.service_name().unwrap_or_default().hash(&mut hasher);
    span.name().hash(&mut hasher);
    span.kind().as_i32().hash(&mut hasher);
    hash_key_values(span.attributes(), &mut hasher);
    hasher.finish()
}

fn hash_key_values(attributes: KeyValues<'_>, hasher: &mut std::hash::DefaultHasher) {
    for attribute in attributes {
        attribute.key.hash(hasher);
        hash_value(&attribute.value, hasher);
    }
    // A terminator, so that a list and the entries after it cannot be confused.
    0xFFu8.hash(hasher);
}

fn hash_value(value: &AnyValueView<'_>, hasher: &mut std::hash::DefaultHasher) {
    match value {
        AnyValueView::Empty => 0u8.hash(hasher),
        AnyValueView::String(text) => (1u8, text).hash(hasher),
        AnyValueView::Bool(flag) => (2u8, flag).hash(hasher),
        AnyValueView::Int(number) => (3u8, number).hash(hasher),
        AnyValueView::Double(number) => (4u8, number.to_bits()).hash(hasher),
        AnyValueView::Bytes(bytes) => (5u8, bytes).hash(hasher),
        AnyValueView::Array(values) => {
            6u8.hash(hasher);
            for element in values.clone() {
                hash_value(&element, hasher);
            }
            0xFFu8.hash(hasher);
        }
        AnyValueView::KvList(entries) => {
            7u8.hash(hasher);
            hash_key_values(entries.clone(), hasher);
        }
    }
}

/// What the check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Spans of acknowledged requests: what the file must hold.
    pub expected: u64,
    /// Spans read from the file.
    pub found: u64,
    /// Acknowledged spans absent from the file.
    pub missing: u64,
    /// Spans found more than once (each counted once, however many copies).
    pub duplicated: u64,
    /// Spans whose ids, name, kind, service or attributes differ from what was sent.
    pub altered: u64,
    /// Spans with an id spangen never sent.
    pub unknown: u64,
    /// Spans of requests that were not acknowledged but arrived (not an error).
    pub unacknowledged_delivered: u64,
    /// Lines that are not OTLP/JSON export requests.
    pub unreadable_lines: u64,
    /// The first few findings, described.
    pub examples: Vec<String>,
}

const MAX_EXAMPLES: usize = 10;

impl VerifyReport {
    /// Whether the file holds exactly the acknowledged spans, unaltered.
    #[must_use]
    pub fn is_exact(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.altered == 0
            && self.unknown == 0
            && self.unreadable_lines == 0
    }

    fn note(&mut self, finding: impl FnOnce() -> String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(finding());
        }
    }
}

/// Why the file could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub struct VerifyError {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Checks `path` against the requests of `plan` that `acknowledged` marks (bit `k` of the set is
/// request `k`).
///
/// # Errors
/// [`VerifyError`] when the file cannot be read.
pub fn verify(path: &Path, plan: &Plan, acknowledged: &Acknowledged) -> Result<VerifyReport, VerifyError> {
    let error = |source| VerifyError { path: path.display().to_string(), source };
    let reader = std::io::BufReader::new(std::fs::File::open(path).map_err(error)?);
    let mut report = VerifyReport::default();
    let stride = plan.span_stride();
    let sent_spans = acknowledged.requests() * stride;
    let mut seen = vec![0u8; usize::try_from(sent_spans).unwrap_or(usize::MAX)];
    for (line_number, line) in reader.split(b'\n').enumerate() {
        let mut line = line.map_err(error)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let batch = match spanpipe_codecs::otlp_json::decode(&mut line) {
            Ok(batch) => batch,
            Err(problem) => {
                report.unreadable_lines += 1;
                report.note(|| format!("line {}: not an OTLP/JSON request: {problem}", line_number + 1));
                continue;
            }
        };
        for span in batch.spans() {
            report.found += 1;
            check_span(&span, plan, acknowledged, &mut seen, &mut report);
        }
    }
    for request in 0..acknowledged.requests() {
        if !acknowledged.contains(request) {
            continue;
        }
        let template = plan.template_for(request);
        report.expected += template.span_count() as u64;
        for position in 0..template.span_count() as u64 {
            let number = request * stride + position;
            match seen[number as usize] {
                0 => {
                    report.missing += 1;
                    report.note(|| {
                        format!("missing: request {request}, span {position} (id {})", hex(&plan.ids().span_id(number)))
                    });
                }
                1 => {}
                copies => {
                    report.duplicated += 1;
                    report.note(|| {
                        format!("duplicated: span {} appears {copies} times", hex(&plan.ids().span_id(number)))
                    });
                }
            }
        }
    }
    Ok(report)
}

fn check_span(
    span: &SpanView<'_>,
    plan: &Plan,
    acknowledged: &Acknowledged,
    seen: &mut [u8],
    report: &mut VerifyReport,
) {
    let id = span.span_id();
    let number = plan.ids().span_number(id);
    let stride = plan.span_stride();
    let request = number / stride;
    let position = (number % stride) as usize;
    let expected = (request < acknowledged.requests())
        .then(|| plan.template_for(request).spans().get(position).copied())
        .flatten();
    let Some(expected) = expected else {
        report.unknown += 1;
        report.note(|| format!("unknown: span {} ({}) was never sent", hex(id), span.name()));
        return;
    };
    let count = &mut seen[number as usize];
    *count = count.saturating_add(1);
    if *count > 1 {
        return;
    }
    if !acknowledged.contains(request) {
        report.unacknowledged_delivered += 1;
    }
    let base = request * stride;
    let trace_ok = *span.trace_id() == plan.ids().trace_id(base + u64::from(expected.trace));
    let parent_ok =
        span.parent_span_id().copied() == expected.parent.map(|parent| plan.ids().span_id(base + u64::from(parent)));
    let content_ok = fingerprint(span) == expected.fingerprint;
    if !(trace_ok && parent_ok && content_ok) {
        report.altered += 1;
        report.note(|| {
            let what: Vec<&str> =
                [(!trace_ok, "trace id"), (!parent_ok, "parent id"), (!content_ok, "name/kind/service/attributes")]
                    .into_iter()
                    .filter_map(|(differs, what)| differs.then_some(what))
                    .collect();
            format!("altered: span {} ({}): {} differ", hex(id), span.name(), what.join(", "))
        });
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl VerifyError {
    /// Whether the file does not exist (yet).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::NotFound
    }
}

/// Which requests of a run were acknowledged: one bit per request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acknowledged {
    bits: Vec<u64>,
    requests: u64,
}

impl Acknowledged {
    /// A set over requests `0..requests`, none acknowledged.
    #[must_use]
    pub fn new(requests: u64) -> Self {
        Self { bits: vec![0; requests.div_ceil(64) as usize], requests }
    }

    /// Marks request `request` (ignored when outside the set's range).
    pub fn insert(&mut self, request: u64) {
        if request < self.requests {
            self.bits[(request / 64) as usize] |= 1 << (request % 64);
        }
    }

    /// Whether request `request` was acknowledged.
    #[must_use]
    pub fn contains(&self, request: u64) -> bool {
        request < self.requests && self.bits[(request / 64) as usize] & (1 << (request % 64)) != 0
    }

    /// Number of requests the set ranges over (those that were sent).
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Number of acknowledged requests.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.bits.iter().map(|word| u64::from(word.count_ones())).sum()
    }

    /// Whether no request was acknowledged.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::profile::{Profile, ProfileName};
    use crate::wire::Wire;

    const TIME: u64 = 1_750_000_000_000_000_000;

    fn plan(seed: u64) -> Plan {
        Plan::new(&Profile::preset(ProfileName::HttpService), seed, 10, 3, Some(45), Wire::OtlpJson).unwrap()
    }

    fn request_line(plan: &Plan, request: u64) -> Vec<u8> {
        let mut body = Vec::new();
        plan.render(request, TIME, &mut body).unwrap();
        body.push(b'\n');
        body
    }

    #[test]
    fn acknowledged_sets_count_and_answer_membership() {
        let mut acknowledged = Acknowledged::new(130);
        for request in [0, 63, 64, 129, 500] {
            acknowledged.insert(request);
        }
        assert_eq!(acknowledged.len(), 4, "500 is outside the range");
        assert!(acknowledged.contains(64) && !acknowledged.contains(65) && !acknowledged.contains(500));
        assert!(Acknowledged::new(3).is_empty());
    }

    #[test]
    fn an_exact_file_passes_including_the_short_last_request() {
        let plan = plan(3);
        assert_eq!(plan.total_requests(), Some(5));
        assert_eq!(plan.template_for(4).span_count(), 5, "45 spans: four requests of 10 and one of 5");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let mut acknowledged = Acknowledged::new(5);
        for request in 0..5 {
            file.write_all(&request_line(&plan, request)).unwrap();
            acknowledged.insert(request);
        }
        let report = verify(file.path(), &plan, &acknowledged).unwrap();
        assert!(report.is_exact(), "{report:#?}");
        assert_eq!((report.expected, report.found), (45, 45));
    }

    #[test]
    fn reports_missing_unknown_unreadable_and_unacknowledged_spans() {
        let plan = plan(3);
        let stranger = self::plan(4);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let mut acknowledged = Acknowledged::new(5);
        for request in [0, 1, 2, 3] {
            acknowledged.insert(request);
        }
        // Request 3 was acknowledged but never written; request 4 was not acknowledged but was.
        for request in [0, 1, 2, 4] {
            file.write_all(&request_line(&plan, request)).unwrap();
        }
        file.write_all(&request_line(&stranger, 0)).unwrap();
        file.write_all(b"{not json\n").unwrap();
        let report = verify(file.path(), &plan, &acknowledged).unwrap();
        assert_eq!(report.expected, 40);
        assert_eq!(report.found, 45);
        assert_eq!(report.missing, 10);
        assert_eq!(report.unacknowledged_delivered, 5);
        assert_eq!(report.unknown, 10);
        assert_eq!(report.unreadable_lines, 1);
        assert_eq!((report.duplicated, report.altered), (0, 0));
        assert!(!report.is_exact());
        assert_eq!(report.examples.len(), MAX_EXAMPLES);
    }

    #[test]
    fn a_missing_file_is_an_error_that_says_so() {
        let error = verify(Path::new("/nonexistent/spans.jsonl"), &plan(1), &Acknowledged::new(1)).unwrap_err();
        assert!(error.is_not_found());
        assert!(error.to_string().contains("/nonexistent/spans.jsonl"), "{error}");
    }
}
