//! The `zipkin` receiver: Zipkin's HTTP API on one port (9411 by default).
//!
//! Routes, as Zipkin's own server has them (everything `POST`):
//!
//! | Path | `Content-Type` | Codec |
//! |------|----------------|-------|
//! | `/api/v2/spans` | `application/json`, or none | Zipkin v2 JSON |
//! | `/api/v2/spans` | `application/x-protobuf`, `application/protobuf` | Zipkin v2 protobuf (`ListOfSpans`) |
//! | `/api/v1/spans` | `application/json`, or none | Zipkin v1 JSON |
//! | `/api/v1/spans` | `application/x-thrift` | refused with 415: v1 Thrift is not decoded |
//!
//! A request without `Content-Type` is read as JSON, as Zipkin's server does (its clients, the
//! Zipkin reporters among them, have sent JSON without saying so for years); any other content
//! type is answered 415 (the Collector's receiver reads any other type as JSON too, and then fails
//! on protobuf or Thrift with a confusing 400; a 415 that lists the types says what is wrong).
//! Zipkin v1 Thrift, which the Collector decodes, is not: it is answered 415 saying so. Bodies may be compressed as `Content-Encoding` says (gzip, which
//! Zipkin's reporters use, and whatever else `compression_algorithms` allows).
//!
//! Answers are Zipkin's: `202 Accepted` with an empty body, 400 with a plain-text message for a
//! body that cannot be decoded, 413 over `max_request_body_size`, 415, 404, 405, and 429 or 503
//! with `Retry-After` when the pipeline is full or unavailable. The codecs come from the caller
//! (the runtime builds them from `spanpipe-zipkin` with `parse_string_tags`): this crate moves
//! bytes and never interprets spans.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use spanpipe_codecs::Codec;
use spanpipe_config::{ComponentConfig, FieldError};

use crate::confighttp;
use crate::otlp::config::parse_endpoint;
use crate::otlp::otlp_http::{AnswerStyle, MediaTable, Route, RouteCodecs};
use crate::otlp::{BoundReceiver, HttpServerConfig, Listener, ListenerKeys, Protocol, ReceiverError, SpanSink};

/// The Zipkin v2 path.
pub const V2_PATH: &str = "/api/v2/spans";
/// The Zipkin v1 path.
pub const V1_PATH: &str = "/api/v1/spans";
/// Where the receiver listens unless `endpoint` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "localhost:9411";

/// Configuration of the `zipkin` receiver, key for key as the Collector's
/// (`receiver/zipkinreceiver`): confighttp's server keys at the top level, and
/// `parse_string_tags`.
#[derive(Clone, Debug, PartialEq)]
pub struct ZipkinReceiverConfig {
    /// confighttp's keys (`endpoint`, `max_request_body_size`, `compression_algorithms`,
    /// timeouts, `keepalive`, `tls`, …), written at the top level of the receiver's section. The
    /// meaning and default of each is [`HttpServerConfig`]'s, except `endpoint`, which defaults
    /// to `localhost:9411`; the OTLP receiver's URL path keys do not exist here.
    pub http: HttpServerConfig,
    /// Read string tags that look like numbers or booleans (`"42"`, `"true"`) as typed
    /// attributes. Defaults to false.
    pub parse_string_tags: bool,
}

impl Default for ZipkinReceiverConfig {
    fn default() -> Self {
        Self {
            http: HttpServerConfig { endpoint: DEFAULT_ENDPOINT.to_owned(), ..HttpServerConfig::default() },
            parse_string_tags: false,
        }
    }
}

const PARSE_STRING_TAGS: &str = "parse_string_tags";

impl<'de> Deserialize<'de> for ZipkinReceiverConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut section = confighttp::section(deserializer)?;
        let parse_string_tags = match section.remove(PARSE_STRING_TAGS) {
            None => false,
            Some(value) => bool::deserialize(value)
                .map_err(|error| serde::de::Error::custom(format!("{PARSE_STRING_TAGS}: {error}")))?,
        };
        let http = confighttp::from_section(section, DEFAULT_ENDPOINT, &[PARSE_STRING_TAGS])
            .map_err(serde::de::Error::custom)?;
        Ok(Self { http, parse_string_tags })
    }
}

impl Serialize for ZipkinReceiverConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut section = confighttp::to_section(&self.http);
        section.insert(PARSE_STRING_TAGS.to_owned(), Value::Bool(self.parse_string_tags));
        section.serialize(serializer)
    }
}

impl JsonSchema for ZipkinReceiverConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ZipkinReceiverConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let parse_string_tags = serde_json::json!({
            "type": "boolean",
            "default": false,
            "description": "Read string tags that look like numbers or booleans as typed attributes. Defaults to false."
        });
        confighttp::schema(generator, DEFAULT_ENDPOINT, &[(PARSE_STRING_TAGS, parse_string_tags)])
    }
}

impl ComponentConfig for ZipkinReceiverConfig {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.http.validate_into(&mut errors);
        errors
    }

    fn warnings(&self) -> Vec<FieldError> {
        self.http.warnings()
    }

    fn listen_addresses(&self) -> Vec<(String, SocketAddr)> {
        parse_endpoint(&self.http.endpoint).map(|address| ("endpoint".to_owned(), address)).into_iter().collect()
    }
}

impl ZipkinReceiverConfig {
    /// Binds `address` instead of `endpoint` (the runtime's other cores bind the port the first
    /// one got). Returns whether the receiver has a listener for `protocol`.
    pub fn set_endpoint(&mut self, protocol: Protocol, address: SocketAddr) -> bool {
        let serves = protocol == Protocol::Zipkin;
        if serves {
            self.http.endpoint = address.to_string();
        }
        serves
    }

