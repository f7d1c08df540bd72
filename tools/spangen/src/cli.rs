//! The command line, and its checks.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::client::{Compression, Encoding, Protocol, Transport};
use crate::profile::{Profile, ProfileName};

/// Sends realistic traces to a collector at a controlled rate — over OTLP (gRPC, HTTP with
/// protobuf, JSON or MessagePack bodies, WebSocket), Zipkin (JSON, protobuf) or Jaeger (UDP
/// compact and binary Thrift, Thrift over HTTP) — and reports what the collector made of them.
/// With --verify, checks the collector's file exporter output against what was acknowledged
/// (for the UDP protocols, which have no acknowledgement: against what was sent).
#[derive(Clone, Debug, Parser)]
#[command(name = "spangen", version)]
#[allow(clippy::struct_excessive_bools, reason = "independent command-line switches")]
pub struct Args {
    /// Where to send: `host:port`, `http://host:port[/path]`, `https://…`, `ws://…` or `wss://…`
    /// (UDP: `host:port`). Without a path, the protocol's: /v1/traces, /api/v2/spans,
    /// /api/traces, /v1/traces/ws. Defaults to the protocol's standard port on 127.0.0.1: 4317
    /// gRPC, 4318 OTLP/HTTP, 9411 Zipkin, 6831 jaeger-compact, 6832 jaeger-binary, 14268
    /// jaeger-http, 14250 jaeger-grpc, 4319 websocket.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The protocol. Defaults to grpc.
    #[arg(long, value_enum, default_value = "grpc")]
    pub protocol: Protocol,
    /// Payload of websocket messages: binary (8-byte sequence number + OTLP protobuf) or text
    /// (decimal sequence number, line feed, OTLP/JSON). Defaults to protobuf.
    #[arg(long, value_enum, default_value = "protobuf")]
    pub encoding: Encoding,
    /// Body compression (gRPC and HTTP protocols). Defaults to none.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// Use TLS (implied by an `https` or `wss` endpoint or by --ca-file; not for UDP). Defaults to
    /// off.
    #[arg(long)]
    pub tls: bool,
    /// PEM file of the CA certificates to trust instead of the system's. Defaults to none.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,

    /// Preset trace shape. Defaults to http-service.
    #[arg(long, value_enum, default_value = "http-service")]
    pub profile: ProfileName,
    /// Seed of everything generated, ids included: the same seed sends the same spans.
    /// Defaults to 1.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Override: number of services. Defaults to the profile's.
    #[arg(long)]
    pub services: Option<u32>,
    /// Override: levels of calls below each root. Defaults to the profile's.
    #[arg(long)]
    pub depth: Option<u32>,
    /// Override: most children per span. Defaults to the profile's.
    #[arg(long)]
    pub fan_out: Option<u32>,
    /// Override: extra attributes per span. Defaults to the profile's.
    #[arg(long)]
    pub attributes: Option<u32>,
    /// Override: distinct attribute keys (cardinality). Defaults to the profile's.
    #[arg(long)]
    pub attribute_keys: Option<u32>,
    /// Override: bytes per string attribute value. Defaults to the profile's.
    #[arg(long)]
    pub attribute_value_size: Option<u32>,
    /// Override: most events per span. Defaults to the profile's.
    #[arg(long)]
    pub events: Option<u32>,
    /// Override: fraction of roots linked to the previous trace. Defaults to the profile's.
    #[arg(long)]
    pub link_ratio: Option<f64>,
    /// Override: fraction of spans with an error status. Defaults to the profile's.
    #[arg(long)]
    pub error_ratio: Option<f64>,
    /// Override: median root span duration in milliseconds. Defaults to the profile's.
    #[arg(long)]
    pub latency_median_ms: Option<f64>,
    /// Override: spread (σ of the log) of span durations. Defaults to the profile's.
    #[arg(long)]
    pub latency_sigma: Option<f64>,
    /// Spans per request. Defaults to 100.
    #[arg(long, default_value_t = 100)]
    pub batch_size: u32,
    /// Distinct request templates cycled through. Defaults to 16.
    #[arg(long, default_value_t = 16)]
    pub templates: u32,

