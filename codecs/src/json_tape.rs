//! simd-json's tape of a JSON document, parsed where the document lies, with the parser's
//! buffers kept on the thread. Every JSON decoder parses through here: OTLP/JSON, Zipkin v2 and
//! v1, and the JSON that Zipkin annotations carry.
//!
//! Why not call simd-json afresh each time:
//! - simd-json reads past the end of a document with SIMD loads, so it first copies the document
//!   into a padded buffer of its own, unless the caller leaves that padding after it. The decoders
//!   own their body's buffer, so [`with_tape`] pads the buffer itself ([`JsonBuffer`]) and parses
//!   it in place: one copy of every JSON body less. A buffer with room to spare (a decompressed
//!   body, a reused scratch buffer) pads without moving; one without grows once, which costs what
//!   simd-json's own copy would have.
//! - simd-json's working buffers (structural indexes, string buffer, stack) and the tape's nodes
//!   are kept on the thread between documents; without them every request allocates several
//!   buffers of a few times its size and touches that memory fresh. A parse inside another (an
//!   annotation's JSON while its request's tape is being read) takes a second set.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use simd_json::{Node, Tape, INPUT_PADDING};

/// A document's own growable buffer, which [`with_tape`] pads in place for simd-json and gives
/// back at its length.
pub trait JsonBuffer {
    /// The document's length in bytes.
    fn len(&self) -> usize;

    /// Whether the buffer holds nothing.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grows or shrinks the buffer to `len` bytes, zero-filling what is added.
    fn resize_to(&mut self, len: usize);

    /// The buffer's bytes.
    fn bytes_mut(&mut self) -> &mut [u8];
}

/// Both buffers have the same three methods under the same names.
macro_rules! json_buffer {
    ($($buffer:ty),*) => {$(
        impl JsonBuffer for $buffer {
            fn len(&self) -> usize {
                <$buffer>::len(self)
            }

            fn resize_to(&mut self, len: usize) {
                self.resize(len, 0);
            }

            fn bytes_mut(&mut self) -> &mut [u8] {
                self
            }
        }
    )*};
}

json_buffer!(Vec<u8>, BytesMut);

/// Hands `decode` a request body's own buffer when nothing else shares it (the usual case for a
/// body read off the network), else a copy with room for the padding: simd-json rewrites what it
/// parses, so a shared buffer must not be parsed in place.
pub fn with_body_buffer<R>(body: Bytes, decode: impl FnOnce(&mut dyn JsonBuffer) -> R) -> R {
    match body.try_into_mut() {
        Ok(mut unique) => decode(&mut unique),
        Err(shared) => decode(&mut padded_copy(&shared)),
    }
}

/// A buffer for a copy of `document` with room for the padding [`with_tape`] adds, so padding it
/// does not move it again (for bodies whose buffer is shared and must be copied anyway).
#[must_use]
pub fn padded_copy(document: &[u8]) -> Vec<u8> {
    let mut copy = Vec::with_capacity(document.len() + INPUT_PADDING);
    copy.extend_from_slice(document);
    copy
}

/// Parses the document in `json` into simd-json's tape and hands the tape to `parsed`. The buffer
/// is parsed in place (strings are unescaped inside it), so its contents are unspecified
/// afterwards; its length is what it was.
///
/// # Errors
/// simd-json's error when the document is not valid JSON; `parsed` is then not called.
pub fn with_tape<B: JsonBuffer + ?Sized, R>(
    json: &mut B,
    parsed: impl for<'i> FnOnce(&Tape<'i>) -> R,
) -> Result<R, simd_json::Error> {
    let len = json.len();
    let mut parser = PARSERS.with(|parsers| parsers.borrow_mut().pop()).unwrap_or_default();
    json.resize_to(len + INPUT_PADDING);
    let result = parser.parse(json.bytes_mut(), len, parsed);
    json.resize_to(len);
    // Keep the buffers for the next document on this thread unless they grew large: one huge
    // request must not pin its memory for the life of the thread.
    if len <= MAX_RETAINED_INPUT {
        PARSERS.with(|parsers| {
            let mut parsers = parsers.borrow_mut();
            if parsers.len() < MAX_RETAINED_PARSERS {
                parsers.push(parser);
            }
        });
    }
    result
}

