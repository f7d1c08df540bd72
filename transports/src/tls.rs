//! TLS for the listeners and the clients: the OpenTelemetry Collector's `configtls` keys, and the
//! rustls configurations they become.
//!
//! [`TlsServerConfig`] is a receiver's `tls` block (the Collector's `configtls.ServerConfig`),
//! [`TlsClientConfig`] an exporter's (`configtls.ClientConfig`). Both are checked in two steps,
//! as every spanpipe config is: `validate()` is pure and finds what the text alone says is wrong
//! (a certificate without its key, an unknown version or cipher suite), and `load()` reads the
//! files and builds the `rustls` configuration, with a [`TlsError`] naming the key and the file
//! when one is missing, is not PEM, or holds a key that does not belong to the certificate.
//! [`GlommioIo`](crate::rt::GlommioIo) then runs the handshake and the records over a glommio
//! socket, on the core that owns the connection.
//!
//! ## Why rustls, with ring
//!
//! rustls is memory-safe, has no C library to link at run time, and its connection state is a
//! plain value that can be driven from any executor — here, straight from glommio's receive
//! buffer, without an adapter crate in between. Its *ring* provider builds with a C compiler
//! only; the default aws-lc-rs provider needs cmake and clang. The price: rustls implements TLS
//! 1.2 and 1.3 with AEAD cipher suites only. A Collector config that allows older versions
//! (`min_version: "1.0"`) still loads and never negotiates below 1.2; one that *requires* them
//! (`max_version: "1.1"`), names a CBC suite, or the P-521 curve, is refused by name.
//!
//! ## What follows the Collector exactly
//!
//! - A server uses TLS when its `tls` block is present and needs a certificate and its key.
//!   `client_ca_file` requires every client to present a certificate signed by one of its CAs.
//!   `ca_file` is read and checked but verifies nothing on a server, as in the Collector (Go's
//!   servers ignore `RootCAs`).
//! - A client uses TLS unless `insecure` is true and no CA is given ([`TlsClientConfig::enables_tls`]);
//!   without `ca_file`/`ca_pem` it trusts the system's certificate store (`/etc/ssl/certs`, read
//!   by rustls-native-certs), with them only those CAs unless `include_system_ca_certs_pool`.
//! - `min_version` defaults to 1.2; `cipher_suites` restricts the TLS 1.2 suites and leaves TLS
//!   1.3's alone (Go's rule); `curve_preferences` orders the key exchange groups.
//! - `reload_interval` re-reads the certificate and key files at most that often, when a
//!   handshake needs them (as the Collector's reloader does). A failed reload keeps the previous
//!   certificate and logs a warning rather than failing every handshake until the files are fixed.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, NamedGroup, RootCertStore, SignatureScheme, SupportedProtocolVersion};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spanpipe_config::{FieldError, GoDuration};

use crate::otlp::NotImplemented;

/// The rustls this crate builds on, for crates that hold its configurations and sessions (the
/// exporters) without depending on it on their own, so the versions cannot drift apart.
pub use rustls;

/// ALPN name of HTTP/2: gRPC clients require the server to select it.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN name of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A string that holds a secret (an inline private key): read from the config as a plain
/// string, never shown — `Debug` and serialization print `[REDACTED]`, as the Collector's
/// `configopaque.String` does.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct OpaqueString(pub String);

impl OpaqueString {
    /// Whether nothing was given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for OpaqueString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "[REDACTED]" })
    }
}

impl Serialize for OpaqueString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "[REDACTED]" })
    }
}

