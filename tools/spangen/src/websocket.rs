//! The `websocket` protocol's client side: one long-lived connection that carries messages back to
//! back and matches each acknowledgement to its message.
//!
//! spanpipe's WebSocket receiver answers every message with one JSON acknowledgement, in the order
//! the messages came (`spanpipe_transports::websocket` documents the protocol). So a connection
//! needs no table of outstanding sequence numbers, only a queue: the task that owns the socket
//! numbers each outgoing message (0, 1, 2, … per connection), appends its reply channel to the
//! queue, and hands the front of the queue each acknowledgement that arrives — checking that the
//! acknowledgement names the sequence number it expects, since a mismatch would mean the two sides
//! disagree about what was accepted. The request slots that share the connection each wait on
//! their own reply channel, so `--in-flight` messages are in flight on one socket, as on HTTP/2.
//!
//! A close from the server fails every message still waiting: none of them was accepted (the
//! protocol says so). 1013 (Try Again Later) becomes a retry after a pause, any other close or
//! a broken socket a reconnect; either way the slot reconnects and resends, as the protocol asks.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use spanpipe_transports::websocket::{Ack, AckErrorCode, Envelope};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::client::{Broken, Outcome};

/// How long to wait before reconnecting after a 1013 close: the receiver's pipeline stayed full
/// for its whole `max_backpressure_wait`, so coming straight back would only meet it full again.
pub const TRY_AGAIN_LATER_PAUSE: Duration = Duration::from_secs(1);

/// What became of one message.
#[derive(Debug)]
enum Answer {
    /// Its acknowledgement.
    Ack(Ack),
    /// The server closed the connection before acknowledging it, with this code.
    Closed(Option<u16>),
    /// The connection broke, or the server broke the protocol.
    Broken(String),
}

/// A message to send: the OTLP payload and where to answer.
#[derive(Debug)]
struct Outgoing {
    payload: Vec<u8>,
    reply: oneshot::Sender<Answer>,
}

/// A handle on one WebSocket connection, cloned by each slot that shares it. The connection is
/// driven by its own task and closes when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct WebSocketLink {
    outgoing: mpsc::UnboundedSender<Outgoing>,
}

impl WebSocketLink {
    /// Performs the client handshake for `url` (`ws://host:port/path`, or `wss://` — the scheme
    /// only names the URL, `io` already is the TLS stream when there is one) and starts the task
    /// that drives the connection. Messages are text (OTLP/JSON) when `text`, else binary.
    ///
    /// # Errors
    /// The handshake's error.
    pub async fn open<S>(url: &str, io: S, text: bool) -> Result<Self, tungstenite::Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (stream, _response) = tokio_tungstenite::client_async(url, io).await?;
        let (outgoing, requests) = mpsc::unbounded_channel();
        tokio::spawn(drive(stream, requests, text));
        Ok(Self { outgoing })
    }

    /// Sends one OTLP request (protobuf for binary messages, OTLP/JSON for text) and waits for its
    /// acknowledgement.
    ///
    /// # Errors
    /// [`Broken`] when the connection is gone or closed other than with 1013.
    pub async fn send(&self, payload: &[u8]) -> Result<Outcome, Broken> {
        let (reply, answer) = oneshot::channel();
        self.outgoing
            .send(Outgoing { payload: payload.to_vec(), reply })
            .map_err(|_| Broken("the WebSocket connection is closed".into()))?;
        let answer = answer.await.map_err(|_| Broken("the WebSocket connection task ended".into()))?;
        outcome(answer)
    }
}

/// What a slot makes of an answer.
fn outcome(answer: Answer) -> Result<Outcome, Broken> {
    match answer {
        Answer::Ack(Ack::Accepted { rejected, .. }) => {
            Ok(Outcome::Accepted { rejected_spans: rejected, status: "websocket accepted" })
        }
        Answer::Ack(Ack::Failed { error, .. }) => {
            let status = format!("websocket {}", error.code.as_str());
            Ok(match error.code {
                AckErrorCode::ResourceExhausted | AckErrorCode::Unavailable => {
                    Outcome::Retry { status, after: error.retry_after_ms.map(Duration::from_millis) }
                }
                AckErrorCode::InvalidArgument => Outcome::Rejected { status },
            })
        }
        Answer::Closed(Some(code)) if code == u16::from(CloseCode::Again) => {
            Ok(Outcome::Retry { status: format!("websocket close {code}"), after: Some(TRY_AGAIN_LATER_PAUSE) })
        }
        Answer::Closed(code) => Err(Broken(match code {
            Some(code) => format!("the server closed the WebSocket with {code}"),
            None => "the server closed the WebSocket".into(),
        })),
        Answer::Broken(why) => Err(Broken(why)),
    }
}

