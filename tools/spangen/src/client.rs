//! Sending requests: OTLP/gRPC and every HTTP protocol over hyper's client, Jaeger's UDP
//! datagrams over a tokio socket, and OTLP over WebSocket through tokio-tungstenite
//! ([`crate::websocket`]), all on tokio, optionally over TLS.
//!
//! Why tokio and hyper here when spanpipe's data plane runs on glommio: spangen is a client tool,
//! and tokio's current-thread runtime gives one core's worth of timers and sockets with the least
//! code. It keeps spangen independent of the runtime adapter it is used to test.
//!
//! gRPC multiplexes: each connection is an HTTP/2 connection shared by its `--in-flight` request
//! slots. HTTP/1.1 cannot multiplex (and hyper does not pipeline), so there every slot has its own
//! connection: `--connections × --in-flight` sockets. A WebSocket connection pipelines (messages go
//! out back to back, acknowledgements come back in order), and a UDP socket needs no answer, so
//! both are shared by their slots like an HTTP/2 connection.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use spanpipe_transports::grpc_status::{ExportTraceServiceResponse, ProtoAny, RpcStatus};
use tokio::net::{TcpStream, UdpSocket};

use crate::websocket::WebSocketLink;
use crate::wire::Wire;

/// The wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// OTLP/gRPC: `TraceService/Export` over HTTP/2 (default endpoint 127.0.0.1:4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`POST /v1/traces`, HTTP/1.1; default 127.0.0.1:4318).
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    HttpJson,
    /// OTLP/HTTP with MessagePack bodies (`application/msgpack`).
    HttpMsgpack,
    /// Zipkin v2 JSON (`POST /api/v2/spans`; default 127.0.0.1:9411).
    ZipkinJson,
    /// Zipkin v2 protobuf (`POST /api/v2/spans`, `application/x-protobuf`).
    ZipkinProto,
    /// Jaeger agent, compact Thrift over UDP (default 127.0.0.1:6831). No acknowledgement: a sent
    /// datagram counts as acknowledged.
    JaegerCompact,
    /// Jaeger agent, binary Thrift over UDP (default 127.0.0.1:6832). As jaeger-compact.
    JaegerBinary,
    /// Jaeger collector, binary Thrift `Batch` per process (`POST /api/traces`; default
    /// 127.0.0.1:14268).
    JaegerHttp,
    /// Jaeger collector gRPC: `CollectorService/PostSpans` with Jaeger's protobuf model, one
    /// request for all processes (default 127.0.0.1:14250).
    JaegerGrpc,
    /// OTLP over one long-lived WebSocket per connection (`ws://…/v1/traces/ws`; default
    /// 127.0.0.1:4319): binary messages (protobuf), or text (OTLP/JSON) with --encoding json.
    Websocket,
}

/// How the connection to the collector carries messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC over HTTP/2.
    Grpc,
    /// HTTP/1.1 POSTs.
    Http,
    /// UDP datagrams.
    Udp,
    /// WebSocket messages with acknowledgements.
    WebSocket,
}

/// The payload encoding of `websocket` messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Binary messages: 8-byte sequence number, then OTLP protobuf.
    Protobuf,
    /// Text messages: decimal sequence number, a line feed, then OTLP/JSON.
    Json,
}

impl Protocol {
    /// How the protocol's messages travel.
    #[must_use]
    pub fn transport(self) -> Transport {
        match self {
            Self::Grpc | Self::JaegerGrpc => Transport::Grpc,
            Self::JaegerCompact | Self::JaegerBinary => Transport::Udp,
            Self::Websocket => Transport::WebSocket,
            Self::HttpProtobuf
            | Self::HttpJson
            | Self::HttpMsgpack
            | Self::ZipkinJson
            | Self::ZipkinProto
            | Self::JaegerHttp => Transport::Http,
        }
    }

