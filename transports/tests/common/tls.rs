//! A TLS client for the listener tests (rustls through tokio-rustls, hyper on tokio), independent
//! of the server's TLS code, and the server-side settings for a test certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use spanpipe_testkit::tls::Issued;
use spanpipe_transports::tls::TlsServerConfig;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;

use super::{grpc_frame, request, runtime};

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

/// The server side of a TLS config: `server`'s certificate and key.
pub fn server_tls(server: &Issued) -> TlsServerConfig {
    TlsServerConfig {
        cert_file: server.cert_file.display().to_string(),
        key_file: server.key_file.display().to_string(),
        ..TlsServerConfig::default()
    }
}

/// A client trusting `ca`, presenting `certificate` if given, offering `alpn`.
pub fn client(ca: &Path, certificate: Option<&Issued>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match certificate {
        Some(issued) => {
            let chain = rustls::pki_types::CertificateDer::pem_file_iter(&issued.cert_file)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&issued.key_file).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

pub type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

pub async fn handshake(address: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

/// What one request over TLS came to.
#[derive(Debug)]
pub struct TlsReply {
    pub alpn: Option<Vec<u8>>,
    pub status: http::StatusCode,
    pub grpc_status: Option<String>,
}

/// One gRPC call to `grpc_path` (HTTP/2) or, without one, an OTLP/HTTP POST (HTTP/1.1 or
/// HTTP/2, as `http2` says) of `spans` spans over a new TLS connection. Errors are the
/// handshake's or the exchange's, as text.
pub fn tls_request(
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    http2: bool,
    grpc_path: Option<&'static str>,
    spans: usize,
) -> Result<TlsReply, String> {
    runtime().block_on(async move {
        let stream = handshake(address, config).await.map_err(|error| format!("handshake: {error}"))?;
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let (path, body, headers) = if let Some(path) = grpc_path {
            (path, grpc_frame(false, &request(spans)), vec![("content-type", "application/grpc"), ("te", "trailers")])
        } else {
            ("/v1/traces", request(spans), vec![PROTOBUF])
        };
        let mut builder =
            http::Request::builder().method("POST").uri(format!("https://localhost:{}{path}", address.port()));
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(Full::new(body)).unwrap();
        let response = if http2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            sender.send_request(request).await.map_err(|error| format!("request: {error}"))?
        } else {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            sender.send_request(request).await.map_err(|error| format!("request: {error}"))?
        };
        let status = response.status();
        let collected = response.into_body().collect().await.map_err(|error| format!("body: {error}"))?;
        let grpc_status = collected
            .trailers()
            .and_then(|trailers| trailers.get("grpc-status"))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(TlsReply { alpn, status, grpc_status })
    })
}
