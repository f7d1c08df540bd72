//! Protobuf rewriting for equivalence tests: [`split_singular_messages`] writes a message in
//! another form that the protobuf encoding says means the same, so that a hand-written decoder
//! can be held to protobuf's merge rule.
//!
//! The rule (protobuf's encoding guide, "Last One Wins"): a singular message field given more
//! than once is read as the merge of its occurrences, as if their contents had been concatenated;
//! scalar fields inside take the last value and repeated ones collect every entry. Encoders write
//! each field once, so a decoder can get this wrong and pass every test built from encoder
//! output. Splitting each singular message field of such output in two, the second half moved to
//! the end of the enclosing message, makes inputs that only a merging decoder reads the same.
//!
//! The reader here is prost's own wire primitives, independent of the decoders under test.

use prost::encoding::{decode_key, decode_varint, encode_key, encode_varint, WireType};

/// Enough of a message's schema to find its message fields at any depth: the length-delimited
/// fields that hold messages, with whether each is singular (merged when repeated on the wire)
/// or repeated (each occurrence its own message). Fields not listed are copied as they are.
#[derive(Debug)]
pub struct MessageShape {
    /// Field number, cardinality and the shape of the message it holds.
    pub fields: &'static [(u32, Cardinality, &'static MessageShape)],
}

impl MessageShape {
    /// A message with no message fields (a `Timestamp`, an `Endpoint`): split, not looked into.
    pub const SCALARS: MessageShape = MessageShape { fields: &[] };
}

/// How many messages a message field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// At most one: occurrences on the wire merge.
    Singular,
    /// Any number: each occurrence is one entry.
    Repeated,
}

/// `message` (of `shape`) with every singular message field, at every depth, written as two
/// occurrences: its first fields where it was, the rest at the end of the enclosing message.
/// `cut(n)` picks, for a field whose message has `n` fields, how many stay in the first
/// occurrence (`0..=n`; either occurrence may be empty, which protobuf also allows). Entries of
/// repeated fields keep their order, so the result decodes, by protobuf's rules, to what
/// `message` does.
///
/// # Panics
/// If `message` is not well-formed protobuf (it is meant for encoder output) or uses groups.
#[must_use]
pub fn split_singular_messages(message: &[u8], shape: &MessageShape, cut: &mut impl FnMut(usize) -> usize) -> Vec<u8> {
    let mut front = Vec::with_capacity(message.len() + 16);
    let mut moved = Vec::new();
    for field in fields(message) {
        let held = shape.fields.iter().find(|(number, ..)| *number == field.number);
        match (held, field.payload) {
            (Some(&(number, cardinality, inner)), Some(payload)) => {
                let rewritten = split_singular_messages(&message[payload], inner, cut);
                match cardinality {
                    Cardinality::Repeated => put_message(&mut front, number, &rewritten),
                    Cardinality::Singular => {
                        let bounds = fields(&rewritten);
                        let keep = cut(bounds.len()).min(bounds.len());
                        let at = bounds.get(keep).map_or(rewritten.len(), |field| field.whole.start);
                        put_message(&mut front, number, &rewritten[..at]);
                        put_message(&mut moved, number, &rewritten[at..]);
                    }
                }
            }
            _ => front.extend_from_slice(&message[field.whole]),
        }
    }
    front.extend_from_slice(&moved);
    front
}

/// One field of a message: its number, its whole extent, and a length-delimited field's payload.
struct RawField {
    number: u32,
    whole: std::ops::Range<usize>,
    payload: Option<std::ops::Range<usize>>,
}

fn fields(message: &[u8]) -> Vec<RawField> {
    let mut rest = message;
    let offset = |rest: &[u8]| message.len() - rest.len();
    let mut found = Vec::new();
    while !rest.is_empty() {
        let start = offset(rest);
        let (number, wire_type) = decode_key(&mut rest).expect("a well-formed field key");
        let payload = match wire_type {
            WireType::Varint => {
                decode_varint(&mut rest).expect("a well-formed varint");
                None
            }
            WireType::SixtyFourBit => {
                rest = &rest[8..];
                None
            }
            WireType::ThirtyTwoBit => {
                rest = &rest[4..];
                None
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut rest).expect("a well-formed length")).expect("a length");
                let begin = offset(rest);
                rest = &rest[len..];
                Some(begin..begin + len)
            }
            WireType::StartGroup | WireType::EndGroup => panic!("groups are not used by the messages split here"),
        };
        found.push(RawField { number, whole: start..offset(rest), payload });
    }
    found
}

fn put_message(out: &mut Vec<u8>, number: u32, body: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span, Status};
    use prost::Message;

    static SPAN: MessageShape = MessageShape {
        fields: &[
            (11, Cardinality::Repeated, &MessageShape::SCALARS),
            (15, Cardinality::Singular, &MessageShape::SCALARS),
        ],
    };
    static SCOPE_SPANS: MessageShape = MessageShape {
        fields: &[(1, Cardinality::Singular, &MessageShape::SCALARS), (2, Cardinality::Repeated, &SPAN)],
    };
    static RESOURCE_SPANS: MessageShape = MessageShape {
        fields: &[(1, Cardinality::Singular, &MessageShape::SCALARS), (2, Cardinality::Repeated, &SCOPE_SPANS)],
    };

    fn attribute(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..KeyValue::default()
        }
    }

    fn sample() -> ResourceSpans {
        let span = |name: &str| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            events: vec![Event { name: "e".into(), time_unix_nano: 5, ..Event::default() }],
            status: Some(Status { message: "broken".into(), code: 2 }),
            ..Span::default()
        };
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", "a"), attribute("host.name", "h")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "lib".into(), version: "1".into(), ..Default::default() }),
                spans: vec![span("first"), span("second")],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }
    }

    /// prost, which merges as the guide says, reads every split the way it reads the original;
    /// and a cut strictly inside a message does change the bytes.
    #[test]
    fn every_split_decodes_to_the_original_message() {
        let original = sample();
        let bytes = original.encode_to_vec();
        for keep in 0..4 {
            let mut cut = |n: usize| keep.min(n);
            let split = split_singular_messages(&bytes, &RESOURCE_SPANS, &mut cut);
            assert_eq!(ResourceSpans::decode(&split[..]).expect("prost reads the split"), original, "keep {keep}");
            assert_ne!(split, bytes, "keep {keep}: the split differs from the original");
        }
    }

    #[test]
    fn a_shape_without_message_fields_copies_the_message() {
        let bytes = sample().encode_to_vec();
        let split = split_singular_messages(&bytes, &MessageShape::SCALARS, &mut |n| n / 2);
        assert_eq!(split, bytes, "a shape without message fields copies the message");
    }
}