    /// How a request's spans are encoded; `encoding` matters for `websocket` only.
    #[must_use]
    pub fn wire(self, encoding: Encoding) -> Wire {
        match self {
            Self::Grpc | Self::HttpProtobuf => Wire::OtlpProtobuf,
            Self::HttpJson => Wire::OtlpJson,
            Self::HttpMsgpack => Wire::Msgpack,
            Self::ZipkinJson => Wire::ZipkinJson,
            Self::ZipkinProto => Wire::ZipkinProto,
            Self::JaegerCompact => Wire::JaegerCompact,
            Self::JaegerBinary => Wire::JaegerBinary,
            Self::JaegerHttp => Wire::JaegerHttp,
            Self::JaegerGrpc => Wire::JaegerProto,
            Self::Websocket => match encoding {
                Encoding::Protobuf => Wire::OtlpProtobuf,
                Encoding::Json => Wire::OtlpJson,
            },
        }
    }

    /// The endpoint used without `--endpoint`: the protocol's standard port on loopback.
    #[must_use]
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Self::Grpc => "127.0.0.1:4317",
            Self::HttpProtobuf | Self::HttpJson | Self::HttpMsgpack => "127.0.0.1:4318",
            Self::ZipkinJson | Self::ZipkinProto => "127.0.0.1:9411",
            Self::JaegerCompact => "127.0.0.1:6831",
            Self::JaegerBinary => "127.0.0.1:6832",
            Self::JaegerHttp => "127.0.0.1:14268",
            Self::JaegerGrpc => "127.0.0.1:14250",
            Self::Websocket => "127.0.0.1:4319",
        }
    }

    /// The URL path used when the endpoint has none (empty for UDP).
    fn default_path(self) -> &'static str {
        match self {
            Self::Grpc => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Self::HttpProtobuf | Self::HttpJson | Self::HttpMsgpack => "/v1/traces",
            Self::ZipkinJson | Self::ZipkinProto => "/api/v2/spans",
            Self::JaegerHttp => "/api/traces",
            Self::JaegerGrpc => "/jaeger.api_v2.CollectorService/PostSpans",
            Self::Websocket => "/v1/traces/ws",
            Self::JaegerCompact | Self::JaegerBinary => "",
        }
    }

    /// The `Content-Type` of HTTP bodies. UDP datagrams and WebSocket messages have no headers;
    /// their protocols share the protobuf arm only because the match must name them.
    fn content_type(self) -> &'static str {
        match self {
            Self::Grpc | Self::JaegerGrpc => "application/grpc",
            Self::HttpJson | Self::ZipkinJson => "application/json",
            Self::HttpMsgpack => "application/msgpack",
            Self::JaegerHttp => "application/x-thrift",
            Self::HttpProtobuf | Self::ZipkinProto | Self::JaegerCompact | Self::JaegerBinary | Self::Websocket => {
                "application/x-protobuf"
            }
        }
    }
}

/// Body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// Uncompressed bodies.
    None,
    /// gzip (level 1: the generator's CPU, not the ratio, is what limits a load test).
    Gzip,
    /// zstd (level 1, for the same reason).
    Zstd,
}

impl Compression {
    fn name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Gzip => Some("gzip"),
            Self::Zstd => Some("zstd"),
        }
    }

    /// Compresses `body`.
    ///
    /// # Errors
    /// Only if the compressor fails on an in-memory buffer.
    pub fn apply(self, body: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
        match self {
            Self::None => Ok(None),
            Self::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(body)?;
                encoder.finish().map(Some)
            }
            Self::Zstd => zstd::bulk::compress(body, 1).map(Some),
        }
    }
}

/// Why a client could not be set up or a connection made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--endpoint` is not a usable URL.
    #[error("--endpoint `{endpoint}`: {problem}")]
    Endpoint {
        /// What was given.
        endpoint: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `--ca-file` could not be read.
    #[error("--ca-file {path}: {problem}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        problem: String,
    },
    /// No trusted root certificates at all.
    #[error("TLS: no root certificates (the system store is empty; pass --ca-file)")]
    NoRoots,
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Connecting failed.
    #[error("connecting to {address}: {source}")]
    Connect {
        /// host:port.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP handshake failed.
    #[error("HTTP handshake with {address}: {source}")]
    Handshake {
        /// host:port.
        address: String,
        /// The cause.
        #[source]
        source: hyper::Error,
    },
    /// The WebSocket handshake failed.
    #[error("WebSocket handshake with {address}: {source}")]
    WebSocketHandshake {
        /// host:port.
        address: String,
        /// The cause.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
}

/// Where and how to send.
#[derive(Clone)]
pub struct Target {
    protocol: Protocol,
    compression: Compression,
    uri: Uri,
    authority: String,
    host: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    encoding: Encoding,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("protocol", &self.protocol)
            .field("compression", &self.compression)
            .field("uri", &self.uri)
            .field("tls", &self.tls.is_some())
            .field("encoding", &self.encoding)
            .finish()
    }
}

