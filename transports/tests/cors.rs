//! CORS on the HTTP receivers, against real listeners on loopback: preflights answered for the
//! paths a listener serves, answers marked for allowed origins (failures too, so a page can read
//! why), nothing marked for others, and no CORS at all without a `cors` section.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use spanpipe_codecs::{Codec, OtlpJson, OtlpProto};
use spanpipe_transports::cors::CorsConfig;
use spanpipe_transports::zipkin::{ZipkinCodecs, ZipkinReceiver, ZipkinReceiverConfig};
use spanpipe_transports::Protocol;

const PAGE: &str = "https://shop.example.com";
const JSON: (&str, &str) = ("content-type", "application/json");

fn cors(origins: &[&str]) -> CorsConfig {
    CorsConfig {
        allowed_origins: origins.iter().map(|origin| (*origin).to_owned()).collect(),
        allowed_headers: vec!["X-Tenant".to_owned()],
        max_age: 600,
    }
}

/// The OTLP receiver with `cors` on its HTTP protocol.
fn otlp_with(cors: Option<CorsConfig>, mode: SinkMode) -> TestServer {
    let mut config = test_config();
    config.protocols.http.as_mut().expect("test_config serves HTTP").cors = cors;
    TestServer::start_with(config, mode)
}

fn json_body(spans: usize) -> Bytes {
    let batch = spanpipe_core::SpanBatch::decode(request(spans)).expect("the test request is valid");
    OtlpJson.encode(&batch).expect("encodes")
}

fn preflight<'a>(origin: &'a str, path: &'a str, headers: &'a str) -> Outgoing<'a> {
    let asked = vec![
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", headers),
    ];
    ("OPTIONS", path, asked, Bytes::new())
}

