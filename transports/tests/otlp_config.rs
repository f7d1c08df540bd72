//! The `otlp` receiver's config: the Collector's keys and defaults, and validation that names
//! the key to change.

use std::net::SocketAddr;
use std::time::Duration;

use spanpipe_config::ComponentConfig;
use spanpipe_transports::otlp::{GrpcServerConfig, HttpServerConfig, OtlpReceiverConfig};

fn parse(json: serde_json::Value) -> OtlpReceiverConfig {
    serde_json::from_value(json).expect("config parses")
}

fn error_paths(config: &OtlpReceiverConfig) -> Vec<String> {
    config.validate().into_iter().map(|error| error.path).collect()
}

#[test]
fn defaults_are_the_collectors() {
    let grpc = GrpcServerConfig::default();
    assert_eq!(grpc.endpoint, "localhost:4317");
    assert_eq!(grpc.max_recv_msg_size_mib, 4);
    assert_eq!(grpc.read_buffer_size, 512 * 1024);
    assert_eq!(grpc.transport, "tcp");
    let http = HttpServerConfig::default();
    assert_eq!(http.endpoint, "localhost:4318");
    assert_eq!(http.traces_url_path, "/v1/traces");
    assert_eq!(http.max_request_body_size, 20 * 1024 * 1024);
}

#[test]
fn a_present_but_empty_protocol_section_is_enabled_with_defaults() {
    let config = parse(serde_json::json!({ "protocols": { "grpc": null, "http": {} } }));
    assert_eq!(config.protocols.grpc, Some(GrpcServerConfig::default()));
    assert_eq!(config.protocols.http, Some(HttpServerConfig::default()));
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let addresses = config.listen_addresses();
    assert_eq!(
        addresses,
        vec![
            ("protocols.grpc.endpoint".to_owned(), SocketAddr::from(([127, 0, 0, 1], 4317))),
            ("protocols.http.endpoint".to_owned(), SocketAddr::from(([127, 0, 0, 1], 4318))),
        ]
    );
}

#[test]
fn no_protocol_at_all_is_refused() {
    assert_eq!(error_paths(&parse(serde_json::json!({ "protocols": {} }))), ["protocols"]);
    assert_eq!(error_paths(&OtlpReceiverConfig::default()), ["protocols"]);
}

#[test]
fn durations_and_keys_read_as_in_collector_configs() {
    let config = parse(serde_json::json!({ "protocols": {
        "grpc": {
            "endpoint": "0.0.0.0:14317",
            "max_recv_msg_size_mib": 16,
            "keepalive": { "server_parameters": { "max_connection_idle": "11s", "max_connection_age": "1m30s", "time": "30s" } }
        },
        "http": { "endpoint": ":14318", "traces_url_path": "traces", "keepalive": { "idle_timeout": "90s" } }
    }}));
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let grpc = config.protocols.grpc.as_ref().unwrap();
    let parameters = grpc.keepalive.as_ref().unwrap().server_parameters.as_ref().unwrap();
    assert_eq!(parameters.max_connection_age.unwrap().0, Duration::from_secs(90));
    let http = config.protocols.http.as_ref().unwrap();
    assert_eq!(http.keepalive.as_ref().unwrap().idle_timeout.0, Duration::from_secs(90));
    assert_eq!(
        config.listen_addresses().into_iter().map(|(_, a)| a).collect::<Vec<_>>(),
        [SocketAddr::from(([0, 0, 0, 0], 14317)), SocketAddr::from(([0, 0, 0, 0], 14318))]
    );
}

#[test]
fn unknown_keys_are_parse_errors_that_name_the_key() {
    let error = serde_json::from_value::<OtlpReceiverConfig>(serde_json::json!({
        "protocols": { "grpc": { "endpont": "localhost:4317" } }
    }))
    .unwrap_err();
    assert!(error.to_string().contains("endpont"), "{error}");
    let error =
        serde_json::from_value::<OtlpReceiverConfig>(serde_json::json!({ "protocols": { "thrift": {} } })).unwrap_err();
    assert!(error.to_string().contains("thrift"), "{error}");
}

