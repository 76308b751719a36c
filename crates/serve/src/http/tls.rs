//! TLS: a certificate chain and its key in PEM, ALPN `h2` then
//! `http/1.1`, rustls on ring.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The files of `--tls-cert` and `--tls-key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM, the server's own first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS #8, PKCS #1 or SEC1).
    pub key: PathBuf,
}

/// The server's TLS configuration, or what is wrong with a file.
pub(crate) fn config(files: &TlsFiles) -> Result<Arc<ServerConfig>, (PathBuf, String)> {
    let fault = |path: &Path, e: &dyn std::fmt::Display| (path.to_owned(), e.to_string());
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| fault(&files.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fault(&files.cert, &e))?;
    if certs.is_empty() {
        return Err(fault(&files.cert, &"it holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| fault(&files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fault(&files.cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            fault(
                &files.key,
                &format!("the key does not fit the certificate: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