/// Owns the socket: sends what the slots hand over, numbered in order, and answers each with the
/// acknowledgement at the front of the queue. Ends when the connection does (failing whatever is
/// still waiting) or when every handle is gone (closing the connection politely).
async fn drive<S>(
    mut stream: tokio_tungstenite::WebSocketStream<S>,
    mut requests: mpsc::UnboundedReceiver<Outgoing>,
    text: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut waiting: VecDeque<(u64, oneshot::Sender<Answer>)> = VecDeque::new();
    let mut next_seq = 0u64;
    let ending = loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(Outgoing { payload, reply }) = request else {
                    let _ = stream.close(None).await;
                    return;
                };
                let seq = next_seq;
                next_seq += 1;
                let message = match envelope(seq, &payload, text) {
                    Ok(message) => message,
                    Err(why) => {
                        let _ = reply.send(Answer::Broken(why));
                        continue;
                    }
                };
                waiting.push_back((seq, reply));
                if let Err(error) = stream.send(message).await {
                    break Answer::Broken(format!("sending on the WebSocket: {error}"));
                }
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(ack))) => {
                    let ack = match serde_json::from_str::<Ack>(ack.as_str()) {
                        Ok(ack) => ack,
                        Err(error) => break Answer::Broken(format!("unreadable acknowledgement `{ack}`: {error}")),
                    };
                    match waiting.pop_front() {
                        Some((seq, reply)) if seq == ack.seq() => {
                            let _ = reply.send(Answer::Ack(ack));
                        }
                        Some((seq, _)) => {
                            break Answer::Broken(format!("acknowledgement for {} while {seq} was expected", ack.seq()))
                        }
                        None => break Answer::Broken(format!("acknowledgement for {} with nothing sent", ack.seq())),
                    }
                }
                Some(Ok(Message::Close(frame))) => break Answer::Closed(frame.map(|frame| u16::from(frame.code))),
                // Pings are answered by tungstenite itself; nothing else is expected.
                Some(Ok(_)) => {}
                Some(Err(error)) => break Answer::Broken(format!("reading the WebSocket: {error}")),
                None => break Answer::Closed(None),
            },
        }
    };
    for (_, reply) in waiting {
        let _ = reply.send(match &ending {
            Answer::Closed(code) => Answer::Closed(*code),
            Answer::Broken(why) => Answer::Broken(why.clone()),
            Answer::Ack(_) => Answer::Broken("the connection ended".into()),
        });
    }
}