/// Documents up to this size leave their parser buffers cached on the thread. The buffers take
/// a few times the document (structural indexes, a string buffer, and a 24-byte tape node per
/// JSON value), so this bounds what an idle thread holds to a few MiB.
const MAX_RETAINED_INPUT: usize = 1 << 20;

/// Parsers kept per thread: one for a request, one for JSON nested in its values.
const MAX_RETAINED_PARSERS: usize = 2;

thread_local! {
    /// Parsers not in use on this thread. Taken out for the duration of a parse, so a parse
    /// inside another takes the next one (or builds its own).
    static PARSERS: ParserPool = const { RefCell::new(Vec::new()) };
}

/// A thread's parsers not in use. Boxed: a parser is some 140 bytes of buffer headers, and
/// moving it out of the pool and back by value (two `memcpy` calls) took a tenth of the time an
/// empty document takes to decode.
#[allow(clippy::vec_box, reason = "the boxes are what is moved in and out, not the parsers")]
type ParserPool = RefCell<Vec<Box<Parser>>>;

/// simd-json's reusable state.
#[derive(Default)]
struct Parser {
    buffers: simd_json::Buffers,
    /// The tape's nodes, kept empty between documents (so the `'static` borrows nothing).
    nodes: Vec<Node<'static>>,
}

impl Parser {
    /// Parses `padded[..len]`, whose remaining bytes are the padding simd-json needs.
    fn parse<R>(
        &mut self,
        padded: &mut [u8],
        len: usize,
        parsed: impl for<'i> FnOnce(&Tape<'i>) -> R,
    ) -> Result<R, simd_json::Error> {
        // `reset` re-labels the empty node vector with the input's lifetime, and back afterwards.
        let mut tape = Tape(std::mem::take(&mut self.nodes)).reset();
        let result = simd_json::fill_tape_padded(padded, len, &mut self.buffers, &mut tape).map(|()| parsed(&tape));
        self.nodes = tape.reset().0;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    fn first_string(json: &mut (impl JsonBuffer + ?Sized)) -> Result<String, simd_json::Error> {
        with_tape(json, |tape| {
            tape.as_value().as_array().and_then(|array| array.get(0)).and_then(|v| v.into_string()).unwrap().to_owned()
        })
    }

    #[test]
    fn a_buffer_is_parsed_in_place_and_keeps_its_length() {
        let mut json = br#"["a\nb", 1]"#.to_vec();
        assert_eq!(first_string(&mut json).unwrap(), "a\nb");
        assert_eq!(json.len(), 11);
        let mut bytes = BytesMut::from(&br#"["tab\t"]"#[..]);
        assert_eq!(first_string(&mut bytes).unwrap(), "tab\t");
        assert_eq!(bytes.len(), 9);
    }

    #[test]
    fn a_shared_body_is_copied_and_a_unique_one_lent() {
        let body = Bytes::from_static(b"[\"s\"]");
        let kept = body.clone();
        assert_eq!(with_body_buffer(body, |json| first_string(json).unwrap()), "s");
        assert_eq!(kept, &b"[\"s\"]"[..], "a shared body is left as it was");
        let unique = Bytes::from(br#"["u"]"#.to_vec());
        let address = unique.as_ptr();
        assert!(with_body_buffer(unique, |json| json.bytes_mut().as_ptr() == address));
    }

    #[test]
    fn a_copy_has_room_for_the_padding() {
        let copy = padded_copy(b"[1]");
        assert_eq!(copy, b"[1]");
        assert!(copy.capacity() >= 3 + INPUT_PADDING);
    }

    #[test]
    fn errors_leave_the_buffer_at_its_length_and_the_next_parse_works() {
        let mut broken = b"[1, 2".to_vec();
        assert!(with_tape(&mut broken, |_| ()).is_err());
        assert_eq!(broken, b"[1, 2");
        // A root number ends where the document does, not at the padding after it.
        let mut number = b"12".to_vec();
        assert_eq!(with_tape(&mut number, |tape| tape.as_value().as_u64()).unwrap(), Some(12));
    }

    #[test]
    fn a_parse_inside_another_gets_a_parser_of_its_own() {
        let mut outer = br#"{"inner":"[\"x\"]"}"#.to_vec();
        let inner = with_tape(&mut outer, |tape| {
            let text = tape.as_value().get("inner").and_then(|v| v.into_string()).unwrap().as_bytes().to_vec();
            let mut inner = text;
            first_string(&mut inner).unwrap()
        })
        .unwrap();
        assert_eq!(inner, "x");
    }
}
