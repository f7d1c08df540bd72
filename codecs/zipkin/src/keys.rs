//! Tag and attribute names the mapping gives a meaning, with where each comes from.

/// Resource attribute for the local service (semantic conventions).
pub(crate) const SERVICE_NAME: &str = "service.name";
/// Instrumentation scope name and version (specification, mapping to non-OTLP formats).
pub(crate) const SCOPE_NAME: &str = "otel.scope.name";
pub(crate) const SCOPE_VERSION: &str = "otel.scope.version";
/// Their deprecated names, still sent by older SDKs and read as the same.
pub(crate) const LIBRARY_NAME: &str = "otel.library.name";
pub(crate) const LIBRARY_VERSION: &str = "otel.library.version";
/// Status (specification's Zipkin mapping).
pub(crate) const STATUS_CODE: &str = "otel.status_code";
pub(crate) const STATUS_DESCRIPTION: &str = "otel.status_description";
pub(crate) const ERROR: &str = "error";
/// Dropped counts (specification, mapping to non-OTLP formats).
pub(crate) const DROPPED_ATTRIBUTES: &str = "otel.dropped_attributes_count";
pub(crate) const DROPPED_EVENTS: &str = "otel.dropped_events_count";
pub(crate) const DROPPED_LINKS: &str = "otel.dropped_links_count";
/// The W3C `tracestate` (the Collector's translator).
pub(crate) const TRACE_STATE: &str = "w3c.tracestate";
/// Carries the `INTERNAL` kind Zipkin has no value for (the Collector's translator).
pub(crate) const SPAN_KIND: &str = "span.kind";
/// Marks a span that had no Zipkin `timestamp` (the Collector's translator).
pub(crate) const START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";
/// Endpoints (the Collector's translator, semantic conventions 1.12).
pub(crate) const HOST_IP: &str = "net.host.ip";
pub(crate) const HOST_PORT: &str = "net.host.port";
pub(crate) const PEER_SERVICE: &str = "peer.service";
pub(crate) const PEER_IP: &str = "net.peer.ip";
pub(crate) const PEER_PORT: &str = "net.peer.port";

/// The specification's ranking of attributes that name the remote service of a `CLIENT` or
/// `PRODUCER` span, after `peer.service` (which applies to every kind).
pub(crate) const REMOTE_SERVICE_RANKING: &[&str] = &[
    "server.address",
    "net.peer.name",
    "network.peer.address",
    "server.socket.domain",
    "server.socket.address",
    "net.sock.peer.name",
    "net.sock.peer.addr",
    "peer.hostname",
    "peer.address",
    "db.name",
];
