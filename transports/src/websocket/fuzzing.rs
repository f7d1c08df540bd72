//! The receiver's session run over an in-memory connection, for the fuzz checks of
//! `tools/fuzz-checks`: arbitrary bytes play a client's stream after a completed handshake, and
//! whatever the server wrote comes back for the check to parse. Built with the `fuzzing` feature
//! only.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use bytes::{Buf as _, Bytes};
use spanpipe_codecs::{Codec, OtlpJson, OtlpProto};
use spanpipe_core::SpanBatch;

use super::io::SessionIo;
use super::session::{self, Endpoint, SessionLimits};
use crate::otlp::shutdown::ShutdownSignal;
use crate::otlp::{Accepted, Intake, Refusal, SpanSink};

/// The message size limit of the fuzzed session: small, so the fuzzer reaches it.
pub const FUZZ_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// A client connection whose incoming side is a fixed byte string (then the end of the
/// stream) and whose outgoing side is recorded.
struct MemoryIo {
    input: Bytes,
    output: Rc<RefCell<Vec<u8>>>,
}

impl hyper::rt::Read for MemoryIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let taken = self.input.len().min(buf.remaining());
        buf.put_slice(&self.input[..taken]);
        self.input.advance(taken);
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for MemoryIo {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.output.borrow_mut().extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A pipeline that takes everything.
struct TakeAll;

impl SpanSink for TakeAll {
    type Admission = ();

    fn admit(&self, _: usize) -> Result<(), Refusal> {
        Ok(())
    }

    fn submit(&self, _: SpanBatch, (): ()) -> Result<Accepted, Refusal> {
        Ok(Accepted::all())
    }
}

thread_local! {
    static EXECUTOR: glommio::LocalExecutor = glommio::LocalExecutor::default();
}

/// Runs a server session on `client_bytes` (what a client sent after the handshake) until the
/// stream ends, and returns the bytes the server sent: WebSocket frames, unmasked.
#[must_use]
pub fn serve_client_bytes(client_bytes: &[u8]) -> Vec<u8> {
    let output = Rc::new(RefCell::new(Vec::new()));
    let io = MemoryIo { input: Bytes::copy_from_slice(client_bytes), output: Rc::clone(&output) };
    let protobuf: Arc<dyn Codec> = Arc::new(OtlpProto);
    let json: Arc<dyn Codec> = Arc::new(OtlpJson);
    let sink = Rc::new(TakeAll);
    let endpoint = Endpoint {
        intake: Intake::new(Rc::clone(&sink)),
        sink,
        protobuf,
        json,
        // No timer may fire: the in-memory stream never makes anyone wait.
        limits: SessionLimits {
            read_timeout: None,
            write_timeout: None,
            ping_interval: None,
            pong_timeout: Duration::ZERO,
            max_backpressure_wait: Duration::from_secs(1),
        },
        max_message_size: FUZZ_MAX_MESSAGE_SIZE,
    };
    let shutdown = Rc::new(ShutdownSignal::default());
    EXECUTOR.with(|executor| {
        executor.run(async {
            let frames = super::frame_limits(FUZZ_MAX_MESSAGE_SIZE);
            let ws = WebSocketStream::from_raw_socket(SessionIo::new(io), Role::Server, Some(frames)).await;
            session::run(ws, &endpoint, &shutdown).await;
        });
    });
    output.take()
}
