//! Tag and attribute keys the mapping gives a meaning to, in one place for both directions.

pub(crate) const SERVICE_NAME: &str = "service.name";
pub(crate) const HOSTNAME: &str = "hostname";
pub(crate) const HOST_NAME: &str = "host.name";
pub(crate) const JAEGER_VERSION: &str = "jaeger.version";
pub(crate) const EXPORTER_VERSION: &str = "opencensus.exporterversion";

pub(crate) const SPAN_KIND: &str = "span.kind";
pub(crate) const ERROR: &str = "error";
pub(crate) const STATUS_CODE: &str = "otel.status_code";
pub(crate) const STATUS_DESCRIPTION: &str = "otel.status_description";
pub(crate) const HTTP_STATUS_CODE: &str = "http.status_code";
pub(crate) const HTTP_STATUS_MESSAGE: &str = "http.status_message";
pub(crate) const TRACE_STATE: &str = "w3c.tracestate";
pub(crate) const SCOPE_NAME: &str = "otel.scope.name";
pub(crate) const SCOPE_VERSION: &str = "otel.scope.version";
pub(crate) const LIBRARY_NAME: &str = "otel.library.name";
pub(crate) const LIBRARY_VERSION: &str = "otel.library.version";
pub(crate) const DROPPED_ATTRIBUTES: &str = "otel.dropped_attributes_count";
pub(crate) const DROPPED_EVENTS: &str = "otel.dropped_events_count";
pub(crate) const DROPPED_LINKS: &str = "otel.dropped_links_count";

pub(crate) const EVENT: &str = "event";
pub(crate) const EVENT_DROPPED_ATTRIBUTES: &str = "otel.event.dropped_attributes_count";

pub(crate) const REF_TYPE: &str = "opentracing.ref_type";
pub(crate) const CHILD_OF: &str = "child_of";
pub(crate) const FOLLOWS_FROM: &str = "follows_from";

/// Span tags that may become OTLP span fields instead of attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    SpanKind,
    Error,
    StatusCode,
    StatusDescription,
    HttpStatusCode,
    HttpStatusMessage,
    TraceState,
    ScopeName,
    ScopeVersion,
    LibraryName,
    LibraryVersion,
    DroppedAttributes,
    DroppedEvents,
    DroppedLinks,
}

impl Special {
    #[inline]
    pub(crate) fn of(key: &str) -> Option<Self> {
        Some(match key {
            SPAN_KIND => Self::SpanKind,
            ERROR => Self::Error,
            STATUS_CODE => Self::StatusCode,
            STATUS_DESCRIPTION => Self::StatusDescription,
            HTTP_STATUS_CODE => Self::HttpStatusCode,
            HTTP_STATUS_MESSAGE => Self::HttpStatusMessage,
            TRACE_STATE => Self::TraceState,
            SCOPE_NAME => Self::ScopeName,
            SCOPE_VERSION => Self::ScopeVersion,
            LIBRARY_NAME => Self::LibraryName,
            LIBRARY_VERSION => Self::LibraryVersion,
            DROPPED_ATTRIBUTES => Self::DroppedAttributes,
            DROPPED_EVENTS => Self::DroppedEvents,
            DROPPED_LINKS => Self::DroppedLinks,
            _ => return None,
        })
    }

    pub(crate) fn bit(self) -> u16 {
        1 << self as u16
    }
}