    /// Reads the `tls` block's certificate, key and CA as binding will, so that a config whose
    /// files cannot be used is refused before anything starts.
    ///
    /// # Errors
    /// [`ReceiverError::Tls`] naming the key and file that cannot be used.
    pub fn load_certificates(&self) -> Result<(), ReceiverError> {
        crate::otlp::load_tls("tls", self.http.tls.as_ref(), &[crate::tls::ALPN_H2, crate::tls::ALPN_HTTP1]).map(drop)
    }
}

/// The decoders of the Zipkin formats, built by the caller (from `spanpipe-zipkin`, with the
/// receiver's `parse_string_tags`).
#[derive(Clone, Debug)]
pub struct ZipkinCodecs {
    /// Zipkin v2 JSON (a list of spans).
    pub v2_json: Arc<dyn Codec>,
    /// Zipkin v2 protobuf (`zipkin.proto3.ListOfSpans`).
    pub v2_proto: Arc<dyn Codec>,
    /// Zipkin v1 JSON.
    pub v1_json: Arc<dyn Codec>,
}

/// The `zipkin` receiver.
#[derive(Debug)]
pub struct ZipkinReceiver;

impl ZipkinReceiver {
    /// Validates `config`, loads its TLS certificates and binds its listener on the current
    /// glommio executor's core. Nothing is accepted until [`BoundReceiver::start`].
    ///
    /// # Errors
    /// [`ReceiverError::InvalidConfig`] listing every problem; [`ReceiverError::Tls`] when a
    /// certificate, key or CA cannot be loaded; [`ReceiverError::Bind`] when the port cannot be
    /// bound.
    pub fn bind<S: SpanSink + 'static>(
        config: &ZipkinReceiverConfig,
        sink: Rc<S>,
        codecs: &ZipkinCodecs,
    ) -> Result<BoundReceiver<S>, ReceiverError> {
        ReceiverError::unless_valid(config)?;
        let json = |codec: &Arc<dyn Codec>| MediaTable {
            accepted: vec![("application/json", Arc::clone(codec))],
            when_missing: Some(Arc::clone(codec)),
            refused: Vec::new(),
        };
        let mut v2 = json(&codecs.v2_json);
        v2.accepted.extend([
            ("application/x-protobuf", Arc::clone(&codecs.v2_proto)),
            ("application/protobuf", Arc::clone(&codecs.v2_proto)),
        ]);
        let mut v1 = json(&codecs.v1_json);
        v1.refused.push((
            "application/x-thrift",
            "Zipkin v1 Thrift is not supported: send Zipkin v2 JSON or protobuf to /api/v2/spans, or v1 JSON",
        ));
        let routes = [(V2_PATH, v2), (V1_PATH, v1)]
            .map(|(path, table)| Route {
                path: path.to_owned(),
                codecs: RouteCodecs::Table(table),
                style: AnswerStyle::Accepted,
            })
            .into();
        let not_found = format!("404 page not found: spans are received at {V2_PATH} and {V1_PATH}");
        let keys = ListenerKeys { endpoint: "endpoint", tls: "tls" };
        let listener = Listener::http(Protocol::Zipkin, keys, &config.http, routes, not_found, sink)?;
        Ok(BoundReceiver::new(vec![listener], Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confighttp_keys_sit_at_the_top_level_next_to_parse_string_tags() {
        let config: ZipkinReceiverConfig = serde_json::from_value(serde_json::json!({
            "endpoint": "0.0.0.0:9412",
            "parse_string_tags": true,
            "read_timeout": "5s",
        }))
        .unwrap();
        assert_eq!(config.http.endpoint, "0.0.0.0:9412");
        assert!(config.parse_string_tags);
        assert_eq!(config.http.read_timeout, spanpipe_config::GoDuration::from_secs(5));
        let round_trip: ZipkinReceiverConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(round_trip, config);
    }

    #[test]
    fn defaults_are_the_collectors_and_unimplemented_keys_are_refused_by_name() {
        let config: ZipkinReceiverConfig = serde_json::from_value(Value::Null).unwrap();
        assert_eq!(config, ZipkinReceiverConfig::default());
        assert_eq!(config.http.endpoint, "localhost:9411");
        assert!(!config.parse_string_tags);
        let with_auth: ZipkinReceiverConfig =
            serde_json::from_value(serde_json::json!({ "auth": { "authenticator": "basic" } })).unwrap();
        let problems = with_auth.validate();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "auth");
        let with_cors: ZipkinReceiverConfig = serde_json::from_value(
            serde_json::json!({ "cors": { "allowed_origins": ["https://*.example.com"], "max_age": 600 } }),
        )
        .unwrap();
        assert!(with_cors.validate().is_empty(), "cors is a confighttp key every HTTP receiver takes");
        assert_eq!(with_cors.http.cors.as_ref().map(|cors| cors.max_age), Some(600));
        let unknown = serde_json::from_value::<ZipkinReceiverConfig>(serde_json::json!({ "logs_url_path": "/x" }));
        assert!(unknown.unwrap_err().to_string().contains("unknown field `logs_url_path`"));
    }

    #[test]
    fn the_schema_lists_confighttp_keys_and_parse_string_tags_only() {
        let schema = schemars::schema_for!(ZipkinReceiverConfig);
        let properties = schema.get("properties").and_then(Value::as_object).unwrap();
        assert!(properties.contains_key("parse_string_tags"));
        assert!(properties.contains_key("max_request_body_size"));
        assert!(!properties.contains_key("traces_url_path"));
        assert_eq!(properties["endpoint"]["default"], "localhost:9411");
    }
}
