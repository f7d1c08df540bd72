//! Sending requests: OTLP/gRPC and OTLP/HTTP over hyper's client, on tokio, optionally over TLS.
//!
//! Why tokio and hyper here when spanpipe's data plane runs on glommio: spangen is a client tool,
//! and tokio's current-thread runtime gives one core's worth of timers and sockets with the least
//! code. It keeps spangen independent of the runtime adapter it is used to test.
//!
//! gRPC multiplexes: each connection is an HTTP/2 connection shared by its `--in-flight` request
//! slots. HTTP/1.1 cannot multiplex (and hyper does not pipeline), so there every slot has its own
//! connection: `--connections × --in-flight` sockets.

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
use spanpipe_transports::grpc_status::{ExportTraceServiceResponse, RpcStatus};
use tokio::net::TcpStream;

/// The wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// OTLP/gRPC: `TraceService/Export` over HTTP/2.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`POST /v1/traces`, HTTP/1.1).
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    HttpJson,
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
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("protocol", &self.protocol)
            .field("compression", &self.compression)
            .field("uri", &self.uri)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const HTTP_TRACES_PATH: &str = "/v1/traces";

impl Target {
    /// Resolves `endpoint` (`http://host:port`, `https://…`, or `host:port`) for `protocol`. TLS is
    /// on for `https` URLs and when `tls` is set; it trusts `ca_file` if given, else the system
    /// store. OTLP/HTTP posts to the URL's path, or `/v1/traces` when it has none.
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
        let secure = match parsed.scheme_str() {
            Some("http") => tls || ca_file.is_some(),
            Some("https") => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = parsed.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().unwrap_or(match (protocol, secure) {
            (Protocol::Grpc, _) => 4317,
            (_, false) => 4318,
            (_, true) => 443,
        });
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let path = match protocol {
            Protocol::Grpc => GRPC_EXPORT_PATH,
            Protocol::HttpProtobuf | Protocol::HttpJson => match parsed.path() {
                "" | "/" => HTTP_TRACES_PATH,
                path => path,
            },
        };
        let scheme = if secure { "https" } else { "http" };
        let uri: Uri = format!("{scheme}://{}:{port}{path}", authority.host()).parse().map_err(|_| bad("not a URL"))?;
        let tls = if secure { Some(tls_connector(protocol, &host, ca_file)?) } else { None };
        Ok(Self { protocol, compression, uri, authority: format!("{host}:{port}"), host, tls })
    }

