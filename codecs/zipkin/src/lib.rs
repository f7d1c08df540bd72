//! # spanpipe-zipkin
//!
//! Zipkin span formats to and from spanpipe's canonical batch (being built).
