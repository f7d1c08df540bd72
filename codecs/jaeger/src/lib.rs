//! # spanpipe-jaeger
//!
//! Jaeger Thrift to and from spanpipe's canonical batch (being built).