/// Declares a `tls` block: the keys of the Collector's `configtls.Config`, which its server and
/// client blocks both embed, followed by the side's own keys. serde cannot combine `flatten`
/// with `deny_unknown_fields`, so the shared keys are declared once here instead of in a
/// flattened struct; [`SharedKeys`] gives the code one view of them.
macro_rules! tls_block {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $type:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            /// PEM file of CA certificates. A client verifies the server's certificate with them
            /// (instead of the system's store, unless `include_system_ca_certs_pool`); a server
            /// reads and checks the file but verifies nothing with it, as in the Collector (set
            /// `client_ca_file` to verify clients). Defaults to empty.
            #[serde(skip_serializing_if = "String::is_empty")]
            pub ca_file: String,
            /// The CA certificates as PEM text, instead of `ca_file`. Defaults to empty.
            #[serde(skip_serializing_if = "OpaqueString::is_empty")]
            pub ca_pem: OpaqueString,
            /// Trust the system's certificate store as well as `ca_file`/`ca_pem` (without them
            /// it is trusted anyway). Defaults to false.
            pub include_system_ca_certs_pool: bool,
            /// PEM file of this side's certificate chain (leaf first): the server's certificate,
            /// or the client certificate for mutual TLS. Needs `key_file` or `key_pem`.
            /// Defaults to empty.
            #[serde(skip_serializing_if = "String::is_empty")]
            pub cert_file: String,
            /// The certificate chain as PEM text, instead of `cert_file`. Defaults to empty.
            #[serde(skip_serializing_if = "OpaqueString::is_empty")]
            pub cert_pem: OpaqueString,
            /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1). Defaults to
            /// empty.
            #[serde(skip_serializing_if = "String::is_empty")]
            pub key_file: String,
            /// The private key as PEM text, instead of `key_file`. Defaults to empty.
            #[serde(skip_serializing_if = "OpaqueString::is_empty")]
            pub key_pem: OpaqueString,
            /// Lowest TLS version accepted: `"1.2"` or `"1.3"`. `"1.0"` and `"1.1"` are accepted
            /// as the Collector spells them, but spanpipe never negotiates below 1.2. Empty means
            /// 1.2. Defaults to empty.
            #[serde(skip_serializing_if = "String::is_empty")]
            pub min_version: String,
            /// Highest TLS version accepted: `"1.2"` or `"1.3"`. Empty means 1.3. Defaults to
            /// empty.
            #[serde(skip_serializing_if = "String::is_empty")]
            pub max_version: String,
            /// TLS 1.2 cipher suites allowed, by their IANA names
            /// (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, …); TLS 1.3's suites are always allowed,
            /// as in Go. Empty allows every suite spanpipe has: ECDHE with AES-GCM or
            /// ChaCha20-Poly1305. Defaults to empty.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub cipher_suites: Vec<String>,
            /// Key exchange groups in order of preference: `X25519`, `P256`, `P384`. Empty means
            /// all three, X25519 first. Defaults to empty.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub curve_preferences: Vec<String>,
            /// Re-read the certificate and key files this often (checked when a handshake needs
            /// them); absent or 0 reads them once. Defaults to absent.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub reload_interval: Option<GoDuration>,
            /// Not implemented: keys are read from files or the config, not from a TPM.
            /// Refused when present. Defaults to absent.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub tpm: Option<NotImplemented>,
            $(
                $(#[$field_meta])*
                pub $field: $type,
            )*
        }

        impl $name {
            fn shared(&self) -> SharedKeys<'_> {
                SharedKeys {
                    ca: PemSource::of("ca_file", &self.ca_file, "ca_pem", &self.ca_pem),
                    include_system_ca_certs_pool: self.include_system_ca_certs_pool,
                    cert: PemSource::of("cert_file", &self.cert_file, "cert_pem", &self.cert_pem),
                    key: PemSource::of("key_file", &self.key_file, "key_pem", &self.key_pem),
                    both_ca: !self.ca_file.is_empty() && !self.ca_pem.is_empty(),
                    both_cert: !self.cert_file.is_empty() && !self.cert_pem.is_empty(),
                    both_key: !self.key_file.is_empty() && !self.key_pem.is_empty(),
                    min_version: &self.min_version,
                    max_version: &self.max_version,
                    cipher_suites: &self.cipher_suites,
                    curve_preferences: &self.curve_preferences,
                    reload_interval: self.reload_interval.map(Duration::from).filter(|interval| !interval.is_zero()),
                    tpm: self.tpm.is_some(),
                }
            }
        }
    };
}