#[test]
fn a_browser_preflight_then_post_from_an_allowed_origin_is_answered_with_permission() {
    let server = otlp_with(Some(cors(&["https://*.example.com"])), SinkMode::Accept);
    let replies = http1_keepalive(
        server.http,
        vec![
            preflight(PAGE, "/v1/traces", "content-type,x-tenant"),
            ("POST", "/v1/traces", vec![("origin", PAGE), JSON, ("x-tenant", "t1")], json_body(3)),
        ],
    );
    let (answer, post) = (&replies[0], &replies[1]);
    assert_eq!(answer.status, 204, "{answer:?}");
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("access-control-allow-origin"), Some(PAGE));
    assert_eq!(answer.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(answer.header("access-control-allow-headers"), Some("content-type,x-tenant"));
    assert_eq!(answer.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(answer.header("access-control-max-age"), Some("600"));
    assert_eq!(post.status, 200, "{post:?}");
    assert_eq!(post.header("access-control-allow-origin"), Some(PAGE));
    assert_eq!(post.header("access-control-expose-headers"), Some("Retry-After"));
    assert_eq!(post.header("vary"), Some("Origin"));
    assert_eq!(post.body, "{}");
    assert_eq!(server.spans_received(), 3, "the preflight delivers nothing, the POST its spans");
    let (_, http) = server.finish();
    assert_eq!(http.requests_accepted, 1, "a preflight is not counted as a request: {http:?}");
}

#[test]
fn over_h2c_preflight_and_post_are_answered_alike() {
    let server = otlp_with(Some(cors(&[PAGE])), SinkMode::Accept);
    let preflight_reply = http2(server.http, vec![preflight(PAGE, "/v1/traces", "content-type")]).pop().unwrap();
    assert_eq!(preflight_reply.status, 204);
    assert_eq!(preflight_reply.header("access-control-allow-origin"), Some(PAGE));
    let post =
        http2(server.http, vec![("POST", "/v1/traces", vec![("origin", PAGE), JSON], json_body(2))]).pop().unwrap();
    assert_eq!((post.status.as_u16(), post.header("access-control-allow-origin")), (200, Some(PAGE)));
    assert_eq!(server.spans_received(), 2);
}

#[test]
fn failures_carry_the_permission_so_a_page_can_read_them() {
    let server = otlp_with(Some(cors(&[PAGE])), SinkMode::Full);
    let full = http1(server.http, "POST", "/v1/traces", &[("origin", PAGE), JSON], json_body(2));
    assert_eq!(full.status, 429, "{full:?}");
    assert_eq!(full.header("access-control-allow-origin"), Some(PAGE));
    assert_eq!(full.header("retry-after"), Some("3"));
    assert_eq!(full.header("access-control-expose-headers"), Some("Retry-After"), "so the page can read it");
    drop(server);
    let server = otlp_with(Some(cors(&[PAGE])), SinkMode::Accept);
    let malformed =
        http1(server.http, "POST", "/v1/traces", &[("origin", PAGE), JSON], Bytes::from_static(b"{\"resou"));
    assert_eq!(malformed.status, 400, "{malformed:?}");
    assert_eq!(malformed.header("access-control-allow-origin"), Some(PAGE));
    let wrong_type =
        http1(server.http, "POST", "/v1/traces", &[("origin", PAGE), ("content-type", "text/plain")], json_body(1));
    assert_eq!(wrong_type.status, 415);
    assert_eq!(wrong_type.header("access-control-allow-origin"), Some(PAGE));
}

#[test]
fn other_origins_methods_and_headers_get_no_permission_but_their_posts_are_still_served() {
    let server = otlp_with(Some(cors(&[PAGE])), SinkMode::Accept);
    let replies = http1_keepalive(
        server.http,
        vec![
            preflight("https://evil.example", "/v1/traces", "content-type"),
            preflight(PAGE, "/v1/traces", "content-type,authorization"),
            ("OPTIONS", "/v1/traces", vec![("origin", PAGE), ("access-control-request-method", "PUT")], Bytes::new()),
            ("POST", "/v1/traces", vec![("origin", "https://evil.example"), JSON], json_body(1)),
            ("POST", "/v1/traces", vec![JSON], json_body(1)),
        ],
    );
    for refused in &replies[..3] {
        assert_eq!(refused.status, 204, "{refused:?}");
        assert_eq!(refused.header("access-control-allow-origin"), None, "{refused:?}");
        assert!(refused.header("vary").is_some_and(|vary| vary.starts_with("Origin")), "{refused:?}");
    }
    for served in &replies[3..] {
        assert_eq!(served.status, 200, "CORS binds browsers, not the server: {served:?}");
        assert_eq!(served.header("access-control-allow-origin"), None, "{served:?}");
        assert_eq!(served.header("vary"), Some("Origin"), "{served:?}");
    }
    assert_eq!(server.spans_received(), 2);
    // A preflight for a path the listener does not serve is answered as any request there.
    let elsewhere = http1(
        server.http,
        "OPTIONS",
        "/v1/logs",
        &[("origin", PAGE), ("access-control-request-method", "POST")],
        Bytes::new(),
    );
    assert_eq!(elsewhere.status, 404, "{elsewhere:?}");
}

#[test]
fn without_a_cors_section_nothing_changes() {
    for section in [
        None,
        Some(CorsConfig::default()),
        Some(CorsConfig { allowed_headers: vec!["X-Tenant".into()], ..CorsConfig::default() }),
    ] {
        let server = otlp_with(section.clone(), SinkMode::Accept);
        let options = http1(
            server.http,
            "OPTIONS",
            "/v1/traces",
            &[("origin", PAGE), ("access-control-request-method", "POST")],
            Bytes::new(),
        );
        assert_eq!(options.status, 405, "{section:?}: {options:?}");
        let post = http1(server.http, "POST", "/v1/traces", &[("origin", PAGE), JSON], json_body(1));
        assert_eq!(post.status, 200);
        assert_eq!(post.header("access-control-allow-origin"), None, "{section:?}");
        assert_eq!(post.header("vary"), None, "{section:?}");
    }
}

#[test]
fn the_zipkin_receiver_takes_the_same_section() {
    let mut config = ZipkinReceiverConfig::default();
    config.http.endpoint = "127.0.0.1:0".into();
    config.http.cors = Some(cors(&["*"]));
    let codecs = ZipkinCodecs {
        v2_json: Arc::new(OtlpJson) as Arc<dyn Codec>,
        v2_proto: Arc::new(OtlpProto),
        v1_json: Arc::new(OtlpJson),
    };
    let server =
        TestReceiver::start(Box::new(move |sink| ZipkinReceiver::bind(&config, sink, &codecs)), SinkMode::Accept);
    let address = server.address(Protocol::Zipkin);
    let replies = http1_keepalive(
        address,
        vec![
            preflight(PAGE, "/api/v2/spans", "content-type"),
            ("POST", "/api/v2/spans", vec![("origin", PAGE), JSON], json_body(2)),
        ],
    );
    assert_eq!(replies[0].status, 204, "{:?}", replies[0]);
    assert_eq!(replies[0].header("access-control-allow-origin"), Some("*"), "a plain `*` is answered `*`");
    assert_eq!(replies[1].status, 202, "{:?}", replies[1]);
    assert_eq!(replies[1].header("access-control-allow-origin"), Some("*"));
    assert_eq!(server.spans_received(), 2);
}

#[test]
fn response_headers_reach_preflights_but_do_not_replace_the_permission() {
    let mut config = test_config();
    let http = config.protocols.http.as_mut().expect("test_config serves HTTP");
    http.cors = Some(cors(&[PAGE]));
    http.response_headers = [("X-Frame-Options", "DENY"), ("Access-Control-Allow-Origin", "https://other.example")]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let server = TestServer::start_with(config, SinkMode::Accept);
    let replies = http1_keepalive(
        server.http,
        vec![
            preflight(PAGE, "/v1/traces", "content-type"),
            ("POST", "/v1/traces", vec![("origin", PAGE), JSON], json_body(1)),
        ],
    );
    for reply in &replies {
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{reply:?}");
        assert_eq!(reply.header("access-control-allow-origin"), Some(PAGE), "CORS's own answer stands: {reply:?}");
    }
}
