//! # spanpipe-transports
//!
//! The network edge of spanpipe: listeners that accept spans and the runtime glue the exporters'
//! clients use.
//!
//! Transports move bytes; they never interpret spans. A listener hands each request body, as
//! `bytes::Bytes`, together with its content type to the codec registry of `spanpipe-codecs`, and
//! answers the client from the typed outcome. Every listener runs one instance per data-plane core
//! with its own `SO_REUSEPORT` socket, so nothing is shared between cores on the request path.
//!
//! Why hyper on glommio rather than tonic on tokio: the data plane is thread per core on
//! io_uring, and a gRPC server is little more than HTTP/2 plus a 5-byte message prefix and a
//! status in the trailers. hyper 1.x runs on any executor that can spawn its (`!Send`) futures,
//! so the receivers and exporters keep their connections, buffers and counters on one core, and
//! the request body reaches the codec as the very `Bytes` hyper read — no protobuf library
//! decodes it first. What a gRPC framework would add (reflection, streaming, interceptors) OTLP
//! does not use.
//!
//! - [`rt`]: hyper 1.x on glommio — executor, IO, timer and a `connect` helper — for servers and
//!   clients alike.
//! - [`otlp`]: the OTLP/gRPC and OTLP/HTTP receivers, their config (the Collector's `otlp`
//!   receiver keys), the [`otlp::SpanSink`] seam to the pipeline and per-core counters — and the
//!   machinery every TCP receiver shares: the HTTP server with its route table (path → codecs by
//!   `Content-Type` → answer style), bounded body reads, timeouts, TLS, admission and graceful
//!   shutdown.
//! - [`zipkin`]: the `zipkin` receiver (Zipkin v2 JSON and protobuf, v1 JSON) on that server.
//! - [`jaeger`]: the `jaeger` receiver: collector HTTP on that server, agent UDP on [`udp`].
//! - [`cors`]: the HTTP receivers' `cors` section: preflights answered and answers marked for
//!   the origins it allows, so web pages can send spans.
//! - [`udp`]: datagram listeners — a socket per core, a large receive buffer drained in a tight
//!   loop, drops counted (the pipeline's and the kernel's).
//!
//! Every receiver kind binds into one [`BoundReceiver`] and runs as one [`RunningReceiver`]: its
//! listeners, each a [`Protocol`] with its bound address and [`ReceiverStats`], and a graceful
//! `shutdown()`. The runtime holds them all alike.
//! - [`compression`]: bounded decompression of request bodies (gzip, zstd, zlib/deflate).
//! - [`websocket`]: the WebSocket receiver — OTLP requests over one long-lived connection, each
//!   answered with an acknowledgement carrying the client's sequence number.
//! - [`tls`]: the Collector's `tls` blocks for servers and clients and the rustls configurations
//!   they load into; [`rt::GlommioIo`] runs the handshake and the records on the core.

pub mod compression;
pub mod config_headers;
mod confighttp;
pub mod cors;
pub mod grpc_status;
pub mod jaeger;
pub mod otlp;
pub mod rt;
pub mod tls;
pub mod udp;
pub mod websocket;
pub mod zipkin;

pub use otlp::{
    BoundReceiver, Protocol, ReceiverError, ReceiverStats, ReceiverStatsSnapshot, RunningReceiver, SpanSink,
};