tls_block! {
    /// A receiver's `tls` block (the Collector's `configtls.ServerConfig`): present, the listener
    /// speaks TLS only, with this certificate.
    pub struct TlsServerConfig {
        /// PEM file of the CAs whose certificates clients must present (mutual TLS): a client
        /// without a certificate, or with one these CAs did not sign, is refused during the
        /// handshake. Empty asks clients for no certificate. Defaults to empty.
        #[serde(skip_serializing_if = "String::is_empty")]
        pub client_ca_file: String,
        /// Watching `client_ca_file` for changes is not implemented: `true` is refused (the file
        /// is read when the receiver starts), `false` accepted. Defaults to false.
        pub client_ca_file_reload: bool,
    }
}

tls_block! {
    /// An exporter's `tls` block (the Collector's `configtls.ClientConfig`).
    pub struct TlsClientConfig {
        /// Send without TLS. The default, false, means TLS, as in the Collector. Ignored (TLS is
        /// used) when `ca_file` or `ca_pem` is set, also as in the Collector. Defaults to false.
        pub insecure: bool,
        /// Use TLS but accept any server certificate: the connection is encrypted but the
        /// server is not authenticated. For tests only. Defaults to false.
        pub insecure_skip_verify: bool,
        /// Name the server's certificate is verified against and sent as SNI, instead of the
        /// endpoint's host; gRPC requests also carry it as `:authority`. Defaults to empty.
        #[serde(skip_serializing_if = "String::is_empty")]
        pub server_name_override: String,
    }
}

/// Where a PEM document comes from: a file, or the config itself.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PemSource {
    File { key: &'static str, path: PathBuf },
    Inline { key: &'static str, text: OpaqueString },
}

impl PemSource {
    /// The file if set, else the inline text if set, else nothing.
    fn of(file_key: &'static str, file: &str, pem_key: &'static str, pem: &OpaqueString) -> Option<Self> {
        if !file.is_empty() {
            Some(Self::File { key: file_key, path: PathBuf::from(file) })
        } else if !pem.is_empty() {
            Some(Self::Inline { key: pem_key, text: pem.clone() })
        } else {
            None
        }
    }

    fn key(&self) -> &'static str {
        match self {
            Self::File { key, .. } | Self::Inline { key, .. } => key,
        }
    }

    fn origin(&self) -> String {
        match self {
            Self::File { path, .. } => format!("`{}`", path.display()),
            Self::Inline { key, .. } => format!("the PEM text of `{key}`"),
        }
    }

    fn error(&self, problem: TlsProblem) -> TlsError {
        TlsError { field: self.key().to_owned(), problem }
    }

    fn read(&self) -> Result<Vec<u8>, TlsError> {
        match self {
            Self::File { path, .. } => {
                std::fs::read(path).map_err(|source| self.error(TlsProblem::Read { path: path.clone(), source }))
            }
            Self::Inline { text, .. } => Ok(text.0.as_bytes().to_vec()),
        }
    }

    /// Every certificate in the document; at least one.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = self.read()?;
        let certificates = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| self.error(TlsProblem::NotPem { origin: self.origin(), source }))?;
        if certificates.is_empty() {
            return Err(self.error(TlsProblem::NoCertificate { origin: self.origin() }));
        }
        Ok(certificates)
    }

    /// The (first) private key in the document.
    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = self.read()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| match source {
            rustls::pki_types::pem::Error::NoItemsFound => {
                self.error(TlsProblem::NoPrivateKey { origin: self.origin() })
            }
            source => self.error(TlsProblem::NotPem { origin: self.origin(), source }),
        })
    }
}

/// Why a TLS configuration could not be loaded: the key to change (relative to the `tls` block)
/// and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct TlsError {
    /// The key, relative to the `tls` block (`cert_file`); see [`TlsError::within`].
    pub field: String,
    /// What is wrong.
    #[source]
    pub problem: TlsProblem,
}