#[test]
fn collector_keys_spanpipe_lacks_are_refused_by_name() {
    let config = parse(serde_json::json!({ "protocols": {
        "grpc": { "auth": { "authenticator": "basic" }, "write_buffer_size": 1024,
                  "keepalive": { "enforcement_policy": { "min_time": "10s" } } },
        "http": { "auth": { "authenticator": "basic" }, "metrics_url_path": "/m", "compression_algorithms": ["gzip", "snappy"] }
    }}));
    let errors = config.validate();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "protocols.grpc.write_buffer_size",
            "protocols.grpc.auth",
            "protocols.grpc.keepalive.enforcement_policy",
            "protocols.http.compression_algorithms[1]",
            "protocols.http.auth",
            "protocols.http.metrics_url_path",
        ]
    );
    assert!(errors[1].message.contains("not supported by spanpipe"), "{}", errors[1].message);
    assert!(errors[3].message.contains("`snappy`"), "{}", errors[3].message);
}

#[test]
fn tls_blocks_read_the_collectors_keys_and_refuse_what_cannot_work() {
    let config = parse(serde_json::json!({ "protocols": {
        "grpc": { "tls": { "cert_file": "server.pem", "key_file": "server-key.pem", "client_ca_file": "clients.pem",
                           "min_version": "1.3", "reload_interval": "1h", "ca_file": "ca.pem" } },
        "http": { "tls": { "cert_pem": "-----BEGIN CERTIFICATE-----", "key_file": "key.pem", "min_version": "1.1",
                           "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
                           "curve_preferences": ["P256", "X25519"] } }
    }}));
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let tls = config.protocols.grpc.as_ref().unwrap().tls.as_ref().unwrap();
    assert_eq!(
        (tls.client_ca_file.as_str(), tls.reload_interval.unwrap().0),
        ("clients.pem", Duration::from_secs(3600))
    );
    assert_eq!(format!("{:?}", config.protocols.http.as_ref().unwrap().tls.as_ref().unwrap().cert_pem), "[REDACTED]");

    let config = parse(serde_json::json!({ "protocols": {
        "grpc": { "tls": null },
        "http": { "tls": { "cert_file": "a.pem", "cert_pem": "x", "min_version": "1.3", "max_version": "1.2",
                           "cipher_suites": ["TLS_RSA_WITH_AES_128_CBC_SHA"], "curve_preferences": ["P521"],
                           "client_ca_file_reload": true, "tpm": { "enabled": true } } }
    }}));
    let errors = config.validate();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "protocols.grpc.tls.cert_file",
            "protocols.http.tls.cert_pem",
            "protocols.http.tls.key_file",
            "protocols.http.tls.min_version",
            "protocols.http.tls.cipher_suites[0]",
            "protocols.http.tls.tpm",
            "protocols.http.tls.client_ca_file_reload",
        ]
    );
    assert!(errors[0].message.contains("needs a certificate and its key"), "{}", errors[0].message);
    assert!(errors[3].message.contains("above `max_version"), "{}", errors[3].message);
    assert!(errors[4].message.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), "{}", errors[4].message);

    let old_versions_only = parse(serde_json::json!({ "protocols": { "grpc": { "tls": {
        "cert_file": "a.pem", "key_file": "b.pem", "max_version": "1.1", "curve_preferences": ["P521"] } } } }));
    let errors = old_versions_only.validate();
    assert_eq!(
        errors.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["protocols.grpc.tls.max_version", "protocols.grpc.tls.curve_preferences[0]"]
    );
    assert!(errors[0].message.contains("1.2 and 1.3"), "{}", errors[0].message);
}

#[test]
fn impossible_values_are_refused_with_their_path() {
    let config = parse(serde_json::json!({ "protocols": {
        "grpc": { "endpoint": "collector.example:4317", "transport": "unix", "max_recv_msg_size_mib": 5000 },
        "http": { "endpoint": "localhost:http", "max_request_body_size": 0, "idle_timeout": "1s", "keepalive": { "enabled": true } }
    }}));
    assert_eq!(
        error_paths(&config),
        [
            "protocols.grpc.endpoint",
            "protocols.grpc.transport",
            "protocols.grpc.max_recv_msg_size_mib",
            "protocols.http.endpoint",
            "protocols.http.max_request_body_size",
            "protocols.http.idle_timeout",
        ]
    );
}