/// The message for `seq`: binary (sequence number, protobuf) or text (decimal, line feed, JSON).
fn envelope(seq: u64, payload: &[u8], text: bool) -> Result<Message, String> {
    if text {
        let json = std::str::from_utf8(payload).map_err(|error| format!("the OTLP/JSON body is not UTF-8: {error}"))?;
        Ok(Message::text(Envelope::text_message(seq, json)))
    } else {
        Ok(Message::binary(Envelope::binary_message(seq, payload)))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use spanpipe_transports::websocket::PayloadEncoding;

    use super::*;

    #[test]
    fn binary_and_text_messages_follow_the_receivers_envelope() {
        let Message::Binary(binary) = envelope(7, b"\x0a\x00", false).unwrap() else { panic!("a binary message") };
        let parsed = Envelope::from_binary(binary).unwrap();
        assert_eq!(
            (parsed.seq, parsed.encoding, parsed.payload.as_ref()),
            (7, PayloadEncoding::Protobuf, &b"\x0a\x00"[..])
        );
        let Message::Text(text) = envelope(42, br#"{"resourceSpans":[]}"#, true).unwrap() else {
            panic!("a text message")
        };
        let parsed = Envelope::from_text(Bytes::copy_from_slice(text.as_str().as_bytes())).unwrap();
        assert_eq!(parsed.seq, 42);
        assert_eq!(parsed.encoding, PayloadEncoding::Json);
        assert_eq!(parsed.payload.as_ref(), br#"{"resourceSpans":[]}"#);
        assert!(envelope(1, b"\xff", true).is_err(), "text messages must be UTF-8");
    }

    #[test]
    fn acknowledgements_and_closes_become_outcomes() {
        let accepted = Answer::Ack(Ack::accepted(3, 10, 2, Some("two refused")));
        assert_eq!(outcome(accepted).unwrap(), Outcome::Accepted { rejected_spans: 2, status: "websocket accepted" });
        let full = Ack::failed(4, AckErrorCode::ResourceExhausted, "full", Some(Duration::from_millis(250)));
        assert_eq!(
            outcome(Answer::Ack(full)).unwrap(),
            Outcome::Retry { status: "websocket RESOURCE_EXHAUSTED".into(), after: Some(Duration::from_millis(250)) }
        );
        let invalid = Ack::failed(5, AckErrorCode::InvalidArgument, "bad", None);
        assert_eq!(
            outcome(Answer::Ack(invalid)).unwrap(),
            Outcome::Rejected { status: "websocket INVALID_ARGUMENT".into() }
        );
        assert_eq!(
            outcome(Answer::Closed(Some(1013))).unwrap(),
            Outcome::Retry { status: "websocket close 1013".into(), after: Some(TRY_AGAIN_LATER_PAUSE) }
        );
        assert!(outcome(Answer::Closed(Some(1001))).is_err());
        assert!(outcome(Answer::Broken("reset".into())).is_err());
    }

    /// A server that acknowledges the first message, answers the second with an error, and closes
    /// with 1013 while the third waits: each slot hears what became of its own message.
    #[test]
    fn matches_acknowledgements_to_messages_and_fails_those_left_at_a_close() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (socket, _) = listener.accept().await.unwrap();
                let mut server = tokio_tungstenite::accept_async(socket).await.unwrap();
                let mut seqs = Vec::new();
                while seqs.len() < 3 {
                    match server.next().await {
                        Some(Ok(Message::Binary(message))) => seqs.push(Envelope::from_binary(message).unwrap().seq),
                        Some(Ok(_)) => {}
                        other => panic!("the client stopped before three messages: {other:?}"),
                    }
                }
                server.send(Message::text(Ack::accepted(seqs[0], 5, 0, None).to_json())).await.unwrap();
                let failed =
                    Ack::failed(seqs[1], AckErrorCode::Unavailable, "draining", Some(Duration::from_millis(5)));
                server.send(Message::text(failed.to_json())).await.unwrap();
                let frame = tungstenite::protocol::CloseFrame { code: CloseCode::Again, reason: "full".into() };
                server.send(Message::Close(Some(frame))).await.unwrap();
                seqs
            });
            let io = tokio::net::TcpStream::connect(address).await.unwrap();
            let link = WebSocketLink::open(&format!("ws://{address}/v1/traces/ws"), io, false).await.unwrap();
            let (first, second, third) =
                tokio::join!(link.send(b"\x0a\x00"), link.send(b"\x0a\x00"), link.send(b"\x0a\x00"));
            assert_eq!(first.unwrap(), Outcome::Accepted { rejected_spans: 0, status: "websocket accepted" });
            assert_eq!(
                second.unwrap(),
                Outcome::Retry { status: "websocket UNAVAILABLE".into(), after: Some(Duration::from_millis(5)) }
            );
            assert_eq!(
                third.unwrap(),
                Outcome::Retry { status: "websocket close 1013".into(), after: Some(TRY_AGAIN_LATER_PAUSE) }
            );
            assert_eq!(server.await.unwrap(), vec![0, 1, 2], "numbered from 0 in sending order");
            assert!(link.send(b"\x0a\x00").await.is_err(), "a closed link refuses further messages");
        });
    }
}
