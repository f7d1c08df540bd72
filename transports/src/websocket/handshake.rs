//! The HTTP/1.1 side of a WebSocket connection: the upgrade request, answered 101 or with the
//! HTTP error that says why not, on hyper's HTTP/1 server.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;

use crate::cors::AllowedOrigins;
use crate::otlp::connection::{Activity, GracefulConnection, MonitoredIo};
use crate::otlp::{ReceiverEvent, ReceiverStats};

/// Why an upgrade request was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Another path: 404.
    NotFound,
    /// Not a GET: 405.
    MethodNotAllowed,
    /// Not a WebSocket upgrade, or not version 13: 426.
    UpgradeRequired(&'static str),
    /// A malformed `Sec-WebSocket-Key`: 400.
    BadRequest(&'static str),
    /// A browser page from an origin `allowed_origins` does not list: 403.
    OriginNotAllowed(String),
}

impl Rejection {
    fn event(&self) -> ReceiverEvent {
        match self {
            Self::NotFound => ReceiverEvent::NotFound,
            Self::MethodNotAllowed => ReceiverEvent::MethodNotAllowed,
            Self::UpgradeRequired(_) | Self::BadRequest(_) => ReceiverEvent::Malformed,
            Self::OriginNotAllowed(_) => ReceiverEvent::Forbidden,
        }
    }

    fn response(&self, path: &str) -> Response<Full<Bytes>> {
        let (status, text) = match self {
            Self::NotFound => {
                (StatusCode::NOT_FOUND, format!("404 page not found: WebSocket connections are accepted at {path}"))
            }
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed, use GET".to_owned()),
            Self::UpgradeRequired(why) => {
                (StatusCode::UPGRADE_REQUIRED, format!("426 WebSocket upgrade required: {why}"))
            }
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, format!("400 bad WebSocket handshake: {why}")),
            Self::OriginNotAllowed(origin) => (
                StatusCode::FORBIDDEN,
                format!("403 pages from `{origin}` may not connect: it is not in allowed_origins"),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        match self {
            Self::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::UpgradeRequired(_) => {
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            Self::NotFound | Self::BadRequest(_) | Self::OriginNotAllowed(_) => {}
        }
        response
    }
}

/// Whether the comma-separated header `name` lists `token` (case-insensitively).
fn lists_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// What upgrade requests a listener accepts.
#[derive(Debug)]
pub(crate) struct Upgrades {
    /// The path served.
    pub(crate) path: String,
    /// The web origins whose pages may connect; `None` for any. A request without `Origin` (a
    /// client that is not a browser) is always accepted.
    pub(crate) origins: Option<AllowedOrigins>,
}

/// The 101 answering a valid upgrade request, or why there is none (RFC 6455 §4.2, and §10.2 for
/// the origin).
pub(crate) fn answer<B>(request: &Request<B>, upgrades: &Upgrades) -> Result<Response<Full<Bytes>>, Rejection> {
    if request.uri().path() != upgrades.path {
        return Err(Rejection::NotFound);
    }
    if request.method() != Method::GET {
        return Err(Rejection::MethodNotAllowed);
    }
    let headers = request.headers();
    if request.version() < Version::HTTP_11
        || !lists_token(headers, header::CONNECTION, "upgrade")
        || !lists_token(headers, header::UPGRADE, "websocket")
    {
        return Err(Rejection::UpgradeRequired("send `Connection: Upgrade` and `Upgrade: websocket` over HTTP/1.1"));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
        return Err(Rejection::UpgradeRequired("only `Sec-WebSocket-Version: 13` is supported"));
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).map(HeaderValue::as_bytes).unwrap_or_default();
    let decodes_to_16_bytes =
        base64::engine::general_purpose::STANDARD.decode(key).is_ok_and(|nonce| nonce.len() == 16);
    if !decodes_to_16_bytes {
        return Err(Rejection::BadRequest("`Sec-WebSocket-Key` must be 16 bytes in base64"));
    }
    if let (Some(origins), Some(origin)) = (&upgrades.origins, headers.get(header::ORIGIN)) {
        if !origins.allows(origin) {
            return Err(Rejection::OriginNotAllowed(String::from_utf8_lossy(origin.as_bytes()).into_owned()));
        }
    }
    let accept = HeaderValue::from_str(&derive_accept_key(key)).map_err(|_| Rejection::BadRequest("unusable key"))?;
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let response_headers = response.headers_mut();
    response_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response_headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    response_headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(response)
}

/// hyper's service for the one request of a handshake connection.
pub(crate) struct HandshakeService {
    upgrades: Rc<Upgrades>,
    stats: Rc<ReceiverStats>,
    activity: Rc<Activity>,
    accepted: Rc<Cell<bool>>,
}

impl HandshakeService {
    pub(crate) fn new(upgrades: Rc<Upgrades>, stats: Rc<ReceiverStats>, activity: Rc<Activity>) -> Self {
        Self { upgrades, stats, activity, accepted: Rc::default() }
    }

    /// Set once the request has been answered 101.
    pub(crate) fn accepted_flag(&self) -> Rc<Cell<bool>> {
        Rc::clone(&self.accepted)
    }
}

impl hyper::service::Service<Request<Incoming>> for HandshakeService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // The request is complete (an upgrade has no body): the header timeout stops here.
        let (_, _in_flight) = self.activity.request_started();
        let response = match answer(&request, &self.upgrades) {
            Ok(response) => {
                self.accepted.set(true);
                response
            }
            Err(rejection) => {
                self.stats.record(rejection.event());
                rejection.response(&self.upgrades.path)
            }
        };
        std::future::ready(Ok(response))
    }
}

type Connection = http1::Connection<MonitoredIo, HandshakeService>;

/// A handshake connection driven until hyper is done with it, without shutting the socket
/// down, so that it can be taken back for the WebSocket session. (hyper's upgrade API would hand
/// it over by itself, but requires a `Send` connection.)
pub(crate) struct UpgradeConnection {
    connection: Option<Connection>,
    finished: Option<http1::Parts<MonitoredIo, HandshakeService>>,
}

impl UpgradeConnection {
    pub(crate) fn new(connection: Connection) -> Self {
        Self { connection: Some(connection), finished: None }
    }

    /// The socket and the bytes hyper read past the request, when hyper finished cleanly.
    pub(crate) fn into_parts(self) -> Option<http1::Parts<MonitoredIo, HandshakeService>> {
        self.finished
    }
}

impl Future for UpgradeConnection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(connection) = this.connection.as_mut() else {
            return Poll::Ready(());
        };
        let result = std::task::ready!(connection.poll_without_shutdown(cx));
        let connection = this.connection.take();
        if let Err(error) = result {
            tracing::debug!(%error, "WebSocket handshake failed");
        } else {
            this.finished = connection.map(Connection::into_parts);
        }
        Poll::Ready(())
    }
}