    /// The protocol.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Opens a connection.
    ///
    /// # Errors
    /// [`ClientError::Connect`] or [`ClientError::Handshake`].
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let connect_error = |source| ClientError::Connect { address: self.authority.clone(), source };
        let stream =
            TcpStream::connect((self.host.as_str(), self.uri.port_u16().unwrap_or(80))).await.map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        match &self.tls {
            Some((connector, name)) => {
                let stream = connector.connect(name.clone(), stream).await.map_err(connect_error)?;
                self.handshake(TokioIo::new(stream)).await
            }
            None => self.handshake(TokioIo::new(stream)).await,
        }
    }

    async fn handshake<T>(&self, io: TokioIo<T>) -> Result<Connection, ClientError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let handshake_error = |source| ClientError::Handshake { address: self.authority.clone(), source };
        if self.protocol == Protocol::Grpc {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(16 << 20)
                .handshake(io)
                .await
                .map_err(handshake_error)?;
            tokio::spawn(connection);
            Ok(Connection::Http2(sender))
        } else {
            let (sender, connection) = http1::handshake(io).await.map_err(handshake_error)?;
            tokio::spawn(connection);
            Ok(Connection::Http1(sender))
        }
    }

    /// Whether connections of this target multiplex requests.
    #[must_use]
    pub fn multiplexes(&self) -> bool {
        self.protocol == Protocol::Grpc
    }

    /// The request for one encoded export body.
    ///
    /// # Errors
    /// Only if compression fails.
    pub fn request(&self, body: &[u8]) -> std::io::Result<Request<Full<Bytes>>> {
        let compressed = self.compression.apply(body)?;
        let payload = compressed.as_deref().unwrap_or(body);
        let mut builder = Request::post(self.uri.clone());
        let body = match self.protocol {
            Protocol::Grpc => {
                builder = builder.header("content-type", "application/grpc").header("te", "trailers");
                if let Some(name) = self.compression.name() {
                    builder = builder.header("grpc-encoding", name);
                }
                let mut framed = BytesMut::with_capacity(payload.len() + 5);
                framed.put_u8(u8::from(compressed.is_some()));
                framed.put_u32(payload.len() as u32);
                framed.put_slice(payload);
                framed.freeze()
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let content_type =
                    if self.protocol == Protocol::HttpJson { "application/json" } else { "application/x-protobuf" };
                builder = builder.header("content-type", content_type).header("host", &self.authority);
                if let Some(name) = self.compression.name() {
                    builder = builder.header("content-encoding", name);
                }
                Bytes::copy_from_slice(payload)
            }
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
    config.alpn_protocols = vec![if protocol == Protocol::Grpc { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
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
}

impl Connection {
    /// A handle for another request slot on the same HTTP/2 connection; `None` for HTTP/1.1.
    #[must_use]
    pub fn share(&self) -> Option<Self> {
        match self {
            Self::Http1(_) => None,
            Self::Http2(sender) => Some(Self::Http2(sender.clone())),
        }
    }

    /// Sends a request and classifies the answer. `Err` means the connection is broken.
    ///
    /// # Errors
    /// The transport error; the caller reconnects.
    pub async fn send(&mut self, request: Request<Full<Bytes>>, protocol: Protocol) -> Result<Outcome, hyper::Error> {
        let response = match self {
            Self::Http1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Self::Http2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let (parts, body) = response.into_parts();
        let collected = body.collect().await?;
        let trailers = collected.trailers().cloned();
        let outcome = match protocol {
            Protocol::Grpc => grpc_outcome(parts.status, &parts.headers, trailers.as_ref()),
            Protocol::HttpProtobuf | Protocol::HttpJson => http_outcome(parts.status, &parts.headers),
        };
        Ok(match outcome {
            Outcome::Accepted { .. } => {
                Outcome::Accepted { rejected_spans: rejected_spans(protocol, &collected.to_bytes()) }
            }
            other => other,
        })
    }
}

/// The `partial_success.rejected_spans` of a successful answer's body (an
/// `ExportTraceServiceResponse`: length-prefixed for gRPC, protobuf or OTLP/JSON for HTTP). An
/// empty or unreadable body counts as no rejection: the status already said the request was
/// taken.
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
    }
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, all but `rejected_spans` of its spans (OTLP's `partial_success`).
    Accepted {
        /// Spans the collector rejected although it answered success.
        rejected_spans: u64,
    },
    /// Refused for now (HTTP 429/503, gRPC `RESOURCE_EXHAUSTED`/`UNAVAILABLE`): retry after the
    /// delay the server asked for, if it did.
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

fn http_outcome(status: StatusCode, headers: &HeaderMap) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Accepted { rejected_spans: 0 },
        code @ (429 | 503) => {
            let after = headers
                .get("retry-after")
                .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Outcome::Retry { status: format!("http {code}"), after }
        }
        code => Outcome::Rejected { status: format!("http {code}") },
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
        0 => Outcome::Accepted { rejected_spans: 0 },
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
        assert_eq!(grpc.uri.to_string(), format!("http://127.0.0.1:4317{GRPC_EXPORT_PATH}"));
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
        assert_eq!(http_outcome(StatusCode::OK, &headers), Outcome::Accepted { rejected_spans: 0 });
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(
            http_outcome(StatusCode::TOO_MANY_REQUESTS, &headers),
            Outcome::Retry { status: "http 429".into(), after: Some(Duration::from_secs(2)) }
        );
        assert_eq!(http_outcome(StatusCode::BAD_REQUEST, &headers), Outcome::Rejected { status: "http 400".into() });
    }

    #[test]
    fn classifies_grpc_answers_from_trailers_or_headers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(
            grpc_outcome(StatusCode::OK, &HeaderMap::new(), Some(&trailers)),
            Outcome::Accepted { rejected_spans: 0 }
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