impl TlsError {
    /// The same error with `prefix` (the path of the `tls` block) before its key.
    #[must_use]
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// What is wrong with a TLS key's value.
#[derive(Debug, thiserror::Error)]
pub enum TlsProblem {
    /// The file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The document is not PEM, or a PEM section is damaged.
    #[error("{origin} is not valid PEM: {source}")]
    NotPem {
        /// The file or key it came from.
        origin: String,
        /// What the PEM parser said.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// No `CERTIFICATE` section.
    #[error("{origin} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCertificate {
        /// The file or key it came from.
        origin: String,
    },
    /// No private key section.
    #[error("{origin} holds no PEM private key (`-----BEGIN PRIVATE KEY-----` or the RSA/EC forms)")]
    NoPrivateKey {
        /// The file or key it came from.
        origin: String,
    },
    /// The key is not the certificate's.
    #[error("the private key in {key} does not belong to the certificate in {certificate}")]
    KeyMismatch {
        /// Where the key came from.
        key: String,
        /// Where the certificate came from.
        certificate: String,
    },
    /// The key (or certificate) cannot be used for TLS.
    #[error("{origin} cannot be used: {source}")]
    Unusable {
        /// The file or key it came from.
        origin: String,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// A certificate that cannot serve as a trust anchor.
    #[error("{origin} holds a CA certificate that cannot be used: {source}")]
    BadCaCertificate {
        /// The file or key it came from.
        origin: String,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// Nothing to verify servers with.
    #[error(
        "no CA certificates to verify servers with: the system's store has none{system}; \
         set `ca_file` (or install the ca-certificates package)"
    )]
    NoTrustedRoots {
        /// What went wrong reading the system's store, if anything did.
        system: String,
    },
    /// A value the checks of `validate()` refuse.
    #[error("{0}")]
    Invalid(String),
    /// rustls refused the combination (for example no cipher suite left for a version).
    #[error("{0}")]
    Rustls(#[source] rustls::Error),
}

/// Why a TLS handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer's messages or certificate were refused, or the peer refused ours (an alert).
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] rustls::Error),
    /// The socket failed.
    #[error("connection failed during the TLS handshake: {0}")]
    Io(#[source] io::Error),
    /// The peer closed the connection before the handshake completed.
    #[error("the peer closed the connection during the TLS handshake")]
    Closed,
    /// The client spoke plain HTTP to a TLS port (a server answers it with a plaintext 400).
    #[error("the client sent plain HTTP to a TLS port")]
    PlaintextClient,
    /// The handshake did not complete in time.
    #[error("the TLS handshake did not complete within {0:?}")]
    TimedOut(Duration),
}

impl HandshakeError {
    /// Sorts an I/O error from the connection: a TLS error rustls reported, or a socket error.
    pub(crate) fn from_io(error: io::Error) -> Self {
        match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => Self::Tls(tls.clone()),
            None => Self::Io(error),
        }
    }
}

/// The keys both `tls` blocks have, as one view.
#[derive(Debug)]
struct SharedKeys<'a> {
    ca: Option<PemSource>,
    include_system_ca_certs_pool: bool,
    cert: Option<PemSource>,
    key: Option<PemSource>,
    both_ca: bool,
    both_cert: bool,
    both_key: bool,
    min_version: &'a str,
    max_version: &'a str,
    cipher_suites: &'a [String],
    curve_preferences: &'a [String],
    reload_interval: Option<Duration>,
    tpm: bool,
}

/// A problem with one key: its path (relative to the `tls` block) and what is wrong.
type KeyProblem = (String, String);

/// The TLS version a `min_version`/`max_version` value names; `Ok(None)` for the default.
/// Versions are numbered 10 to 13 so that ranges compare.
fn parse_version(key: &str, text: &str) -> Result<Option<u8>, KeyProblem> {
    match text {
        "" => Ok(None),
        "1.0" => Ok(Some(10)),
        "1.1" => Ok(Some(11)),
        "1.2" => Ok(Some(12)),
        "1.3" => Ok(Some(13)),
        other => Err((key.to_owned(), format!("`{key}: {other}` is not a TLS version: use \"1.2\" or \"1.3\""))),
    }
}

/// `TLS_AES_128_GCM_SHA256` (Go's name for a TLS 1.3 suite) or the IANA name rustls uses.
fn suite_matches(suite: &rustls::SupportedCipherSuite, name: &str) -> bool {
    let Some(own) = suite.suite().as_str() else { return false };
    own == name || (suite.tls13().is_some() && own.strip_prefix("TLS13_") == name.strip_prefix("TLS_"))
}