impl GracefulConnection for &mut UpgradeConnection {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        if let Some(connection) = self.get_mut().connection.as_mut() {
            Pin::new(connection).graceful_shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(path: &str, version: &str, key: &str) -> http::request::Builder {
        Request::get(path)
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version)
            .header("sec-websocket-key", key)
    }

    fn upgrade_request(path: &str) -> http::request::Builder {
        request_with(path, "13", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    fn any_origin() -> Upgrades {
        Upgrades { path: "/ws".to_owned(), origins: None }
    }

    #[test]
    fn a_valid_upgrade_is_answered_101_with_the_rfc_accept_key() {
        let response = answer(&upgrade_request("/ws").body(()).unwrap(), &any_origin()).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        // RFC 6455 §1.3's worked example.
        assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn other_requests_get_the_http_error_that_says_why() {
        let rejected = |request: Request<()>| answer(&request, &any_origin()).unwrap_err();
        assert_eq!(rejected(upgrade_request("/other").body(()).unwrap()), Rejection::NotFound);
        assert_eq!(rejected(upgrade_request("/ws").method("POST").body(()).unwrap()), Rejection::MethodNotAllowed);
        assert!(matches!(rejected(Request::get("/ws").body(()).unwrap()), Rejection::UpgradeRequired(_)));
        let old_version = request_with("/ws", "8", "dGhlIHNhbXBsZSBub25jZQ==").body(()).unwrap();
        assert!(matches!(rejected(old_version), Rejection::UpgradeRequired(_)));
        let short_key = request_with("/ws", "13", "c2hvcnQ=").body(()).unwrap();
        assert!(matches!(rejected(short_key), Rejection::BadRequest(_)));
        let response = Rejection::UpgradeRequired("x").response("/ws");
        assert_eq!(
            (response.status(), &response.headers()["upgrade"]),
            (StatusCode::UPGRADE_REQUIRED, &HeaderValue::from_static("websocket"))
        );
    }

    #[test]
    fn with_allowed_origins_only_pages_from_them_and_clients_without_origin_connect() {
        let upgrades = Upgrades {
            path: "/ws".to_owned(),
            origins: Some(AllowedOrigins::new(&["https://*.example.com".to_owned()])),
        };
        let from = |origin: &str| answer(&upgrade_request("/ws").header("origin", origin).body(()).unwrap(), &upgrades);
        assert_eq!(from("https://app.example.com").unwrap().status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(from("HTTPS://APP.EXAMPLE.COM").unwrap().status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            from("https://evil.example").unwrap_err(),
            Rejection::OriginNotAllowed("https://evil.example".into())
        );
        assert_eq!(from("null").unwrap_err(), Rejection::OriginNotAllowed("null".into()));
        let agent = answer(&upgrade_request("/ws").body(()).unwrap(), &upgrades).unwrap();
        assert_eq!(agent.status(), StatusCode::SWITCHING_PROTOCOLS, "no Origin: not a browser");
        let response = Rejection::OriginNotAllowed("https://evil.example".into()).response("/ws");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
