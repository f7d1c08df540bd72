//! One upgraded connection: read a message, hand it to the pipeline, acknowledge it, repeat.
//!
//! A session is one task and handles one message at a time. Nothing is read while a message is
//! decoded, waits for room in the pipeline or has its acknowledgement written, so a full pipeline
//! or a client that does not read its acknowledgements stops the reading and TCP flow control
//! slows the client; at most one message per connection is in the receiver's hands beyond what
//! has been acknowledged. Every wait is bounded: a message must arrive whole within
//! `read_timeout` of its first byte, a write must complete within `write_timeout`, a client
//! silent for `ping_interval` is pinged and must answer within `pong_timeout`, a message may
//! wait `max_backpressure_wait` for room, and a closing handshake [`CLOSING_HANDSHAKE_TIMEOUT`].

use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures_lite::{AsyncReadExt as _, StreamExt as _};
use spanpipe_codecs::Codec;

use super::frame::{close_reason, Ack, AckErrorCode, Envelope, EnvelopeError, PayloadEncoding};
use super::io::SessionIo;
use crate::otlp::shutdown::ShutdownSignal;
use crate::otlp::{Failure, Intake, ReceiverEvent, Refusal, SpanSink, TimeoutKind};
use crate::rt::with_deadline;

/// How long the server waits for the client's side of a closing handshake (or, after a
/// protocol error, for the client to stop sending) before it closes the TCP connection.
pub const CLOSING_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// When a message refused at shutdown may be sent again (to another instance).
const RETRY_AFTER_SHUTDOWN: Duration = Duration::from_secs(1);

/// The timeouts of a session; `None` disables one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionLimits {
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) max_backpressure_wait: Duration,
}

/// What every session of one listener shares: the way to the pipeline and the codecs.
pub(crate) struct Endpoint<S: SpanSink> {
    pub(crate) intake: Intake<S>,
    /// The sink itself, to ask whether a full pipeline wants its callers to wait.
    pub(crate) sink: Rc<S>,
    pub(crate) protobuf: Arc<dyn Codec>,
    pub(crate) json: Arc<dyn Codec>,
    pub(crate) limits: SessionLimits,
    pub(crate) max_message_size: usize,
}

type Stream<T> = WebSocketStream<SessionIo<T>>;

/// What woke the session.
enum Event {
    Received(Result<Message, WsError>),
    /// The stream ended: the client closed TCP, or the closing handshake completed.
    Ended,
    Shutdown,
    /// A deadline (read, ping or pong) may have passed.
    Deadline,
}

/// How a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    /// Send the close frame and read (discarding data) until the client answers with its own.
    Handshake,
    /// The stream cannot be parsed any more (after a protocol error, or mid-message): send the
    /// close frame and discard raw bytes until the client closes, so that its unread data does
    /// not turn the close into a reset that would lose the close frame.
    Drain,
    /// The client is not responding: send the close frame and go.
    Abandon,
}

/// What to send after a message.
enum Answer {
    Ack(Ack),
    /// Acknowledge, then close (shutdown while the message waited for room).
    AckThenClose(Ack, CloseCode, String),
    Close(CloseCode, String),
}

struct Session<'a, S: SpanSink, T> {
    ws: Stream<T>,
    endpoint: &'a Endpoint<S>,
    shutdown: &'a Rc<ShutdownSignal>,
    /// When the client was last heard from (a frame, or the session's start).
    last_heard: Instant,
    /// When the unanswered ping was sent.
    ping_sent: Option<Instant>,
}

/// Runs a session over an upgraded connection until it closes.
pub(crate) async fn run<S, T>(ws: Stream<T>, endpoint: &Endpoint<S>, shutdown: &Rc<ShutdownSignal>)
where
    S: SpanSink,
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    let mut session = Session { ws, endpoint, shutdown, last_heard: Instant::now(), ping_sent: None };
    while session.step().await.is_continue() {}
}