fn curve_group(name: &str) -> Option<NamedGroup> {
    match name {
        "X25519" => Some(NamedGroup::X25519),
        "P256" => Some(NamedGroup::secp256r1),
        "P384" => Some(NamedGroup::secp384r1),
        _ => None,
    }
}

impl SharedKeys<'_> {
    /// The pure checks; errors carry paths relative to the `tls` block.
    fn validate(&self, errors: &mut Vec<FieldError>) {
        for (both, file, pem) in [
            (self.both_ca, "ca_file", "ca_pem"),
            (self.both_cert, "cert_file", "cert_pem"),
            (self.both_key, "key_file", "key_pem"),
        ] {
            if both {
                errors.push(FieldError::new(pem, format!("set `{file}` or `{pem}`, not both")));
            }
        }
        if self.cert.is_some() != self.key.is_some() {
            let (path, missing) = if self.cert.is_some() { ("key_file", "key") } else { ("cert_file", "certificate") };
            errors.push(FieldError::new(
                path,
                format!(
                    "a certificate needs its private key: set both `cert_file` (or `cert_pem`) and `key_file` \
                     (or `key_pem`); the {missing} is missing"
                ),
            ));
        }
        for problem in [self.versions().err(), self.crypto_provider().err()].into_iter().flatten() {
            let (path, message) = problem;
            errors.push(FieldError::new(path, message));
        }
        if self.tpm {
            errors.push(FieldError::new(
                "tpm",
                "`tpm` is not supported by spanpipe: keys are read from `key_file` or `key_pem`; remove it",
            ));
        }
    }

    /// The protocol versions in force.
    fn versions(&self) -> Result<Vec<&'static SupportedProtocolVersion>, KeyProblem> {
        let min = parse_version("min_version", self.min_version)?.unwrap_or(12);
        let max = parse_version("max_version", self.max_version)?.unwrap_or(13);
        if max < 12 {
            return Err((
                "max_version".to_owned(),
                format!(
                    "`max_version: {}` allows only versions spanpipe does not implement: TLS 1.2 and 1.3 are \
                     supported (older ones are insecure)",
                    self.max_version
                ),
            ));
        }
        if min > max {
            return Err((
                "min_version".to_owned(),
                format!("`min_version: {}` is above `max_version: {}`", self.min_version, self.max_version),
            ));
        }
        Ok([(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(number, _)| (min..=max).contains(number))
            .map(|(_, version)| version)
            .collect())
    }

    /// The ring provider restricted to the configured suites and curves; an error names the
    /// entry (path, message).
    fn crypto_provider(&self) -> Result<CryptoProvider, KeyProblem> {
        let mut provider = rustls::crypto::ring::default_provider();
        for (index, name) in self.cipher_suites.iter().enumerate() {
            if !provider.cipher_suites.iter().any(|suite| suite_matches(suite, name)) {
                let known: Vec<&str> =
                    provider.cipher_suites.iter().filter_map(|suite| suite.suite().as_str()).collect();
                return Err((
                    format!("cipher_suites[{index}]"),
                    format!(
                        "`{name}` is not a cipher suite spanpipe supports (rustls implements ECDHE with AES-GCM or \
                         ChaCha20-Poly1305 only): use {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        if !self.cipher_suites.is_empty() {
            provider.cipher_suites.retain(|suite| {
                suite.tls13().is_some() || self.cipher_suites.iter().any(|name| suite_matches(suite, name))
            });
        }
        if !self.curve_preferences.is_empty() {
            let mut groups = Vec::with_capacity(self.curve_preferences.len());
            for (index, name) in self.curve_preferences.iter().enumerate() {
                let group = curve_group(name)
                    .and_then(|named| provider.kx_groups.iter().find(|group| group.name() == named).copied())
                    .ok_or_else(|| {
                        (
                            format!("curve_preferences[{index}]"),
                            format!("`{name}` is not a curve spanpipe supports: use X25519, P256 or P384"),
                        )
                    })?;
                if !groups.iter().any(|known: &&dyn rustls::crypto::SupportedKxGroup| known.name() == group.name()) {
                    groups.push(group);
                }
            }
            provider.kx_groups = groups;
        }
        Ok(provider)
    }

    /// The versions and provider, for loading (the same checks as `validate`).
    fn protocol(&self) -> Result<(Vec<&'static SupportedProtocolVersion>, Arc<CryptoProvider>), TlsError> {
        let invalid = |(field, message): KeyProblem| TlsError { field, problem: TlsProblem::Invalid(message) };
        let versions = self.versions().map_err(invalid)?;
        let provider = self.crypto_provider().map_err(invalid)?;
        Ok((versions, Arc::new(provider)))
    }

    /// This side's certificate and key, re-read every `reload_interval` if set; `None` when
    /// neither is configured.
    fn certificate(&self, provider: &Arc<CryptoProvider>) -> Result<Option<Arc<ReloadingCertificate>>, TlsError> {
        let (cert, key) = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(TlsError {
                    field: "key_file".to_owned(),
                    problem: TlsProblem::Invalid("a certificate needs its private key: set `key_file`".to_owned()),
                })
            }
            (None, Some(_)) => {
                return Err(TlsError {
                    field: "cert_file".to_owned(),
                    problem: TlsProblem::Invalid("a private key needs its certificate: set `cert_file`".to_owned()),
                })
            }
        };
        let source = CertificateFiles { cert, key, provider: Arc::clone(provider) };
        let loaded = source.load()?;
        Ok(Some(Arc::new(ReloadingCertificate {
            source,
            interval: self.reload_interval,
            state: Mutex::new(CertificateState {
                current: loaded,
                next_reload: self.reload_interval.map(|i| Instant::now() + i),
            }),
        })))
    }

    /// The CA certificates of `ca_file`/`ca_pem`, if set.
    fn ca_certificates(&self) -> Result<Option<(PemSource, Vec<CertificateDer<'static>>)>, TlsError> {
        self.ca.as_ref().map(|source| Ok((source.clone(), source.certificates()?))).transpose()
    }
}

/// Adds `certificates` from `source` to `roots`, each of which must be usable as an anchor.
fn add_anchors(
    roots: &mut RootCertStore,
    source: &PemSource,
    certificates: Vec<CertificateDer<'static>>,
) -> Result<(), TlsError> {
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| source.error(TlsProblem::BadCaCertificate { origin: source.origin(), source: error }))?;
    }
    Ok(())
}

