//! The Collector's `confighttp.ServerConfig` on its own, for receivers other than `otlp`.
//!
//! [`HttpServerConfig`] is the `otlp` receiver's `protocols.http` section: confighttp's keys plus
//! the OTLP receiver's URL paths (`traces_url_path`, `metrics_url_path`, `logs_url_path`). The
//! `zipkin` receiver squashes confighttp's keys into its top level next to `parse_string_tags`,
//! and the `jaeger` receiver's `protocols.thrift_http` is confighttp alone. Both reuse
//! [`HttpServerConfig`] — one definition of every key, its default, its validation and its
//! refusal of what spanpipe does not implement — and read it through the functions here, which
//! refuse the OTLP-only keys as the Collector would (unknown keys) and set the receiver's own
//! default endpoint.
//!
//! serde's `flatten` cannot be combined with `deny_unknown_fields`, so the section is read as a
//! map first: the receiver takes its own keys out, every remaining key must be one of
//! confighttp's, and the rest is read as an [`HttpServerConfig`].

use std::collections::BTreeSet;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

use crate::otlp::HttpServerConfig;

/// Keys of [`HttpServerConfig`] that belong to the `otlp` receiver, not to confighttp.
const OTLP_ONLY_KEYS: [&str; 3] = ["traces_url_path", "metrics_url_path", "logs_url_path"];

/// confighttp's keys, as [`HttpServerConfig`]'s schema lists them without the OTLP-only ones.
fn confighttp_keys() -> BTreeSet<String> {
    let schema = schemars::schema_for!(HttpServerConfig);
    let properties = schema.get("properties").and_then(Value::as_object);
    properties.into_iter().flat_map(Map::keys).filter(|key| !OTLP_ONLY_KEYS.contains(&key.as_str())).cloned().collect()
}

/// Reads confighttp's keys from `section` (the receiver's own keys already taken out), with
/// `default_endpoint` when `endpoint` is absent. `own_keys` are listed in the error for an
/// unknown key, as serde would.
pub(crate) fn from_section(
    mut section: Map<String, Value>,
    default_endpoint: &str,
    own_keys: &[&str],
) -> Result<HttpServerConfig, String> {
    let known = confighttp_keys();
    if let Some(unknown) = section.keys().find(|key| !known.contains(key.as_str())) {
        let expected: Vec<String> = own_keys
            .iter()
            .map(|key| (*key).to_owned())
            .chain(known.iter().cloned())
            .map(|k| format!("`{k}`"))
            .collect();
        return Err(format!("unknown field `{unknown}`, expected one of {}", expected.join(", ")));
    }
    section.entry("endpoint").or_insert_with(|| Value::String(default_endpoint.to_owned()));
    serde_json::from_value(Value::Object(section)).map_err(|error| error.to_string())
}

/// confighttp's keys of `config`, to be written back (the OTLP-only keys left out).
pub(crate) fn to_section(config: &HttpServerConfig) -> Map<String, Value> {
    let mut section = match serde_json::to_value(config) {
        Ok(Value::Object(section)) => section,
        // A struct of plain fields always serializes to an object.
        _ => Map::new(),
    };
    for key in OTLP_ONLY_KEYS {
        section.remove(key);
    }
    section
}

/// The JSON schema of confighttp's keys with `default_endpoint`, plus `extra` properties of the
/// receiver's own.
pub(crate) fn schema(generator: &mut SchemaGenerator, default_endpoint: &str, extra: &[(&str, Value)]) -> Schema {
    let mut schema = HttpServerConfig::json_schema(generator);
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for key in OTLP_ONLY_KEYS {
            properties.remove(key);
        }
        for (key, property) in extra {
            properties.insert((*key).to_owned(), property.clone());
        }
    }
    with_endpoint_default(schema, default_endpoint)
}

/// A server section's schema with `default_endpoint` as its endpoint's default (and in its
/// description, which the OTLP receiver's struct writes with OTLP's port), and without the
/// whole-object default (which lists the OTLP receiver's endpoint and keys; each property has its
/// own default).
pub(crate) fn with_endpoint_default(mut schema: Schema, default_endpoint: &str) -> Schema {
    if let Some(endpoint) =
        schema.get_mut("properties").and_then(|p| p.get_mut("endpoint")).and_then(Value::as_object_mut)
    {
        endpoint.insert("default".to_owned(), Value::String(default_endpoint.to_owned()));
        let description = format!(
            "Address to listen on, `host:port`; the host is an IP address, `localhost` (127.0.0.1) or \
             empty (all interfaces). Defaults to `{default_endpoint}`."
        );
        endpoint.insert("description".to_owned(), Value::String(description));
    }
    if let Some(object) = schema.as_object_mut() {
        object.remove("default");
    }
    schema
}

/// Validation errors of an HTTP section, their paths under `prefix` (`protocols.thrift_http`).
pub(crate) fn validate(prefix: &str, http: &HttpServerConfig) -> Vec<spanpipe_config::FieldError> {
    let mut own = Vec::new();
    http.validate_into(&mut own);
    crate::otlp::config::prefixed(prefix, own).collect()
}

/// Reads an optional section as a map: absent or empty (`thrift_http:`) is an empty map.
pub(crate) fn section<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
    Ok(<Option<Map<String, Value>> as serde::Deserialize>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_only_keys_are_refused_and_the_default_endpoint_applies() {
        let mut section = Map::new();
        section.insert("traces_url_path".into(), Value::String("/x".into()));
        let error = from_section(section, "localhost:9411", &["parse_string_tags"]).unwrap_err();
        assert!(error.starts_with("unknown field `traces_url_path`, expected one of `parse_string_tags`"), "{error}");
        assert!(!error.contains("`logs_url_path`"), "{error}");

        let config = from_section(Map::new(), "localhost:9411", &[]).unwrap();
        assert_eq!(config.endpoint, "localhost:9411");
        assert!(!to_section(&config).contains_key("traces_url_path"));
    }
}
