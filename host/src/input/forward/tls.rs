//! TLS for a forward input's TCP listener (reference forward-protocol.md §1: TLS is layered
//! beneath the protocol, independent of the handshake): a certificate chain and key from PEM
//! files, rustls with the aws-lc-rs provider the AWS SDK already builds.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take to complete the TLS handshake (Fluent Bit's
/// `net.accept_timeout`, which includes TLS, is 10 s).
pub const TLS_ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// `tls = { cert_file, key_file }` of a forward input: serve TCP over TLS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Why the TLS listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read or held nothing usable.
    #[error("tls.{key} {path}: {problem}; fix: point it at a PEM file that holds {wanted}")]
    Pem {
        /// `cert_file` or `key_file`.
        key: &'static str,
        /// The file.
        path: String,
        /// What was wrong.
        problem: String,
        /// What the file must hold.
        wanted: &'static str,
    },
    /// rustls refused the certificate and key together.
    #[error("tls: the certificate and key cannot be used together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The process-wide crypto provider of every forward TLS connection.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl ListenerTlsConfig {
    /// Load the files into an acceptor.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
        let pem_error = |key, path: &PathBuf, problem: String, wanted| TlsSetupError::Pem {
            key,
            path: path.display().to_string(),
            problem,
            wanted,
        };
        const CERTS: &str = "one or more CERTIFICATE blocks";
        const KEY: &str = "a PRIVATE KEY block";
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|certs| certs.collect())
            .map_err(|e| pem_error("cert_file", &self.cert_file, e.to_string(), CERTS))?;
        if certs.is_empty() {
            return Err(pem_error(
                "cert_file",
                &self.cert_file,
                "no certificate found".into(),
                CERTS,
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| pem_error("key_file", &self.key_file, e.to_string(), KEY))?;
        let config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}