#[test]
fn both_protocols_on_one_port_is_refused() {
    let config = parse(serde_json::json!({ "protocols": {
        "grpc": { "endpoint": "127.0.0.1:5000" }, "http": { "endpoint": "127.0.0.1:5000" }
    }}));
    assert_eq!(error_paths(&config), ["protocols.http.endpoint"]);
}

#[test]
fn transport_must_match_the_address_family() {
    let config =
        parse(serde_json::json!({ "protocols": { "grpc": { "endpoint": "127.0.0.1:4317", "transport": "tcp6" } } }));
    assert_eq!(error_paths(&config), ["protocols.grpc.transport"]);
    let config =
        parse(serde_json::json!({ "protocols": { "grpc": { "endpoint": "[::1]:4317", "transport": "tcp6" } } }));
    assert!(config.validate().is_empty());
}

#[test]
fn the_json_schema_describes_every_protocol_key() {
    let schema = serde_json::to_value(schemars::schema_for!(OtlpReceiverConfig)).unwrap();
    let text = schema.to_string();
    for key in [
        "max_recv_msg_size_mib",
        "traces_url_path",
        "max_request_body_size",
        "read_header_timeout",
        "keepalive",
        "client_ca_file",
        "cert_file",
        "min_version",
    ] {
        assert!(text.contains(key), "schema lacks {key}");
    }
}

#[test]
fn the_collectors_cors_section_loads_and_its_mistakes_are_named() {
    let config = parse(serde_json::json!({ "protocols": { "http": { "cors": {
        "allowed_origins": ["https://foo.bar.com", "https://*.test.com"],
        "allowed_headers": ["Example-Header"],
        "max_age": 7200
    }}}}));
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    let cors = config.protocols.http.as_ref().and_then(|http| http.cors.as_ref()).expect("cors is kept");
    assert_eq!(cors.allowed_origins, ["https://foo.bar.com", "https://*.test.com"]);
    assert_eq!(cors.max_age, 7200);
    assert!(cors.policy().is_some());
    // `cors:` left empty or null is off, as in the Collector.
    for off in [serde_json::Value::Null, serde_json::json!({})] {
        let config = parse(serde_json::json!({ "protocols": { "http": { "cors": off } } }));
        assert!(config.validate().is_empty());
        let http = config.protocols.http.expect("http is served");
        assert!(http.cors.and_then(|cors| cors.policy()).is_none());
    }
    let mistaken = parse(serde_json::json!({ "protocols": { "http": { "cors": {
        "allowed_origins": ["https://*.*.test.com"], "allowed_headers": ["not a header"]
    }}}}));
    assert_eq!(
        error_paths(&mistaken),
        ["protocols.http.cors.allowed_origins[0]", "protocols.http.cors.allowed_headers[0]"]
    );
    let unknown = serde_json::from_value::<OtlpReceiverConfig>(serde_json::json!({ "protocols": { "http": {
        "cors": { "allowed_origin": ["https://foo.bar.com"] }
    }}}));
    assert!(unknown.unwrap_err().to_string().contains("unknown field `allowed_origin`"));
}

#[test]
fn response_headers_load_as_a_map_and_headers_that_frame_the_message_are_refused() {
    let config = parse(serde_json::json!({ "protocols": { "http": {
        "response_headers": { "Strict-Transport-Security": "max-age=63072000", "X-Frame-Options": "DENY" }
    }}}));
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    assert_eq!(config.protocols.http.as_ref().map(|http| http.response_headers.len()), Some(2));
    let empty = parse(serde_json::json!({ "protocols": { "http": { "response_headers": null } } }));
    assert!(empty.validate().is_empty());
    assert!(empty.protocols.http.expect("http is served").response_headers.is_empty(), "`response_headers:` is none");
    let mistaken = parse(serde_json::json!({ "protocols": { "http": { "response_headers": {
        "Content-Length": "0", "Transfer-Encoding": "chunked", "bad name": "x", "X-Ok": "line\nbreak"
    }}}}));
    assert_eq!(
        error_paths(&mistaken),
        [
            "protocols.http.response_headers.X-Ok",
            "protocols.http.response_headers.bad name",
            "protocols.http.response_headers.Content-Length",
            "protocols.http.response_headers.Transfer-Encoding",
        ]
    );
}