impl Target {
    /// Resolves `endpoint` (`http://host:port[/path]`, `https://…`, `ws://…`, `wss://…`, or
    /// `host:port`) for `protocol`. TLS is on for `https`/`wss` URLs and when `tls` is set; it
    /// trusts `ca_file` if given, else the system store. HTTP protocols and WebSocket use the
    /// URL's path, or the protocol's standard one when it has none; UDP takes `host:port` only.
    ///
    /// # Errors
    /// [`ClientError`] naming the flag to fix.
    pub fn new(
        protocol: Protocol,
        compression: Compression,
        endpoint: &str,
        tls: bool,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ClientError> {
        let bad = |problem: &str| ClientError::Endpoint { endpoint: endpoint.to_owned(), problem: problem.to_owned() };
        let with_scheme = if endpoint.contains("://") { endpoint.to_owned() } else { format!("http://{endpoint}") };
        let parsed: Uri = with_scheme.parse().map_err(|_| bad("not a URL"))?;
        let udp = protocol.transport() == Transport::Udp;
        let secure = match parsed.scheme_str() {
            Some("http" | "ws") => tls || ca_file.is_some(),
            Some("https" | "wss") => true,
            _ if udp => return Err(bad("UDP endpoints are `host:port`")),
            _ => return Err(bad("the scheme must be http, https, ws or wss")),
        };
        if udp && (secure || endpoint.contains("://")) {
            return Err(bad("UDP endpoints are `host:port`, without a scheme or TLS"));
        }
        let authority = parsed.authority().ok_or_else(|| bad("no host"))?;
        let default_port = protocol.default_endpoint().rsplit(':').next().and_then(|port| port.parse().ok());
        let port = authority
            .port_u16()
            .or(if secure && protocol.transport() != Transport::Grpc { Some(443) } else { default_port })
            .unwrap_or(80);
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let path = match (protocol.transport(), parsed.path()) {
            (Transport::Grpc | Transport::Udp, _) | (_, "" | "/") => protocol.default_path(),
            (_, path) => path,
        };
        let scheme = if secure { "https" } else { "http" };
        let uri: Uri = format!("{scheme}://{}:{port}{path}", authority.host()).parse().map_err(|_| bad("not a URL"))?;
        let tls = if secure { Some(tls_connector(protocol, &host, ca_file)?) } else { None };
        Ok(Self {
            protocol,
            compression,
            uri,
            authority: format!("{host}:{port}"),
            host,
            tls,
            encoding: Encoding::Protobuf,
        })
    }

    /// Sets the payload encoding of `websocket` messages (binary protobuf unless set).
    #[must_use]
    pub fn with_encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The protocol.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Opens a connection (for UDP, a socket connected to the endpoint).
    ///
    /// # Errors
    /// [`ClientError::Connect`], [`ClientError::Handshake`] or
    /// [`ClientError::WebSocketHandshake`].
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let connect_error = |source| ClientError::Connect { address: self.authority.clone(), source };
        let port = self.uri.port_u16().unwrap_or(80);
        if self.protocol.transport() == Transport::Udp {
            let address = tokio::net::lookup_host((self.host.as_str(), port))
                .await
                .map_err(connect_error)?
                .next()
                .ok_or_else(|| connect_error(std::io::Error::other("the host name has no address")))?;
            let local: std::net::SocketAddr =
                if address.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
            let socket = UdpSocket::bind(local).await.map_err(connect_error)?;
            socket.connect(address).await.map_err(connect_error)?;
            return Ok(Connection::Udp(Arc::new(socket)));
        }
        let stream = TcpStream::connect((self.host.as_str(), port)).await.map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        match &self.tls {
            Some((connector, name)) => {
                let stream = connector.connect(name.clone(), stream).await.map_err(connect_error)?;
                self.handshake(stream).await
            }
            None => self.handshake(stream).await,
        }
    }

