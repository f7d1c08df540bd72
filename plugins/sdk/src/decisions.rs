//! What a processor decides about a batch: which spans to keep, which attributes to replace.

use std::ffi::c_void;

use spanpipe_core::{Attributes, SpanAttributesWriter};

use crate::abi;
use crate::batch::EncodedAttribute;

/// Why the host refused a replacement run of attributes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceError {
    /// The host answered [`abi::STATUS_ERROR`]: the span is not in the batch, or the bytes are not
    /// whole `Span.attributes` fields (only possible through [`AttributeRun::copy`] of foreign
    /// bytes).
    #[error("the host refused the replacement attributes of span {span}")]
    Refused {
        /// The span's position in the batch.
        span: usize,
    },
}

impl From<ReplaceError> for String {
    fn from(error: ReplaceError) -> Self {
        error.to_string()
    }
}

/// A scalar attribute value for [`Decisions::replace_attributes`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttributeValue<'v> {
    /// `string_value`.
    Str(&'v str),
    /// `int_value`.
    Int(i64),
    /// `bool_value`.
    Bool(bool),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'v [u8]),
}

impl<'v> From<&'v str> for AttributeValue<'v> {
    fn from(value: &'v str) -> Self {
        Self::Str(value)
    }
}

impl From<i64> for AttributeValue<'_> {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for AttributeValue<'_> {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<f64> for AttributeValue<'_> {
    fn from(value: f64) -> Self {
        Self::Double(value)
    }
}

/// A run of `Span.attributes` fields being written for one span's replacement.
#[derive(Debug)]
pub struct AttributeRun<'b> {
    buf: &'b mut Vec<u8>,
}

impl AttributeRun<'_> {
    /// A writer for new attributes, with every method of spanpipe-core's [`Attributes`]
    /// (`str_attribute`, `int_attribute`, nested values through `attribute`, …).
    pub fn writer(&mut self) -> SpanAttributesWriter<'_> {
        SpanAttributesWriter::new(self.buf)
    }

    /// Appends one scalar attribute.
    pub fn put(&mut self, key: &str, value: AttributeValue<'_>) {
        let mut writer = self.writer();
        match value {
            AttributeValue::Str(value) => writer.str_attribute(key, value),
            AttributeValue::Int(value) => writer.int_attribute(key, value),
            AttributeValue::Bool(value) => writer.bool_attribute(key, value),
            AttributeValue::Double(value) => writer.double_attribute(key, value),
            AttributeValue::Bytes(value) => writer.bytes_attribute(key, value),
        }
    }

    /// Keeps one of the span's attributes as it is, whatever its value (arrays and key-value
    /// lists included), by copying its encoded field.
    pub fn copy(&mut self, attribute: &EncodedAttribute<'_>) {
        self.buf.extend_from_slice(attribute.field);
    }
}

/// Where replacement runs go: the host's callback, or a list a test reads.
#[derive(Debug)]
enum Replacements<'o> {
    Host { context: *mut c_void, replace: unsafe extern "C" fn(*mut c_void, usize, abi::BytesRef) -> abi::Status },
    Recorded(&'o mut Vec<(usize, Vec<u8>)>),
}

/// A processor's decisions about one batch. Every span is kept unless dropped; attributes stay
/// unless replaced.
#[derive(Debug)]
pub struct Decisions<'o> {
    keep: &'o mut [u8],
    replacements: Replacements<'o>,
    /// Reused for each replacement run, so a processor that rewrites every span allocates once
    /// per instance, not once per span.
    scratch: &'o mut Vec<u8>,
}

