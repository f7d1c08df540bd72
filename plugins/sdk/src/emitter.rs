//! Where sources and decoders hand spans to the host.

use spanpipe_core::{BatchWriter, ScanError, SpanBatch};

use crate::abi;

/// Why spans could not be handed over.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// What the plugin wrote is not a valid request (a span without ids, values nested too deep,
    /// an encoded message copied in that is not valid). Caught in the plugin, where the message
    /// can say what is wrong, rather than as a bare refusal from the host.
    #[error("the spans written are not a valid OTLP request: {0}")]
    Invalid(#[from] ScanError),
    /// The host answered [`abi::STATUS_ERROR`] for a request the plugin found valid.
    #[error("the host refused the request")]
    Refused,
}

impl From<EmitError> for String {
    fn from(error: EmitError) -> Self {
        error.to_string()
    }
}

#[derive(Debug)]
enum Target<'s> {
    Host(&'s abi::RequestSink),
    Collected(&'s mut Vec<SpanBatch>),
}

/// Hands encoded OTLP requests to the host, one call per request. Requests without spans are
/// skipped (the host would refuse them), so a source that has nothing this cycle can push an
/// empty writer.
#[derive(Debug)]
pub struct Emitter<'s> {
    target: Target<'s>,
    pushed: usize,
}

impl<'s> Emitter<'s> {
    /// An emitter into the host's sink.
    ///
    /// # Safety
    /// `sink.push` must be safe to call with `sink.context` for `'s`.
    pub(crate) unsafe fn from_raw(sink: &'s abi::RequestSink) -> Self {
        Self { target: Target::Host(sink), pushed: 0 }
    }

    /// An emitter that collects the batches, for tests of sources and decoders.
    pub fn collecting(batches: &'s mut Vec<SpanBatch>) -> Self {
        Self { target: Target::Collected(batches), pushed: 0 }
    }

    /// Indexes what `writer` wrote and hands it over.
    ///
    /// # Errors
    /// [`EmitError::Invalid`] when the writer's output does not index, [`EmitError::Refused`] when
    /// the host refuses it.
    pub fn push(&mut self, writer: BatchWriter) -> Result<(), EmitError> {
        self.push_batch(writer.finish()?)
    }

    /// Hands over a batch.
    ///
    /// # Errors
    /// [`EmitError::Refused`] when the host refuses it.
    pub fn push_batch(&mut self, batch: SpanBatch) -> Result<(), EmitError> {
        if batch.is_empty() {
            return Ok(());
        }
        match &mut self.target {
            Target::Host(sink) => {
                let bytes = batch.bytes();
                let request = abi::BytesRef { ptr: bytes.as_ptr(), len: bytes.len() };
                // SAFETY: `from_raw`'s caller vouched for the sink; `request` points into `batch`,
                // alive for the call (the host copies it).
                if unsafe { (sink.push)(sink.context, request) } != abi::STATUS_OK {
                    return Err(EmitError::Refused);
                }
            }
            Target::Collected(batches) => batches.push(batch),
        }
        self.pushed += 1;
        Ok(())
    }

    /// How many requests were handed over so far.
    #[must_use]
    pub fn pushed(&self) -> usize {
        self.pushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_valid_batches_skips_empty_ones_and_refuses_invalid_ones() {
        let mut batches = Vec::new();
        let mut emitter = Emitter::collecting(&mut batches);
        emitter.push(BatchWriter::new()).expect("an empty writer is skipped");
        let mut writer = BatchWriter::new();
        writer.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.trace_id(&[1; 16]).span_id(&[2; 8]).name("x").kind(1);
                })
            })
        });
        emitter.push(writer).expect("valid");
        let mut no_ids = BatchWriter::new();
        no_ids.resource_spans(|rs| {
            rs.scope_spans(|ss| {
                ss.span(|s| {
                    s.name("no ids").kind(1);
                })
            })
        });
        assert!(matches!(emitter.push(no_ids), Err(EmitError::Invalid(_))));
        assert_eq!(emitter.pushed(), 1);
        assert_eq!(batches.len(), 1);
    }
}
