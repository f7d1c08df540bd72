//! Certificates for TLS tests: a private CA and the server and client certificates it signs,
//! generated fresh (rcgen, ECDSA P-256) and written as PEM files into a directory the test owns.
//!
//! Tests of TLS need real certificates, and committed ones expire or leak keys that look real;
//! generating them per test costs about a millisecond each.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate authority whose certificate is written to `<dir>/<name>-ca.pem`.
pub struct TestCa {
    dir: PathBuf,
    name: String,
    certificate: Certificate,
    key: KeyPair,
}

/// A certificate and its private key, as PEM files (and their text).
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate's PEM file.
    pub cert_file: PathBuf,
    /// The private key's PEM file.
    pub key_file: PathBuf,
    /// The certificate as PEM text.
    pub cert_pem: String,
    /// The private key as PEM text.
    pub key_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("name", &self.name).field("ca_file", &self.ca_file()).finish_non_exhaustive()
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
}

impl TestCa {
    /// A new CA called `name`; its certificate goes to `dir`.
    ///
    /// # Panics
    /// When the key cannot be generated or the file written (a test setup failure).
    #[must_use]
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty subject alternative names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("a P-256 key");
        let certificate = params.self_signed(&key).expect("a self-signed CA certificate");
        let ca = Self { dir: dir.to_owned(), name: name.to_owned(), certificate, key };
        write(&ca.ca_file(), &ca.ca_pem());
        ca
    }

    /// The CA certificate's PEM file.
    #[must_use]
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// The CA certificate as PEM text.
    #[must_use]
    pub fn ca_pem(&self) -> String {
        self.certificate.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses, as subject alternative names), good
    /// for a server and a client, written to `<dir>/<file_stem>.pem` and `<file_stem>-key.pem`.
    ///
    /// # Panics
    /// When a name is invalid or the files cannot be written (a test setup failure).
    #[must_use]
    pub fn issue(&self, file_stem: &str, names: &[&str]) -> Issued {
        let mut params = CertificateParams::new(names.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>())
            .expect("valid subject alternative names");
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or(file_stem));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("a P-256 key");
        let certificate = params.signed_by(&key, &self.certificate, &self.key).expect("a signed certificate");
        let issued = Issued {
            cert_file: self.dir.join(format!("{file_stem}.pem")),
            key_file: self.dir.join(format!("{file_stem}-key.pem")),
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        };
        write(&issued.cert_file, &issued.cert_pem);
        write(&issued.key_file, &issued.key_pem);
        issued
    }
}

/// A CA and a server certificate it issued, in a temporary directory that lives as long as this
/// value: what most TLS tests start from.
#[derive(Debug)]
pub struct Pki {
    /// The directory holding the PEM files.
    pub dir: tempfile::TempDir,
    /// The CA.
    pub ca: TestCa,
    /// The server's certificate.
    pub server: Issued,
}

impl Pki {
    /// A CA called `root` and a server certificate for `server_names`.
    ///
    /// # Panics
    /// When the directory or the certificates cannot be made (a test setup failure).
    #[must_use]
    pub fn new(server_names: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = TestCa::new(dir.path(), "root");
        let server = ca.issue("server", server_names);
        Self { dir, ca, server }
    }

    /// The directory holding the PEM files.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate's file, as a config value.
    #[must_use]
    pub fn ca_file(&self) -> String {
        self.ca.ca_file().display().to_string()
    }
}