impl<'o> Decisions<'o> {
    /// Decisions that go to the host.
    ///
    /// # Safety
    /// `output.keep` must point at `output.keep_len` writable bytes (or be dangling or null with a
    /// length of 0) and `output.replace_attributes` must be safe to call with `output.context`,
    /// both for `'o`.
    pub(crate) unsafe fn from_raw(output: &'o mut abi::ProcessorOutput, scratch: &'o mut Vec<u8>) -> Self {
        let keep: &'o mut [u8] = if output.keep_len == 0 || output.keep.is_null() {
            &mut []
        } else {
            // SAFETY: the caller vouches for `keep_len` writable bytes at `keep`.
            unsafe { std::slice::from_raw_parts_mut(output.keep, output.keep_len) }
        };
        let replacements = Replacements::Host { context: output.context, replace: output.replace_attributes };
        Self { keep, replacements, scratch }
    }

    /// Decisions recorded for a test: `keep` (one byte per span, 1 to start with) receives the
    /// drops, `replaced` each replacement run with its span's position.
    pub fn recording(keep: &'o mut [u8], replaced: &'o mut Vec<(usize, Vec<u8>)>, scratch: &'o mut Vec<u8>) -> Self {
        Self { keep, replacements: Replacements::Recorded(replaced), scratch }
    }

    /// Number of spans the decisions are about.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    /// Whether the batch has no spans.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// Drops the span at `span` (its [`crate::Span::position`]).
    ///
    /// # Panics
    /// If `span` is not a position in the batch — a bug in the plugin, which the SDK reports to
    /// the host as a panic.
    pub fn drop(&mut self, span: usize) {
        let spans = self.keep.len();
        match self.keep.get_mut(span) {
            Some(keep) => *keep = 0,
            None => panic!("dropped span {span}, out of range: the batch has {spans} spans"),
        }
    }

    /// Whether the span at `span` is still kept.
    #[must_use]
    pub fn is_kept(&self, span: usize) -> bool {
        self.keep.get(span).is_some_and(|&keep| keep != 0)
    }

    /// Replaces every attribute of the span at `span` with `attributes`.
    ///
    /// # Errors
    /// [`ReplaceError::Refused`] when the host refuses (a position outside the batch).
    pub fn replace_attributes(
        &mut self,
        span: usize,
        attributes: &[(&str, AttributeValue<'_>)],
    ) -> Result<(), ReplaceError> {
        self.replace_attributes_with(span, |run| {
            for &(key, value) in attributes {
                run.put(key, value);
            }
        })
    }

    /// Replaces every attribute of the span at `span` with what `write` puts in the run: new
    /// attributes ([`AttributeRun::put`], [`AttributeRun::writer`]) and kept ones
    /// ([`AttributeRun::copy`]).
    ///
    /// # Errors
    /// [`ReplaceError::Refused`] when the host refuses (a position outside the batch).
    pub fn replace_attributes_with(
        &mut self,
        span: usize,
        write: impl FnOnce(&mut AttributeRun<'_>),
    ) -> Result<(), ReplaceError> {
        self.scratch.clear();
        write(&mut AttributeRun { buf: self.scratch });
        match &mut self.replacements {
            Replacements::Host { context, replace } => {
                let bytes = abi::BytesRef { ptr: self.scratch.as_ptr(), len: self.scratch.len() };
                // SAFETY: `from_raw`'s caller vouched that `replace` may be called with `context`;
                // `bytes` points into `scratch`, alive for the call (the host copies them).
                let status = unsafe { replace(*context, span, bytes) };
                if status != abi::STATUS_OK {
                    return Err(ReplaceError::Refused { span });
                }
            }
            Replacements::Recorded(replaced) => {
                if span >= self.keep.len() {
                    return Err(ReplaceError::Refused { span });
                }
                replaced.push((span, self.scratch.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use spanpipe_core::EncodedSpanView;

    use super::*;

    #[test]
    fn recording_decisions_keep_drops_and_replacement_runs() {
        let mut keep = [1, 1, 1];
        let mut replaced = Vec::new();
        let mut scratch = Vec::new();
        let mut decisions = Decisions::recording(&mut keep, &mut replaced, &mut scratch);
        decisions.drop(1);
        assert!(decisions.is_kept(0) && !decisions.is_kept(1) && !decisions.is_kept(9));
        decisions
            .replace_attributes(2, &[("a", "x".into()), ("b", 3_i64.into()), ("c", true.into())])
            .expect("in range");
        assert_eq!(decisions.replace_attributes(3, &[]), Err(ReplaceError::Refused { span: 3 }));
        assert_eq!(keep, [1, 0, 1]);
        assert_eq!(replaced.len(), 1);
        let (span, run) = &replaced[0];
        let read: Vec<_> =
            EncodedSpanView::new(run).attributes().map(|kv| (kv.key, format!("{:?}", kv.value))).collect();
        assert_eq!(
            (*span, read),
            (2, vec![("a", "String(\"x\")".into()), ("b", "Int(3)".into()), ("c", "Bool(true)".into())])
        );
    }
}
