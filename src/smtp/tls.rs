//! TLS for STARTTLS: TLS 1.2 and 1.3 only, ECDHE key exchange and AEAD
//! ciphers only, with a certificate that can be swapped while running.
//!
//! rustls implements nothing older than TLS 1.2, so a TLS 1.0 or 1.1
//! ClientHello is refused with a `protocol_version` alert by construction.
//! The suites are listed here explicitly so that a change of rustls defaults
//! can never widen what we accept.

use rustls::crypto::{CryptoProvider, ring as provider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::session::TlsInfo;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate file {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read private key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("cannot generate the development certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
}

/// Where the certificate chain and key live; both PEM.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl CertFiles {
    /// Reads and checks the pair. The key must match a signature scheme
    /// ring supports (RSA, ECDSA P-256/P-384, Ed25519).
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| TlsError::Cert {
                path: self.cert_file.clone(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Cert {
                path: self.cert_file.clone(),
                reason: "no certificate in file".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| TlsError::Key {
            path: self.key_file.clone(),
            reason: e.to_string(),
        })?;
        let signing = provider::sign::any_supported_type(&key).map_err(|e| TlsError::Key {
            path: self.key_file.clone(),
            reason: e.to_string(),
        })?;
        let certified = CertifiedKey::new(certs, signing);
        certified.keys_match().map_err(|e| TlsError::Key {
            path: self.key_file.clone(),
            reason: format!("key does not match certificate: {e}"),
        })?;
        Ok(Arc::new(certified))
    }
}

/// The certificate in use, replaceable on SIGHUP. Sessions already in TLS
/// keep the key they negotiated with; new handshakes get the new one.
#[derive(Debug)]
pub struct CertStore {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    pub fn open(files: CertFiles) -> Result<Arc<Self>, TlsError> {
        let current = RwLock::new(files.load()?);
        Ok(Arc::new(CertStore { files, current }))
    }

    /// Loads the files again. On error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = self.files.load()?;
        match self.current.write() {
            Ok(mut slot) => *slot = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(k) => Some(Arc::clone(&k)),
            Err(poisoned) => Some(Arc::clone(&poisoned.into_inner())),
        }
    }
}

/// Only ECDHE key exchange with AEAD ciphers. (TLS 1.3 suites are always
/// both; the TLS 1.2 ones are named so.)
fn strict_provider() -> CryptoProvider {
    let base = provider::default_provider();
    CryptoProvider {
        cipher_suites: vec![
            provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
            provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
            provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![
            provider::kx_group::X25519,
            provider::kx_group::SECP256R1,
            provider::kx_group::SECP384R1,
        ],
        ..base
    }
}

/// The server configuration every STARTTLS handshake uses.
pub fn server_config(certs: Arc<CertStore>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(strict_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    // Our order (`strict_provider`: AES-256 first, then AES-128, then
    // ChaCha20), not the client's: a peer that lists a weaker suite first
    // still gets the strongest both support.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// What was negotiated, in the names RFC 8314 trace fields and ops expect.
pub fn negotiated(conn: &ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .unwrap_or("unknown")
        .to_owned();
    TlsInfo { version, cipher }
}

/// With no certificate configured: a self-signed one for `hostname`,
/// generated once under `dir` and reused after. For development and tests;
/// a public MX needs a certificate that peers can verify.
pub fn ensure_dev_cert(dir: &Path, hostname: &str) -> Result<CertFiles, TlsError> {
    let files = CertFiles {
        cert_file: dir.join("dev-cert.pem"),
        key_file: dir.join("dev-key.pem"),
    };
    if files.cert_file.exists() && files.key_file.exists() {
        return Ok(files);
    }
    let names = vec![
        hostname.to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    crate::private_file::write(
        &files.key_file,
        generated.key_pair.serialize_pem().as_bytes(),
    )
    .map_err(write_err(&files.key_file))?;
    std::fs::write(&files.cert_file, generated.cert.pem()).map_err(write_err(&files.cert_file))?;
    Ok(files)
}
