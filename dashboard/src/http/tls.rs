//! HTTPS (issue #6): the same router behind rustls when `http.tls_cert` and `http.tls_key` are
//! set; connections are handled like plain ones ([`super::serve`]), the handshake
//! time-limited (axum-server's rustls acceptor, on ring).

use super::AppState;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("http.tls_cert {0}: {1}")]
    Cert(String, String),
    #[error("http.tls_key {0}: {1}")]
    Key(String, String),
    #[error("TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS configuration from PEM files: the certificate chain (leaf first) and its private key.
pub fn acceptor(cert: &Path, key: &Path) -> Result<RustlsConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Cert(cert.display().to_string(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Cert(
            cert.display().to_string(),
            "no certificate in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key(key.display().to_string(), e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(cfg)))
}

/// Serves HTTPS until `shutdown` resolves (see [`super::serve::serve`] for the limits).
pub async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: RustlsConfig,
    state: AppState,
    limits: super::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    super::serve::serve(listener, Some(acceptor), state, limits, shutdown).await
}