/// The system's trusted certificates (`/etc/ssl/certs` and the like), as rustls-native-certs
/// finds them. Unusable entries are skipped; an empty result says why.
fn add_system_roots(roots: &mut RootCertStore) -> Result<(), TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 && roots.is_empty() {
        let system = if found.errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", found.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        };
        return Err(TlsError { field: "ca_file".to_owned(), problem: TlsProblem::NoTrustedRoots { system } });
    }
    Ok(())
}

impl TlsServerConfig {
    /// The pure checks (see the module docs); paths are relative to the `tls` block.
    #[must_use]
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let shared = self.shared();
        shared.validate(&mut errors);
        if shared.cert.is_none() && shared.key.is_none() {
            errors.push(FieldError::new(
                "cert_file",
                "a TLS server needs a certificate and its key: set `cert_file` and `key_file` (or `cert_pem` and \
                 `key_pem`)",
            ));
        }
        if self.client_ca_file_reload {
            errors.push(FieldError::new(
                "client_ca_file_reload",
                "`client_ca_file_reload: true` is not supported by spanpipe: `client_ca_file` is read when the \
                 receiver starts; remove it",
            ));
        }
        errors
    }

    /// Reads the files and builds the rustls server configuration, offering `alpn` protocols in
    /// that order.
    ///
    /// # Errors
    /// [`TlsError`] naming the key and file that could not be used.
    pub fn load(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let shared = self.shared();
        let (versions, provider) = shared.protocol()?;
        // Read and checked as the Collector does, though a server verifies nothing with it.
        shared.ca_certificates()?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|error| TlsError { field: "min_version".to_owned(), problem: TlsProblem::Rustls(error) })?;
        let builder = if self.client_ca_file.is_empty() {
            builder.with_no_client_auth()
        } else {
            let source = PemSource::File { key: "client_ca_file", path: PathBuf::from(&self.client_ca_file) };
            let mut roots = RootCertStore::empty();
            add_anchors(&mut roots, &source, source.certificates()?)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|error| {
                    source
                        .error(TlsProblem::Invalid(format!("cannot verify clients with {}: {error}", source.origin())))
                })?;
            builder.with_client_cert_verifier(verifier)
        };
        let certificate = shared.certificate(&provider)?.ok_or_else(|| TlsError {
            field: "cert_file".to_owned(),
            problem: TlsProblem::Invalid("a TLS server needs a certificate and its key".to_owned()),
        })?;
        let mut config = builder.with_cert_resolver(certificate);
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

