//! # spanpipe-transports
//!
//! The network edge of spanpipe: listeners that accept spans (OTLP over gRPC/HTTP/2 and HTTP/1.1,
//! Zipkin and Jaeger over HTTP and UDP, WebSocket) and the clients exporters send with (connection
//! pools, keepalive, retry with backoff, endpoint failover), with TLS on both sides.
//!
//! Transports move bytes; they never interpret spans. A listener hands each request body, as
//! `bytes::Bytes`, together with its content type to the codec registry of `spanpipe-codecs`, and
//! answers the client from the typed outcome. Every listener runs one instance per data-plane core
//! with its own `SO_REUSEPORT` socket, so nothing is shared between cores on the request path.
//!
//! This crate is empty until the data-plane work lands; nothing here is usable yet.