    async fn handshake<T>(&self, io: T) -> Result<Connection, ClientError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let handshake_error = |source| ClientError::Handshake { address: self.authority.clone(), source };
        match self.protocol.transport() {
            Transport::Grpc => {
                let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                    .initial_stream_window_size(4 << 20)
                    .initial_connection_window_size(16 << 20)
                    .handshake(TokioIo::new(io))
                    .await
                    .map_err(handshake_error)?;
                tokio::spawn(connection);
                Ok(Connection::Http2(sender))
            }
            Transport::WebSocket => {
                let scheme = if self.tls.is_some() { "wss" } else { "ws" };
                let url = format!("{scheme}://{}{}", self.authority, self.uri.path());
                let text = self.encoding == Encoding::Json;
                let link = WebSocketLink::open(&url, io, text).await.map_err(|source| {
                    ClientError::WebSocketHandshake { address: self.authority.clone(), source: Box::new(source) }
                })?;
                Ok(Connection::WebSocket(link))
            }
            Transport::Http | Transport::Udp => {
                let (sender, connection) = http1::handshake(TokioIo::new(io)).await.map_err(handshake_error)?;
                tokio::spawn(connection);
                Ok(Connection::Http1(sender))
            }
        }
    }

    /// The HTTP request for one message: a gRPC-framed or plain HTTP body, compressed as asked.
    ///
    /// # Errors
    /// Only if compression fails.
    pub fn request(&self, body: &[u8]) -> std::io::Result<Request<Full<Bytes>>> {
        let compressed = self.compression.apply(body)?;
        let payload = compressed.as_deref().unwrap_or(body);
        let mut builder = Request::post(self.uri.clone()).header("content-type", self.protocol.content_type());
        let body = if self.protocol.transport() == Transport::Grpc {
            builder = builder.header("te", "trailers");
            if let Some(name) = self.compression.name() {
                builder = builder.header("grpc-encoding", name);
            }
            let mut framed = BytesMut::with_capacity(payload.len() + 5);
            framed.put_u8(u8::from(compressed.is_some()));
            framed.put_u32(payload.len() as u32);
            framed.put_slice(payload);
            framed.freeze()
        } else {
            builder = builder.header("host", &self.authority);
            if let Some(name) = self.compression.name() {
                builder = builder.header("content-encoding", name);
            }
            Bytes::copy_from_slice(payload)
        };
        builder.body(Full::new(body)).map_err(std::io::Error::other)
    }
}

