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

/// Declares the resource attributes by namespace, once: [`RESOURCE_ATTRIBUTES`] lists them, and
/// [`is_resource_attribute`] matches a key against those of its namespace only, which its first
/// two bytes tell (`http.*` from `host.*`, `otel.*` from `os.*`), so a key outside them costs a
/// few instructions and one inside a few comparisons.
macro_rules! resource_attributes {
    ($($first:literal $second:literal => [$($key:literal),+ $(,)?]),+ $(,)?) => {
        /// Tags that name the resource rather than the span: the resource attributes of the
        /// semantic conventions 1.6.1 (the version the Collector's Zipkin translator reads them
        /// by). Clients whose protocol has no resource send them as span tags (the OpenTelemetry
        /// SDKs' Zipkin exporters repeat every resource attribute on every span), and decoding
        /// puts them back on the resource.
        #[cfg_attr(not(test), allow(dead_code, reason = "the list is for the docs and the tests"))]
        pub(crate) const RESOURCE_ATTRIBUTES: &[&str] = &[$($($key),+),+];

        /// Whether Zipkin decoding moves a tag of this name to the span's resource: whether it
        /// is one of the resource attributes of the semantic conventions (1.6.1, the version
        /// the Collector's translator reads them by). Every tag of every span is asked.
        #[inline]
        pub fn is_resource_attribute(key: &str) -> bool {
            match key.as_bytes() {
                $([$first, $second, ..] => matches!(key, $($key)|+),)+
                _ => false,
            }
        }
    };
}

resource_attributes! {
    b'a' b'w' => [
        "aws.ecs.cluster.arn",
        "aws.ecs.container.arn",
        "aws.ecs.launchtype",
        "aws.ecs.task.arn",
        "aws.ecs.task.family",
        "aws.ecs.task.revision",
        "aws.eks.cluster.arn",
        "aws.log.group.arns",
        "aws.log.group.names",
        "aws.log.stream.arns",
        "aws.log.stream.names",
    ],
    b'c' b'l' => ["cloud.account.id", "cloud.availability_zone", "cloud.platform", "cloud.provider", "cloud.region"],
    b'c' b'o' => ["container.id", "container.image.name", "container.image.tag", "container.name", "container.runtime"],
    b'd' b'e' => ["deployment.environment", "device.id", "device.model.identifier", "device.model.name"],
    b'f' b'a' => ["faas.id", "faas.instance", "faas.max_memory", "faas.name", "faas.version"],
    b'h' b'o' => [
        "host.arch",
        "host.id",
        "host.image.id",
        "host.image.name",
        "host.image.version",
        "host.name",
        "host.type",
    ],
    b'k' b'8' => [
        "k8s.cluster.name",
        "k8s.container.name",
        "k8s.cronjob.name",
        "k8s.cronjob.uid",
        "k8s.daemonset.name",
        "k8s.daemonset.uid",
        "k8s.deployment.name",
        "k8s.deployment.uid",
        "k8s.job.name",
        "k8s.job.uid",
        "k8s.namespace.name",
        "k8s.node.name",
        "k8s.node.uid",
        "k8s.pod.name",
        "k8s.pod.uid",
        "k8s.replicaset.name",
        "k8s.replicaset.uid",
        "k8s.statefulset.name",
        "k8s.statefulset.uid",
    ],
    b'o' b's' => ["os.description", "os.name", "os.type", "os.version"],
    b'p' b'r' => [
        "process.command",
        "process.command_args",
        "process.command_line",
        "process.executable.name",
        "process.executable.path",
        "process.owner",
        "process.pid",
        "process.runtime.description",
        "process.runtime.name",
        "process.runtime.version",
    ],
    b's' b'e' => ["service.instance.id", "service.name", "service.namespace", "service.version"],
    b't' b'e' => ["telemetry.auto.version", "telemetry.sdk.language", "telemetry.sdk.name", "telemetry.sdk.version"],
    b'w' b'e' => ["webengine.description", "webengine.name", "webengine.version"],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_attributes_are_sorted_and_found_by_name() {
        assert_eq!(RESOURCE_ATTRIBUTES.len(), 81, "the 81 names of semantic conventions 1.6.1");
        assert!(RESOURCE_ATTRIBUTES.windows(2).all(|pair| pair[0] < pair[1]), "sorted, without duplicates");
        assert!(RESOURCE_ATTRIBUTES.contains(&SERVICE_NAME));
        for key in RESOURCE_ATTRIBUTES {
            assert!(is_resource_attribute(key), "{key}");
        }
        for key in
            ["http.method", "host", "hostname", "host.names", "otel.scope.name", "os", "", "service.", "peer.service"]
        {
            assert!(!is_resource_attribute(key), "{key}");
        }
    }
}
