//! # spanpipe-msgpack
//!
//! OTLP as MessagePack (being built).