fn tls_connector(
    protocol: Protocol,
    host: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_error = |problem: String| ClientError::CaFile { path: path.display().to_string(), problem };
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|error| ca_error(error.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| ca_error(error.to_string()))?;
            if certificates.is_empty() {
                return Err(ca_error("no PEM certificate in the file".into()));
            }
            for certificate in certificates {
                roots.add(certificate).map_err(|error| ca_error(error.to_string()))?;
            }
        }
        None => {
            for certificate in rustls_native_certs::load_native_certs().certs {
                // Unparseable system certificates are skipped, as every TLS client does.
                let _ = roots.add(certificate);
            }
        }
    }
    if roots.is_empty() {
        return Err(ClientError::NoRoots);
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols =
        vec![if protocol.transport() == Transport::Grpc { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    let name = ServerName::try_from(host.to_owned()).map_err(|_| ClientError::Endpoint {
        endpoint: host.to_owned(),
        problem: "not a valid TLS server name".into(),
    })?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

/// One open connection.
#[derive(Debug)]
pub enum Connection {
    /// HTTP/1.1: one request at a time.
    Http1(http1::SendRequest<Full<Bytes>>),
    /// HTTP/2: cloned by every slot that shares it.
    Http2(http2::SendRequest<Full<Bytes>>),
    /// A UDP socket connected to the endpoint, shared by the slots.
    Udp(Arc<UdpSocket>),
    /// A WebSocket, shared by the slots.
    WebSocket(WebSocketLink),
}

/// The connection broke (or, for WebSocket, was closed by the server); the caller reconnects.
#[derive(Debug, thiserror::Error)]
#[error("the connection broke: {0}")]
pub struct Broken(pub String);

impl Connection {
    /// A handle for another request slot on the same connection; `None` for HTTP/1.1.
    #[must_use]
    pub fn share(&self) -> Option<Self> {
        match self {
            Self::Http1(_) => None,
            Self::Http2(sender) => Some(Self::Http2(sender.clone())),
            Self::Udp(socket) => Some(Self::Udp(Arc::clone(socket))),
            Self::WebSocket(link) => Some(Self::WebSocket(link.clone())),
        }
    }

    /// Sends one message of `target`'s protocol and classifies the answer.
    ///
    /// # Errors
    /// [`Broken`] when the connection is unusable; the caller reconnects.
    pub async fn send(&mut self, target: &Target, message: &[u8]) -> Result<Outcome, Broken> {
        let broken = |error: hyper::Error| Broken(error.to_string());
        // Only a compressor failing on an in-memory buffer makes the request unbuildable.
        let compression_failed = || Outcome::Rejected { status: "compression error".into() };
        let response = match self {
            Self::Udp(socket) => return Ok(udp_outcome(socket.send(message).await, message.len())),
            Self::WebSocket(link) => return link.send(message).await,
            Self::Http1(sender) => {
                let Ok(request) = target.request(message) else { return Ok(compression_failed()) };
                sender.ready().await.map_err(broken)?;
                sender.send_request(request).await.map_err(broken)?
            }
            Self::Http2(sender) => {
                let Ok(request) = target.request(message) else { return Ok(compression_failed()) };
                sender.ready().await.map_err(broken)?;
                sender.send_request(request).await.map_err(broken)?
            }
        };
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.map_err(broken)?;
        let trailers = collected.trailers().cloned();
        let body = collected.to_bytes();
        let protocol = target.protocol();
        let outcome = match protocol {
            Protocol::Grpc | Protocol::JaegerGrpc => grpc_outcome(parts.status, &parts.headers, trailers.as_ref()),
            _ => http_outcome(protocol, parts.status, &parts.headers, &body),
        };
        Ok(match outcome {
            Outcome::Accepted { status, .. } => {
                Outcome::Accepted { rejected_spans: rejected_spans(protocol, &body), status }
            }
            other => other,
        })
    }
}

/// A datagram handed to the kernel counts as accepted: UDP has no answer. An error means it was
/// not sent (`ECONNREFUSED` reports that an earlier datagram met a closed port).
fn udp_outcome(sent: std::io::Result<usize>, len: usize) -> Outcome {
    match sent {
        Ok(written) if written == len => Outcome::Accepted { rejected_spans: 0, status: "udp sent" },
        Ok(_) => Outcome::Rejected { status: "udp datagram truncated".into() },
        Err(error) => Outcome::Rejected { status: format!("udp {}", error.kind()) },
    }
}
/// The `partial_success.rejected_spans` of a successful answer's body (an
/// `ExportTraceServiceResponse`: length-prefixed for gRPC, protobuf, OTLP/JSON or MessagePack
/// for OTLP/HTTP; Zipkin and Jaeger answers carry none). An empty or unreadable body counts as no
/// rejection: the status already said the request was taken.
fn rejected_spans(protocol: Protocol, body: &[u8]) -> u64 {
    let protobuf = |message: &[u8]| {
        ExportTraceServiceResponse::decode(message)
            .ok()
            .and_then(|response| response.partial_success)
            .map_or(0, |partial| u64::try_from(partial.rejected_spans).unwrap_or(0))
    };
    match protocol {
        // One uncompressed message behind gRPC's five-byte prefix (spangen asks for no response
        // compression).
        Protocol::Grpc => body.get(5..).filter(|_| body.first() == Some(&0)).map_or(0, protobuf),
        Protocol::HttpProtobuf => protobuf(body),
        Protocol::HttpJson => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|json| {
                // proto3 JSON writes int64 as a string; numbers are accepted too.
                let value = json.get("partialSuccess")?.get("rejectedSpans")?.clone();
                value.as_u64().or_else(|| value.as_str()?.parse().ok())
            })
            .unwrap_or(0),
        Protocol::HttpMsgpack => spanpipe_msgpack::ExportResponse::decode(body)
            .ok()
            .and_then(|response| response.partial_success)
            .map_or(0, |partial| u64::try_from(partial.rejected_spans).unwrap_or(0)),
        Protocol::ZipkinJson
        | Protocol::ZipkinProto
        | Protocol::JaegerCompact
        | Protocol::JaegerBinary
        | Protocol::JaegerHttp
        | Protocol::JaegerGrpc
        | Protocol::Websocket => 0,
    }
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, all but `rejected_spans` of its spans (OTLP's `partial_success`); for UDP,
    /// sent.
    Accepted {
        /// Spans the collector rejected although it answered success.
        rejected_spans: u64,
        /// The answer, as counted (`http 202`, `grpc OK`, `udp sent`, `websocket accepted`).
        status: &'static str,
    },
    /// Refused for now (HTTP 429/503, gRPC and WebSocket `RESOURCE_EXHAUSTED`/`UNAVAILABLE`,
    /// WebSocket close 1013): retry after the delay the server asked for, if it did.
    Retry {
        /// Status, as reported (`http 503`, `grpc UNAVAILABLE`).
        status: String,
        /// `Retry-After` or `RetryInfo`.
        after: Option<Duration>,
    },
    /// Refused for good.
    Rejected {
        /// Status, as reported.
        status: String,
    },
}

/// Classifies an HTTP answer. A MessagePack client reads an error body as a `google.rpc.Status`
/// in MessagePack: its code names the failure, its `RetryInfo` gives the delay when there is no
/// `Retry-After`.
fn http_outcome(protocol: Protocol, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let rpc_status = (protocol == Protocol::HttpMsgpack && !status.is_success())
        .then(|| spanpipe_msgpack::Status::decode(body).ok())
        .flatten()
        .map(|status| RpcStatus {
            code: status.code,
            message: status.message,
            details: status
                .details
                .into_iter()
                .map(|detail| ProtoAny { type_url: detail.type_url, value: detail.value })
                .collect(),
        });
    let described = |code: u16| match &rpc_status {
        Some(rpc) if rpc.code != 0 => {
            format!("http {code} {}", spanpipe_transports::grpc_status::code_name(rpc.code))
        }
        _ => format!("http {code}"),
    };
    match status.as_u16() {
        200 => Outcome::Accepted { rejected_spans: 0, status: "http 200" },
        202 => Outcome::Accepted { rejected_spans: 0, status: "http 202" },
        201 | 203..=299 => Outcome::Accepted { rejected_spans: 0, status: "http 2xx" },
        code @ (429 | 503) => {
            let after = headers
                .get("retry-after")
                .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .or_else(|| rpc_status.as_ref()?.retry_delay());
            Outcome::Retry { status: described(code), after }
        }
        code => Outcome::Rejected { status: described(code) },
    }
}

const GRPC_RESOURCE_EXHAUSTED: u32 = 8;
const GRPC_UNAVAILABLE: u32 = 14;

fn grpc_outcome(status: StatusCode, headers: &HeaderMap, trailers: Option<&HeaderMap>) -> Outcome {
    if !status.is_success() {
        return Outcome::Rejected { status: format!("http {}", status.as_u16()) };
    }
    // A "trailers-only" answer carries the status in the headers.
    let status_map = trailers.filter(|map| map.contains_key("grpc-status")).unwrap_or(headers);
    let Some(code) = status_map.get("grpc-status").and_then(|value| value.to_str().ok()?.parse::<u32>().ok()) else {
        return Outcome::Rejected { status: "grpc answer without grpc-status".into() };
    };
    let name = format!("grpc {}", spanpipe_transports::grpc_status::code_name(i32::try_from(code).unwrap_or(i32::MAX)));
    match code {
        0 => Outcome::Accepted { rejected_spans: 0, status: "grpc OK" },
        GRPC_RESOURCE_EXHAUSTED | GRPC_UNAVAILABLE => {
            let after = status_map
                .get("grpc-status-details-bin")
                .and_then(|value| decode_base64(value.as_bytes()))
                .and_then(|details| RpcStatus::decode(details.as_slice()).ok()?.retry_delay());
            Outcome::Retry { status: name, after }
        }
        _ => Outcome::Rejected { status: name },
    }
}

/// gRPC binary headers are base64, padded or not.
fn decode_base64(value: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rejected_spans_from_a_partial_success_in_every_encoding() {
        let response = ExportTraceServiceResponse {
            partial_success: Some(spanpipe_transports::grpc_status::ExportTracePartialSuccess {
                rejected_spans: 7,
                error_message: "dropped by a processor".into(),
            }),
        }
        .encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(response.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&response);
        assert_eq!(rejected_spans(Protocol::Grpc, &framed), 7);
        assert_eq!(rejected_spans(Protocol::HttpProtobuf, &response), 7);
        let json = br#"{"partialSuccess":{"rejectedSpans":"7","errorMessage":"dropped"}}"#;
        assert_eq!(rejected_spans(Protocol::HttpJson, json), 7);
        assert_eq!(rejected_spans(Protocol::HttpJson, br#"{"partialSuccess":{"rejectedSpans":3}}"#), 3);
        // A full success, an empty body and garbage all mean nothing was rejected.
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf, Protocol::HttpJson] {
            assert_eq!(rejected_spans(protocol, b""), 0);
            assert_eq!(rejected_spans(protocol, b"\xff\xff not a response"), 0);
        }
        assert_eq!(rejected_spans(Protocol::HttpJson, b"{}"), 0);
        assert_eq!(rejected_spans(Protocol::Grpc, &[0, 0, 0, 0, 0]), 0);
    }

    #[test]
    fn endpoints_get_default_ports_and_paths() {
        let grpc = Target::new(Protocol::Grpc, Compression::None, "127.0.0.1", false, None).unwrap();
        assert_eq!(grpc.uri.to_string(), format!("http://127.0.0.1:4317{}", Protocol::Grpc.default_path()));
        let expected = [
            (Protocol::HttpMsgpack, "http://127.0.0.1:4318/v1/traces"),
            (Protocol::ZipkinJson, "http://127.0.0.1:9411/api/v2/spans"),
            (Protocol::ZipkinProto, "http://127.0.0.1:9411/api/v2/spans"),
            (Protocol::JaegerHttp, "http://127.0.0.1:14268/api/traces"),
            (Protocol::JaegerGrpc, "http://127.0.0.1:14250/jaeger.api_v2.CollectorService/PostSpans"),
            (Protocol::Websocket, "http://127.0.0.1:4319/v1/traces/ws"),
        ];
        for (protocol, uri) in expected {
            let target = Target::new(protocol, Compression::None, "127.0.0.1", false, None).unwrap();
            assert_eq!(target.uri.to_string(), uri, "{protocol:?}");
        }
        let ws =
            Target::new(Protocol::Websocket, Compression::None, "ws://localhost:9/custom/ws", false, None).unwrap();
        assert_eq!((ws.uri.port_u16(), ws.uri.path()), (Some(9), "/custom/ws"));
        let udp = Target::new(Protocol::JaegerCompact, Compression::None, "127.0.0.1", false, None).unwrap();
        assert_eq!(udp.authority, "127.0.0.1:6831");
        for refused in ["http://127.0.0.1:6831", "udp://127.0.0.1:6831"] {
            assert!(Target::new(Protocol::JaegerBinary, Compression::None, refused, false, None).is_err(), "{refused}");
        }
        let http = Target::new(Protocol::HttpJson, Compression::None, "http://localhost:9000", false, None).unwrap();
        assert_eq!(http.uri.to_string(), "http://localhost:9000/v1/traces");
        let custom = Target::new(Protocol::HttpProtobuf, Compression::None, "localhost:1/custom", false, None).unwrap();
        assert_eq!(custom.uri.path(), "/custom");
    }

    #[test]
    fn refuses_unknown_schemes_and_missing_ca_files() {
        let error = Target::new(Protocol::Grpc, Compression::None, "ftp://host:1", false, None).unwrap_err();
        assert!(error.to_string().contains("--endpoint"), "{error}");
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        let error = Target::new(Protocol::Grpc, Compression::None, "host:1", true, Some(missing)).unwrap_err();
        assert!(matches!(error, ClientError::CaFile { .. }), "{error}");
    }

    #[test]
    fn classifies_http_answers() {
        let mut headers = HeaderMap::new();
        let ok = |status: &'static str| Outcome::Accepted { rejected_spans: 0, status };
        assert_eq!(http_outcome(Protocol::HttpProtobuf, StatusCode::OK, &headers, b""), ok("http 200"));
        assert_eq!(http_outcome(Protocol::ZipkinJson, StatusCode::ACCEPTED, &headers, b""), ok("http 202"));
        assert_eq!(http_outcome(Protocol::JaegerHttp, StatusCode::NO_CONTENT, &headers, b""), ok("http 2xx"));
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(
            http_outcome(Protocol::ZipkinProto, StatusCode::TOO_MANY_REQUESTS, &headers, b""),
            Outcome::Retry { status: "http 429".into(), after: Some(Duration::from_secs(2)) }
        );
        assert_eq!(
            http_outcome(Protocol::JaegerHttp, StatusCode::BAD_REQUEST, &headers, b""),
            Outcome::Rejected { status: "http 400".into() }
        );
    }

    #[test]
    fn reads_msgpack_answers() {
        let retry = spanpipe_transports::grpc_status::RetryInfo {
            retry_delay: Some(spanpipe_transports::grpc_status::ProtoDuration { seconds: 0, nanos: 300_000_000 }),
        };
        let status = spanpipe_msgpack::Status {
            code: 14,
            message: "the pipeline is full".into(),
            details: vec![spanpipe_msgpack::StatusDetail {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: retry.encode_to_vec(),
            }],
        };
        assert_eq!(
            http_outcome(Protocol::HttpMsgpack, StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), &status.encode()),
            Outcome::Retry { status: "http 503 UNAVAILABLE".into(), after: Some(Duration::from_millis(300)) }
        );
        let invalid = spanpipe_msgpack::Status { code: 3, message: "bad".into(), details: Vec::new() };
        assert_eq!(
            http_outcome(Protocol::HttpMsgpack, StatusCode::BAD_REQUEST, &HeaderMap::new(), &invalid.encode()),
            Outcome::Rejected { status: "http 400 INVALID_ARGUMENT".into() }
        );
        let partial = spanpipe_msgpack::ExportResponse {
            partial_success: Some(spanpipe_msgpack::PartialSuccess { rejected_spans: 4, error_message: "x".into() }),
        };
        assert_eq!(rejected_spans(Protocol::HttpMsgpack, &partial.encode()), 4);
        assert_eq!(rejected_spans(Protocol::HttpMsgpack, &spanpipe_msgpack::ExportResponse::default().encode()), 0);
        assert_eq!(rejected_spans(Protocol::HttpMsgpack, b""), 0);
    }

    #[test]
    fn udp_counts_a_whole_datagram_handed_to_the_kernel_as_sent() {
        assert_eq!(udp_outcome(Ok(10), 10), Outcome::Accepted { rejected_spans: 0, status: "udp sent" });
        assert!(matches!(udp_outcome(Ok(4), 10), Outcome::Rejected { .. }));
        let refused = udp_outcome(Err(std::io::ErrorKind::ConnectionRefused.into()), 10);
        assert_eq!(refused, Outcome::Rejected { status: "udp connection refused".into() });
    }

    #[test]
    fn classifies_grpc_answers_from_trailers_or_headers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(
            grpc_outcome(StatusCode::OK, &HeaderMap::new(), Some(&trailers)),
            Outcome::Accepted { rejected_spans: 0, status: "grpc OK" }
        );
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "14".parse().unwrap());
        assert_eq!(
            grpc_outcome(StatusCode::OK, &headers, None),
            Outcome::Retry { status: "grpc UNAVAILABLE".into(), after: None }
        );
        headers.insert("grpc-status", "3".parse().unwrap());
        assert_eq!(
            grpc_outcome(StatusCode::OK, &headers, None),
            Outcome::Rejected { status: "grpc INVALID_ARGUMENT".into() }
        );
    }

    #[test]
    fn compression_round_trips() {
        let body = b"spans spans spans spans".repeat(20);
        let gzip = Compression::Gzip.apply(&body).unwrap().unwrap();
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzip.as_slice()), &mut unzipped).unwrap();
        assert_eq!(unzipped, body);
        let zstd = Compression::Zstd.apply(&body).unwrap().unwrap();
        assert_eq!(zstd::bulk::decompress(&zstd, body.len()).unwrap(), body);
        assert_eq!(Compression::None.apply(&body).unwrap(), None);
    }
}