    /// Open loop: spans per second, on a fixed timetable whatever the answers. For the UDP
    /// protocols keep it within what the collector reads: datagrams beyond the socket buffer are
    /// dropped by the kernel, unseen by the sender, and --verify reports them missing.
    #[arg(long, conflicts_with = "max", required_unless_present = "max")]
    pub rate: Option<f64>,
    /// Closed loop: each request slot sends again as soon as it is answered.
    #[arg(long)]
    pub max: bool,
    /// How long to send (`500ms`, `30s`, `2m`, `1h`). Defaults to 10s unless --count is given.
    #[arg(long, value_parser = parse_duration, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// How many spans to send.
    #[arg(long)]
    pub count: Option<u64>,
    /// Connections. Defaults to 1.
    #[arg(long, default_value_t = 1)]
    pub connections: u32,
    /// Requests in flight per connection (HTTP/1.1 opens a connection for each; gRPC, WebSocket
    /// and UDP share theirs). Defaults to 4.
    #[arg(long, default_value_t = 4)]
    pub in_flight: u32,
    /// Time to rise linearly from zero to --rate. Defaults to 0s.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub ramp_up: Duration,
    /// Retries of a message answered 429/503 or RESOURCE_EXHAUSTED/UNAVAILABLE, or whose
    /// WebSocket was closed with 1013 (Try Again Later), after the delay the server asks for
    /// (1 s after a 1013 close; else back-off from 100 ms). Defaults to 3.
    #[arg(long, default_value_t = 3)]
    pub max_retries: u32,

    /// Print the final report as JSON on standard output. Defaults to text.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 even when requests failed. Defaults to off.
    #[arg(long)]
    pub allow_errors: bool,
    /// Do not draw the live progress line. Defaults to drawing it when stderr is a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// After the run, check that this OTLP/JSON-lines file (a collector's file exporter output)
    /// holds exactly the acknowledged spans (UDP: the sent spans), each as the protocol's mapping
    /// carries it (e.g. Zipkin: attributes as strings, no links).
    #[arg(long)]
    pub verify: Option<PathBuf>,
    /// How long --verify waits for the file to hold every acknowledged span. Defaults to 10s.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub verify_timeout: Duration,
}

impl Args {
    /// The profile with the overrides applied, validated.
    ///
    /// # Errors
    /// A message naming the flag to change.
    pub fn profile(&self) -> Result<Profile, String> {
        let mut profile = Profile::preset(self.profile);
        let overrides = [
            (self.services, &mut profile.services),
            (self.depth, &mut profile.depth),
            (self.fan_out, &mut profile.fan_out),
            (self.attributes, &mut profile.attributes),
            (self.attribute_keys, &mut profile.attribute_keys),
            (self.attribute_value_size, &mut profile.attribute_value_size),
            (self.events, &mut profile.events),
        ];
        for (value, field) in overrides {
            if let Some(value) = value {
                *field = value;
            }
        }
        let ratios = [
            (self.link_ratio, &mut profile.link_ratio),
            (self.error_ratio, &mut profile.error_ratio),
            (self.latency_median_ms, &mut profile.latency_median_ms),
            (self.latency_sigma, &mut profile.latency_sigma),
        ];
        for (value, field) in ratios {
            if let Some(value) = value {
                *field = value;
            }
        }
        profile.validate()?;
        Ok(profile)
    }

    /// Checks the load flags against each other.
    ///
    /// # Errors
    /// A message naming the flag to change.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100_000).contains(&self.batch_size) {
            return Err(format!("--batch-size must be between 1 and 100000, not {}", self.batch_size));
        }
        if self.templates == 0 {
            return Err("--templates must be at least 1".into());
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("--rate must be a positive number of spans per second, not {rate}"));
            }
        }
        if self.max && !self.ramp_up.is_zero() {
            return Err("--ramp-up shapes the --rate timetable; it cannot be used with --max".into());
        }
        if self.count == Some(0) {
            return Err("--count must be at least 1".into());
        }
        if self.duration.is_some_and(|duration| duration.is_zero()) {
            return Err("--duration must be longer than 0s".into());
        }
        if self.connections == 0 || self.in_flight == 0 {
            return Err("--connections and --in-flight must be at least 1".into());
        }
        if self.connections.saturating_mul(self.in_flight) > 10_000 {
            return Err("--connections × --in-flight must not exceed 10000".into());
        }
        if self.encoding != Encoding::Protobuf && self.protocol != Protocol::Websocket {
            return Err(
                "--encoding chooses websocket messages; use --protocol http-json for OTLP/JSON over HTTP".into()
            );
        }
        let transport = self.protocol.transport();
        if self.compression != Compression::None && matches!(transport, Transport::Udp | Transport::WebSocket) {
            return Err(
                "--compression applies to gRPC and HTTP bodies, not to UDP datagrams or WebSocket messages".into()
            );
        }
        if transport == Transport::Udp && (self.tls || self.ca_file.is_some()) {
            return Err("--tls and --ca-file do not apply to the UDP protocols".into());
        }
        self.profile().map(|_| ())
    }

    /// The endpoint, or the protocol's default.
    #[must_use]
    pub fn endpoint(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| self.protocol.default_endpoint().to_owned())
    }
}