impl<S, T> Session<'_, S, T>
where
    S: SpanSink,
    T: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    fn record(&self, event: ReceiverEvent) {
        self.endpoint.intake.stats.record(event);
    }

    async fn step(&mut self) -> ControlFlow<()> {
        match self.next_event().await {
            Event::Shutdown => self.close(CloseCode::Away, "server shutting down", Closing::Handshake).await,
            Event::Ended => ControlFlow::Break(()),
            Event::Deadline => self.on_deadline().await,
            Event::Received(Err(error)) => self.on_error(error).await,
            Event::Received(Ok(message)) => {
                self.ws.get_ref().message_complete();
                self.last_heard = Instant::now();
                self.ping_sent = None;
                match message {
                    Message::Binary(data) => {
                        let wire_len = data.len();
                        self.on_message(Envelope::from_binary(data), wire_len).await
                    }
                    Message::Text(text) => {
                        let data = Bytes::from(text);
                        let wire_len = data.len();
                        self.on_message(Envelope::from_text(data), wire_len).await
                    }
                    // tungstenite queues the pong answering a ping, and the reply to a close, and
                    // sends them with the next read; after a close that read ends the stream.
                    // Raw frames are never read.
                    Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                        ControlFlow::Continue(())
                    }
                }
            }
        }
    }

    /// The next message, the shutdown signal or the earliest deadline, whichever comes first.
    async fn next_event(&mut self) -> Event {
        let deadline = self.next_deadline();
        let shutdown = self.shutdown;
        let ws = &mut self.ws;
        let stop = async {
            shutdown.wait().await;
            Event::Shutdown
        };
        let read = async { ws.next().await.map_or(Event::Ended, Event::Received) };
        with_deadline(deadline, futures_lite::future::or(stop, read)).await.unwrap_or(Event::Deadline)
    }

    /// The earliest moment a deadline can pass. While no message is in progress the read
    /// deadline has not started, and the session looks again one `read_timeout` later: a message
    /// whose first byte arrives meanwhile cannot be due before then (the connection watchdog's
    /// rule), so the reading itself never has to wake the timer.
    fn next_deadline(&self) -> Option<Instant> {
        let limits = &self.endpoint.limits;
        let started = self.ws.get_ref().message_started();
        let read = limits.read_timeout.map(|limit| started.unwrap_or_else(Instant::now) + limit);
        // A client in the middle of a message is alive (and cannot answer a ping before the
        // frame ends); `read_timeout` bounds it instead.
        let keepalive = match (started, self.ping_sent) {
            (Some(_), _) => None,
            (None, Some(sent)) => Some(sent + limits.pong_timeout),
            (None, None) => limits.ping_interval.map(|interval| self.last_heard + interval),
        };
        [read, keepalive].into_iter().flatten().min()
    }

    async fn on_deadline(&mut self) -> ControlFlow<()> {
        let now = Instant::now();
        let limits = self.endpoint.limits;
        let message_started = self.ws.get_ref().message_started();
        if let Some(timeout) = limits.read_timeout.filter(|t| message_started.is_some_and(|start| now >= start + *t)) {
            self.record(ReceiverEvent::TimedOut(TimeoutKind::Body));
            let reason =
                format!("message not received whole within read_timeout {}", spanpipe_config::GoDuration(timeout));
            // The client may still be sending: drain, or its unread bytes turn the close into a reset.
            return self.close(CloseCode::Policy, &reason, Closing::Drain).await;
        }
        if message_started.is_some() {
            return ControlFlow::Continue(());
        }
        match (self.ping_sent, limits.ping_interval) {
            (Some(sent), _) if now >= sent + limits.pong_timeout => {
                self.record(ReceiverEvent::TimedOut(TimeoutKind::Idle));
                let reason =
                    format!("no pong within pong_timeout {}", spanpipe_config::GoDuration(limits.pong_timeout));
                self.close(CloseCode::Policy, &reason, Closing::Abandon).await
            }
            (None, Some(interval)) if now >= self.last_heard + interval => {
                self.ping_sent = Some(now);
                self.send(Message::Ping(Bytes::new())).await
            }
            _ => ControlFlow::Continue(()),
        }
    }

    /// A read failed: close with the code that says why, or just end when the connection broke.
    async fn on_error(&mut self, error: WsError) -> ControlFlow<()> {
        let (event, code, reason) = match &error {
            WsError::Capacity(_) => (
                ReceiverEvent::TooLarge,
                CloseCode::Size,
                format!("message exceeds max_message_size of {} bytes", self.endpoint.max_message_size),
            ),
            WsError::Utf8(_) => (ReceiverEvent::Malformed, CloseCode::Invalid, "text message is not UTF-8".to_owned()),
            // The client closed TCP without a closing handshake: nothing to answer.
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return ControlFlow::Break(()),
            WsError::Protocol(violation) => (ReceiverEvent::Malformed, CloseCode::Protocol, violation.to_string()),
            _ => {
                tracing::debug!(%error, "WebSocket connection broken");
                return ControlFlow::Break(());
            }
        };
        self.record(event);
        self.close(code, &reason, Closing::Drain).await
    }

    async fn on_message(&mut self, envelope: Result<Envelope, EnvelopeError>, wire_len: usize) -> ControlFlow<()> {
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(error) => {
                // Without a sequence number there is nothing to acknowledge.
                self.record(ReceiverEvent::Malformed);
                return self.close(CloseCode::Invalid, &error.to_string(), Closing::Handshake).await;
            }
        };
        match self.answer(envelope, wire_len).await {
            Answer::Ack(ack) => self.send(Message::text(ack.to_json())).await,
            Answer::AckThenClose(ack, code, reason) => {
                self.send(Message::text(ack.to_json())).await?;
                self.close(code, &reason, Closing::Handshake).await
            }
            Answer::Close(code, reason) => self.close(code, &reason, Closing::Handshake).await,
        }
    }

    /// Admits, decodes and submits one message; waits for room (reading nothing meanwhile) when
    /// the pipeline is full and asks its callers to wait.
    async fn answer(&self, envelope: Envelope, wire_len: usize) -> Answer {
        let Envelope { seq, encoding, payload } = envelope;
        let endpoint = self.endpoint;
        let admission = match endpoint.intake.admit_now(wire_len) {
            Ok(admission) => admission,
            Err(Failure::Refused(Refusal::Exhausted { .. })) if endpoint.sink.wait_for_room().is_some() => {
                let wait = endpoint.limits.max_backpressure_wait;
                let admitted = async { Some(endpoint.intake.admit(wire_len, Some(Instant::now() + wait)).await) };
                let stopped = async {
                    self.shutdown.wait().await;
                    None
                };
                match futures_lite::future::or(admitted, stopped).await {
                    Some(Ok(admission)) => admission,
                    Some(Err(Failure::Refused(Refusal::Exhausted { reason, .. }))) => {
                        self.record(ReceiverEvent::Refused);
                        let wait = spanpipe_config::GoDuration(wait);
                        return Answer::Close(CloseCode::Again, format!("pipeline full for {wait}: {reason}"));
                    }
                    Some(Err(failure)) => return Answer::Ack(self.failure_ack(seq, failure)),
                    None => {
                        self.record(ReceiverEvent::Refused);
                        let message = "the receiver is shutting down; send the message again on a new connection";
                        let ack = Ack::failed(seq, AckErrorCode::Unavailable, message, Some(RETRY_AFTER_SHUTDOWN));
                        return Answer::AckThenClose(ack, CloseCode::Away, "server shutting down".to_owned());
                    }
                }
            }
            Err(failure) => return Answer::Ack(self.failure_ack(seq, failure)),
        };
        let codec = match encoding {
            PayloadEncoding::Protobuf => &endpoint.protobuf,
            PayloadEncoding::Json => &endpoint.json,
        };
        match endpoint.intake.deliver_counted(codec.as_ref(), payload, wire_len, admission) {
            Ok((spans, outcome)) => {
                Answer::Ack(Ack::accepted(seq, spans, outcome.rejected_spans, outcome.message.as_deref()))
            }
            Err(failure) => Answer::Ack(self.failure_ack(seq, failure)),
        }
    }

    /// The error acknowledgement for a message that failed, counted.
    fn failure_ack(&self, seq: u64, failure: Failure) -> Ack {
        self.record(failure.event());
        match failure {
            Failure::Refused(refusal) => {
                let code = match refusal {
                    Refusal::Exhausted { .. } => AckErrorCode::ResourceExhausted,
                    Refusal::Unavailable { .. } => AckErrorCode::Unavailable,
                    Refusal::Permanent { .. } => AckErrorCode::InvalidArgument,
                };
                Ack::failed(seq, code, refusal.reason(), refusal.retry_after())
            }
            Failure::Malformed(message) => Ack::failed(seq, AckErrorCode::InvalidArgument, &message, None),
            other => Ack::failed(seq, AckErrorCode::InvalidArgument, &format!("{other:?}"), None),
        }
    }

    fn write_deadline(&self) -> Option<Instant> {
        self.endpoint.limits.write_timeout.map(|timeout| Instant::now() + timeout)
    }

    /// Sends `message` within the write timeout; `Break` when the connection is done for.
    async fn send(&mut self, message: Message) -> ControlFlow<()> {
        match with_deadline(self.write_deadline(), self.ws.send(message)).await {
            Ok(Ok(())) => ControlFlow::Continue(()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "WebSocket write failed");
                ControlFlow::Break(())
            }
            Err(_) => {
                self.record(ReceiverEvent::TimedOut(TimeoutKind::Write));
                ControlFlow::Break(())
            }
        }
    }

    /// Sends a close frame with `code` and `reason`, then ends the connection as `closing` says.
    async fn close(&mut self, code: CloseCode, reason: &str, closing: Closing) -> ControlFlow<()> {
        let frame = CloseFrame { code, reason: close_reason(reason).into() };
        self.send(Message::Close(Some(frame))).await?;
        let deadline = Some(Instant::now() + CLOSING_HANDSHAKE_TIMEOUT);
        match closing {
            Closing::Abandon => {}
            // Messages that arrive now are not acknowledged: the client resends them elsewhere.
            Closing::Handshake => {
                let _ =
                    with_deadline(deadline, async { while self.ws.next().await.is_some_and(|read| read.is_ok()) {} })
                        .await;
            }
            Closing::Drain => {
                let io = self.ws.get_mut();
                let _ = with_deadline(deadline, async {
                    let mut scratch = [0; 16 * 1024];
                    while io.read(&mut scratch).await.is_ok_and(|read| read > 0) {}
                })
                .await;
            }
        }
        ControlFlow::Break(())
    }
}
