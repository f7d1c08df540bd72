//! The seam between receivers and the pipeline.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use spanpipe_core::SpanBatch;

/// Where a receiver delivers what it decoded: the pipeline of one core.
///
/// One sink per core, shared through `Rc` by every connection of that core's receivers; it
/// need not be `Send`. Both calls are synchronous: when the pipeline cannot take more, it refuses
/// and the client is told to retry later (backpressure, not buffering) — unless the full part is
/// configured to make callers wait (the exporters' `sending_queue.block_on_overflow`), in which
/// case [`SpanSink::wait_for_room`] hands the receiver something to wait on, and the client's
/// request waits (bounded by its deadline) before the body is read, so TCP and HTTP/2 flow control
/// slow the client down instead of an error.
pub trait SpanSink {
    /// A reservation handed back with the batch it was made for (for example memory the memory
    /// limiter set aside). Dropping it unused releases it.
    type Admission;

    /// Asks, before a request body of `encoded_len` bytes is read and decoded, whether the
    /// pipeline can take it, so that a full pipeline costs the client a short answer instead of
    /// an upload and a decode. `encoded_len` is the body as sent (compressed if it was).
    ///
    /// # Errors
    /// A [`Refusal`] that the receiver turns into the protocol's answer.
    fn admit(&self, encoded_len: usize) -> Result<Self::Admission, Refusal>;

    /// Hands over a decoded batch. The outcome says how many spans were taken; spans the sink
    /// rejected (a processor refused them) are reported to the client as a partial success.
    ///
    /// # Errors
    /// A [`Refusal`] when the pipeline could not take the batch after all.
    fn submit(&self, batch: SpanBatch, admission: Self::Admission) -> Result<Accepted, Refusal>;

    /// After [`SpanSink::admit`] refused with [`Refusal::Exhausted`]: a future that completes
    /// when room may have been made, if what is full asks its callers to wait rather than be
    /// refused; `None` (the default) when the refusal is the answer. The receiver asks again once
    /// it completes, so a spurious wake-up costs one more `admit`.
    fn wait_for_room(&self) -> Option<RoomWait<'_>> {
        None
    }
}

/// What [`SpanSink::wait_for_room`] returns.
pub type RoomWait<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// What the pipeline did with a submitted batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Spans of the batch the pipeline rejected and will not deliver. Non-zero makes the answer
    /// a partial success, which clients must not retry.
    pub rejected_spans: u64,
    /// Why spans were rejected, or a warning for the client even when none were; sent as
    /// `partial_success.error_message`.
    pub message: Option<String>,
}

impl Accepted {
    /// Every span was taken.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// `rejected_spans` spans were rejected, for the reason `message`.
    #[must_use]
    pub fn partial(rejected_spans: u64, message: impl Into<String>) -> Self {
        Self { rejected_spans, message: Some(message.into()) }
    }
}

/// Why the pipeline did not take a request, deciding the protocol's answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Full for now (memory limit, queue full): the client should retry after `retry_after`.
    /// Answered gRPC `RESOURCE_EXHAUSTED` with `RetryInfo`, HTTP 429 with `Retry-After`.
    #[error("{reason}; retry after {retry_after:?}")]
    Exhausted {
        /// What is full.
        reason: Cow<'static, str>,
        /// When the client may try again.
        retry_after: Duration,
    },
    /// Not taking data at the moment (shutting down, no healthy exporter): retry later.
    /// Answered gRPC `UNAVAILABLE` with `RetryInfo`, HTTP 503 with `Retry-After`.
    #[error("{reason}; retry after {retry_after:?}")]
    Unavailable {
        /// Why.
        reason: Cow<'static, str>,
        /// When the client may try again.
        retry_after: Duration,
    },
    /// The data will never be accepted: the client must drop it. Answered gRPC
    /// `INVALID_ARGUMENT`, HTTP 400.
    #[error("{reason}")]
    Permanent {
        /// Why.
        reason: Cow<'static, str>,
    },
}

impl Refusal {
    /// The human-readable reason.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Self::Exhausted { reason, .. } | Self::Unavailable { reason, .. } | Self::Permanent { reason } => reason,
        }
    }

    /// When the client may retry; `None` when it must not.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Exhausted { retry_after, .. } | Self::Unavailable { retry_after, .. } => Some(*retry_after),
            Self::Permanent { .. } => None,
        }
    }
}