/// Parses `500ms`, `30s`, `2m`, `1h`, `1m30s`: Go's syntax, with spanpipe's config parser, so a
/// duration reads the same on the command line as in a config file.
///
/// # Errors
/// A message quoting the bad text and saying what is wrong with it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    spanpipe_config::GoDuration::parse(text.trim()).map(|duration| duration.0).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("spangen").chain(line.split_whitespace()))
    }

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn needs_rate_or_max_and_not_both() {
        assert!(args("--count 10").is_err());
        assert!(args("--rate 100 --max").is_err());
        assert!(args("--rate 100").is_ok());
        assert!(args("--max --count 10").is_ok());
    }

    #[test]
    fn refuses_duration_with_count() {
        assert!(args("--rate 100 --duration 1s --count 10").is_err());
    }

    #[test]
    fn validation_names_the_flag() {
        let cases = [
            ("--rate 0", "--rate"),
            ("--rate 10 --batch-size 0", "--batch-size"),
            ("--max --ramp-up 1s", "--ramp-up"),
            ("--rate 10 --connections 0", "--connections"),
            ("--rate 10 --attributes 100 --attribute-keys 10", "--attribute-keys"),
            ("--rate 10 --error-ratio 2", "--error-ratio"),
            ("--rate 10 --count 0", "--count"),
            ("--rate 10 --templates 0", "--templates"),
            ("--rate 10 --encoding json", "--encoding"),
            ("--rate 10 --protocol jaeger-compact --compression gzip", "--compression"),
            ("--rate 10 --protocol websocket --compression zstd", "--compression"),
            ("--rate 10 --protocol jaeger-binary --tls", "--tls"),
        ];
        for (line, flag) in cases {
            let error = args(line).unwrap().validate().unwrap_err();
            assert!(error.contains(flag), "`{line}`: {error}");
        }
        assert_eq!(args("--rate 10").unwrap().validate(), Ok(()));
    }

    #[test]
    fn every_protocol_has_its_standard_port() {
        let endpoint = |protocol: &str| args(&format!("--rate 1 --protocol {protocol}")).unwrap().endpoint();
        let expected = [
            ("grpc", "127.0.0.1:4317"),
            ("http-protobuf", "127.0.0.1:4318"),
            ("http-msgpack", "127.0.0.1:4318"),
            ("zipkin-json", "127.0.0.1:9411"),
            ("zipkin-proto", "127.0.0.1:9411"),
            ("jaeger-compact", "127.0.0.1:6831"),
            ("jaeger-binary", "127.0.0.1:6832"),
            ("jaeger-http", "127.0.0.1:14268"),
            ("jaeger-grpc", "127.0.0.1:14250"),
            ("websocket", "127.0.0.1:4319"),
        ];
        for (protocol, address) in expected {
            assert_eq!(endpoint(protocol), address, "{protocol}");
        }
        assert_eq!(args("--rate 1 --protocol websocket --encoding json").unwrap().validate(), Ok(()));
    }

    #[test]
    fn overrides_apply_over_the_preset() {
        let profile = args("--rate 1 --profile small --attributes 5 --attribute-keys 9 --error-ratio 0.5")
            .unwrap()
            .profile()
            .unwrap();
        assert_eq!((profile.attributes, profile.attribute_keys, profile.error_ratio), (5, 9, 0.5));
        assert_eq!(profile.services, Profile::preset(ProfileName::Small).services);
    }
}
