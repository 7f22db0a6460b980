//! TLS for the forward output: rustls (the aws-lc-rs provider the AWS SDK already builds), with
//! the system's roots or a CA file, or no verification when `tls_verify = false`.

use crate::input::forward::tls::crypto_provider;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// A validated TLS client setup: the config and the name the certificate must hold.
#[derive(Clone, Debug)]
pub struct TlsClient {
    /// Shared by every connection of the output.
    pub config: Arc<ClientConfig>,
    /// The name checked against the server's certificate (and sent as SNI).
    pub server_name: ServerName<'static>,
}

impl TlsClient {
    /// Build from the output's options; errors name the key and the fix.
    pub fn new(
        verify: bool,
        ca_file: Option<&Path>,
        server_name: &str,
    ) -> Result<TlsClient, String> {
        let server_name = ServerName::try_from(server_name.to_string()).map_err(|_| {
            format!(
                "tls_server_name {server_name:?} is not a DNS name or IP address; set tls_server_name to the name in the receiver's certificate"
            )
        })?;
        let provider = crypto_provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?;
        let config = if verify {
            builder
                .with_root_certificates(roots(ca_file)?)
                .with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// A connector for one connection.
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.clone())
    }
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect())
                .map_err(|e| {
                    format!(
                        "tls_ca_file {}: {e}; point it at a PEM file of CA certificates",
                        path.display()
                    )
                })?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!(
                        "tls_ca_file {}: a certificate cannot be used as a root: {e}",
                        path.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "tls_ca_file {}: no CERTIFICATE block found; point it at a PEM file of CA certificates",
                    path.display()
                ));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(
                    "tls: no trusted CA certificates found on this system; set tls_ca_file to the receiver's CA (PEM), or install ca-certificates"
                        .to_string(),
                );
            }
        }
    }
    Ok(roots)
}

/// `tls_verify = false`: any certificate is accepted (the handshake's signatures are still
/// checked, so the session key belongs to whoever holds the certificate's key).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