impl TlsClientConfig {
    /// Whether these settings ask for TLS whatever the endpoint's scheme says: unless
    /// `insecure` is set without a CA, as the Collector decides (`configtls.ClientConfig`).
    #[must_use]
    pub fn enables_tls(&self) -> bool {
        !self.insecure || !self.ca_file.is_empty() || !self.ca_pem.is_empty()
    }

    /// The pure checks (see the module docs); paths are relative to the `tls` block.
    #[must_use]
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.shared().validate(&mut errors);
        if !self.server_name_override.is_empty() && ServerName::try_from(self.server_name_override.as_str()).is_err() {
            errors.push(FieldError::new(
                "server_name_override",
                format!("`{}` is not a DNS name or IP address", self.server_name_override),
            ));
        }
        errors
    }

    /// The name to verify the server's certificate against (and send as SNI): the override if
    /// set, else `host`.
    ///
    /// # Errors
    /// [`TlsError`] when the name is neither a DNS name nor an IP address.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let (field, name) = if self.server_name_override.is_empty() {
            ("endpoint", host)
        } else {
            ("server_name_override", self.server_name_override.as_str())
        };
        ServerName::try_from(name.to_owned()).map_err(|_| TlsError {
            field: field.to_owned(),
            problem: TlsProblem::Invalid(format!(
                "`{name}` is not a DNS name or IP address to verify a certificate against"
            )),
        })
    }

    /// Reads the files (and, when needed, the system's certificate store) and builds the rustls
    /// client configuration, offering `alpn` protocols in that order.
    ///
    /// # Errors
    /// [`TlsError`] naming the key and file that could not be used.
    pub fn load(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let shared = self.shared();
        let (versions, provider) = shared.protocol()?;
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|error| TlsError { field: "min_version".to_owned(), problem: TlsProblem::Rustls(error) })?;
        let ca = shared.ca_certificates()?;
        let builder = if self.insecure_skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate(
                provider.signature_verification_algorithms,
            )))
        } else {
            let mut roots = RootCertStore::empty();
            if ca.is_none() || shared.include_system_ca_certs_pool {
                add_system_roots(&mut roots)?;
            }
            if let Some((source, certificates)) = ca {
                add_anchors(&mut roots, &source, certificates)?;
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match shared.certificate(&provider)? {
            Some(certificate) => builder.with_client_cert_resolver(certificate),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// A certificate chain and its key, and where they are read from.
#[derive(Debug)]
struct CertificateFiles {
    cert: PemSource,
    key: PemSource,
    provider: Arc<CryptoProvider>,
}

impl CertificateFiles {
    fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let chain = self.cert.certificates()?;
        let key = self.key.private_key()?;
        CertifiedKey::from_der(chain, key, &self.provider).map(Arc::new).map_err(|error| match error {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                self.key.error(TlsProblem::KeyMismatch { key: self.key.origin(), certificate: self.cert.origin() })
            }
            error => self.key.error(TlsProblem::Unusable { origin: self.key.origin(), source: error }),
        })
    }
}

#[derive(Debug)]
struct CertificateState {
    current: Arc<CertifiedKey>,
    next_reload: Option<Instant>,
}

/// This side's certificate, for rustls' resolvers: the one loaded at start, re-read from its
/// files once `interval` has passed since the last read (by the handshake that finds it due; the
/// files are small, so that handshake pays a few hundred microseconds of reading).
#[derive(Debug)]
struct ReloadingCertificate {
    source: CertificateFiles,
    interval: Option<Duration>,
    state: Mutex<CertificateState>,
}

impl ReloadingCertificate {
    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(interval), Some(due)) = (self.interval, state.next_reload) {
            let now = Instant::now();
            if now >= due {
                state.next_reload = Some(now + interval);
                match self.source.load() {
                    Ok(loaded) => state.current = loaded,
                    Err(error) => {
                        tracing::warn!(%error, "reloading the TLS certificate failed; keeping the previous one")
                    }
                }
            }
        }
        Arc::clone(&state.current)
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for ReloadingCertificate {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake's signatures are still
/// checked (they prove the server holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyServerCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, signature, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, signature, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spanpipe_testkit::tls::TestCa;

    fn versions(min: &str, max: &str) -> Result<Vec<u16>, String> {
        let keys = TlsClientConfig { min_version: min.into(), max_version: max.into(), ..TlsClientConfig::default() };
        let versions = keys.shared().versions().map_err(|(path, _)| path)?;
        Ok(versions.iter().map(|version| u16::from(version.version)).collect())
    }

    #[test]
    fn versions_map_to_what_rustls_can_negotiate() {
        let (tls12, tls13) = (0x0303, 0x0304);
        assert_eq!(versions("", ""), Ok(vec![tls12, tls13]), "1.2 and up by default, as in the Collector");
        assert_eq!(versions("1.0", ""), Ok(vec![tls12, tls13]), "older minimums allow what rustls has");
        assert_eq!(versions("1.3", ""), Ok(vec![tls13]));
        assert_eq!(versions("", "1.2"), Ok(vec![tls12]));
        assert_eq!(versions("1.0", "1.1"), Err("max_version".to_owned()));
        assert_eq!(versions("1.3", "1.2"), Err("min_version".to_owned()));
        assert_eq!(versions("TLSv1.2", ""), Err("min_version".to_owned()));
    }

    #[test]
    fn cipher_suites_take_go_names_and_restrict_tls12_only() {
        let keys = TlsClientConfig {
            cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(), "TLS_AES_256_GCM_SHA384".into()],
            curve_preferences: vec!["P384".into(), "X25519".into(), "P384".into()],
            ..TlsClientConfig::default()
        };
        let provider = keys.shared().crypto_provider().unwrap();
        let names: Vec<_> = provider.cipher_suites.iter().filter_map(|suite| suite.suite().as_str()).collect();
        assert_eq!(
            names,
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        let groups: Vec<_> = provider.kx_groups.iter().map(|group| group.name()).collect();
        assert_eq!(groups, [NamedGroup::secp384r1, NamedGroup::X25519], "in the configured order, once each");
    }

    #[test]
    fn inline_secrets_never_show() {
        let keys =
            TlsClientConfig { key_pem: OpaqueString("-----BEGIN PRIVATE KEY-----".into()), ..Default::default() };
        assert!(!format!("{keys:?}").contains("BEGIN"), "{keys:?}");
        assert_eq!(serde_json::to_value(&keys).unwrap()["key_pem"], "[REDACTED]");
        let source = keys.shared().key.unwrap();
        assert!(!format!("{source:?}").contains("BEGIN"), "{source:?}");
    }

    #[test]
    fn a_client_configuration_offers_its_alpn_and_its_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path(), "root");
        let client = ca.issue("client", &["client.test"]);
        let keys = TlsClientConfig {
            ca_pem: OpaqueString(ca.ca_pem()),
            cert_file: client.cert_file.display().to_string(),
            key_pem: OpaqueString(client.key_pem.clone()),
            server_name_override: "collector.test".into(),
            ..TlsClientConfig::default()
        };
        assert!(keys.validate().is_empty(), "{:?}", keys.validate());
        let config = keys.load(&[ALPN_H2]).unwrap();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
        assert!(config.client_auth_cert_resolver.has_certs());
        assert_eq!(keys.server_name("10.0.0.1").unwrap(), ServerName::try_from("collector.test").unwrap());
        let plain = TlsClientConfig { ca_file: ca.ca_file().display().to_string(), ..TlsClientConfig::default() };
        assert!(!plain.load(&[]).unwrap().client_auth_cert_resolver.has_certs());
        assert_eq!(plain.server_name("10.0.0.1").unwrap(), ServerName::try_from("10.0.0.1").unwrap());
    }
}
