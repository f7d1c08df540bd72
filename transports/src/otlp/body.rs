//! Reading request bodies within a size limit and a deadline, and the response body type.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::rt::with_deadline;

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// More than the limit arrived.
    TooLarge,
    /// The deadline passed first.
    TimedOut,
    /// The connection or stream failed (the client reset it, or the framing was broken).
    Broken(hyper::Error),
}

/// Collects a request body, keeping a body that arrives as one chunk (the common case for
/// small requests and for HTTP/2 with large windows) without a copy.
pub(crate) struct BodyReader {
    body: Incoming,
    first: Option<Bytes>,
    joined: BytesMut,
    ended: bool,
    limit: usize,
    deadline: Option<Instant>,
}

impl BodyReader {
    pub(crate) fn new(body: Incoming, limit: usize, deadline: Option<Instant>) -> Self {
        let ended = body.is_end_stream();
        Self { body, first: None, joined: BytesMut::new(), ended, limit, deadline }
    }

    /// Bytes received so far.
    pub(crate) fn buffered(&self) -> &[u8] {
        match &self.first {
            Some(first) => first,
            None => &self.joined,
        }
    }

    /// Whether the body has ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Reads until at least `wanted` bytes are buffered or the body ends.
    pub(crate) async fn fill(&mut self, wanted: usize) -> Result<(), BodyError> {
        let deadline = self.deadline;
        with_deadline(deadline, async {
            while !self.ended && self.buffered().len() < wanted {
                self.read_frame().await?;
            }
            Ok(())
        })
        .await
        .unwrap_or(Err(BodyError::TimedOut))
    }

    /// Reads to the end of the body and returns all of it.
    pub(crate) async fn read_to_end(mut self) -> Result<Bytes, BodyError> {
        self.fill(usize::MAX).await?;
        Ok(self.into_bytes())
    }

    /// Everything buffered, without reading further.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.first {
            Some(first) => first,
            None => self.joined.freeze(),
        }
    }

    async fn read_frame(&mut self) -> Result<(), BodyError> {
        let Some(frame) = self.body.frame().await else {
            self.ended = true;
            return Ok(());
        };
        // Trailers carry nothing a receiver needs.
        let Ok(data) = frame.map_err(BodyError::Broken)?.into_data() else {
            return Ok(());
        };
        if self.buffered().len().saturating_add(data.len()) > self.limit {
            return Err(BodyError::TooLarge);
        }
        if self.body.is_end_stream() {
            self.ended = true;
        }
        if data.is_empty() {
            return Ok(());
        }
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(data),
            None => self.joined.extend_from_slice(&data),
            Some(first) => {
                self.joined.reserve(first.len() + data.len());
                self.joined.extend_from_slice(&first);
                self.joined.extend_from_slice(&data);
            }
        }
        Ok(())
    }
}

/// A response body: at most one data frame and, for gRPC, trailers.
#[derive(Debug, Default)]
pub struct ResponseBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl ResponseBody {
    /// No body at all.
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// `data` and nothing else.
    pub(crate) fn full(data: Bytes) -> Self {
        Self { data: Some(data).filter(|d| !d.is_empty()), trailers: None }
    }

    /// `data`, then `trailers`.
    pub(crate) fn with_trailers(data: Bytes, trailers: HeaderMap) -> Self {
        Self { data: Some(data).filter(|d| !d.is_empty()), trailers: Some(trailers) }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|trailers| Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}
